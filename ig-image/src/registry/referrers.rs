//! Signatures and referrers that travel with an image, in the three forms the store and
//! registries hold them (signing-and-publishing.md §1):
//!
//! - legacy cosign signatures: the tag `sha256-<hex>.sig` (an image manifest) in the image's
//!   repository — locally `<registry>/<repo>:sha256-<hex>.sig`;
//! - OCI 1.1 referrers (cosign `oci-1-1` signatures, Sigstore bundles, attestations): manifests
//!   whose `subject.digest` is the image — locally untagged `index.json` entries;
//! - the referrers tag schema, for registries without the referrers API (distribution 2.8
//!   answers 404): an index at tag `sha256-<hex>` listing the referrers — locally
//!   `<registry>/<repo>:sha256-<hex>` when it came from a registry.
//!
//! Here: finding them in the store, finding them in a registry (API first, tag schema second),
//! and keeping a registry's `sha256-<hex>` index up to date after a push. No store writes.

use std::collections::BTreeSet;

use gadget_store::{Digest, Transaction};
use serde_json::{Value, json};

use super::client::{MEDIA_TYPE_INDEX, Repository};
use super::error::{Failure, RegistryError};

/// The legacy signature tag of `subject`.
pub fn signature_tag(subject: &Digest) -> String {
    format!("sha256-{}.sig", subject.hex())
}

/// The referrers-tag-schema tag of `subject`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// A parsed manifest's `subject.digest`.
pub(crate) fn subject_of(doc: &Value) -> Option<Digest> {
    doc.get("subject")?
        .get("digest")?
        .as_str()
        .and_then(|d| Digest::parse(d).ok())
}

/// The descriptor a referrers index lists for a referrer manifest: media type, digest, size,
/// `artifactType` (the manifest's, else its config's media type) and its annotations.
pub(crate) fn referrer_descriptor(media_type: &str, bytes: &[u8]) -> Value {
    let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let mut d = json!({
        "mediaType": media_type,
        "digest": Digest::of(bytes).as_str(),
        "size": bytes.len(),
    });
    let artifact_type = doc
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| doc.get("config")?.get("mediaType")?.as_str());
    if let Some(t) = artifact_type {
        d["artifactType"] = Value::from(t);
    }
    if let Some(Value::Object(a)) = doc.get("annotations") {
        if !a.is_empty() {
            d["annotations"] = Value::Object(a.clone());
        }
    }
    d
}

/// What the store holds for the subjects of one image.
#[derive(Debug, Default, Clone)]
pub(crate) struct LocalArtifacts {
    /// (subject, manifest digest, manifest media type) of `sha256-<hex>.sig` tags.
    pub(crate) signatures: Vec<(Digest, Digest, String)>,
    /// (subject, manifest digest, manifest media type) of referrers, from untagged entries and
    /// from local `sha256-<hex>` referrers tag indexes.
    pub(crate) referrers: Vec<(Digest, Digest, String)>,
}

/// The tag part of a full reference (`registry/repo:tag` → `tag`).
fn tag_of(full: &str) -> Option<&str> {
    let name = full.split('@').next()?;
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    name[slash..].rfind(':').map(|i| &name[slash + i + 1..])
}

fn name_of(full: &str) -> &str {
    let name = full.split('@').next().unwrap_or(full);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => &name[..slash + i],
        None => name,
    }
}

/// Finds the signatures and referrers of `subjects` in the store. A signature tag in the image's
/// own repository (`name`) wins over one in another repository.
pub(crate) fn find_local(
    tx: &Transaction<'_>,
    name: &str,
    subjects: &[Digest],
) -> Result<LocalArtifacts, RegistryError> {
    let mut out = LocalArtifacts::default();
    let tagged = tx.list();
    for subject in subjects {
        let sig = signature_tag(subject);
        let mut candidates: Vec<_> = tagged
            .iter()
            .filter(|t| tag_of(&t.reference) == Some(sig.as_str()))
            .collect();
        candidates.sort_by_key(|t| name_of(&t.reference) != name);
        if let Some(t) = candidates.first() {
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
            .and_then(|a| a.get("org.opencontainers.image.ref.name"))
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
        let tag = referrers_tag(subject);
        for t in tagged
            .iter()
            .filter(|t| tag_of(&t.reference) == Some(tag.as_str()))
        {
            let Ok(index_digest) = Digest::try_from(t.descriptor.digest()) else {
                continue;
            };
            let data = tx
                .read_blob(&index_digest)
                .map_err(|e| RegistryError::store(format!("read `{}`", t.reference), e))?;
            let doc: Value = serde_json::from_slice(&data).unwrap_or(Value::Null);
            for m in doc
                .get("manifests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
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

/// The referrers index with `add` merged into `existing` (by digest), or `None` when nothing
/// is new.
pub(crate) fn merge_tag_index(existing: Option<&[u8]>, add: &[Value]) -> Option<Value> {
    let mut doc = existing
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .filter(Value::is_object)
        .unwrap_or_else(
            || json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}),
        );
    if !doc.get("manifests").is_some_and(Value::is_array) {
        doc["manifests"] = json!([]);
    }
    let manifests = doc["manifests"].as_array_mut()?;
    let mut changed = false;
    for d in add {
        let digest = d.get("digest");
        if !manifests.iter().any(|m| m.get("digest") == digest) {
            manifests.push(d.clone());
            changed = true;
        }
    }
    changed.then_some(doc)
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
    let Some(merged) = merge_tag_index(existing.as_ref().map(|m| m.bytes.as_slice()), descriptors)
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

/// The referrers of `subject` in a registry: through the API, else the tag schema (then the
/// tag index itself is returned too, to be stored as a tag). `api` says whether the registry
/// has the API when that is already known. Also returns whether it has the API.
pub(crate) async fn find_remote(
    repo: &Repository<'_>,
    subject: &Digest,
    api: Option<bool>,
) -> Result<(Vec<Value>, Option<super::client::FetchedManifest>, bool), RegistryError> {
    if api != Some(false) {
        if let Some(list) = repo
            .retry(&format!("list the referrers of `{subject}`"), || {
                repo.referrers_api(subject)
            })
            .await?
        {
            return Ok((list, None, true));
        }
    }
    let tag = referrers_tag(subject);
    let index = repo
        .retry(&format!("read the referrers tag `{tag}`"), || async {
            repo.get_manifest(&tag, &[MEDIA_TYPE_INDEX]).await
        })
        .await?;
    let Some(index) = index else {
        return Ok((Vec::new(), None, false));
    };
    let doc: Value = serde_json::from_slice(&index.bytes).map_err(|e| RegistryError::Invalid {
        registry: repo.registry().to_owned(),
        what: format!("referrers tag `{tag}`"),
        reason: e.to_string(),
    })?;
    let list = doc
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok((list, Some(index), false))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_names_are_split() {
        assert_eq!(tag_of("localhost:5000/a/b:v1"), Some("v1"));
        assert_eq!(tag_of("localhost:5000/a/b"), None);
        assert_eq!(name_of("localhost:5000/a/b:v1"), "localhost:5000/a/b");
        let d = Digest::of(b"x");
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
        assert_eq!(referrers_tag(&d), format!("sha256-{}", d.hex()));
    }

    #[test]
    fn referrer_descriptors_carry_artifact_type_and_annotations() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.dev.cosign.artifact.sig.v1+json","digest":"sha256:00","size":1},"layers":[],"annotations":{"a":"b"}}"#;
        let d = referrer_descriptor("application/vnd.oci.image.manifest.v1+json", m);
        assert_eq!(
            d["artifactType"],
            "application/vnd.dev.cosign.artifact.sig.v1+json"
        );
        assert_eq!(d["annotations"]["a"], "b");
        assert_eq!(d["size"], m.len());
    }

    #[test]
    fn tag_index_merge_adds_only_new_digests() {
        let a = json!({"mediaType": "m", "digest": "sha256:aa", "size": 1});
        let b = json!({"mediaType": "m", "digest": "sha256:bb", "size": 1});
        let first = merge_tag_index(None, std::slice::from_ref(&a)).unwrap();
        assert_eq!(first["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(first["mediaType"], MEDIA_TYPE_INDEX);
        let bytes = serde_json::to_vec(&first).unwrap();
        assert!(merge_tag_index(Some(&bytes), std::slice::from_ref(&a)).is_none());
        let second = merge_tag_index(Some(&bytes), &[a, b]).unwrap();
        assert_eq!(second["manifests"].as_array().unwrap().len(), 2);
    }
}
