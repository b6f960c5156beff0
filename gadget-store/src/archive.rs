//! `export` and `import`: plain (uncompressed) tar files holding an OCI image layout.
//!
//! Export format, byte-for-byte deterministic for the same content:
//!
//! - entries in this order: `oci-layout`, `index.json`, `blobs/`, `blobs/sha256/`, then
//!   `blobs/sha256/<hex>` sorted by hex;
//! - ustar headers, mtime 0, uid/gid 0, no user or group names, mode 0644 for files and 0755 for
//!   directories;
//! - `index.json` is canonical JSON (see [`crate::to_canonical_json`]) whose `manifests` are
//!   sorted by digest, then by `org.opencontainers.image.ref.name`; each exported image is
//!   tagged with its full normalized reference.
//!
//! An export holds every blob of each image's graph, the tagged signature/referrers-fallback
//! entries (`sha256-<hex>...`) of any digest in those graphs, and untagged referrers whose
//! `subject` is in them.
//!
//! Import refuses absolute paths, `..` components, links, devices, FIFOs, files that are not
//! part of a layout and duplicate entries; checks every blob against its name and every tagged
//! graph for completeness; stages everything outside `blobs/` first; and only then, under the
//! store lock, moves blobs into place and writes the tags. A refused archive changes nothing in
//! the store.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::canonical::to_canonical_json;
use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::graph::{BlobDir, is_container_type, subject_digest};
use crate::layout::{
    INDEX_FILE, IndexFile, LOCK_FILE, MAX_DOCUMENT_SIZE, MEDIA_TYPE_INDEX, OCI_LAYOUT_CONTENT,
    OCI_LAYOUT_FILE, REF_NAME_ANNOTATION, copy_hashing, entry_digest, entry_media_type,
    entry_ref_name, sync_dir,
};
use crate::reference::Reference;
use crate::store::{Store, descriptor_to_entry, referrers_tag_subject};

/// What [`Store::export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The full references of the exported images, in the order given.
    pub images: Vec<String>,
    /// Number of `index.json` entries (images, signature tags, referrers).
    pub entries: usize,
    /// Number of blobs.
    pub blobs: usize,
    /// Total size of the blobs.
    pub blob_bytes: u64,
}

impl Store {
    /// Writes the images (each reference must have a tag) to `out` as a deterministic tar of an
    /// OCI image layout (see the module docs). The file is written beside `out` and renamed into
    /// place, so `out` is either untouched or complete.
    pub fn export(&self, references: &[Reference], out: &Path) -> Result<ExportReport, StoreError> {
        self.transaction(|tx| {
            let blob_dir = self.blob_dir();
            let mut entries: Vec<Value> = Vec::new();
            let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
            let mut images = Vec::new();
            for reference in references {
                if reference.tag().is_none() {
                    return Err(StoreError::NotATag {
                        reference: reference.full(),
                        reason: "an exported image needs a tag",
                    });
                }
                let descriptor = tx.resolve(reference)?;
                let name = reference.without_digest().full();
                let plain = descriptor_to_entry(&descriptor, None)?;
                blob_dir.walk_strict(&plain, &name, &mut blobs)?;
                entries.push(descriptor_to_entry(&descriptor, Some(&name))?);
                images.push(name);
            }

            // Signatures and referrers of anything exported, to a fixpoint (a signature can
            // itself have referrers).
            let mut taken: HashSet<usize> = HashSet::new();
            loop {
                let mut added = false;
                for (i, entry) in tx.raw_entries().iter().enumerate() {
                    if taken.contains(&i) {
                        continue;
                    }
                    let wanted = match entry_ref_name(entry) {
                        Some(name) => referrers_tag_subject(name).is_some_and(|hex| {
                            Digest::from_hex(hex).is_ok_and(|d| blobs.contains_key(&d))
                        }),
                        None => {
                            entry_digest(entry).is_some_and(|d| !blobs.contains_key(&d))
                                && is_container_type(entry_media_type(entry))
                                && entry_digest(entry)
                                    .and_then(|d| blob_dir.read_document(&d).ok())
                                    .and_then(|doc| subject_digest(&doc))
                                    .is_some_and(|s| blobs.contains_key(&s))
                        }
                    };
                    if !wanted {
                        continue;
                    }
                    taken.insert(i);
                    let name = entry_ref_name(entry)
                        .map(str::to_owned)
                        .unwrap_or_else(|| entry["digest"].as_str().unwrap_or("").to_owned());
                    blob_dir.walk_strict(entry, &name, &mut blobs)?;
                    entries.push(entry.clone());
                    added = true;
                }
                if !added {
                    break;
                }
            }

            sort_and_dedup_entries(&mut entries);
            write_layout_tar(self, &entries, &blobs, out)?;
            Ok(ExportReport {
                images,
                entries: entries.len(),
                blobs: blobs.len(),
                blob_bytes: blobs.values().sum(),
            })
        })
    }

    /// Imports every tagged image (and referrer) of an exported layout tar; returns the full
    /// references it tagged, in the archive's order. See the module docs for what is refused.
    pub fn import(&self, archive: &Path) -> Result<Vec<String>, StoreError> {
        let ingest = self.ingest_dir()?;
        let staging = tempfile::Builder::new()
            .prefix(".import-")
            .tempdir_in(&ingest)
            .ctx("create a staging directory in", &ingest)?;
        let staged = read_archive(archive, staging.path())?;
        let plan = plan_import(archive, staging.path(), &staged)?;

        self.transaction(|tx| {
            for (digest, size) in &plan.blobs {
                tx.install_staged(&staging.path().join(digest.hex()), digest, *size)?;
            }
            for (name, entry) in &plan.tagged {
                tx.put_tagged_entry(name, entry.clone());
            }
            for entry in &plan.referrers {
                tx.add_untagged_entry(entry.clone());
            }
            Ok(())
        })?;
        let mut names: Vec<String> = Vec::new();
        for (name, _) in plan.tagged {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// Sorts entries by digest, then by ref name (untagged first), dropping exact duplicates.
fn sort_and_dedup_entries(entries: &mut Vec<Value>) {
    entries.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v.get("digest")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                entry_ref_name(v).map(str::to_owned),
            )
        };
        key(a).cmp(&key(b))
    });
    entries.dedup_by(|a, b| {
        a.get("digest") == b.get("digest") && entry_ref_name(a) == entry_ref_name(b)
    });
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn write_layout_tar(
    store: &Store,
    entries: &[Value],
    blobs: &BTreeMap<Digest, u64>,
    out: &Path,
) -> Result<(), StoreError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": entries,
    });
    let index = to_canonical_json(&index).map_err(|e| StoreError::Encode {
        what: "the exported `index.json`".into(),
        source: e,
    })?;

    let mut tmp = tempfile::Builder::new()
        .prefix(".export-")
        .suffix(".tar")
        .tempfile_in(&parent)
        .ctx("create a temporary file in", &parent)?;
    let tmp_path = tmp.path().to_owned();
    {
        let mut builder = tar::Builder::new(BufWriter::new(tmp.as_file_mut()));
        let w = |r: io::Result<()>| r.ctx("write", &tmp_path);
        w(builder.append_data(
            &mut header(
                tar::EntryType::Regular,
                0o644,
                OCI_LAYOUT_CONTENT.len() as u64,
            ),
            OCI_LAYOUT_FILE,
            OCI_LAYOUT_CONTENT,
        ))?;
        w(builder.append_data(
            &mut header(tar::EntryType::Regular, 0o644, index.len() as u64),
            INDEX_FILE,
            index.as_slice(),
        ))?;
        for dir in ["blobs/", "blobs/sha256/"] {
            w(builder.append_data(
                &mut header(tar::EntryType::Directory, 0o755, 0),
                dir,
                io::empty(),
            ))?;
        }
        for (digest, &size) in blobs {
            let path = store.blob_path(digest);
            let file = File::open(&path).ctx("read the blob", &path)?;
            let mut reader = HashingReader::new(file.take(size));
            w(builder.append_data(
                &mut header(tar::EntryType::Regular, 0o644, size),
                format!("blobs/sha256/{}", digest.hex()),
                &mut reader,
            ))?;
            let (actual, len) = reader.finish();
            if len != size {
                return Err(StoreError::SizeMismatch {
                    digest: digest.clone(),
                    expected: size,
                    actual: len,
                    path,
                });
            }
            if &actual != digest {
                return Err(StoreError::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                    path,
                });
            }
        }
        let inner = builder.into_inner().ctx("write", &tmp_path)?;
        inner
            .into_inner()
            .map_err(|e| StoreError::io("write", &tmp_path, e.into_error()))?;
    }
    tmp.as_file()
        .sync_all()
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o644))
        })
        .ctx("write", &tmp_path)?;
    tmp.persist(out)
        .map_err(|e| StoreError::io("rename a temporary file to", out, e.error))?;
    sync_dir(&parent)
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    fn finish(self) -> (Digest, u64) {
        (Digest::from_sha256(self.hasher.finalize().into()), self.len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// What a layout tar holds once read and staged.
struct Staged {
    index: IndexFile,
    blobs: BTreeMap<Digest, u64>,
}

/// Reads the archive, refusing anything unsafe, checking each blob against its name, and
/// copying blobs into `staging/<hex>`.
fn read_archive(archive: &Path, staging: &Path) -> Result<Staged, StoreError> {
    let file = File::open(archive).ctx("open the archive", archive)?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    let read_err = |e: io::Error| StoreError::io("read the archive", archive, e);

    let mut seen: HashSet<String> = HashSet::new();
    let mut oci_layout: Option<Vec<u8>> = None;
    let mut index: Option<Vec<u8>> = None;
    let mut blobs = BTreeMap::new();

    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let refuse = |reason: &str| StoreError::UnsafeEntry {
            archive: archive.to_owned(),
            entry: shown.clone(),
            reason: reason.to_owned(),
        };
        let path = std::str::from_utf8(&raw).map_err(|_| refuse("has a name that is not UTF-8"))?;
        let path = normalize_entry_path(path).map_err(&refuse)?;

        match kind {
            tar::EntryType::Regular | tar::EntryType::Directory => {}
            tar::EntryType::Symlink => return Err(refuse("is a symbolic link")),
            tar::EntryType::Link => return Err(refuse("is a hard link")),
            tar::EntryType::Char | tar::EntryType::Block => return Err(refuse("is a device")),
            tar::EntryType::Fifo => return Err(refuse("is a FIFO")),
            other => {
                return Err(refuse(&format!(
                    "has the unsupported entry type `{}`",
                    other.as_byte() as char
                )));
            }
        }
        if !seen.insert(path.clone()) {
            return Err(refuse("appears more than once"));
        }
        let size = entry.header().size().map_err(read_err)?;

        if kind == tar::EntryType::Directory {
            match path.as_str() {
                "" | "blobs" | "blobs/sha256" | "ingest" => continue,
                _ => {
                    return Err(refuse(
                        "is a directory that is not part of an OCI image layout",
                    ));
                }
            }
        }
        match path.as_str() {
            OCI_LAYOUT_FILE => {
                oci_layout = Some(read_small(&mut entry, size, 64 << 10).map_err(|r| refuse(&r))?);
            }
            INDEX_FILE => {
                index =
                    Some(read_small(&mut entry, size, MAX_DOCUMENT_SIZE).map_err(|r| refuse(&r))?);
            }
            // Upstream tooling may leave its lock file in a layout; it carries nothing.
            LOCK_FILE => {}
            _ => {
                let Some(hex) = path.strip_prefix("blobs/sha256/") else {
                    return Err(refuse("is not part of an OCI image layout"));
                };
                let digest = Digest::from_hex(hex)
                    .map_err(|_| refuse("is not named after a sha256 digest"))?;
                let dest = staging.join(hex);
                let out = File::create(&dest).ctx("create", &dest)?;
                let mut out = BufWriter::new(out);
                let (actual, len) = copy_hashing(&mut entry, &mut out).map_err(read_err)?;
                out.flush().ctx("write", &dest)?;
                if actual != digest {
                    return Err(StoreError::ArchiveDigestMismatch {
                        archive: archive.to_owned(),
                        entry: shown,
                        actual,
                    });
                }
                blobs.insert(digest, len);
            }
        }
    }

    let invalid = |reason: String| StoreError::InvalidArchive {
        archive: archive.to_owned(),
        reason,
    };
    let oci_layout = oci_layout.ok_or_else(|| invalid("it has no `oci-layout` file".into()))?;
    let version = serde_json::from_slice::<Value>(&oci_layout)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_owned));
    if version.as_deref() != Some("1.0.0") {
        return Err(invalid(format!(
            "its `oci-layout` does not declare `imageLayoutVersion` `1.0.0` (found {})",
            version.map_or_else(|| "none".to_owned(), |v| format!("`{v}`"))
        )));
    }
    let index = index.ok_or_else(|| invalid("it has no `index.json` file".into()))?;
    let index =
        IndexFile::parse(&index, Path::new(INDEX_FILE)).map_err(|e| invalid(e.to_string()))?;
    Ok(Staged { index, blobs })
}

/// Normalizes an entry path (`./a/b/` → `a/b`); refuses absolute paths and `..`.
fn normalize_entry_path(path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        return Err("has an absolute path");
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    while parts.len() > 1 && parts.first() == Some(&".") {
        parts.remove(0);
    }
    if parts.contains(&"..") {
        return Err("has a `..` component");
    }
    if parts == ["."] {
        return Ok(String::new());
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err("has an empty or `.` component in its path");
    }
    Ok(parts.join("/"))
}

fn read_small(r: &mut impl Read, size: u64, limit: u64) -> Result<Vec<u8>, String> {
    if size > limit {
        return Err(format!("is too large ({size} bytes, at most {limit})"));
    }
    let mut buf = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot be read: {e}"))?;
    Ok(buf)
}

/// What an import will write.
struct ImportPlan {
    /// Full reference → entry (with the normalized `ref.name`), in archive order.
    tagged: Vec<(String, Value)>,
    /// Untagged referrer entries.
    referrers: Vec<Value>,
    /// Blobs of every imported graph.
    blobs: BTreeMap<Digest, u64>,
}

fn plan_import(archive: &Path, staging: &Path, staged: &Staged) -> Result<ImportPlan, StoreError> {
    let dir = BlobDir {
        dir: staging.to_owned(),
        location: archive.to_owned(),
    };
    let invalid = |reason: String| StoreError::InvalidArchive {
        archive: archive.to_owned(),
        reason,
    };
    let mut plan = ImportPlan {
        tagged: Vec::new(),
        referrers: Vec::new(),
        blobs: BTreeMap::new(),
    };
    for entry in &staged.index.entries {
        let Some(digest) = entry_digest(entry) else {
            return Err(invalid(format!(
                "an `index.json` entry has no usable sha256 digest: {}",
                entry.get("digest").unwrap_or(&Value::Null)
            )));
        };
        match entry_ref_name(entry) {
            Some(name) => {
                let reference = Reference::parse(name).map_err(|e| StoreError::Reference {
                    path: archive.to_owned(),
                    source: e,
                })?;
                if reference.digest().is_some() {
                    return Err(invalid(format!(
                        "the tag `{name}` in `index.json` pins a digest"
                    )));
                }
                let full = reference.full();
                dir.walk_strict(entry, &full, &mut plan.blobs)?;
                let mut entry = entry.clone();
                if let Some(Value::Object(ann)) = entry.get_mut("annotations") {
                    ann.insert(REF_NAME_ANNOTATION.into(), Value::from(full.as_str()));
                }
                plan.tagged.push((full, entry));
            }
            None => {
                let is_referrer = staged.blobs.contains_key(&digest)
                    && dir
                        .read_document(&digest)
                        .ok()
                        .and_then(|doc| subject_digest(&doc))
                        .is_some();
                if is_referrer {
                    dir.walk_strict(entry, digest.as_str(), &mut plan.blobs)?;
                    plan.referrers.push(entry.clone());
                } else {
                    log::debug!("not importing the untagged entry `{digest}`");
                }
            }
        }
    }
    if plan.tagged.is_empty() {
        return Err(invalid("it contains no tagged image".into()));
    }
    let unused: BTreeSet<&Digest> = staged
        .blobs
        .keys()
        .filter(|d| !plan.blobs.contains_key(*d))
        .collect();
    if !unused.is_empty() {
        log::debug!(
            "not importing {} blob(s) no imported image refers to",
            unused.len()
        );
    }
    Ok(plan)
}
