//! `ig-image sign`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;
use ig_image_sign::cosign::{self, SignatureFormat};
use ig_image_sign::keys::{self, Password};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Sign an image in the local store with a cosign key (offline: no registry involved).
///
/// The signature covers the image's index digest and is stored next to the image, in a format
/// upstream `ig` and cosign verify: `legacy` (default; the `sha256-<digest>.sig` tag official
/// gadgets use), `oci-1-1` (an OCI 1.1 referrer) or `bundle` (a sigstore bundle v0.3 referrer).
/// `push`, `pull`, `export` and `import` carry it. Signing twice with the same key changes
/// nothing; another key adds a signature. The key's password comes from `COSIGN_PASSWORD` or a
/// prompt.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ig-image sign trace_open:v1 --key cosign.key\n  \
ig-image verify trace_open:v1 --public-keys cosign.pub\n\n\
JSON (-o json): {\"reference\", \"digest\", \"format\", \"signature_manifest\", \"tag\", \"key_id\", \"added\"}\n\
Docs: docs/signing.md"
)]
pub struct SignArgs {
    /// The image to sign
    image: String,
    /// The private key (cosign.key, `ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN PRIVATE KEY`)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Signature format
    #[arg(long, value_enum, default_value = "legacy")]
    format: FormatArg,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// The `sha256-<digest>.sig` tag (cosign's default, what official gadgets use)
    Legacy,
    /// An OCI 1.1 referrer (`cosign sign --registry-referrers-mode=oci-1-1`)
    #[value(name = "oci-1-1")]
    Oci11,
    /// A sigstore bundle v0.3 referrer (`cosign sign --new-bundle-format`)
    Bundle,
}

impl From<FormatArg> for SignatureFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Legacy => SignatureFormat::Legacy,
            FormatArg::Oci11 => SignatureFormat::Oci11,
            FormatArg::Bundle => SignatureFormat::Bundle,
        }
    }
}

pub fn exec(global: &GlobalArgs, args: SignArgs) -> anyhow::Result<ExitStatus> {
    let reference = Reference::parse(&args.image)?;
    let password = Password::from_env_or_prompt(false)?;
    let key = keys::load_private_key(&args.key, &password)?;
    let store = global.open_store()?;
    let report = cosign::sign(&store, &reference, &key, args.format.into())
        .with_context(|| format!("cannot sign `{}`", args.image))?;
    if args.output != Format::Columns {
        output::print_data(&report, args.output)?;
        return Ok(ExitStatus::Success);
    }
    let place = match &report.tag {
        Some(tag) => format!("tag {tag}"),
        None => format!("referrer {}", report.signature_manifest),
    };
    if report.added {
        outln!(
            "Signed {}@{} ({} signature, {place})",
            reference.display(),
            report.digest,
            report.format
        );
    } else {
        outln!(
            "{}@{} already carries this {} signature ({place})",
            reference.display(),
            report.digest,
            report.format
        );
    }
    Ok(ExitStatus::Success)
}
