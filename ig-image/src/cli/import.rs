//! `ig-image import`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{ExitStatus, GlobalArgs};

/// Arguments of `ig-image import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tar file
    file: PathBuf,
}

pub fn exec(global: &GlobalArgs, args: ImportArgs) -> anyhow::Result<ExitStatus> {
    let store = global.open_store()?;
    let tags = store
        .import(&args.file)
        .with_context(|| format!("cannot import `{}`", args.file.display()))?;
    for t in tags {
        println!("Successfully imported {t}");
    }
    Ok(ExitStatus::Success)
}
