//! Kernel specs as the user writes them (`debian:bookworm`, a `.deb`, a `vmlinuz`) and the
//! guest architectures.

use std::path::{Path, PathBuf};

use anyhow::bail;
use gadget_facts::platform::Platform;

/// A guest architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64 (`qemu-system-x86_64`).
    Amd64,
    /// AArch64 (`qemu-system-aarch64`, always emulated here).
    Arm64,
}

impl Arch {
    /// From `--platform` (`amd64`, `arm64`, `linux/arm64`, `x86_64`, `aarch64`); default: host.
    pub fn parse(platform: Option<&str>) -> anyhow::Result<Arch> {
        let p = platform.map(|p| p.trim_start_matches("linux/"));
        let named = |name: &str| Platform::from_oci_arch(name).or(Platform::from_machine(name));
        Ok(match p {
            None if Platform::host() == Some(Platform::Arm64) => Arch::Arm64,
            None => Arch::Amd64,
            Some("arm64/v8") => Arch::Arm64,
            Some(name) => match named(name) {
                Some(Platform::Amd64) => Arch::Amd64,
                Some(Platform::Arm64) => Arch::Arm64,
                _ => bail!("unsupported platform `{name}` for microVMs (amd64 or arm64)"),
            },
        })
    }

    /// The platform this guest architecture is.
    pub fn platform(self) -> Platform {
        match self {
            Arch::Amd64 => Platform::Amd64,
            Arch::Arm64 => Platform::Arm64,
        }
    }

    /// Debian's architecture name.
    pub fn debian(self) -> &'static str {
        self.platform().debian_arch()
    }

    /// The QEMU system emulator.
    pub fn qemu(self) -> &'static str {
        match self {
            Arch::Amd64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }

    /// Debian's package of that emulator.
    pub fn qemu_package(self) -> &'static str {
        match self {
            Arch::Amd64 => "qemu-system-x86",
            Arch::Arm64 => "qemu-system-arm",
        }
    }

    /// Whether this machine runs the architecture natively (KVM possible).
    pub fn is_host(self) -> bool {
        Platform::host() == Some(self.platform())
    }
}

/// Where a kernel comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// `debian:<suite>`: the suite's current `linux-image-*-<arch>`.
    Debian {
        /// `bookworm`, `sid`, …
        suite: String,
    },
    /// A local `linux-image-*.deb`.
    Deb(PathBuf),
    /// A kernel image the user built, with its modules directory (none: everything built in).
    Image {
        /// The `vmlinuz`/`bzImage`/`vmlinux`.
        kernel: PathBuf,
        /// `--modules DIR`.
        modules: Option<PathBuf>,
    },
}

impl KernelSpec {
    /// Parses `--kernel` (`modules` is `--modules`, used by a kernel image path).
    pub fn parse(text: &str, modules: Option<&Path>) -> anyhow::Result<KernelSpec> {
        if let Some(suite) = text.strip_prefix("debian:") {
            if suite.is_empty() || !suite.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                bail!(
                    "invalid kernel spec `{text}`: expected debian:<suite>, e.g. debian:bookworm"
                );
            }
            return Ok(KernelSpec::Debian {
                suite: suite.to_string(),
            });
        }
        if text.contains(':') && !text.contains('/') {
            bail!(
                "unknown kernel spec `{text}`: use debian:<suite>, a path to a linux-image-*.deb, or a path to a vmlinuz (with --modules DIR)"
            );
        }
        let path = PathBuf::from(text);
        if !path.is_file() {
            bail!("kernel `{text}`: no such file (expected debian:<suite>, a .deb or a vmlinuz)");
        }
        if text.ends_with(".deb") {
            return Ok(KernelSpec::Deb(path));
        }
        Ok(KernelSpec::Image {
            kernel: path,
            modules: modules.map(Path::to_path_buf),
        })
    }

    /// The spec as shown in tables and records.
    pub fn label(&self) -> String {
        match self {
            KernelSpec::Debian { suite } => format!("debian:{suite}"),
            KernelSpec::Deb(p) | KernelSpec::Image { kernel: p, .. } => p.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            KernelSpec::parse("debian:bookworm", None).unwrap(),
            KernelSpec::Debian {
                suite: "bookworm".into()
            }
        );
        assert!(KernelSpec::parse("debian:", None).is_err());
        assert!(KernelSpec::parse("debian:../x", None).is_err());
        let e = KernelSpec::parse("ubuntu:jammy", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown kernel spec"), "{e}");
        let e = KernelSpec::parse("/no/such/vmlinuz", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file"), "{e}");
        assert_eq!(Arch::parse(Some("linux/arm64")).unwrap(), Arch::Arm64);
        assert!(Arch::parse(Some("riscv64")).is_err());
    }
}
