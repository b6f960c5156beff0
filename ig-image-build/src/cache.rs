//! Content-addressed build cache: an object is reused when the sources, every header clang
//! reported as included, the flags, the SDK and the toolchain are unchanged.
//!
//! Layout under the cache directory: `objects/<sha256>` (object files, by content) and
//! `entries/<key>.json` (for one compile key: the dependency files with their hashes, and the
//! object's digest). Every file is written to a temporary name and renamed, so concurrent
//! builds never see partial entries; a corrupt or stale entry is a miss, never an error.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bumped when the entry format or the compile pipeline changes meaningfully.
const FORMAT: &str = "ig-image-cache-v1";

/// Handle on a cache directory.
#[derive(Debug, Clone)]
pub struct BuildCache {
    root: PathBuf,
}

/// One recorded dependency of a compile.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Dependency {
    /// Path as clang reported it (absolute after resolution).
    pub path: PathBuf,
    /// SHA-256 of the content when compiled.
    pub sha256: String,
}

impl Dependency {
    /// The paths of `dependencies`, in order.
    pub fn paths(dependencies: &[Dependency]) -> Vec<PathBuf> {
        dependencies.iter().map(|d| d.path.clone()).collect()
    }

    /// The ones with a digest (read and checked), for [`super::c::CompiledObject::checked`].
    pub fn checked(dependencies: Vec<Dependency>) -> Vec<Dependency> {
        dependencies
            .into_iter()
            .filter(|d| !d.sha256.is_empty())
            .collect()
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Entry {
    format: String,
    object_sha256: String,
    dependencies: Vec<Dependency>,
}

/// The default cache directory: `$IG_IMAGE_CACHE_DIR`, else `$XDG_CACHE_HOME/ig-image`, else `~/.cache/ig-image`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) =
        std::env::var_os(gadget_facts::env::IG_IMAGE_CACHE_DIR).filter(|v| !v.is_empty())
    {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("ig-image")
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Builder for a compile key: every input that is not a file clang reads.
#[derive(Debug, Default)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// Start a key.
    pub fn new() -> KeyBuilder {
        let mut k = KeyBuilder(Sha256::new());
        k.add(FORMAT);
        k
    }

    /// Add one component (length-prefixed so components cannot run together).
    pub fn add(&mut self, part: impl AsRef<[u8]>) -> &mut Self {
        let part = part.as_ref();
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part);
        self
    }

    /// The finished key.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

impl BuildCache {
    /// A cache rooted at `root` (created lazily).
    pub fn new(root: impl Into<PathBuf>) -> BuildCache {
        BuildCache { root: root.into() }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(format!("{key}.json"))
    }

    fn object_path(&self, sha: &str) -> PathBuf {
        self.root.join("objects").join(sha)
    }

    /// The cached object for `key`, if every recorded dependency still has the same content.
    /// Files below `immutable_root` (the content-hashed SDK) are not re-read.
    pub fn lookup(&self, key: &str, immutable_root: &Path) -> Option<Vec<u8>> {
        self.lookup_with_dependencies(key, immutable_root)
            .map(|(object, _)| object)
    }

    /// As [`BuildCache::lookup`], also returning the recorded dependency files (for the SBOM),
    /// each with the digest its content was just checked against (empty below
    /// `immutable_root`, which is not read).
    pub fn lookup_with_dependencies(
        &self,
        key: &str,
        immutable_root: &Path,
    ) -> Option<(Vec<u8>, Vec<Dependency>)> {
        let text = std::fs::read(self.entry_path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        if entry.format != FORMAT {
            return None;
        }
        for dep in &entry.dependencies {
            if dep.path.starts_with(immutable_root) {
                continue;
            }
            let content = std::fs::read(&dep.path).ok()?;
            if sha256_hex(&content) != dep.sha256 {
                log::debug!("cache miss for {key}: `{}` changed", dep.path.display());
                return None;
            }
        }
        let object = std::fs::read(self.object_path(&entry.object_sha256)).ok()?;
        // Every read of cached content is checked against its digest.
        (sha256_hex(&object) == entry.object_sha256).then(|| {
            let mut deps = entry.dependencies;
            for dep in &mut deps {
                if dep.path.starts_with(immutable_root) {
                    dep.sha256.clear();
                }
            }
            (object, deps)
        })
    }

    /// Record `object` for `key` with the files the compile read. Failures are logged, not fatal:
    /// a cache that cannot be written only makes the next build slower.
    pub fn store(
        &self,
        key: &str,
        object: &[u8],
        dependency_paths: &[PathBuf],
        immutable_root: &Path,
    ) {
        if let Err(e) = self.try_store(key, object, dependency_paths, immutable_root) {
            log::warn!("build cache at `{}` not updated: {e}", self.root.display());
        }
    }

    fn try_store(
        &self,
        key: &str,
        object: &[u8],
        dependency_paths: &[PathBuf],
        immutable_root: &Path,
    ) -> std::io::Result<()> {
        let mut dependencies = Vec::with_capacity(dependency_paths.len());
        for path in dependency_paths {
            let sha256 = if path.starts_with(immutable_root) {
                String::new()
            } else {
                sha256_hex(&std::fs::read(path)?)
            };
            dependencies.push(Dependency {
                path: path.clone(),
                sha256,
            });
        }
        let object_sha256 = sha256_hex(object);
        write_atomic(&self.object_path(&object_sha256), object)?;
        let entry = Entry {
            format: FORMAT.to_string(),
            object_sha256,
            dependencies,
        };
        let json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        write_atomic(&self.entry_path(key), &json)
    }
}

/// Write `data` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Parse a Make-style dependency file written by `clang -MD -MF`: the prerequisites of the first rule.
pub fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let Some((_, prereqs)) = joined.split_once(": ") else {
        return Vec::new();
    };
    let prereqs = prereqs.lines().next().unwrap_or("");
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = prereqs.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            '$' if chars.peek() == Some(&'$') => {
                current.push('$');
                chars.next();
            }
            ' ' | '\t' => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfile_with_escapes() {
        let deps = parse_depfile("out.o: a.c /x/my\\ dir/b.h \\\n  /usr/include/c.h\n");
        assert_eq!(
            deps,
            vec![
                PathBuf::from("a.c"),
                PathBuf::from("/x/my dir/b.h"),
                PathBuf::from("/usr/include/c.h")
            ]
        );
    }

    #[test]
    fn hit_then_miss_when_a_header_changes() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = dir.path().join("sdk");
        let header = dir.path().join("h.h");
        std::fs::write(&header, "one").unwrap();
        let cache = BuildCache::new(dir.path().join("cache"));
        cache.store("k", b"OBJ", &[header.clone(), sdk.join("x.h")], &sdk);
        assert_eq!(cache.lookup("k", &sdk).unwrap(), b"OBJ");
        std::fs::write(&header, "two").unwrap();
        assert!(cache.lookup("k", &sdk).is_none());
    }

    #[test]
    fn corrupted_object_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::new(dir.path());
        cache.store("k", b"OBJ", &[], dir.path());
        let obj = cache.object_path(&sha256_hex(b"OBJ"));
        std::fs::write(obj, "XXX").unwrap();
        assert!(cache.lookup("k", dir.path()).is_none());
    }

    #[test]
    fn keys_are_length_prefixed() {
        let mut a = KeyBuilder::new();
        a.add("ab").add("c");
        let mut b = KeyBuilder::new();
        b.add("a").add("bc");
        assert_ne!(a.finish(), b.finish());
    }
}
