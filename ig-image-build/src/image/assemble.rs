//! Turns built parts (metadata, per-platform objects, wasm) into the blobs of a gadget image:
//! config, layers, one manifest per platform and the index, exactly as docs/format.md says.

use std::collections::{BTreeMap, HashMap};

use gadget_facts::media_types as mt;
use gadget_facts::platform::Platform;
use oci_spec::image::{
    Arch, Descriptor, Digest, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    PlatformBuilder,
};

/// The OCI empty JSON blob and its digest.
pub const EMPTY_JSON: &[u8] = b"{}";

/// Everything that goes into one image.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// gadget.yaml bytes as written by the author.
    pub metadata: Option<Vec<u8>>,
    /// Annotations for every descriptor, in application order (later keys override earlier ones).
    pub annotations: Vec<(String, String)>,
    /// One entry per platform: the stripped eBPF object, if the gadget has one.
    pub objects: Vec<(Platform, Option<Vec<u8>>)>,
    /// The WASM module (the same blob on every platform).
    pub wasm: Option<Vec<u8>>,
    /// Per platform: the btfgen layer (tar.gz of minimized kernel BTFs), after eBPF and WASM.
    pub btfgen: Vec<(Platform, Vec<u8>)>,
}

/// The blobs of an image and its index digest.
#[derive(Debug, Clone)]
pub struct AssembledImage {
    /// Every blob, index last, each with its descriptor.
    pub blobs: Vec<(Descriptor, Vec<u8>)>,
    /// The descriptor of the index, to tag.
    pub index: Descriptor,
}

/// Assembly failed (only on internal inconsistencies: the inputs are already validated).
#[derive(Debug, thiserror::Error)]
#[error("cannot assemble the image: {message}")]
pub struct AssembleError {
    /// What went wrong.
    pub message: String,
}

pub(super) fn err(e: impl std::fmt::Display) -> AssembleError {
    AssembleError {
        message: e.to_string(),
    }
}

/// SHA-256 digest of bytes in OCI form.
pub fn digest_of(data: &[u8]) -> Result<Digest, AssembleError> {
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data))
    )
    .parse()
    .map_err(err)
}

pub(super) fn descriptor(media_type: &str, data: &[u8]) -> Result<Descriptor, AssembleError> {
    Ok(Descriptor::new(
        MediaType::from(media_type),
        data.len() as u64,
        digest_of(data)?,
    ))
}

fn arch(platform: Platform) -> Arch {
    Arch::from(platform.oci_arch())
}

/// Build every blob of the image. Deterministic: the same inputs give the same digests.
pub fn assemble(inputs: &ImageInputs) -> Result<AssembledImage, AssembleError> {
    let annotations: HashMap<String, String> = inputs
        .annotations
        .iter()
        .cloned()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let mut blobs: Vec<(Descriptor, Vec<u8>)> = Vec::new();

    let config = match &inputs.metadata {
        Some(yaml) => {
            let mut d = descriptor(mt::GADGET_CONFIG, yaml)?;
            d.set_annotations(Some(annotations.clone()));
            blobs.push((d.clone(), yaml.clone()));
            d
        }
        None => {
            let mut d = descriptor(mt::EMPTY, EMPTY_JSON)?;
            d.set_data(Some("e30=".to_string()));
            blobs.push((d.clone(), EMPTY_JSON.to_vec()));
            d
        }
    };
    let wasm = match &inputs.wasm {
        Some(module) => {
            let d = descriptor(mt::WASM_LAYER, module)?;
            blobs.push((d.clone(), module.clone()));
            Some(d)
        }
        None => None,
    };

    let mut platforms: Vec<&(Platform, Option<Vec<u8>>)> = inputs.objects.iter().collect();
    platforms.sort_by_key(|(p, _)| p.oci_arch());
    let mut entries = Vec::new();
    for (platform, object) in platforms {
        let mut layers = Vec::new();
        if let Some(object) = object {
            let d = descriptor(mt::EBPF_LAYER, object)?;
            blobs.push((d.clone(), object.clone()));
            layers.push(d);
        }
        if let Some(w) = &wasm {
            layers.push(w.clone());
        }
        if let Some((_, btfgen)) = inputs.btfgen.iter().find(|(p, _)| p == platform) {
            let d = descriptor(mt::BTFGEN_LAYER, btfgen)?;
            blobs.push((d.clone(), btfgen.clone()));
            layers.push(d);
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .artifact_type(MediaType::from(mt::GADGET_ARTIFACT))
            .config(config.clone())
            .layers(layers)
            .annotations(annotations.clone())
            .build()
            .map_err(err)?;
        let (mut entry, bytes) = manifest_entry(*platform, &manifest)?;
        entry.set_annotations(Some(annotations.clone()));
        blobs.push((entry.clone(), bytes));
        entries.push(entry);
    }
    finish_index(blobs, entries, annotations)
}

/// A platform manifest's bytes and its index entry (descriptor with the platform).
pub(super) fn manifest_entry(
    platform: Platform,
    manifest: &oci_spec::image::ImageManifest,
) -> Result<(Descriptor, Vec<u8>), AssembleError> {
    let bytes = gadget_store::canonical::to_canonical_json(manifest).map_err(err)?;
    let mut entry = descriptor(mt::MANIFEST, &bytes)?;
    entry.set_platform(Some(
        PlatformBuilder::default()
            .architecture(arch(platform))
            .os(Os::Linux)
            .build()
            .map_err(err)?,
    ));
    Ok((entry, bytes))
}

/// Adds the index over `entries` (with `annotations`) as the last blob and returns the image.
pub(super) fn finish_index(
    mut blobs: Vec<(Descriptor, Vec<u8>)>,
    entries: Vec<Descriptor>,
    annotations: HashMap<String, String>,
) -> Result<AssembledImage, AssembleError> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .annotations(annotations)
        .build()
        .map_err(err)?;
    let bytes = gadget_store::canonical::to_canonical_json(&index).map_err(err)?;
    let index = descriptor(mt::INDEX, &bytes)?;
    blobs.push((index.clone(), bytes));
    Ok(AssembledImage { blobs, index })
}

/// The annotation list of docs/format.md: descriptive keys from gadget.yaml, the builder version,
/// the gadget.yaml `annotations:` map (overriding), then `created`.
pub fn image_annotations(
    descriptive: Option<&[(&str, String)]>,
    extra: &[(String, String)],
    builder_version: &str,
    created: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(fields) = descriptive {
        for (key, value) in fields {
            out.push(((*key).to_string(), value.clone()));
        }
        out.push((mt::BUILDER_VERSION.to_string(), builder_version.to_string()));
        out.extend(extra.iter().cloned());
    }
    out.push((mt::CREATED.to_string(), created.to_string()));
    out
}

/// `created` from `SOURCE_DATE_EPOCH` (UTC) when set, else now (UTC), in RFC 3339.
pub fn created_timestamp() -> Result<String, AssembleError> {
    let when = match std::env::var(gadget_facts::env::SOURCE_DATE_EPOCH) {
        Ok(v) if !v.trim().is_empty() => {
            let secs: i64 = v.trim().parse().map_err(|_| AssembleError {
                message: format!("`SOURCE_DATE_EPOCH` is `{v}`, not a number of seconds"),
            })?;
            time::OffsetDateTime::from_unix_timestamp(secs).map_err(err)?
        }
        _ => time::OffsetDateTime::now_utc(),
    };
    let when = when.replace_nanosecond(0).map_err(err)?;
    when.format(&time::format_description::well_known::Rfc3339)
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ImageInputs {
        ImageInputs {
            metadata: Some(b"name: x\n".to_vec()),
            annotations: image_annotations(
                Some(&[(mt::TITLE, "x".to_string())]),
                &[("a".into(), "b".into())],
                "v1",
                "2024-01-01T00:00:00Z",
            ),
            objects: vec![
                (Platform::Arm64, Some(b"arm".to_vec())),
                (Platform::Amd64, Some(b"x86".to_vec())),
            ],
            wasm: None,
            btfgen: Vec::new(),
        }
    }

    #[test]
    fn deterministic_and_sorted() {
        let a = assemble(&inputs()).unwrap();
        let b = assemble(&inputs()).unwrap();
        assert_eq!(a.index.digest(), b.index.digest());
        let index: serde_json::Value = serde_json::from_slice(&a.blobs.last().unwrap().1).unwrap();
        let archs: Vec<_> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(archs, ["amd64", "arm64"]);
        assert_eq!(index["annotations"]["a"], "b");
        assert_eq!(index["annotations"][mt::BUILDER_VERSION], "v1");
    }

    #[test]
    fn empty_config_without_metadata() {
        let mut i = inputs();
        i.metadata = None;
        i.annotations = image_annotations(None, &[], "v1", "2024-01-01T00:00:00Z");
        let a = assemble(&i).unwrap();
        let config = &a.blobs[0].0;
        assert_eq!(
            config.digest().to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
