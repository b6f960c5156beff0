//! The kernel cache: per kernel spec, only what booting needs — the kernel (the uncompressed
//! `vmlinux` on x86, which boots faster under emulation) and the few virtio/9p modules with their
//! dependencies — plus `kernel.json` saying where it came from and how it was checked.
//!
//! Lives in `$IG_IMAGE_KERNELS_DIR`, else `kernels/` in the build cache directory
//! (`$IG_IMAGE_CACHE_DIR`, else `$XDG_CACHE_HOME/ig-image`, else `~/.cache/ig-image`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use gadget_facts::env::IG_IMAGE_KERNELS_DIR;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::debian::{self, Archive, Mirrors, Package};
use crate::decompress;
use crate::modinfo;
use crate::spec::{Arch, KernelSpec};

/// Modules kept while reading a package, besides [`modinfo::WANTED`]: their usual dependencies
/// (a second pass fetches any other).
const LIKELY_DEPS: &[&str] = &[
    "virtio",
    "virtio_ring",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "9pnet",
    "netfs",
    "fscache",
];

/// Largest module accepted.
const MAX_MODULE: u64 = 64 << 20;
/// Largest kernel image accepted.
const MAX_KERNEL: u64 = 256 << 20;

/// What a cache entry holds (`kernel.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelMeta {
    /// The spec (`debian:bookworm`, a path).
    pub spec: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// `uname -r` of the kernel.
    pub release: String,
    /// The kernel file in the entry (`vmlinux` or `vmlinuz`).
    pub kernel: String,
    /// Module files in the entry's `modules/`, in load order.
    pub modules: Vec<String>,
    /// The packages it came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    /// The Debian suite the packages were found in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// How the archive index was trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    /// A static busybox for the guest's architecture, when it is not the host's (the host's
    /// `/bin/busybox` cannot run there): Debian's `busybox-static` from the same suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busybox: Option<String>,
    /// Notes from preparing it (e.g. a vmlinux that could not be extracted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// When it was fetched (RFC 3339).
    pub fetched: String,
}

/// A kernel ready to boot: a directory with the kernel, `modules/` and `kernel.json`.
#[derive(Debug, Clone)]
pub struct PreparedKernel {
    /// The directory.
    pub dir: PathBuf,
    /// What it holds.
    pub meta: KernelMeta,
}

impl PreparedKernel {
    /// The kernel file.
    pub fn kernel_path(&self) -> PathBuf {
        self.dir.join(&self.meta.kernel)
    }

    /// The module files, in load order.
    pub fn module_paths(&self) -> Vec<PathBuf> {
        self.meta
            .modules
            .iter()
            .map(|m| self.dir.join("modules").join(m))
            .collect()
    }

    /// The guest's static busybox: the entry's own (a foreign architecture), else `None` (the
    /// host's `/bin/busybox` serves).
    pub fn busybox_path(&self) -> Option<PathBuf> {
        self.meta.busybox.as_ref().map(|b| self.dir.join(b))
    }

    /// Bytes on disk.
    pub fn size(&self) -> u64 {
        dir_size(&self.dir)
    }

    fn load(dir: &Path) -> anyhow::Result<PreparedKernel> {
        let path = dir.join("kernel.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let meta: KernelMeta = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is corrupt", path.display()))?;
        let k = PreparedKernel {
            dir: dir.to_path_buf(),
            meta,
        };
        if !k.kernel_path().is_file() {
            bail!("`{}` is missing", k.kernel_path().display());
        }
        Ok(k)
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The cache directory and its entries.
#[derive(Debug, Clone)]
pub struct KernelCache {
    /// Its directory.
    pub root: PathBuf,
}

/// The default cache directory (see the module docs).
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(IG_IMAGE_KERNELS_DIR).filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("IG_IMAGE_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(|d| PathBuf::from(d).join("ig-image"))
        })
        .or_else(|| dirs::cache_dir().map(|d| d.join("ig-image")))
        .unwrap_or_else(|| std::env::temp_dir().join("ig-image-cache"));
    base.join("kernels")
}

/// Progress messages while fetching.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

impl KernelCache {
    /// The cache at `root`.
    pub fn new(root: PathBuf) -> KernelCache {
        KernelCache { root }
    }

    /// The entry directory of a cacheable spec (`None`: a kernel image, prepared per run).
    pub fn entry_dir(&self, spec: &KernelSpec, arch: Arch) -> anyhow::Result<Option<PathBuf>> {
        Ok(match spec {
            KernelSpec::Debian { suite } => {
                Some(self.root.join(format!("debian-{suite}-{}", arch.debian())))
            }
            KernelSpec::Deb(path) => {
                let mut f = std::fs::File::open(path)
                    .with_context(|| format!("cannot open `{}`", path.display()))?;
                let mut h = Sha256::new();
                std::io::copy(&mut f, &mut h)?;
                Some(
                    self.root
                        .join(format!("deb-{}", &hex::encode(h.finalize())[..16])),
                )
            }
            KernelSpec::Image { .. } => None,
        })
    }

    /// The cached kernel for `spec`, if there.
    pub fn get(&self, spec: &KernelSpec, arch: Arch) -> anyhow::Result<Option<PreparedKernel>> {
        let Some(dir) = self.entry_dir(spec, arch)? else {
            return Ok(None);
        };
        if !dir.join("kernel.json").is_file() {
            return Ok(None);
        }
        let k = PreparedKernel::load(&dir)?;
        // Fetched before entries carried the guest's busybox: fetch again.
        if matches!(spec, KernelSpec::Debian { .. }) && !arch.is_host() && k.meta.busybox.is_none()
        {
            return Ok(None);
        }
        Ok(Some(k))
    }

    /// A static busybox for `arch` from any cached Debian entry of that architecture (local
    /// kernels of a foreign architecture borrow it).
    pub fn any_busybox(&self, arch: Arch) -> Option<PathBuf> {
        self.list()
            .ok()?
            .into_iter()
            .filter(|k| k.meta.arch == arch.debian())
            .find_map(|k| k.busybox_path().filter(|p| p.is_file()))
    }

    /// Every cached kernel.
    pub fn list(&self) -> anyhow::Result<Vec<PreparedKernel>> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            if e.path().join("kernel.json").is_file() {
                out.push(PreparedKernel::load(&e.path())?);
            }
        }
        out.sort_by(|a, b| a.meta.spec.cmp(&b.meta.spec));
        Ok(out)
    }

    /// Removes the entries of `specs` (all entries when empty) and unfinished downloads;
    /// returns the directories removed.
    pub fn prune(&self, specs: &[(KernelSpec, Arch)]) -> anyhow::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Ok(removed);
        };
        let wanted: BTreeSet<PathBuf> = specs
            .iter()
            .map(|(s, a)| self.entry_dir(s, *a))
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        for e in rd.flatten() {
            let p = e.path();
            let stale = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".staging-"));
            if stale || specs.is_empty() || wanted.contains(&p) {
                std::fs::remove_dir_all(&p)
                    .with_context(|| format!("cannot remove `{}`", p.display()))?;
                removed.push(p);
            }
        }
        Ok(removed)
    }

    /// The cached kernel, fetching it when missing (or always with `refresh`).
    pub fn ensure(
        &self,
        spec: &KernelSpec,
        arch: Arch,
        refresh: bool,
        progress: Progress,
    ) -> anyhow::Result<PreparedKernel> {
        if let KernelSpec::Image { kernel, modules } = spec {
            let dir = tempfile::Builder::new()
                .prefix("ig-image-kernel-")
                .tempdir()?
                .keep();
            return prepare_image(kernel, modules.as_deref(), arch, &dir, &spec.label());
        }
        if !refresh {
            if let Some(k) = self.get(spec, arch)? {
                return Ok(k);
            }
        }
        let dir = self.entry_dir(spec, arch)?.expect("cacheable spec");
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create `{}`", self.root.display()))?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&self.root)?;
        let out = staging.path().join("entry");
        std::fs::create_dir(&out)?;
        let mut meta = match spec {
            KernelSpec::Debian { suite } => self
                .fetch_debian(suite, arch, staging.path(), &out, progress)
                .with_context(|| {
                    format!(
                        "kernel `{}` is not cached and cannot be fetched",
                        spec.label()
                    )
                })?,
            KernelSpec::Deb(path) => prepare_debs(std::slice::from_ref(path), arch, &out)?,
            KernelSpec::Image { .. } => unreachable!(),
        };
        meta.spec = spec.label();
        write_meta(&out, &meta)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot replace `{}`", dir.display()))?;
        }
        std::fs::rename(&out, &dir).with_context(|| format!("cannot write `{}`", dir.display()))?;
        PreparedKernel::load(&dir)
    }

    fn fetch_debian(
        &self,
        suite: &str,
        arch: Arch,
        work: &Path,
        out: &Path,
        progress: Progress,
    ) -> anyhow::Result<KernelMeta> {
        let archive = Archive::new(Mirrors::from_env())?;
        let mut indexes = Vec::new();
        for (mirror, s) in archive.suites_for(suite) {
            progress(&format!("reading {mirror}/dists/{s}"));
            match archive.index(&mirror, &s, arch.debian()) {
                Ok(i) => indexes.push(i),
                // A suite without a security suite (yet): the main suite alone decides.
                Err(e) if s != suite => log::info!("{s}: {e:#}"),
                Err(e) => return Err(e),
            }
        }
        let (packages, found_in) = debian::newest_kernel(&indexes, arch.debian())
            .with_context(|| format!("no linux-image-*-{} package in {suite}", arch.debian()))?;
        let trust: Vec<String> = indexes
            .iter()
            .map(|i| format!("{}: {}", i.suite, i.signature))
            .collect();
        let mut debs = Vec::new();
        for p in &packages {
            progress(&format!(
                "downloading {} {} ({} MB)",
                p.name,
                p.version,
                p.size >> 20
            ));
            let dest = debian::deb_path(work, p);
            archive.download(p, &dest)?;
            debs.push(dest);
        }
        progress(&format!(
            "extracting the kernel and its virtio/9p modules from {} package(s)",
            debs.len()
        ));
        let mut meta = prepare_debs(&debs, arch, out)?;
        let mut packages = packages;
        if !arch.is_host() {
            let busybox = debian::newest_package(&indexes, BUSYBOX_PACKAGE).with_context(|| {
                format!(
                    "no {BUSYBOX_PACKAGE} package for {} in {suite} (the guest's init)",
                    arch.debian()
                )
            })?;
            progress(&format!(
                "downloading {} {} for the guest's init",
                busybox.name, busybox.version
            ));
            let dest = debian::deb_path(work, &busybox);
            archive.download(&busybox, &dest)?;
            extract_busybox(&dest, arch, &out.join(BUSYBOX_FILE))?;
            meta.busybox = Some(BUSYBOX_FILE.to_string());
            packages.push(busybox);
        }
        meta.packages = packages;
        meta.suite = Some(found_in);
        meta.trust = Some(format!(
            "{}; each .deb matched the SHA256 of the Packages index",
            trust.join("; ")
        ));
        Ok(meta)
    }
}

/// Debian's static busybox package.
const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The busybox file in a cache entry.
const BUSYBOX_FILE: &str = "busybox";
/// Largest busybox accepted.
const MAX_BUSYBOX: u64 = 16 << 20;

/// The content of member `path` of package `deb`, refused when larger than `max` bytes.
fn read_member(
    r: impl std::io::Read,
    path: &Path,
    deb: &Path,
    max: u64,
) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    r.take(max + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        bail!(
            "`{}` in `{}` is larger than {max} bytes",
            path.display(),
            deb.display()
        );
    }
    Ok(data)
}

/// Extracts `bin/busybox` from a `busybox-static` package to `dest`, checking that it is a
/// static program for `arch`.
fn extract_busybox(deb: &Path, arch: Arch, dest: &Path) -> anyhow::Result<()> {
    let mut data = None;
    crate::deb::for_each_file(deb, |path, r| {
        if path == Path::new("bin/busybox") || path == Path::new("usr/bin/busybox") {
            data = Some(read_member(r, path, deb, MAX_BUSYBOX)?);
            return Ok(false);
        }
        Ok(true)
    })?;
    let data = data.with_context(|| format!("`{}` holds no bin/busybox", deb.display()))?;
    crate::elf::check_static_program(&data, arch)
        .with_context(|| format!("bin/busybox in `{}`", deb.display()))?;
    std::fs::write(dest, &data).with_context(|| format!("cannot write `{}`", dest.display()))?;
    std::fs::set_permissions(dest, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(())
}

fn write_meta(dir: &Path, meta: &KernelMeta) -> anyhow::Result<()> {
    std::fs::write(dir.join("kernel.json"), serde_json::to_vec_pretty(meta)?)?;
    Ok(())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Is `path` a kernel image inside a package? Returns the release when the path names one.
fn kernel_image_path(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    if let Some(rel) = s.strip_prefix("boot/vmlinuz-") {
        return Some(rel.to_string());
    }
    let rest = s
        .strip_prefix("usr/lib/modules/")
        .or_else(|| s.strip_prefix("lib/modules/"))?;
    let (rel, file) = rest.split_once('/')?;
    (file == "vmlinuz" || file == "Image" || file == "Image.gz").then(|| rel.to_string())
}

/// The module name of a path under `lib/modules/<release>/kernel/`.
fn module_of(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    if !(s.starts_with("lib/modules/") || s.starts_with("usr/lib/modules/")) {
        return None;
    }
    modinfo::module_name(path.file_name()?.to_str()?)
}

/// Extracts the kernel and the needed modules from Debian packages into `out`.
pub fn prepare_debs(debs: &[PathBuf], arch: Arch, out: &Path) -> anyhow::Result<KernelMeta> {
    let mut kernel: Option<(Vec<u8>, String)> = None;
    let mut release_from_modules: Option<String> = None;
    let mut modules: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut available: BTreeSet<String> = BTreeSet::new();
    let mut keep: BTreeSet<String> = modinfo::WANTED
        .iter()
        .chain(LIKELY_DEPS)
        .map(|s| s.to_string())
        .collect();
    // Pass 1 keeps the likely set; later passes fetch dependencies it missed.
    for pass in 0..4 {
        for deb in debs {
            crate::deb::for_each_file(deb, |path, r| {
                if pass == 0 && kernel.is_none() {
                    if let Some(rel) = kernel_image_path(path) {
                        kernel = Some((read_member(r, path, deb, MAX_KERNEL)?, rel));
                        return Ok(true);
                    }
                }
                if let Some(name) = module_of(path) {
                    if pass == 0 && release_from_modules.is_none() {
                        release_from_modules = path
                            .strip_prefix("usr/lib/modules")
                            .or_else(|_| path.strip_prefix("lib/modules"))
                            .ok()
                            .and_then(|p| p.components().next())
                            .map(|c| c.as_os_str().to_string_lossy().into_owned());
                    }
                    available.insert(name.clone());
                    if keep.contains(&name) && !modules.contains_key(&name) {
                        let mut data = Vec::new();
                        r.take(MAX_MODULE + 1).read_to_end(&mut data)?;
                        let ko =
                            decompress::decompress(&data, MAX_MODULE, &path.display().to_string())?;
                        modules.insert(name, ko);
                    }
                }
                Ok(true)
            })?;
        }
        let mut deps = BTreeMap::new();
        for (name, ko) in &modules {
            deps.insert(
                name.clone(),
                modinfo::depends(ko).with_context(|| format!("module `{name}`"))?,
            );
        }
        let missing: BTreeSet<String> = deps
            .values()
            .flatten()
            .filter(|d| available.contains(*d) && !modules.contains_key(*d))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        keep.extend(missing);
    }
    let (image, release) = kernel
        .context("the package(s) hold no kernel image (boot/vmlinuz-* or lib/modules/*/vmlinuz)")?;
    let release = if release.is_empty() {
        release_from_modules.unwrap_or_default()
    } else {
        release
    };
    let mut meta = finish(image, arch, out, &modules)?;
    meta.release = release;
    Ok(meta)
}

/// Writes the kernel (x86: the extracted vmlinux) and modules (in load order) into `out`.
fn finish(
    image: Vec<u8>,
    arch: Arch,
    out: &Path,
    modules: &BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<KernelMeta> {
    let mut notes = Vec::new();
    // The image as shipped is kept too (8–14 MB): it is what a user would boot, and what the
    // tests truncate to prove a kernel that cannot boot gives a record.
    let kernel = match arch {
        Arch::Amd64 if image.starts_with(b"\x7fELF") => {
            std::fs::write(out.join("vmlinux"), &image)?;
            "vmlinux"
        }
        Arch::Amd64 => {
            std::fs::write(out.join("vmlinuz"), &image)?;
            match crate::bzimage::extract_vmlinux(&image) {
                Ok(vmlinux) => {
                    std::fs::write(out.join("vmlinux"), vmlinux)?;
                    "vmlinux"
                }
                Err(e) => {
                    notes.push(format!(
                        "cannot extract vmlinux ({e:#}): booting the image as it is"
                    ));
                    "vmlinuz"
                }
            }
        }
        Arch::Arm64 => {
            std::fs::write(out.join("vmlinuz"), &image)?;
            "vmlinuz"
        }
    };
    let mut deps = BTreeMap::new();
    for (name, ko) in modules {
        deps.insert(name.clone(), modinfo::depends(ko).unwrap_or_default());
    }
    let order = modinfo::load_order(modinfo::WANTED, &deps);
    std::fs::create_dir_all(out.join("modules"))?;
    let mut files = Vec::new();
    for name in &order {
        let file = format!("{name}.ko");
        std::fs::write(out.join("modules").join(&file), &modules[name])?;
        files.push(file);
    }
    Ok(KernelMeta {
        spec: String::new(),
        arch: arch.debian().to_string(),
        release: String::new(),
        kernel: kernel.to_string(),
        modules: files,
        packages: Vec::new(),
        suite: None,
        trust: None,
        busybox: None,
        notes,
        fetched: now(),
    })
}

/// Prepares a user-built kernel image with the modules found below `modules` (none: built in).
fn prepare_image(
    kernel: &Path,
    modules: Option<&Path>,
    arch: Arch,
    out: &Path,
    label: &str,
) -> anyhow::Result<PreparedKernel> {
    let image =
        std::fs::read(kernel).with_context(|| format!("cannot read `{}`", kernel.display()))?;
    let mut found = BTreeMap::new();
    if let Some(dir) = modules {
        let mut files = Vec::new();
        walk(dir, &mut files, 0)
            .with_context(|| format!("cannot read --modules `{}`", dir.display()))?;
        let mut keep: BTreeSet<String> = modinfo::WANTED.iter().map(|s| s.to_string()).collect();
        loop {
            let mut added = false;
            for f in &files {
                let Some(name) = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(modinfo::module_name)
                else {
                    continue;
                };
                if keep.contains(&name) && !found.contains_key(&name) {
                    let data = std::fs::read(f)?;
                    let ko = decompress::decompress(&data, MAX_MODULE, &f.display().to_string())?;
                    for d in modinfo::depends(&ko).with_context(|| format!("`{}`", f.display()))? {
                        added |= keep.insert(d);
                    }
                    found.insert(name, ko);
                }
            }
            if !added {
                break;
            }
        }
    }
    let mut meta = finish(image, arch, out, &found)?;
    meta.spec = label.to_string();
    meta.release = modules
        .and_then(|m| m.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_meta(out, &meta)?;
    PreparedKernel::load(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    if depth > 8 {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out, depth + 1)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_and_module_paths() {
        assert_eq!(
            kernel_image_path(Path::new("boot/vmlinuz-6.1.0-57-amd64")).as_deref(),
            Some("6.1.0-57-amd64")
        );
        assert_eq!(
            kernel_image_path(Path::new("usr/lib/modules/7.2.13+deb14-amd64/vmlinuz")).as_deref(),
            Some("7.2.13+deb14-amd64")
        );
        assert_eq!(kernel_image_path(Path::new("boot/config-6.1")), None);
        assert_eq!(
            module_of(Path::new("lib/modules/6.1.0/kernel/fs/9p/9p.ko.xz")).as_deref(),
            Some("9p")
        );
        assert_eq!(module_of(Path::new("usr/share/doc/x.ko")), None);
    }

    #[test]
    fn a_package_without_a_kernel_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let deb = crate::deb::tests_support::fake_deb(dir.path(), &[("usr/share/doc/x", b"y")]);
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let e = prepare_debs(&[deb], Arch::Amd64, &out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no kernel image"), "{e}");
    }
}
