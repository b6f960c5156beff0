//! Checks that a program can run in a guest of another architecture: an ELF file for that
//! architecture with no program interpreter (the guest's root is the host's, whose dynamic
//! loader and libraries are for the host).

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use object::elf;
use object::read::elf::{FileHeader as _, ProgramHeader as _};

use crate::spec::Arch;

/// The ELF machine of `arch`.
fn machine(arch: Arch) -> u16 {
    arch.platform().elf_machine()
}

fn machine_name(m: u16) -> String {
    match m {
        elf::EM_X86_64 => "amd64 (x86-64)".into(),
        elf::EM_AARCH64 => "arm64 (AArch64)".into(),
        elf::EM_386 => "i386".into(),
        elf::EM_ARM => "32-bit ARM".into(),
        other => format!("ELF machine {other}"),
    }
}

/// The architecture of an ELF program's first bytes (`None`: not a 64-bit ELF file or another
/// architecture than amd64/arm64).
pub fn arch_of(head: &[u8]) -> Option<Arch> {
    let header = elf::FileHeader64::<object::Endianness>::parse(head).ok()?;
    let endian = header.endian().ok()?;
    match header.e_machine(endian) {
        elf::EM_X86_64 => Some(Arch::Amd64),
        elf::EM_AARCH64 => Some(Arch::Arm64),
        _ => None,
    }
}

/// Checks that `head` (a program's first bytes, headers included) is a 64-bit ELF program for
/// `arch` with no program interpreter.
pub fn check_static_program(head: &[u8], arch: Arch) -> anyhow::Result<()> {
    let header =
        elf::FileHeader64::<object::Endianness>::parse(head).context("not a 64-bit ELF program")?;
    let endian = header.endian().context("not a 64-bit ELF program")?;
    let m = header.e_machine(endian);
    if m != machine(arch) {
        bail!(
            "it is a program for {}, not for {}",
            machine_name(m),
            machine_name(machine(arch))
        );
    }
    let phdrs = header
        .program_headers(endian, head)
        .context("cannot read its program headers")?;
    if phdrs.iter().any(|p| p.p_type(endian) == elf::PT_INTERP) {
        bail!(
            "it is dynamically linked (it names a program interpreter); a static build is needed"
        );
    }
    Ok(())
}

/// The first 64 KiB of a file: enough for its ELF and program headers.
pub fn read_head(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 << 10).read_to_end(&mut head))
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(head)
}

/// [`check_static_program`] on a file.
pub fn check_static_file(path: &Path, arch: Arch) -> anyhow::Result<()> {
    check_static_program(&read_head(path)?, arch).with_context(|| format!("`{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_architecture_and_linking() {
        let me = std::fs::read("/proc/self/exe").unwrap();
        let host = Arch::parse(None).unwrap();
        assert_eq!(arch_of(&me), Some(host));
        let other = if host == Arch::Amd64 {
            Arch::Arm64
        } else {
            Arch::Amd64
        };
        let e = check_static_program(&me, other).unwrap_err().to_string();
        assert!(e.contains("it is a program for"), "{e}");
        // Test binaries are linked dynamically here (no crt-static).
        let e = format!("{:#}", check_static_program(&me, host).unwrap_err());
        assert!(e.contains("dynamically linked"), "{e}");
        assert!(check_static_program(b"#!/bin/sh\n", host).is_err());
    }
}
