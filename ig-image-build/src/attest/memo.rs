//! Remembers in the build cache which referrers a build's attestations became, so that a
//! rebuild with unchanged inputs whose referrers are already in the store renders, signs and
//! writes nothing for them.
//!
//! The key is a SHA-256 of everything the documents are made from: the ig-image binary (its
//! version and file identity, since another build of it may render differently), the build's
//! [`Inventory`] (index digest, reference, creation time and `SOURCE_DATE_EPOCH`, every input
//! file with its digest and origin, tools with versions, crates, objects, the build
//! definition), which documents are asked for, the builder id, and the signing key's public
//! key when `--key` is given. The documents are a function of exactly these, so an entry can
//! never stand for other documents than the ones a fresh render would give.
//!
//! An entry (`attestations/<key>.json`) lists each referrer attached (its report and the digests
//! of the blobs it holds). It is used only when the store already lists every one of them as a
//! referrer of the index with intact blobs ([`gadget_store::Transaction::has_referrers`]);
//! otherwise the documents are rendered and attached as usual (a new store, a removed
//! referrer). A corrupt or unreadable entry is a miss; `--no-cache` neither reads nor writes
//! entries, nor does a process that cannot identify its own binary.

use std::path::{Path, PathBuf};

use gadget_store::{Digest, Transaction};
use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};

use super::AttestOptions;
use super::attach::{AttachError, Attached};
use super::inventory::Inventory;
use crate::cache::{KeyBuilder, write_atomic};

/// Bumped when the entry format or what goes into the key changes.
const FORMAT: &str = "ig-image-attestations-v1";

/// One referrer as remembered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Referrer {
    attached: Attached,
    /// The config and layer digests of the referrer manifest.
    blobs: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    format: String,
    key: String,
    referrers: Vec<Referrer>,
}

/// The attestations of one build: made from its inventory, or reused when remembered.
#[derive(Debug)]
pub struct Plan<'a> {
    inventory: Inventory,
    opts: &'a AttestOptions,
    /// The entry file, when the cache is used.
    entry_path: Option<PathBuf>,
    key: String,
    remembered: Option<Vec<Referrer>>,
}

/// What [`Plan::attach`] did inside the store transaction.
#[derive(Debug, Default)]
pub struct Attachment {
    attached: Vec<Attached>,
    /// Referrers to remember once the transaction is committed.
    fresh: Option<Vec<Referrer>>,
}

impl<'a> Plan<'a> {
    /// The plan for `inventory` and `opts`; with a cache directory, looks its entry up.
    pub fn new(inventory: Inventory, opts: &'a AttestOptions, cache_dir: Option<&Path>) -> Self {
        let binary = binary_identity();
        let key = key(&inventory, opts, binary.as_deref().unwrap_or_default());
        let entry_path = cache_dir
            .filter(|_| binary.is_some())
            .map(|d| d.join("attestations").join(format!("{key}.json")));
        let remembered = entry_path.as_deref().and_then(|p| read_entry(p, &key));
        Plan {
            inventory,
            opts,
            entry_path,
            key,
            remembered,
        }
    }

    /// In the store transaction, after the image is tagged: when the store already lists every
    /// remembered referrer of `subject`, reports them (nothing added); otherwise renders the
    /// documents and attaches them.
    pub fn attach(
        &self,
        tx: &mut Transaction<'_>,
        subject: &Descriptor,
    ) -> Result<Attachment, AttachError> {
        if let Some(remembered) = &self.remembered {
            if all_listed(tx, &self.inventory.index_digest, remembered) {
                log::debug!(
                    "attestations of {} reused: the store already holds them",
                    self.inventory.reference
                );
                return Ok(Attachment {
                    attached: remembered
                        .iter()
                        .map(|r| Attached {
                            added: false,
                            ..r.attached.clone()
                        })
                        .collect(),
                    fresh: None,
                });
            }
        }
        let documents = super::documents(&self.inventory, self.opts);
        let attached = super::attach::attach(
            tx,
            subject,
            &documents,
            self.opts.key.as_deref(),
            &self.inventory.created,
        )?;
        // Remembered only when every referrer's blobs could be read back.
        let fresh = self.entry_path.as_ref().and_then(|_| {
            attached
                .iter()
                .map(|a| {
                    manifest_blobs(tx, &a.manifest).map(|blobs| Referrer {
                        attached: a.clone(),
                        blobs,
                    })
                })
                .collect::<Option<Vec<_>>>()
        });
        Ok(Attachment { attached, fresh })
    }

    /// After the transaction is committed: remembers freshly attached referrers (a cache that
    /// cannot be written is logged, not an error) and returns what was attached.
    pub fn finish(&self, attachment: Attachment) -> Vec<Attached> {
        if let (Some(path), Some(referrers)) = (&self.entry_path, attachment.fresh) {
            let entry = Entry {
                format: FORMAT.to_owned(),
                key: self.key.clone(),
                referrers,
            };
            let written = serde_json::to_vec(&entry)
                .map_err(std::io::Error::other)
                .and_then(|json| write_atomic(path, &json));
            if let Err(e) = written {
                log::warn!("attestation cache `{}` not updated: {e}", path.display());
            }
        }
        attachment.attached
    }
}

/// The key of the documents `opts` asks for, made from `inv` by the binary `binary` (see the
/// module documentation).
fn key(inv: &Inventory, opts: &AttestOptions, binary: &str) -> String {
    let mut k = KeyBuilder::new();
    k.add(FORMAT)
        .add(env!("CARGO_PKG_VERSION"))
        .add(binary)
        .add(serde_json::to_vec(inv).unwrap_or_default())
        .add(if opts.sbom { "sbom" } else { "" })
        .add(if opts.provenance { "provenance" } else { "" })
        .add(super::provenance::builder_id());
    match &opts.key {
        Some(key) => k.add(key.public_key().to_spki_der()),
        None => k.add("unsigned"),
    };
    k.finish()
}

/// The running binary's identity (device, inode, size, modification time): a rebuilt
/// ig-image of the same version gets other entries.
fn binary_identity() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    // `/proc/self/exe` is followed to the binary: one `statx`, no path lookup.
    let m = std::fs::metadata("/proc/self/exe").ok()?;
    Some(format!(
        "{}:{}:{}:{}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

fn read_entry(path: &Path, key: &str) -> Option<Vec<Referrer>> {
    let bytes = std::fs::read(path).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    (entry.format == FORMAT && entry.key == key && !entry.referrers.is_empty())
        .then_some(entry.referrers)
}

/// Whether the store lists every remembered referrer of `subject`, with intact blobs.
fn all_listed(tx: &Transaction<'_>, subject: &Digest, remembered: &[Referrer]) -> bool {
    let parse = |d: &str| Digest::parse(d).ok();
    let referrers: Option<Vec<(Digest, Vec<Digest>)>> = remembered
        .iter()
        .map(|r| {
            let blobs = r
                .blobs
                .iter()
                .map(|b| parse(b))
                .collect::<Option<Vec<_>>>()?;
            Some((parse(&r.attached.manifest)?, blobs))
        })
        .collect();
    referrers.is_some_and(|r| tx.has_referrers(subject, &r))
}

/// The config and layer digests of the referrer manifest `digest`, `None` when unreadable.
fn manifest_blobs(tx: &Transaction<'_>, digest: &str) -> Option<Vec<String>> {
    let doc: serde_json::Value = tx.read_json(&Digest::parse(digest).ok()?).ok()?;
    std::iter::once(&doc["config"])
        .chain(doc["layers"].as_array()?)
        .map(|d| d["digest"].as_str().map(str::to_owned))
        .collect()
}
