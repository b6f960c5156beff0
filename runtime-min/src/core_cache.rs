//! A cache of minimized kernel BTFs ([`gadget_object::btf::raw::RawBtf::minimize_for_core`]) for the
//! running kernel, so that proving the same gadget again does not read and index the whole
//! kernel BTF (5 MB) again.
//!
//! An entry is keyed by the boot (`/proc/sys/kernel/random/boot_id`: the running kernel's BTF
//! cannot change within a boot), the size of `/sys/kernel/btf/vmlinux`, the minimizer's version
//! and the set of CO-RE roots. Entries are small (tens of KiB) and are written atomically; any
//! failure to read or write the cache only means the BTF is computed again. It lives in
//! `$IG_IMAGE_CACHE_DIR/core-btf`, else `$XDG_CACHE_HOME/ig-image/core-btf`, else
//! `~/.cache/ig-image/core-btf`. Only the running kernel's BTF is cached (not `--kernel-btf`
//! files).

use std::io::Write as _;
use std::path::PathBuf;

use gadget_object::btf::raw::{CoreRoot, RawBtf};

/// Bump when the minimized output changes (v2: the runtime's socket enricher types appended).
const VERSION: &str = "core-btf-v2";

/// The cache directory.
pub fn dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = env("IG_IMAGE_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("ig-image")))
        .or_else(|| env("HOME").map(|h| h.join(".cache").join("ig-image")))?;
    Some(base.join("core-btf"))
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The entry file for `roots` on the running kernel (`None` when the boot cannot be identified).
pub fn entry(roots: &[CoreRoot]) -> Option<PathBuf> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let size = std::fs::metadata(crate::load::SYSFS_VMLINUX).ok()?.len();
    let mut names: Vec<String> = roots
        .iter()
        .map(|r| format!("{}:{}", r.kind, r.name))
        .collect();
    names.sort();
    let key = format!("{VERSION}\n{}\n{size}\n{}", boot.trim(), names.join("\n"));
    // Two hashes of different seeds make accidental collisions negligible.
    let a = fnv1a(key.as_bytes());
    let b = fnv1a(format!("salt\n{key}").as_bytes());
    Some(dir()?.join(format!("{a:016x}{b:016x}.btf")))
}

/// A cached minimized BTF, if present and well-formed.
pub fn lookup(path: &std::path::Path) -> Option<Vec<u8>> {
    let blob = std::fs::read(path).ok()?;
    RawBtf::parse(&blob).ok()?;
    Some(blob)
}

/// Stores an entry (atomically); errors are ignored.
pub fn store(path: &std::path::Path, blob: &[u8]) {
    let Some(parent) = path.parent() else { return };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(parent)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        tmp.write_all(blob)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    if let Err(e) = write() {
        log::debug!(
            "cannot cache the minimized kernel BTF in `{}`: {e}",
            parent.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_roots_not_their_order() {
        let r = |k: u32, n: &str| CoreRoot {
            kind: k,
            name: n.into(),
        };
        let a = entry(&[r(4, "task_struct"), r(6, "bpf_func_id")]);
        let b = entry(&[r(6, "bpf_func_id"), r(4, "task_struct")]);
        let c = entry(&[r(4, "task_struct")]);
        if a.is_some() {
            assert_eq!(a, b);
            assert_ne!(a, c);
        }
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
