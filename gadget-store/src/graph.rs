//! Walking the content graph of OCI documents: index → manifests → config, layers, and nested
//! indexes. A manifest's `subject` is not a child (a referrer does not keep its subject alive).
//!
//! Documents are handled as raw JSON so that manifests with or without a `mediaType` field, and
//! fields this crate does not model, are all accepted.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::layout::{MAX_DOCUMENT_SIZE, entry_digest, entry_media_type, entry_size, read_limited};

use crate::media_types::{INDEX_TYPES, MANIFEST_TYPES};

/// Whether a descriptor with this media type points at a document with children.
pub(crate) fn is_container_type(media_type: &str) -> bool {
    INDEX_TYPES.contains(&media_type) || MANIFEST_TYPES.contains(&media_type)
}

/// The child descriptors of a parsed document (`manifests`, `config`, `layers`, `blobs`).
pub(crate) fn child_descriptors(doc: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for key in ["manifests", "layers", "blobs"] {
        if let Some(Value::Array(items)) = doc.get(key) {
            out.extend(items.iter());
        }
    }
    if let Some(config) = doc.get("config").filter(|c| c.is_object()) {
        out.push(config);
    }
    out
}

/// The `subject.digest` of a parsed document.
pub(crate) fn subject_digest(doc: &Value) -> Option<Digest> {
    entry_digest(doc.get("subject")?)
}

/// Whether a parsed JSON value looks like an OCI manifest or index.
pub(crate) fn looks_like_document(doc: &Value) -> bool {
    doc.get("schemaVersion").and_then(Value::as_u64) == Some(2)
}

/// A directory of content-addressed files named `<hex>`: the store's `blobs/sha256` or an
/// import's staging directory.
#[derive(Debug, Clone)]
pub(crate) struct BlobDir {
    pub(crate) dir: PathBuf,
    /// What error messages call the place (the store root or the archive).
    pub(crate) location: PathBuf,
}

impl BlobDir {
    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Size of a blob, or `None` if absent.
    pub(crate) fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let path = self.path(digest);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("inspect the blob", &path, e)),
        }
    }

    /// Reads a JSON document blob, verifying its digest.
    pub(crate) fn read_document(&self, digest: &Digest) -> Result<Value, StoreError> {
        let path = self.path(digest);
        let data = match read_limited(&path, MAX_DOCUMENT_SIZE) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobNotFound {
                    digest: digest.clone(),
                    store: self.location.clone(),
                });
            }
            Err(e) => return Err(StoreError::io("read the blob", &path, e)),
        };
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
                path,
            });
        }
        serde_json::from_slice(&data).map_err(|e| StoreError::InvalidDocument {
            digest: digest.clone(),
            path,
            what: "OCI JSON document".into(),
            source: Some(e),
        })
    }

    /// Walks the whole graph under `root` (a descriptor as JSON), requiring every blob to be
    /// present with the size its descriptor states and every document to parse.
    ///
    /// Returns every digest of the graph (root included) with its size. `name` is the image
    /// named in errors.
    pub(crate) fn walk_strict(
        &self,
        root: &Value,
        name: &str,
        out: &mut BTreeMap<Digest, u64>,
    ) -> Result<(), StoreError> {
        let mut stack = vec![(root.clone(), true)];
        while let Some((desc, is_root)) = stack.pop() {
            let digest = descriptor_digest(&desc, name, &self.location)?;
            if out.contains_key(&digest) {
                continue;
            }
            let Some(size) = self.size(&digest)? else {
                return Err(StoreError::MissingBlob {
                    reference: name.to_owned(),
                    digest,
                    location: self.location.clone(),
                });
            };
            if let Some(expected) = entry_size(&desc) {
                if expected != size {
                    return Err(StoreError::SizeMismatch {
                        digest: digest.clone(),
                        expected,
                        actual: size,
                        path: self.path(&digest),
                    });
                }
            }
            out.insert(digest.clone(), size);
            let media_type = entry_media_type(&desc);
            // A root entry without a known media type is still walked if it is a document.
            let sniffed = is_root
                && !is_container_type(media_type)
                && size <= MAX_DOCUMENT_SIZE
                && self
                    .read_document(&digest)
                    .is_ok_and(|d| looks_like_document(&d));
            if is_container_type(media_type) || sniffed {
                let doc = self.read_document(&digest)?;
                if !looks_like_document(&doc) {
                    return Err(StoreError::InvalidDocument {
                        digest: digest.clone(),
                        path: self.path(&digest),
                        what: format!("`{media_type}` document (no `schemaVersion: 2`)"),
                        source: None,
                    });
                }
                stack.extend(
                    child_descriptors(&doc)
                        .into_iter()
                        .map(|c| (c.clone(), false)),
                );
            }
        }
        Ok(())
    }
}

fn descriptor_digest(desc: &Value, name: &str, location: &Path) -> Result<Digest, StoreError> {
    let raw = desc.get("digest").and_then(Value::as_str).unwrap_or("");
    Digest::parse(raw).map_err(|e| StoreError::InvalidEntry {
        name: name.to_owned(),
        path: location.to_owned(),
        reason: format!("a descriptor has an unusable digest: {e}"),
    })
}
