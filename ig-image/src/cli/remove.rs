//! `ig-image remove`.

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;

use super::{ExitStatus, GlobalArgs};

/// Remove image tags; content that no remaining tag reaches is deleted from the store.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Images to remove
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

pub fn exec(global: &GlobalArgs, args: RemoveArgs) -> anyhow::Result<ExitStatus> {
    let store = global.open_store()?;
    for image in &args.images {
        let reference = Reference::parse(image)?;
        let report = store
            .remove(&reference)
            .with_context(|| format!("cannot remove `{image}`"))?;
        println!("Successfully removed {}", reference.full());
        log::debug!("garbage collection: {report:?}");
    }
    Ok(ExitStatus::Success)
}
