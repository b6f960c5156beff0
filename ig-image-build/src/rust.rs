//! Compiling a Rust eBPF gadget (an aya-ebpf Cargo package) for one platform: cargo with
//! Debian's rustc-web, `-Z build-std=core` and bpf-linker, then the `.BTF` rewrite that turns
//! `gadget_sdk::GadgetString<N>` fields into `char[N]` ([`super::btf_strings`]), then llvm-strip,
//! through the build cache. Argument vectors only, never a shell.
//!
//! - Target: `bpfel-unknown-none` for little-endian platforms, `bpfeb-unknown-none` for s390x.
//!   rustflags `-C link-arg=--btf` (no BTF without it), `-C debuginfo=2` (BTF comes from debug
//!   info), `-C linker=<bpf-linker>`, and `--cfg bpf_target_arch="<arch>"` as aya-build sets it.
//! - The package is found with `cargo metadata` (it must have exactly one binary target, or the
//!   one named like the package); the object is the artifact cargo reports for it.
//! - Cargo's own state lives in `<cache>/rust-target/<hash of the manifest path>/<platform>`, so
//!   a second build after an edit is incremental. The object cache key is the toolchain identity
//!   (rustc, cargo, bpf-linker, the library source, llvm-strip), the manifest path, the platform
//!   and the flags; the recorded dependencies are the files cargo's dep-info lists (every local
//!   source of the package and its path dependencies) plus every local `Cargo.toml`, the
//!   `Cargo.lock` (which pins registry dependencies by checksum) and `.cargo/config.toml` if any.
//!   A no-op rebuild hashes those files and runs no tool at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use gadget_facts::platform::{ByteOrder, Platform};

use super::c::CompiledObject;
use super::cache::{BuildCache, KeyBuilder, parse_depfile};
use super::toolchain::{RustToolchain, Tool};

/// Bumped when the Rust pipeline changes in a way that changes objects.
const PIPELINE: &str = "rust-ebpf-v4";

/// What to build.
#[derive(Debug)]
pub struct RustRequest<'a> {
    /// The package's `Cargo.toml`.
    pub manifest: &'a Path,
    /// Target platform.
    pub platform: Platform,
    /// The tools.
    pub toolchain: &'a RustToolchain,
    /// llvm-strip (drops DWARF, keeps `.BTF`/`.BTF.ext`).
    pub strip: &'a Tool,
    /// The object cache, unless `--no-cache`.
    pub cache: Option<&'a BuildCache>,
    /// Where cargo's target directories live (under the cache; a temporary one with `--no-cache`).
    pub target_root: &'a Path,
}

/// A Rust eBPF build that failed.
#[derive(Debug, thiserror::Error)]
pub enum RustBuildError {
    /// The toolchain is unusable (checked before a real build).
    #[error(transparent)]
    Toolchain(#[from] super::toolchain::ToolchainError),
    /// `cargo metadata` failed or does not describe the package.
    #[error("`{manifest}`: cannot read the Cargo package: {message}")]
    Metadata {
        /// The Cargo.toml.
        manifest: PathBuf,
        /// What went wrong (cargo's message).
        message: String,
    },
    /// The package has no single binary target to build.
    #[error(
        "`{manifest}`: expected one binary target (the eBPF program, `src/main.rs` with `#![no_main]`), found {found}"
    )]
    NoBinary {
        /// The Cargo.toml.
        manifest: PathBuf,
        /// The binary targets found (or "none").
        found: String,
    },
    /// cargo reported errors.
    #[error("cargo failed to build `{manifest}` for {platform} ({target}):\n{stderr}")]
    Cargo {
        /// The Cargo.toml.
        manifest: PathBuf,
        /// The platform.
        platform: Platform,
        /// The Rust target.
        target: &'static str,
        /// cargo's and rustc's messages (the last lines).
        stderr: String,
    },
    /// cargo succeeded but reported no artifact for the binary.
    #[error("cargo built `{manifest}` for {platform} but reported no artifact for binary `{bin}`")]
    NoArtifact {
        /// The Cargo.toml.
        manifest: PathBuf,
        /// The platform.
        platform: Platform,
        /// The binary target.
        bin: String,
    },
    /// The linked object's `.BTF` could not be rewritten for its string fields.
    #[error(
        "cannot turn the `GadgetString` fields of the {platform} object of `{manifest}` into char arrays"
    )]
    StringFields {
        /// The Cargo.toml.
        manifest: PathBuf,
        /// The platform.
        platform: Platform,
        /// What is wrong with the object.
        #[source]
        source: gadget_object::elf_patch::FixupError,
    },
    /// llvm-strip failed.
    #[error("llvm-strip failed on the {platform} object of `{manifest}`:\n{stderr}")]
    Strip {
        /// The Cargo.toml.
        manifest: PathBuf,
        /// The platform.
        platform: Platform,
        /// llvm-strip's messages.
        stderr: String,
    },
    /// A tool could not be started, or a file not read.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
}

/// The Rust target for a platform's byte order.
pub fn rust_target(platform: Platform) -> &'static str {
    match platform.byte_order() {
        ByteOrder::Little => "bpfel-unknown-none",
        ByteOrder::Big => "bpfeb-unknown-none",
    }
}

/// rustc flags for every crate of the build (CARGO_ENCODED_RUSTFLAGS, one per entry).
fn rustflags(req: &RustRequest<'_>) -> Vec<String> {
    let mut flags = vec![
        "-Clink-arg=--btf".to_string(),
        "-Cdebuginfo=2".to_string(),
        format!("-Clinker={}", req.toolchain.bpf_linker.path.display()),
        // The `bpf_target_arch` cfg aya-ebpf reads: aya-build's names, Rust's `target_arch`.
        format!("--cfg=bpf_target_arch=\"{}\"", req.platform.rust_arch()),
    ];
    flags.extend(remap_flags(req.manifest));
    flags
}

/// `--remap-path-prefix` flags so the source paths in BTF line info do not depend on where the
/// package or cargo's registry live: the package directory becomes `.`, `$CARGO_HOME` becomes
/// `/cargo` (the standard library source is at Debian's fixed path already).
pub(crate) fn remap_flags(manifest: &Path) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(dir) = absolute(manifest).parent() {
        flags.push(format!("--remap-path-prefix={}=.", dir.display()));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cargo")));
    if let Some(home) = cargo_home {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            absolute(&home).display()
        ));
    }
    flags
}

/// `--remap-path-prefix=<dir>=/deps/<dir name>` for every local (path) package outside the
/// package's own directory, so that its source paths in BTF line info do not depend on where
/// the checkout lives (a gadget using `gadget-sdk` by a relative path, as the samples do).
pub(crate) fn path_dependency_remaps(manifest: &Path, local_manifests: &[PathBuf]) -> Vec<String> {
    let Some(own) = manifest.parent() else {
        return Vec::new();
    };
    let mut dirs: Vec<&Path> = local_manifests
        .iter()
        .filter_map(|m| m.parent())
        .filter(|d| !d.starts_with(own))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs.iter()
        .map(|d| {
            let name = d
                .file_name()
                .map_or_else(|| "dep".to_string(), |n| n.to_string_lossy().into_owned());
            format!("--remap-path-prefix={}=/deps/{name}", d.display())
        })
        .collect()
}

/// Environment variables that would change what a nested cargo builds (set by an outer cargo,
/// a CI job or the user's shell): removed. `CARGO_HOME` and network/registry settings stay.
pub(crate) fn scrub_env(cmd: &mut Command) {
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_TERM_",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let cargo_var = key.starts_with("CARGO_") && !KEEP.iter().any(|k| key.starts_with(k));
        let rust_var = matches!(
            key,
            "RUSTFLAGS"
                | "RUSTDOCFLAGS"
                | "RUSTC"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTUP_TOOLCHAIN"
                | "CARGO"
                | "MAKEFLAGS"
                | "MFLAGS"
        );
        if cargo_var || rust_var {
            cmd.env_remove(key);
        }
    }
}

/// `path` with symlinks resolved, else made absolute, else as given: the one way the build names
/// a gadget's directories and files to its compilers.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// The cargo target directory for a package and platform.
pub fn target_dir(target_root: &Path, manifest: &Path, platform: Platform) -> PathBuf {
    let manifest = absolute(manifest);
    let hash = super::cache::sha256_hex(manifest.as_os_str().as_encoded_bytes());
    target_root.join(&hash[..16]).join(platform.oci_arch())
}

/// Build and strip, or reuse the cached object.
pub fn compile(req: &RustRequest<'_>) -> Result<CompiledObject, RustBuildError> {
    let manifest = absolute(req.manifest);
    let target = rust_target(req.platform);
    let flags = rustflags(req);
    let key = {
        let mut k = KeyBuilder::new();
        k.add(PIPELINE)
            .add(req.toolchain.identity())
            .add(&req.strip.identity)
            .add(manifest.as_os_str().as_encoded_bytes())
            .add(target);
        for f in &flags {
            k.add(f);
        }
        k.finish()
    };
    if let Some((bytes, checked)) = req
        .cache
        .and_then(|c| c.lookup_with_dependencies(&key, &req.toolchain.library_src))
    {
        return Ok(CompiledObject {
            platform: req.platform,
            bytes,
            cached: true,
            warnings: String::new(),
            dependencies: super::cache::Dependency::paths(&checked),
            checked: super::cache::Dependency::checked(checked),
        });
    }

    req.toolchain.verify()?;
    let (bin, local_manifests, lock) = locate(req, &manifest)?;
    // Path dependencies outside the package (not covered by its `.` remap) get a fixed name too.
    // Left out of the cache key: they only change debug paths, and are a function of the local
    // manifests the cache entry already hashes.
    let mut build_flags = flags.clone();
    build_flags.extend(path_dependency_remaps(&manifest, &local_manifests));
    let (artifact, stderr) = cargo_build(req, &manifest, &bin, &build_flags)?;
    let bytes = link_and_strip(req, &artifact)?;

    let mut deps = dep_info_sources(&artifact);
    if !deps.is_empty() {
        deps.extend(local_manifests);
        deps.extend(lock.filter(|l| l.exists()));
        let config = manifest
            .parent()
            .map(|d| d.join(".cargo").join("config.toml"))
            .filter(|c| c.exists());
        deps.extend(config);
        deps.sort();
        deps.dedup();
    }
    if let Some(cache) = req.cache {
        if deps.is_empty() {
            log::warn!(
                "cargo wrote no dep-info for `{}`; not caching",
                artifact.display()
            );
        } else {
            cache.store(&key, &bytes, &deps, &req.toolchain.library_src);
        }
    }
    Ok(CompiledObject {
        platform: req.platform,
        bytes,
        cached: false,
        warnings: warnings_only(&stderr),
        dependencies: deps,
        checked: Vec::new(),
    })
}

/// Runs `cargo build` for binary `bin` of the package at `manifest` (absolute) with
/// `build_flags`; the linked program's path and cargo's stderr.
fn cargo_build(
    req: &RustRequest<'_>,
    manifest: &Path,
    bin: &str,
    build_flags: &[String],
) -> Result<(PathBuf, String), RustBuildError> {
    let target = rust_target(req.platform);
    let target_dir = target_dir(req.target_root, manifest, req.platform);
    std::fs::create_dir_all(&target_dir).map_err(|source| {
        RustBuildError::Io(crate::file_error::FileError {
            action: "create",
            path: target_dir.clone(),
            source,
        })
    })?;
    let mut cmd = Command::new(&req.toolchain.cargo.path);
    scrub_env(&mut cmd);
    cmd.current_dir(manifest.parent().unwrap_or(Path::new(".")))
        .env("RUSTC", &req.toolchain.rustc.path)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", build_flags.join("\u{1f}"))
        .env("CARGO_TERM_COLOR", "never")
        .args([
            "build",
            "--release",
            "-Z",
            "build-std=core",
            "--target",
            target,
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--bin")
        .arg(bin)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics");
    let output = cmd.output().map_err(|source| {
        RustBuildError::Io(crate::file_error::FileError {
            action: "run",
            path: req.toolchain.cargo.path.clone(),
            source,
        })
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(RustBuildError::Cargo {
            manifest: req.manifest.to_path_buf(),
            platform: req.platform,
            target,
            stderr: tail(&stderr, 60),
        });
    }
    let artifact = cargo_metadata::Message::parse_stream(output.stdout.as_slice())
        .filter_map(Result::ok)
        .find_map(|m| match m {
            cargo_metadata::Message::CompilerArtifact(a)
                if a.target.name == bin && a.target.is_bin() =>
            {
                a.executable.map(PathBuf::from)
            }
            _ => None,
        })
        .ok_or_else(|| RustBuildError::NoArtifact {
            manifest: req.manifest.to_path_buf(),
            platform: req.platform,
            bin: bin.to_string(),
        })?;
    Ok((artifact, stderr))
}

/// The object from cargo's `artifact`: its `GadgetString` fields rewritten, then stripped of
/// debug info with llvm-strip (in a temporary directory).
fn link_and_strip(req: &RustRequest<'_>, artifact: &Path) -> Result<Vec<u8>, RustBuildError> {
    let work = tempfile::Builder::new()
        .prefix("ig-image-rust-")
        .tempdir()
        .map_err(|source| {
            RustBuildError::Io(crate::file_error::FileError {
                action: "create",
                path: std::env::temp_dir(),
                source,
            })
        })?;
    let linked = with_string_fields(req, artifact, work.path())?;
    let stripped = work.path().join("program.o");
    let strip = Command::new(&req.strip.path)
        .arg("-g")
        .arg(&linked)
        .arg("-o")
        .arg(&stripped)
        .output()
        .map_err(|source| {
            RustBuildError::Io(crate::file_error::FileError {
                action: "run",
                path: req.strip.path.clone(),
                source,
            })
        })?;
    if !strip.status.success() {
        return Err(RustBuildError::Strip {
            manifest: req.manifest.to_path_buf(),
            platform: req.platform,
            stderr: String::from_utf8_lossy(&strip.stderr).into_owned(),
        });
    }
    std::fs::read(&stripped).map_err(|source| {
        RustBuildError::Io(crate::file_error::FileError {
            action: "read",
            path: stripped.clone(),
            source,
        })
    })
}

/// The linked object with its `GadgetString` fields rewritten as `char` arrays (written to
/// `work/linked.o`), or `artifact` itself when it has none. Runs before llvm-strip, which then
/// lays the file out afresh (the replaced `.BTF` bytes do not survive).
fn with_string_fields(
    req: &RustRequest<'_>,
    artifact: &Path,
    work: &Path,
) -> Result<PathBuf, RustBuildError> {
    let bytes = std::fs::read(artifact).map_err(|source| {
        RustBuildError::Io(crate::file_error::FileError {
            action: "read",
            path: artifact.to_path_buf(),
            source,
        })
    })?;
    let rewritten =
        super::btf_strings::rewrite(&bytes).map_err(|source| RustBuildError::StringFields {
            manifest: req.manifest.to_path_buf(),
            platform: req.platform,
            source,
        })?;
    let Some(rewritten) = rewritten else {
        return Ok(artifact.to_path_buf());
    };
    log::debug!(
        "{}: string fields as char arrays: {}",
        req.platform,
        rewritten.fields.join(", ")
    );
    let linked = work.join("linked.o");
    std::fs::write(&linked, &rewritten.bytes).map_err(|source| {
        RustBuildError::Io(crate::file_error::FileError {
            action: "create",
            path: linked.clone(),
            source,
        })
    })?;
    Ok(linked)
}

/// A Cargo package as `cargo metadata` describes it.
pub(crate) struct LocatedPackage {
    /// The package.
    pub package: cargo_metadata::Package,
    /// Manifests of every local (path) package of the build, its own included.
    pub local_manifests: Vec<PathBuf>,
    /// The lock file (it may not exist before the first build).
    pub lock: PathBuf,
}

/// Run `cargo metadata` for `manifest` (absolute) with the given cargo and rustc.
pub(crate) fn package_metadata(
    cargo: &Path,
    rustc: &Path,
    manifest: &Path,
) -> Result<LocatedPackage, String> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.cargo_path(cargo)
        .manifest_path(manifest)
        .env("RUSTC", rustc)
        .env("RUSTC_BOOTSTRAP", "1");
    for key in ["CARGO_TARGET_DIR", "RUSTC_WRAPPER", "RUSTUP_TOOLCHAIN"] {
        cmd.env_remove(key);
    }
    let meta = cmd.exec().map_err(|e| e.to_string())?;
    let package = meta
        .packages
        .iter()
        .find(|p| absolute(p.manifest_path.as_std_path()) == manifest)
        .or_else(|| meta.root_package())
        .cloned()
        .ok_or("the manifest describes no package (a virtual workspace manifest?)")?;
    let local_manifests = meta
        .packages
        .iter()
        .filter(|p| p.source.is_none())
        .map(|p| absolute(p.manifest_path.as_std_path()))
        .collect();
    let lock = meta.workspace_root.as_std_path().join("Cargo.lock");
    Ok(LocatedPackage {
        package,
        local_manifests,
        lock,
    })
}

/// Find the package of `manifest` with `cargo metadata`: its binary target, the manifests of
/// every local (path) package it builds, and the lock file.
fn locate(
    req: &RustRequest<'_>,
    manifest: &Path,
) -> Result<(String, Vec<PathBuf>, Option<PathBuf>), RustBuildError> {
    let located = package_metadata(
        &req.toolchain.cargo.path,
        &req.toolchain.rustc.path,
        manifest,
    )
    .map_err(|message| RustBuildError::Metadata {
        manifest: req.manifest.to_path_buf(),
        message,
    })?;
    let package = &located.package;
    let bins: Vec<&str> = package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.as_str())
        .collect();
    let bin = match bins.as_slice() {
        [one] => (*one).to_string(),
        many if many.contains(&package.name.as_str()) => package.name.to_string(),
        other => {
            return Err(RustBuildError::NoBinary {
                manifest: req.manifest.to_path_buf(),
                found: if other.is_empty() {
                    "none".to_string()
                } else {
                    other
                        .iter()
                        .map(|b| format!("`{b}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
    };
    Ok((bin, located.local_manifests, Some(located.lock)))
}

/// The sources listed in cargo's dep-info file next to the artifact (`<bin>.d`).
pub(crate) fn dep_info_sources(artifact: &Path) -> Vec<PathBuf> {
    let d = artifact.with_extension("d");
    let d = if d.exists() {
        d
    } else {
        PathBuf::from(format!("{}.d", artifact.display()))
    };
    std::fs::read_to_string(&d)
        .map(|t| parse_depfile(&t))
        .unwrap_or_default()
        .into_iter()
        .map(|p| absolute(&p))
        .collect()
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("... ({start} earlier lines)\n"));
    }
    out.push_str(&lines[start..].join("\n"));
    out
}

/// Compiler warnings from a successful build's stderr (cargo's progress lines dropped).
pub(crate) fn warnings_only(stderr: &str) -> String {
    let mut out = String::new();
    let mut in_warning = false;
    for line in stderr.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("warning:") {
            // cargo's summary line ("warning: `x` (bin "x") generated 1 warning") adds nothing.
            in_warning = !trimmed.contains(" generated ");
        } else if trimmed.starts_with("Compiling")
            || trimmed.starts_with("Finished")
            || trimmed.starts_with("Updating")
            || trimmed.starts_with("Locking")
            || trimmed.starts_with("Downloading")
            || trimmed.starts_with("Downloaded")
        {
            in_warning = false;
            continue;
        }
        if in_warning {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The hints of the toolchain error this one is transparently.
impl gadget_store::hint::Hint for RustBuildError {
    fn hints(&self) -> Vec<String> {
        match self {
            RustBuildError::Toolchain(e) => gadget_store::hint::Hint::hints(e),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_byte_order() {
        assert_eq!(rust_target(Platform::Amd64), "bpfel-unknown-none");
        assert_eq!(rust_target(Platform::Arm64), "bpfel-unknown-none");
        assert_eq!(rust_target(Platform::S390x), "bpfeb-unknown-none");
    }

    #[test]
    fn target_dirs_are_per_package_and_platform() {
        let root = Path::new("/cache/rust-target");
        let a = target_dir(root, Path::new("/x/a/Cargo.toml"), Platform::Amd64);
        let b = target_dir(root, Path::new("/x/b/Cargo.toml"), Platform::Amd64);
        let a_arm = target_dir(root, Path::new("/x/a/Cargo.toml"), Platform::Arm64);
        assert_ne!(a, b);
        assert_eq!(a.parent(), a_arm.parent());
        assert!(a.ends_with("amd64") && a.starts_with(root));
    }

    #[test]
    fn warnings_keep_diagnostics_and_drop_progress() {
        let stderr = "   Compiling foo v0.1.0\nwarning: unused variable: `x`\n --> src/main.rs:3:9\n  |\nwarning: `foo` (bin \"foo\") generated 1 warning\n    Finished `release` profile\n";
        let w = warnings_only(stderr);
        assert!(
            w.contains("unused variable") && w.contains("src/main.rs:3:9"),
            "{w}"
        );
        assert!(
            !w.contains("Compiling") && !w.contains("generated 1 warning"),
            "{w}"
        );
    }

    #[test]
    fn path_dependencies_outside_the_package_are_remapped() {
        let remaps = path_dependency_remaps(
            Path::new("/src/gadgets/demo/Cargo.toml"),
            &[
                PathBuf::from("/src/gadgets/demo/Cargo.toml"),
                PathBuf::from("/src/gadgets/demo/vendored/Cargo.toml"),
                PathBuf::from("/src/gadget-sdk-rs/Cargo.toml"),
            ],
        );
        assert_eq!(
            remaps,
            ["--remap-path-prefix=/src/gadget-sdk-rs=/deps/gadget-sdk-rs"]
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "... (1 earlier lines)\nb\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
