//! Low-level pieces of an OCI image layout: file names, durable writes, blob files and the
//! `index.json` document kept as raw JSON so that entries we do not understand survive rewrites.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::canonical::sort_annotations;
use crate::digest::Digest;
use crate::error::{IoContext, StoreError};

/// The `oci-layout` file name.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The content we write to `oci-layout`.
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The `index.json` file name.
pub const INDEX_FILE: &str = "index.json";
/// The lock file shared with upstream `ig`.
pub const LOCK_FILE: &str = "index.json.lock";
/// Where blobs are staged before being renamed into place (same name as oras-go's).
pub const INGEST_DIR: &str = "ingest";
/// The annotation that carries a tag in `index.json`.
pub use crate::media_types::REF_NAME as REF_NAME_ANNOTATION;
pub use crate::media_types::{INDEX as MEDIA_TYPE_INDEX, MANIFEST as MEDIA_TYPE_MANIFEST};

pub(crate) const FILE_MODE: u32 = 0o644;
pub(crate) const DIR_MODE: u32 = 0o755;
/// The largest JSON document (manifest, index, `index.json`) we agree to read.
pub(crate) const MAX_DOCUMENT_SIZE: u64 = 64 << 20;

/// `<root>/blobs/sha256`.
pub(crate) fn blobs_dir(root: &Path) -> PathBuf {
    root.join("blobs").join("sha256")
}

/// `<root>/blobs/sha256/<hex>`.
pub(crate) fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    blobs_dir(root).join(digest.hex())
}

/// Creates `path` (and missing parents) with `mode`.
pub(crate) fn create_dir_all(path: &Path, mode: u32) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .ctx("create the directory", path)
}

/// fsyncs a directory so that renames into it are durable.
pub(crate) fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .ctx("sync the directory", path)
}

/// Writes `data` to `dest` atomically: a temp file in `dest`'s directory, fsync, rename, fsync of
/// the directory.
pub(crate) fn write_file_atomic(dest: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .ctx("create a temporary file in", dir)?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(Permissions::from_mode(FILE_MODE))
        })
        .ctx("write", tmp.path())?;
    tmp.persist(dest)
        .map_err(|e| StoreError::io("rename a temporary file to", dest, e.error))?;
    sync_dir(dir)
}

/// Reads a whole file, refusing files larger than `limit`.
pub(crate) fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the file has {len} bytes, more than the limit of {limit}"),
        ));
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads a blob and checks it hashes to `digest`.
pub(crate) fn read_verified(root: &Path, digest: &Digest) -> Result<Vec<u8>, StoreError> {
    read_blob_checked(&blob_path(root, digest), root, digest, u64::MAX)
}

/// Reads the blob file `path` of the store at `store`, refusing more than `limit` bytes, and
/// checks it hashes to `digest`.
pub(crate) fn read_blob_checked(
    path: &Path,
    store: &Path,
    digest: &Digest,
    limit: u64,
) -> Result<Vec<u8>, StoreError> {
    let data = match read_limited(path, limit) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::BlobNotFound {
                digest: digest.clone(),
                store: store.to_owned(),
            });
        }
        Err(e) => return Err(StoreError::io("read the blob", path, e)),
    };
    let actual = Digest::of(&data);
    if &actual != digest {
        return Err(StoreError::DigestMismatch {
            expected: digest.clone(),
            actual,
            path: path.to_owned(),
        });
    }
    Ok(data)
}

/// Hashes a reader to the end, returning its digest and length.
pub(crate) fn hash_reader(mut r: impl Read) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((Digest::from_sha256(hasher.finalize().into()), len))
}

/// Copies `r` into `w` while hashing; returns the digest and length.
pub(crate) fn copy_hashing(mut r: impl Read, mut w: impl Write) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        len += n as u64;
    }
    Ok((Digest::from_sha256(hasher.finalize().into()), len))
}

/// Whether a valid copy of the blob is already in place (same size and same hash). A present but
/// corrupt blob is reported and treated as absent, so the caller overwrites it.
pub(crate) fn blob_is_intact(path: &Path, digest: &Digest, size: u64) -> Result<bool, StoreError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io("inspect the blob", path, e)),
    };
    if !meta.is_file() || meta.len() != size {
        log::warn!(
            "replacing the damaged blob `{digest}` at `{}` ({} bytes, expected {size})",
            path.display(),
            meta.len()
        );
        return Ok(false);
    }
    let (actual, _) = File::open(path)
        .and_then(hash_reader)
        .ctx("read the blob", path)?;
    if &actual != digest {
        log::warn!(
            "replacing the corrupt blob `{digest}` at `{}` (its content hashes to `{actual}`)",
            path.display()
        );
        return Ok(false);
    }
    Ok(true)
}

/// Opens (creating it if needed) a file for writing with mode 0644.
pub(crate) fn open_rw_create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
}

/// `index.json`, held as raw JSON.
///
/// Top-level fields and entries we do not understand (written by upstream `ig` or other tools)
/// are kept untouched; only the `manifests` array is edited.
#[derive(Debug, Clone)]
pub(crate) struct IndexFile {
    doc: Map<String, Value>,
    pub(crate) entries: Vec<Value>,
    original_entries: Vec<Value>,
    existed: bool,
}

impl IndexFile {
    /// A fresh, empty index.
    pub(crate) fn empty() -> Self {
        let mut doc = Map::new();
        doc.insert("schemaVersion".into(), Value::from(2));
        doc.insert("mediaType".into(), Value::from(MEDIA_TYPE_INDEX));
        doc.insert("manifests".into(), Value::Array(Vec::new()));
        Self {
            doc,
            entries: Vec::new(),
            original_entries: Vec::new(),
            existed: false,
        }
    }

    /// Parses `index.json` bytes; `path` is for error messages.
    pub(crate) fn parse(data: &[u8], path: &Path) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidLayout {
            path: path.to_owned(),
            reason,
        };
        let value: Value = serde_json::from_slice(data)
            .map_err(|e| invalid(format!("`index.json` is not valid JSON: {e}")))?;
        let Value::Object(mut doc) = value else {
            return Err(invalid("`index.json` is not a JSON object".into()));
        };
        let entries = match doc.get_mut("manifests") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => std::mem::take(a),
            Some(_) => return Err(invalid("`manifests` is not an array".into())),
        };
        if !doc.contains_key("manifests") {
            doc.insert("manifests".into(), Value::Array(Vec::new()));
        }
        Ok(Self {
            doc,
            original_entries: entries.clone(),
            entries,
            existed: true,
        })
    }

    /// Loads `<root>/index.json`; a missing file is an empty index.
    pub(crate) fn load(root: &Path) -> Result<Self, StoreError> {
        let path = root.join(INDEX_FILE);
        match read_limited(&path, MAX_DOCUMENT_SIZE) {
            Ok(data) => Self::parse(&data, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(e) => Err(StoreError::io("read", &path, e)),
        }
    }

    /// Whether the entries differ from what was loaded (or the file did not exist).
    pub(crate) fn changed(&self) -> bool {
        !self.existed || self.entries != self.original_entries
    }

    /// The document as deterministic JSON.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut doc = self.doc.clone();
        doc.insert("manifests".into(), Value::Array(self.entries.clone()));
        let mut v = Value::Object(doc);
        sort_annotations(&mut v);
        // Serializing a `Value` cannot fail.
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// Writes `<root>/index.json` atomically if it changed.
    pub(crate) fn save_if_changed(&mut self, root: &Path) -> Result<bool, StoreError> {
        if !self.changed() {
            return Ok(false);
        }
        write_file_atomic(&root.join(INDEX_FILE), &self.to_bytes())?;
        self.original_entries = self.entries.clone();
        self.existed = true;
        Ok(true)
    }
}

/// The `org.opencontainers.image.ref.name` of an entry.
pub(crate) fn entry_ref_name(entry: &Value) -> Option<&str> {
    entry
        .get("annotations")?
        .get(REF_NAME_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The digest of an entry, if it is a valid sha256 digest.
pub(crate) fn entry_digest(entry: &Value) -> Option<Digest> {
    Digest::parse(entry.get("digest")?.as_str()?).ok()
}

/// The media type of an entry or descriptor (empty when absent).
pub(crate) fn entry_media_type(entry: &Value) -> &str {
    entry.get("mediaType").and_then(Value::as_str).unwrap_or("")
}

/// The declared size of an entry.
pub(crate) fn entry_size(entry: &Value) -> Option<u64> {
    entry.get("size")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_file_keeps_unknown_fields() {
        let raw = br#"{"schemaVersion":2,"manifests":[{"mediaType":"x/y","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"weird":{"z":1,"a":2},"annotations":{"b":"1","a":"2"}}],"extra":true}"#;
        let idx = IndexFile::parse(raw, Path::new("index.json")).unwrap();
        assert!(!idx.changed());
        let out = String::from_utf8(idx.to_bytes()).unwrap();
        assert_eq!(
            out,
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"x/y","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"weird":{"z":1,"a":2},"annotations":{"a":"2","b":"1"}}],"extra":true}"#
        );
    }

    #[test]
    fn index_file_rejects_garbage() {
        for raw in [&b"[]"[..], b"{", br#"{"manifests":{}}"#] {
            let err = IndexFile::parse(raw, Path::new("/s/index.json")).unwrap_err();
            assert!(err.to_string().contains("`/s/index.json`"), "{err}");
        }
    }
}
