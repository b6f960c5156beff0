//! `ig-image export`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;

use super::{ExitStatus, GlobalArgs};

/// Write images (with their signatures) to a tar file: a plain, deterministic OCI image layout.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ig-image export trace_open:v1 trace_exec:v1 gadgets.tar")]
pub struct ExportArgs {
    /// Images, then the tar file to write
    #[arg(required = true, num_args = 2.., value_name = "IMAGE... FILE")]
    args: Vec<String>,
}

pub fn exec(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<ExitStatus> {
    let (file, images) = args
        .args
        .split_last()
        .expect("clap requires two or more values");
    let file = PathBuf::from(file);
    let references = images
        .iter()
        .map(|i| Reference::parse(i))
        .collect::<Result<Vec<_>, _>>()?;
    let store = global.open_store()?;
    store
        .export(&references, &file)
        .with_context(|| format!("cannot export to `{}`", file.display()))?;
    for r in &references {
        println!("Successfully exported {}", r.full());
    }
    Ok(ExitStatus::Success)
}
