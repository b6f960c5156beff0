//! Helpers for the unit tests: minimal gadget images built by hand, store snapshots.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::layout::{MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};
use crate::reference::Reference;
use crate::store::{Store, Transaction};

pub(crate) const ARTIFACT: &str = "application/vnd.gadget.v1+binary";
pub(crate) const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub(crate) const WASM: &str = "application/vnd.gadget.wasm.program.v1+binary";

pub(crate) fn reference(s: &str) -> Reference {
    s.parse().unwrap()
}

/// A WASM-looking layer (the checker only looks at the magic).
pub(crate) fn wasm_layer(seed: &str) -> Vec<u8> {
    let mut v = b"\0asm\x01\0\0\0".to_vec();
    v.extend_from_slice(seed.as_bytes());
    v
}

/// The parts of a hand-made gadget image.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub index: Descriptor,
    pub manifests: Vec<Digest>,
    pub layers: Vec<Digest>,
}

/// Writes an index → amd64 + arm64 manifests, config = OCI empty descriptor, and optionally a
/// WASM layer shared by both arches. `mediaType` inside the manifest body is omitted when
/// `upstream_style`, as upstream's Go encoder does.
pub(crate) fn write_image(
    tx: &Transaction<'_>,
    title: &str,
    layer: Option<&[u8]>,
    upstream_style: bool,
) -> Image {
    let annotations = json!({
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.created": "2024-01-02T03:04:05Z",
        "io.inspektor-gadget.builder.version": "test",
    });
    assert_eq!(tx.write_blob(b"{}").unwrap().as_str(), EMPTY_DIGEST);
    let mut layers = Vec::new();
    if let Some(data) = layer {
        let d = tx.write_blob(data).unwrap();
        layers.push(json!({"mediaType": WASM, "digest": d.as_str(), "size": data.len()}));
    }
    let mut entries = Vec::new();
    let mut manifests = Vec::new();
    let mut first_annotations = None;
    for arch in ["amd64", "arm64"] {
        // Per-arch annotations make the two manifests distinct blobs, as eBPF layers would.
        let mut annotations = annotations.clone();
        annotations["test.arch"] = json!(arch);
        first_annotations.get_or_insert_with(|| annotations.clone());
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "artifactType": ARTIFACT,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": EMPTY_DIGEST,
                "size": 2,
                "data": "e30="
            },
            "layers": layers,
            "annotations": annotations,
        });
        if upstream_style {
            m.as_object_mut().unwrap().remove("mediaType");
        }
        let desc = tx.write_json(MediaType::ImageManifest, &m).unwrap();
        manifests.push(Digest::try_from(desc.digest()).unwrap());
        entries.push(json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": desc.digest().to_string(),
            "size": desc.size(),
            "annotations": annotations,
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": entries,
        "annotations": first_annotations,
    });
    let index = tx.write_json(MediaType::ImageIndex, &index).unwrap();
    Image {
        index,
        manifests,
        layers: layer.map(|l| vec![Digest::of(l)]).unwrap_or_default(),
    }
}

/// Builds and tags an image in one transaction.
pub(crate) fn add_image(store: &Store, name: &str, layer: Option<&[u8]>) -> Image {
    store
        .transaction(|tx| {
            let img = write_image(tx, name, layer, false);
            tx.tag(&reference(name), img.index.clone())?;
            Ok::<_, crate::StoreError>(img)
        })
        .unwrap()
}

/// `index.json` bytes and every blob's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub index: Vec<u8>,
    pub blobs: BTreeMap<String, Vec<u8>>,
}

pub(crate) fn snapshot(root: &Path) -> Snapshot {
    let mut blobs = BTreeMap::new();
    for e in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        blobs.insert(
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    Snapshot {
        index: std::fs::read(root.join("index.json")).unwrap(),
        blobs,
    }
}

pub(crate) fn index_json(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap()
}

/// Runs the independent checker on a layout; `None` when it is not available here.
pub(crate) fn run_checker(layout: &Path, refs: &[&str]) -> Option<(i32, String)> {
    let tool = Path::new("/work/shared/tools/gadget-image-check");
    if !tool.exists() {
        eprintln!(
            "skipping the gadget-image-check run: `{}` is missing",
            tool.display()
        );
        return None;
    }
    let out = match Command::new("python3")
        .arg(tool)
        .arg(layout)
        .args(refs)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping the gadget-image-check run: cannot run python3: {e}");
            return None;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("ModuleNotFoundError") {
        eprintln!("skipping the gadget-image-check run: {text}");
        return None;
    }
    eprintln!("gadget-image-check {}: {text}", layout.display());
    Some((out.status.code().unwrap_or(-1), text))
}
