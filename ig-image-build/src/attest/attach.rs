//! Attaching attestations to an image in the store, as OCI 1.1 referrers of its index (never
//! inside the index, so the image's digest does not change):
//!
//! - plain: a manifest with `artifactType` = the document's media type (`application/spdx+json`
//!   for the SBOM, `application/vnd.in-toto+json` for an in-toto statement), config the OCI
//!   empty descriptor, one layer holding the document, `subject` the index. What
//!   `oras attach` writes and SBOM tools look for.
//! - signed (with a key): a sigstore bundle v0.3 referrer whose DSSE envelope carries the
//!   in-toto statement, annotated `dev.sigstore.bundle.predicateType`, as `cosign attest
//!   --new-bundle-format` stores it.
//!
//! Both go through [`cosign::store_referrer`], where signatures are stored too, so `push`,
//! `pull`, `export` and `import` carry them the same way.

use gadget_facts::media_types::{IN_TOTO_PREDICATE_TYPE, SPDX_JSON};
use gadget_store::{Digest, Transaction};
use oci_spec::image::Descriptor;
use serde::Serialize;
use serde_json::{Value, json};

use gadget_facts::media_types as mt;
use ig_image_sign::cosign::{self, BUNDLE, EMPTY, EMPTY_BLOB, IN_TOTO_STATEMENT};
use ig_image_sign::keys::PrivateKey;

/// One attestation to attach.
#[derive(Debug, Clone)]
pub struct Document {
    /// What it is (`sbom`, `provenance`, or a user's predicate type), for reports.
    pub kind: String,
    /// The in-toto predicate type.
    pub predicate_type: String,
    /// The plain referrer (media type and exact bytes), if one is attached.
    pub plain: Option<(String, Vec<u8>)>,
    /// The in-toto statement to sign, as exact bytes.
    pub statement: Vec<u8>,
}

/// What was attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Attached {
    /// `sbom`, `provenance`, or the predicate type.
    pub kind: String,
    /// The referrer's `artifactType`.
    pub artifact_type: String,
    /// The predicate type.
    pub predicate_type: String,
    /// The referrer manifest's digest.
    pub manifest: String,
    /// Whether it is a signed sigstore bundle.
    pub signed: bool,
    /// False when the same referrer was already there.
    pub added: bool,
}

/// An in-toto statement (canonical JSON) about `digest` in `repository`.
pub fn statement(
    repository: &str,
    digest: &Digest,
    predicate_type: &str,
    predicate: Value,
) -> Vec<u8> {
    let doc = json!({
        "_type": IN_TOTO_STATEMENT,
        "subject": [{"name": repository, "digest": {"sha256": digest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    gadget_store::to_canonical_json(&doc).unwrap_or_default()
}

fn subject_json(subject: &Descriptor) -> Value {
    json!({
        "mediaType": subject.media_type().to_string(),
        "size": subject.size(),
        "digest": subject.digest().to_string(),
    })
}

/// Attaches `docs` to `subject` (the image index) in the transaction: each plain form, and a
/// signed bundle of each statement when `key` is given. `created` annotates plain referrers.
pub fn attach(
    tx: &mut Transaction<'_>,
    subject: &Descriptor,
    docs: &[Document],
    key: Option<&PrivateKey>,
    created: &str,
) -> Result<Vec<Attached>, AttachError> {
    let subject_json = subject_json(subject);
    let mut out = Vec::new();
    for doc in docs {
        if let Some((media_type, bytes)) = &doc.plain {
            let layer_digest = tx
                .write_blob(bytes)
                .map_err(AttachError::store(&doc.kind))?;
            tx.write_blob(EMPTY_BLOB)
                .map_err(AttachError::store(&doc.kind))?;
            let mut annotations = json!({mt::CREATED: created});
            if media_type != SPDX_JSON {
                annotations[IN_TOTO_PREDICATE_TYPE] = Value::from(doc.predicate_type.clone());
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": mt::MANIFEST,
                "artifactType": media_type,
                "config": {
                    "mediaType": EMPTY,
                    "size": EMPTY_BLOB.len(),
                    "digest": Digest::of(EMPTY_BLOB).as_str(),
                },
                "layers": [{
                    "mediaType": media_type,
                    "size": bytes.len(),
                    "digest": layer_digest.as_str(),
                }],
                "subject": subject_json,
                "annotations": annotations,
            });
            let (digest, added) = cosign::store_referrer(tx, &manifest, media_type)
                .map_err(AttachError::store(&doc.kind))?;
            out.push(Attached {
                kind: doc.kind.clone(),
                artifact_type: media_type.clone(),
                predicate_type: doc.predicate_type.clone(),
                manifest: digest.to_string(),
                signed: false,
                added,
            });
        }
        if let Some(key) = key {
            let bundle =
                cosign::dsse_bundle(key, &doc.statement).map_err(|source| AttachError::Sign {
                    kind: doc.kind.clone(),
                    source,
                })?;
            let manifest =
                cosign::write_bundle_referrer(tx, &bundle, &subject_json, &doc.predicate_type)
                    .map_err(AttachError::store(&doc.kind))?;
            let (digest, added) = cosign::store_referrer(tx, &manifest, BUNDLE)
                .map_err(AttachError::store(&doc.kind))?;
            out.push(Attached {
                kind: doc.kind.clone(),
                artifact_type: BUNDLE.to_string(),
                predicate_type: doc.predicate_type.clone(),
                manifest: digest.to_string(),
                signed: true,
                added,
            });
        }
    }
    Ok(out)
}

/// Why attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The store could not be written.
    #[error("cannot store the {kind} attestation")]
    Store {
        /// Which attestation.
        kind: String,
        /// Why.
        #[source]
        source: gadget_store::StoreError,
    },
    /// The key could not sign.
    #[error("cannot sign the {kind} attestation")]
    Sign {
        /// Which attestation.
        kind: String,
        /// Why.
        #[source]
        source: ig_image_sign::keys::KeyError,
    },
}

impl AttachError {
    fn store(kind: &str) -> impl FnOnce(gadget_store::StoreError) -> AttachError {
        let kind = kind.to_owned();
        move |source| AttachError::Store { kind, source }
    }
}

/// Why `attest` failed.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The image is not in the store, or the store failed.
    #[error("cannot find `{reference}` in the store")]
    Store {
        /// The image.
        reference: String,
        /// Why.
        #[source]
        source: gadget_store::StoreError,
    },
    /// The predicate is not a JSON document.
    #[error("the predicate `{path}` is not JSON: {reason}")]
    Predicate {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Attaching failed.
    #[error(transparent)]
    Attach(#[from] AttachError),
}

impl From<gadget_store::StoreError> for AttestError {
    fn from(source: gadget_store::StoreError) -> Self {
        AttestError::Store {
            reference: String::new(),
            source,
        }
    }
}

/// Largest predicate `attest` accepts.
pub const MAX_PREDICATE: usize = 16 << 20;

/// `ig-image attest`: signs an in-toto statement of `predicate_type` with `predicate` (JSON
/// bytes, read from `predicate_path`) about `reference`'s index digest, and attaches it as a
/// sigstore bundle referrer, as `cosign attest --new-bundle-format --key` does.
pub fn attest_image(
    store: &gadget_store::Store,
    reference: &gadget_store::Reference,
    predicate_path: &str,
    predicate: &[u8],
    predicate_type: &str,
    key: &PrivateKey,
) -> Result<Attached, AttestError> {
    let bad = |reason: String| AttestError::Predicate {
        path: predicate_path.to_owned(),
        reason,
    };
    if predicate.len() > MAX_PREDICATE {
        return Err(bad(format!(
            "it is {} bytes, more than the {MAX_PREDICATE} accepted",
            predicate.len()
        )));
    }
    let value: Value = serde_json::from_slice(predicate).map_err(|e| bad(e.to_string()))?;
    store.transaction(|tx| {
        let subject = tx.resolve(reference).map_err(|source| AttestError::Store {
            reference: reference.display(),
            source,
        })?;
        let digest = Digest::try_from(subject.digest()).map_err(|e| AttestError::Store {
            reference: reference.display(),
            source: gadget_store::StoreError::InvalidEntry {
                name: reference.full(),
                path: tx.store().path().join("index.json"),
                reason: e.to_string(),
            },
        })?;
        let doc = Document {
            kind: predicate_type.to_owned(),
            predicate_type: predicate_type.to_owned(),
            plain: None,
            statement: statement(&reference.name(), &digest, predicate_type, value),
        };
        let created = crate::image::assemble::created_timestamp().unwrap_or_default();
        let mut attached = attach(
            tx,
            &subject,
            std::slice::from_ref(&doc),
            Some(key),
            &created,
        )?;
        Ok(attached.remove(0))
    })
}
