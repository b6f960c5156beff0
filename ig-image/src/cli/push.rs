//! `ig-image push` (its registry options, progress and summary are in [`super::common`]).

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;
use ig_image_registry as registry;

use super::common::{Progress, TransferArgs, print_report};
use super::{ExitStatus, GlobalArgs};

/// Push an image, with its signatures and referrers, to its registry.
///
/// The whole graph is copied: the index, every platform manifest, configs and layers, the
/// legacy cosign signature tag (`sha256-<hex>.sig`) and OCI 1.1 referrers stored with the image.
/// Blobs the registry already has are skipped (HEAD), blobs held by another repository of the
/// same registry are mounted, the others are uploaded several at once. The tag is written last:
/// a failed push never leaves it pointing at missing content. Transient failures (connection
/// resets, 5xx, 429) are retried with backoff.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image push localhost:5000/gadgets/trace_open:v1 --insecure-registries localhost:5000\n  \
ig-image push ghcr.io/me/gadgets/trace_open:v1 --authfile ci-auth.json -o json\n\n\
Credentials come from the auth file (see `ig-image login`). Docs: docs/registries.md\n\n\
JSON (-o json): {\"reference\", \"digest\", \"platforms\", \"bytes_sent\", \"blobs_uploaded\",\n\
\"blobs_mounted\", \"blobs_skipped\", \"manifests\", \"signatures\", \"referrers\", \"retries\", \"millis\", ...}")]
pub struct PushArgs {
    /// The image (its name says which registry and repository it goes to)
    image: String,
    #[command(flatten)]
    transfer: TransferArgs,
}

pub fn exec(global: &GlobalArgs, args: PushArgs) -> anyhow::Result<ExitStatus> {
    let reference = Reference::parse(&args.image)?;
    let store = global.open_store()?;
    let (client, credentials) = args.transfer.connect(&reference)?;
    let progress = Progress::new("Pushing");
    let report = registry::push(&store, &client, &reference, &credentials, &progress);
    progress.finish();
    let report = report.with_context(|| {
        format!(
            "failed to push `{}` to {}",
            reference.display(),
            reference.registry()
        )
    })?;
    print_report("pushed", &report, args.transfer.output)?;
    Ok(ExitStatus::Success)
}
