//! Target platforms a gadget can be built for, and every name and number that goes with one:
//! OCI and Debian architecture names, the `uname -m` machine, Rust's `target_arch`, clang
//! defines and byte order, btfhub-archive's directory, the Debian multiarch tuple, the kernel's
//! syscall-wrapper prefixes and the ELF machine.

use std::fmt;
use std::str::FromStr;

/// Byte order of a target platform; the eBPF object must match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    /// Little-endian (`bpfel`).
    Little,
    /// Big-endian (`bpfeb`).
    Big,
}

/// A Linux platform an image carries a manifest for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    /// x86-64.
    Amd64,
    /// 64-bit ARM.
    Arm64,
    /// 64-bit POWER, little-endian.
    Ppc64le,
    /// 64-bit RISC-V.
    Riscv64,
    /// IBM Z (big-endian).
    S390x,
}

/// The platforms built when neither the command line nor build.yaml names any (upstream's pair).
pub const DEFAULT_PLATFORMS: [Platform; 2] = [Platform::Amd64, Platform::Arm64];

impl Platform {
    /// Every platform we know, in OCI architecture name order.
    pub const ALL: [Platform; 5] = [
        Platform::Amd64,
        Platform::Arm64,
        Platform::Ppc64le,
        Platform::Riscv64,
        Platform::S390x,
    ];

    /// The OCI `platform.architecture` name.
    pub fn oci_arch(self) -> &'static str {
        match self {
            Platform::Amd64 => "amd64",
            Platform::Arm64 => "arm64",
            Platform::Ppc64le => "ppc64le",
            Platform::Riscv64 => "riscv64",
            Platform::S390x => "s390x",
        }
    }

    /// The `__TARGET_ARCH_<x>` suffix libbpf's `bpf_tracing.h` expects.
    pub fn target_arch_define(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86",
            Platform::Arm64 => "arm64",
            Platform::Ppc64le => "powerpc",
            Platform::Riscv64 => "riscv",
            Platform::S390x => "s390",
        }
    }

    /// Byte order of the platform's kernel.
    pub fn byte_order(self) -> ByteOrder {
        match self {
            Platform::S390x => ByteOrder::Big,
            _ => ByteOrder::Little,
        }
    }

    /// The clang `-target` for eBPF code running on this platform.
    pub fn clang_target(self) -> &'static str {
        match self.byte_order() {
            ByteOrder::Little => "bpfel",
            ByteOrder::Big => "bpfeb",
        }
    }

    /// Debian's architecture name (`dpkg --print-architecture`).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Platform::Ppc64le => "ppc64el",
            other => other.oci_arch(),
        }
    }

    /// The machine name as `uname -m` (and `/proc/sys/kernel/arch`) spells it.
    pub fn uname_machine(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64",
            Platform::Arm64 => "aarch64",
            Platform::Ppc64le => "ppc64le",
            Platform::Riscv64 => "riscv64",
            Platform::S390x => "s390x",
        }
    }

    /// The platform of a `uname -m` machine name (also `arm64`, as some kernels spell it).
    pub fn from_machine(machine: &str) -> Option<Platform> {
        match machine {
            "arm64" => Some(Platform::Arm64),
            other => Platform::ALL
                .into_iter()
                .find(|p| p.uname_machine() == other),
        }
    }

    /// The OCI architecture name `name` exactly (`amd64`, not `x86_64`).
    pub fn from_oci_arch(name: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.oci_arch() == name)
    }

    /// Rust's `target_arch` (`std::env::consts::ARCH`), also aya-build's `bpf_target_arch`.
    pub fn rust_arch(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64",
            Platform::Arm64 => "aarch64",
            Platform::Ppc64le => "powerpc64",
            Platform::Riscv64 => "riscv64",
            Platform::S390x => "s390x",
        }
    }

    /// btfhub-archive's directory name (`<ID>/<VERSION_ID>/<this>/<release>.btf.tar.xz`).
    pub fn btfhub_arch_dir(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64",
            Platform::Arm64 => "arm64",
            Platform::Ppc64le => "ppc64le",
            Platform::Riscv64 => "riscv64",
            Platform::S390x => "s390x",
        }
    }

    /// Debian's multiarch tuple (`/usr/include/<this>` holds `<asm/types.h>`).
    pub fn multiarch_tuple(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64-linux-gnu",
            Platform::Arm64 => "aarch64-linux-gnu",
            Platform::Ppc64le => "powerpc64le-linux-gnu",
            Platform::Riscv64 => "riscv64-linux-gnu",
            Platform::S390x => "s390x-linux-gnu",
        }
    }

    /// The prefixes of the kernel's syscall wrappers (`__x64_sys_<name>`), the native one first
    /// (x86-64 and s390x also have their 32-bit compat wrappers).
    pub fn syscall_prefixes(self) -> &'static [&'static str] {
        match self {
            Platform::Amd64 => &["__x64_sys_", "__ia32_sys_"],
            Platform::Arm64 => &["__arm64_sys_"],
            Platform::Riscv64 => &["__riscv_sys_"],
            Platform::S390x => &["__s390x_sys_", "__s390_sys_"],
            Platform::Ppc64le => &["sys_"],
        }
    }

    /// The ELF `e_machine` of the platform's programs.
    pub fn elf_machine(self) -> u16 {
        match self {
            Platform::Amd64 => 62,    // EM_X86_64
            Platform::Arm64 => 183,   // EM_AARCH64
            Platform::Ppc64le => 21,  // EM_PPC64
            Platform::Riscv64 => 243, // EM_RISCV
            Platform::S390x => 22,    // EM_S390
        }
    }

    /// The platform this binary runs on, if it is one we know.
    pub fn host() -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| {
            p.rust_arch() == std::env::consts::ARCH
                && (*p != Platform::Ppc64le || cfg!(target_endian = "little"))
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.oci_arch())
    }
}

/// A platform name we do not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown platform `{name}`: expected one of amd64, arm64, ppc64le, riscv64, s390x")]
pub struct UnknownPlatform {
    /// What was given.
    pub name: String,
}

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().strip_prefix("linux/").unwrap_or(s.trim());
        let name = match name {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Platform::from_oci_arch(name).ok_or_else(|| UnknownPlatform {
            name: s.to_string(),
        })
    }
}

/// Parse a comma-separated platform list, sorted and without duplicates.
pub fn parse_list(list: &str) -> Result<Vec<Platform>, UnknownPlatform> {
    let mut out = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<Vec<Platform>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts_lists() {
        assert_eq!(
            parse_list("arm64,amd64,linux/arm64").unwrap(),
            vec![Platform::Amd64, Platform::Arm64]
        );
        assert_eq!(parse_list("x86_64").unwrap(), vec![Platform::Amd64]);
        let err = parse_list("amd64,mips").unwrap_err();
        assert!(err.to_string().contains("`mips`"), "{err}");
    }

    #[test]
    fn s390x_is_big_endian() {
        assert_eq!(Platform::S390x.clang_target(), "bpfeb");
        assert_eq!(Platform::Amd64.clang_target(), "bpfel");
        assert_eq!(Platform::Arm64.target_arch_define(), "arm64");
    }

    #[test]
    fn machine_names_round_trip() {
        for p in Platform::ALL {
            assert_eq!(Platform::from_machine(p.uname_machine()), Some(p));
            assert_eq!(Platform::from_oci_arch(p.oci_arch()), Some(p));
        }
        assert_eq!(Platform::from_machine("arm64"), Some(Platform::Arm64));
        assert_eq!(Platform::from_machine("amd64"), None);
        assert_eq!(Platform::from_oci_arch("x86_64"), None);
    }

    #[test]
    fn the_host_is_known_by_its_rust_name() {
        let host = Platform::host().expect("tests run on a known platform");
        assert_eq!(host.rust_arch(), std::env::consts::ARCH);
    }

    #[test]
    fn syscall_wrappers_and_debian_names() {
        assert_eq!(Platform::Amd64.syscall_prefixes()[0], "__x64_sys_");
        assert_eq!(Platform::Arm64.syscall_prefixes(), ["__arm64_sys_"]);
        assert_eq!(Platform::Ppc64le.debian_arch(), "ppc64el");
        assert_eq!(Platform::Arm64.btfhub_arch_dir(), "arm64");
        assert_eq!(Platform::Amd64.btfhub_arch_dir(), "x86_64");
        assert_eq!(Platform::Arm64.elf_machine(), 183);
    }
}
