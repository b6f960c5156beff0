//! Reading an ELF object's headers and symbols, and replacing its `.BTF`.
//!
//! The loader (libbpf) needs the object as the author built it; this module serves what is
//! ours around it: where each global lives (parameters, `<map>_max_entries`), and, at build
//! time, `ig-image`'s BTF rewrites ([`replace_btf`]). Nothing is rewritten in place in a way that
//! changes sizes: the new `.BTF` is written after the end of the file and only fixed-size header
//! fields change. This module is pure: bytes in, bytes out.

use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader as _, SectionHeader as _, Sym as _};

use crate::btf::raw::RawBtfError;

/// Why the object could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum FixupError {
    /// The ELF container is malformed.
    #[error("malformed ELF object: {reason}")]
    Elf {
        /// What is wrong.
        reason: String,
    },
    /// `.BTF` is malformed.
    #[error("malformed `.BTF`")]
    Btf {
        /// The parse error.
        #[source]
        source: RawBtfError,
    },
    /// A program section has a spelling no loader understands.
    #[error("program section `{section}` is not a program type this runtime can load")]
    UnsupportedSection {
        /// The section name.
        section: String,
    },
}

fn elf_err(reason: impl Into<String>) -> FixupError {
    FixupError::Elf {
        reason: reason.into(),
    }
}

/// One ELF section header, as far as this module needs it.
#[derive(Debug, Clone)]
pub struct Section {
    /// Index in the section header table.
    pub index: usize,
    /// Name.
    pub name: String,
    /// `sh_type`.
    pub sh_type: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
    /// File offset of this header.
    header_offset: usize,
}

/// One ELF symbol.
#[derive(Debug, Clone)]
pub struct Symbol {
    /// Name.
    pub name: String,
    /// `STT_*`.
    pub kind: u8,
    /// Section index (`st_shndx`).
    pub section: usize,
    /// `st_value`.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
}

/// `STT_FUNC`.
pub const STT_FUNC: u8 = elf::STT_FUNC;
/// `STT_OBJECT`.
pub const STT_OBJECT: u8 = elf::STT_OBJECT;

/// A parsed ELF64 object (headers only; the bytes stay with the caller).
#[derive(Debug, Clone)]
pub struct Elf {
    big: bool,
    /// Sections in header order.
    pub sections: Vec<Section>,
    /// Symbols of `.symtab`.
    pub symbols: Vec<Symbol>,
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

impl Elf {
    /// Parses the section headers and the symbol table of an ELF64 object (with the `object`
    /// crate's ELF reader, as the rest of this crate does).
    pub fn parse(d: &[u8]) -> Result<Elf, FixupError> {
        let read_err =
            |what: &'static str| move |e: object::read::Error| elf_err(format!("{what}: {e}"));
        let header = elf::FileHeader64::<Endianness>::parse(d).map_err(read_err("header"))?;
        let endian = header.endian().map_err(read_err("header"))?;
        let table = header
            .sections(endian, d)
            .map_err(read_err("section headers"))?;
        let first_header = usize::try_from(header.e_shoff(endian))
            .map_err(|_| elf_err("section headers run past the end of the file"))?;
        let sections = table
            .iter()
            .enumerate()
            .map(|(index, h)| Section {
                index,
                name: table.section_name(endian, h).map(lossy).unwrap_or_default(),
                sh_type: h.sh_type(endian),
                flags: h.sh_flags(endian),
                offset: h.sh_offset(endian),
                size: h.sh_size(endian),
                header_offset: first_header
                    + index * std::mem::size_of::<elf::SectionHeader64<Endianness>>(),
            })
            .collect();
        let symtab = table
            .symbols(endian, d, elf::SHT_SYMTAB)
            .map_err(read_err("symbol table"))?;
        let symbols = symtab
            .iter()
            .skip(1)
            .map(|sym| Symbol {
                name: symtab
                    .symbol_name(endian, sym)
                    .map(lossy)
                    .unwrap_or_default(),
                kind: sym.st_type(),
                section: usize::from(sym.st_shndx(endian)),
                value: sym.st_value(endian),
                size: sym.st_size(endian),
            })
            .collect();
        Ok(Elf {
            big: endian == Endianness::Big,
            sections,
            symbols,
        })
    }

    /// A section by name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// A section's bytes (`None` for `SHT_NOBITS` or out of range).
    pub fn data<'d>(&self, d: &'d [u8], s: &Section) -> Option<&'d [u8]> {
        if s.sh_type == elf::SHT_NOBITS {
            return None;
        }
        d.get(s.offset as usize..(s.offset as usize).checked_add(s.size as usize)?)
    }

    /// The initial bytes of a global variable (a data symbol), when its section has data.
    pub fn var_bytes<'d>(&self, d: &'d [u8], name: &str) -> Option<&'d [u8]> {
        let sym = self
            .symbols
            .iter()
            .find(|s| s.name == name && s.kind == STT_OBJECT)?;
        let sec = self.sections.get(sym.section)?;
        let data = self.data(d, sec)?;
        data.get(sym.value as usize..(sym.value + sym.size) as usize)
    }

    /// Whether the object is big-endian.
    pub fn is_big_endian(&self) -> bool {
        self.big
    }
}

/// Replaces an object's `.BTF` with `btf` (a whole blob, for example from
/// [`BtfBuilder::finish`]): the new bytes are written after the end of the file and only the
/// section header's offset and size change, so every other byte stays where it was. Meant for
/// rewrites that append types and keep every existing type id, so `.BTF.ext` stays valid.
pub fn replace_btf(data: &[u8], btf: &[u8]) -> Result<Vec<u8>, FixupError> {
    let elf = Elf::parse(data)?;
    let sec = elf
        .section(".BTF")
        .ok_or_else(|| elf_err("the object has no `.BTF` section"))?;
    let mut out = data.to_vec();
    relocate_section(&mut out, sec, btf, elf.big);
    Ok(out)
}

/// Writes `blob` after the end of `out` and points `sec`'s header at it.
fn relocate_section(out: &mut Vec<u8>, sec: &Section, blob: &[u8], big: bool) {
    let at = append_aligned(out, blob);
    put_u64(out, sec.header_offset + 24, at as u64, big);
    put_u64(out, sec.header_offset + 32, blob.len() as u64, big);
}

fn put_u64(out: &mut [u8], at: usize, v: u64, big: bool) {
    out[at..at + 8].copy_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

fn append_aligned(out: &mut Vec<u8>, blob: &[u8]) -> usize {
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let at = out.len();
    out.extend_from_slice(blob);
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        assert!(matches!(
            Elf::parse(b"not elf"),
            Err(FixupError::Elf { .. })
        ));
        assert!(replace_btf(b"\x7fELF\x02\x01", b"").is_err());
    }
}
