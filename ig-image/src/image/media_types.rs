//! Media types and annotation keys of gadget images (docs/format.md).

/// The image index every gadget image is.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// One per-architecture manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `artifactType` of gadget manifests.
pub const GADGET_ARTIFACT: &str = "application/vnd.gadget.v1+binary";
/// Config blob: gadget.yaml as written.
pub const GADGET_CONFIG: &str = "application/vnd.gadget.config.v1+yaml";
/// The OCI empty descriptor's media type, used when there is no gadget.yaml.
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The eBPF object layer.
pub const EBPF_LAYER: &str = "application/vnd.gadget.ebpf.program.v1+binary";
/// The WASM module layer.
pub const WASM_LAYER: &str = "application/vnd.gadget.wasm.program.v1+binary";
/// The btfgen layer.
pub const BTFGEN_LAYER: &str = "application/vnd.gadget.btfgen.v1+binary";

/// Image title (gadget.yaml `name`).
pub const TITLE: &str = "org.opencontainers.image.title";
/// gadget.yaml `description`.
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
/// gadget.yaml `homepageURL`.
pub const URL: &str = "org.opencontainers.image.url";
/// gadget.yaml `documentationURL`.
pub const DOCUMENTATION: &str = "org.opencontainers.image.documentation";
/// gadget.yaml `sourceURL`.
pub const SOURCE: &str = "org.opencontainers.image.source";
/// Creation time, RFC 3339.
pub const CREATED: &str = "org.opencontainers.image.created";
/// Version of the tool that built the image.
pub const BUILDER_VERSION: &str = "io.inspektor-gadget.builder.version";
