//! Keyless verification of sigstore bundles, fully offline, against a pinned trusted root.
//!
//! The checks are sigstore-rust's (`sigstore-verify`, built without any HTTP or TUF code): the
//! Fulcio certificate chain at the signing time, the certificate's SCT, the Rekor entry (inclusion
//! proof with a signed checkpoint, or a signed entry timestamp), RFC 3161 timestamps when present,
//! then the signature and the artifact digest (for a DSSE envelope: the in-toto subject). Here: the
//! identity policy (`--certificate-identity[-regexp]`, `--certificate-oidc-issuer[-regexp]`), the
//! trusted root (a `trusted_root.json`, default the Sigstore public-good production root embedded
//! in the binary), and naming the step that failed. Never uses the network; fails closed.

use std::path::Path;

use regex::Regex;
use serde::Serialize;
use sigstore_trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};
use sigstore_types::{Artifact, Bundle, DerPublicKey, Sha256Hash};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy};

/// Largest bundle or trusted root read.
pub const MAX_DOCUMENT: u64 = 8 << 20;

/// Why keyless verification failed: the step, and sigstore's reason.
#[derive(Debug, thiserror::Error)]
pub enum KeylessError {
    /// A verification step refused the bundle.
    #[error("{step} failed: {reason}")]
    Step {
        /// Which check.
        step: &'static str,
        /// Why.
        reason: String,
    },
    /// The policy flags are incomplete or invalid.
    #[error("{0}")]
    Policy(String),
    /// A file could not be read or parsed.
    #[error("cannot read {what} `{path}`: {reason}")]
    Input {
        /// trusted root / bundle / key.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl KeylessError {
    /// Whether this is a verdict about the signature (exit 1) rather than bad input.
    pub fn is_verdict(&self) -> bool {
        matches!(self, KeylessError::Step { .. })
    }
}

/// Who must have signed: an identity (SAN) and an OIDC issuer, each exact or a regular
/// expression (matched against the whole value), as cosign's `--certificate-*` flags.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    identity: Option<String>,
    identity_regexp: Option<Regex>,
    issuer: Option<String>,
    issuer_regexp: Option<Regex>,
}

fn anchored(flag: &str, pattern: &str) -> Result<Regex, KeylessError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        KeylessError::Policy(format!(
            "`{flag} {pattern}` is not a regular expression: {e}"
        ))
    })
}

impl IdentityPolicy {
    /// A policy from the four flags. One identity flag and one issuer flag are required.
    pub fn new(
        identity: Option<String>,
        identity_regexp: Option<String>,
        issuer: Option<String>,
        issuer_regexp: Option<String>,
    ) -> Result<IdentityPolicy, KeylessError> {
        if identity.is_none() && identity_regexp.is_none() {
            return Err(KeylessError::Policy(
                "keyless verification needs `--certificate-identity` or `--certificate-identity-regexp` (who signed)".into(),
            ));
        }
        if issuer.is_none() && issuer_regexp.is_none() {
            return Err(KeylessError::Policy(
                "keyless verification needs `--certificate-oidc-issuer` or `--certificate-oidc-issuer-regexp` (e.g. https://token.actions.githubusercontent.com)".into(),
            ));
        }
        Ok(IdentityPolicy {
            identity_regexp: identity_regexp
                .map(|p| anchored("--certificate-identity-regexp", &p))
                .transpose()?,
            issuer_regexp: issuer_regexp
                .map(|p| anchored("--certificate-oidc-issuer-regexp", &p))
                .transpose()?,
            identity,
            issuer,
        })
    }
}

/// The trusted root: `path`, else the embedded Sigstore public-good production root.
pub fn trusted_root(path: Option<&Path>) -> Result<TrustedRoot, KeylessError> {
    let text = match path {
        None => SIGSTORE_PRODUCTION_TRUSTED_ROOT.to_owned(),
        Some(p) => read_bounded(p, "trusted root")?,
    };
    TrustedRoot::from_json(&text).map_err(|e| KeylessError::Input {
        what: "trusted root",
        path: path.map_or_else(|| "<embedded>".into(), |p| p.display().to_string()),
        reason: e.to_string(),
    })
}

/// Reads a text file of at most [`MAX_DOCUMENT`] bytes.
pub fn read_bounded(path: &Path, what: &'static str) -> Result<String, KeylessError> {
    let err = |reason: String| KeylessError::Input {
        what,
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_DOCUMENT {
        return Err(err(format!("larger than {MAX_DOCUMENT} bytes")));
    }
    std::fs::read_to_string(path).map_err(|e| err(e.to_string()))
}

/// What is being verified: the artifact bytes, or (for an image) its SHA-256.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// The whole artifact.
    Blob(&'a [u8]),
    /// A SHA-256 digest, hex.
    Sha256(&'a str),
}

/// A bundle that verified.
#[derive(Debug, Clone, Serialize)]
pub struct KeylessVerified {
    /// The certificate's identity (SAN), or the key for managed-key bundles.
    pub identity: String,
    /// The OIDC issuer, when keyless.
    pub issuer: Option<String>,
    /// The Rekor integrated time (RFC 3339), when the log was checked.
    pub integrated_time: Option<String>,
    /// Whether the transparency log entry was verified.
    pub tlog_verified: bool,
    /// How many authenticated times (log, RFC 3161) were used.
    pub verified_timestamps: usize,
}

fn step_of(error: &sigstore_verify::Error) -> &'static str {
    use sigstore_verify::Error as E;
    match error {
        E::IdentityMismatch { .. } | E::IssuerMismatch { .. } => "identity policy",
        E::SignatureInvalid(_) => "signature",
        E::ArtifactMismatch(_) => "digest",
        E::Certificate(c) => {
            if c.to_string().contains("certificate timestamp") {
                "SCT (certificate transparency)"
            } else {
                "Fulcio certificate chain at the signing time"
            }
        }
        E::TransparencyLog(_) => "Rekor entry (inclusion proof, checkpoint or SET)",
        E::Timestamp(_) => "RFC 3161 timestamp / signing time",
        E::InvalidTrustRoot(_) => "trusted root",
        E::InvalidBundle(_) | E::UnsupportedBundle(_) | E::UnsupportedArtifact(_) => "bundle",
        _ => "verification",
    }
}

fn parse_bundle(json: &str) -> Result<Bundle, KeylessError> {
    Bundle::from_json(json).map_err(|e| KeylessError::Step {
        step: "bundle",
        reason: e.to_string(),
    })
}

fn artifact(subject: Subject<'_>) -> Result<Artifact<'_>, KeylessError> {
    Ok(match subject {
        Subject::Blob(b) => Artifact::from(b),
        Subject::Sha256(hex) => {
            Artifact::from(Sha256Hash::from_hex(hex).map_err(|e| KeylessError::Step {
                step: "digest",
                reason: e.to_string(),
            })?)
        }
    })
}

/// Verifies a keyless bundle: every sigstore check, then `policy`.
pub fn verify_keyless(
    bundle_json: &str,
    subject: Subject<'_>,
    policy: &IdentityPolicy,
    root: &TrustedRoot,
) -> Result<KeylessVerified, KeylessError> {
    let bundle = parse_bundle(bundle_json)?;
    let mut sigstore_policy = VerificationPolicy::any_identity();
    if let Some(identity) = &policy.identity {
        sigstore_policy = sigstore_policy.require_identity(identity.as_str());
    }
    if let Some(issuer) = &policy.issuer {
        sigstore_policy = sigstore_policy.require_issuer(issuer.as_str());
    }
    let result = sigstore_verify::verify(artifact(subject)?, &bundle, &sigstore_policy, root)
        .map_err(|e| KeylessError::Step {
            step: step_of(&e),
            reason: e.to_string(),
        })?;
    let identity = result.identity().map(|i| i.as_str().to_owned());
    let issuer = result.issuer().map(str::to_owned);
    if let Some(re) = &policy.identity_regexp {
        if !identity.as_deref().is_some_and(|i| re.is_match(i)) {
            return Err(KeylessError::Step {
                step: "identity policy",
                reason: format!(
                    "the certificate identity {identity:?} does not match /{}/",
                    re.as_str()
                ),
            });
        }
    }
    if let Some(re) = &policy.issuer_regexp {
        if !issuer.as_deref().is_some_and(|i| re.is_match(i)) {
            return Err(KeylessError::Step {
                step: "identity policy",
                reason: format!(
                    "the certificate OIDC issuer {issuer:?} does not match /{}/",
                    re.as_str()
                ),
            });
        }
    }
    Ok(KeylessVerified {
        identity: identity.unwrap_or_default(),
        issuer,
        integrated_time: result.integrated_time().map(|t| t.to_string()),
        tlog_verified: result.tlog_verified(),
        verified_timestamps: result.verified_timestamps().len(),
    })
}

/// Verifies a managed-key bundle (`cosign sign-blob --key` with a transparency-log entry)
/// with the PEM public key `key_pem` (named `key_name` in the result).
pub fn verify_with_key(
    bundle_json: &str,
    subject: Subject<'_>,
    key_pem: &str,
    key_name: &str,
    root: &TrustedRoot,
) -> Result<KeylessVerified, KeylessError> {
    let bundle = parse_bundle(bundle_json)?;
    let key = DerPublicKey::from_pem(key_pem).map_err(|e| KeylessError::Input {
        what: "public key",
        path: key_name.to_owned(),
        reason: e.to_string(),
    })?;
    let result = sigstore_verify::verify(
        artifact(subject)?,
        &bundle,
        &PublicKeyVerificationPolicy::new(key),
        root,
    )
    .map_err(|e| KeylessError::Step {
        step: step_of(&e),
        reason: e.to_string(),
    })?;
    Ok(KeylessVerified {
        identity: key_name.to_owned(),
        issuer: None,
        integrated_time: result.integrated_time().map(|t| t.to_string()),
        tlog_verified: result.tlog_verified(),
        verified_timestamps: result.verified_timestamps().len(),
    })
}

/// A keyless signature (or attestation) of an image that verified.
#[derive(Debug, Clone, Serialize)]
pub struct ImageVerified {
    /// The image, normalized.
    pub reference: String,
    /// Its index digest.
    pub digest: String,
    /// The bundle referrer manifest.
    pub signature_manifest: String,
    /// What the bundle proved.
    #[serde(flatten)]
    pub verified: KeylessVerified,
}

/// Verifies `reference`'s bundle referrers in `store` keylessly: each bundle's certificate,
/// log entry, timestamps and identity, then its DSSE statement's subject against the index
/// digest. `predicate_types`: the attestation types wanted, or `None` for an image signature
/// (`https://sigstore.dev/cosign/sign/v1`). One good bundle is enough; otherwise the first
/// bundle's failure (with its step) is returned. Offline.
pub fn verify_image(
    store: &gadget_store::Store,
    reference: &gadget_store::Reference,
    policy: &IdentityPolicy,
    root: &TrustedRoot,
    predicate_types: Option<&[String]>,
) -> Result<ImageVerified, KeylessError> {
    use super::cosign::{BUNDLE, COSIGN_SIGN_PREDICATE, SignatureFormat};
    use super::verify::{announced_predicate_type, find_signatures, layers_of, read_layer};
    let store_err = |e: gadget_store::StoreError| KeylessError::Input {
        what: "image",
        path: reference.display(),
        reason: e.to_string(),
    };
    let (digest, candidates) = store
        .transaction(|tx| {
            let subject = tx.resolve(reference)?;
            let digest = gadget_store::Digest::try_from(subject.digest()).map_err(|e| {
                gadget_store::StoreError::InvalidEntry {
                    name: reference.full(),
                    path: tx.store().path().join("index.json"),
                    reason: e.to_string(),
                }
            })?;
            let candidates = find_signatures(tx, reference, &digest);
            Ok::<_, gadget_store::StoreError>((digest, candidates))
        })
        .map_err(store_err)?;
    let wanted: Vec<String> = predicate_types.map_or_else(
        || vec![COSIGN_SIGN_PREDICATE.to_owned()],
        <[String]>::to_vec,
    );
    let mut first_failure = None;
    for c in candidates
        .iter()
        .filter(|c| c.format == SignatureFormat::Bundle)
    {
        if announced_predicate_type(&c.doc).is_some_and(|t| !wanted.iter().any(|w| w == t)) {
            continue;
        }
        let Ok(layers) = layers_of(&c.doc, BUNDLE) else {
            continue;
        };
        for layer in layers {
            let outcome = read_layer(store, layer)
                .map_err(|reason| KeylessError::Step {
                    step: "bundle",
                    reason,
                })
                .and_then(|data| {
                    String::from_utf8(data).map_err(|_| KeylessError::Step {
                        step: "bundle",
                        reason: "not UTF-8".into(),
                    })
                })
                .and_then(|json| {
                    let verified = verify_keyless(&json, Subject::Sha256(digest.hex()), policy, root)?;
                    // Verified: only now is the statement's type read.
                    let statement_type = statement_type(&json);
                    if !wanted.iter().any(|w| Some(w.as_str()) == statement_type.as_deref()) {
                        return Err(KeylessError::Step {
                            step: "predicate type",
                            reason: format!("the bundle's statement is of type {statement_type:?}, not {wanted:?}"),
                        });
                    }
                    Ok(verified)
                });
            match outcome {
                Ok(verified) => {
                    return Ok(ImageVerified {
                        reference: reference.full(),
                        digest: digest.to_string(),
                        signature_manifest: c.manifest.to_string(),
                        verified,
                    });
                }
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| KeylessError::Step {
        step: "finding a bundle",
        reason: format!(
            "`{}` ({digest}) has no sigstore bundle of {wanted:?} in the store",
            reference.display()
        ),
    }))
}

/// The `predicateType` of a bundle's DSSE in-toto statement.
fn statement_type(bundle_json: &str) -> Option<String> {
    use base64::Engine as _;
    let bundle: serde_json::Value = serde_json::from_str(bundle_json).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str()?)
        .ok()?;
    let statement: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    statement["predicateType"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    // A real bundle from Sigstore's public-good instance (cosign v3 `sign-blob`, keyless, GitHub
    // login), with its artifact: testdata/sigstore/SOURCE.md.
    const BUNDLE: &str = include_str!("testdata/sigstore/cosign-v3-blob.sigstore.json");
    const ARTIFACT: &[u8] = include_bytes!("testdata/sigstore/cosign-v3-blob.txt");
    const IDENTITY: &str = "w.vollprecht@gmail.com";
    const ISSUER: &str = "https://github.com/login/oauth";

    fn policy(identity: &str) -> IdentityPolicy {
        IdentityPolicy::new(Some(identity.into()), None, Some(ISSUER.into()), None).unwrap()
    }

    fn step(e: KeylessError) -> &'static str {
        match e {
            KeylessError::Step { step, .. } => step,
            other => panic!("not a step failure: {other}"),
        }
    }

    #[test]
    fn a_real_public_good_bundle_verifies_offline_with_the_embedded_root() {
        let root = trusted_root(None).unwrap();
        let v = verify_keyless(BUNDLE, Subject::Blob(ARTIFACT), &policy(IDENTITY), &root).unwrap();
        assert_eq!(v.identity, IDENTITY);
        assert_eq!(v.issuer.as_deref(), Some(ISSUER));
        assert!(v.tlog_verified);
        assert!(v.verified_timestamps >= 1);
        // The same by digest, and with regular expressions.
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ARTIFACT));
        let re = IdentityPolicy::new(
            None,
            Some(r".*@gmail\.com".into()),
            None,
            Some(r"https://github\.com/.*".into()),
        )
        .unwrap();
        verify_keyless(BUNDLE, Subject::Sha256(&digest), &re, &root).unwrap();
    }

    #[test]
    fn another_identity_is_refused_at_the_identity_policy() {
        let root = trusted_root(None).unwrap();
        let e = verify_keyless(
            BUNDLE,
            Subject::Blob(ARTIFACT),
            &policy("mallory@example.com"),
            &root,
        )
        .unwrap_err();
        assert_eq!(step(e), "identity policy");
        let re = IdentityPolicy::new(None, Some(r"gmail\.com".into()), Some(ISSUER.into()), None)
            .unwrap();
        // Anchored: a substring is not a match.
        let e = verify_keyless(BUNDLE, Subject::Blob(ARTIFACT), &re, &root).unwrap_err();
        assert_eq!(step(e), "identity policy");
    }

    #[test]
    fn a_tampered_artifact_is_refused() {
        let root = trusted_root(None).unwrap();
        let mut altered = ARTIFACT.to_vec();
        altered.push(b'!');
        let e =
            verify_keyless(BUNDLE, Subject::Blob(&altered), &policy(IDENTITY), &root).unwrap_err();
        assert!(matches!(step(e), "digest" | "signature"));
    }

    #[test]
    fn a_bad_inclusion_proof_is_refused_at_the_log_step() {
        let root = trusted_root(None).unwrap();
        let mut bundle: Value = serde_json::from_str(BUNDLE).unwrap();
        let hashes =
            &mut bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"];
        // Two proof hashes swapped: valid encoding, wrong path to the root.
        let first = hashes[0].clone();
        hashes[0] = hashes[1].clone();
        hashes[1] = first;
        let e = verify_keyless(
            &bundle.to_string(),
            Subject::Blob(ARTIFACT),
            &policy(IDENTITY),
            &root,
        )
        .unwrap_err();
        let step = step(e);
        assert!(step.starts_with("Rekor entry"), "{step}");
    }

    #[test]
    fn a_certificate_authority_expired_before_the_signing_time_is_refused() {
        // The Fulcio CAs of a pinned root end before the certificate was issued (2025-12-03):
        // the chain is not valid at the signing time.
        let mut root: Value = serde_json::from_str(SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
        for ca in root["certificateAuthorities"].as_array_mut().unwrap() {
            ca["validFor"]["end"] = Value::from("2025-01-01T00:00:00Z");
        }
        let root = TrustedRoot::from_json(&root.to_string()).unwrap();
        let e =
            verify_keyless(BUNDLE, Subject::Blob(ARTIFACT), &policy(IDENTITY), &root).unwrap_err();
        assert_eq!(step(e), "Fulcio certificate chain at the signing time");
    }

    #[test]
    fn a_root_without_the_log_key_is_refused() {
        let mut root: Value = serde_json::from_str(SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
        root["tlogs"] = Value::Array(Vec::new());
        let Ok(root) = TrustedRoot::from_json(&root.to_string()) else {
            return; // refused as a root: also fail-closed
        };
        assert!(verify_keyless(BUNDLE, Subject::Blob(ARTIFACT), &policy(IDENTITY), &root).is_err());
    }

    #[test]
    fn policies_need_an_identity_and_an_issuer() {
        assert!(IdentityPolicy::new(None, None, Some(ISSUER.into()), None).is_err());
        assert!(IdentityPolicy::new(Some(IDENTITY.into()), None, None, None).is_err());
        assert!(IdentityPolicy::new(None, Some("(".into()), Some(ISSUER.into()), None).is_err());
    }
}
