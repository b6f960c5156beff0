//! Every environment variable ig-image and its crates read, in one place, with what it means.

/// Path of the local store (same as `--store`).
pub const IG_IMAGE_STORE: &str = "IG_IMAGE_STORE";
/// The clang binary to use instead of the newest `clang-NN` on PATH.
pub const CLANG: &str = "CLANG";
/// The llvm-strip binary to use instead of the newest `llvm-strip-NN` on PATH.
pub const LLVM_STRIP: &str = "LLVM_STRIP";
/// Seconds since the epoch used for `org.opencontainers.image.created`: reproducible builds.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// Base of the build cache (`$XDG_CACHE_HOME/ig-image`, default `~/.cache/ig-image`).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// Overrides the whole build cache directory (tests and CI use it).
pub const IG_IMAGE_CACHE_DIR: &str = "IG_IMAGE_CACHE_DIR";

/// Kernel cache of `run --kernel` and `kernels` (default: `kernels/` in the build cache).
pub const IG_IMAGE_KERNELS_DIR: &str = "IG_IMAGE_KERNELS_DIR";
/// Forces the microVM accelerator (`tcg` or `kvm`) instead of probing KVM.
pub const IG_IMAGE_ACCEL: &str = "IG_IMAGE_ACCEL";
/// Debian archive mirror for `debian:<suite>` kernels.
pub const IG_IMAGE_DEBIAN_MIRROR: &str = "IG_IMAGE_DEBIAN_MIRROR";
/// Debian security archive mirror for `debian:<suite>` kernels.
pub const IG_IMAGE_DEBIAN_SECURITY_MIRROR: &str = "IG_IMAGE_DEBIAN_SECURITY_MIRROR";

/// Password of a cosign private key file (`sign`, `generate-key-pair`); may be empty.
pub const COSIGN_PASSWORD: &str = "COSIGN_PASSWORD";

/// Registry credentials file (docker config.json format), as for podman and upstream `ig`.
pub const REGISTRY_AUTH_FILE: &str = "REGISTRY_AUTH_FILE";
/// Directory of docker's `config.json` (the fallback credentials file).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// A PEM bundle of extra CA certificates for registries (private CAs).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// Every variable with its one-line meaning, for `--help` and docs/environment.md.
pub const ALL: &[(&str, &str)] = &[
    (IG_IMAGE_STORE, "local store directory (like --store)"),
    (
        CLANG,
        "clang binary for eBPF builds (default: newest clang-NN on PATH)",
    ),
    (
        LLVM_STRIP,
        "llvm-strip binary (default: newest llvm-strip-NN on PATH)",
    ),
    (
        SOURCE_DATE_EPOCH,
        "fixed creation time in seconds, for reproducible builds",
    ),
    (
        XDG_CACHE_HOME,
        "base of the build cache (ig-image/ below it)",
    ),
    (
        IG_IMAGE_CACHE_DIR,
        "build cache directory, overriding XDG_CACHE_HOME",
    ),
    (
        IG_IMAGE_KERNELS_DIR,
        "kernel cache of run --kernel (default: kernels/ in the build cache)",
    ),
    (
        IG_IMAGE_ACCEL,
        "microVM accelerator: tcg or kvm (default: probe KVM)",
    ),
    (
        IG_IMAGE_DEBIAN_MIRROR,
        "Debian archive for debian:<suite> kernels",
    ),
    (
        IG_IMAGE_DEBIAN_SECURITY_MIRROR,
        "Debian security archive for debian:<suite> kernels",
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_variable_is_documented() {
        let doc = include_str!("../../docs/environment.md");
        for (name, _) in super::ALL {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/environment.md does not mention `{name}`"
            );
        }
    }
}
