//! btfgen: minimized kernel BTF for kernels without `/sys/kernel/btf/vmlinux`, packed as the
//! image's btfgen layer.
//!
//! Input: a btfhub-archive-like tree, `<ID>/<VERSION_ID>/<arch dir>/<release>.btf.tar.xz`
//! (`ubuntu/20.04/x86_64/5.4.0-1009-aws.btf.tar.xz`), each an xz tar holding `<release>.btf`.
//! For every file of a platform's arch dir (`x86_64` for amd64, `arm64` for arm64, otherwise the
//! OCI name), `bpftool gen min_core_btf` keeps only the types that platform's object's CO-RE
//! relocations reach. The files are processed in parallel, `jobs` at a time.
//!
//! Output, per platform: the layer blob (media type
//! `application/vnd.gadget.btfgen.v1+binary`), a gzip'd tar whose entries are
//! `<ID>/<VERSION_ID>/<arch dir>/<release>.btf` — regular files, mode 0644, uid/gid 0, mtime 0,
//! sorted by path, **no `./` prefix** and no directory entries — which is what the runtime looks
//! up from `/etc/os-release` (`ID`, `VERSION_ID`), `uname -m` and `uname -r` (upstream's layout
//! regressed to `./`-prefixed entries; this one does not). The same inputs give the same bytes.
//!
//! Runs `bpftool` (argv, never a shell); `BPFTOOL` overrides where it is found.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gadget_facts::platform::Platform;

/// Overrides the bpftool binary.
pub const BPFTOOL_ENV: &str = "BPFTOOL";

/// Why btfgen failed.
#[derive(Debug, thiserror::Error)]
pub enum BtfgenError {
    /// No bpftool.
    #[error("`bpftool` not found on PATH or in /usr/sbin, and `BPFTOOL` is not set")]
    NoBpftool,
    /// The archive directory is unreadable.
    #[error("cannot read the btfhub archive `{path}`")]
    Archive {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No kernel of the platform in the archive.
    #[error(
        "`{archive}` has no `<ID>/<VERSION_ID>/{arch_dir}/<release>.btf.tar.xz` for {platform}"
    )]
    NoKernels {
        /// The archive.
        archive: PathBuf,
        /// The platform.
        platform: String,
        /// Its arch dir.
        arch_dir: &'static str,
    },
    /// An archive file could not be unpacked.
    #[error("cannot unpack `{path}`: {reason}")]
    Unpack {
        /// The `.btf.tar.xz`.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// bpftool failed on one kernel.
    #[error("`bpftool gen min_core_btf` failed for `{path}` ({platform}):\n{stderr}")]
    Bpftool {
        /// The `.btf.tar.xz`.
        path: PathBuf,
        /// The platform.
        platform: String,
        /// bpftool's output.
        stderr: String,
    },
    /// A temporary file could not be written.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
}

/// One kernel of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveKernel {
    /// `/etc/os-release` `ID` (`ubuntu`).
    pub id: String,
    /// `VERSION_ID` (`20.04`).
    pub version_id: String,
    /// Arch dir (`x86_64`).
    pub arch_dir: String,
    /// `uname -r` (`5.4.0-1009-aws`).
    pub release: String,
    /// The `.btf.tar.xz`.
    pub path: PathBuf,
}

impl ArchiveKernel {
    /// The entry name in the layer: `<ID>/<VERSION_ID>/<arch dir>/<release>.btf`.
    pub fn entry(&self) -> String {
        format!(
            "{}/{}/{}/{}.btf",
            self.id, self.version_id, self.arch_dir, self.release
        )
    }
}

fn dir_names(path: &Path) -> Result<Vec<(String, PathBuf)>, BtfgenError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|source| BtfgenError::Archive {
        path: path.to_path_buf(),
        source,
    })?;
    for e in entries.flatten() {
        let p = e.path();
        if let Some(name) = e.file_name().to_str() {
            if !name.starts_with('.') {
                out.push((name.to_string(), p));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every kernel of `platform` in the archive, sorted by entry name.
pub fn scan(archive: &Path, platform: Platform) -> Result<Vec<ArchiveKernel>, BtfgenError> {
    let want = platform.btfhub_arch_dir();
    let mut out = Vec::new();
    for (id, id_path) in dir_names(archive)? {
        if !id_path.is_dir() {
            continue;
        }
        for (version_id, v_path) in dir_names(&id_path)? {
            let a_path = v_path.join(want);
            if !a_path.is_dir() {
                continue;
            }
            for (file, path) in dir_names(&a_path)? {
                let Some(release) = file.strip_suffix(".btf.tar.xz") else {
                    continue;
                };
                if release.is_empty() || release.contains('/') {
                    continue;
                }
                out.push(ArchiveKernel {
                    id: id.clone(),
                    version_id: version_id.clone(),
                    arch_dir: want.to_string(),
                    release: release.to_string(),
                    path,
                });
            }
        }
    }
    out.sort_by_key(ArchiveKernel::entry);
    Ok(out)
}

/// The bpftool to run: `BPFTOOL`, else `bpftool` on PATH, else `/usr/sbin/bpftool`.
pub fn find_bpftool() -> Result<PathBuf, BtfgenError> {
    if let Some(v) = std::env::var_os(BPFTOOL_ENV).filter(|v| !v.is_empty()) {
        return which::which(&v).map_err(|_| BtfgenError::NoBpftool);
    }
    which::which("bpftool")
        .ok()
        .or_else(|| {
            let p = PathBuf::from("/usr/sbin/bpftool");
            p.exists().then_some(p)
        })
        .ok_or(BtfgenError::NoBpftool)
}

/// The raw `.btf` inside a btfhub `.btf.tar.xz` (the first regular file ending in `.btf`).
pub fn unpack(path: &Path) -> Result<Vec<u8>, BtfgenError> {
    let bad = |reason: String| BtfgenError::Unpack {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut tar_bytes = Vec::new();
    lzma_rs::xz_decompress(&mut std::io::BufReader::new(file), &mut tar_bytes)
        .map_err(|e| bad(format!("not xz: {e}")))?;
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let is_btf = entry
            .path()
            .ok()
            .is_some_and(|p| p.extension().is_some_and(|x| x == "btf"));
        if entry.header().entry_type().is_file() && is_btf {
            let mut out = Vec::new();
            entry
                .read_to_end(&mut out)
                .map_err(|e| bad(e.to_string()))?;
            return Ok(out);
        }
    }
    Err(bad("no `.btf` file in the tar".to_string()))
}

/// Packs (entry name, bytes) as a deterministic tar.gz (sorted, mode 0644, owner 0, mtime 0).
pub fn pack(mut files: Vec<(String, Vec<u8>)>) -> Result<Vec<u8>, std::io::Error> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, data) in &files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        tar.append_data(&mut header, name, &data[..])?;
    }
    tar.into_inner()?.finish()
}

/// What btfgen produced for one platform.
#[derive(Debug, Clone)]
pub struct BtfgenLayer {
    /// The platform.
    pub platform: Platform,
    /// The layer blob (tar.gz).
    pub blob: Vec<u8>,
    /// Entry names, sorted.
    pub entries: Vec<String>,
}

/// Minimizes every kernel of each object's platform and packs one layer per platform.
/// `objects` are the stripped objects that go into the image. `jobs` bounds concurrent bpftool
/// processes.
pub fn generate(
    archive: &Path,
    objects: &[(Platform, &[u8])],
    jobs: usize,
) -> Result<Vec<BtfgenLayer>, BtfgenError> {
    let bpftool = find_bpftool()?;
    let tmp = tempfile::tempdir().map_err(|source| {
        BtfgenError::Io(crate::file_error::FileError {
            action: "create",
            path: std::env::temp_dir(),
            source,
        })
    })?;
    // Work items: (platform index, kernel).
    let mut work = Vec::new();
    let mut object_paths = Vec::new();
    for (i, (platform, bytes)) in objects.iter().enumerate() {
        let kernels = scan(archive, *platform)?;
        if kernels.is_empty() {
            return Err(BtfgenError::NoKernels {
                archive: archive.to_path_buf(),
                platform: platform.oci_arch().to_string(),
                arch_dir: platform.btfhub_arch_dir(),
            });
        }
        let obj = tmp.path().join(format!("{}.bpf.o", platform.oci_arch()));
        std::fs::write(&obj, bytes).map_err(|source| {
            BtfgenError::Io(crate::file_error::FileError {
                action: "write",
                path: obj.clone(),
                source,
            })
        })?;
        object_paths.push(obj);
        work.extend(kernels.into_iter().map(|k| (i, k)));
    }
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, String, Vec<u8>)>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<BtfgenError>> = Mutex::new(None);
    let lock = |m: &Mutex<usize>| {
        let mut n = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = *n;
        *n += 1;
        i
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, work.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = lock(&next);
                    let Some((pi, kernel)) = work.get(i) else {
                        break;
                    };
                    if first_error
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .is_some()
                    {
                        break;
                    }
                    let platform = objects[*pi].0;
                    match minimize(
                        &bpftool,
                        kernel,
                        &object_paths[*pi],
                        platform,
                        tmp.path(),
                        i,
                    ) {
                        Ok(bytes) => results
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((*pi, kernel.entry(), bytes)),
                        Err(e) => {
                            first_error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    let results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut layers = Vec::new();
    for (i, (platform, _)) in objects.iter().enumerate() {
        let files: Vec<(String, Vec<u8>)> = results
            .iter()
            .filter(|(pi, _, _)| *pi == i)
            .map(|(_, name, bytes)| (name.clone(), bytes.clone()))
            .collect();
        let mut entries: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        entries.sort();
        let blob = pack(files).map_err(|source| {
            BtfgenError::Io(crate::file_error::FileError {
                action: "pack",
                path: archive.to_path_buf(),
                source,
            })
        })?;
        layers.push(BtfgenLayer {
            platform: *platform,
            blob,
            entries,
        });
    }
    Ok(layers)
}

fn minimize(
    bpftool: &Path,
    kernel: &ArchiveKernel,
    object: &Path,
    platform: Platform,
    tmp: &Path,
    n: usize,
) -> Result<Vec<u8>, BtfgenError> {
    let raw = unpack(&kernel.path)?;
    let input = tmp.join(format!("in-{n}.btf"));
    let output = tmp.join(format!("out-{n}.btf"));
    std::fs::write(&input, &raw).map_err(|source| {
        BtfgenError::Io(crate::file_error::FileError {
            action: "write",
            path: input.clone(),
            source,
        })
    })?;
    let out = std::process::Command::new(bpftool)
        .args(["gen", "min_core_btf"])
        .arg(&input)
        .arg(&output)
        .arg(object)
        .output()
        .map_err(|source| {
            BtfgenError::Io(crate::file_error::FileError {
                action: "run",
                path: bpftool.to_path_buf(),
                source,
            })
        })?;
    let _ = std::fs::remove_file(&input);
    if !out.status.success() {
        return Err(BtfgenError::Bpftool {
            path: kernel.path.clone(),
            platform: platform.oci_arch().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let bytes = std::fs::read(&output).map_err(|source| {
        BtfgenError::Io(crate::file_error::FileError {
            action: "read",
            path: output.clone(),
            source,
        })
    })?;
    let _ = std::fs::remove_file(&output);
    Ok(bytes)
}

impl gadget_store::hint::Hint for BtfgenError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            BtfgenError::NoBpftool => "install it with `apt-get install bpftool` (it needs `gen min_core_btf`, bpftool 7+)".to_string(),
            BtfgenError::NoKernels { platform, .. } => format!("a btfhub-archive checkout, or `--platform` without {platform}"),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_is_deterministic_and_has_no_dot_prefix() {
        let files = vec![
            ("ubuntu/20.04/x86_64/b.btf".to_string(), b"bb".to_vec()),
            ("debian/12/x86_64/a.btf".to_string(), b"a".to_vec()),
        ];
        let a = pack(files.clone()).unwrap();
        let b = pack(files.into_iter().rev().collect()).unwrap();
        assert_eq!(a, b);
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mode().unwrap(), 0o644);
            assert_eq!(e.header().mtime().unwrap(), 0);
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(
            names,
            ["debian/12/x86_64/a.btf", "ubuntu/20.04/x86_64/b.btf"]
        );
    }

    #[test]
    fn scans_only_the_platform_arch_dir() {
        let d = tempfile::tempdir().unwrap();
        for p in [
            "ubuntu/20.04/x86_64/5.4.0-1009-aws.btf.tar.xz",
            "ubuntu/20.04/arm64/5.4.0-1009-aws.btf.tar.xz",
            "centos/8/x86_64/4.18.0-305.el8.x86_64.btf.tar.xz",
            "centos/8/x86_64/README.md",
        ] {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        let k = scan(d.path(), Platform::Amd64).unwrap();
        let entries: Vec<String> = k.iter().map(ArchiveKernel::entry).collect();
        assert_eq!(
            entries,
            [
                "centos/8/x86_64/4.18.0-305.el8.x86_64.btf",
                "ubuntu/20.04/x86_64/5.4.0-1009-aws.btf"
            ]
        );
        assert_eq!(scan(d.path(), Platform::Arm64).unwrap().len(), 1);
        assert!(scan(d.path(), Platform::S390x).unwrap().is_empty());
    }
}
