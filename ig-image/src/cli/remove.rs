//! `ig-image remove`.

use anyhow::Context as _;
use clap::Args;
use gadget_store::{Reference, signatures};

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
        let report = if signatures::is_bare_tag(image) {
            store.remove_bare(image)
        } else {
            store.remove(&Reference::parse(image)?)
        }
        .with_context(|| format!("cannot remove `{image}`"))?;
        println!("Successfully removed {}", report.reference);
        log::debug!("garbage collection: {report:?}");
    }
    Ok(ExitStatus::Success)
}
