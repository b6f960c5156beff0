//! Finding the C toolchain: `CLANG` / `LLVM_STRIP`, else the newest `clang-NN` / `llvm-strip-NN` on PATH.
//! The Rust eBPF toolchain ([`RustToolchain`]: Debian's rustc-web and cargo-web, rust-web-src,
//! bpf-linker) is found at fixed places; a missing piece is an error naming it and how to
//! install it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use gadget_facts::env;

/// The oldest LLVM major version we accept from PATH discovery.
pub const MIN_LLVM_MAJOR: u32 = 14;

/// A tool we could not find or use.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// Nothing suitable on PATH and no override set.
    #[error(
        "`{tool}` not found: no `{tool}-NN` (NN >= {MIN_LLVM_MAJOR}) on PATH and `{var}` is not set"
    )]
    NotFound {
        /// Tool family (`clang`, `llvm-strip`).
        tool: &'static str,
        /// The environment variable that overrides discovery.
        var: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// The override names something that does not exist.
    #[error("`{var}` is set to `{value}`, which is not an executable on PATH or a file")]
    BadOverride {
        /// The environment variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// A piece of the Rust eBPF toolchain is missing or unusable.
    #[error("Rust eBPF toolchain: {what}")]
    RustMissing {
        /// What is missing or wrong, with the path looked at.
        what: String,
        /// How to install it (packages or the command).
        install: String,
    },
}

/// The Debian packages of the Rust eBPF toolchain (toolchain.md).
pub const RUST_APT_PACKAGES: &str = "rustc-web rust-web-src cargo-web llvm-22-dev";
/// The bpf-linker install command: version 0.13.0 built against Debian's LLVM 22.
pub const BPF_LINKER_INSTALL: &str = "LLVM_PREFIX=/usr/lib/llvm-22 PATH=/usr/lib/llvm-22/bin:$PATH cargo install bpf-linker --version 0.13.0 --no-default-features --features llvm-22";

/// Debian's rustc-web: the only rustc here whose library source (`rust-web-src`) is installed,
/// which `-Z build-std=core` needs for the bpf targets.
pub const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// Debian's cargo-web.
pub const DEBIAN_CARGO: &str = "/usr/bin/cargo";

/// The tools a Rust eBPF gadget build needs.
#[derive(Debug, Clone)]
pub struct RustToolchain {
    /// rustc-web.
    pub rustc: Tool,
    /// cargo-web.
    pub cargo: Tool,
    /// bpf-linker (passed to rustc as `-C linker=`, so it need not be on PATH).
    pub bpf_linker: Tool,
    /// The standard library source `-Z build-std` compiles (`<sysroot>/lib/rustlib/src/rust/library`).
    pub library_src: PathBuf,
}

impl RustToolchain {
    /// Find rustc-web, cargo-web, rust-web-src and bpf-linker (on PATH, else in
    /// `$CARGO_HOME/bin` or `~/.cargo/bin`, where `cargo install` puts it). Only looks at files;
    /// [`RustToolchain::verify`] runs them.
    pub fn discover() -> Result<RustToolchain, ToolchainError> {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".cargo")));
        Self::discover_in(
            Path::new(DEBIAN_RUSTC),
            Path::new(DEBIAN_CARGO),
            &std::env::var_os("PATH").unwrap_or_default(),
            cargo_home.as_deref(),
        )
    }

    /// [`RustToolchain::discover`] with explicit places (tests).
    pub fn discover_in(
        rustc: &Path,
        cargo: &Path,
        path_var: &std::ffi::OsStr,
        cargo_home: Option<&Path>,
    ) -> Result<RustToolchain, ToolchainError> {
        let (rustc, cargo, library_src) = Self::compiler_in(rustc, cargo)?;
        let linker = std::env::split_paths(path_var)
            .chain(cargo_home.map(|h| h.join("bin")))
            .map(|d| d.join("bpf-linker"))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                ToolchainError::rust(
                    "`bpf-linker` not found on PATH or in `$CARGO_HOME/bin`",
                    format!("install bpf-linker 0.13.0 for LLVM 22 with `{BPF_LINKER_INSTALL}`"),
                )
            })?;
        Ok(RustToolchain {
            rustc,
            cargo,
            bpf_linker: tool_at(linker),
            library_src,
        })
    }

    /// rustc-web, cargo-web and the library source without bpf-linker (Rust WASM modules need
    /// no bpf-linker): `(rustc, cargo, library source)`.
    pub fn compiler() -> Result<(Tool, Tool, PathBuf), ToolchainError> {
        Self::compiler_in(Path::new(DEBIAN_RUSTC), Path::new(DEBIAN_CARGO))
    }

    fn compiler_in(rustc: &Path, cargo: &Path) -> Result<(Tool, Tool, PathBuf), ToolchainError> {
        let apt = format!("apt-get install {RUST_APT_PACKAGES}");
        if !is_executable(rustc) {
            return Err(ToolchainError::rust(
                format!("`{}` (Debian's rustc-web) not found", rustc.display()),
                apt,
            ));
        }
        if !is_executable(cargo) {
            return Err(ToolchainError::rust(
                format!("`{}` (Debian's cargo-web) not found", cargo.display()),
                apt,
            ));
        }
        // <sysroot>/bin/rustc -> <sysroot>/lib/rustlib/src/rust/library
        let sysroot = rustc
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| Path::new("/usr"));
        let library_src = sysroot.join("lib/rustlib/src/rust/library");
        if !library_src.join("core/src/lib.rs").is_file() {
            return Err(ToolchainError::rust(
                format!(
                    "the Rust library source `{}` is missing (`-Z build-std=core` compiles it for the bpf targets)",
                    library_src.display()
                ),
                "apt-get install rust-web-src",
            ));
        }
        let library_src = std::fs::canonicalize(&library_src).unwrap_or(library_src);
        Ok((
            tool_at(rustc.to_path_buf()),
            tool_at(cargo.to_path_buf()),
            library_src,
        ))
    }

    /// Identity string of the whole toolchain, for cache keys (the library source path names
    /// the rust-web-src version).
    pub fn identity(&self) -> String {
        format!(
            "{};{};{};{}",
            self.rustc.identity,
            self.cargo.identity,
            self.bpf_linker.identity,
            self.library_src.display()
        )
    }

    /// Run the tools once: rustc must know the bpf targets, and bpf-linker must be built for
    /// rustc's LLVM (LLVM cannot read bitcode from a newer LLVM). Called before a real build,
    /// never on a cache hit.
    pub fn verify(&self) -> Result<(), ToolchainError> {
        let out = std::process::Command::new(&self.rustc.path)
            .arg("-vV")
            .output()
            .map_err(|e| {
                ToolchainError::rust(
                    format!("cannot run `{}`: {e}", self.rustc.path.display()),
                    format!("apt-get install {RUST_APT_PACKAGES}"),
                )
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let llvm = text
            .lines()
            .find_map(|l| l.strip_prefix("LLVM version: "))
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let Some(llvm) = llvm else {
            return Err(ToolchainError::rust(
                format!(
                    "`{} -vV` names no LLVM version (is it rustc?)",
                    self.rustc.path.display()
                ),
                format!("apt-get install {RUST_APT_PACKAGES}"),
            ));
        };
        let linker_llvm = linked_llvm_major(&self.bpf_linker.path);
        if let Some(linker_llvm) = linker_llvm.filter(|m| *m != llvm) {
            return Err(ToolchainError::rust(
                format!(
                    "`{}` is built for LLVM {linker_llvm}, but `{}` uses LLVM {llvm}: the linker cannot read its bitcode",
                    self.bpf_linker.path.display(),
                    self.rustc.path.display()
                ),
                format!("reinstall bpf-linker with `{BPF_LINKER_INSTALL} --force`"),
            ));
        }
        Ok(())
    }
}

/// The LLVM major version a dynamically linked binary needs (`libLLVM.so.22.1`, `libLLVM-19.so`),
/// if its bytes name one.
fn linked_llvm_major(binary: &Path) -> Option<u32> {
    let bytes = std::fs::read(binary).ok()?;
    for prefix in [&b"libLLVM.so."[..], &b"libLLVM-"[..]] {
        if let Some(at) = bytes.windows(prefix.len()).position(|w| w == prefix) {
            let digits: String = bytes[at + prefix.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| char::from(b))
                .collect();
            if let Ok(major) = digits.parse() {
                return Some(major);
            }
        }
    }
    None
}

impl ToolchainError {
    /// A missing piece of the Rust eBPF toolchain.
    fn rust(what: impl Into<String>, install: impl Into<String>) -> ToolchainError {
        ToolchainError::RustMissing {
            what: what.into(),
            install: install.into(),
        }
    }
}

/// One resolved tool binary, with a cheap identity for the build cache.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Path to run.
    pub path: PathBuf,
    /// `path|size|mtime` of the resolved binary: changes when the tool is upgraded.
    pub identity: String,
    /// `path` with every symlink resolved (as recorded in the SBOM).
    pub resolved: PathBuf,
}

/// The tools a C gadget build needs.
#[derive(Debug, Clone)]
pub struct CToolchain {
    /// clang with the BPF backend.
    pub clang: Tool,
    /// llvm-strip, to drop DWARF while keeping BTF.
    pub strip: Tool,
}

impl CToolchain {
    /// Resolve clang and llvm-strip from the environment and PATH. A success is remembered for
    /// the process while `PATH`, `CLANG` and `LLVM_STRIP` stay the same: a build asks again for
    /// its SBOM and provenance, and a PATH scan reads every directory on it.
    pub fn discover() -> Result<CToolchain, ToolchainError> {
        static FOUND: std::sync::Mutex<Option<(Vec<Option<OsString>>, CToolchain)>> =
            std::sync::Mutex::new(None);
        let key: Vec<Option<OsString>> = ["PATH", env::CLANG, env::LLVM_STRIP]
            .iter()
            .map(std::env::var_os)
            .collect();
        let mut found = FOUND
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, toolchain)) = found.as_ref() {
            if *k == key {
                return Ok(toolchain.clone());
            }
        }
        // One pass over PATH finds both tools (PATH often lists /usr/bin twice, via /bin).
        let scanned = scan_path(&["clang", "llvm-strip"], key[0].clone().unwrap_or_default());
        let clang = resolve("clang", env::CLANG, "clang-19", scanned[0].clone())?;
        let strip = resolve("llvm-strip", env::LLVM_STRIP, "llvm-19", scanned[1].clone())?;
        let toolchain = CToolchain { clang, strip };
        *found = Some((key, toolchain.clone()));
        Ok(toolchain)
    }

    /// Identity string of the whole toolchain, for cache keys.
    pub fn identity(&self) -> String {
        format!("{};{}", self.clang.identity, self.strip.identity)
    }
}

fn resolve(
    tool: &'static str,
    var: &'static str,
    package: &'static str,
    discovered: Option<PathBuf>,
) -> Result<Tool, ToolchainError> {
    if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = which::which(&value).map_err(|_| ToolchainError::BadOverride {
            var,
            value: value.to_string_lossy().into_owned(),
        })?;
        return Ok(tool_at(path));
    }
    discovered
        .map(tool_at)
        .ok_or(ToolchainError::NotFound { tool, var, package })
}

fn tool_at(path: PathBuf) -> Tool {
    let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let identity = match std::fs::metadata(&resolved) {
        Ok(meta) => {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}|{}|{}", resolved.display(), meta.len(), mtime)
        }
        Err(_) => resolved.display().to_string(),
    };
    Tool {
        path,
        identity,
        resolved,
    }
}

/// For each tool, the `<tool>-NN` with the highest NN >= [`MIN_LLVM_MAJOR`] in the PATH
/// directories (the first directory wins between equal versions). One pass over each directory.
fn scan_path(tools: &[&str], path_var: OsString) -> Vec<Option<PathBuf>> {
    let prefixes: Vec<String> = tools.iter().map(|t| format!("{t}-")).collect();
    let mut best: Vec<Option<(u32, PathBuf)>> = vec![None; tools.len()];
    let mut seen_dirs = std::collections::HashSet::new();
    for dir in std::env::split_paths(&path_var) {
        if !seen_dirs.insert(std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            for (slot, prefix) in best.iter_mut().zip(&prefixes) {
                let Some(version) = name
                    .strip_prefix(prefix.as_str())
                    .and_then(|v| v.parse::<u32>().ok())
                else {
                    continue;
                };
                if version < MIN_LLVM_MAJOR || slot.as_ref().is_some_and(|(v, _)| *v >= version) {
                    continue;
                }
                if is_executable(&entry.path()) {
                    *slot = Some((version, entry.path()));
                }
            }
        }
    }
    best.into_iter().map(|b| b.map(|(_, p)| p)).collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl gadget_store::hint::Hint for ToolchainError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            ToolchainError::NotFound { var, package, .. } => {
                format!("install it with `apt-get install {package}`, or set `{var}` to the binary")
            }
            ToolchainError::RustMissing { install, .. } => install.clone(),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_tool(dir: &Path, name: &str) {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/true\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn picks_newest_supported_version() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fake_tool(a.path(), "clang-13");
        fake_tool(a.path(), "clang-16");
        fake_tool(b.path(), "clang-19");
        fake_tool(b.path(), "clang-format-19");
        std::fs::write(b.path().join("clang-99"), "not executable").unwrap();
        fake_tool(a.path(), "llvm-strip-17");
        let path = std::env::join_paths([a.path(), b.path(), a.path()]).unwrap();
        let found = scan_path(&["clang", "llvm-strip"], path);
        assert_eq!(
            found[0].as_deref(),
            Some(b.path().join("clang-19").as_path())
        );
        assert_eq!(
            found[1].as_deref(),
            Some(a.path().join("llvm-strip-17").as_path())
        );
    }

    #[test]
    fn rust_toolchain_errors_name_the_missing_piece_and_the_install() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let none = std::ffi::OsString::new();
        // As printed: the message, then the install hint.
        let err = |r: Result<RustToolchain, ToolchainError>| {
            gadget_store::hint::render_error(
                &r.unwrap_err(),
                gadget_store::hint::hints_if::<ToolchainError>,
                "error",
            )
        };

        let e = err(RustToolchain::discover_in(
            &bin.join("rustc"),
            &bin.join("cargo"),
            &none,
            None,
        ));
        assert!(
            e.contains("rustc-web")
                && e.contains("apt-get install rustc-web rust-web-src cargo-web llvm-22-dev"),
            "{e}"
        );
        fake_tool(&bin, "rustc");
        let e = err(RustToolchain::discover_in(
            &bin.join("rustc"),
            &bin.join("cargo"),
            &none,
            None,
        ));
        assert!(e.contains("cargo-web"), "{e}");
        fake_tool(&bin, "cargo");
        let e = err(RustToolchain::discover_in(
            &bin.join("rustc"),
            &bin.join("cargo"),
            &none,
            None,
        ));
        assert!(
            e.contains("library source") && e.contains("apt-get install rust-web-src"),
            "{e}"
        );
        let core = d.path().join("usr/lib/rustlib/src/rust/library/core/src");
        std::fs::create_dir_all(&core).unwrap();
        std::fs::write(core.join("lib.rs"), "").unwrap();
        let home = d.path().join("cargo-home");
        let e = err(RustToolchain::discover_in(
            &bin.join("rustc"),
            &bin.join("cargo"),
            &none,
            Some(&home),
        ));
        assert!(
            e.contains("`bpf-linker` not found")
                && e.contains("--version 0.13.0")
                && e.contains("llvm-22"),
            "{e}"
        );
        std::fs::create_dir_all(home.join("bin")).unwrap();
        fake_tool(&home.join("bin"), "bpf-linker");
        let tc =
            RustToolchain::discover_in(&bin.join("rustc"), &bin.join("cargo"), &none, Some(&home))
                .unwrap();
        assert_eq!(tc.bpf_linker.path, home.join("bin/bpf-linker"));
    }

    #[test]
    fn llvm_major_from_the_linked_library_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bin");
        std::fs::write(&p, b"\x7fELF....libLLVM.so.22.1\0more").unwrap();
        assert_eq!(linked_llvm_major(&p), Some(22));
        std::fs::write(&p, b"libLLVM-19.so\0").unwrap();
        assert_eq!(linked_llvm_major(&p), Some(19));
        std::fs::write(&p, b"static").unwrap();
        assert_eq!(linked_llvm_major(&p), None);
    }

    #[test]
    fn none_below_minimum() {
        let a = tempfile::tempdir().unwrap();
        fake_tool(a.path(), "clang-13");
        assert!(scan_path(&["clang"], a.path().as_os_str().to_owned())[0].is_none());
    }
}
