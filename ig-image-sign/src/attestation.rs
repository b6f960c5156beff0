//! `verify --attestation TYPE`: finds the signed attestations (sigstore bundle referrers) of an
//! image's index digest in the store and checks them in this order: the DSSE envelope's
//! signature with the keys (before anything in the payload is read), then the statement's
//! predicate type, then its subject digest against the index digest. One good attestation is
//! enough; otherwise the most telling reason is returned. Unsigned (plain) attestations never
//! verify. Fails closed. No network.

use gadget_facts::media_types::{
    IN_TOTO_PREDICATE_TYPE, SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02, SPDX_JSON, SPDX_PREDICATE,
};
use gadget_store::{Digest, Reference, Store};
use serde::Serialize;
use serde_json::Value;

use crate::cosign::{BUNDLE, SignatureFormat};
use crate::keys::NamedKey;
use crate::verify::{
    Finding, LookupError, announced_predicate_type, check_subject, key_names, layers_of,
    open_bundle, signed_candidates,
};

/// cosign's `--type` names and the predicate types they stand for (the first is what `attest`
/// writes). `slsaprovenance` accepts both SLSA versions when verifying.
const TYPE_NAMES: &[(&str, &[&str])] = &[
    (
        "slsaprovenance",
        &[
            SLSA_PROVENANCE_V1,
            SLSA_PROVENANCE_V02,
            "https://slsa.dev/provenance/v0.1",
        ],
    ),
    ("slsaprovenance1", &[SLSA_PROVENANCE_V1]),
    ("slsaprovenance02", &[SLSA_PROVENANCE_V02]),
    ("spdx", &[SPDX_PREDICATE]),
    ("spdxjson", &[SPDX_PREDICATE]),
    ("cyclonedx", &["https://cyclonedx.org/bom"]),
    ("link", &["https://in-toto.io/Link/v1"]),
    ("vuln", &["https://cosign.sigstore.dev/attestation/vuln/v1"]),
    ("openvex", &["https://openvex.dev/ns"]),
    ("custom", &["https://cosign.sigstore.dev/attestation/v1"]),
];

/// The predicate types `name` (a cosign `--type` name or a URI) stands for.
pub fn predicate_types(name: &str) -> Result<Vec<String>, String> {
    if name.contains("://") {
        return Ok(vec![name.to_owned()]);
    }
    TYPE_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, types)| types.iter().map(|t| (*t).to_owned()).collect())
        .ok_or_else(|| {
            format!(
                "unknown attestation type `{name}`: use one of {} or a predicate type URI",
                TYPE_NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// An attestation that verified.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedAttestation {
    /// The image, normalized.
    pub reference: String,
    /// Its index digest (the statement's subject).
    pub digest: String,
    /// The statement's predicate type.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The key that verified the envelope.
    pub key: String,
    /// The bundle referrer manifest's digest.
    pub attestation_manifest: String,
    /// The verified predicate.
    pub predicate: Value,
}

/// Why no attestation verified.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    /// No key, or the store could not be read.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// No signed attestation of the type.
    #[error("`{reference}` ({digest}) has no signed `{wanted}` attestation{unsigned}")]
    NoAttestation {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
        /// The type asked for.
        wanted: String,
        /// A note on unsigned attestations found, or empty.
        unsigned: String,
    },
    /// Signed attestations exist but no key verifies them.
    #[error(
        "no `{wanted}` attestation of `{reference}` ({digest}) verifies with {keys}: {count} signed attestation(s) found, made with another key or over an altered payload"
    )]
    NotVerified {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
        /// The type asked for.
        wanted: String,
        /// The keys tried.
        keys: String,
        /// How many were checked.
        count: usize,
    },
    /// A verified attestation about another digest.
    #[error(
        "digest mismatch: a `{wanted}` attestation of `{reference}` verifies with `{key}` but its subject is `{signed}`, not the image's index digest {digest}"
    )]
    DigestMismatch {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
        /// The type asked for.
        wanted: String,
        /// The subject digest.
        signed: String,
        /// The key.
        key: String,
    },
    /// Only malformed attestations.
    #[error("malformed `{wanted}` attestation of `{reference}` ({digest}): {reason}")]
    Malformed {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
        /// The type asked for.
        wanted: String,
        /// What is wrong with the first.
        reason: String,
    },
}

impl AttestationError {
    /// Whether this is a verdict about the image (exit 1) rather than an operational failure.
    pub fn is_verdict(&self) -> bool {
        !matches!(self, AttestationError::Lookup(_))
    }
}

/// Verifies a `wanted` (type name or predicate type URI) attestation of `reference` with `keys`.
pub fn verify_attestation(
    store: &Store,
    reference: &Reference,
    keys: &[NamedKey],
    wanted: &str,
    types: &[String],
) -> Result<VerifiedAttestation, AttestationError> {
    let name = reference.display();
    let (digest, candidates, unsigned) =
        signed_candidates(store, reference, keys, |tx, digest| {
            count_plain(tx, digest, types)
        })?;

    let wanted_of = Wanted {
        reference,
        digest: &digest,
        types,
    };
    let findings = match first_verified(store, keys, &wanted_of, &candidates) {
        Ok(verified) => return Ok(verified),
        Err(findings) => findings,
    };
    Err(refusal(&findings, name, &digest, wanted, keys, unsigned))
}

/// What an attestation must be about: the image, its index digest, the predicate types.
struct Wanted<'a> {
    reference: &'a Reference,
    digest: &'a Digest,
    types: &'a [String],
}

/// The first bundle among `candidates` that verifies with one of `keys` and holds a statement
/// of a wanted type about the image's digest; else what was found wrong with each.
fn first_verified(
    store: &Store,
    keys: &[NamedKey],
    wanted: &Wanted<'_>,
    candidates: &[crate::verify::Candidate],
) -> Result<VerifiedAttestation, Vec<Finding>> {
    let (reference, digest, types) = (wanted.reference, wanted.digest, wanted.types);
    let mut findings = Vec::new();
    for c in candidates
        .iter()
        .filter(|c| c.format == SignatureFormat::Bundle)
    {
        // Skip bundles that announce another type (the announcement is not trusted: a
        // matching one is still checked in full).
        if announced_predicate_type(&c.doc).is_some_and(|t| !types.iter().any(|w| w == t)) {
            continue;
        }
        let layers = match layers_of(&c.doc, BUNDLE) {
            Ok(l) => l,
            Err(reason) => {
                findings.push(Finding::Malformed(reason));
                continue;
            }
        };
        for layer in layers {
            let (key, statement) = match open_bundle(store, layer, keys) {
                Ok(opened) => opened,
                Err(finding) => {
                    findings.push(finding);
                    continue;
                }
            };
            let predicate_type = statement
                .get("predicateType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !types.contains(&predicate_type) {
                // A verified statement of another type: not what was asked for.
                continue;
            }
            match check_subject(&statement, digest, key) {
                Finding::Good { key } => {
                    return Ok(VerifiedAttestation {
                        reference: reference.full(),
                        digest: digest.to_string(),
                        predicate_type,
                        key,
                        attestation_manifest: c.manifest.to_string(),
                        predicate: statement.get("predicate").cloned().unwrap_or(Value::Null),
                    });
                }
                other => findings.push(other),
            }
        }
    }
    Err(findings)
}

/// Why no attestation verified, from the findings: a digest mismatch first, then signatures
/// that do not verify, then a malformed attestation, else none at all (`unsigned`: plain
/// documents of the type).
fn refusal(
    findings: &[Finding],
    name: String,
    digest: &Digest,
    wanted: &str,
    keys: &[NamedKey],
    unsigned: usize,
) -> AttestationError {
    let digest_s = digest.to_string();
    if let Some(Finding::Mismatch { key, signed }) = findings
        .iter()
        .find(|f| matches!(f, Finding::Mismatch { .. }))
    {
        return AttestationError::DigestMismatch {
            reference: name,
            digest: digest_s,
            wanted: wanted.to_owned(),
            signed: signed.clone(),
            key: key.clone(),
        };
    }
    let not_verified = findings
        .iter()
        .filter(|f| matches!(f, Finding::NotVerified))
        .count();
    if not_verified > 0 {
        return AttestationError::NotVerified {
            reference: name,
            digest: digest_s,
            wanted: wanted.to_owned(),
            keys: key_names(keys),
            count: not_verified,
        };
    }
    if let Some(Finding::Malformed(reason)) = findings.first() {
        return AttestationError::Malformed {
            reference: name,
            digest: digest_s,
            wanted: wanted.to_owned(),
            reason: reason.clone(),
        };
    }
    AttestationError::NoAttestation {
        reference: name,
        digest: digest_s,
        wanted: wanted.to_owned(),
        unsigned: if unsigned > 0 {
            format!(" (only {unsigned} unsigned one(s), which do not verify)")
        } else {
            String::new()
        },
    }
}

/// How many plain (unsigned) referrers of `digest` hold a document of one of `types`.
fn count_plain(tx: &gadget_store::Transaction<'_>, digest: &Digest, types: &[String]) -> usize {
    let spdx = types.iter().any(|t| t == SPDX_PREDICATE);
    tx.raw_entries()
        .iter()
        .filter_map(|e| {
            let d = Digest::parse(e.get("digest")?.as_str()?).ok()?;
            let data = tx.read_blob(&d).ok()?;
            serde_json::from_slice::<Value>(&data).ok()
        })
        .filter(|doc| {
            doc.get("subject")
                .and_then(|s| s.get("digest"))
                .and_then(Value::as_str)
                == Some(digest.as_str())
        })
        .filter(|doc| {
            let artifact = doc.get("artifactType").and_then(Value::as_str);
            let announced = doc
                .get("annotations")
                .and_then(|a| a.get(IN_TOTO_PREDICATE_TYPE))
                .and_then(Value::as_str);
            (spdx && artifact == Some(SPDX_JSON))
                || announced.is_some_and(|a| types.iter().any(|t| t == a))
        })
        .count()
}

impl gadget_store::hint::Hint for AttestationError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            AttestationError::Lookup(LookupError::NoKeys) => "pass `--public-keys cosign.pub`".to_string(),
            AttestationError::NoAttestation { .. } => {
                "build with `--sbom --provenance --key cosign.key`, or attach one with `ig-image attest`".to_string()
            }
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_map_to_predicate_types() {
        assert_eq!(
            predicate_types("slsaprovenance").unwrap()[0],
            SLSA_PROVENANCE_V1
        );
        assert_eq!(predicate_types("spdx").unwrap(), vec![SPDX_PREDICATE]);
        assert_eq!(
            predicate_types("https://example.com/p/v1").unwrap(),
            vec!["https://example.com/p/v1"]
        );
        assert!(predicate_types("nonsense").is_err());
    }
}
