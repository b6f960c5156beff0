//! `ig-image verify` (the policy flags `run` and `pull` share are [`super::common::PolicyArgs`]).

use anyhow::Context as _;
use clap::Args;
use gadget_store::{Reference, Store};
use ig_image_sign::attestation::{predicate_types, verify_attestation as verify_attestation_in};
use ig_image_sign::verify;
use ig_image_sign::{keyless, keys};

use super::common::KeylessArgs;
use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Verify an image's cosign signature in the local store.
///
/// Legacy `.sig` tags, OCI 1.1 referrers and sigstore bundles are tried. A signature's bytes are
/// checked with the keys before its payload is read; then the signed digest must be the image's
/// index digest. Exit status 1 with the reason when no signature verifies (no signature, another
/// key, altered payload, digest mismatch, malformed), 2 on other errors.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ig-image verify trace_open:v1 --public-keys cosign.pub\n  \
ig-image verify trace_exec:v0.42.0 --public-keys upstream\n\n\
JSON (-o json): {\"verified\": true, \"reference\", \"digest\", \"format\", \"key\", \"signature_manifest\"},\n\
or {\"verified\": false, \"reference\", \"reason\"} (exit 1)\nDocs: docs/signing.md"
)]
pub struct VerifyArgs {
    /// The image to verify
    image: String,
    /// PEM public keys, comma separated; `upstream` is upstream Inspektor Gadget's key
    #[arg(
        long,
        required_unless_present_any = ["certificate_identity", "certificate_identity_regexp"],
        value_delimiter = ',',
        value_name = "FILE|upstream"
    )]
    public_keys: Vec<String>,
    #[command(flatten)]
    keyless: KeylessArgs,
    /// Verify a signed attestation of this type instead of the image signature: slsaprovenance,
    /// spdx, cyclonedx, vuln, custom, ... or a predicate type URI; `-o json` prints its predicate
    #[arg(long, value_name = "TYPE")]
    attestation: Option<String>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
    /// Verify the image as its registry serves it: fetch it with its signatures into a
    /// temporary store (the local store is neither read nor changed)
    #[arg(long)]
    remote: bool,
    #[command(flatten)]
    registry: super::common::RegistryArgs,
}

pub fn exec(global: &GlobalArgs, args: VerifyArgs) -> anyhow::Result<ExitStatus> {
    let reference = Reference::parse(&args.image)?;
    let keys = if args.keyless.is_set() {
        Vec::new()
    } else {
        keys::load_public_keys(&args.public_keys)?
    };
    let _remote_store; // keeps the temporary store of --remote alive
    let store = if args.remote {
        let (dir, store) = fetch_remote(&args, &reference)?;
        _remote_store = dir;
        store
    } else {
        global.open_store()?
    };
    if args.keyless.is_set() {
        let types = args
            .attestation
            .as_deref()
            .map(predicate_types)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let (policy, root) = args.keyless.policy_and_root()?;
        let outcome = keyless::verify_image(&store, &reference, &policy, &root, types.as_deref());
        return report_keyless(
            outcome.map(|v| {
                let line = format!(
                    "Verified {}@{}: keyless {} by {} (issuer {}) (bundle {})",
                    reference.display(),
                    v.digest,
                    args.attestation.as_deref().unwrap_or("signature"),
                    v.verified.identity,
                    v.verified.issuer.as_deref().unwrap_or_default(),
                    v.signature_manifest
                );
                (line, serde_json::to_value(&v).unwrap_or_default())
            }),
            &reference.full(),
            args.output,
        );
    }
    if let Some(wanted) = &args.attestation {
        return verify_attestation(&store, &reference, &keys, wanted, args.output);
    }
    match verify::verify(&store, &reference, &keys) {
        Ok(v) => {
            if args.output == Format::Columns {
                outln!(
                    "{} {}@{}: {} signature by `{}`",
                    output::paint("Verified", output::Paint::Good, output::colour_stdout()),
                    reference.display(),
                    v.digest,
                    v.format,
                    v.key
                );
            } else {
                let mut doc = serde_json::to_value(&v)?;
                doc["verified"] = true.into();
                output::print_data(&doc, args.output)?;
            }
            Ok(ExitStatus::Success)
        }
        Err(e) if e.is_verdict() => {
            if args.output != Format::Columns {
                let doc = serde_json::json!({
                    "reference": reference.full(),
                    "verified": false,
                    "reason": e.to_string().lines().next().unwrap_or_default(),
                });
                output::print_data(&doc, args.output)?;
            }
            output::print_error(
                &anyhow::Error::new(e)
                    .context(format!("`{}` failed verification", reference.display())),
            );
            Ok(ExitStatus::Failure)
        }
        Err(e) => Err(e).with_context(|| format!("cannot verify `{}`", args.image)),
    }
}

/// Prints a keyless verdict: the success line (with `-o json`: also the verified fields, such
/// as the certificate identity and issuer), or the failed step (exit 1); bad input is an error
/// (exit 2).
pub fn report_keyless(
    outcome: Result<(String, serde_json::Value), keyless::KeylessError>,
    subject: &str,
    format: Format,
) -> anyhow::Result<ExitStatus> {
    match outcome {
        Ok((line, fields)) => {
            if format == Format::Columns {
                outln!("{line}");
            } else {
                let mut doc =
                    serde_json::json!({"subject": subject, "verified": true, "message": line});
                if let (Some(doc), serde_json::Value::Object(fields)) =
                    (doc.as_object_mut(), fields)
                {
                    doc.extend(fields);
                }
                output::print_data(&doc, format)?;
            }
            Ok(ExitStatus::Success)
        }
        Err(e) if e.is_verdict() => {
            if format != Format::Columns {
                output::print_data(
                    &serde_json::json!({"subject": subject, "verified": false, "reason": e.to_string()}),
                    format,
                )?;
            }
            output::print_error(
                &anyhow::Error::new(e).context(format!("`{subject}` failed keyless verification")),
            );
            Ok(ExitStatus::Failure)
        }
        Err(e) => Err(e.into()),
    }
}

/// `verify --attestation TYPE`.
fn verify_attestation(
    store: &Store,
    reference: &Reference,
    keys: &[keys::NamedKey],
    wanted: &str,
    format: Format,
) -> anyhow::Result<ExitStatus> {
    let types = predicate_types(wanted).map_err(anyhow::Error::msg)?;
    match verify_attestation_in(store, reference, keys, wanted, &types) {
        Ok(v) => {
            if format == Format::Columns {
                outln!(
                    "Verified {}@{}: `{}` attestation by `{}` (referrer {})",
                    reference.display(),
                    v.digest,
                    v.predicate_type,
                    v.key,
                    v.attestation_manifest
                );
            } else {
                let mut doc = serde_json::to_value(&v)?;
                doc["verified"] = true.into();
                output::print_data(&doc, format)?;
            }
            Ok(ExitStatus::Success)
        }
        Err(e) if e.is_verdict() => {
            if format != Format::Columns {
                let doc = serde_json::json!({
                    "reference": reference.full(),
                    "attestation": wanted,
                    "verified": false,
                    "reason": e.to_string().lines().next().unwrap_or_default(),
                });
                output::print_data(&doc, format)?;
            }
            output::print_error(&anyhow::Error::new(e).context(format!(
                "`{}` failed verification of its `{wanted}` attestation",
                reference.display()
            )));
            Ok(ExitStatus::Failure)
        }
        Err(e) => Err(e).with_context(|| format!("cannot verify `{}`", reference.display())),
    }
}

/// Pulls `reference` with its signatures and referrers into a new temporary store.
fn fetch_remote(
    args: &VerifyArgs,
    reference: &Reference,
) -> anyhow::Result<(tempfile::TempDir, Store)> {
    let dir = tempfile::tempdir().context("cannot create a temporary store")?;
    let store = Store::open(dir.path().join("store"))?;
    let client = args.registry.client()?;
    let credentials = args.registry.credentials(reference.registry())?;
    ig_image_registry::pull(
        &store,
        &client,
        reference,
        &credentials,
        None,
        &ig_image_registry::NoProgress,
    )
    .with_context(|| {
        format!(
            "cannot fetch `{}` and its signatures from {}",
            reference.display(),
            reference.registry()
        )
    })?;
    Ok((dir, store))
}
