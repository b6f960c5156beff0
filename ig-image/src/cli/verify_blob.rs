//! `ig-image verify-blob`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use ig_image_sign::keyless::{self, Subject};

use super::common::KeylessArgs;
use super::verify::report_keyless;
use super::{ExitStatus, GlobalArgs};
use crate::output::Format;

/// Verify a file against a Sigstore bundle, offline (flags as cosign's `verify-blob`).
///
/// Keyless (`--certificate-identity[-regexp]` and `--certificate-oidc-issuer[-regexp]`): the
/// Fulcio certificate chain at the signing time, its SCT, the Rekor entry (inclusion proof with a
/// signed checkpoint, or a SET), RFC 3161 timestamps when present, the identity, then the
/// signature and the file's digest, against `--trusted-root` (default: Sigstore's public-good
/// production root, built in). With `--key`: a managed-key bundle, its log entry checked the same
/// way. Never uses the network. Exit status 1 naming the step that failed, 2 on bad input.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image verify-blob release.tar --bundle release.tar.sigstore.json \\\n    \
--certificate-identity https://github.com/me/gadgets/.github/workflows/release.yml@refs/tags/v1.0.0 \\\n    \
--certificate-oidc-issuer https://token.actions.githubusercontent.com\n  \
ig-image verify-blob file.txt --bundle file.sigstore.json --key cosign.pub --trusted-root trusted_root.json\n\
Docs: docs/supply-chain.md")]
pub struct VerifyBlobArgs {
    /// The signed file
    file: PathBuf,
    /// The Sigstore bundle (.sigstore.json)
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// A PEM public key, for bundles signed with a managed key instead of a certificate
    #[arg(long, value_name = "FILE", conflicts_with_all = ["certificate_identity", "certificate_identity_regexp"])]
    key: Option<PathBuf>,
    #[command(flatten)]
    keyless: KeylessArgs,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(_global: &GlobalArgs, args: VerifyBlobArgs) -> anyhow::Result<ExitStatus> {
    let bundle = keyless::read_bounded(&args.bundle, "bundle")?;
    let file = std::fs::read(&args.file)
        .with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let name = args.file.display().to_string();
    let outcome = match &args.key {
        Some(key) => {
            let pem = keyless::read_bounded(key, "public key")?;
            let root = keyless::trusted_root(args.keyless.trusted_root.as_deref())?;
            keyless::verify_with_key(
                &bundle,
                Subject::Blob(&file),
                &pem,
                &key.display().to_string(),
                &root,
            )
            .map(|v| {
                let line = format!("Verified OK: `{name}` signed with `{}`", v.identity);
                (line, serde_json::to_value(&v).unwrap_or_default())
            })
        }
        None => {
            let (policy, root) = args.keyless.policy_and_root()?;
            keyless::verify_keyless(&bundle, Subject::Blob(&file), &policy, &root).map(|v| {
                let line = format!(
                    "Verified OK: `{name}` signed by {} (issuer {}){}",
                    v.identity,
                    v.issuer.as_deref().unwrap_or_default(),
                    v.integrated_time
                        .as_deref()
                        .map(|t| format!(", logged at {t}"))
                        .unwrap_or_default()
                );
                (line, serde_json::to_value(&v).unwrap_or_default())
            })
        }
    };
    report_keyless(outcome, &name, args.output)
}
