//! The local image store: an OCI image layout shared with upstream `ig` (spec §5).
//!
//! Layout: `oci-layout`, `index.json`, `blobs/sha256/<hex>`, plus `index.json.lock` (the flock
//! shared with `ig`) and `ingest/` (temp files, renamed into `blobs/` once complete).
//!
//! Every change happens inside [`Store::transaction`], which holds the lock from loading
//! `index.json` to saving it, so blob writes and tags cannot race with another process's garbage
//! collection. `index.json` is saved atomically (temp file, fsync, rename, fsync of the
//! directory) and only when it changed. Entries this crate does not understand are kept as they
//! are.
//!
//! No network, no kernel.
//!
//! ```no_run
//! use gadget_store::{Reference, Store};
//! use oci_spec::image::MediaType;
//!
//! # fn main() -> Result<(), gadget_store::StoreError> {
//! let store = Store::open_default()?;
//! let reference: Reference = "trace_exec:v1".parse().unwrap();
//! store.transaction(|tx| {
//!     let config = tx.write_blob(b"{}")?;
//!     # let _ = config;
//!     // ... write layers, manifests, then the index, then tag it:
//!     let index = tx.write_json(MediaType::ImageIndex, &serde_json::json!({"schemaVersion": 2, "manifests": []}))?;
//!     tx.tag(&reference, index)?;
//!     Ok::<_, gadget_store::StoreError>(())
//! })?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::ffi::CStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, MediaType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::canonical::to_canonical_json;
use crate::digest::Digest;
use crate::error::{IoContext, StoreError};
use crate::graph::{BlobDir, Children, is_document_type, looks_like_document, subject_digest};
use crate::layout::{
    self, DIR_MODE, INDEX_FILE, INGEST_DIR, IndexFile, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE,
    REF_NAME_ANNOTATION, blob_is_intact, blob_path, blobs_dir, copy_hashing, create_dir_all,
    entry_digest, entry_media_type, entry_ref_name, read_limited, sync_dir, write_file_atomic,
};
use crate::lock::StoreLock;
use crate::reference::Reference;
use crate::signatures::{bare_form, is_bare_tag, tag_subject};

/// The store of root (euid 0).
pub const ROOT_STORE_PATH: &str = "/var/lib/ig/oci-store";
/// The store of other users, relative to their home directory.
pub const USER_STORE_SUBDIR: &str = ".ig/oci-store";
/// Unreachable blobs larger than this are not examined as possible referrers.
const MAX_REFERRER_SIZE: u64 = 4 << 20;

/// The store path upstream `ig` uses: `/var/lib/ig/oci-store` for root, else
/// `~/.ig/oci-store` with the home directory from the passwd database (falling back to `$HOME`).
pub fn default_store_path() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from(ROOT_STORE_PATH);
    }
    let home = passwd_home()
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(USER_STORE_SUBDIR)
}

/// Upstream's store of the user `name` (`<home>/.ig/oci-store`, the home directory from the
/// passwd database), for `sudo ... --oci-store-user`. `None` when there is no such user.
pub fn user_store_path(name: &str) -> Option<PathBuf> {
    let name = std::ffi::CString::new(name).ok()?;
    passwd_lookup(|pwd, buf, len, result| {
        // SAFETY: every pointer is valid for the duration of the call and `len` is the real
        // length of `buf`.
        unsafe { libc::getpwnam_r(name.as_ptr(), pwd, buf, len, result) }
    })
    .map(|home| home.join(USER_STORE_SUBDIR))
}

/// The effective user's home directory from the passwd database.
fn passwd_home() -> Option<PathBuf> {
    let uid = rustix::process::geteuid().as_raw();
    passwd_lookup(|pwd, buf, len, result| {
        // SAFETY: every pointer is valid for the duration of the call and `len` is the real
        // length of `buf`.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    })
}

/// The home directory of the passwd entry `lookup` finds (`getpwuid_r` or `getpwnam_r`,
/// called with a growing buffer).
fn passwd_lookup(
    lookup: impl Fn(
        *mut libc::passwd,
        *mut libc::c_char,
        libc::size_t,
        *mut *mut libc::passwd,
    ) -> libc::c_int,
) -> Option<PathBuf> {
    let mut buf_len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; buf_len];
        // SAFETY: an all-zero `passwd` (null pointers, zero ids) is a valid value to overwrite.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = lookup(&mut pwd, buf.as_mut_ptr(), buf_len, &mut result);
        if rc == libc::ERANGE && buf_len < (1 << 20) {
            buf_len *= 4;
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: on success `pw_dir` points at a NUL-terminated string inside `buf`, which is
        // still alive here.
        let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
        let dir = std::ffi::OsStr::from_bytes(dir.to_bytes());
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
}

/// A tagged entry of `index.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedImage {
    /// The full normalized reference (the `org.opencontainers.image.ref.name` annotation, or the
    /// annotation as written if it does not parse as a reference).
    pub reference: String,
    /// The descriptor, without the `ref.name` annotation.
    pub descriptor: Descriptor,
}

impl TaggedImage {
    /// The reference, parsed.
    pub fn parsed(&self) -> Option<Reference> {
        self.reference.parse().ok()
    }

    /// Whether the tag is a signature or referrers tag (bare `sha256-<hex>[.sig]`, or a form
    /// earlier versions wrote, see [`crate::signatures::bare_form`]), not an image users tagged.
    pub fn is_referrers_tag(&self) -> bool {
        bare_form(&self.reference).is_some()
    }
}

/// What garbage collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Number of blobs deleted.
    pub deleted_blobs: usize,
    /// Their total size.
    pub deleted_bytes: u64,
    /// Set when collection was skipped because part of the graph could not be read (a missing
    /// or corrupt manifest): deleting anything then could delete live content.
    pub skipped: Option<String>,
}

/// What [`Store::remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveReport {
    /// The full reference that was untagged.
    pub reference: String,
    /// The digest it pointed at.
    pub digest: Option<Digest>,
    /// Untagged `index.json` entries dropped with it (per-arch children, dangling referrers).
    pub dropped_entries: usize,
    /// The garbage collection that followed.
    pub gc: GcReport,
}

/// An OCI image layout directory used as the local image store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `path`, creating it (mode 0700) and its `oci-layout`, `index.json` and
    /// `blobs/sha256/` if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        create_dir_all(path, 0o700)?;
        let root = fs::canonicalize(path).ctx("resolve the store path", path)?;
        let store = Store { root };
        let _lock = StoreLock::acquire(&store.root)?;
        store.init_layout()?;
        Ok(store)
    }

    /// Opens the store at [`default_store_path`].
    pub fn open_default() -> Result<Self, StoreError> {
        Self::open(default_store_path())
    }

    fn init_layout(&self) -> Result<(), StoreError> {
        let layout_path = self.root.join(OCI_LAYOUT_FILE);
        match read_limited(&layout_path, 64 << 10) {
            Ok(data) => check_oci_layout(&data, &layout_path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_file_atomic(&layout_path, OCI_LAYOUT_CONTENT)?;
            }
            Err(e) => return Err(StoreError::io("read", &layout_path, e)),
        }
        create_dir_all(&blobs_dir(&self.root), DIR_MODE)?;
        let mut index = IndexFile::load(&self.root)?;
        index.save_if_changed(&self.root)?;
        Ok(())
    }

    /// The store's root directory (canonical).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives (it may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.root, digest)
    }

    /// Whether a blob file exists (its content is not checked).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a blob, always checking that it hashes to `digest`.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        layout::read_verified(&self.root, digest)
    }

    /// Reads a verified blob and decodes it as JSON.
    pub fn read_json<T: DeserializeOwned>(&self, digest: &Digest) -> Result<T, StoreError> {
        let data = self.read_blob(digest)?;
        serde_json::from_slice(&data).map_err(|e| StoreError::InvalidDocument {
            digest: digest.clone(),
            path: self.blob_path(digest),
            what: short_type_name::<T>(),
            source: Some(e),
        })
    }

    /// Runs `f` with the store locked and `index.json` loaded; saves `index.json` afterwards if
    /// `f` succeeded and changed it. When `f` fails nothing is saved (blobs it wrote stay until
    /// the next garbage collection).
    ///
    /// Do not call other `Store` methods from inside `f` (they would need the lock this thread
    /// holds; that is reported as [`StoreError::Reentrant`]): use the [`Transaction`].
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let lock = StoreLock::acquire(&self.root)?;
        let index = IndexFile::load(&self.root)?;
        let mut tx = Transaction {
            store: self,
            index,
            _lock: lock,
        };
        let out = f(&mut tx)?;
        tx.index.save_if_changed(&self.root)?;
        Ok(out)
    }

    /// Tags `descriptor` as `reference` (see [`Transaction::tag`]).
    pub fn tag(
        &self,
        reference: &Reference,
        descriptor: Descriptor,
    ) -> Result<Option<Descriptor>, StoreError> {
        self.transaction(|tx| tx.tag(reference, descriptor))
    }

    /// Looks a reference up (see [`Transaction::resolve`]).
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        self.transaction(|tx| tx.resolve(reference))
    }

    /// Every tagged entry, in `index.json` order.
    pub fn list(&self) -> Result<Vec<TaggedImage>, StoreError> {
        self.transaction(|tx| Ok(tx.list()))
    }

    /// Untags `reference` and garbage-collects (see [`Transaction::remove`]).
    pub fn remove(&self, reference: &Reference) -> Result<RemoveReport, StoreError> {
        self.transaction(|tx| tx.remove(reference))
    }

    /// Removes a bare signature or referrers tag (see [`Transaction::remove_bare`]).
    pub fn remove_bare(&self, name: &str) -> Result<RemoveReport, StoreError> {
        self.transaction(|tx| tx.remove_bare(name))
    }

    /// Deletes every blob not reachable from `index.json` (see [`Transaction::gc`]).
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        self.transaction(|tx| tx.gc())
    }

    pub(crate) fn blob_dir(&self) -> BlobDir {
        BlobDir {
            dir: blobs_dir(&self.root),
            location: self.root.clone(),
        }
    }

    pub(crate) fn ingest_dir(&self) -> Result<PathBuf, StoreError> {
        let dir = self.root.join(INGEST_DIR);
        create_dir_all(&dir, DIR_MODE)?;
        Ok(dir)
    }
}

fn check_oci_layout(data: &[u8], path: &Path) -> Result<(), StoreError> {
    let version = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_owned));
    match version.as_deref() {
        Some("1.0.0") => Ok(()),
        Some(v) => Err(StoreError::InvalidLayout {
            path: path.to_owned(),
            reason: format!("unsupported `imageLayoutVersion` `{v}` (expected `1.0.0`)"),
        }),
        None => Err(StoreError::InvalidLayout {
            path: path.to_owned(),
            reason: "`oci-layout` has no `imageLayoutVersion`".into(),
        }),
    }
}

pub(crate) fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// The normalized form of a `ref.name` annotation: a bare signature tag as it is (see
/// [`crate::signatures`]), else the full reference when it parses.
pub(crate) fn normalize_ref_name(raw: &str) -> String {
    if is_bare_tag(raw) {
        return raw.to_owned();
    }
    Reference::parse(raw).map_or_else(|_| raw.to_owned(), |r| r.full())
}

/// A descriptor as an `index.json` entry, with `ref.name` set when `name` is given.
pub(crate) fn descriptor_to_entry(
    descriptor: &Descriptor,
    name: Option<&str>,
) -> Result<Value, StoreError> {
    let mut v = serde_json::to_value(descriptor).map_err(|e| StoreError::Encode {
        what: "a descriptor".into(),
        source: e,
    })?;
    if let (Some(name), Value::Object(obj)) = (name, &mut v) {
        let ann = obj
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if !ann.is_object() {
            *ann = Value::Object(Default::default());
        }
        if let Value::Object(ann) = ann {
            ann.insert(REF_NAME_ANNOTATION.into(), Value::from(name));
        }
    }
    Ok(v)
}

/// An `index.json` entry as a descriptor, without its `ref.name`.
pub(crate) fn entry_to_descriptor(entry: &Value, path: &Path) -> Result<Descriptor, StoreError> {
    let name = entry_ref_name(entry)
        .map(str::to_owned)
        .or_else(|| entry.get("digest")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "<no digest>".into());
    let invalid = |reason: String| StoreError::InvalidEntry {
        name: name.clone(),
        path: path.to_owned(),
        reason,
    };
    let mut e = entry.clone();
    if let Some(Value::Object(ann)) = e.get_mut("annotations") {
        ann.remove(REF_NAME_ANNOTATION);
        if ann.is_empty() {
            if let Value::Object(obj) = &mut e {
                obj.remove("annotations");
            }
        }
    }
    let desc: Descriptor = serde_json::from_value(e).map_err(|err| invalid(err.to_string()))?;
    Digest::try_from(desc.digest()).map_err(|err| invalid(err.to_string()))?;
    Ok(desc)
}

/// The store locked, with `index.json` loaded; see [`Store::transaction`].
#[derive(Debug)]
pub struct Transaction<'s> {
    store: &'s Store,
    pub(crate) index: IndexFile,
    _lock: StoreLock,
}

impl Transaction<'_> {
    /// The store.
    pub fn store(&self) -> &Store {
        self.store
    }

    fn index_path(&self) -> PathBuf {
        self.store.root.join(INDEX_FILE)
    }

    /// Writes a blob (idempotent: an intact existing copy is kept, a damaged one replaced).
    pub fn write_blob(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(data);
        let dest = self.store.blob_path(&digest);
        if blob_is_intact(&dest, &digest, data.len() as u64)? {
            return Ok(digest);
        }
        let ingest = self.store.ingest_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&ingest)
            .ctx("create a temporary file in", &ingest)?;
        tmp.write_all(data)
            .and_then(|()| tmp.as_file().sync_all())
            .ctx("write", tmp.path())?;
        self.install(tmp.into_temp_path(), &digest)?;
        Ok(digest)
    }

    /// Streams a blob into the store, returning its digest and size. With `expected`, a content
    /// that hashes differently is refused ([`StoreError::DigestMismatch`]) and nothing is stored.
    pub fn write_blob_from_reader(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let ingest = self.store.ingest_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&ingest)
            .ctx("create a temporary file in", &ingest)?;
        let (digest, size) = copy_hashing(reader, tmp.as_file_mut())
            .and_then(|r| tmp.as_file().sync_all().map(|()| r))
            .ctx("write", tmp.path())?;
        if let Some(expected) = expected {
            if expected != &digest {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                    path: tmp.path().to_owned(),
                });
            }
        }
        if !blob_is_intact(&self.store.blob_path(&digest), &digest, size)? {
            self.install(tmp.into_temp_path(), &digest)?;
        }
        Ok((digest, size))
    }

    /// Moves a complete, synced, verified file into `blobs/sha256/`.
    fn install(&self, tmp: tempfile::TempPath, digest: &Digest) -> Result<(), StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let dest = self.store.blob_path(digest);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(layout::FILE_MODE))
            .ctx("set the permissions of", &tmp)?;
        tmp.persist(&dest)
            .map_err(|e| StoreError::io("rename a temporary file to", &dest, e.error))?;
        sync_dir(&blobs_dir(&self.store.root))
    }

    /// Moves a staged file (already hashed to `digest`, same filesystem) into the store.
    pub(crate) fn install_staged(
        &self,
        staged: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        if blob_is_intact(&self.store.blob_path(digest), digest, size)? {
            return Ok(());
        }
        use std::os::unix::fs::PermissionsExt;
        File::open(staged)
            .and_then(|f| f.sync_all())
            .ctx("sync", staged)?;
        fs::set_permissions(staged, fs::Permissions::from_mode(layout::FILE_MODE))
            .ctx("set the permissions of", staged)?;
        let dest = self.store.blob_path(digest);
        fs::rename(staged, &dest).ctx("move a staged blob to", &dest)?;
        sync_dir(&blobs_dir(&self.store.root))
    }

    /// Encodes `value` with [`to_canonical_json`], stores it, and returns its descriptor.
    pub fn write_json<T: Serialize + ?Sized>(
        &self,
        media_type: MediaType,
        value: &T,
    ) -> Result<Descriptor, StoreError> {
        let data = to_canonical_json(value).map_err(|e| StoreError::Encode {
            what: format!("a `{media_type}` document"),
            source: e,
        })?;
        let digest = self.write_blob(&data)?;
        Ok(Descriptor::new(
            media_type,
            data.len() as u64,
            digest.to_oci(),
        ))
    }

    /// See [`Store::has_blob`].
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.store.has_blob(digest)
    }

    /// See [`Store::read_blob`].
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.store.read_blob(digest)
    }

    /// See [`Store::read_json`].
    pub fn read_json<T: DeserializeOwned>(&self, digest: &Digest) -> Result<T, StoreError> {
        self.store.read_json(digest)
    }

    /// The raw `index.json` entries, including untagged ones.
    pub fn raw_entries(&self) -> &[Value] {
        &self.index.entries
    }

    pub(crate) fn positions_of(&self, full: &str) -> Vec<usize> {
        self.index
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| entry_ref_name(e).is_some_and(|n| normalize_ref_name(n) == full))
            .map(|(i, _)| i)
            .collect()
    }

    fn require_tag(reference: &Reference) -> Result<String, StoreError> {
        if reference.digest().is_some() {
            return Err(StoreError::NotATag {
                reference: reference.full(),
                reason: "it pins a digest",
            });
        }
        if reference.tag().is_none() {
            return Err(StoreError::NotATag {
                reference: reference.full(),
                reason: "it has no tag",
            });
        }
        Ok(reference.full())
    }

    /// Tags `descriptor` as `reference` (which must have a tag and no digest), replacing any
    /// entry with that name. The descriptor's whole graph must already be in the store (checked:
    /// every blob present with the right size). Returns the descriptor the name pointed at
    /// before, if any.
    pub fn tag(
        &mut self,
        reference: &Reference,
        descriptor: Descriptor,
    ) -> Result<Option<Descriptor>, StoreError> {
        let full = Self::require_tag(reference)?;
        self.tag_name(&full, descriptor)
    }

    /// Sets `entry` (which carries `full` as its `ref.name`) in place of any entry with that
    /// name; returns the previous descriptor.
    pub(crate) fn put_tagged_entry(&mut self, full: &str, entry: Value) -> Option<Descriptor> {
        let positions = self.positions_of(full);
        let index_path = self.index_path();
        let previous = positions
            .first()
            .and_then(|&i| entry_to_descriptor(&self.index.entries[i], &index_path).ok());
        match positions.split_first() {
            Some((&first, rest)) => {
                self.index.entries[first] = entry;
                for &i in rest.iter().rev() {
                    self.index.entries.remove(i);
                }
            }
            None => self.index.entries.push(entry),
        }
        previous
    }

    /// Adds an untagged entry (e.g. a referrer) unless an untagged entry with that digest is
    /// already listed. Returns whether it was added.
    pub fn add_untagged(&mut self, descriptor: &Descriptor) -> Result<bool, StoreError> {
        let entry = descriptor_to_entry(descriptor, None)?;
        Ok(self.add_untagged_entry(entry))
    }

    pub(crate) fn add_untagged_entry(&mut self, entry: Value) -> bool {
        let digest = entry.get("digest").cloned();
        let present = self
            .index
            .entries
            .iter()
            .any(|e| entry_ref_name(e).is_none() && e.get("digest") == digest.as_ref());
        if !present {
            self.index.entries.push(entry);
        }
        !present
    }

    /// Removes the tag `reference` without collecting garbage; returns what it pointed at.
    pub fn untag(&mut self, reference: &Reference) -> Result<Option<Descriptor>, StoreError> {
        let full = Self::require_tag(reference)?;
        let positions = self.positions_of(&full);
        let index_path = self.index_path();
        let previous = positions
            .first()
            .and_then(|&i| entry_to_descriptor(&self.index.entries[i], &index_path).ok());
        for &i in positions.iter().rev() {
            self.index.entries.remove(i);
        }
        Ok(previous)
    }

    /// Looks a reference up.
    ///
    /// With a tag and no digest: the entry whose `ref.name` is the full reference. With a
    /// digest: an entry with that digest (preferring the same name), else the blob itself when
    /// it is an OCI index or manifest in the store.
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        let index_path = self.index_path();
        let Some(digest) = reference.digest() else {
            let full = reference.full();
            return match self.positions_of(&full).first() {
                Some(&i) => entry_to_descriptor(&self.index.entries[i], &index_path),
                None => Err(self.not_found(reference)),
            };
        };
        let by_digest: Vec<&Value> = self
            .index
            .entries
            .iter()
            .filter(|e| entry_digest(e).as_ref() == Some(digest))
            .collect();
        let same_name = reference.tag().map(|_| reference.without_digest().full());
        let same_repo = reference.name();
        let pick = by_digest
            .iter()
            .find(|e| {
                same_name.is_some()
                    && entry_ref_name(e).map(normalize_ref_name) == same_name.clone()
            })
            .or_else(|| {
                by_digest.iter().find(|e| {
                    entry_ref_name(e)
                        .and_then(|n| Reference::parse(n).ok())
                        .is_some_and(|r| r.name() == same_repo)
                })
            })
            .or_else(|| by_digest.first());
        if let Some(entry) = pick {
            return entry_to_descriptor(entry, &index_path);
        }
        if !self.has_blob(digest) {
            return Err(self.not_found(reference));
        }
        let data = self.read_blob(digest)?;
        let doc: Value =
            serde_json::from_slice(&data).map_err(|e| StoreError::InvalidDocument {
                digest: digest.clone(),
                path: self.store.blob_path(digest),
                what: "OCI index or manifest".into(),
                source: Some(e),
            })?;
        let media_type = match doc.get("mediaType").and_then(Value::as_str) {
            Some(mt) => MediaType::from(mt),
            None if doc.get("manifests").is_some() => MediaType::ImageIndex,
            None => MediaType::ImageManifest,
        };
        Ok(Descriptor::new(
            media_type,
            data.len() as u64,
            digest.to_oci(),
        ))
    }

    fn not_found(&self, reference: &Reference) -> StoreError {
        let wanted = reference.display_name();
        let last = wanted.rsplit('/').next().unwrap_or(&wanted).to_owned();
        let mut similar: Vec<String> = self
            .list()
            .into_iter()
            .filter(|t| !t.is_referrers_tag())
            .filter_map(|t| t.parsed())
            .filter(|r| {
                let name = r.display_name();
                name == wanted || name.rsplit('/').next() == Some(last.as_str())
            })
            .map(|r| r.display())
            .collect();
        similar.sort();
        similar.dedup();
        similar.truncate(5);
        StoreError::NotFound {
            reference: reference.full(),
            store: self.store.root.clone(),
            similar,
        }
    }

    /// Every tagged entry, in `index.json` order. Entries that do not parse as descriptors are
    /// skipped with a warning (and kept in `index.json`).
    pub fn list(&self) -> Vec<TaggedImage> {
        let index_path = self.index_path();
        self.index
            .entries
            .iter()
            .filter_map(|e| {
                let name = entry_ref_name(e)?;
                match entry_to_descriptor(e, &index_path) {
                    Ok(descriptor) => Some(TaggedImage {
                        reference: normalize_ref_name(name),
                        descriptor,
                    }),
                    Err(err) => {
                        log::warn!("skipping an entry of the store: {err}");
                        None
                    }
                }
            })
            .collect()
    }

    /// Every digest reachable from `roots`, walking manifests leniently: a missing or unreadable
    /// document is recorded in `problems` and its children are unknown.
    fn closure<'v>(
        &self,
        roots: impl IntoIterator<Item = &'v Value>,
        reachable: &mut BTreeSet<Digest>,
        problems: &mut Vec<String>,
    ) {
        let blobs = self.store.blob_dir();
        let mut stack: Vec<(Value, bool)> = roots.into_iter().map(|v| (v.clone(), true)).collect();
        while let Some((desc, is_root)) = stack.pop() {
            let Some(digest) = entry_digest(&desc) else {
                if !is_root {
                    problems.push(format!(
                        "a descriptor has an unusable digest: {}",
                        desc.get("digest").unwrap_or(&Value::Null)
                    ));
                }
                continue;
            };
            if !reachable.insert(digest.clone()) {
                continue;
            }
            let media_type = entry_media_type(&desc);
            let known_container = is_document_type(media_type);
            if !(known_container || (is_root && self.sniff_document(&digest))) {
                continue;
            }
            match blobs.read_document(&digest) {
                Ok(doc) => stack.extend(
                    Children::of(&doc)
                        .all()
                        .into_iter()
                        .map(|c| (c.clone(), false)),
                ),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }

    /// Whether a blob of unknown media type is a small JSON OCI document.
    fn sniff_document(&self, digest: &Digest) -> bool {
        let path = self.store.blob_path(digest);
        let Ok(meta) = fs::metadata(&path) else {
            return false;
        };
        if meta.len() > MAX_REFERRER_SIZE {
            return false;
        }
        read_limited(&path, MAX_REFERRER_SIZE)
            .ok()
            .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
            .is_some_and(|v| looks_like_document(&v))
    }

    /// Untags `reference`, drops untagged `index.json` entries that only belonged to its graph
    /// (per-arch children listed by upstream `ig`, referrers of its digests), saves `index.json`,
    /// then garbage-collects ([`Transaction::gc`]). Blobs shared with other images stay.
    ///
    /// Signature and referrers tags of content that goes (`sha256-<hex>.sig`, `sha256-<hex>`,
    /// in any form [`crate::signatures::bare_form`] reads) go with it; they stay while another
    /// tag still holds that content.
    pub fn remove(&mut self, reference: &Reference) -> Result<RemoveReport, StoreError> {
        let full = Self::require_tag(reference)?;
        if self.positions_of(&full).is_empty() {
            return Err(self.not_found(reference));
        }
        self.remove_named(full)
    }

    /// Removes the bare signature or referrers tag `name` (`sha256-<hex>.sig`, `sha256-<hex>`),
    /// like [`Transaction::remove`] removes an image tag.
    pub fn remove_bare(&mut self, name: &str) -> Result<RemoveReport, StoreError> {
        if !is_bare_tag(name) {
            return Err(StoreError::NotATag {
                reference: name.to_owned(),
                reason: "a bare signature tag is `sha256-<64 hex digits>` with an optional \
                         suffix such as `.sig`",
            });
        }
        if self.positions_of(name).is_empty() {
            return Err(StoreError::NotFound {
                reference: name.to_owned(),
                store: self.store.root.clone(),
                similar: Vec::new(),
            });
        }
        self.remove_named(name.to_owned())
    }

    fn remove_named(&mut self, full: String) -> Result<RemoveReport, StoreError> {
        let positions = self.positions_of(&full);
        let digest = entry_digest(&self.index.entries[positions[0]]);
        let removed: Vec<Value> = positions
            .iter()
            .rev()
            .map(|&i| self.index.entries.remove(i))
            .collect();

        let mut dropped_entries = 0;
        let still_tagged = digest.as_ref().is_some_and(|d| {
            self.index
                .entries
                .iter()
                .any(|e| entry_ref_name(e).is_some() && entry_digest(e).as_ref() == Some(d))
        });
        if !still_tagged {
            let mut problems = Vec::new();
            let mut removed_graph = BTreeSet::new();
            self.closure(&removed, &mut removed_graph, &mut problems);
            let mut live = BTreeSet::new();
            let tagged: Vec<Value> = self
                .index
                .entries
                .iter()
                .filter(|e| entry_ref_name(e).is_some())
                .cloned()
                .collect();
            self.closure(&tagged, &mut live, &mut problems);
            let blobs = self.store.blob_dir();
            let orphaned = |d: &Digest| removed_graph.contains(d) && !live.contains(d);
            let before = self.index.entries.len();
            self.index.entries.retain(|e| {
                if let Some(name) = entry_ref_name(e) {
                    // The signature and referrers tags of content that goes.
                    return !tag_subject(name)
                        .and_then(|hex| Digest::from_hex(&hex).ok())
                        .is_some_and(|s| orphaned(&s));
                }
                let Some(d) = entry_digest(e) else {
                    return true;
                };
                if orphaned(&d) {
                    return false;
                }
                if removed_graph.contains(&d) || !is_document_type(entry_media_type(e)) {
                    return true;
                }
                // An untagged referrer whose subject was part of the removed graph only.
                match blobs.read_document(&d) {
                    Ok(doc) => !subject_digest(&doc).is_some_and(|s| orphaned(&s)),
                    Err(_) => true,
                }
            });
            dropped_entries = before - self.index.entries.len();
        }
        self.index.save_if_changed(&self.store.root)?;
        let gc = self.gc()?;
        Ok(RemoveReport {
            reference: full,
            digest,
            dropped_entries,
            gc,
        })
    }

    /// Saves `index.json` if it changed, then deletes every blob not reachable from any of its
    /// entries (tagged or not). Referrers stay when their `subject` is reachable, even if only
    /// their blobs (not an entry) are in the store. If part of the graph cannot be read, nothing
    /// is deleted and [`GcReport::skipped`] says why.
    pub fn gc(&mut self) -> Result<GcReport, StoreError> {
        self.index.save_if_changed(&self.store.root)?;
        let mut problems = Vec::new();
        let mut reachable = BTreeSet::new();
        self.closure(&self.index.entries.clone(), &mut reachable, &mut problems);

        let dir = blobs_dir(&self.store.root);
        let mut candidates: Vec<(Digest, u64)> = Vec::new();
        let read_dir = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(GcReport::default()),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        for item in read_dir {
            let item = item.ctx("list", &dir)?;
            let name = item.file_name();
            let Some(digest) = name.to_str().and_then(|n| Digest::from_hex(n).ok()) else {
                continue;
            };
            let meta = item.metadata().ctx("inspect", &item.path())?;
            if !meta.is_file() || reachable.contains(&digest) {
                continue;
            }
            candidates.push((digest, meta.len()));
        }

        // Referrers (signatures, attestations) that are only blobs: kept when their subject is.
        let blobs = self.store.blob_dir();
        let mut subjects: HashMap<Digest, Digest> = HashMap::new();
        for (digest, size) in &candidates {
            if *size > MAX_REFERRER_SIZE {
                continue;
            }
            if let Ok(doc) = blobs.read_document(digest) {
                if looks_like_document(&doc) {
                    if let Some(s) = subject_digest(&doc) {
                        subjects.insert(digest.clone(), s);
                    }
                }
            }
        }
        loop {
            let newly: Vec<Digest> = subjects
                .iter()
                .filter(|(r, s)| !reachable.contains(*r) && reachable.contains(*s))
                .map(|(r, _)| r.clone())
                .collect();
            if newly.is_empty() {
                break;
            }
            for r in newly {
                let media_type = blobs
                    .read_document(&r)
                    .ok()
                    .and_then(|d| {
                        d.get("mediaType")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| layout::MEDIA_TYPE_MANIFEST.to_owned());
                let media_type = if is_document_type(&media_type) {
                    media_type
                } else {
                    layout::MEDIA_TYPE_MANIFEST.to_owned()
                };
                let desc = serde_json::json!({"mediaType": media_type, "digest": r.as_str()});
                self.closure([&desc], &mut reachable, &mut problems);
            }
        }

        if !problems.is_empty() {
            problems.sort();
            problems.dedup();
            let reason = problems.join("; ");
            log::warn!(
                "not collecting garbage in the store at `{}`: {reason}",
                self.store.root.display()
            );
            return Ok(GcReport {
                skipped: Some(reason),
                ..GcReport::default()
            });
        }

        let mut report = GcReport::default();
        for (digest, size) in candidates {
            if reachable.contains(&digest) {
                continue;
            }
            let path = dir.join(digest.hex());
            match fs::remove_file(&path) {
                Ok(()) => {
                    log::debug!("deleted unreferenced blob `{digest}`");
                    report.deleted_blobs += 1;
                    report.deleted_bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("delete the blob", &path, e)),
            }
        }
        if report.deleted_blobs > 0 {
            sync_dir(&dir)?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Barrier};

    use serde_json::json;

    use super::*;
    use crate::layout::{MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
    use crate::test_support::*;

    fn new_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("oci-store")).unwrap();
        (dir, store)
    }

    #[test]
    fn open_creates_a_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/oci-store");
        let store = Store::open(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(
            fs::read(path.join("oci-layout")).unwrap(),
            br#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert_eq!(
            fs::read(path.join("index.json")).unwrap(),
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        );
        assert!(path.join("blobs/sha256").is_dir());
        assert!(path.join("index.json.lock").is_file());
        assert!(store.list().unwrap().is_empty());
        // Reopening changes nothing.
        let before = snapshot(&path);
        Store::open(&path).unwrap();
        assert_eq!(snapshot(&path), before);
    }

    #[test]
    fn open_refuses_other_layout_versions() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("`2.0.0`"), "{err}");
    }

    #[test]
    fn default_path() {
        let p = default_store_path();
        if rustix::process::geteuid().is_root() {
            assert_eq!(p, Path::new(ROOT_STORE_PATH));
        } else {
            assert!(p.ends_with(".ig/oci-store"), "{}", p.display());
            assert!(passwd_home().is_some());
        }
    }

    #[test]
    fn blobs_write_read_verify() {
        let (_d, store) = new_store();
        let digest = store.transaction(|tx| tx.write_blob(b"hello")).unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        assert!(store.has_blob(&digest));
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello");
        let mode = fs::metadata(store.blob_path(&digest))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);

        // Tampering is detected on read, and the error names the digest and the path.
        fs::write(store.blob_path(&digest), b"hellO").unwrap();
        let err = store.read_blob(&digest).unwrap_err();
        match &err {
            StoreError::DigestMismatch {
                expected,
                actual,
                path,
            } => {
                assert_eq!(expected, &digest);
                assert_eq!(actual, &Digest::of(b"hellO"));
                assert_eq!(path, &store.blob_path(&digest));
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(err.to_string().contains(digest.as_str()), "{err}");
        assert!(err.hint().is_some());

        // Writing again repairs it; writing an intact blob again is a no-op.
        store.transaction(|tx| tx.write_blob(b"hello")).unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello");
        store.transaction(|tx| tx.write_blob(b"hello")).unwrap();

        let missing = Digest::of(b"nope");
        assert!(matches!(
            store.read_blob(&missing),
            Err(StoreError::BlobNotFound { .. })
        ));
    }

    #[test]
    fn blobs_from_readers() {
        let (_d, store) = new_store();
        let (d, n) = store
            .transaction(|tx| tx.write_blob_from_reader(&b"streamed"[..], None))
            .unwrap();
        assert_eq!((d.clone(), n), (Digest::of(b"streamed"), 8));
        assert_eq!(store.read_blob(&d).unwrap(), b"streamed");

        let wrong = Digest::of(b"other");
        let err = store
            .transaction(|tx| tx.write_blob_from_reader(&b"evil"[..], Some(&wrong)))
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(!store.has_blob(&Digest::of(b"evil")));
        assert!(!store.has_blob(&wrong));
        // No temp file is left behind.
        let leftovers: Vec<_> = fs::read_dir(store.path().join("ingest")).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn read_json_accepts_manifests_without_media_type() {
        let (_d, store) = new_store();
        let img = store
            .transaction(|tx| Ok::<_, StoreError>(write_image(tx, "x", None, true)))
            .unwrap();
        let m: oci_spec::image::ImageManifest = store.read_json(&img.manifests[0]).unwrap();
        assert!(m.media_type().is_none());
        assert_eq!(m.artifact_type().as_ref().unwrap().to_string(), ARTIFACT);
        let idx: oci_spec::image::ImageIndex = store
            .read_json(&Digest::try_from(img.index.digest()).unwrap())
            .unwrap();
        assert_eq!(idx.manifests().len(), 2);
        let err = store.read_json::<oci_spec::image::ImageIndex>(&Digest::of(b"{}"));
        assert!(
            matches!(err, Err(StoreError::InvalidDocument { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn tag_resolve_list() {
        let (_d, store) = new_store();
        let img = add_image(&store, "trace_exec", Some(&wasm_layer("a")));
        let r = reference("trace_exec");
        let got = store.resolve(&r).unwrap();
        assert_eq!(got, img.index);
        assert_eq!(
            store
                .resolve(&reference(
                    "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"
                ))
                .unwrap(),
            img.index
        );
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            list[0].reference,
            "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"
        );
        assert_eq!(list[0].descriptor, img.index);
        assert!(!list[0].is_referrers_tag());

        // index.json carries the full reference as ref.name.
        let idx = index_json(store.path());
        assert_eq!(
            idx["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
            "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"
        );

        // Retagging replaces, returning the previous descriptor.
        let other = store
            .transaction(|tx| Ok::<_, StoreError>(write_image(tx, "other", None, false)))
            .unwrap();
        let prev = store.tag(&r, other.index.clone()).unwrap();
        assert_eq!(prev, Some(img.index.clone()));
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(store.resolve(&r).unwrap(), other.index);

        // A second tag for the same image.
        store
            .tag(&reference("trace_exec:v1"), other.index.clone())
            .unwrap();
        assert_eq!(store.list().unwrap().len(), 2);

        // Resolving by digest.
        let d = Digest::try_from(other.index.digest()).unwrap();
        let by_digest = store
            .resolve(&reference(&format!("trace_exec@{d}")))
            .unwrap();
        assert_eq!(by_digest, other.index);
        // An untagged manifest is found by digest through its blob.
        let m = &other.manifests[0];
        let desc = store.resolve(&reference(&format!("whatever@{m}"))).unwrap();
        assert_eq!(desc.media_type(), &MediaType::ImageManifest);

        // Not found, with a hint.
        let err = store.resolve(&reference("trace_exec:v2")).unwrap_err();
        assert!(
            err.to_string()
                .contains("image `ghcr.io/inspektor-gadget/gadget/trace_exec:v2` not found"),
            "{err}"
        );
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("`trace_exec:latest`") && hint.contains("`trace_exec:v1`"),
            "{hint}"
        );
        let err = store.resolve(&reference("nothing_like_it")).unwrap_err();
        assert!(err.hint().unwrap().contains("build or pull"));
    }

    #[test]
    fn tag_refuses_incomplete_graphs_and_digests() {
        let (_d, store) = new_store();
        let img = store
            .transaction(|tx| Ok::<_, StoreError>(write_image(tx, "x", Some(b"\0asm-x"), false)))
            .unwrap();
        fs::remove_file(store.blob_path(&img.layers[0])).unwrap();
        let err = store.tag(&reference("x"), img.index.clone()).unwrap_err();
        match &err {
            StoreError::MissingBlob {
                reference, digest, ..
            } => {
                assert_eq!(reference, "ghcr.io/inspektor-gadget/gadget/x:latest");
                assert_eq!(digest, &img.layers[0]);
            }
            other => panic!("unexpected {other}"),
        }
        let d = Digest::try_from(img.index.digest()).unwrap();
        let err = store
            .tag(&reference(&format!("x@{d}")), img.index.clone())
            .unwrap_err();
        assert!(matches!(err, StoreError::NotATag { .. }), "{err}");
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn failed_transaction_saves_nothing() {
        let (_d, store) = new_store();
        let before = fs::read(store.path().join("index.json")).unwrap();
        let res: Result<(), StoreError> = store.transaction(|tx| {
            let img = write_image(tx, "x", None, false);
            tx.tag(&reference("x"), img.index)?;
            Err(StoreError::NotATag {
                reference: "x".into(),
                reason: "test",
            })
        });
        assert!(res.is_err());
        assert_eq!(fs::read(store.path().join("index.json")).unwrap(), before);
    }

    #[test]
    fn nested_store_calls_are_reported_not_deadlocked() {
        let (_d, store) = new_store();
        let err = store
            .transaction(|_tx| store.list().map(|_| ()))
            .unwrap_err();
        assert!(matches!(err, StoreError::Reentrant { .. }), "{err}");
        assert!(err.hint().is_some());
        // The lock is free again afterwards.
        store.list().unwrap();
    }

    #[test]
    fn foreign_entries_survive_rewrites() {
        let (_d, store) = new_store();
        let img = store
            .transaction(|tx| Ok::<_, StoreError>(write_image(tx, "up", None, true)))
            .unwrap();
        // index.json as upstream `ig` (oras-go) might write it: whitespace, untagged children,
        // unknown fields, an entry with a digest we cannot use, a bare-tag ref.name.
        let d = img.index.digest().to_string();
        let m0 = img.manifests[0].to_string();
        let foreign = json!([
            {"mediaType": MEDIA_TYPE_MANIFEST, "digest": m0, "size": 1, "x-unknown": {"b": 1, "a": [1, 2]}},
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": img.index.size(),
             "annotations": {REF_NAME_ANNOTATION: "ghcr.io/inspektor-gadget/gadget/up:latest", "zz": "1", "aa": "2"}},
            {"mediaType": "application/x", "digest": "sha512:abcd", "size": 3},
            {"mediaType": "application/x", "digest": "sha256:0000", "size": 3,
             "annotations": {REF_NAME_ANNOTATION: "v1"}},
        ]);
        let text = serde_json::to_string_pretty(&json!({
            "schemaVersion": 2,
            "manifests": foreign,
            "x-top": "kept",
        }))
        .unwrap();
        fs::write(store.path().join("index.json"), text).unwrap();

        // The upstream-written tag resolves.
        assert_eq!(
            store
                .resolve(&reference("up"))
                .unwrap()
                .digest()
                .to_string(),
            d
        );
        // A change rewrites index.json; every foreign entry is kept as it was.
        let other = store
            .transaction(|tx| Ok::<_, StoreError>(write_image(tx, "new", None, false)))
            .unwrap();
        store.tag(&reference("new"), other.index).unwrap();
        let idx = index_json(store.path());
        assert_eq!(idx["x-top"], "kept");
        let entries = idx["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 5);
        for (i, want) in foreign.as_array().unwrap().iter().enumerate() {
            assert_eq!(&entries[i], want, "entry {i}");
        }
        // Annotations are written sorted.
        let raw = String::from_utf8(fs::read(store.path().join("index.json")).unwrap()).unwrap();
        assert!(raw.find("\"aa\"").unwrap() < raw.find("\"zz\"").unwrap());
        // list skips what it cannot parse rather than failing.
        let names: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|t| t.reference)
            .collect();
        assert_eq!(
            names,
            [
                "ghcr.io/inspektor-gadget/gadget/up:latest",
                "ghcr.io/inspektor-gadget/gadget/new:latest"
            ]
        );
    }

    #[test]
    fn remove_keeps_shared_blobs_and_collects_the_rest() {
        let (_d, store) = new_store();
        let shared = wasm_layer("shared");
        let a = add_image(&store, "a", Some(&shared));
        let b = add_image(&store, "b", Some(&shared));
        // An unreferenced blob, and a referrer (signature-like) blob whose subject is `b`.
        let (junk, referrer) = store
            .transaction(|tx| {
                let junk = tx.write_blob(b"junk")?;
                let sig = tx.write_blob(b"signature payload")?;
                let m = json!({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_TYPE_MANIFEST,
                    "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
                    "layers": [{"mediaType": "application/octet-stream", "digest": sig.as_str(), "size": 17}],
                    "subject": {"mediaType": "application/vnd.oci.image.index.v1+json",
                                "digest": b.index.digest().to_string(), "size": b.index.size()},
                });
                let r = tx.write_json(MediaType::ImageManifest, &m)?;
                Ok::<_, StoreError>((junk, (Digest::try_from(r.digest()).unwrap(), sig)))
            })
            .unwrap();

        let report = store.remove(&reference("a")).unwrap();
        assert_eq!(report.reference, "ghcr.io/inspektor-gadget/gadget/a:latest");
        assert_eq!(
            report.digest.as_ref(),
            Some(&Digest::try_from(a.index.digest()).unwrap())
        );
        assert!(report.gc.skipped.is_none());
        // a's index and manifests (they differ from b's by title) and the junk blob are gone.
        assert_eq!(report.gc.deleted_blobs, 4, "{report:?}");
        assert!(!store.has_blob(&Digest::try_from(a.index.digest()).unwrap()));
        for m in &a.manifests {
            assert!(!store.has_blob(m));
        }
        assert!(!store.has_blob(&junk));
        // The shared layer, the empty config, b and its referrer survive.
        assert!(store.has_blob(&Digest::of(&shared)));
        assert!(store.has_blob(&Digest::of(b"{}")));
        assert!(store.has_blob(&referrer.0) && store.has_blob(&referrer.1));
        assert_eq!(store.resolve(&reference("b")).unwrap(), b.index);

        // Removing twice: not found.
        let err = store.remove(&reference("a")).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));

        // Removing b empties the store.
        let report = store.remove(&reference("b")).unwrap();
        assert!(report.gc.deleted_bytes > 0);
        assert!(
            snapshot(store.path()).blobs.is_empty(),
            "{:?}",
            snapshot(store.path()).blobs.keys()
        );
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn remove_keeps_an_image_with_another_tag() {
        let (_d, store) = new_store();
        let a = add_image(&store, "a", Some(&wasm_layer("x")));
        store.tag(&reference("a:v2"), a.index.clone()).unwrap();
        let report = store.remove(&reference("a")).unwrap();
        assert_eq!(report.gc.deleted_blobs, 0);
        assert_eq!(store.resolve(&reference("a:v2")).unwrap(), a.index);
        store.tag(&reference("a:v2"), a.index.clone()).unwrap();
    }

    /// A legacy-signature-like manifest (no subject) for `subject`, tagged `name`.
    fn add_bare_signature(store: &Store, subject: &Descriptor, name: &str) -> Digest {
        store
            .transaction(|tx| {
                let payload = tx.write_blob(format!("signs {}", subject.digest()).as_bytes())?;
                let m = json!({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_TYPE_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
                    "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                                "digest": payload.as_str(), "size": tx.read_blob(&payload)?.len()}],
                });
                tx.write_blob(b"{}")?;
                let desc = tx.write_json(MediaType::ImageManifest, &m)?;
                let digest = Digest::try_from(desc.digest()).unwrap();
                if crate::signatures::is_bare_tag(name) {
                    tx.tag_bare(name, desc)?;
                } else {
                    tx.tag(&reference(name), desc)?;
                }
                Ok::<_, StoreError>(digest)
            })
            .unwrap()
    }

    #[test]
    fn bare_signature_tags_stay_bare_and_go_with_their_image() {
        let (_d, store) = new_store();
        let a = add_image(&store, "a", None);
        let hex = Digest::try_from(a.index.digest()).unwrap().hex().to_owned();
        let bare = format!("sha256-{hex}.sig");
        let sig = add_bare_signature(&store, &a.index, &bare);
        // An earlier version's form of the same signature, in another repository.
        add_bare_signature(&store, &a.index, &format!("old:sha256-{hex}.sig"));
        let names: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|t| t.reference)
            .collect();
        assert!(names.contains(&bare), "{names:?}");
        let raw = index_json(store.path());
        assert!(
            raw["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["annotations"][REF_NAME_ANNOTATION] == bare.as_str()),
            "{raw}"
        );
        let found = store
            .transaction(|tx| {
                Ok::<_, StoreError>(tx.signature_tags(
                    &Digest::try_from(a.index.digest()).unwrap(),
                    ".sig",
                    "x",
                ))
            })
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].reference, bare);
        assert_eq!(Digest::try_from(found[0].descriptor.digest()).unwrap(), sig);
        assert!(store.tag(&reference("a:v2"), a.index.clone()).is_ok());

        // Another tag still holds the image: its signatures stay.
        store.remove(&reference("a")).unwrap();
        assert!(store.has_blob(&sig));
        assert_eq!(store.list().unwrap().len(), 3);
        // The last tag goes: both forms of the signature go with it, and their blobs.
        let report = store.remove(&reference("a:v2")).unwrap();
        assert_eq!(report.dropped_entries, 2);
        assert!(store.list().unwrap().is_empty());
        assert!(!store.has_blob(&sig));
        assert!(store.gc().unwrap().deleted_blobs == 0);
    }

    #[test]
    fn a_bare_signature_tag_can_be_removed_alone() {
        let (_d, store) = new_store();
        let a = add_image(&store, "a", None);
        let hex = Digest::try_from(a.index.digest()).unwrap().hex().to_owned();
        let bare = format!("sha256-{hex}.sig");
        let sig = add_bare_signature(&store, &a.index, &bare);
        store.remove_bare(&bare).unwrap();
        assert!(!store.has_blob(&sig));
        assert_eq!(store.resolve(&reference("a")).unwrap(), a.index);
        let err = store.remove_bare(&bare).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        let err = store.remove_bare("a:latest").unwrap_err();
        assert!(matches!(err, StoreError::NotATag { .. }), "{err}");
    }

    #[test]
    fn referrers_are_listed_in_the_bare_referrers_index() {
        let (_d, store) = new_store();
        let a = add_image(&store, "a", None);
        let subject = Digest::try_from(a.index.digest()).unwrap();
        let referrer = |tx: &mut Transaction<'_>, n: u8| {
            let layer = tx.write_blob(&[n])?;
            tx.write_blob(b"{}")?;
            let m = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_MANIFEST,
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
                "layers": [{"mediaType": "application/octet-stream", "digest": layer.as_str(), "size": 1}],
                "subject": {"mediaType": MEDIA_TYPE_INDEX, "digest": subject.as_str(), "size": a.index.size()},
                "annotations": {"n": n.to_string()},
            });
            tx.write_json(MediaType::ImageManifest, &m)
        };
        let (one_digest, two_digest) = store
            .transaction(|tx| {
                let one = referrer(tx, 1)?;
                let one_digest = Digest::try_from(one.digest()).unwrap();
                let layer = Digest::of(&[1]);
                assert!(!tx.has_referrers(&subject, &[(one_digest.clone(), vec![layer.clone()])]));
                assert!(tx.add_referrer(&subject, &one)?);
                assert!(tx.has_referrers(&subject, &[(one_digest.clone(), vec![layer.clone()])]));
                assert!(!tx.add_referrer(&subject, &one)?);
                // Not of another subject, and not with a blob the store lacks.
                let other = Digest::of(b"another subject");
                assert!(!tx.has_referrers(&other, &[(one_digest.clone(), vec![])]));
                assert!(!tx.has_referrers(
                    &subject,
                    &[(one_digest.clone(), vec![Digest::of(b"absent")])]
                ));
                let two = referrer(tx, 2)?;
                let two_digest = Digest::try_from(two.digest()).unwrap();
                // Written but not listed yet: alone, or with one that is.
                assert!(!tx.has_referrers(&subject, &[(two_digest.clone(), vec![])]));
                let both = [(one_digest.clone(), vec![]), (two_digest.clone(), vec![])];
                assert!(!tx.has_referrers(&subject, &both));
                assert!(tx.add_referrer(&subject, &two)?);
                assert!(tx.has_referrers(&subject, &[(two_digest.clone(), vec![])]));
                let both = [
                    (one_digest.clone(), vec![layer]),
                    (two_digest.clone(), vec![]),
                ];
                assert!(tx.has_referrers(&subject, &both));
                Ok::<_, StoreError>((one_digest, two_digest))
            })
            .unwrap();
        // A damaged manifest or layer is not "already there".
        let damage = |digest: &Digest| {
            let path = store.blob_path(digest);
            let intact = std::fs::read(&path).unwrap();
            let mut bad = intact.clone();
            bad[0] ^= 1;
            std::fs::write(&path, bad).unwrap();
            (path, intact)
        };
        for blob in [one_digest.clone(), Digest::of(&[1])] {
            let (path, intact) = damage(&blob);
            store
                .transaction(|tx| {
                    assert!(
                        !tx.has_referrers(
                            &subject,
                            &[(one_digest.clone(), vec![Digest::of(&[1])])]
                        )
                    );
                    assert!(
                        tx.has_referrers(&subject, &[(two_digest.clone(), vec![Digest::of(&[2])])])
                    );
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            std::fs::write(&path, intact).unwrap();
        }
        let tag = crate::signatures::referrers_tag(&subject);
        let index_desc = store
            .list()
            .unwrap()
            .into_iter()
            .find(|t| t.reference == tag)
            .expect("the bare referrers index");
        let index: Value = store
            .read_json(&Digest::try_from(index_desc.descriptor.digest()).unwrap())
            .unwrap();
        let listed = index["manifests"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            listed[0]["artifactType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        assert_eq!(listed[1]["annotations"]["n"], "2");
        // Untagged entries too, as upstream's tools list referrers.
        let untagged = index_json(store.path())["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| entry_ref_name(e).is_none())
            .count();
        assert_eq!(untagged, 2);
        // They go with the image.
        store.remove(&reference("a")).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            index_json(store.path())["manifests"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn remove_drops_untagged_children_listed_upstream_style() {
        let (_d, store) = new_store();
        let a = add_image(&store, "a", None);
        let b = add_image(&store, "b", None);
        // oras-go lists pushed manifests as untagged entries.
        store
            .transaction(|tx| {
                for img in [&a, &b] {
                    for m in &img.manifests {
                        let size = tx.read_blob(m)?.len() as u64;
                        tx.add_untagged(&Descriptor::new(
                            MediaType::ImageManifest,
                            size,
                            m.to_oci(),
                        ))?;
                    }
                }
                // Adding twice is a no-op.
                let m = &a.manifests[0];
                let size = tx.read_blob(m)?.len() as u64;
                assert!(!tx.add_untagged(&Descriptor::new(
                    MediaType::ImageManifest,
                    size,
                    m.to_oci()
                ))?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(
            index_json(store.path())["manifests"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
        let report = store.remove(&reference("a")).unwrap();
        assert_eq!(report.dropped_entries, 2);
        assert_eq!(report.gc.deleted_blobs, 3);
        let entries = index_json(store.path())["manifests"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(entries.len(), 3);
        for m in &b.manifests {
            assert!(entries.iter().any(|e| e["digest"] == m.as_str()));
        }
    }

    #[test]
    fn gc_is_skipped_when_a_manifest_is_missing() {
        let (_d, store) = new_store();
        let a = add_image(&store, "a", Some(&wasm_layer("a")));
        let junk = store.transaction(|tx| tx.write_blob(b"junk")).unwrap();
        fs::remove_file(store.blob_path(&a.manifests[0])).unwrap();
        let report = store.gc().unwrap();
        assert!(
            report
                .skipped
                .as_deref()
                .unwrap()
                .contains(a.manifests[0].as_str()),
            "{report:?}"
        );
        assert_eq!(report.deleted_blobs, 0);
        assert!(store.has_blob(&junk));
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let (_d, store) = new_store();
        // Images the remover will delete while the writers run.
        for i in 0..8 {
            add_image(
                &store,
                &format!("victim{i}"),
                Some(&wasm_layer(&format!("v{i}"))),
            );
        }
        let threads = 8;
        let per_thread = 6;
        let barrier = Arc::new(Barrier::new(threads + 1));
        let mut handles = Vec::new();
        for t in 0..threads {
            let store = store.clone();
            let barrier = barrier.clone();
            handles.push(std::thread::spawn(move || {
                barrier.wait();
                let mut written = Vec::new();
                for i in 0..per_thread {
                    let name = format!("t{t}:i{i}");
                    // Shared layer across every thread plus a unique one.
                    let layer = if i % 2 == 0 {
                        wasm_layer("common")
                    } else {
                        wasm_layer(&name)
                    };
                    let img = store
                        .transaction(|tx| {
                            let img = write_image(tx, &name, Some(&layer), false);
                            tx.tag(&reference(&name), img.index.clone())?;
                            Ok::<_, StoreError>(img)
                        })
                        .unwrap();
                    written.push((name, img, layer));
                }
                written
            }));
        }
        let remover = {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..8 {
                    store.remove(&reference(&format!("victim{i}"))).unwrap();
                    store.gc().unwrap();
                }
            })
        };
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().unwrap());
        }
        remover.join().unwrap();

        let list = store.list().unwrap();
        assert_eq!(list.len(), threads * per_thread);
        for (name, img, layer) in &all {
            assert_eq!(store.resolve(&reference(name)).unwrap(), img.index);
            let idx = Digest::try_from(img.index.digest()).unwrap();
            store.read_blob(&idx).unwrap();
            for m in &img.manifests {
                store.read_blob(m).unwrap();
            }
            assert_eq!(store.read_blob(&Digest::of(layer)).unwrap(), *layer);
        }
        // A final collection deletes nothing live (the victims were already collected).
        let report = store.gc().unwrap();
        assert_eq!(report.deleted_blobs, 0, "{report:?}");
        if let Some((code, out)) = run_checker(store.path(), &[]) {
            assert_eq!(code, 0, "{out}");
        }
    }

    #[test]
    fn checker_accepts_the_store() {
        let (_d, store) = new_store();
        add_image(&store, "trace_exec", None);
        add_image(&store, "localhost:5000/x/y:v1", Some(&wasm_layer("y")));
        store
            .transaction(|tx| {
                let img = write_image(tx, "up", None, true);
                tx.tag(&reference("up"), img.index)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        if let Some((code, out)) = run_checker(store.path(), &[]) {
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("3 image(s)"), "{out}");
        }
        if let Some((code, out)) = run_checker(store.path(), &["trace_exec"]) {
            assert_eq!(code, 0, "{out}");
        }
    }

    #[test]
    fn waits_for_another_process_holding_the_lock() {
        // What upstream `ig` does: flock(LOCK_EX) on `index.json.lock` from another process.
        let (_d, store) = new_store();
        let lock = store.path().join("index.json.lock");
        let mut child = match std::process::Command::new("flock")
            .arg(&lock)
            .args(["sh", "-c", "echo locked; sleep 1.5"])
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipping: cannot run `flock`: {e}");
                return;
            }
        };
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        let start = std::time::Instant::now();
        add_image(&store, "after_the_wait", None);
        let waited = start.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(1000),
            "{waited:?}"
        );
        assert!(child.wait().unwrap().success());
        store.resolve(&reference("after_the_wait")).unwrap();
    }
}
