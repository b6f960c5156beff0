//! `ig-image list`.

use clap::Args;

use super::{ExitStatus, GlobalArgs};
use crate::output::{self, Format};

/// List the gadget images in the store: repository, tag, index digest and creation time.
#[derive(Debug, Args)]
#[command(
    after_help = "CREATED is relative in columns (\"2 hours ago\", as upstream and docker) and \
RFC 3339 with --no-trunc and in JSON.\n\
JSON (-o json): [{\"reference\", \"repository\", \"tag\", \"digest\", \"created\"}]"
)]
pub struct ListArgs {
    /// Do not shorten digests and times
    #[arg(long)]
    no_trunc: bool,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: ListArgs) -> anyhow::Result<ExitStatus> {
    let path = global.store_path();
    let images = if path.join("index.json").exists() {
        ig_image_build::inspect::list(&global.open_store()?)?
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
            let created = if args.no_trunc {
                i.created.clone()
            } else {
                output::relative_time(&i.created)
            };
            vec![i.repository.clone(), i.tag.clone(), digest, created]
        })
        .collect();
    output::print_table(&["REPOSITORY", "TAG", "DIGEST", "CREATED"], &rows)?;
    Ok(ExitStatus::Success)
}
