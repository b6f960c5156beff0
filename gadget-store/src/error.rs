//! The store's error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::reference::ReferenceError;

/// A filesystem operation that failed: what was being done, to which file, and why
/// ("failed to read the blob `…`"). The store's errors and the registry's share it.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} `{path}`")]
pub struct IoFailure {
    /// What we were doing, e.g. `read the blob`.
    pub action: &'static str,
    /// The file or directory involved.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// Everything that can go wrong in the store, its lock, and export/import.
///
/// Messages are lowercase and name the file, digest or reference at fault; [`StoreError::hint`]
/// gives an optional `hint:` line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(IoFailure),
    /// Taking the `index.json.lock` flock failed (not merely "busy": busy waits).
    #[error("failed to lock the store at `{path}`")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A store operation was started while this thread already holds the same store's lock.
    #[error(
        "the store at `{path}` is already locked by this thread (a store operation was called \
         inside a transaction)"
    )]
    Reentrant {
        /// The store root.
        path: PathBuf,
    },
    /// The directory is not a usable OCI image layout.
    #[error("`{path}` is not a valid OCI image layout: {reason}")]
    InvalidLayout {
        /// The file at fault (`oci-layout` or `index.json`).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A blob is not in the store.
    #[error("blob `{digest}` is not in the store at `{store}`")]
    BlobNotFound {
        /// The missing blob.
        digest: Digest,
        /// The store root.
        store: PathBuf,
    },
    /// A blob's content does not hash to its digest.
    #[error("blob `{expected}` at `{path}` is corrupt: its content hashes to `{actual}`")]
    DigestMismatch {
        /// The digest the content should have.
        expected: Digest,
        /// The digest the content has.
        actual: Digest,
        /// Where the content was read from.
        path: PathBuf,
    },
    /// A blob's size differs from its descriptor's.
    #[error("blob `{digest}` at `{path}` has {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size in the descriptor.
        expected: u64,
        /// The size on disk.
        actual: u64,
        /// Where the blob is.
        path: PathBuf,
    },
    /// A blob that should be an OCI JSON document is not.
    #[error("blob `{digest}` at `{path}` is not a valid {what}")]
    InvalidDocument {
        /// The blob.
        digest: Digest,
        /// Where it is.
        path: PathBuf,
        /// What it should have been, e.g. `image manifest`.
        what: String,
        /// The parse error, when there is one.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// Encoding a value as JSON failed.
    #[error("failed to encode {what} as JSON")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No tag in the store matches the reference.
    #[error("image `{reference}` not found in the store at `{store}`")]
    NotFound {
        /// The normalized reference that was looked up.
        reference: String,
        /// The store root.
        store: PathBuf,
        /// Tags with a similar name, if any (for the hint).
        similar: Vec<String>,
    },
    /// A tag operation got a reference that has no tag or pins a digest.
    #[error("cannot use `{reference}` as a tag: {reason}")]
    NotATag {
        /// The reference.
        reference: String,
        /// Why not.
        reason: &'static str,
    },
    /// An `index.json` entry cannot be used.
    #[error("the entry for `{name}` in `{path}` is invalid: {reason}")]
    InvalidEntry {
        /// The entry's `org.opencontainers.image.ref.name` or digest.
        name: String,
        /// The `index.json` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A blob of an image's graph is missing.
    #[error("image `{reference}` is incomplete: blob `{digest}` is missing from `{location}`")]
    MissingBlob {
        /// The image (or digest) whose graph was walked.
        reference: String,
        /// The missing blob.
        digest: Digest,
        /// The store root or the archive.
        location: PathBuf,
    },
    /// An archive entry is refused (path traversal, link, device, unexpected file...).
    #[error("refusing to import `{archive}`: entry `{entry}` {reason}")]
    UnsafeEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An archive blob entry does not hash to its file name.
    #[error("refusing to import `{archive}`: entry `{entry}` hashes to `{actual}`")]
    ArchiveDigestMismatch {
        /// The archive.
        archive: PathBuf,
        /// The blob entry.
        entry: String,
        /// The digest of its content.
        actual: Digest,
    },
    /// An archive is not a valid OCI layout export.
    #[error("refusing to import `{archive}`: {reason}")]
    InvalidArchive {
        /// The archive.
        archive: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `export` was asked to write inside the store directory.
    #[error(
        "refusing to export to `{out}`: it is inside the image store `{store}`, whose own files it would replace"
    )]
    ExportIntoStore {
        /// The destination given.
        out: PathBuf,
        /// The store root.
        store: PathBuf,
    },
    /// A reference in `index.json` or an archive does not parse.
    #[error("invalid reference in `{path}`")]
    Reference {
        /// The file that holds it.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: ReferenceError,
    },
}

impl StoreError {
    /// A short suggestion for the user, printed as `hint: ...` by the binary.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::NotFound { similar, .. } if !similar.is_empty() => Some(format!(
                "did you mean {}?",
                similar
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            StoreError::NotFound { .. } => {
                Some("build or pull the image first; `ig-image list` shows the store".into())
            }
            StoreError::Reentrant { .. } => {
                Some("use the `Transaction` passed to the closure instead of the `Store`".into())
            }
            StoreError::DigestMismatch { .. } => {
                Some("the store is damaged; remove the image and build or pull it again".into())
            }
            _ => None,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io(IoFailure {
            action,
            path: path.into(),
            source,
        })
    }
}

/// Adds the action and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(action, path, e))
    }
}
