//! Signatures and referrers that travel with an image, in the three forms the store and
//! registries hold them (signing-and-publishing.md §1):
//!
//! - legacy cosign signatures: the tag `sha256-<hex>.sig` (an image manifest) in the image's
//!   repository — locally the bare tag `sha256-<hex>.sig`, where upstream `ig` keeps it (the
//!   `<registry>/<repo>:sha256-<hex>.sig` tags earlier versions wrote are read too);
//! - OCI 1.1 referrers (cosign `oci-1-1` signatures, Sigstore bundles, notation signatures,
//!   attestations): manifests whose `subject.digest` is the image — locally untagged
//!   `index.json` entries, also listed in the bare referrers index `sha256-<hex>`;
//! - the referrers tag schema, for registries without the referrers API (distribution 2.8
//!   answers 404): an index at tag `sha256-<hex>` listing the referrers.
//!
//! Here: finding them in the store, finding them in a registry (API first, tag schema second),
//! and keeping a registry's `sha256-<hex>` index up to date after a push. No store writes (see
//! [`gadget_store::signatures`] for those).

use gadget_store::graph::Children;
use std::collections::BTreeSet;

use gadget_store::signatures::{merge_referrers_index, referrers_tag};
use gadget_store::{Digest, Transaction};
use serde_json::Value;

use super::client::{MEDIA_TYPE_INDEX, Repository};
use super::error::{Failure, RegistryError};

/// A parsed manifest's `subject.digest`.
pub(crate) fn subject_of(doc: &Value) -> Option<Digest> {
    doc.get("subject")?
        .get("digest")?
        .as_str()
        .and_then(|d| Digest::parse(d).ok())
}

/// What the store holds for the subjects of one image.
#[derive(Debug, Default, Clone)]
pub(crate) struct LocalArtifacts {
    /// (subject, manifest digest, manifest media type) of legacy signatures.
    pub(crate) signatures: Vec<(Digest, Digest, String)>,
    /// (subject, manifest digest, manifest media type) of referrers, from untagged entries and
    /// from local `sha256-<hex>` referrers tag indexes.
    pub(crate) referrers: Vec<(Digest, Digest, String)>,
}

/// Finds the signatures and referrers of `subjects` in the store. The bare signature tag wins
/// over the forms earlier versions wrote, the image's own repository (`name`) first among those.
pub(crate) fn find_local(
    tx: &Transaction<'_>,
    name: &str,
    subjects: &[Digest],
) -> Result<LocalArtifacts, RegistryError> {
    let mut out = LocalArtifacts::default();
    for subject in subjects {
        if let Some(t) = tx.signature_tags(subject, ".sig", name).first() {
            let digest = Digest::try_from(t.descriptor.digest()).map_err(|e| {
                RegistryError::Unsupported {
                    reason: format!("signature tag `{}`: {e}", t.reference),
                }
            })?;
            out.signatures.push((
                subject.clone(),
                digest,
                t.descriptor.media_type().to_string(),
            ));
        }
    }

    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    let wanted: BTreeSet<&Digest> = subjects.iter().collect();
    // Untagged entries whose document names a subject.
    for entry in tx.raw_entries() {
        let tagged = entry
            .get("annotations")
            .and_then(|a| a.get(gadget_facts::media_types::REF_NAME))
            .is_some();
        if tagged {
            continue;
        }
        let Some(digest) = entry
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok())
        else {
            continue;
        };
        let media_type = entry
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !media_type.is_empty() && !media_type.contains("manifest") {
            continue;
        }
        let Ok(data) = tx.read_blob(&digest) else {
            continue;
        };
        let Ok(doc) = serde_json::from_slice::<Value>(&data) else {
            continue;
        };
        if let Some(subject) = subject_of(&doc).filter(|s| wanted.contains(s)) {
            if seen.insert(digest.clone()) {
                let mt = doc
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .map_or(media_type.clone(), str::to_owned);
                let mt = if mt.is_empty() {
                    super::client::MEDIA_TYPE_MANIFEST.to_owned()
                } else {
                    mt
                };
                out.referrers.push((subject, digest, mt));
            }
        }
    }
    // Referrers listed by local `sha256-<hex>` tag indexes.
    for subject in subjects {
        for t in tx.signature_tags(subject, "", name) {
            let Ok(index_digest) = Digest::try_from(t.descriptor.digest()) else {
                continue;
            };
            let data = tx
                .read_blob(&index_digest)
                .map_err(|e| RegistryError::store(format!("read `{}`", t.reference), e))?;
            let doc: Value = serde_json::from_slice(&data).unwrap_or(Value::Null);
            for m in Children::of(&doc).manifests {
                let Some(digest) = m
                    .get("digest")
                    .and_then(Value::as_str)
                    .and_then(|d| Digest::parse(d).ok())
                else {
                    continue;
                };
                if tx.has_blob(&digest) && seen.insert(digest.clone()) {
                    let mt = m
                        .get("mediaType")
                        .and_then(Value::as_str)
                        .unwrap_or(super::client::MEDIA_TYPE_MANIFEST)
                        .to_owned();
                    out.referrers.push((subject.clone(), digest, mt));
                }
            }
        }
    }
    Ok(out)
}

/// After referrers of `subject` were pushed: if the registry has no referrers API, add them to
/// its `sha256-<hex>` tag index. Returns whether the tag index was written.
pub(crate) async fn update_remote_tag_index(
    repo: &Repository<'_>,
    subject: &Digest,
    descriptors: &[Value],
) -> Result<bool, RegistryError> {
    let api = repo
        .retry(&format!("list the referrers of `{subject}`"), || {
            repo.referrers_api(subject)
        })
        .await?;
    if api.is_some() {
        // The registry indexes `subject` fields itself.
        return Ok(false);
    }
    let tag = referrers_tag(subject);
    let existing = repo
        .retry(&format!("read the referrers tag `{tag}`"), || {
            repo.get_manifest(&tag, &[MEDIA_TYPE_INDEX])
        })
        .await?;
    let Some(merged) =
        merge_referrers_index(existing.as_ref().map(|m| m.bytes.as_slice()), descriptors)
    else {
        return Ok(false);
    };
    let bytes = gadget_store::to_canonical_json(&merged).map_err(|e| RegistryError::Invalid {
        registry: repo.registry().to_owned(),
        what: "referrers index".into(),
        reason: e.to_string(),
    })?;
    repo.retry(&format!("write the referrers tag `{tag}`"), || {
        repo.put_manifest(&tag, MEDIA_TYPE_INDEX, &bytes)
    })
    .await?;
    Ok(true)
}

/// The referrers of `subject` in a registry: through the API, else the tag schema. `api` says
/// whether the registry has the API when that is already known. Also returns whether it has
/// the API.
pub(crate) async fn find_remote(
    repo: &Repository<'_>,
    subject: &Digest,
    api: Option<bool>,
) -> Result<(Vec<Value>, bool), RegistryError> {
    if api != Some(false) {
        if let Some(list) = repo
            .retry(&format!("list the referrers of `{subject}`"), || {
                repo.referrers_api(subject)
            })
            .await?
        {
            return Ok((list, true));
        }
    }
    let tag = referrers_tag(subject);
    let index = repo
        .retry(&format!("read the referrers tag `{tag}`"), || async {
            repo.get_manifest(&tag, &[MEDIA_TYPE_INDEX]).await
        })
        .await?;
    let Some(index) = index else {
        return Ok((Vec::new(), false));
    };
    let doc: Value = serde_json::from_slice(&index.bytes).map_err(|e| RegistryError::Invalid {
        registry: repo.registry().to_owned(),
        what: format!("referrers tag `{tag}`"),
        reason: e.to_string(),
    })?;
    let list = Children::of(&doc).manifests.into_iter().cloned().collect();
    Ok((list, false))
}

/// Whether a fetched document is allowed as a referrer of `subject`.
pub(crate) fn check_subject(doc: &Value, subject: &Digest) -> Result<(), Failure> {
    match subject_of(doc) {
        Some(s) if &s == subject => Ok(()),
        other => Err(Failure::permanent(RegistryError::Unsupported {
            reason: format!(
                "a listed referrer of `{subject}` names {} as its subject",
                other.map_or_else(|| "nothing".to_owned(), |d| format!("`{d}`"))
            ),
        })),
    }
}
