//! What the store holds: image summaries for `list`, and the full analysis for `inspect`
//! (index, manifests, annotations, metadata, and each platform's eBPF object analysed).

use gadget_facts::media_types as mt;
use gadget_facts::platform::Platform;
use gadget_object::GadgetObject;
use gadget_object::yaml;
use gadget_store::graph::Children;
use gadget_store::reference::{self, Reference};
use gadget_store::{Digest, Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use yaml_rust2::Yaml;

/// One tagged image, as `list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    /// Full normalized reference.
    pub reference: String,
    /// Repository in display form (without `ghcr.io/inspektor-gadget/gadget/`).
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Index digest.
    pub digest: String,
    /// `org.opencontainers.image.created` of the host platform's manifest (or the index's).
    pub created: String,
}

/// Everything `inspect` reports about an image.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// Full normalized reference.
    pub reference: String,
    /// Index digest.
    pub digest: String,
    /// The index document.
    pub index: Value,
    /// One entry per platform shown.
    pub platforms: Vec<PlatformReport>,
}

/// One platform's manifest and content.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformReport {
    /// OCI architecture.
    pub architecture: String,
    /// Manifest digest.
    pub manifest_digest: String,
    /// The manifest document.
    pub manifest: Value,
    /// Manifest annotations.
    pub annotations: Value,
    /// gadget.yaml parsed (null without one).
    pub metadata: Value,
    /// Layers: media type, digest, size.
    pub layers: Vec<LayerInfo>,
    /// The eBPF object analysed: programs, maps, params, data sources.
    pub ebpf: Option<gadget_object::ObjectSummary>,
    /// The WASM module, read without running it: what it imports from `ig` and exports.
    pub wasm: Option<WasmSummary>,
}

/// A platform's WASM module, statically.
#[derive(Debug, Clone, Serialize)]
pub struct WasmSummary {
    /// Size in bytes.
    pub size: u64,
    /// The functions it imports from the `ig` host module (upstream's "upcalls").
    pub upcalls: Vec<String>,
    /// The functions it exports.
    pub exports: Vec<String>,
    /// Whether it exports `gadgetAPIVersion` (its value is only known by running it: `run`
    /// checks that it is 1).
    pub gadget_api_version_exported: bool,
}

/// A layer descriptor, briefly.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// Failure to list or inspect.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The store failed (missing image, corrupt blob, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A reference did not parse.
    #[error(transparent)]
    Reference(#[from] reference::ReferenceError),
    /// A document in the store is not what it should be.
    #[error("`{reference}`: {message}")]
    Malformed {
        /// The image.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// The gadget.yaml config blob is not YAML or breaks a limit of the hardened loader.
    #[error(transparent)]
    Metadata(#[from] yaml::YamlError),
    /// The image has no manifest for the requested platform.
    #[error("`{reference}` has no {platform} manifest (it has: {available})")]
    NoPlatform {
        /// The image.
        reference: String,
        /// Requested.
        platform: String,
        /// What there is.
        available: String,
    },
}

fn read_json(store: &Store, digest: &str, reference: &str) -> Result<Value, InspectError> {
    let digest = Digest::parse(digest).map_err(|e| InspectError::Malformed {
        reference: reference.to_string(),
        message: e.to_string(),
    })?;
    let bytes = store.read_blob(&digest)?;
    serde_json::from_slice(&bytes).map_err(|e| InspectError::Malformed {
        reference: reference.to_string(),
        message: format!("blob {digest} is not JSON: {e}"),
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// The tagged gadget images of the store, sorted by reference. Signature and referrer tags are left out.
pub fn list(store: &Store) -> Result<Vec<ImageSummary>, InspectError> {
    let host = Platform::host().map(Platform::oci_arch);
    let mut out = Vec::new();
    for tagged in store.list()? {
        // Signature and referrers tags (`sha256-<hex>.sig`, `sha256-<hex>`) are not images.
        if tagged.is_referrers_tag() || tagged.descriptor.media_type().to_string() != mt::INDEX {
            continue;
        }
        let Ok(parsed) = Reference::parse(&tagged.reference) else {
            continue;
        };
        let index = read_json(
            store,
            tagged.descriptor.digest().as_ref(),
            &tagged.reference,
        )?;
        let entries = Children::of(&index).manifests;
        let host_entry = entries
            .iter()
            .find(|e| str_at(e, &["platform", "architecture"]) == host)
            .or_else(|| entries.first());
        let created = host_entry
            .and_then(|e| str_at(e, &["annotations", mt::CREATED]))
            .or_else(|| str_at(&index, &["annotations", mt::CREATED]))
            .unwrap_or("")
            .to_string();
        out.push(ImageSummary {
            repository: reference::strip_display_prefix(&parsed.name()).to_string(),
            tag: parsed.tag().unwrap_or("").to_string(),
            digest: tagged.descriptor.digest().to_string(),
            reference: tagged.reference,
            created,
        });
    }
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(out)
}

/// Inspect one image; `platform` limits the platforms shown.
pub fn inspect(
    store: &Store,
    reference: &Reference,
    platform: Option<Platform>,
) -> Result<InspectReport, InspectError> {
    let full = reference.full();
    let descriptor = store.resolve(reference)?;
    let digest = descriptor.digest().to_string();
    let index = read_json(store, &digest, &full)?;
    let entries = Children::of(&index).manifests;
    let available: Vec<String> = entries
        .iter()
        .filter_map(|e| str_at(e, &["platform", "architecture"]).map(str::to_string))
        .collect();
    let mut platforms = Vec::new();
    for entry in &entries {
        let arch = str_at(entry, &["platform", "architecture"])
            .unwrap_or("")
            .to_string();
        if platform.is_some_and(|p| p.oci_arch() != arch) {
            continue;
        }
        let manifest_digest = str_at(entry, &["digest"]).unwrap_or("").to_string();
        let manifest = read_json(store, &manifest_digest, &full)?;
        let mut metadata = Value::Null;
        let children = Children::of(&manifest);
        if let Some(cfg) = children.config {
            if str_at(cfg, &["mediaType"]) == Some(mt::GADGET_CONFIG) {
                let d = Digest::parse(str_at(cfg, &["digest"]).unwrap_or("")).map_err(|e| {
                    InspectError::Malformed {
                        reference: full.clone(),
                        message: e.to_string(),
                    }
                })?;
                let origin = yaml::blob_origin(&full, d.as_str());
                let limits = yaml::YamlLimits::DEFAULT;
                if let Some(size) = cfg.get("size").and_then(Value::as_u64) {
                    yaml::check_size(size, &origin, &limits)?;
                }
                metadata =
                    yaml_to_json(&yaml::load_bytes(&store.read_blob(&d)?, &origin, &limits)?);
            }
        }
        let mut layers = Vec::new();
        let mut ebpf = None;
        let mut wasm = None;
        for layer in children.layers.iter().copied() {
            let media_type = str_at(layer, &["mediaType"]).unwrap_or("").to_string();
            let layer_digest = str_at(layer, &["digest"]).unwrap_or("").to_string();
            if media_type == mt::EBPF_LAYER {
                let d = Digest::parse(&layer_digest).map_err(|e| InspectError::Malformed {
                    reference: full.clone(),
                    message: e.to_string(),
                })?;
                let bytes = store.read_blob(&d)?;
                ebpf = Some(
                    GadgetObject::parse(&bytes)
                        .map_err(|e| InspectError::Malformed {
                            reference: full.clone(),
                            message: format!("{arch} eBPF object: {e}"),
                        })?
                        .summary(),
                );
            }
            if media_type == mt::WASM_LAYER {
                let d = Digest::parse(&layer_digest).map_err(|e| InspectError::Malformed {
                    reference: full.clone(),
                    message: e.to_string(),
                })?;
                let bytes = store.read_blob(&d)?;
                let (info, _, _) = crate::wasm::validate(&bytes);
                wasm = Some(WasmSummary {
                    size: bytes.len() as u64,
                    upcalls: info.ig_imports().map(str::to_string).collect(),
                    gadget_api_version_exported: info
                        .exports
                        .iter()
                        .any(|e| e == "gadgetAPIVersion"),
                    exports: info.exports,
                });
            }
            layers.push(LayerInfo {
                media_type,
                digest: layer_digest,
                size: layer.get("size").and_then(Value::as_u64).unwrap_or(0),
            });
        }
        platforms.push(PlatformReport {
            architecture: arch,
            manifest_digest,
            annotations: manifest.get("annotations").cloned().unwrap_or(Value::Null),
            manifest,
            metadata,
            layers,
            ebpf,
            wasm,
        });
    }
    if let (Some(p), true) = (platform, platforms.is_empty()) {
        return Err(InspectError::NoPlatform {
            reference: full,
            platform: p.oci_arch().to_string(),
            available: available.join(", "),
        });
    }
    Ok(InspectReport {
        reference: full,
        digest,
        index,
        platforms,
    })
}

/// The keys of `inspect --extra-info`, upstream's names, by family.
pub const EXTRA_INFO_KEYS: &[&str] = &[
    "oci.digest",
    "oci.created",
    "oci.manifest",
    "oci.manifestDigest",
    "oci.annotations",
    "oci.metadata",
    "oci.layers",
    "oci.index",
    "ebpf.sections",
    "ebpf.programs",
    "ebpf.maps",
    "ebpf.variables",
    "ebpf.datasources",
    "wasm.gadgetAPIVersion",
    "wasm.upcalls",
    "wasm.exports",
];

/// Expands `--extra-info` items: exact keys, or a family (`ebpf`, `ebpf.*`, `oci`, `wasm`) for
/// all of its keys. Unknown keys are an error naming the valid ones.
pub fn expand_extra_info(items: &[String]) -> Result<Vec<&'static str>, String> {
    let mut keys: Vec<&'static str> = Vec::new();
    for item in items {
        let item = item.trim();
        let family = item.strip_suffix(".*").unwrap_or(item);
        let matched: Vec<&'static str> = EXTRA_INFO_KEYS
            .iter()
            .copied()
            .filter(|k| *k == item || k.split('.').next() == Some(family))
            .collect();
        if matched.is_empty() {
            return Err(format!(
                "unknown --extra-info key `{item}` (known: {}, or a family: oci, ebpf, wasm)",
                EXTRA_INFO_KEYS.join(", ")
            ));
        }
        for k in matched {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    Ok(keys)
}

impl InspectReport {
    /// The platform shown when one is needed: the host's, else the first.
    pub fn main_platform(&self) -> Option<&PlatformReport> {
        let host = Platform::host().map(Platform::oci_arch);
        self.platforms
            .iter()
            .find(|p| Some(p.architecture.as_str()) == host)
            .or_else(|| self.platforms.first())
    }

    /// The value of one `--extra-info` key (for [`Self::main_platform`]); null when the image
    /// has no such part (no WASM module, ...).
    pub fn extra_info(&self, key: &str) -> Value {
        let p = self.main_platform();
        let ebpf = p.and_then(|p| p.ebpf.as_ref());
        let wasm = p.and_then(|p| p.wasm.as_ref());
        let json = |v: Option<Value>| v.unwrap_or(Value::Null);
        match key {
            "oci.digest" => Value::String(self.digest.clone()),
            "oci.created" => json(p.and_then(|p| p.annotations.get(mt::CREATED).cloned())),
            "oci.manifest" => json(p.map(|p| p.manifest.clone())),
            "oci.manifestDigest" => json(p.map(|p| Value::String(p.manifest_digest.clone()))),
            "oci.annotations" => json(p.map(|p| p.annotations.clone())),
            "oci.metadata" => json(p.map(|p| p.metadata.clone())),
            "oci.layers" => json(p.map(|p| to_json(&p.layers))),
            "oci.index" => self.index.clone(),
            "ebpf.sections" => json(ebpf.map(|e| to_json(&e.sections))),
            "ebpf.programs" => json(ebpf.map(|e| to_json(&e.programs))),
            "ebpf.maps" => json(ebpf.map(|e| to_json(&e.maps))),
            "ebpf.variables" => json(ebpf.map(|e| to_json(&e.params))),
            "ebpf.datasources" => json(ebpf.map(|e| to_json(&e.datasources))),
            "wasm.gadgetAPIVersion" => {
                json(wasm.map(|w| serde_json::json!({ "exported": w.gadget_api_version_exported })))
            }
            "wasm.upcalls" => json(wasm.map(|w| to_json(&w.upcalls))),
            "wasm.exports" => json(wasm.map(|w| to_json(&w.exports))),
            _ => Value::Null,
        }
    }
}

/// Any serializable value as JSON (null if it cannot be).
fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A YAML tree as JSON (keys as strings, order kept).
pub fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(r.clone()), Value::Number),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}
