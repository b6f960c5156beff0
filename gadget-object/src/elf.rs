//! The ELF layer: header facts, sections and symbols, read with the `object` crate.

use object::read::elf::{ElfFile, FileHeader, SectionHeader, Sym};
use object::{Object, ObjectSection, ObjectSymbol};
use serde::Serialize;

use crate::ObjectError;

/// `e_machine` of eBPF objects.
pub const EM_BPF: u16 = 247;

/// Byte order of an object (or of a target architecture).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endianness {
    /// Little-endian (`bpfel`: amd64, arm64, ...).
    Little,
    /// Big-endian (`bpfeb`: s390x, ...).
    Big,
}

impl std::fmt::Display for Endianness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Endianness::Little => "little-endian",
            Endianness::Big => "big-endian",
        })
    }
}

/// Facts about the ELF container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// ELF64 (`false` for ELF32).
    pub is_64: bool,
    /// Byte order.
    pub endianness: Endianness,
    /// `e_machine` (247 for eBPF).
    pub machine: u16,
    /// Section names in header order (the null section is left out).
    pub sections: Vec<String>,
    /// A `.BTF` section exists.
    pub has_btf: bool,
    /// A `.BTF.ext` section exists.
    pub has_btf_ext: bool,
    /// A `license` section exists.
    pub has_license: bool,
    /// The license string, up to its NUL.
    pub license: Option<String>,
    /// Some `.debug_*` section exists (DWARF was not stripped).
    pub has_dwarf: bool,
    /// The DWARF sections found.
    pub dwarf_sections: Vec<String>,
}

/// A section as the rest of the crate needs it.
#[derive(Debug, Clone)]
pub(crate) struct RawSection<'data> {
    pub index: usize,
    pub name: String,
    /// `None` for `SHT_NOBITS` (`.bss`).
    pub data: Option<&'data [u8]>,
    pub size: u64,
    pub executable: bool,
}

/// A symbol as the rest of the crate needs it.
#[derive(Debug, Clone)]
pub(crate) struct RawSymbol {
    pub name: String,
    pub section: Option<usize>,
    pub value: u64,
    pub size: u64,
    pub is_func: bool,
    pub is_object: bool,
    pub global: bool,
}

pub(crate) struct RawElf<'data> {
    pub info: ElfInfo,
    pub sections: Vec<RawSection<'data>>,
    pub symbols: Vec<RawSymbol>,
}

impl<'data> RawElf<'data> {
    pub fn section(&self, name: &str) -> Option<&RawSection<'data>> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn section_by_index(&self, index: usize) -> Option<&RawSection<'data>> {
        self.sections.iter().find(|s| s.index == index)
    }
}

/// A copy of some bytes starting at an 8-byte aligned address (without `unsafe`: the buffer is
/// over-allocated and the slice starts at the first aligned byte).
pub(crate) struct AlignedCopy {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedCopy {
    pub(crate) fn new(data: &[u8]) -> Self {
        let mut buf = vec![0u8; data.len() + 8];
        let start = buf.as_ptr().align_offset(8).min(8);
        buf[start..start + data.len()].copy_from_slice(data);
        AlignedCopy {
            buf,
            start,
            len: data.len(),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

pub(crate) fn parse(data: &[u8]) -> Result<RawElf<'_>, ObjectError> {
    match object::FileKind::parse(data) {
        Ok(object::FileKind::Elf64) => {
            parse_elf::<object::elf::FileHeader64<object::Endianness>>(data, true)
        }
        Ok(object::FileKind::Elf32) => {
            parse_elf::<object::elf::FileHeader32<object::Endianness>>(data, false)
        }
        _ => Err(ObjectError::NotElf {
            magic: data.iter().take(4).copied().collect(),
        }),
    }
}

fn parse_elf<Elf: FileHeader<Endian = object::Endianness>>(
    data: &[u8],
    is_64: bool,
) -> Result<RawElf<'_>, ObjectError> {
    let elf_err = |what: String| move |source| ObjectError::Elf { what, source };
    let file = ElfFile::<Elf>::parse(data).map_err(elf_err("headers".to_string()))?;
    let endian = file.endian();
    let endianness = if endian == object::Endianness::Little {
        Endianness::Little
    } else {
        Endianness::Big
    };
    let machine = file.elf_header().e_machine(endian);

    let mut sections = Vec::new();
    for section in file.sections() {
        let index = section.index().0;
        let name = section
            .name()
            .map_err(elf_err(format!("name of section {index}")))?
            .to_string();
        let header = section.elf_section_header();
        let nobits = header.sh_type(endian) == object::elf::SHT_NOBITS;
        let flags: u64 = header.sh_flags(endian).into();
        let data = if nobits {
            None
        } else {
            Some(
                section
                    .data()
                    .map_err(elf_err(format!("data of section `{name}`")))?,
            )
        };
        sections.push(RawSection {
            index,
            name,
            data,
            size: section.size(),
            executable: flags & u64::from(object::elf::SHF_EXECINSTR) != 0,
        });
    }

    let mut symbols = Vec::new();
    for symbol in file.symbols() {
        let Ok(name) = symbol.name() else { continue };
        if name.is_empty() {
            continue;
        }
        let raw = symbol.elf_symbol();
        let st_type = raw.st_type();
        symbols.push(RawSymbol {
            name: name.to_string(),
            section: symbol.section_index().map(|i| i.0),
            value: symbol.address(),
            size: symbol.size(),
            is_func: st_type == object::elf::STT_FUNC,
            is_object: st_type == object::elf::STT_OBJECT,
            global: raw.st_bind() != object::elf::STB_LOCAL,
        });
    }

    let has = |n: &str| sections.iter().any(|s| s.name == n);
    let license = sections
        .iter()
        .find(|s| s.name == "license")
        .and_then(|s| s.data)
        .map(crate::btf::c_string);
    let dwarf_sections: Vec<String> = sections
        .iter()
        .filter(|s| s.name.starts_with(".debug_") || s.name.starts_with(".zdebug_"))
        .map(|s| s.name.clone())
        .collect();
    let info = ElfInfo {
        is_64,
        endianness,
        machine,
        sections: sections
            .iter()
            .filter(|s| s.index != 0)
            .map(|s| s.name.clone())
            .collect(),
        has_btf: has(".BTF"),
        has_btf_ext: has(".BTF.ext"),
        has_license: has("license"),
        license,
        has_dwarf: !dwarf_sections.is_empty(),
        dwarf_sections,
    };
    Ok(RawElf {
        info,
        sections,
        symbols,
    })
}
