//! Where signatures and referrers-tag indexes live in the store: under **bare** tags, as
//! upstream `ig` keeps them.
//!
//! Upstream copies a legacy cosign signature of the image index `sha256:<hex>` into its store
//! under the tag `sha256-<hex>.sig`, with no repository, and an OCI 1.1 referrers-tag index
//! (cosign OCI 1.1 signatures, sigstore bundles, notation signatures, attestations) under
//! `sha256-<hex>`; it resolves them there. This crate writes only these forms.
//!
//! Stores written by earlier versions of this tool hold the same documents tagged
//! `<repository>:sha256-<hex>.sig` and `<repository>:sha256-<hex>`, and imports of upstream's
//! stores turned the bare tags into `ghcr.io/inspektor-gadget/gadget/sha256-<hex>.sig:latest`.
//! Every lookup here reads those forms too ([`Transaction::signature_tags`]), after the bare one;
//! signing, pulling, importing and exporting rewrite them to the bare form.

use oci_spec::image::Descriptor;
use serde_json::{Value, json};

use crate::digest::{Digest, is_sha256_hex};
use crate::error::StoreError;
use crate::layout::MEDIA_TYPE_INDEX;
use crate::store::{TaggedImage, Transaction, descriptor_to_entry, entry_to_descriptor};

/// Suffixes after `sha256-<hex>` are at most this long (`.sig`, `.att`, `.sbom`).
const MAX_SUFFIX: usize = 16;

/// The bare legacy signature tag of `subject`: `sha256-<hex>.sig`.
pub fn signature_tag(subject: &Digest) -> String {
    format!("sha256-{}.sig", subject.hex())
}

/// The bare referrers-tag-schema tag of `subject`: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// Splits `sha256-<hex>[.suffix]` into the hex and the suffix (`""` or `.sig`, `.att`...).
fn split_bare(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("sha256-")?;
    let hex = rest.get(..64)?;
    if !is_sha256_hex(hex) {
        return None;
    }
    let suffix = &rest[64..];
    let ok = suffix.is_empty()
        || suffix.strip_prefix('.').is_some_and(|s| {
            !s.is_empty()
                && s.len() < MAX_SUFFIX
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    ok.then_some((hex, suffix))
}

/// Whether `name` is a bare signature or referrers tag (`sha256-<hex>`, `sha256-<hex>.sig`,
/// `sha256-<hex>.att`...), the form upstream keeps in its store.
pub fn is_bare_tag(name: &str) -> bool {
    split_bare(name).is_some()
}

/// The bare form of a signature or referrers tag written in any of the forms this store has
/// held: bare (`sha256-<hex>.sig`), in a repository (`<repo>:sha256-<hex>.sig`), or as an
/// earlier import mangled a bare tag (`<registry>/<path>/sha256-<hex>.sig:latest`). `None` for
/// image tags.
pub fn bare_form(name: &str) -> Option<String> {
    if is_bare_tag(name) {
        return Some(name.to_owned());
    }
    let name = name.split('@').next().unwrap_or(name);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, ""),
    };
    if is_bare_tag(tag) {
        return Some(tag.to_owned());
    }
    let last = &path[slash..];
    (tag == "latest" && slash > 0 && is_bare_tag(last)).then(|| last.to_owned())
}

/// The subject hex of a signature or referrers tag in any form (see [`bare_form`]).
pub(crate) fn tag_subject(name: &str) -> Option<String> {
    let bare = bare_form(name)?;
    split_bare(&bare).map(|(hex, _)| hex.to_owned())
}

/// The descriptor a referrers index lists for a referrer manifest (the OCI referrers API's
/// form): media type, digest, size, `artifactType` (the manifest's, else its config's media
/// type) and the manifest's annotations.
pub fn referrer_descriptor(media_type: &str, bytes: &[u8]) -> Value {
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

/// The referrers index `existing` with the descriptors `add` merged in (by digest), or `None`
/// when nothing is new. A missing or unreadable `existing` starts an empty index.
pub fn merge_referrers_index(existing: Option<&[u8]>, add: &[Value]) -> Option<Value> {
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

impl Transaction<'_> {
    /// Tags `descriptor` with the bare name `name` (`sha256-<hex>.sig`, `sha256-<hex>`...),
    /// replacing any entry of that name. The graph must be in the store. Returns what the name
    /// pointed at before.
    pub fn tag_bare(
        &mut self,
        name: &str,
        descriptor: Descriptor,
    ) -> Result<Option<Descriptor>, StoreError> {
        if !is_bare_tag(name) {
            return Err(StoreError::NotATag {
                reference: name.to_owned(),
                reason: "a bare signature tag is `sha256-<64 hex digits>` with an optional \
                         suffix such as `.sig`",
            });
        }
        self.tag_name(name, descriptor)
    }

    /// The tagged entries holding signatures or referrers indexes of `subject` whose bare form
    /// is `sha256-<hex><suffix>` (`suffix` `.sig` for legacy signatures, `""` for referrers
    /// indexes): the bare tag first, then the forms earlier versions wrote, the repository
    /// `prefer` first among those.
    pub fn signature_tags(&self, subject: &Digest, suffix: &str, prefer: &str) -> Vec<TaggedImage> {
        let wanted = format!("sha256-{}{suffix}", subject.hex());
        let mut found: Vec<TaggedImage> = self
            .list()
            .into_iter()
            .filter(|t| bare_form(&t.reference).as_deref() == Some(wanted.as_str()))
            .collect();
        let rank = |t: &TaggedImage| {
            if t.reference == wanted {
                0
            } else if t.reference.starts_with(&format!("{prefer}:")) {
                1
            } else {
                2
            }
        };
        found.sort_by_key(rank);
        found
    }

    /// Records the referrer manifest `referrer` (already in the store) of `subject`: an
    /// untagged `index.json` entry (with its `artifactType`: the descriptor's, else the
    /// manifest's, else its config's media type), and an entry in the bare
    /// referrers index `sha256-<hex>` (created or extended), where upstream looks. Entries of
    /// that index whose manifest is not in the store are dropped. Returns whether anything
    /// changed.
    pub fn add_referrer(
        &mut self,
        subject: &Digest,
        referrer: &Descriptor,
    ) -> Result<bool, StoreError> {
        let digest = Digest::try_from(referrer.digest()).map_err(|e| StoreError::InvalidEntry {
            name: referrer.digest().to_string(),
            path: self.store().path().join(crate::layout::INDEX_FILE),
            reason: e.to_string(),
        })?;
        let bytes = self.read_blob(&digest)?;
        let mut listed = referrer_descriptor(referrer.media_type().as_ref(), &bytes);
        if let Some(t) = referrer.artifact_type() {
            listed["artifactType"] = Value::from(t.to_string());
        }
        let mut untagged = listed.clone();
        if let Value::Object(o) = &mut untagged {
            o.remove("annotations");
        }
        let added = self.add_untagged_entry(untagged);

        let tag = referrers_tag(subject);
        let existing = self
            .find_tag(&tag)
            .and_then(|t| Digest::try_from(t.descriptor.digest()).ok())
            .and_then(|d| self.read_blob(&d).ok());
        let Some(mut merged) = merge_referrers_index(existing.as_deref(), &[listed]) else {
            return Ok(added);
        };
        if let Some(Value::Array(items)) = merged.get_mut("manifests") {
            items.retain(|m| {
                m.get("digest")
                    .and_then(Value::as_str)
                    .and_then(|d| Digest::parse(d).ok())
                    .is_some_and(|d| self.has_blob(&d))
            });
        }
        let index = self.write_json(oci_spec::image::MediaType::ImageIndex, &merged)?;
        self.tag_bare(&tag, index)?;
        Ok(true)
    }

    /// Whether every one of `referrers` (each a manifest digest with the digests of the blobs
    /// it holds) is already listed as a referrer of `subject` the way
    /// [`Transaction::add_referrer`] lists it, so that adding them again would change nothing:
    /// an untagged `index.json` entry with its digest, an entry in the bare referrers index
    /// `sha256-<hex>`, and the manifest and its blobs in the store (each read back once and
    /// checked against its digest). Any doubt (a missing or unreadable index) is `false`.
    pub fn has_referrers(&self, subject: &Digest, referrers: &[(Digest, Vec<Digest>)]) -> bool {
        let untagged = |digest: &Digest| {
            self.index.entries.iter().any(|e| {
                crate::layout::entry_ref_name(e).is_none()
                    && crate::layout::entry_digest(e).as_ref() == Some(digest)
            })
        };
        if !referrers.iter().all(|(manifest, _)| untagged(manifest)) {
            return false;
        }
        let blobs: std::collections::BTreeSet<&Digest> = referrers
            .iter()
            .flat_map(|(manifest, blobs)| std::iter::once(manifest).chain(blobs))
            .collect();
        if blobs.into_iter().any(|d| self.read_blob(d).is_err()) {
            return false;
        }
        let listed: Vec<String> = self
            .find_tag(&referrers_tag(subject))
            .and_then(|t| Digest::try_from(t.descriptor.digest()).ok())
            .and_then(|d| self.read_json::<Value>(&d).ok())
            .and_then(|index| {
                index.get("manifests")?.as_array().map(|ms| {
                    ms.iter()
                        .filter_map(|m| m.get("digest")?.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default();
        referrers
            .iter()
            .all(|(manifest, _)| listed.iter().any(|d| d == manifest.as_str()))
    }

    /// The entry tagged exactly `name` (a full reference or a bare tag).
    pub fn find_tag(&self, name: &str) -> Option<TaggedImage> {
        self.list().into_iter().find(|t| t.reference == name)
    }

    /// Removes every entry tagged `name` (exact, after normalization); returns what it pointed
    /// at.
    pub fn untag_name(&mut self, name: &str) -> Option<Descriptor> {
        let positions = self.positions_of(name);
        let index_path = self.store().path().join(crate::layout::INDEX_FILE);
        let previous = positions
            .first()
            .and_then(|&i| entry_to_descriptor(&self.index.entries[i], &index_path).ok());
        for &i in positions.iter().rev() {
            self.index.entries.remove(i);
        }
        previous
    }

    /// Tags `descriptor` as `name` (already normalized) after checking its graph.
    pub(crate) fn tag_name(
        &mut self,
        name: &str,
        descriptor: Descriptor,
    ) -> Result<Option<Descriptor>, StoreError> {
        let entry = descriptor_to_entry(&descriptor, Some(name))?;
        let plain = descriptor_to_entry(&descriptor, None)?;
        self.store()
            .blob_dir()
            .walk_strict(&plain, name, &mut Default::default())?;
        Ok(self.put_tagged_entry(name, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MEDIA_TYPE_MANIFEST;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn bare_tags_are_recognized() {
        assert!(is_bare_tag(&format!("sha256-{HEX}.sig")));
        assert!(is_bare_tag(&format!("sha256-{HEX}")));
        assert!(is_bare_tag(&format!("sha256-{HEX}.att")));
        assert!(!is_bare_tag(&format!("sha256-{HEX}.")));
        assert!(!is_bare_tag(&format!("sha256-{HEX}.SIG")));
        assert!(!is_bare_tag(&format!("sha256-{HEX}x")));
        assert!(!is_bare_tag("sha256-abc.sig"));
        assert!(!is_bare_tag(&format!("trace_open:sha256-{HEX}.sig")));
    }

    #[test]
    fn every_earlier_form_maps_to_the_bare_tag() {
        let bare = format!("sha256-{HEX}.sig");
        for name in [
            bare.clone(),
            format!("ghcr.io/inspektor-gadget/gadget/trace_open:sha256-{HEX}.sig"),
            format!("localhost:5000/a/b:sha256-{HEX}.sig"),
            format!("ghcr.io/inspektor-gadget/gadget/sha256-{HEX}.sig:latest"),
        ] {
            assert_eq!(bare_form(&name).as_deref(), Some(bare.as_str()), "{name}");
        }
        assert_eq!(
            bare_form(&format!("localhost:5000/a:sha256-{HEX}")),
            Some(format!("sha256-{HEX}"))
        );
        assert_eq!(tag_subject(&format!("sha256-{HEX}")).as_deref(), Some(HEX));
        assert_eq!(bare_form("ghcr.io/a/b:latest"), None);
        assert_eq!(bare_form(&format!("ghcr.io/a/sha256-{HEX}.sig:v1")), None);
        assert_eq!(bare_form("localhost:5000/sha256-abc"), None);
    }

    #[test]
    fn merging_adds_only_new_digests() {
        let a = json!({"mediaType": MEDIA_TYPE_MANIFEST, "digest": "sha256:aa", "size": 1});
        let b = json!({"mediaType": MEDIA_TYPE_MANIFEST, "digest": "sha256:bb", "size": 1});
        let merged = merge_referrers_index(None, std::slice::from_ref(&a)).unwrap();
        assert_eq!(merged["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(merged["mediaType"], MEDIA_TYPE_INDEX);
        let bytes = serde_json::to_vec(&merged).unwrap();
        assert!(merge_referrers_index(Some(&bytes), std::slice::from_ref(&a)).is_none());
        let second = merge_referrers_index(Some(&bytes), &[a, b]).unwrap();
        assert_eq!(second["manifests"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn referrer_descriptors_carry_the_artifact_type_and_annotations() {
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.dev.cosign.artifact.sig.v1+json","digest":"sha256:00","size":1},"layers":[],"annotations":{"a":"b"}}"#;
        let d = referrer_descriptor(MEDIA_TYPE_MANIFEST, m);
        assert_eq!(
            d["artifactType"],
            "application/vnd.dev.cosign.artifact.sig.v1+json"
        );
        assert_eq!(d["annotations"]["a"], "b");
        assert_eq!(d["size"], m.len());
    }
}
