//! The OCI content graph, one walker for every user: an index's children are manifests (and
//! nested indexes), a manifest's are its config, layers and `blobs`. GC, export and import (in
//! this crate), registry copy, verify, inspect and the runtime's image reader (in the crates
//! above) all ask [`Children::of`] and [`is_document_type`] rather than reading the JSON fields
//! themselves, as oras-go's one graph walker serves its copy, GC and export.
//!
//! A manifest's `subject` is not a child (a referrer does not keep its subject alive):
//! [`subject_digest`] reads it on its own.
//!
//! Documents are handled as raw JSON so that manifests with or without a `mediaType` field, and
//! fields this crate does not model, are all accepted.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::layout::{
    MAX_DOCUMENT_SIZE, entry_digest, entry_media_type, entry_size, read_blob_checked,
};

use crate::media_types::{INDEX_TYPES, MANIFEST_TYPES};

/// Whether a descriptor with this media type points at an index (an OCI index or a Docker
/// manifest list): a document whose children are manifests.
pub fn is_index_type(media_type: &str) -> bool {
    INDEX_TYPES.contains(&media_type)
}

/// Whether a descriptor with this media type points at a document with children: an index or
/// a manifest of [`INDEX_TYPES`] or [`MANIFEST_TYPES`].
pub fn is_document_type(media_type: &str) -> bool {
    is_index_type(media_type) || MANIFEST_TYPES.contains(&media_type)
}

/// The child descriptors of a parsed manifest or index, by role. Fields that are absent, or not
/// of the JSON type the OCI spec gives them, contribute no children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Children<'d> {
    /// An index's `manifests` (manifests, or nested indexes).
    pub manifests: Vec<&'d Value>,
    /// A manifest's `config` descriptor.
    pub config: Option<&'d Value>,
    /// A manifest's `layers`.
    pub layers: Vec<&'d Value>,
    /// An artifact manifest's `blobs`.
    pub blobs: Vec<&'d Value>,
}

impl<'d> Children<'d> {
    /// The children of `doc`.
    pub fn of(doc: &'d Value) -> Children<'d> {
        let array = |key: &str| -> Vec<&'d Value> {
            match doc.get(key) {
                Some(Value::Array(items)) => items.iter().collect(),
                _ => Vec::new(),
            }
        };
        Children {
            manifests: array("manifests"),
            config: doc.get("config").filter(|c| c.is_object()),
            layers: array("layers"),
            blobs: array("blobs"),
        }
    }

    /// The children that are plain blobs rather than documents: the config, then the layers,
    /// then `blobs`.
    pub fn content(&self) -> impl Iterator<Item = &'d Value> + '_ {
        self.config
            .into_iter()
            .chain(self.layers.iter().copied())
            .chain(self.blobs.iter().copied())
    }

    /// Every child: `manifests`, `layers`, `blobs`, then the config (the order the store's
    /// walks push them in).
    pub fn all(&self) -> Vec<&'d Value> {
        self.manifests
            .iter()
            .chain(&self.layers)
            .chain(&self.blobs)
            .copied()
            .chain(self.config)
            .collect()
    }

    /// The first layer of `media_type`.
    pub fn layer(&self, media_type: &str) -> Option<&'d Value> {
        self.layers
            .iter()
            .copied()
            .find(|l| l.get("mediaType").and_then(Value::as_str) == Some(media_type))
    }
}

/// Whether a parsed document is an index by its shape: it has a `manifests` field (whatever
/// its `mediaType` says, or without one).
pub fn has_manifests(doc: &Value) -> bool {
    doc.get("manifests").is_some()
}

/// The `subject.digest` of a parsed document.
pub fn subject_digest(doc: &Value) -> Option<Digest> {
    entry_digest(doc.get("subject")?)
}

/// Whether a parsed JSON value looks like an OCI manifest or index (`schemaVersion: 2`).
pub fn looks_like_document(doc: &Value) -> bool {
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
        let data = read_blob_checked(&path, &self.location, digest, MAX_DOCUMENT_SIZE)?;
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
                && !is_document_type(media_type)
                && size <= MAX_DOCUMENT_SIZE
                && self
                    .read_document(&digest)
                    .is_ok_and(|d| looks_like_document(&d));
            if is_document_type(media_type) || sniffed {
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
                    Children::of(&doc)
                        .all()
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn children_by_role_and_in_the_walkers_order() {
        let index = json!({"schemaVersion": 2, "manifests": [{"digest": "a"}, {"digest": "b"}]});
        let children = Children::of(&index);
        assert_eq!(children.manifests.len(), 2);
        assert_eq!(children.content().count(), 0);
        assert!(has_manifests(&index));

        let manifest = json!({
            "schemaVersion": 2,
            "config": {"digest": "c"},
            "layers": [{"digest": "l1", "mediaType": "x"}, {"digest": "l2", "mediaType": "y"}],
            "blobs": [{"digest": "b1"}],
            "subject": {"digest": "not a child"},
        });
        let children = Children::of(&manifest);
        let digests = |v: Vec<&Value>| -> Vec<String> {
            v.iter()
                .map(|d| d["digest"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            digests(children.content().collect()),
            ["c", "l1", "l2", "b1"]
        );
        assert_eq!(digests(children.all()), ["l1", "l2", "b1", "c"]);
        assert_eq!(children.layer("y").unwrap()["digest"], "l2");
        assert!(children.layer("z").is_none());
        assert!(!has_manifests(&manifest));
    }

    #[test]
    fn fields_of_the_wrong_json_type_have_no_children() {
        let doc = json!({"manifests": {}, "config": "c", "layers": "l", "blobs": null});
        assert_eq!(Children::of(&doc), Children::default());
        // An empty `manifests` still makes an index by shape.
        assert!(has_manifests(&json!({"manifests": []})));
    }

    #[test]
    fn media_type_sets() {
        use crate::media_types::{
            ARTIFACT_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, INDEX, MANIFEST,
        };
        for t in [INDEX, DOCKER_LIST] {
            assert!(is_index_type(t) && is_document_type(t), "{t}");
        }
        for t in [MANIFEST, DOCKER_MANIFEST, ARTIFACT_MANIFEST] {
            assert!(!is_index_type(t) && is_document_type(t), "{t}");
        }
        assert!(!is_document_type("application/vnd.oci.image.layer.v1.tar"));
        assert!(!is_document_type(""));
    }
}
