//! Mounts the kernel filesystems a gadget run needs when they are absent, as in a fresh
//! container (`run --auto-mount-filesystems`, upstream `ig`'s flag of the same name): proc,
//! sysfs, bpffs, tracefs and debugfs, each only where that filesystem is not already mounted.

use std::path::{Path, PathBuf};

/// A kernel filesystem and where a run expects it.
struct KernelFs {
    /// The filesystem type given to mount(2), also its name in messages.
    fstype: &'static str,
    /// Where it belongs.
    path: &'static str,
    /// `statfs` `f_type` of a mounted instance.
    magic: u64,
    /// Whether a failure to mount it fails the run (debugfs is optional: kernel lockdown may
    /// forbid it, and tracefs does not need it).
    required: bool,
}

/// In mount order: sysfs provides the mount points of the others.
const FILESYSTEMS: &[KernelFs] = &[
    KernelFs {
        fstype: "proc",
        path: "/proc",
        magic: 0x9fa0,
        required: true,
    },
    KernelFs {
        fstype: "sysfs",
        path: "/sys",
        magic: 0x6265_6572,
        required: true,
    },
    KernelFs {
        fstype: "bpf",
        path: "/sys/fs/bpf",
        magic: 0xcafe_4a11,
        required: true,
    },
    KernelFs {
        fstype: "tracefs",
        path: "/sys/kernel/tracing",
        magic: 0x7472_6163,
        required: true,
    },
    KernelFs {
        fstype: "debugfs",
        path: "/sys/kernel/debug",
        magic: 0x6462_6720,
        required: false,
    },
];

/// A filesystem that was mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// Its type (`sysfs`, `bpf`, ...).
    pub fstype: &'static str,
    /// Where.
    pub path: PathBuf,
}

/// A required filesystem is absent and could not be mounted.
#[derive(Debug, thiserror::Error)]
#[error(
    "{fstype} is not mounted at {} and mounting it failed: {source}",
    path.display()
)]
pub struct MountError {
    /// The filesystem type.
    pub fstype: &'static str,
    /// Its mount point.
    pub path: PathBuf,
    /// Why mount(2) or creating the mount point failed.
    pub source: std::io::Error,
}

impl gadget_store::hint::Hint for MountError {
    fn hints(&self) -> Vec<String> {
        vec![
            "--auto-mount-filesystems needs root with CAP_SYS_ADMIN (a privileged container, \
             e.g. `kubectl debug --profile=sysadmin`)"
                .to_string(),
        ]
    }
}

/// Whether `path` is the root of a mounted filesystem of `magic` type.
fn is_mounted(path: &Path, magic: u64) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as u64 == magic)
}

/// Mounts the kernel filesystem `fstype` (its own source name too) at `path`, creating the mount
/// point first. Also used by the attach code to mount tracefs on demand.
pub(crate) fn mount_kernel_fs(fstype: &str, path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    rustix::mount::mount(
        fstype,
        path,
        fstype,
        rustix::mount::MountFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Mounts, in order, each of proc, sysfs, bpffs, tracefs and debugfs that is not mounted where
/// a run expects it, and returns what it mounted (nothing on a normal host). A required one
/// that cannot be mounted is an error; debugfs is only skipped (with a log line).
pub fn auto_mount() -> Result<Vec<Mounted>, MountError> {
    let mut mounted = Vec::new();
    for fs in FILESYSTEMS {
        let path = Path::new(fs.path);
        if is_mounted(path, fs.magic) {
            continue;
        }
        match mount_kernel_fs(fs.fstype, path) {
            Ok(()) => {
                log::info!("mounted {} at {}", fs.fstype, fs.path);
                mounted.push(Mounted {
                    fstype: fs.fstype,
                    path: path.to_path_buf(),
                });
            }
            Err(e) if !fs.required => {
                log::warn!("{} is not mounted at {} (skipped: {e})", fs.fstype, fs.path);
            }
            Err(source) => {
                return Err(MountError {
                    fstype: fs.fstype,
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(mounted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_points_of_later_filesystems_come_from_earlier_ones() {
        let order: Vec<&str> = FILESYSTEMS.iter().map(|f| f.path).collect();
        let sys = order.iter().position(|p| *p == "/sys").unwrap();
        for (i, p) in order.iter().enumerate() {
            if p.starts_with("/sys/") {
                assert!(i > sys, "{p} is mounted before /sys");
            }
        }
    }

    #[test]
    fn a_mounted_proc_is_recognised_and_a_plain_directory_is_not() {
        assert!(is_mounted(Path::new("/proc"), 0x9fa0));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mounted(dir.path(), 0x9fa0));
        assert!(!is_mounted(&dir.path().join("absent"), 0x9fa0));
    }
}
