//! What went into one build, collected once for the SBOM and the provenance: every file the
//! compilers read (with SHA-256 and origin), the tools with their versions, the Rust crates of
//! Cargo.lock, the WASM module and the per-platform objects.
//!
//! Paths are recorded so that two builds of the same sources on the same machine give the same
//! documents: files below the gadget directory or an SDK root are named relative to it, system
//! files by their absolute path. Nothing here depends on the cache directory's location.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gadget_facts::platform::Platform;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::toolchain::Tool;

/// Where a file the compiler read comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The gadget directory.
    Gadget,
    /// The SDK bundled in ig-image.
    BundledSdk,
    /// The `--sdk-dir` tree.
    SdkDir,
    /// An `-I` / build.yaml `includeDirs` directory outside the gadget directory.
    IncludeDir,
    /// Anything else (system headers, the Rust standard library).
    System,
}

impl Origin {
    /// A short label.
    pub fn label(&self) -> &'static str {
        match self {
            Origin::Gadget => "gadget directory",
            Origin::BundledSdk => "bundled SDK",
            Origin::SdkDir => "--sdk-dir",
            Origin::IncludeDir => "include directory",
            Origin::System => "system",
        }
    }
}

/// One file the build read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputFile {
    /// Relative to its origin's root (`./program.bpf.c`, `./bpf/bpf_helpers.h`), or absolute
    /// for system files.
    pub name: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Where it comes from.
    pub origin: Origin,
    /// What it was used for (`ebpf-source`, `header`, `build-file`, `metadata`, `wasm-source`,
    /// `cargo-lock`, `cargo-manifest`, `rust-source`).
    pub role: &'static str,
    /// Platforms whose object it went into (empty: the image as a whole).
    pub platforms: Vec<String>,
}

/// A tool with its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolInfo {
    /// `clang`, `llvm-strip`, `rustc`, `cargo`, `bpf-linker`.
    pub name: String,
    /// The resolved binary.
    pub path: String,
    /// The first line of `--version` (empty when it could not be run).
    pub version: String,
}

/// A crate of a Cargo.lock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Crate {
    /// Crate name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `source` (`registry+https://…`, `git+…`), empty for local packages.
    pub source: String,
    /// The registry checksum (SHA-256 hex of the `.crate`), empty when Cargo.lock has none.
    pub checksum: String,
}

/// One platform's object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectInfo {
    /// OCI architecture.
    pub platform: String,
    /// SHA-256 of the stripped object, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
}

/// The bundled SDK's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdkInfo {
    /// The SDK content hash (hex).
    pub sha256: String,
    /// ig-image's version, which the SDK ships with.
    pub version: String,
    /// libbpf version of `bpf/*.h`.
    pub libbpf: String,
    /// Kernel package version the `vmlinux.h` headers were generated from.
    pub vmlinux: String,
}

/// Everything the documents are made from.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// Full reference the image was tagged with.
    pub reference: String,
    /// Repository (`registry/repo`), the in-toto subject name.
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// Index digest.
    pub index_digest: gadget_store::Digest,
    /// Creation time (RFC 3339; `SOURCE_DATE_EPOCH` when set).
    pub created: String,
    /// `SOURCE_DATE_EPOCH` when set.
    pub source_date_epoch: Option<String>,
    /// Files read, sorted by (origin, name).
    pub files: Vec<InputFile>,
    /// Tools.
    pub tools: Vec<ToolInfo>,
    /// Crates, sorted, deduplicated.
    pub crates: Vec<Crate>,
    /// The bundled SDK, when a C build used it.
    pub sdk: Option<SdkInfo>,
    /// Per-platform objects.
    pub objects: Vec<ObjectInfo>,
    /// SHA-256 of the WASM module, hex, with its size.
    pub wasm: Option<(String, usize)>,
    /// The build definition (build.yaml values and flags), for the provenance.
    pub definition: serde_json::Value,
}

/// The roots files are classified against.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// The gadget directory.
    pub gadget: PathBuf,
    /// The unpacked bundled SDK include root, if used.
    pub bundled_sdk: Option<PathBuf>,
    /// `--sdk-dir`.
    pub sdk_dir: Option<PathBuf>,
    /// `-I` and `includeDirs`.
    pub include_dirs: Vec<PathBuf>,
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Roots {
    /// Canonicalizes every root (the compiler's dependency paths are canonical).
    pub fn canonicalized(self) -> Roots {
        Roots {
            gadget: canonical(&self.gadget),
            bundled_sdk: self.bundled_sdk.as_deref().map(canonical),
            sdk_dir: self.sdk_dir.as_deref().map(canonical),
            include_dirs: self.include_dirs.iter().map(|d| canonical(d)).collect(),
        }
    }

    /// The origin of `path` (the longest matching root wins) and its recorded name.
    pub fn classify(&self, path: &Path) -> (Origin, String) {
        // On a tie (the same directory named twice) the later kind wins: the gadget directory.
        let mut candidates: Vec<(&Path, Origin)> = Vec::new();
        for dir in &self.include_dirs {
            candidates.push((dir, Origin::IncludeDir));
        }
        if let Some(sdk) = &self.sdk_dir {
            candidates.push((sdk, Origin::SdkDir));
        }
        if let Some(sdk) = &self.bundled_sdk {
            candidates.push((sdk, Origin::BundledSdk));
        }
        candidates.push((self.gadget.as_path(), Origin::Gadget));
        let best = candidates
            .into_iter()
            .filter(|(root, _)| path.starts_with(root))
            .max_by_key(|(root, _)| root.components().count());
        match best {
            Some((root, origin)) => {
                let rel = path.strip_prefix(root).unwrap_or(path);
                (origin, format!("./{}", slash_path(rel)))
            }
            None => (Origin::System, slash_path(path)),
        }
    }
}

fn slash_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// SHA-256 hex of a file's content, `None` when unreadable.
pub fn file_sha256(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|data| hex::encode(Sha256::digest(&data)))
}

/// Collects input files: each path once, with the platforms it went into.
#[derive(Debug, Default)]
pub struct FileSet {
    files: BTreeMap<PathBuf, (&'static str, Vec<String>)>,
    /// Digests the build has just checked, so the file need not be read again.
    checked: BTreeMap<PathBuf, String>,
}

impl FileSet {
    /// Records `path` (absolute) as read for `platform` (`None`: the image as a whole).
    pub fn add(&mut self, path: &Path, role: &'static str, platform: Option<Platform>) {
        let entry = self
            .files
            .entry(path.to_path_buf())
            .or_insert((role, Vec::new()));
        if let Some(p) = platform {
            let arch = p.oci_arch().to_string();
            if !entry.1.contains(&arch) {
                entry.1.push(arch);
            }
        }
    }

    /// Records that `path`'s content has SHA-256 `sha256` (hex), as the build just checked it.
    pub fn checked(&mut self, path: &Path, sha256: &str) {
        self.checked.insert(path.to_path_buf(), sha256.to_owned());
    }

    /// Every recorded path.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(PathBuf::as_path)
    }

    /// The files, hashed and classified, sorted by (origin, name). Bundled SDK files take
    /// their digest from the binary (computed when it was built), files the build has just
    /// checked the digest it checked; others are read now. An unreadable file is an error
    /// naming it.
    pub fn resolve(&self, roots: &Roots) -> Result<Vec<InputFile>, std::io::Error> {
        let mut out = Vec::with_capacity(self.files.len());
        for (path, (role, platforms)) in &self.files {
            let (origin, name) = roots.classify(path);
            let known = (origin == Origin::BundledSdk)
                .then(|| crate::sdk::file_sha256(name.trim_start_matches("./")))
                .flatten()
                .or_else(|| self.checked.get(path).map(String::as_str));
            let sha256 = match known {
                Some(d) => d.to_string(),
                None => {
                    let data = std::fs::read(path).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("`{}`: {e}", path.display()))
                    })?;
                    hex::encode(Sha256::digest(&data))
                }
            };
            let role = if *role == "header" && name.ends_with(".c") {
                "ebpf-source"
            } else {
                role
            };
            let mut platforms = platforms.clone();
            platforms.sort();
            out.push(InputFile {
                name,
                sha256,
                origin,
                role,
                platforms,
            });
        }
        out.sort_by(|a, b| (&a.origin, &a.name).cmp(&(&b.origin, &b.name)));
        Ok(out)
    }
}

/// The bundled SDK's identity.
pub fn bundled_sdk_info() -> SdkInfo {
    SdkInfo {
        sha256: crate::sdk::HASH.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        libbpf: crate::sdk::provenance_value("bpf/VERSION", "libbpf_version")
            .unwrap_or_default()
            .to_string(),
        vmlinux: crate::sdk::provenance_value("gadget/VMLINUX_VERSION", "package_version")
            .unwrap_or_default()
            .to_string(),
    }
}

/// `name`'s version: the first line of `TOOL --version`, remembered per tool identity (path,
/// size, mtime) under `cache_dir` so a cached build runs no tool.
pub fn tool_info(name: &str, tool: &Tool, cache_dir: Option<&Path>) -> ToolInfo {
    let key = hex::encode(Sha256::digest(format!("v1;{}", tool.identity).as_bytes()));
    let remembered = cache_dir.map(|d| d.join("tool-versions").join(&key));
    let cached = remembered
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .filter(|v| !v.is_empty());
    let version = match cached {
        Some(v) => v,
        None => {
            let v = Command::new(&tool.path)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| version_line(&String::from_utf8_lossy(&o.stdout)))
                .unwrap_or_default();
            if let (Some(path), false) = (&remembered, v.is_empty()) {
                // Best effort: without it the next build asks the tool again.
                let _ = crate::cache::write_atomic(path, v.as_bytes());
            }
            v
        }
    };
    ToolInfo {
        name: name.to_string(),
        path: slash_path(&tool.resolved),
        version,
    }
}

/// The line of `--version` output that names the version: the first mentioning "version"
/// (llvm-strip prints a banner first), else the first non-empty one.
fn version_line(text: &str) -> Option<String> {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| l.to_ascii_lowercase().contains("version"))
        .or_else(|| lines().next())
        .map(str::to_owned)
}

/// The packages of a Cargo.lock (a line-oriented reader of its `[[package]]` tables: the
/// format cargo writes, with one `key = "value"` per line).
pub fn cargo_lock_crates(text: &str) -> Vec<Crate> {
    let mut out = Vec::new();
    let mut current: Option<Crate> = None;
    let unquote = |v: &str| v.trim().trim_matches('"').to_string();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            if let Some(c) = current.take().filter(|c| !c.name.is_empty()) {
                out.push(c);
            }
            if line == "[[package]]" {
                current = Some(Crate {
                    name: String::new(),
                    version: String::new(),
                    source: String::new(),
                    checksum: String::new(),
                });
            }
            continue;
        }
        let (Some(c), Some((key, value))) = (current.as_mut(), line.split_once('=')) else {
            continue;
        };
        match key.trim() {
            "name" => c.name = unquote(value),
            "version" => c.version = unquote(value),
            "source" => c.source = unquote(value),
            "checksum" => c.checksum = unquote(value),
            _ => {}
        }
    }
    if let Some(c) = current.filter(|c| !c.name.is_empty()) {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_prefers_the_deepest_root() {
        let roots = Roots {
            gadget: "/g".into(),
            bundled_sdk: Some("/cache/sdk/abc/include".into()),
            sdk_dir: Some("/g/vendor/sdk".into()),
            include_dirs: vec!["/g".into(), "/opt/inc".into()],
        };
        assert_eq!(
            roots.classify(Path::new("/g/program.bpf.c")),
            (Origin::Gadget, "./program.bpf.c".into())
        );
        assert_eq!(
            roots.classify(Path::new("/g/vendor/sdk/gadget/macros.h")),
            (Origin::SdkDir, "./gadget/macros.h".into())
        );
        assert_eq!(
            roots.classify(Path::new("/cache/sdk/abc/include/bpf/bpf_helpers.h")),
            (Origin::BundledSdk, "./bpf/bpf_helpers.h".into())
        );
        assert_eq!(
            roots.classify(Path::new("/opt/inc/x.h")),
            (Origin::IncludeDir, "./x.h".into())
        );
        assert_eq!(
            roots.classify(Path::new("/usr/include/asm/types.h")),
            (Origin::System, "/usr/include/asm/types.h".into())
        );
    }

    #[test]
    fn version_lines_skip_banners() {
        assert_eq!(
            version_line("llvm-strip, compatible with GNU strip\nDebian LLVM version 19.1.7\n  Optimized build.\n").unwrap(),
            "Debian LLVM version 19.1.7"
        );
        assert_eq!(version_line("\nrustc 1.96.0\n").unwrap(), "rustc 1.96.0");
        assert_eq!(version_line(""), None);
    }

    #[test]
    fn cargo_lock_packages_are_read() {
        let lock = r#"# This file is automatically @generated by Cargo.
version = 4

[[package]]
name = "aya-ebpf"
version = "0.1.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "abcd"
dependencies = [
 "aya-ebpf-bindings",
]

[[package]]
name = "my_gadget"
version = "0.1.0"
"#;
        let crates = cargo_lock_crates(lock);
        assert_eq!(crates.len(), 2);
        assert_eq!(crates[0].name, "aya-ebpf");
        assert_eq!(crates[0].checksum, "abcd");
        assert!(crates[0].source.starts_with("registry+"));
        assert_eq!(crates[1].name, "my_gadget");
        assert!(crates[1].source.is_empty());
    }

    #[test]
    fn bundled_sdk_files_have_build_time_digests() {
        let (rel, content) = crate::sdk::files()[0];
        assert_eq!(
            crate::sdk::file_sha256(rel).unwrap(),
            hex::encode(Sha256::digest(content))
        );
        assert!(!bundled_sdk_info().libbpf.is_empty());
    }
}
