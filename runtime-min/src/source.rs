//! Where a gadget comes from: an image in the local store (the host platform's manifest, its
//! gadget.yaml config and its eBPF layer) or a bare eBPF object file.

use std::path::{Path, PathBuf};

use gadget_facts::platform::Platform;
use gadget_object::GadgetObject;
use gadget_store::graph::{self, Children};
use gadget_store::{Digest, Reference, Store, StoreError};
use serde_json::Value;

use crate::metadata::{Metadata, MetadataError};
use gadget_object::elf_patch::{Elf, FixupError};

pub use gadget_store::media_types::{
    BTFGEN_LAYER, EBPF_LAYER, GADGET_CONFIG, INDEX as OCI_INDEX, WASM_LAYER,
};

/// A gadget could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The store failed (missing image, corrupt blob).
    #[error("cannot read `{reference}` from the store")]
    Store {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// A store document is not what it should be.
    #[error("`{reference}`: {reason}")]
    Malformed {
        /// The image.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// No manifest for this machine.
    #[error("`{reference}` has no {arch} manifest (it has: {available})")]
    NoPlatform {
        /// The image.
        reference: String,
        /// The architecture wanted.
        arch: String,
        /// What there is.
        available: String,
    },
    /// The image has no eBPF program.
    #[error("`{reference}` has no eBPF program layer: nothing to load")]
    NoEbpf {
        /// The image.
        reference: String,
    },
    /// An object file could not be read.
    #[error("cannot read `{}`", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// gadget.yaml is malformed.
    #[error("`{origin}`")]
    Metadata {
        /// Where it came from.
        origin: String,
        /// The cause.
        #[source]
        source: MetadataError,
    },
    /// The eBPF object is malformed.
    #[error("`{origin}`: the eBPF object cannot be parsed")]
    Object {
        /// Where it came from.
        origin: String,
        /// The cause.
        #[source]
        source: gadget_object::ObjectError,
    },
    /// The ELF container is malformed.
    #[error("`{origin}`")]
    Elf {
        /// Where it came from.
        origin: String,
        /// The cause.
        #[source]
        source: FixupError,
    },
    /// The object is for another architecture.
    #[error("`{origin}` is a {found} object, but this machine is {expected}")]
    WrongEndianness {
        /// Where it came from.
        origin: String,
        /// The object's byte order.
        found: gadget_object::Endianness,
        /// The host's.
        expected: gadget_object::Endianness,
    },
}

/// A gadget ready to load: the object bytes, parsed, and its metadata.
#[derive(Debug)]
pub struct Gadget {
    /// For messages: the reference or the file path.
    pub origin: String,
    /// The eBPF object.
    pub object: Vec<u8>,
    /// The object analysed.
    pub info: GadgetObject,
    /// Its ELF sections and symbols.
    pub elf: Elf,
    /// gadget.yaml, when the image has one.
    pub metadata: Option<Metadata>,
    /// The image's WASM module, when it has one.
    pub wasm: Option<Vec<u8>>,
    /// The image's btfgen layer (a tar.gz, see [`crate::btfgen`]), when it has one and this host
    /// has no `/sys/kernel/btf/vmlinux` (else it is not read).
    pub btfgen: Option<Vec<u8>>,
}

/// The OCI architecture name of this machine (Rust's name for a platform we do not know).
pub fn host_arch() -> &'static str {
    Platform::host().map_or(std::env::consts::ARCH, Platform::oci_arch)
}

fn host_endianness() -> gadget_object::Endianness {
    if cfg!(target_endian = "big") {
        gadget_object::Endianness::Big
    } else {
        gadget_object::Endianness::Little
    }
}

impl Gadget {
    /// Builds a gadget from object bytes and optional gadget.yaml text.
    pub fn from_parts(
        origin: String,
        object: Vec<u8>,
        metadata: Option<&str>,
    ) -> Result<Gadget, SourceError> {
        let metadata = metadata
            .map(Metadata::parse)
            .transpose()
            .map_err(|source| SourceError::Metadata {
                origin: origin.clone(),
                source,
            })?;
        let info = GadgetObject::parse(&object).map_err(|source| SourceError::Object {
            origin: origin.clone(),
            source,
        })?;
        if info.elf().endianness != host_endianness() {
            return Err(SourceError::WrongEndianness {
                origin,
                found: info.elf().endianness,
                expected: host_endianness(),
            });
        }
        let elf = Elf::parse(&object).map_err(|source| SourceError::Elf {
            origin: origin.clone(),
            source,
        })?;
        Ok(Gadget {
            origin,
            object,
            info,
            elf,
            metadata,
            wasm: None,
            btfgen: None,
        })
    }

    /// Reads an object file, with an optional gadget.yaml.
    pub fn from_object_file(path: &Path, metadata: Option<&Path>) -> Result<Gadget, SourceError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| SourceError::File {
                path: p.to_path_buf(),
                source,
            })
        };
        let object = read(path)?;
        let md = match metadata {
            Some(m) => Some(String::from_utf8_lossy(&read(m)?).into_owned()),
            None => None,
        };
        Gadget::from_parts(path.display().to_string(), object, md.as_deref())
    }

    /// Reads `arch`'s manifest (the host's when `None`) of an image in the store.
    pub fn from_store(
        store: &Store,
        reference: &Reference,
        arch: Option<&str>,
    ) -> Result<Gadget, SourceError> {
        let name = reference.display();
        let store_err = |source| SourceError::Store {
            reference: name.clone(),
            source,
        };
        let malformed = |reason: String| SourceError::Malformed {
            reference: name.clone(),
            reason,
        };
        let arch: String = arch.unwrap_or(host_arch()).to_string();
        let arch = arch.as_str();
        let descriptor = store.resolve(reference).map_err(store_err)?;
        let top = Digest::try_from(descriptor.digest()).map_err(|e| malformed(e.to_string()))?;
        let doc: Value = store.read_json(&top).map_err(store_err)?;
        // An index (the normal case) or a single manifest.
        let manifest_digest = if graph::has_manifests(&doc) {
            let entries = Children::of(&doc).manifests;
            let arch_of = |e: &Value| {
                e["platform"]["architecture"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            match entries.iter().find(|e| arch_of(e) == arch) {
                Some(e) => e["digest"].as_str().unwrap_or("").to_string(),
                None => {
                    let available: Vec<String> = entries.iter().copied().map(arch_of).collect();
                    return Err(SourceError::NoPlatform {
                        reference: name,
                        arch: arch.to_string(),
                        available: if available.is_empty() {
                            "none".into()
                        } else {
                            available.join(", ")
                        },
                    });
                }
            }
        } else {
            top.to_string()
        };
        let manifest_digest = Digest::parse(&manifest_digest)
            .map_err(|e| malformed(format!("manifest digest: {e}")))?;
        let manifest: Value = store.read_json(&manifest_digest).map_err(store_err)?;
        let blob = |d: &Value| -> Result<Vec<u8>, SourceError> {
            let digest = Digest::parse(d["digest"].as_str().unwrap_or(""))
                .map_err(|e| malformed(e.to_string()))?;
            store.read_blob(&digest).map_err(store_err)
        };
        // gadget.yaml, through the hardened loader, its size checked before it is read.
        let children = Children::of(&manifest);
        let metadata = match children.config {
            Some(c) if c["mediaType"].as_str() == Some(GADGET_CONFIG) => {
                let origin =
                    gadget_object::yaml::blob_origin(&name, c["digest"].as_str().unwrap_or(""));
                let wrap = |source: MetadataError| SourceError::Metadata {
                    origin: format!("{name} ({arch})"),
                    source,
                };
                if let Some(size) = c["size"].as_u64() {
                    let limits = gadget_object::yaml::YamlLimits::DEFAULT;
                    gadget_object::yaml::check_size(size, &origin, &limits)
                        .map_err(|e| wrap(e.into()))?;
                }
                Some(Metadata::parse_from(&blob(c)?, &origin).map_err(wrap)?)
            }
            _ => None,
        };
        let layer = children
            .layer(EBPF_LAYER)
            .ok_or_else(|| SourceError::NoEbpf {
                reference: name.clone(),
            })?;
        let object = blob(layer)?;
        let optional_layer = |media_type: &str| -> Result<Option<Vec<u8>>, SourceError> {
            match children.layer(media_type) {
                Some(l) => Ok(Some(blob(l)?)),
                None => Ok(None),
            }
        };
        let wasm = optional_layer(WASM_LAYER)?;
        // Only a host without its own kernel BTF needs the btfgen layer (it can be large).
        let btfgen = if std::path::Path::new(crate::load::SYSFS_VMLINUX).exists() {
            None
        } else {
            optional_layer(BTFGEN_LAYER)?
        };
        let mut gadget = Gadget::from_parts(format!("{name} ({arch})"), object, None)?;
        gadget.metadata = metadata;
        gadget.wasm = wasm;
        gadget.btfgen = btfgen;
        Ok(gadget)
    }
}
