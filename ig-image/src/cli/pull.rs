//! `ig-image pull`.

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;
use ig_image_registry as registry;

use super::common::{PlatformList, Progress, TransferArgs, parse_platforms, print_report};
use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Pull an image, with its signatures and referrers, from its registry into the store.
///
/// The index, every platform manifest, configs and layers are fetched; every manifest and blob
/// is checked against its digest and size before it becomes visible in the store, and blobs the
/// store already has are not downloaded. The legacy cosign signature tag (`sha256-<hex>.sig`)
/// and OCI 1.1 referrers (through the referrers API, or the `sha256-<hex>` tag schema on
/// registries without it) come along. The local tag is written last, in one store transaction.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image pull localhost:5000/gadgets/trace_open:v1 --insecure-registries localhost:5000\n  \
ig-image pull ghcr.io/inspektor-gadget/gadget/trace_exec:latest --platform amd64\n\n\
With --platform, the stored index lists only those platforms, so its digest differs from the\n\
registry's (both are printed) and the index's own signatures are not fetched.\n\
With --public-keys, the signature that verified is printed (`Verified ...`).\n\n\
JSON (-o json): push's transfer report (bytes_received, blobs_downloaded, source_digest with\n\
--platform) plus \"verification\": {\"verified\": bool, \"signature\": {format, key, ...} | null}\n\
Docs: docs/registries.md")]
pub struct PullArgs {
    /// The image (name, optionally `:tag` or `@sha256:...`)
    image: String,
    /// Only these platforms, comma-separated (e.g. amd64 or linux/arm64)
    #[arg(long, value_name = "LIST", value_parser = parse_platforms)]
    platform: Option<PlatformList>,
    #[command(flatten)]
    transfer: TransferArgs,
    /// Signature and allowed-gadgets policy for the pulled image (docs/signing.md)
    #[command(flatten)]
    policy: super::common::PolicyArgs,
}

pub fn exec(global: &GlobalArgs, args: PullArgs) -> anyhow::Result<ExitStatus> {
    let reference = Reference::parse(&args.image)?;
    let store = global.open_store()?;
    let (client, credentials) = args.transfer.connect(&reference)?;
    // Checked before any transfer: bad key files or flags fail fast.
    args.policy.policy()?;
    let before = args.policy.before_pull(&store, &reference);
    let progress = Progress::new("Pulling");
    let report = registry::pull(
        &store,
        &client,
        &reference,
        &credentials,
        args.platform.as_ref().map(|p| p.0.as_slice()),
        &progress,
    );
    progress.finish();
    let report = report.with_context(|| {
        format!(
            "failed to pull `{}` from {}",
            reference.display(),
            reference.registry()
        )
    })?;
    let accepted = args.policy.check_pulled(&store, &reference, before)?;
    if args.transfer.output == Format::Columns {
        print_report("pulled", &report, args.transfer.output)?;
        if let Some(line) = super::common::verification_line(&accepted, output::colour_stdout()) {
            outln!("{line}");
        }
    } else {
        let mut doc = serde_json::to_value(&report)?;
        doc["verification"] = super::common::verification_json(&accepted);
        output::print_data(&doc, args.transfer.output)?;
    }
    Ok(ExitStatus::Success)
}
