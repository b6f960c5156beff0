//! The bundled SDK (gadget headers, libbpf headers, vmlinux.h per arch), embedded in the binary
//! and unpacked once per content hash into the cache, so an installed `ig-image` needs no other files.

use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// SHA-256 identifying the bundled SDK's content.
pub const HASH: &str = embedded::HASH;

/// Paths and contents of the bundled SDK files.
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    embedded::FILES
}

/// SHA-256 (hex) of the bundled SDK file at `rel` (relative to the include root), computed when
/// the binary was built.
pub fn file_sha256(rel: &str) -> Option<&'static str> {
    embedded::FILE_SHA256
        .iter()
        .find(|(path, _)| *path == rel)
        .map(|(_, digest)| *digest)
}

/// A `key=value` line of one of the SDK's provenance files (`bpf/VERSION`,
/// `gadget/VMLINUX_VERSION`).
pub fn provenance_value(file: &str, key: &str) -> Option<&'static str> {
    let (_, content) = files().iter().find(|(path, _)| *path == file)?;
    std::str::from_utf8(content).ok()?.lines().find_map(|line| {
        line.split_once('=')
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim())
    })
}

/// Failure to unpack the SDK.
#[derive(Debug, thiserror::Error)]
#[error("cannot unpack the bundled SDK into `{dir}`")]
pub struct SdkError {
    /// The target directory.
    pub dir: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Where the include tree of the bundled SDK lives once unpacked below `cache_dir`.
pub fn include_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("sdk").join(&HASH[..16]).join("include")
}

/// Unpack the SDK below `cache_dir` unless already there; returns the include directory.
/// Safe with concurrent builds: each unpacks to a private directory and renames it into place.
pub fn ensure_unpacked(cache_dir: &Path) -> Result<PathBuf, SdkError> {
    let include = include_dir(cache_dir);
    let version_dir = include
        .parent()
        .expect("include dir has a parent")
        .to_path_buf();
    if version_dir.join(".complete").exists() {
        return Ok(include);
    }
    let err = |source| SdkError {
        dir: version_dir.clone(),
        source,
    };
    let parent = version_dir.parent().expect("sdk dir has a parent");
    std::fs::create_dir_all(parent).map_err(err)?;
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(err)?;
    for (rel, content) in files() {
        let path = staging.path().join("include").join(rel);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).map_err(err)?;
        std::fs::write(&path, content).map_err(err)?;
    }
    std::fs::write(staging.path().join(".complete"), HASH).map_err(err)?;
    let staged = staging.keep();
    match std::fs::rename(&staged, &version_dir) {
        Ok(()) => {}
        // Another build won the race: its copy is identical.
        Err(_) if version_dir.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&staged);
        }
        Err(source) => {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(err(source));
        }
    }
    Ok(include)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_once_and_is_idempotent() {
        let cache = tempfile::tempdir().unwrap();
        let a = ensure_unpacked(cache.path()).unwrap();
        let b = ensure_unpacked(cache.path()).unwrap();
        assert_eq!(a, b);
        for (rel, content) in files() {
            assert_eq!(&std::fs::read(a.join(rel)).unwrap(), content, "{rel}");
        }
    }
}
