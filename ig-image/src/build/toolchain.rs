//! Finding the C toolchain: `CLANG` / `LLVM_STRIP`, else the newest `clang-NN` / `llvm-strip-NN` on PATH.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::env;

/// The oldest LLVM major version we accept from PATH discovery.
pub const MIN_LLVM_MAJOR: u32 = 14;

/// A tool we could not find or use.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// Nothing suitable on PATH and no override set.
    #[error(
        "`{tool}` not found: no `{tool}-NN` (NN >= {MIN_LLVM_MAJOR}) on PATH and `{var}` is not set\nhint: install it with `apt-get install {package}`, or set `{var}` to the binary"
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
}

/// One resolved tool binary, with a cheap identity for the build cache.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Path to run.
    pub path: PathBuf,
    /// `path|size|mtime` of the resolved binary: changes when the tool is upgraded.
    pub identity: String,
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
    /// Resolve clang and llvm-strip from the environment and PATH.
    pub fn discover() -> Result<CToolchain, ToolchainError> {
        // One pass over PATH finds both tools (PATH often lists /usr/bin twice, via /bin).
        let found = scan_path(
            &["clang", "llvm-strip"],
            std::env::var_os("PATH").unwrap_or_default(),
        );
        let clang = resolve("clang", env::CLANG, "clang-19", found[0].clone())?;
        let strip = resolve("llvm-strip", env::LLVM_STRIP, "llvm-19", found[1].clone())?;
        Ok(CToolchain { clang, strip })
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
    Tool { path, identity }
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
    fn none_below_minimum() {
        let a = tempfile::tempdir().unwrap();
        fake_tool(a.path(), "clang-13");
        assert!(scan_path(&["clang"], a.path().as_os_str().to_owned())[0].is_none());
    }
}
