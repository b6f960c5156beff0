//! The ELF layer: header facts, sections and symbols, read with the `object` crate.

use object::read::elf::{ElfFile, FileHeader, SectionHeader, Sym};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};
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

/// Size of one eBPF instruction: program sections, program symbols and relocations in them
/// come in whole instructions.
pub const INSN_SIZE: u64 = 8;

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
        by_index(&self.sections, index)
    }
}

/// The section with ELF index `index` (sections are kept in header order, so usually at
/// position `index`).
fn by_index<'a, 'data>(
    sections: &'a [RawSection<'data>],
    index: usize,
) -> Option<&'a RawSection<'data>> {
    match sections.get(index) {
        Some(s) if s.index == index => Some(s),
        _ => sections.iter().find(|s| s.index == index),
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

    check_bounds(&file, &sections)?;

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

/// What a loader trusts without checking (libbpf, aya-obj): program sections are whole
/// instructions; every symbol lies inside its section (a function on an instruction boundary);
/// every relocation's offset lies inside the section it patches (on an instruction in a
/// program) and names an existing symbol.
fn check_bounds<'data, Elf: FileHeader<Endian = object::Endianness>>(
    file: &ElfFile<'data, Elf>,
    sections: &[RawSection<'data>],
) -> Result<(), ObjectError> {
    let bounds = |s: &RawSection<'_>, reason: String| ObjectError::Bounds {
        section: s.name.clone(),
        reason,
    };
    for s in sections.iter().filter(|s| s.executable && s.data.is_some()) {
        if !s.size.is_multiple_of(INSN_SIZE) {
            return Err(bounds(
                s,
                format!(
                    "a program section of {} bytes, not a whole number of {INSN_SIZE}-byte instructions",
                    s.size
                ),
            ));
        }
    }
    for symbol in file.symbols() {
        let Some(index) = symbol.section_index() else {
            continue;
        };
        let Some(s) = by_index(sections, index.0) else {
            return Err(ObjectError::Bounds {
                section: format!("#{}", index.0),
                reason: format!(
                    "symbol `{}` is in a section that does not exist",
                    symbol.name().unwrap_or("?")
                ),
            });
        };
        let (value, size) = (symbol.address(), symbol.size());
        let name = symbol.name().unwrap_or("?");
        if value.checked_add(size).is_none_or(|end| end > s.size) {
            return Err(bounds(
                s,
                format!(
                    "symbol `{name}` at {value:#x}, {size} bytes, ends past the section's {} bytes",
                    s.size
                ),
            ));
        }
        let is_func = symbol.elf_symbol().st_type() == object::elf::STT_FUNC;
        if s.executable
            && is_func
            && (!value.is_multiple_of(INSN_SIZE) || !size.is_multiple_of(INSN_SIZE))
        {
            return Err(bounds(
                s,
                format!(
                    "function `{name}` at {value:#x}, {size} bytes, is not made of whole {INSN_SIZE}-byte instructions"
                ),
            ));
        }
    }
    for section in file.sections() {
        let Some(s) = by_index(sections, section.index().0) else {
            continue;
        };
        for (offset, reloc) in section.relocations() {
            let width = u64::from(reloc.size()).div_ceil(8).max(1);
            if offset.checked_add(width).is_none_or(|end| end > s.size) {
                return Err(bounds(
                    s,
                    format!(
                        "a relocation at offset {offset:#x} lies past the section's {} bytes",
                        s.size
                    ),
                ));
            }
            if s.executable && !offset.is_multiple_of(INSN_SIZE) {
                return Err(bounds(
                    s,
                    format!("a relocation at offset {offset:#x} is not on an instruction boundary"),
                ));
            }
            if let RelocationTarget::Symbol(i) = reloc.target() {
                if file.symbol_by_index(i).is_err() {
                    return Err(bounds(
                        s,
                        format!(
                            "the relocation at offset {offset:#x} names symbol {}, which does not exist",
                            i.0
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
