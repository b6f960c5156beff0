//! `ig-image list`.

use clap::Args;

use super::{ExitStatus, GlobalArgs};
use crate::output::{self, Format};

/// List the gadget images in the store: repository, tag, index digest and creation time.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show full digests
    #[arg(long)]
    no_trunc: bool,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: ListArgs) -> anyhow::Result<ExitStatus> {
    let path = global.store_path();
    let images = if path.join("index.json").exists() {
        ig_image::inspect::list(&global.open_store()?)?
    } else {
        Vec::new()
    };
    if args.output != Format::Columns {
        output::print_data(&images, args.output)?;
        return Ok(ExitStatus::Success);
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            let hex = i.digest.trim_start_matches("sha256:");
            let digest = if args.no_trunc {
                i.digest.clone()
            } else {
                hex.chars().take(12).collect()
            };
            vec![
                i.repository.clone(),
                i.tag.clone(),
                digest,
                i.created.clone(),
            ]
        })
        .collect();
    output::print_table(&["REPOSITORY", "TAG", "DIGEST", "CREATED"], &rows)?;
    Ok(ExitStatus::Success)
}
