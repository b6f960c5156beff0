//! `export` and `import`: plain (uncompressed) tar files holding an OCI image layout; `import`
//! also reads gzip-compressed ones and names other input (zstd, xz, zip, not a tar) for what it
//! is. Messages escape control characters: nothing from an archive reaches a terminal raw.
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
//! An export holds every blob of each image's graph, the signature and referrers tags
//! (`sha256-<hex>.sig`, `sha256-<hex>`) of any digest in those graphs, and untagged referrers
//! whose `subject` is in them. Signature and referrers tags are written bare, as upstream keeps
//! them, also when the store holds them in a form earlier versions wrote
//! (`<repository>:sha256-<hex>.sig`; see [`crate::signatures`]).
//!
//! Import keeps an archive's bare signature and referrers tags as they are (earlier forms become
//! bare) and reports only the image tags.
//!
//! Import refuses absolute paths, `..` components, links, devices, FIFOs, files that are not
//! part of a layout and duplicate entries; checks every blob against its name and every tagged
//! graph for completeness; stages everything outside `blobs/` first; and only then, under the
//! store lock, moves blobs into place and writes the tags. A refused archive changes nothing in
//! the store. Export refuses a destination inside the store directory.

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
use crate::graph::{BlobDir, is_document_type, subject_digest};
use crate::layout::{
    INDEX_FILE, IndexFile, LOCK_FILE, MAX_DOCUMENT_SIZE, MEDIA_TYPE_INDEX, OCI_LAYOUT_CONTENT,
    OCI_LAYOUT_FILE, REF_NAME_ANNOTATION, copy_hashing, entry_digest, entry_media_type,
    entry_ref_name, sync_dir,
};
use crate::reference::Reference;
use crate::signatures::{bare_form, tag_subject};
use crate::store::{Store, descriptor_to_entry};

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
    ///
    /// A destination inside the store directory is refused: the rename would replace one of the
    /// store's own files (`index.json`, `oci-layout`, a blob, the lock file).
    pub fn export(&self, references: &[Reference], out: &Path) -> Result<ExportReport, StoreError> {
        self.check_export_destination(out)?;
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
            let mut signature_entries = BareTags::default();
            loop {
                let mut added = false;
                for (i, entry) in tx.raw_entries().iter().enumerate() {
                    if taken.contains(&i) {
                        continue;
                    }
                    let wanted = match entry_ref_name(entry) {
                        Some(name) => tag_subject(name).is_some_and(|hex| {
                            Digest::from_hex(&hex).is_ok_and(|d| blobs.contains_key(&d))
                        }),
                        None => {
                            entry_digest(entry).is_some_and(|d| !blobs.contains_key(&d))
                                && is_document_type(entry_media_type(entry))
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
                    match bare_form(&name) {
                        Some(bare) => signature_entries.offer(&name, bare, entry),
                        None => entries.push(entry.clone()),
                    }
                    added = true;
                }
                if !added {
                    break;
                }
            }
            entries.extend(signature_entries.into_entries());

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
        let input = open_archive(archive)?;
        let ingest = self.ingest_dir()?;
        let staging = tempfile::Builder::new()
            .prefix(".import-")
            .tempdir_in(&ingest)
            .ctx("create a staging directory in", &ingest)?;
        let staged = read_archive(input, archive, staging.path())?;
        let plan = plan_import(archive, staging.path(), &staged)?;

        self.transaction(|tx| {
            for (digest, size) in &plan.blobs {
                tx.install_staged(&staging.path().join(digest.hex()), digest, *size)?;
            }
            for (name, entry) in plan.tagged.iter().chain(&plan.signatures) {
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

/// Signature and referrers entries under their bare names (`sha256-<hex>.sig`, `sha256-<hex>`),
/// whatever form they were tagged in: when two forms give the same bare name, the one that was
/// bare already wins, else the first.
#[derive(Default)]
struct BareTags(BTreeMap<String, (bool, Value)>);

impl BareTags {
    fn offer(&mut self, name: &str, bare: String, entry: &Value) {
        let was_bare = name == bare;
        if self.0.get(&bare).is_some_and(|(b, _)| *b || !was_bare) {
            return;
        }
        let mut entry = entry.clone();
        if let Some(Value::Object(ann)) = entry.get_mut("annotations") {
            ann.insert(REF_NAME_ANNOTATION.into(), Value::from(bare.as_str()));
        }
        self.0.insert(bare, (was_bare, entry));
    }

    fn into_named(self) -> Vec<(String, Value)> {
        self.0.into_iter().map(|(n, (_, e))| (n, e)).collect()
    }

    fn into_entries(self) -> impl Iterator<Item = Value> {
        self.0.into_values().map(|(_, e)| e)
    }
}

impl Store {
    fn check_export_destination(&self, out: &Path) -> Result<(), StoreError> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // A missing directory fails later with its own message, when the file is created.
        let Ok(parent) = fs::canonicalize(parent) else {
            return Ok(());
        };
        let target = out.file_name().map(|n| parent.join(n));
        if parent.starts_with(self.path()) || target.as_deref() == Some(self.path()) {
            return Err(StoreError::ExportIntoStore {
                out: out.to_owned(),
                store: self.path().to_owned(),
            });
        }
        Ok(())
    }
}

/// An archive to import: a tar, or a gzip-compressed tar (`.tar.gz`, `.tgz`), decompressed on
/// the fly. Other input is refused saying what it looks like.
type ArchiveInput = io::Chain<io::Cursor<Vec<u8>>, Box<dyn Read>>;

/// Size of a tar header block.
const TAR_BLOCK: usize = 512;

/// Opens `archive`, recognizes gzip, refuses other compressions and non-tar data by their first
/// bytes, and returns a reader positioned at the start of the tar stream.
fn open_archive(archive: &Path) -> Result<ArchiveInput, StoreError> {
    let file = File::open(archive).ctx("open the archive", archive)?;
    let invalid = |reason: String| StoreError::InvalidArchive {
        archive: archive.to_owned(),
        reason,
    };
    let mut input: Box<dyn Read> = Box::new(BufReader::new(file));
    let mut head = read_head(&mut input, TAR_BLOCK).ctx("read the archive", archive)?;
    let mut gzipped = false;
    if head.starts_with(&[0x1f, 0x8b]) {
        gzipped = true;
        let decoder = flate2::read::GzDecoder::new(io::Cursor::new(head).chain(input));
        input = Box::new(BufReader::new(decoder));
        head = read_head(&mut input, TAR_BLOCK).map_err(|e| {
            invalid(format!(
                "it is gzip-compressed, but cannot be decompressed: {}",
                printable(&e.to_string())
            ))
        })?;
    }
    let compressed = |name: &str, tool: &str| {
        invalid(format!(
            "it is a {name}-compressed file, not a tar archive; decompress it first (`{tool}`), or export again with `ig-image export`"
        ))
    };
    if !gzipped {
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(compressed("zstd", "zstd -d"));
        }
        if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            return Err(compressed("xz", "unxz"));
        }
        if head.starts_with(b"BZh") {
            return Err(compressed("bzip2", "bunzip2"));
        }
        if head.starts_with(b"PK\x03\x04") {
            return Err(invalid(
                "it is a zip file, not a tar archive (`ig-image export` writes tar files)".into(),
            ));
        }
    }
    let what = if gzipped {
        "its gzip content is not"
    } else {
        "it is not"
    };
    if head.len() < TAR_BLOCK {
        return Err(invalid(format!(
            "{what} a tar archive: {} bytes, shorter than one tar header",
            head.len()
        )));
    }
    if !is_tar_header(&head) {
        return Err(invalid(format!(
            "{what} a tar archive (it starts with `{}`)",
            printable_bytes(&head[..16])
        )));
    }
    Ok(io::Cursor::new(head).chain(input))
}

/// Reads up to `n` bytes (fewer only at the end of the input).
fn read_head(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Whether a 512-byte block is a tar header (its checksum matches) or the all-zero end block.
fn is_tar_header(block: &[u8]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// `text` with control characters (but newlines and tabs) and U+FFFD escaped, so a message
/// never puts raw bytes on a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_control() && c != '\n' && c != '\t') || c == char::REPLACEMENT_CHARACTER {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Bytes as text, printable ASCII kept and everything else as `\xNN`.
fn printable_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
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
fn read_archive(input: ArchiveInput, archive: &Path, staging: &Path) -> Result<Staged, StoreError> {
    let mut tar = tar::Archive::new(input);
    // The tar crate quotes raw header bytes in some messages: escape them.
    let read_err = |e: io::Error| {
        StoreError::io(
            "read the archive",
            archive,
            io::Error::new(e.kind(), printable(&e.to_string())),
        )
    };

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
        let shown = printable(&String::from_utf8_lossy(&raw));
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
    /// Bare signature and referrers tags → entry (with the bare `ref.name`).
    signatures: Vec<(String, Value)>,
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
    let mut signature_entries = BareTags::default();
    let mut plan = ImportPlan {
        tagged: Vec::new(),
        signatures: Vec::new(),
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
            Some(name) if bare_form(name).is_some() => {
                let bare = bare_form(name).unwrap_or_default();
                dir.walk_strict(entry, name, &mut plan.blobs)?;
                signature_entries.offer(name, bare, entry);
            }
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
    plan.signatures = signature_entries.into_named();
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use oci_spec::image::MediaType;
    use serde_json::json;
    use tar::EntryType;

    use super::*;
    use crate::layout::MEDIA_TYPE_MANIFEST;
    use crate::test_support::*;

    fn new_store(dir: &tempfile::TempDir, name: &str) -> Store {
        Store::open(dir.path().join(name)).unwrap()
    }

    /// A signature-like manifest for `subject`, tagged cosign-style when `tag` is given, listed
    /// untagged otherwise.
    fn add_signature(store: &Store, subject: &oci_spec::image::Descriptor, tag: Option<&str>) {
        store
            .transaction(|tx| {
                let payload = tx.write_blob(format!("payload for {}", subject.digest()).as_bytes())?;
                let m = json!({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_TYPE_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
                    "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                                "digest": payload.as_str(), "size": tx.read_blob(&payload)?.len()}],
                    "subject": {"mediaType": MEDIA_TYPE_INDEX, "digest": subject.digest().to_string(), "size": subject.size()},
                });
                let desc = tx.write_json(MediaType::ImageManifest, &m)?;
                match tag {
                    Some(t) if crate::signatures::is_bare_tag(t) => {
                        tx.tag_bare(t, desc)?;
                    }
                    Some(t) => {
                        tx.tag(&reference(t), desc)?;
                    }
                    None => {
                        tx.add_untagged(&desc)?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    /// Reads a tar into (path, header, data) triples.
    fn tar_entries(data: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
        let mut ar = tar::Archive::new(data);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let header = e.header().clone();
                let mut buf = Vec::new();
                e.read_to_end(&mut buf).unwrap();
                (path, header, buf)
            })
            .collect()
    }

    fn extract(data: &[u8], dest: &Path) {
        tar::Archive::new(data).unpack(dest).unwrap();
    }

    #[test]
    fn export_is_deterministic_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let shared = wasm_layer("shared");
        let a_store = new_store(&dir, "a");
        let a = add_image(&a_store, "trace_exec", Some(&shared));
        let b = add_image(&a_store, "localhost:5000/x/top:v1", Some(&shared));
        add_image(&a_store, "not_exported", None);
        let a_hex = Digest::try_from(a.index.digest()).unwrap().hex().to_owned();
        add_signature(
            &a_store,
            &a.index,
            Some(&format!("trace_exec:sha256-{a_hex}.sig")),
        );
        add_signature(&a_store, &b.index, None);

        // The same content built in another order, in another store.
        let b_store = new_store(&dir, "b");
        add_signature(
            &b_store,
            &add_image(&b_store, "localhost:5000/x/top:v1", Some(&shared)).index,
            None,
        );
        add_image(&b_store, "trace_exec", Some(&shared));
        // Store a has the signature in the form earlier versions wrote, store b bare, as
        // upstream keeps it: both export it bare.
        add_signature(&b_store, &a.index, Some(&format!("sha256-{a_hex}.sig")));

        let refs = [
            reference("trace_exec"),
            reference("localhost:5000/x/top:v1"),
        ];
        let out1 = dir.path().join("one.tar");
        let out2 = dir.path().join("two.tar");
        let out3 = dir.path().join("three.tar");
        let report = a_store.export(&refs, &out1).unwrap();
        a_store.export(&refs, &out2).unwrap();
        let reversed = [refs[1].clone(), refs[0].clone()];
        b_store.export(&reversed, &out3).unwrap();
        let one = fs::read(&out1).unwrap();
        assert_eq!(one, fs::read(&out2).unwrap());
        assert_eq!(one, fs::read(&out3).unwrap());
        assert_eq!(
            report.images,
            [
                "ghcr.io/inspektor-gadget/gadget/trace_exec:latest",
                "localhost:5000/x/top:v1"
            ]
        );
        assert_eq!(report.entries, 4);

        // Entry order, headers.
        let entries = tar_entries(&one);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
        );
        let blob_names: Vec<&str> = names[4..].to_vec();
        let mut sorted = blob_names.clone();
        sorted.sort();
        assert_eq!(blob_names, sorted);
        assert_eq!(blob_names.len(), report.blobs);
        for (path, h, data) in &entries {
            assert_eq!(h.mtime().unwrap(), 0, "{path}");
            assert_eq!(h.uid().unwrap(), 0);
            assert_eq!(h.gid().unwrap(), 0);
            assert_eq!(h.username().unwrap(), Some(""));
            assert_eq!(h.groupname().unwrap(), Some(""));
            let dir_entry = path.ends_with('/');
            assert_eq!(h.mode().unwrap(), if dir_entry { 0o755 } else { 0o644 });
            if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                assert_eq!(Digest::of(data).hex(), hex);
            }
        }
        // The not-exported image's private blobs are absent; shared ones are present.
        assert!(names.contains(&format!("blobs/sha256/{}", Digest::of(&shared).hex()).as_str()));

        // index.json: sorted by digest, full references, the signature tag and the referrer.
        let index: Value = serde_json::from_slice(&entries[1].2).unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        let digests: Vec<&str> = manifests
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        let mut sorted = digests.clone();
        sorted.sort();
        assert_eq!(digests, sorted);
        let mut refs_in: Vec<Option<&str>> = manifests.iter().map(entry_ref_name).collect();
        refs_in.sort();
        assert_eq!(
            refs_in,
            [
                None,
                Some("ghcr.io/inspektor-gadget/gadget/trace_exec:latest"),
                Some("localhost:5000/x/top:v1"),
                Some(format!("sha256-{a_hex}.sig").as_str()),
            ]
        );

        // The extracted export is a valid layout for the independent checker.
        let extracted = dir.path().join("extracted");
        extract(&one, &extracted);
        if let Some((code, out)) = run_checker(&extracted, &[]) {
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("2 image(s)"), "{out}");
        }
    }

    #[test]
    fn export_errors_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = new_store(&dir, "s");
        let a = add_image(&store, "a", Some(&wasm_layer("a")));
        let out = dir.path().join("out.tar");
        let err = store.export(&[reference("missing")], &out).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        assert!(!out.exists());
        // A damaged blob is caught while exporting.
        fs::write(store.blob_path(&a.layers[0]), b"\0asm-tampered-same-size!").unwrap();
        let len = fs::metadata(store.blob_path(&a.layers[0])).unwrap().len();
        let err = store.export(&[reference("a")], &out).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. }
            ),
            "{err} ({len})"
        );
        assert!(!out.exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".export-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn export_refuses_destinations_inside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = new_store(&dir, "s");
        add_image(&store, "a", Some(&wasm_layer("a")));
        let before = snapshot(store.path());
        let blob = fs::read_dir(store.path().join("blobs/sha256"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for out in [
            store.path().join("index.json"),
            store.path().join("oci-layout"),
            store.path().join("index.json.lock"),
            store.path().join("new.tar"),
            blob,
            store.path().to_path_buf(),
            dir.path().join("s/blobs/../index.json"),
        ] {
            let err = store.export(&[reference("a")], &out).unwrap_err();
            assert!(matches!(err, StoreError::ExportIntoStore { .. }), "{err}");
            assert!(err.to_string().contains("inside the image store"), "{err}");
            assert_eq!(snapshot(store.path()), before, "{}", out.display());
        }
        // Through a symlinked directory too.
        std::os::unix::fs::symlink(store.path(), dir.path().join("link")).unwrap();
        let err = store
            .export(&[reference("a")], &dir.path().join("link/index.json"))
            .unwrap_err();
        assert!(matches!(err, StoreError::ExportIntoStore { .. }), "{err}");
        assert_eq!(snapshot(store.path()), before);
        store
            .export(&[reference("a")], &dir.path().join("ok.tar"))
            .unwrap();
    }

    #[test]
    fn import_reads_gzip_and_names_other_input() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let src = new_store(&dir, "src");
        let a = add_image(&src, "gz:v1", Some(&wasm_layer("gz")));
        let tar = dir.path().join("x.tar");
        src.export(&[reference("gz:v1")], &tar).unwrap();
        let gz = dir.path().join("x.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&fs::read(&tar).unwrap()).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        let dst = new_store(&dir, "dst");
        assert_eq!(
            dst.import(&gz).unwrap(),
            ["ghcr.io/inspektor-gadget/gadget/gz:v1"]
        );
        assert_eq!(dst.resolve(&reference("gz:v1")).unwrap(), a.index);

        let before = snapshot(dst.path());
        let mut garbage = b"\x1b[31m\x00\x07binary".to_vec();
        garbage.resize(2048, 0xff);
        let mut bad_gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        bad_gzip.write_all(&garbage).unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("zstd", b"\x28\xb5\x2f\xfd rest".to_vec(), "zstd-compressed"),
            ("xz", b"\xfd7zXZ\x00 rest".to_vec(), "xz-compressed"),
            ("zip", b"PK\x03\x04 rest".to_vec(), "zip file"),
            ("short", b"hello".to_vec(), "shorter than one tar header"),
            ("garbage", garbage, "is not a tar archive (it starts with"),
            (
                "gzip of garbage",
                bad_gzip.finish().unwrap(),
                "its gzip content is not a tar",
            ),
            (
                "truncated gzip",
                vec![0x1f, 0x8b, 8, 0, 0, 0],
                "gzip-compressed, but cannot",
            ),
        ];
        for (name, bytes, want) in cases {
            let path = dir.path().join(name);
            fs::write(&path, bytes).unwrap();
            let err = dst.import(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{name}: {err}");
            assert!(
                !err.chars()
                    .any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER),
                "{name}: raw bytes in {err:?}"
            );
            assert_eq!(snapshot(dst.path()), before, "{name}");
        }
        // A tar whose header holds non-UTF-8 numbers: the tar crate's message is escaped.
        let mut block = vec![0u8; 1024];
        block[..4].copy_from_slice(b"x/y\0");
        block[124..136].copy_from_slice(b"\x1b\xff\xfe\x07zzzzzzzz");
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block[..512].iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let path = dir.path().join("bad-header.tar");
        fs::write(&path, &block).unwrap();
        let err = format!("{:#}", anyhow_chain(&dst.import(&path).unwrap_err()));
        assert!(
            !err.chars()
                .any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER),
            "raw bytes in {err:?}"
        );
        assert_eq!(snapshot(dst.path()), before);
    }

    /// The whole error chain as one line.
    fn anyhow_chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cur = c.source();
        }
        out
    }

    #[test]
    fn import_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let src = new_store(&dir, "src");
        let a = add_image(&src, "trace_exec:v1", Some(&wasm_layer("a")));
        let b = add_image(&src, "foo.bar:443/a/b", None);
        add_signature(&src, &b.index, None);
        let out = dir.path().join("x.tar");
        src.export(
            &[reference("trace_exec:v1"), reference("foo.bar:443/a/b")],
            &out,
        )
        .unwrap();

        let dst = new_store(&dir, "dst");
        let kept = add_image(&dst, "already_here", None);
        let tags = dst.import(&out).unwrap();
        let mut sorted = tags.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "foo.bar:443/a/b:latest",
                "ghcr.io/inspektor-gadget/gadget/trace_exec:v1"
            ]
        );
        assert_eq!(dst.resolve(&reference("trace_exec:v1")).unwrap(), a.index);
        assert_eq!(dst.resolve(&reference("foo.bar:443/a/b")).unwrap(), b.index);
        assert_eq!(dst.resolve(&reference("already_here")).unwrap(), kept.index);
        for img in [&a, &b] {
            for m in &img.manifests {
                dst.read_blob(m).unwrap();
            }
            for l in &img.layers {
                dst.read_blob(l).unwrap();
            }
        }
        // The untagged referrer came along.
        let referrers = index_json(dst.path())["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| entry_ref_name(e).is_none())
            .count();
        assert_eq!(referrers, 1);
        if let Some((code, text)) = run_checker(dst.path(), &[]) {
            assert_eq!(code, 0, "{text}");
        }
        // Importing again changes nothing.
        let before = snapshot(dst.path());
        dst.import(&out).unwrap();
        assert_eq!(snapshot(dst.path()), before);
        // Staging is cleaned up.
        assert_eq!(fs::read_dir(dst.path().join("ingest")).unwrap().count(), 0);
        // Export → import → export gives the same bytes.
        let again = dir.path().join("again.tar");
        dst.export(
            &[reference("trace_exec:v1"), reference("foo.bar:443/a/b")],
            &again,
        )
        .unwrap();
        assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
    }

    #[test]
    fn import_keeps_bare_signature_tags_and_reports_only_images() {
        let dir = tempfile::tempdir().unwrap();
        let src = new_store(&dir, "src");
        let a = add_image(&src, "trace_exec:v1", None);
        let b = add_image(&src, "localhost:5000/x/top:v1", None);
        let hex = |d: &Image| Digest::try_from(d.index.digest()).unwrap().hex().to_owned();
        let (a_hex, b_hex) = (hex(&a), hex(&b));
        add_signature(&src, &a.index, Some(&format!("sha256-{a_hex}.sig")));
        // b's signature in the form earlier versions wrote: it is exported (and imported) bare.
        add_signature(
            &src,
            &b.index,
            Some(&format!("localhost:5000/x/top:sha256-{b_hex}.sig")),
        );
        let out = dir.path().join("x.tar");
        src.export(
            &[
                reference("trace_exec:v1"),
                reference("localhost:5000/x/top:v1"),
            ],
            &out,
        )
        .unwrap();

        let dst = new_store(&dir, "dst");
        let mut tags = dst.import(&out).unwrap();
        tags.sort();
        assert_eq!(
            tags,
            [
                "ghcr.io/inspektor-gadget/gadget/trace_exec:v1",
                "localhost:5000/x/top:v1"
            ]
        );
        let mut names: Vec<String> = dst
            .list()
            .unwrap()
            .into_iter()
            .map(|t| t.reference)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "ghcr.io/inspektor-gadget/gadget/trace_exec:v1".to_owned(),
                "localhost:5000/x/top:v1".to_owned(),
                format!("sha256-{a_hex}.sig"),
                format!("sha256-{b_hex}.sig"),
            ]
        );
        assert!(
            dst.list()
                .unwrap()
                .iter()
                .filter(|t| t.is_referrers_tag())
                .count()
                == 2
        );

        // An archive tagged the way an earlier import mangled upstream's bare tag is imported
        // bare too.
        let extracted = dir.path().join("extracted");
        extract(&fs::read(&out).unwrap(), &extracted);
        let mut index = index_json(&extracted);
        for e in index["manifests"].as_array_mut().unwrap() {
            if e["annotations"][REF_NAME_ANNOTATION] == format!("sha256-{a_hex}.sig").as_str() {
                e["annotations"][REF_NAME_ANNOTATION] =
                    format!("ghcr.io/inspektor-gadget/gadget/sha256-{a_hex}.sig:latest").into();
            }
        }
        fs::write(
            extracted.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        let files = valid_files_from(&extracted);
        let mangled = dir.path().join("mangled.tar");
        fs::write(&mangled, build_tar(&files, &[])).unwrap();
        let third = new_store(&dir, "third");
        assert_eq!(third.import(&mangled).unwrap().len(), 2);
        assert!(
            third
                .list()
                .unwrap()
                .iter()
                .any(|t| t.reference == format!("sha256-{a_hex}.sig"))
        );
    }

    /// The files of an extracted layout, as (path, content) pairs.
    fn valid_files_from(root: &Path) -> Files {
        let mut files = Files::new();
        for name in ["oci-layout", "index.json"] {
            files.insert(name.to_owned(), fs::read(root.join(name)).unwrap());
        }
        for e in fs::read_dir(root.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            files.insert(
                format!("blobs/sha256/{}", e.file_name().to_str().unwrap()),
                fs::read(e.path()).unwrap(),
            );
        }
        files
    }

    /// Appends an entry with a raw name (bypassing the tar crate's path checks).
    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        name: &str,
        kind: EntryType,
        data: &[u8],
        link: Option<&str>,
    ) {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.as_gnu_mut().unwrap().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    type Files = BTreeMap<String, Vec<u8>>;

    /// The files of a valid export.
    fn valid_files(dir: &tempfile::TempDir) -> Files {
        let src = new_store(dir, "src");
        add_image(&src, "good", Some(&wasm_layer("good")));
        let out = dir.path().join("good.tar");
        src.export(&[reference("good")], &out).unwrap();
        tar_entries(&fs::read(&out).unwrap())
            .into_iter()
            .filter(|(p, _, _)| !p.ends_with('/'))
            .map(|(p, _, d)| (p, d))
            .collect()
    }

    fn build_tar(files: &Files, extra: &[(&str, EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            raw_entry(&mut b, name, EntryType::Regular, data, None);
        }
        for (name, kind, data, link) in extra {
            raw_entry(&mut b, name, *kind, data, *link);
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn import_refuses_bad_archives_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let files = valid_files(&dir);
        let (blob_name, blob) = files
            .iter()
            .find(|(p, d)| p.starts_with("blobs/") && d.starts_with(b"\0asm"))
            .map(|(p, d)| (p.clone(), d.clone()))
            .unwrap();
        let manifest_name = files
            .iter()
            .find(|(p, d)| {
                p.starts_with("blobs/")
                    && serde_json::from_slice::<Value>(d).is_ok_and(|v| v.get("layers").is_some())
            })
            .map(|(p, _)| p.clone())
            .unwrap();

        let store = new_store(&dir, "victim");
        add_image(&store, "existing", Some(&wasm_layer("existing")));
        let before = snapshot(store.path());

        let mut tampered = files.clone();
        tampered.insert(blob_name.clone(), b"\0asm-not-what-the-name-says".to_vec());
        let mut missing = files.clone();
        missing.remove(&manifest_name);
        let mut no_index = files.clone();
        no_index.remove("index.json");
        let mut no_layout = files.clone();
        no_layout.remove("oci-layout");
        let mut bad_ref = files.clone();
        let mut idx: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        idx["manifests"][0]["annotations"][REF_NAME_ANNOTATION] = json!("https://evil/x");
        bad_ref.insert("index.json".into(), serde_json::to_vec(&idx).unwrap());
        let mut untagged = files.clone();
        idx["manifests"][0]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(REF_NAME_ANNOTATION);
        untagged.insert("index.json".into(), serde_json::to_vec(&idx).unwrap());
        let mut bad_layout = files.clone();
        bad_layout.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"9"}"#.to_vec(),
        );

        let mismatch_needle = format!("entry `{blob_name}` hashes to `sha256:");
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "parent traversal",
                build_tar(&files, &[("../evil", EntryType::Regular, b"x", None)]),
                "entry `../evil` has a `..` component",
            ),
            (
                "nested traversal",
                build_tar(
                    &files,
                    &[("blobs/../../evil", EntryType::Regular, b"x", None)],
                ),
                "`..` component",
            ),
            (
                "absolute path",
                build_tar(&files, &[("/tmp/evil", EntryType::Regular, b"x", None)]),
                "entry `/tmp/evil` has an absolute path",
            ),
            (
                "symlink",
                build_tar(
                    &files,
                    &[(
                        "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000",
                        EntryType::Symlink,
                        b"",
                        Some("/etc/passwd"),
                    )],
                ),
                "is a symbolic link",
            ),
            (
                "hard link",
                build_tar(
                    &files,
                    &[("evil", EntryType::Link, b"", Some("oci-layout"))],
                ),
                "entry `evil` is a hard link",
            ),
            (
                "fifo",
                build_tar(&files, &[("fifo", EntryType::Fifo, b"", None)]),
                "is a FIFO",
            ),
            (
                "device",
                build_tar(&files, &[("dev", EntryType::Char, b"", None)]),
                "is a device",
            ),
            (
                "unexpected file",
                build_tar(&files, &[("README.md", EntryType::Regular, b"hi", None)]),
                "entry `README.md` is not part of an OCI image layout",
            ),
            (
                "unexpected directory",
                build_tar(
                    &files,
                    &[("blobs/sha512/", EntryType::Directory, b"", None)],
                ),
                "is a directory that is not part of an OCI image layout",
            ),
            (
                "badly named blob",
                build_tar(
                    &files,
                    &[("blobs/sha256/abc", EntryType::Regular, b"x", None)],
                ),
                "is not named after a sha256 digest",
            ),
            (
                "duplicate",
                build_tar(
                    &files,
                    &[(blob_name.as_str(), EntryType::Regular, &blob, None)],
                ),
                "appears more than once",
            ),
            (
                "digest mismatch",
                build_tar(&tampered, &[]),
                &mismatch_needle,
            ),
            (
                "missing blob",
                build_tar(&missing, &[]),
                "is incomplete: blob `sha256:",
            ),
            (
                "no index.json",
                build_tar(&no_index, &[]),
                "no `index.json`",
            ),
            (
                "no oci-layout",
                build_tar(&no_layout, &[]),
                "no `oci-layout`",
            ),
            (
                "bad oci-layout",
                build_tar(&bad_layout, &[]),
                "`imageLayoutVersion` `1.0.0`",
            ),
            (
                "bad reference",
                build_tar(&bad_ref, &[]),
                "invalid reference",
            ),
            (
                "nothing tagged",
                build_tar(&untagged, &[]),
                "no tagged image",
            ),
            (
                "not a tar",
                b"this is not a tar file at all".repeat(40),
                "it is not a tar archive (it starts with `this is not a ta`)",
            ),
        ];
        for (what, data, needle) in cases {
            let path = dir.path().join("bad.tar");
            fs::write(&path, &data).unwrap();
            let err = store.import(&path).expect_err(what);
            let msg = format!(
                "{err}: {}",
                std::error::Error::source(&err)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            assert!(msg.contains(needle), "{what}: `{msg}` lacks `{needle}`");
            assert!(
                msg.contains(&path.display().to_string()),
                "{what}: `{msg}` does not name the archive"
            );
            assert_eq!(snapshot(store.path()), before, "{what}: the store changed");
            assert_eq!(
                fs::read_dir(store.path().join("ingest")).unwrap().count(),
                0,
                "{what}"
            );
        }
        assert!(!dir.path().join("evil").exists());

        // The untouched valid archive imports fine into the same store.
        let path = dir.path().join("good-again.tar");
        fs::write(&path, build_tar(&files, &[])).unwrap();
        assert_eq!(
            store.import(&path).unwrap(),
            ["ghcr.io/inspektor-gadget/gadget/good:latest"]
        );
    }

    #[test]
    fn import_accepts_upstream_layout_extras() {
        let dir = tempfile::tempdir().unwrap();
        let files = valid_files(&dir);
        // `./` prefixes, directory entries, an empty `ingest/`, a lock file and a pax global
        // header, as tools that tar a whole layout directory produce.
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(&mut b, "./", EntryType::Directory, b"", None);
        raw_entry(&mut b, "./ingest/", EntryType::Directory, b"", None);
        raw_entry(&mut b, "./blobs/", EntryType::Directory, b"", None);
        raw_entry(&mut b, "./blobs/sha256/", EntryType::Directory, b"", None);
        raw_entry(&mut b, "./index.json.lock", EntryType::Regular, b"", None);
        raw_entry(
            &mut b,
            "pax_global_header",
            EntryType::XGlobalHeader,
            b"",
            None,
        );
        for (name, data) in files.iter().rev() {
            raw_entry(&mut b, &format!("./{name}"), EntryType::Regular, data, None);
        }
        let path = dir.path().join("upstream.tar");
        fs::write(&path, b.into_inner().unwrap()).unwrap();
        let store = new_store(&dir, "dst");
        assert_eq!(
            store.import(&path).unwrap(),
            ["ghcr.io/inspektor-gadget/gadget/good:latest"]
        );
    }

    #[test]
    fn entry_paths() {
        assert_eq!(normalize_entry_path("./a/b/").unwrap(), "a/b");
        assert_eq!(normalize_entry_path("././a").unwrap(), "a");
        assert_eq!(normalize_entry_path("./").unwrap(), "");
        assert_eq!(normalize_entry_path(".").unwrap(), "");
        assert!(normalize_entry_path("a/../b").is_err());
        assert!(normalize_entry_path("a//b").is_err());
        assert!(normalize_entry_path("a/./b").is_err());
        assert!(normalize_entry_path("/a").is_err());
        assert!(normalize_entry_path("..").is_err());
    }
}
