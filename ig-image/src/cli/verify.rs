//! `ig-image verify`, and the policy flags `run` and `pull` share ([`PolicyArgs`]).

use anyhow::Context as _;
use clap::Args;
use gadget_store::{Reference, Store};
use ig_image::attest::verify::{predicate_types, verify_attestation as verify_attestation_in};
use ig_image::sign::policy::{self, Accepted, Policy};
use ig_image::sign::verify;
use ig_image::sign::{keyless, keys};
use oci_spec::image::Descriptor;
use std::path::PathBuf;

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
    registry: super::push::RegistryArgs,
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

/// The keyless flags of `verify`, `verify-blob`, `run` and `pull` (cosign's names).
#[derive(Debug, Clone, Default, Args)]
pub struct KeylessArgs {
    /// Keyless: the signer identity the Fulcio certificate must name (an email or a workflow URI)
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Keyless: a regular expression the whole certificate identity must match
    #[arg(long, value_name = "REGEX")]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless: the OIDC issuer of the certificate (GitHub Actions: https://token.actions.githubusercontent.com)
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// Keyless: a regular expression the whole OIDC issuer must match
    #[arg(long, value_name = "REGEX")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Keyless: a Sigstore trusted_root.json to verify against (default: the public-good production root built in); never fetched
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
}

impl KeylessArgs {
    /// Whether any identity flag was given.
    pub fn is_set(&self) -> bool {
        self.certificate_identity.is_some()
            || self.certificate_identity_regexp.is_some()
            || self.certificate_oidc_issuer.is_some()
            || self.certificate_oidc_issuer_regexp.is_some()
    }

    /// The identity policy and the trusted root.
    pub fn policy_and_root(
        &self,
    ) -> anyhow::Result<(keyless::IdentityPolicy, sigstore_trust_root::TrustedRoot)> {
        let policy = keyless::IdentityPolicy::new(
            self.certificate_identity.clone(),
            self.certificate_identity_regexp.clone(),
            self.certificate_oidc_issuer.clone(),
            self.certificate_oidc_issuer_regexp.clone(),
        )?;
        Ok((policy, keyless::trusted_root(self.trusted_root.as_deref())?))
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
    ig_image::registry::pull(
        &store,
        &client,
        reference,
        &credentials,
        None,
        &ig_image::registry::NoProgress,
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

/// One line saying which signature the policy verified (`run` and `pull` print it when
/// --public-keys verified one).
pub fn verification_line(accepted: &Accepted, colour: bool) -> Option<String> {
    accepted.verified.as_ref().map(|v| {
        format!(
            "{} {}@{}: {} signature by `{}`",
            output::paint("Verified", output::Paint::Good, colour),
            accepted.reference,
            accepted.digest,
            v.format,
            v.key
        )
    })
}

/// The same as JSON: `{"verified": bool, "signature": {...} | null}`.
pub fn verification_json(accepted: &Accepted) -> serde_json::Value {
    serde_json::json!({
        "verified": accepted.verified.is_some(),
        "signature": accepted.verified,
    })
}

/// The image policy flags of `run` and `pull` (docs/signing.md): flatten into a command's
/// args and call [`PolicyArgs::check`] before using the image.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Verify the image's signature with --public-keys (default when keys are given; `--verify-image=false` to skip)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub verify_image: Option<bool>,
    /// PEM public keys an image's signature must verify with, comma separated (`upstream` = upstream's key)
    #[arg(long, value_delimiter = ',', value_name = "FILE|upstream")]
    pub public_keys: Vec<String>,
    /// Only these images may be used: exact `repo:tag` / `repo@sha256:<digest>`, or prefixes ending in `*`
    #[arg(long, value_delimiter = ',', value_name = "REF|PREFIX*")]
    pub allowed_gadgets: Vec<String>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
}

impl PolicyArgs {
    /// The policy these flags describe.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        if self.verify_image == Some(true) && self.public_keys.is_empty() && !self.keyless.is_set()
        {
            anyhow::bail!(
                "--verify-image needs --public-keys\nhint: pass `--public-keys cosign.pub`, or `--public-keys upstream` for official gadgets"
            );
        }
        Ok(Policy {
            verify_image: self.verify_image.unwrap_or(true),
            public_keys: keys::load_public_keys(&self.public_keys)?,
            allowed_gadgets: self.allowed_gadgets.clone(),
        })
    }

    /// Applies the policy to `reference` in `store`; an error refuses the image.
    pub fn check(&self, store: &Store, reference: &Reference) -> anyhow::Result<Accepted> {
        let policy = self.policy()?;
        if !policy.verify_image && (!policy.public_keys.is_empty() || self.keyless.is_set()) {
            output::warning(format!(
                "not verifying the signature of `{}` (--verify-image=false)",
                reference.display()
            ));
        }
        if self.keyless.is_set() && policy.verify_image {
            let (identity, root) = self.keyless.policy_and_root()?;
            keyless::verify_image(store, reference, &identity, &root, None).map_err(|e| {
                anyhow::Error::new(e).context(format!(
                    "refusing `{}`: keyless signature verification failed\nhint: check `--certificate-identity` and `--certificate-oidc-issuer`, or pass `--verify-image=false` to use it knowingly",
                    reference.display()
                ))
            })?;
        }
        Ok(policy::check(store, reference, &policy)?)
    }

    /// For `pull`: what `reference` pointed at in `store` before pulling (to restore it when the
    /// pulled image is refused).
    pub fn before_pull(&self, store: &Store, reference: &Reference) -> Option<Descriptor> {
        reference.tag().and(store.resolve(reference).ok())
    }

    /// For `pull`: applies the policy to the image just pulled. When it is refused, the tag is
    /// put back to what it was before the pull (or removed, with the content only it reached),
    /// so a refused image is never left usable in the store; then the refusal is returned.
    pub fn check_pulled(
        &self,
        store: &Store,
        reference: &Reference,
        before: Option<Descriptor>,
    ) -> anyhow::Result<Accepted> {
        let refused = match self.check(store, reference) {
            Ok(accepted) => return Ok(accepted),
            Err(e) => e,
        };
        if reference.tag().is_some() {
            let undo = match before {
                Some(previous) => store.tag(reference, previous).map(drop),
                None => store.remove(reference).map(drop),
            };
            if let Err(e) = undo {
                output::warning(format!(
                    "the refused image is still tagged `{}`: {e}",
                    reference.display()
                ));
            }
        }
        Err(refused.context(format!(
            "pulled `{}` but refused it: its tag is back to what it was before the pull",
            reference.display()
        )))
    }
}
