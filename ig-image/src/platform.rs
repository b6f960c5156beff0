//! Target platforms a gadget can be built for: OCI architecture names, clang defines, endianness.

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

    /// The platform this binary runs on, if it is one we know.
    pub fn host() -> Option<Platform> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Platform::Amd64),
            "aarch64" => Some(Platform::Arm64),
            "powerpc64" if cfg!(target_endian = "little") => Some(Platform::Ppc64le),
            "riscv64" => Some(Platform::Riscv64),
            "s390x" => Some(Platform::S390x),
            _ => None,
        }
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
        Platform::ALL
            .into_iter()
            .find(|p| p.oci_arch() == name)
            .ok_or_else(|| UnknownPlatform {
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
}
