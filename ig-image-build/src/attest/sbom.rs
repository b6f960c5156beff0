//! The SPDX 2.3 JSON SBOM of a built image, made from its [`Inventory`].
//!
//! Elements: the image (a `CONTAINER` package whose checksum is the index digest), one `FILE`
//! package per platform object, the bundled SDK as a `LIBRARY` package, each tool as an
//! `APPLICATION` package (`BUILD_TOOL_OF` the image), each Cargo.lock crate as a `LIBRARY`
//! package with its checksum and purl, the WASM module, and every file the compilers read with
//! its SHA-256 and its origin (in `comment`; SDK files are also `CONTAINS`ed by the SDK
//! package). The document is a function of the inventory only: the same inputs and
//! `SOURCE_DATE_EPOCH` give the same bytes.

use serde_json::{Value, json};

use super::inventory::{Inventory, Origin};

fn checksum(sha256: &str) -> Value {
    json!([{"algorithm": "SHA256", "checksumValue": sha256}])
}

fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

/// The `pkg:oci` purl of the image.
fn image_purl(inv: &Inventory) -> String {
    let last = inv.repository.rsplit('/').next().unwrap_or(&inv.repository);
    let (registry_repo, _) = inv
        .repository
        .rsplit_once('/')
        .unwrap_or(("", &inv.repository));
    let mut purl = format!(
        "pkg:oci/{last}@{}?repository_url={}",
        inv.index_digest.as_str().replace(':', "%3A"),
        if registry_repo.is_empty() {
            last.to_string()
        } else {
            format!("{registry_repo}/{last}")
        }
    );
    if let Some(tag) = &inv.tag {
        purl.push_str(&format!("&tag={tag}"));
    }
    purl
}

/// The id of the image's package.
const IMAGE_ID: &str = "SPDXRef-Image";
/// The id of the bundled SDK's package.
const SDK_ID: &str = "SPDXRef-BundledSDK";

/// The SPDX document as canonical JSON bytes (sorted keys, no whitespace).
pub fn render(inv: &Inventory) -> Vec<u8> {
    let image_name = inv.repository.rsplit('/').next().unwrap_or(&inv.repository);
    let mut doc = Elements {
        packages: vec![image_package(inv, image_name)],
        relationships: vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)],
    };
    let object_ids = doc.add_layers(inv);
    doc.add_build_inputs(inv);
    let files = doc.files(inv, &object_ids);
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": inv.reference,
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/ig-image/{}-{}",
            id_part(image_name),
            inv.index_digest.hex()
        ),
        "creationInfo": {
            "created": inv.created,
            "creators": [format!("Tool: ig-image-{}", env!("CARGO_PKG_VERSION"))],
        },
        "documentDescribes": [IMAGE_ID],
        "packages": doc.packages,
        "files": files,
        "relationships": doc.relationships,
    });
    gadget_store::to_canonical_json(&doc).unwrap_or_default()
}

/// The image's own package: a `CONTAINER` whose checksum is the index digest.
fn image_package(inv: &Inventory, image_name: &str) -> Value {
    json!({
        "SPDXID": IMAGE_ID,
        "name": image_name,
        "versionInfo": inv.tag.clone().unwrap_or_else(|| inv.index_digest.to_string()),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": checksum(inv.index_digest.hex()),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": image_purl(inv),
        }],
        "comment": format!("Inspektor Gadget image {}", inv.reference),
    })
}

/// The document's packages and relationships, in the order they are added.
struct Elements {
    packages: Vec<Value>,
    relationships: Vec<Value>,
}

impl Elements {
    /// The image's layers: one `FILE` package per platform object and the WASM module, each
    /// `CONTAINS`ed by the image; the objects' `(platform, id)`.
    fn add_layers(&mut self, inv: &Inventory) -> Vec<(String, String)> {
        let object_ids: Vec<(String, String)> = inv
            .objects
            .iter()
            .map(|o| {
                (
                    o.platform.clone(),
                    format!("SPDXRef-Object-{}", id_part(&o.platform)),
                )
            })
            .collect();
        for (o, (_, id)) in inv.objects.iter().zip(&object_ids) {
            self.packages.push(json!({
                "SPDXID": id,
                "name": format!("program.bpf.o ({})", o.platform),
                "versionInfo": inv.tag.clone().unwrap_or_default(),
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "FILE",
                "checksums": checksum(&o.sha256),
                "comment": format!("eBPF object for linux/{}, {} bytes, layer of the image", o.platform, o.size),
            }));
            self.relationships
                .push(relationship(IMAGE_ID, "CONTAINS", id));
        }
        if let Some((sha, size)) = &inv.wasm {
            self.packages.push(json!({
                "SPDXID": "SPDXRef-WasmModule",
                "name": "program.wasm",
                "versionInfo": inv.tag.clone().unwrap_or_default(),
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "FILE",
                "checksums": checksum(sha),
                "comment": format!("WASM module, {size} bytes, layer of the image"),
            }));
            self.relationships
                .push(relationship(IMAGE_ID, "CONTAINS", "SPDXRef-WasmModule"));
        }
        object_ids
    }

    /// What the build used: the bundled SDK, each tool and each Cargo.lock crate.
    fn add_build_inputs(&mut self, inv: &Inventory) {
        if let Some(sdk) = &inv.sdk {
            self.packages.push(json!({
                "SPDXID": SDK_ID,
                "name": "ig-image bundled gadget SDK",
                "versionInfo": sdk.version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "LIBRARY",
                "checksums": checksum(&sdk.sha256),
                "comment": format!(
                    "gadget headers, libbpf {} BPF-side headers, vmlinux.h from Linux {}",
                    sdk.libbpf, sdk.vmlinux
                ),
            }));
            self.relationships
                .push(relationship(SDK_ID, "BUILD_DEPENDENCY_OF", IMAGE_ID));
        }
        for tool in &inv.tools {
            let id = format!("SPDXRef-Tool-{}", id_part(&tool.name));
            self.packages.push(json!({
                "SPDXID": id,
                "name": tool.name,
                "versionInfo": if tool.version.is_empty() { "NOASSERTION" } else { tool.version.as_str() },
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "APPLICATION",
                "comment": format!("run as {}", tool.path),
            }));
            self.relationships
                .push(relationship(&id, "BUILD_TOOL_OF", IMAGE_ID));
        }
        for (i, c) in inv.crates.iter().enumerate() {
            let id = format!(
                "SPDXRef-Crate-{}-{}-{i}",
                id_part(&c.name),
                id_part(&c.version)
            );
            let mut p = json!({
                "SPDXID": id,
                "name": c.name,
                "versionInfo": c.version,
                "downloadLocation": if c.source.starts_with("registry+https://github.com/rust-lang/crates.io-index") {
                    format!("https://crates.io/api/v1/crates/{}/{}/download", c.name, c.version)
                } else {
                    "NOASSERTION".to_string()
                },
                "filesAnalyzed": false,
                "primaryPackagePurpose": "LIBRARY",
                "externalRefs": [{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": format!("pkg:cargo/{}@{}", c.name, c.version),
                }],
                "comment": if c.source.is_empty() { "local package (Cargo.lock)".to_string() } else { format!("{} (Cargo.lock)", c.source) },
            });
            if !c.checksum.is_empty() {
                p["checksums"] = checksum(&c.checksum);
            }
            self.packages.push(p);
            self.relationships
                .push(relationship(&id, "BUILD_DEPENDENCY_OF", IMAGE_ID));
        }
    }

    /// Every file the compilers read, with its origin; each is `GENERATED_FROM` by the objects
    /// of its platforms (else by the image), and `CONTAINS`ed by the SDK when it is the SDK's.
    fn files(&mut self, inv: &Inventory, object_ids: &[(String, String)]) -> Vec<Value> {
        let mut files = Vec::new();
        for (i, f) in inv.files.iter().enumerate() {
            let id = format!("SPDXRef-File-{i}");
            let mut origin = f.origin.label().to_string();
            if f.origin == Origin::BundledSdk {
                if let Some(sdk) = &inv.sdk {
                    origin = format!("bundled SDK {} (sha256 {})", sdk.version, &sdk.sha256[..16]);
                }
            }
            let file_type = match f.role {
                "ebpf-source" | "wasm-source" | "rust-source" => "SOURCE",
                "header" => "SOURCE",
                _ => "TEXT",
            };
            files.push(json!({
                "SPDXID": id,
                "fileName": f.name,
                "checksums": checksum(&f.sha256),
                "fileTypes": [file_type],
                "comment": format!(
                    "origin: {origin}; role: {}{}",
                    f.role,
                    if f.platforms.is_empty() { String::new() } else { format!("; platforms: {}", f.platforms.join(",")) }
                ),
            }));
            if f.origin == Origin::BundledSdk && inv.sdk.is_some() {
                self.relationships
                    .push(relationship(SDK_ID, "CONTAINS", &id));
            }
            let targets: Vec<&(String, String)> = if f.platforms.is_empty() {
                Vec::new()
            } else {
                object_ids
                    .iter()
                    .filter(|(p, _)| f.platforms.contains(p))
                    .collect()
            };
            if targets.is_empty() {
                self.relationships
                    .push(relationship(IMAGE_ID, "GENERATED_FROM", &id));
            }
            for (_, object) in targets {
                self.relationships
                    .push(relationship(object, "GENERATED_FROM", &id));
            }
        }
        files
    }
}
