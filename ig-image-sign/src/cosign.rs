//! The cosign signature formats, as stored in the local OCI layout, and signing.
//!
//! Three formats (spec §1a-1c), all signing the image's index digest:
//!
//! - [`SignatureFormat::Legacy`] (the default, what official gadgets use): the bare tag
//!   `sha256-<hex>.sig` (no repository, where upstream `ig` copies and looks for it; see
//!   [`gadget_store::signatures`]) on an OCI image manifest whose config is a small
//!   image config (`application/vnd.oci.image.config.v1+json`) and whose layers are
//!   `application/vnd.dev.cosign.simplesigning.v1+json` blobs holding the simple-signing payload,
//!   each annotated `dev.cosignproject.cosign/signature` = base64 of the DER signature. Signing
//!   again appends a layer (an identical signature is not added twice). Upstream `ig` reads only
//!   the first layer; cosign reads all. A signature stored in the form earlier versions wrote
//!   (`<repository>:sha256-<hex>.sig`) is merged into the bare tag and its old tag removed.
//! - [`SignatureFormat::Oci11`] (`cosign sign --registry-referrers-mode=oci-1-1`): the same kind
//!   of layer in a manifest whose `artifactType` and `config.mediaType` are
//!   `application/vnd.dev.cosign.artifact.sig.v1+json`, with `subject` = the index descriptor.
//!   Stored as an untagged `index.json` entry (a referrer) and listed in the bare referrers
//!   index `sha256-<hex>` (the OCI referrers tag schema), where upstream `ig` looks.
//! - [`SignatureFormat::Bundle`] (`--new-bundle-format`): a referrer manifest with `artifactType`
//!   `application/vnd.dev.sigstore.bundle.v0.3+json`, config the OCI empty descriptor, one layer
//!   holding a sigstore bundle v0.3 whose DSSE envelope carries an in-toto statement about the
//!   index digest (predicate type `https://sigstore.dev/cosign/sign/v1`); the signature covers
//!   the DSSE pre-authentication encoding. Key-based and offline: no transparency-log entry.
//!   Stored like an OCI 1.1 signature.
//!
//! Documents are written with the store's canonical JSON; payloads are written as the exact
//! bytes that were signed. No network.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gadget_facts::media_types;
use gadget_store::signatures::signature_tag;
use gadget_store::{Digest, Reference, Store, StoreError};
use oci_spec::image::{Descriptor, MediaType};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::keys::{KeyError, PrivateKey};

/// Cosign's and sigstore's media types and annotation keys (defined in `gadget_facts`): the
/// simple-signing layer, its signature annotation, the OCI 1.1 signature artifact, the bundle.
pub use gadget_facts::media_types::{
    COSIGN_SIG_ARTIFACT, COSIGN_SIGNATURE as SIGNATURE_ANNOTATION,
    COSIGN_SIMPLE_SIGNING as SIMPLE_SIGNING, SIGSTORE_BUNDLE as BUNDLE,
};
/// Config media type of the legacy signature manifest; the OCI empty descriptor's media type.
pub use gadget_store::media_types::{EMPTY, IMAGE_CONFIG};
/// The OCI empty blob, `{}`.
pub const EMPTY_BLOB: &[u8] = b"{}";
/// `type` of a simple-signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// DSSE payload type of an in-toto statement.
pub use gadget_facts::media_types::IN_TOTO as IN_TOTO_PAYLOAD_TYPE;
/// In-toto statement type.
pub const IN_TOTO_STATEMENT: &str = "https://in-toto.io/Statement/v1";
/// Predicate type cosign uses for image signatures in bundles.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

use gadget_store::media_types::MANIFEST;

/// How a signature is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFormat {
    /// The `sha256-<hex>.sig` tag.
    Legacy,
    /// An OCI 1.1 referrer with a simple-signing layer.
    #[serde(rename = "oci-1-1")]
    Oci11,
    /// A sigstore bundle v0.3 referrer.
    Bundle,
}

impl fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureFormat::Legacy => "legacy",
            SignatureFormat::Oci11 => "oci-1-1",
            SignatureFormat::Bundle => "bundle",
        })
    }
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The store could not be read or written.
    #[error("cannot {action} in the store")]
    Store {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The existing `.sig` manifest cannot be extended.
    #[error("the signature manifest tagged `{tag}` is malformed: {reason}")]
    MalformedExisting {
        /// The signature tag.
        tag: String,
        /// What is wrong.
        reason: String,
    },
    /// The key could not sign.
    #[error("cannot sign `{reference}`")]
    Key {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: KeyError,
    },
    /// A document could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// The document.
        what: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<StoreError> for SignError {
    fn from(source: StoreError) -> Self {
        SignError::Store {
            action: "lock and read the index".into(),
            source,
        }
    }
}

/// What [`sign`] did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    /// The image as given, normalized.
    pub reference: String,
    /// The signed (index) digest.
    pub digest: String,
    /// The format written.
    pub format: SignatureFormat,
    /// The digest of the signature manifest.
    pub signature_manifest: String,
    /// The tag of the signature manifest (legacy format only).
    pub tag: Option<String>,
    /// The signing key's id (`sha256:` of its DER public key).
    pub key_id: String,
    /// False when the very same signature was already there (nothing changed).
    pub added: bool,
}

/// The simple-signing payload cosign signs: the docker reference (repository) and the digest.
pub fn simple_signing_payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    #[derive(Serialize)]
    struct Payload<'a> {
        critical: Critical<'a>,
        optional: Option<()>,
    }
    #[derive(Serialize)]
    struct Critical<'a> {
        identity: Identity<'a>,
        image: Image<'a>,
        #[serde(rename = "type")]
        kind: &'a str,
    }
    #[derive(Serialize)]
    struct Identity<'a> {
        #[serde(rename = "docker-reference")]
        docker_reference: &'a str,
    }
    #[derive(Serialize)]
    struct Image<'a> {
        #[serde(rename = "docker-manifest-digest")]
        digest: &'a str,
    }
    let payload = Payload {
        critical: Critical {
            identity: Identity { docker_reference },
            image: Image {
                digest: digest.as_str(),
            },
            kind: SIMPLE_SIGNING_TYPE,
        },
        optional: None,
    };
    // Serializing plain structs of strings cannot fail.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The in-toto statement a bundle signature carries.
pub fn in_toto_statement(name: &str, digest: &Digest) -> Vec<u8> {
    let statement = json!({
        "_type": IN_TOTO_STATEMENT,
        "subject": [{"name": name, "digest": {"sha256": digest.hex()}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    });
    serde_json::to_vec(&statement).unwrap_or_default()
}

/// DSSE pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Signs the index digest `reference` resolves to in `store` with `key`, storing the signature
/// in `format` next to the image. Idempotent: the same key signing the same image again
/// changes nothing (ECDSA signatures here are deterministic, RFC 6979).
pub fn sign(
    store: &Store,
    reference: &Reference,
    key: &PrivateKey,
    format: SignatureFormat,
) -> Result<SignReport, SignError> {
    let key_id = key.public_key().key_id();
    store.transaction(|tx| {
        let subject = tx.resolve(reference).map_err(|source| SignError::Store {
            action: format!("find `{}`", reference.display()),
            source,
        })?;
        let digest = Digest::try_from(subject.digest()).map_err(|e| SignError::Encode {
            what: "the image digest".into(),
            reason: e.to_string(),
        })?;
        let signing_failed = |source| SignError::Key {
            reference: reference.display(),
            source,
        };
        let store_failed = |action: &str| {
            let action = action.to_owned();
            move |source| SignError::Store { action, source }
        };
        let subject_json = json!({
            "mediaType": subject.media_type().to_string(),
            "size": subject.size(),
            "digest": digest.as_str(),
        });
        let mut report = SignReport {
            reference: reference.full(),
            digest: digest.to_string(),
            format,
            signature_manifest: String::new(),
            tag: None,
            key_id: key_id.clone(),
            added: true,
        };
        match format {
            SignatureFormat::Legacy | SignatureFormat::Oci11 => {
                let payload = simple_signing_payload(&reference.name(), &digest);
                let signature = key.sign(&payload).map_err(signing_failed)?;
                let payload_digest = tx
                    .write_blob(&payload)
                    .map_err(store_failed("write the payload"))?;
                let layer = json!({
                    "mediaType": SIMPLE_SIGNING,
                    "size": payload.len(),
                    "digest": payload_digest.as_str(),
                    "annotations": {SIGNATURE_ANNOTATION: B64.encode(&signature)},
                });
                if format == SignatureFormat::Legacy {
                    tag_legacy_signature(tx, reference, &digest, layer, &mut report)?;
                } else {
                    tx.write_blob(EMPTY_BLOB)
                        .map_err(store_failed("write the empty config"))?;
                    let manifest = json!({
                        "schemaVersion": 2,
                        "mediaType": MANIFEST,
                        "artifactType": COSIGN_SIG_ARTIFACT,
                        "config": {
                            "mediaType": COSIGN_SIG_ARTIFACT,
                            "size": EMPTY_BLOB.len(),
                            "digest": Digest::of(EMPTY_BLOB).as_str(),
                        },
                        "layers": [layer],
                        "subject": subject_json,
                    });
                    report.added = add_referrer(tx, &manifest, COSIGN_SIG_ARTIFACT, &mut report)?;
                }
            }
            SignatureFormat::Bundle => {
                let statement = in_toto_statement(&reference.name(), &digest);
                let bundle_bytes = dsse_bundle(key, &statement).map_err(signing_failed)?;
                let manifest =
                    write_bundle_referrer(tx, &bundle_bytes, &subject_json, COSIGN_SIGN_PREDICATE)
                        .map_err(store_failed("write the bundle"))?;
                report.added = add_referrer(tx, &manifest, BUNDLE, &mut report)?;
            }
        }
        Ok(report)
    })
}

/// The legacy form: `layer` appended to the `<digest>.sig` tag's manifest (merged with the
/// forms earlier versions wrote, which are untagged), unless it is there already.
fn tag_legacy_signature(
    tx: &mut gadget_store::Transaction<'_>,
    reference: &Reference,
    digest: &Digest,
    layer: Value,
    report: &mut SignReport,
) -> Result<(), SignError> {
    let store_failed = |action: &str| {
        let action = action.to_owned();
        move |source| SignError::Store { action, source }
    };
    let tag = signature_tag(digest);
    // The bare tag's signatures, then those of the forms earlier versions
    // wrote (`<repository>:sha256-<hex>.sig`), which are merged in and untagged.
    let existing = tx.signature_tags(digest, ".sig", &reference.name());
    let mut layers: Vec<Value> = Vec::new();
    for t in &existing {
        for l in existing_layers(tx, &t.descriptor, &t.reference)? {
            if !layers.contains(&l) {
                layers.push(l);
            }
        }
    }
    report.added = !layers.contains(&layer);
    if report.added {
        layers.push(layer);
    }
    let config = legacy_config(&layers);
    let config_bytes = gadget_store::to_canonical_json(&config).map_err(|e| SignError::Encode {
        what: "the signature config".into(),
        reason: e.to_string(),
    })?;
    let config_digest = tx
        .write_blob(&config_bytes)
        .map_err(store_failed("write the signature config"))?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": IMAGE_CONFIG,
            "size": config_bytes.len(),
            "digest": config_digest.as_str(),
        },
        "layers": layers,
    });
    let desc = tx
        .write_json(MediaType::ImageManifest, &manifest)
        .map_err(store_failed("write the signature manifest"))?;
    report.signature_manifest = desc.digest().to_string();
    tx.tag_bare(&tag, desc)
        .map_err(store_failed("tag the signature"))?;
    for t in existing.iter().filter(|t| t.reference != tag) {
        tx.untag_name(&t.reference);
    }
    report.tag = Some(tag);
    Ok(())
}

/// A sigstore bundle v0.3 (key-based: a public-key hint, no transparency-log entry) holding a
/// DSSE envelope of the in-toto `statement`, signed by `key` over the DSSE pre-authentication
/// encoding. What `cosign sign|attest --new-bundle-format` stores.
pub fn dsse_bundle(key: &PrivateKey, statement: &[u8]) -> Result<Vec<u8>, KeyError> {
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement))?;
    let hint = B64.encode(Sha256::digest(key.public_key().to_spki_der()));
    let bundle = json!({
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": B64.encode(statement),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": B64.encode(&signature)}],
        },
    });
    // A tree of strings cannot fail to serialize.
    Ok(serde_json::to_vec(&bundle).unwrap_or_default())
}

/// Writes the bundle blob and the empty config, and returns the referrer manifest that holds
/// the bundle (`artifactType` bundle, `subject` the image, annotated with the predicate type as
/// cosign does). The manifest itself is not written: see [`store_referrer`].
pub fn write_bundle_referrer(
    tx: &mut gadget_store::Transaction<'_>,
    bundle: &[u8],
    subject: &Value,
    predicate_type: &str,
) -> Result<Value, StoreError> {
    let bundle_digest = tx.write_blob(bundle)?;
    tx.write_blob(EMPTY_BLOB)?;
    Ok(json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": BUNDLE,
        "config": {
            "mediaType": EMPTY,
            "size": EMPTY_BLOB.len(),
            "digest": Digest::of(EMPTY_BLOB).as_str(),
        },
        "layers": [{
            "mediaType": BUNDLE,
            "size": bundle.len(),
            "digest": bundle_digest.as_str(),
        }],
        "subject": subject,
        "annotations": {
            (media_types::SIGSTORE_BUNDLE_CONTENT): "dsse-envelope",
            (media_types::SIGSTORE_PREDICATE_TYPE): predicate_type,
        },
    }))
}

/// Writes a referrer manifest and lists it next to its subject in the store: an untagged
/// `index.json` entry carrying its `artifactType`, and an entry of the subject's bare referrers
/// index `sha256-<hex>`, where upstream `ig` looks. Returns the manifest's digest and whether
/// it is new. Every referrer (signatures, attestations, SBOMs) is stored through here.
pub fn store_referrer(
    tx: &mut gadget_store::Transaction<'_>,
    manifest: &Value,
    artifact_type: &str,
) -> Result<(Digest, bool), StoreError> {
    let mut desc = tx.write_json(MediaType::ImageManifest, manifest)?;
    desc.set_artifact_type(Some(MediaType::from(artifact_type)));
    let digest = Digest::try_from(desc.digest()).map_err(|e| StoreError::InvalidEntry {
        name: artifact_type.to_owned(),
        path: tx.store().path().join("index.json"),
        reason: e.to_string(),
    })?;
    let subject = manifest
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(Value::as_str)
        .and_then(|d| Digest::parse(d).ok());
    let added = match subject {
        Some(subject) => tx.add_referrer(&subject, &desc)?,
        None => tx.add_untagged(&desc)?,
    };
    Ok((digest, added))
}

/// [`store_referrer`] for a signature, filling the report.
fn add_referrer(
    tx: &mut gadget_store::Transaction<'_>,
    manifest: &Value,
    artifact_type: &str,
    report: &mut SignReport,
) -> Result<bool, SignError> {
    let (digest, added) =
        store_referrer(tx, manifest, artifact_type).map_err(|source| SignError::Store {
            action: "write the signature manifest and list it in index.json".into(),
            source,
        })?;
    report.signature_manifest = digest.to_string();
    Ok(added)
}

/// The layers of an existing legacy signature manifest (tagged `tag`), to append to.
fn existing_layers(
    tx: &gadget_store::Transaction<'_>,
    existing: &Descriptor,
    tag: &str,
) -> Result<Vec<Value>, SignError> {
    let malformed = |reason: String| SignError::MalformedExisting {
        tag: tag.to_owned(),
        reason,
    };
    let digest = Digest::try_from(existing.digest()).map_err(|e| malformed(e.to_string()))?;
    let doc: Value = tx
        .read_json(&digest)
        .map_err(|e| malformed(e.to_string()))?;
    let layers = doc
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("it has no `layers`".into()))?;
    if let Some(bad) = layers
        .iter()
        .find(|l| l.get("mediaType").and_then(Value::as_str) != Some(SIMPLE_SIGNING))
    {
        return Err(malformed(format!(
            "a layer has media type {} (expected `{SIMPLE_SIGNING}`)",
            bad.get("mediaType").unwrap_or(&Value::Null)
        )));
    }
    Ok(layers.clone())
}

/// The image config cosign's signature images carry (go-containerregistry's empty image with
/// one `diff_ids` and `history` entry per layer).
fn legacy_config(layers: &[Value]) -> Value {
    let diff_ids: Vec<Value> = layers
        .iter()
        .map(|l| l.get("digest").cloned().unwrap_or(Value::Null))
        .collect();
    let history: Vec<Value> = layers
        .iter()
        .map(|_| json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    })
}

impl gadget_store::hint::Hint for SignError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            SignError::MalformedExisting { tag, .. } => {
                format!("remove it with `ig-image remove {tag}` and sign again")
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
    fn payload_is_cosigns_simple_signing_document() {
        let digest = Digest::of(b"x");
        let payload = simple_signing_payload("ghcr.io/a/b", &digest);
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"ghcr.io/a/b"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn legacy_tag_is_bare() {
        let d = Digest::of(b"i");
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }
}
