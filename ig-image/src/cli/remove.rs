//! `ig-image remove`.

use anyhow::Context as _;
use clap::Args;
use gadget_store::{Reference, signatures};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Remove image tags; content that no remaining tag reaches is deleted from the store.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ig-image remove trace_open:dev\n\n\
JSON (-o json): {\"removed\": [{\"reference\", \"digest\", \"deletedBlobs\", \"deletedBytes\"}]}")]
pub struct RemoveArgs {
    /// Images to remove
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: RemoveArgs) -> anyhow::Result<ExitStatus> {
    let store = global.open_store()?;
    let mut removed = Vec::new();
    for image in &args.images {
        let report = if signatures::is_bare_tag(image) {
            store.remove_bare(image)
        } else {
            store.remove(&Reference::parse(image)?)
        }
        .with_context(|| format!("cannot remove `{image}`"))?;
        log::debug!("garbage collection: {report:?}");
        if args.output == Format::Columns {
            outln!("Successfully removed {}", report.reference);
        }
        removed.push(serde_json::json!({
            "reference": report.reference,
            "digest": report.digest.map(|d| d.to_string()),
            "deletedBlobs": report.gc.deleted_blobs,
            "deletedBytes": report.gc.deleted_bytes,
        }));
    }
    if args.output != Format::Columns {
        output::print_data(&serde_json::json!({ "removed": removed }), args.output)?;
    }
    Ok(ExitStatus::Success)
}
