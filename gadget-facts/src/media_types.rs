//! Media types and annotation keys of OCI layouts, gadget images and their signatures
//! (docs/format.md): the one definition every crate uses (the store, the builder, the registry
//! client, signing and verification, the runtime). `gadget_store::media_types` re-exports it.

/// The image index every gadget image is.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// One per-architecture manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (read for compatibility).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (read for compatibility).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The short-lived OCI artifact manifest (read for compatibility).
pub const ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
/// The OCI image config.
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A gzip-compressed OCI layer (ig-image's own container image).
pub const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Documents whose children are manifests (an index or a manifest list).
pub const INDEX_TYPES: &[&str] = &[INDEX, DOCKER_LIST];
/// Documents whose children are a config and layers.
pub const MANIFEST_TYPES: &[&str] = &[MANIFEST, DOCKER_MANIFEST, ARTIFACT_MANIFEST];

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
/// Version of the packaged software (ig-image's own container image).
pub const VERSION: &str = "org.opencontainers.image.version";
/// The annotation that carries a tag in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Version of the tool that built the image.
pub const BUILDER_VERSION: &str = "io.inspektor-gadget.builder.version";

/// Layer media type of a cosign simple-signing payload.
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature of a simple-signing layer.
pub const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// `artifactType` (and config media type) of an OCI 1.1 cosign signature.
pub const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// `artifactType` and layer media type of a sigstore bundle.
pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Annotation of a bundle referrer saying what the bundle holds (`dsse-envelope`).
pub const SIGSTORE_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
/// Annotation of a bundle referrer announcing its in-toto predicate type.
pub const SIGSTORE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
/// DSSE payload type of an in-toto statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// Media type (and referrer `artifactType`) of an SPDX JSON document.
pub const SPDX_JSON: &str = "application/spdx+json";
/// The in-toto predicate type of an SPDX document (as cosign's `--type spdxjson`).
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
/// SLSA provenance v1 predicate type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// SLSA provenance v0.2 predicate type (cosign's `--type slsaprovenance`).
pub const SLSA_PROVENANCE_V02: &str = "https://slsa.dev/provenance/v0.2";
/// Annotation naming the predicate type of a plain in-toto referrer.
pub const IN_TOTO_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
