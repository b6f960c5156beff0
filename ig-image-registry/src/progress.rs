//! What a transfer tells its caller while it runs: the [`TransferReporter`] trait (no-op
//! defaults) and the summary of a finished transfer ([`TransferReport`]).
//!
//! The library never prints; the CLI implements the trait with indicatif bars on a terminal and
//! plain lines otherwise. Calls come from one thread (transfers run on a current-thread async
//! runtime), possibly interleaved between blobs.

use gadget_store::Digest;

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobOutcome {
    /// Sent to the registry.
    Uploaded,
    /// Mounted from another repository of the same registry (nothing sent).
    Mounted,
    /// The destination already had it (a `HEAD` said so, or it was in the local store).
    Skipped,
    /// Received and verified.
    Downloaded,
}

/// Progress callbacks. Every method has an empty default.
pub trait TransferReporter {
    /// A transfer of `reference` starts with `blobs` blobs (configs and layers) of `bytes`
    /// bytes in all. A pull calls it again when signatures or referrers bring more blobs: the
    /// numbers add up.
    fn started(&self, reference: &str, blobs: usize, bytes: u64) {
        let _ = (reference, blobs, bytes);
    }
    /// One blob starts moving.
    fn blob_started(&self, digest: &Digest, size: u64) {
        let _ = (digest, size);
    }
    /// `bytes` more bytes of a blob moved (downloads report as they go; uploads when done,
    /// because oci-client sends each blob's body whole).
    fn blob_progress(&self, digest: &Digest, bytes: u64) {
        let _ = (digest, bytes);
    }
    /// One blob is done.
    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome) {
        let _ = (digest, outcome);
    }
    /// A transient failure; the operation is tried again after a pause.
    fn retrying(&self, what: &str, attempt: u32, of: u32, error: &str) {
        let _ = (what, attempt, of, error);
    }
    /// A note worth showing (e.g. a signature format the registry lacks).
    fn note(&self, message: &str) {
        let _ = message;
    }
}

/// A reporter that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl TransferReporter for NoProgress {}

/// The summary of one push or pull (what `-o json` prints).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransferReport {
    /// The full reference transferred.
    pub reference: String,
    /// The digest of the image (the index) the tag points at.
    pub digest: String,
    /// Set by a pull that kept only some platforms: the registry's index digest (the stored
    /// index lists only the platforms asked for, so its digest differs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
    /// Platforms in the image that was stored or pushed (`os/arch`).
    pub platforms: Vec<String>,
    /// Blob bytes plus manifest bytes sent.
    pub bytes_sent: u64,
    /// Blob bytes plus manifest bytes received.
    pub bytes_received: u64,
    /// Blobs sent to the registry.
    pub blobs_uploaded: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Blobs received.
    pub blobs_downloaded: usize,
    /// Blobs the destination already had.
    pub blobs_skipped: usize,
    /// Manifests and indexes written (image, signatures, referrers, referrers tag indexes).
    pub manifests: usize,
    /// Legacy cosign signature tags (`sha256-<hex>.sig`) carried.
    pub signatures: usize,
    /// OCI 1.1 referrers carried (signatures, bundles, attestations).
    pub referrers: usize,
    /// Transient failures that were retried.
    pub retries: usize,
    /// Wall time in milliseconds.
    pub millis: u128,
}
