//! Verifying an image's cosign signatures in the local store.
//!
//! Every signature of the image's index digest is tried, in this order: the legacy signature
//! under the bare tag `sha256-<hex>.sig` (where upstream `ig` keeps it), then the same under the
//! `<repository>:sha256-<hex>.sig` tags earlier versions wrote (the image's own repository
//! first), then referrers (manifests whose `subject` is the index, listed in `index.json`
//! directly or inside a `sha256-<hex>` referrers-tag index): OCI 1.1 simple-signing referrers
//! and sigstore bundles. Other referrers (notation signatures, attestations) are passed over.
//!
//! For each signature the bytes are checked with the keys **before** anything in the signed
//! payload is parsed; only a payload that verifies is read, and its digest must equal the index
//! digest. One good signature is enough. When none is good the most telling reason is returned:
//! a verified signature for another digest, else signatures that no key verifies, else
//! malformed signatures, else no signature at all. Fails closed. No network.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gadget_store::graph::Children;
use gadget_store::{Digest, Reference, Store, StoreError, Transaction};
use serde::Serialize;
use serde_json::Value;

use super::cosign::{
    BUNDLE, COSIGN_SIG_ARTIFACT, COSIGN_SIGN_PREDICATE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
    SIMPLE_SIGNING_TYPE, SignatureFormat, pae,
};
use super::keys::NamedKey;

/// Payloads, bundles and manifests larger than this are not signatures.
const MAX_DOCUMENT: u64 = 4 << 20;
/// At most this many documents are examined while looking for referrers.
const MAX_WALK: usize = 100_000;
use gadget_store::media_types::{INDEX, MANIFEST};

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The image, normalized.
    pub reference: String,
    /// Its index digest (what the signature covers).
    pub digest: String,
    /// The format of the signature that verified.
    pub format: SignatureFormat,
    /// The key that verified it (a path, or `upstream`).
    pub key: String,
    /// The digest of the signature manifest.
    pub signature_manifest: String,
}

/// Why the signatures (or attestations) of an image could not even be looked at: an
/// operational failure, not a verdict about the image.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No key to verify with.
    #[error("no public key given")]
    NoKeys,
    /// The image or the store could not be read.
    #[error("cannot read `{reference}` from the store")]
    Store {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
}

/// Why an image does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No key, or the store could not be read.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// No signature of the index digest in the store.
    #[error("`{reference}` ({digest}) is not signed: no signature of it in the store")]
    NoSignature {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
    },
    /// Signatures exist but none verifies with the keys.
    #[error(
        "no signature of `{reference}` ({digest}) verifies with {keys}: {count} signature(s) found, made with another key or over altered content"
    )]
    NotVerified {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
        /// The keys tried.
        keys: String,
        /// How many signatures were checked.
        count: usize,
    },
    /// A signature verifies, but for another digest.
    #[error(
        "digest mismatch: a {format} signature of `{reference}` verifies with `{key}` but it signs `{signed}`, not the image's index digest {digest}"
    )]
    DigestMismatch {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
        /// The digest the signed payload names.
        signed: String,
        /// The key that verified the signature.
        key: String,
        /// The signature's format.
        format: SignatureFormat,
    },
    /// Only malformed signatures.
    #[error("malformed signature for `{reference}` ({digest}): {reason}")]
    Malformed {
        /// The image.
        reference: String,
        /// Its index digest.
        digest: String,
        /// What is wrong with the first one.
        reason: String,
    },
}

impl VerifyError {
    /// Whether this is a verdict about the image (exit 1) rather than an operational failure.
    pub fn is_verdict(&self) -> bool {
        !matches!(self, VerifyError::Lookup(_))
    }
}

/// What one signature amounted to.
#[derive(Debug)]
pub(crate) enum Finding {
    Good { key: String },
    Mismatch { key: String, signed: String },
    NotVerified,
    Malformed(String),
}

/// A signature (or attestation) manifest found in the store.
pub(crate) struct Candidate {
    pub(crate) format: SignatureFormat,
    pub(crate) manifest: Digest,
    pub(crate) doc: Value,
}

/// Verifies `reference` in `store` with `keys` (see the module docs).
pub fn verify(
    store: &Store,
    reference: &Reference,
    keys: &[NamedKey],
) -> Result<Verified, VerifyError> {
    let name = reference.display();
    let (digest, candidates, ()) = signed_candidates(store, reference, keys, |_, _| ())?;

    let mut findings: Vec<(SignatureFormat, Digest, Finding)> = Vec::new();
    // Bundles announcing another predicate type are attestations, not image signatures.
    let signatures = candidates
        .iter()
        .filter(|c| announced_predicate_type(&c.doc).is_none_or(|t| t == COSIGN_SIGN_PREDICATE));
    for c in signatures {
        let found = match c.format {
            SignatureFormat::Legacy | SignatureFormat::Oci11 => {
                check_simple_signing(store, &c.doc, &digest, keys)
            }
            SignatureFormat::Bundle => check_bundle(store, &c.doc, &digest, keys),
        };
        for f in found {
            if let Finding::Good { key } = &f {
                return Ok(Verified {
                    reference: reference.full(),
                    digest: digest.to_string(),
                    format: c.format,
                    key: key.clone(),
                    signature_manifest: c.manifest.to_string(),
                });
            }
            findings.push((c.format, c.manifest.clone(), f));
        }
    }

    let digest_s = digest.to_string();
    if let Some((format, _, Finding::Mismatch { key, signed })) = findings
        .iter()
        .find(|(_, _, f)| matches!(f, Finding::Mismatch { .. }))
    {
        return Err(VerifyError::DigestMismatch {
            reference: name,
            digest: digest_s,
            signed: signed.clone(),
            key: key.clone(),
            format: *format,
        });
    }
    let not_verified = findings
        .iter()
        .filter(|(_, _, f)| matches!(f, Finding::NotVerified))
        .count();
    if not_verified > 0 {
        return Err(VerifyError::NotVerified {
            reference: name,
            digest: digest_s,
            keys: key_names(keys),
            count: not_verified,
        });
    }
    if let Some((format, manifest, Finding::Malformed(reason))) = findings.first() {
        return Err(VerifyError::Malformed {
            reference: name,
            digest: digest_s,
            reason: format!("{format} signature manifest {manifest}: {reason}"),
        });
    }
    Err(VerifyError::NoSignature {
        reference: name,
        digest: digest_s,
    })
}

/// The image's index digest and every signature candidate of it in the store (with `also`'s
/// findings about that digest), read in one store transaction; no keys is an error before
/// anything is read.
pub(crate) fn signed_candidates<T>(
    store: &Store,
    reference: &Reference,
    keys: &[NamedKey],
    also: impl FnOnce(&Transaction<'_>, &Digest) -> T,
) -> Result<(Digest, Vec<Candidate>, T), LookupError> {
    if keys.is_empty() {
        return Err(LookupError::NoKeys);
    }
    store
        .transaction(|tx| {
            let subject = tx.resolve(reference)?;
            let digest =
                Digest::try_from(subject.digest()).map_err(|e| StoreError::InvalidEntry {
                    name: reference.full(),
                    path: tx.store().path().join("index.json"),
                    reason: e.to_string(),
                })?;
            let extra = also(tx, &digest);
            let candidates = find_signatures(tx, reference, &digest);
            Ok::<_, StoreError>((digest, candidates, extra))
        })
        .map_err(|source| LookupError::Store {
            reference: reference.display(),
            source,
        })
}

/// The keys tried, as an error names them: `` `a.pub`, `b.pub` ``.
pub(crate) fn key_names(keys: &[NamedKey]) -> String {
    keys.iter()
        .map(|k| format!("`{}`", k.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_doc(tx: &Transaction<'_>, desc: &Value) -> Option<(Digest, Value)> {
    let digest = Digest::parse(desc.get("digest")?.as_str()?).ok()?;
    if desc
        .get("size")
        .and_then(Value::as_u64)
        .is_some_and(|s| s > MAX_DOCUMENT)
    {
        return None;
    }
    let data = tx.read_blob(&digest).ok()?;
    if data.len() as u64 > MAX_DOCUMENT {
        return None;
    }
    let doc = serde_json::from_slice(&data).ok()?;
    Some((digest, doc))
}

/// Every signature manifest of `digest` in the store, legacy tags first.
pub(crate) fn find_signatures(
    tx: &Transaction<'_>,
    reference: &Reference,
    digest: &Digest,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    // The bare tag first, then the forms earlier versions wrote (own repository first).
    let legacy = tx.signature_tags(digest, ".sig", &reference.name());
    let mut seen = BTreeSet::new();
    for t in legacy {
        let desc = serde_json::to_value(&t.descriptor).unwrap_or(Value::Null);
        if let Some((manifest, doc)) = read_doc(tx, &desc) {
            if seen.insert(manifest.clone()) {
                out.push(Candidate {
                    format: SignatureFormat::Legacy,
                    manifest,
                    doc,
                });
            }
        } else if let Ok(manifest) = Digest::try_from(t.descriptor.digest()) {
            // Listed but unreadable: a malformed signature, reported as such.
            out.push(Candidate {
                format: SignatureFormat::Legacy,
                manifest,
                doc: Value::Null,
            });
        }
    }

    // Referrers: every manifest reachable from index.json through indexes whose subject is
    // the image (as the checker and registries' referrers-tag indexes list them).
    let mut stack: Vec<Value> = tx.raw_entries().to_vec();
    let mut visited = BTreeSet::new();
    while let Some(desc) = stack.pop() {
        if visited.len() >= MAX_WALK {
            break;
        }
        let media_type = desc
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(MANIFEST);
        if media_type != INDEX && media_type != MANIFEST {
            continue;
        }
        let Some((doc_digest, doc)) = read_doc(tx, &desc) else {
            continue;
        };
        if !visited.insert(doc_digest.clone()) {
            continue;
        }
        let is_index =
            media_type == INDEX || doc.get("mediaType").and_then(Value::as_str) == Some(INDEX);
        if is_index {
            stack.extend(Children::of(&doc).manifests.into_iter().cloned());
            continue;
        }
        let subject = doc
            .get("subject")
            .and_then(|s| s.get("digest"))
            .and_then(Value::as_str);
        if subject != Some(digest.as_str()) || seen.contains(&doc_digest) {
            continue;
        }
        let artifact_type = doc.get("artifactType").and_then(Value::as_str);
        let config_type = Children::of(&doc)
            .config
            .and_then(|c| c.get("mediaType"))
            .and_then(Value::as_str);
        let format = if artifact_type == Some(BUNDLE) {
            SignatureFormat::Bundle
        } else if artifact_type == Some(COSIGN_SIG_ARTIFACT)
            || config_type == Some(COSIGN_SIG_ARTIFACT)
        {
            SignatureFormat::Oci11
        } else {
            continue;
        };
        seen.insert(doc_digest.clone());
        out.push(Candidate {
            format,
            manifest: doc_digest,
            doc,
        });
    }
    // Stable order: legacy first (already), then OCI 1.1, then bundles.
    out.sort_by_key(|c| match c.format {
        SignatureFormat::Legacy => 0,
        SignatureFormat::Oci11 => 1,
        SignatureFormat::Bundle => 2,
    });
    out
}

/// The layers of `media_type` in a manifest, or why there are none.
pub(crate) fn layers_of<'d>(doc: &'d Value, media_type: &str) -> Result<Vec<&'d Value>, String> {
    if !doc.get("layers").is_some_and(Value::is_array) {
        return Err("not a readable manifest with `layers`".to_string());
    }
    let wanted: Vec<&Value> = Children::of(doc)
        .layers
        .into_iter()
        .filter(|l| l.get("mediaType").and_then(Value::as_str) == Some(media_type))
        .collect();
    if wanted.is_empty() {
        return Err(format!("no `{media_type}` layer"));
    }
    Ok(wanted)
}

/// Reads a layer's blob (verified against its digest), bounded in size.
pub(crate) fn read_layer(store: &Store, layer: &Value) -> Result<Vec<u8>, String> {
    let digest = layer
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| Digest::parse(d).ok())
        .ok_or_else(|| "a layer has no valid digest".to_string())?;
    if layer
        .get("size")
        .and_then(Value::as_u64)
        .is_none_or(|s| s > MAX_DOCUMENT)
    {
        return Err(format!("layer {digest} has no size or is too large"));
    }
    store
        .read_blob(&digest)
        .map_err(|e| format!("layer {digest} cannot be read: {e}"))
}

fn first_key<'k>(keys: &'k [NamedKey], message: &[u8], signature: &[u8]) -> Option<&'k NamedKey> {
    keys.iter().find(|k| k.key.verify(message, signature))
}

/// A JSON object member matched case-insensitively (Go's encoding/json does so).
fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn check_simple_signing(
    store: &Store,
    doc: &Value,
    digest: &Digest,
    keys: &[NamedKey],
) -> Vec<Finding> {
    let layers = match layers_of(doc, SIMPLE_SIGNING) {
        Ok(l) => l,
        Err(reason) => return vec![Finding::Malformed(reason)],
    };
    layers
        .into_iter()
        .map(|layer| {
            let Some(sig_b64) = layer
                .get("annotations")
                .and_then(|a| a.get(SIGNATURE_ANNOTATION))
                .and_then(Value::as_str)
            else {
                return Finding::Malformed(format!(
                    "a layer has no `{SIGNATURE_ANNOTATION}` annotation"
                ));
            };
            let Ok(signature) = B64.decode(sig_b64.trim()) else {
                return Finding::Malformed(format!(
                    "the `{SIGNATURE_ANNOTATION}` annotation is not base64"
                ));
            };
            let payload = match read_layer(store, layer) {
                Ok(p) => p,
                Err(reason) => return Finding::Malformed(reason),
            };
            // The signature first; the payload is parsed only once a key vouches for it.
            let Some(key) = first_key(keys, &payload, &signature) else {
                return Finding::NotVerified;
            };
            let Ok(json) = serde_json::from_slice::<Value>(&payload) else {
                return Finding::Malformed("the signed payload is not JSON".into());
            };
            let critical = get_ci(&json, "critical");
            let kind = critical
                .and_then(|c| get_ci(c, "type"))
                .and_then(Value::as_str);
            if kind != Some(SIMPLE_SIGNING_TYPE) {
                return Finding::Malformed(format!(
                    "the signed payload's `critical.type` is {kind:?}, not `{SIMPLE_SIGNING_TYPE}`"
                ));
            }
            let signed = critical
                .and_then(|c| get_ci(c, "image"))
                .and_then(|i| get_ci(i, "docker-manifest-digest"))
                .and_then(Value::as_str);
            match signed {
                Some(s) if s == digest.as_str() => Finding::Good {
                    key: key.name.clone(),
                },
                Some(s) => Finding::Mismatch {
                    key: key.name.clone(),
                    signed: s.to_string(),
                },
                None => Finding::Malformed(
                    "the signed payload has no `critical.image.docker-manifest-digest`".into(),
                ),
            }
        })
        .collect()
}

/// Opens one bundle layer: its DSSE envelope's signature over the pre-authentication encoding
/// is checked with the keys **first**; only a statement a key vouches for is parsed. Returns
/// the key's name and the in-toto statement, or what the layer amounts to.
pub(crate) fn open_bundle(
    store: &Store,
    layer: &Value,
    keys: &[NamedKey],
) -> Result<(String, Value), Finding> {
    let data = read_layer(store, layer).map_err(Finding::Malformed)?;
    let bundle = serde_json::from_slice::<Value>(&data)
        .map_err(|_| Finding::Malformed("the bundle is not JSON".into()))?;
    let envelope = bundle
        .get("dsseEnvelope")
        .ok_or_else(|| Finding::Malformed("the bundle has no `dsseEnvelope`".into()))?;
    let payload_type = envelope
        .get("payloadType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(Ok(payload)) = envelope
        .get("payload")
        .and_then(Value::as_str)
        .map(|p| B64.decode(p))
    else {
        return Err(Finding::Malformed(
            "the DSSE envelope has no base64 `payload`".into(),
        ));
    };
    let signatures: Vec<Vec<u8>> = envelope
        .get("signatures")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|s| s.get("sig")?.as_str())
                .filter_map(|s| B64.decode(s).ok())
                .collect()
        })
        .unwrap_or_default();
    if signatures.is_empty() {
        return Err(Finding::Malformed(
            "the DSSE envelope has no base64 signature".into(),
        ));
    }
    let message = pae(payload_type, &payload);
    let key = signatures
        .iter()
        .find_map(|sig| first_key(keys, &message, sig))
        .ok_or(Finding::NotVerified)?;
    let statement = serde_json::from_slice::<Value>(&payload)
        .map_err(|_| Finding::Malformed("the signed in-toto statement is not JSON".into()))?;
    Ok((key.name.clone(), statement))
}

/// Whether a verified in-toto statement names `digest` as a subject: `Good`, else `Mismatch`
/// with the first subject, else `Malformed`.
pub(crate) fn check_subject(statement: &Value, digest: &Digest, key: String) -> Finding {
    let subjects: Vec<&str> = statement
        .get("subject")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|s| s.get("digest")?.get("sha256")?.as_str())
                .collect()
        })
        .unwrap_or_default();
    if subjects.contains(&digest.hex()) {
        Finding::Good { key }
    } else if let Some(first) = subjects.first() {
        Finding::Mismatch {
            key,
            signed: format!("sha256:{first}"),
        }
    } else {
        Finding::Malformed("the signed in-toto statement has no sha256 subject".into())
    }
}

fn check_bundle(store: &Store, doc: &Value, digest: &Digest, keys: &[NamedKey]) -> Vec<Finding> {
    let layers = match layers_of(doc, BUNDLE) {
        Ok(l) => l,
        Err(reason) => return vec![Finding::Malformed(reason)],
    };
    layers
        .into_iter()
        .map(|layer| {
            let (key, statement) = match open_bundle(store, layer, keys) {
                Ok(opened) => opened,
                Err(finding) => return finding,
            };
            // An attestation (SBOM, provenance) is signed too, but it is not an image signature.
            let predicate_type = statement.get("predicateType").and_then(Value::as_str);
            if predicate_type.is_some_and(|t| t != COSIGN_SIGN_PREDICATE) {
                return Finding::Malformed(format!(
                    "the bundle holds an attestation of type {predicate_type:?}, not an image signature (`{COSIGN_SIGN_PREDICATE}`)"
                ));
            }
            check_subject(&statement, digest, key)
        })
        .collect()
}

/// The predicate type a bundle referrer manifest announces (`dev.sigstore.bundle.predicateType`),
/// if any: an unsigned hint for skipping attestations of other types.
pub(crate) fn announced_predicate_type(doc: &Value) -> Option<&str> {
    doc.get("annotations")?
        .get(gadget_facts::media_types::SIGSTORE_PREDICATE_TYPE)?
        .as_str()
}

impl gadget_store::hint::Hint for VerifyError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            VerifyError::Lookup(LookupError::NoKeys) => {
                "pass `--public-keys cosign.pub` (or `upstream` for official gadgets)".to_string()
            }
            VerifyError::NoSignature { reference, .. } => format!(
                "sign it with `ig-image sign {reference} --key cosign.key`, or pull it with its signatures"
            ),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign;
    use crate::keys::{PrivateKey, PublicKey};
    use gadget_store::signatures::{referrers_tag, signature_tag};
    use oci_spec::image::MediaType;
    use serde_json::json;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        image: Reference,
        key: PrivateKey,
        keys: Vec<NamedKey>,
    }

    fn named(key: &PublicKey, name: &str) -> NamedKey {
        NamedKey {
            name: name.into(),
            key: key.clone(),
        }
    }

    /// A store with a tiny image index tagged `localhost:5000/g/img:v1`.
    fn fixture(tag: &str, content: &[u8]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let image = Reference::parse(tag).unwrap();
        store
            .transaction(|tx| {
                let blob = tx.write_blob(content)?;
                tx.write_blob(b"{}")?;
                let manifest = tx.write_json(
                    MediaType::ImageManifest,
                    &json!({"schemaVersion": 2, "mediaType": MANIFEST,
                        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": Digest::of(b"{}").as_str()},
                        "layers": [{"mediaType": "application/octet-stream", "size": content.len(), "digest": blob.as_str()}]}),
                )?;
                let index = tx.write_json(
                    MediaType::ImageIndex,
                    &json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest]}),
                )?;
                tx.tag(&image, index)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let key = PrivateKey::generate_p256();
        let keys = vec![named(&key.public_key(), "cosign.pub")];
        Fixture {
            _dir: dir,
            store,
            image,
            key,
            keys,
        }
    }

    #[test]
    fn every_format_verifies_and_only_with_the_right_key() {
        let other = vec![named(
            &PrivateKey::generate_p256().public_key(),
            "other.pub",
        )];
        for format in [
            SignatureFormat::Legacy,
            SignatureFormat::Oci11,
            SignatureFormat::Bundle,
        ] {
            let f = fixture("localhost:5000/g/img:v1", b"content");
            assert!(matches!(
                verify(&f.store, &f.image, &f.keys),
                Err(VerifyError::NoSignature { .. })
            ));
            let report = cosign::sign(&f.store, &f.image, &f.key, format).unwrap();
            assert!(report.added);
            let ok = verify(&f.store, &f.image, &f.keys).unwrap();
            assert_eq!(ok.format, format);
            assert_eq!(ok.key, "cosign.pub");
            let err = verify(&f.store, &f.image, &other).unwrap_err();
            assert!(
                matches!(err, VerifyError::NotVerified { count: 1, .. }),
                "{format}: {err}"
            );
            assert!(err.is_verdict());
            // Signing again with the same key changes nothing.
            let again = cosign::sign(&f.store, &f.image, &f.key, format).unwrap();
            assert!(!again.added, "{format}");
            assert_eq!(again.signature_manifest, report.signature_manifest);
        }
    }

    #[test]
    fn legacy_signatures_append_layers() {
        let f = fixture("localhost:5000/g/img:v1", b"content");
        let second = PrivateKey::generate_p256();
        cosign::sign(&f.store, &f.image, &f.key, SignatureFormat::Legacy).unwrap();
        let report = cosign::sign(&f.store, &f.image, &second, SignatureFormat::Legacy).unwrap();
        let manifest: Value = f
            .store
            .read_json(&Digest::parse(&report.signature_manifest).unwrap())
            .unwrap();
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
        let config: Value = f
            .store
            .read_json(&Digest::parse(manifest["config"]["digest"].as_str().unwrap()).unwrap())
            .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        for key in [&f.key, &second] {
            verify(&f.store, &f.image, &[named(&key.public_key(), "k")]).unwrap();
        }
    }

    #[test]
    fn a_signature_for_another_digest_is_a_mismatch() {
        let f = fixture("localhost:5000/g/img:v1", b"content");
        let other = Reference::parse("localhost:5000/g/other:v1").unwrap();
        // Another image in the same store, signed; its .sig manifest copied under our digest.
        f.store
            .transaction(|tx| {
                let d = tx.resolve(&f.image)?;
                let blob = tx.write_blob(b"{}")?;
                let _ = blob;
                let index = tx.write_json(
                    MediaType::ImageIndex,
                    &json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [], "annotations": {"x": "y"}}),
                )?;
                tx.tag(&other, index)?;
                let _ = d;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let report = cosign::sign(&f.store, &other, &f.key, SignatureFormat::Legacy).unwrap();
        let ours = f.store.resolve(&f.image).unwrap();
        let ours = Digest::try_from(ours.digest()).unwrap();
        f.store
            .transaction(|tx| {
                let sig = tx.find_tag(report.tag.as_ref().unwrap()).unwrap();
                tx.tag_bare(&signature_tag(&ours), sig.descriptor)
            })
            .unwrap();
        let err = verify(&f.store, &f.image, &f.keys).unwrap_err();
        assert!(matches!(err, VerifyError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("digest mismatch"), "{err}");
    }

    #[test]
    fn a_tampered_payload_does_not_verify() {
        let f = fixture("localhost:5000/g/img:v1", b"content");
        let report = cosign::sign(&f.store, &f.image, &f.key, SignatureFormat::Legacy).unwrap();
        let tag = report.tag.clone().unwrap();
        let manifest: Value = f
            .store
            .read_json(&Digest::parse(&report.signature_manifest).unwrap())
            .unwrap();
        let payload_digest =
            Digest::parse(manifest["layers"][0]["digest"].as_str().unwrap()).unwrap();
        let payload = f.store.read_blob(&payload_digest).unwrap();
        let tampered = String::from_utf8(payload)
            .unwrap()
            .replace("\"optional\":null", "\"optional\":{\"a\":\"b\"}");
        f.store
            .transaction(|tx| {
                let d = tx.write_blob(tampered.as_bytes())?;
                let mut m = manifest.clone();
                m["layers"][0]["digest"] = d.as_str().into();
                m["layers"][0]["size"] = tampered.len().into();
                let desc = tx.write_json(MediaType::ImageManifest, &m)?;
                tx.tag_bare(&tag, desc)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let err = verify(&f.store, &f.image, &f.keys).unwrap_err();
        assert!(matches!(err, VerifyError::NotVerified { .. }), "{err}");
    }

    #[test]
    fn malformed_signatures_are_reported() {
        let f = fixture("localhost:5000/g/img:v1", b"content");
        let report = cosign::sign(&f.store, &f.image, &f.key, SignatureFormat::Legacy).unwrap();
        let tag = report.tag.clone().unwrap();
        let manifest: Value = f
            .store
            .read_json(&Digest::parse(&report.signature_manifest).unwrap())
            .unwrap();
        f.store
            .transaction(|tx| {
                let mut m = manifest.clone();
                m["layers"][0]["annotations"][SIGNATURE_ANNOTATION] = "%%%".into();
                let desc = tx.write_json(MediaType::ImageManifest, &m)?;
                tx.tag_bare(&tag, desc)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let err = verify(&f.store, &f.image, &f.keys).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
    }

    #[test]
    fn a_retagged_image_finds_its_signature_in_the_other_repository() {
        let f = fixture("localhost:5000/g/img:v1", b"content");
        cosign::sign(&f.store, &f.image, &f.key, SignatureFormat::Legacy).unwrap();
        let copy = Reference::parse("elsewhere.example/x/img:v2").unwrap();
        let d = f.store.resolve(&f.image).unwrap();
        f.store.tag(&copy, d).unwrap();
        verify(&f.store, &copy, &f.keys).unwrap();
    }

    #[test]
    fn payload_keys_are_matched_case_insensitively() {
        let v: Value =
            serde_json::from_str(r#"{"Critical":{"Image":{"Docker-manifest-digest":"sha256:x"}}}"#)
                .unwrap();
        let d = get_ci(&v, "critical")
            .and_then(|c| get_ci(c, "image"))
            .and_then(|i| get_ci(i, "docker-manifest-digest"));
        assert_eq!(d, Some(&Value::from("sha256:x")));
    }

    /// The entries of `index.json` as (ref name or "", digest).
    fn entries(store: &Store) -> Vec<(String, String)> {
        let raw: Value =
            serde_json::from_slice(&std::fs::read(store.path().join("index.json")).unwrap())
                .unwrap();
        raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["annotations"]["org.opencontainers.image.ref.name"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    e["digest"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn signatures_are_stored_under_bare_tags() {
        for format in [
            SignatureFormat::Legacy,
            SignatureFormat::Oci11,
            SignatureFormat::Bundle,
        ] {
            let f = fixture("localhost:5000/g/img:v1", b"content");
            let report = cosign::sign(&f.store, &f.image, &f.key, format).unwrap();
            let digest = Digest::parse(&report.digest).unwrap();
            let names: Vec<String> = entries(&f.store).into_iter().map(|e| e.0).collect();
            let (bare, absent) = match format {
                SignatureFormat::Legacy => (signature_tag(&digest), referrers_tag(&digest)),
                _ => (referrers_tag(&digest), signature_tag(&digest)),
            };
            assert!(names.contains(&bare), "{format}: {names:?}");
            assert!(!names.contains(&absent), "{format}: {names:?}");
            assert!(
                !names.iter().any(|n| n.contains(":sha256-")),
                "{format}: {names:?}"
            );
            if format != SignatureFormat::Legacy {
                // The referrers index lists the signature manifest with its artifact type.
                let index = f
                    .store
                    .transaction(|tx| Ok::<_, StoreError>(tx.find_tag(&bare).unwrap()))
                    .unwrap();
                let index: Value = f
                    .store
                    .read_json(&Digest::try_from(index.descriptor.digest()).unwrap())
                    .unwrap();
                assert_eq!(
                    index["manifests"][0]["digest"],
                    report.signature_manifest.as_str()
                );
                let expected = if format == SignatureFormat::Bundle {
                    BUNDLE
                } else {
                    COSIGN_SIG_ARTIFACT
                };
                assert_eq!(index["manifests"][0]["artifactType"], expected);
            }
        }
    }

    #[test]
    fn a_signature_in_the_earlier_layout_verifies_and_moves_to_the_bare_tag() {
        let f = fixture("localhost:5000/g/img:v1", b"content");
        let report = cosign::sign(&f.store, &f.image, &f.key, SignatureFormat::Legacy).unwrap();
        let digest = Digest::parse(&report.digest).unwrap();
        let old = f.image.with_tag(&signature_tag(&digest)).unwrap();
        // Rewrite the store as earlier versions left it: `<repository>:sha256-<hex>.sig`.
        f.store
            .transaction(|tx| {
                let sig = tx.untag_name(report.tag.as_ref().unwrap()).unwrap();
                tx.tag(&old, sig)
            })
            .unwrap();
        verify(&f.store, &f.image, &f.keys).unwrap();

        // Another key signs: both signatures end up under the bare tag, the old tag is gone.
        let second = PrivateKey::generate_p256();
        let report = cosign::sign(&f.store, &f.image, &second, SignatureFormat::Legacy).unwrap();
        let names: Vec<String> = entries(&f.store).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&signature_tag(&digest)), "{names:?}");
        assert!(!names.contains(&old.full()), "{names:?}");
        let manifest: Value = f
            .store
            .read_json(&Digest::parse(&report.signature_manifest).unwrap())
            .unwrap();
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
        for key in [&f.key, &second] {
            verify(&f.store, &f.image, &[named(&key.public_key(), "k")]).unwrap();
        }
    }
}
