//! Reading an ELF object's headers and symbols, and replacing its `.BTF`.
//!
//! The loader (libbpf) needs the object as the author built it; this module serves what is
//! ours around it: where each global lives (parameters, `<map>_max_entries`), and, at build
//! time, `ig-image`'s BTF rewrites ([`replace_btf`]). Nothing is rewritten in place in a way that
//! changes sizes: the new `.BTF` is written after the end of the file and only fixed-size header
//! fields change. This module is pure: bytes in, bytes out.

use crate::btf_raw::RawBtfError;

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

const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
/// `STT_FUNC`.
pub const STT_FUNC: u8 = 2;
/// `STT_OBJECT`.
pub const STT_OBJECT: u8 = 1;

/// A parsed ELF64 object (headers only; the bytes stay with the caller).
#[derive(Debug, Clone)]
pub struct Elf {
    big: bool,
    /// Sections in header order.
    pub sections: Vec<Section>,
    /// Symbols of `.symtab`.
    pub symbols: Vec<Symbol>,
}

fn rd_u16(d: &[u8], off: usize, big: bool) -> Result<u16, FixupError> {
    let b = d
        .get(off..off + 2)
        .ok_or_else(|| elf_err(format!("truncated at {off:#x}")))?;
    Ok(if big {
        u16::from_be_bytes([b[0], b[1]])
    } else {
        u16::from_le_bytes([b[0], b[1]])
    })
}

fn rd_u32(d: &[u8], off: usize, big: bool) -> Result<u32, FixupError> {
    let b = d
        .get(off..off + 4)
        .ok_or_else(|| elf_err(format!("truncated at {off:#x}")))?;
    let a = [b[0], b[1], b[2], b[3]];
    Ok(if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

fn rd_u64(d: &[u8], off: usize, big: bool) -> Result<u64, FixupError> {
    let b = d
        .get(off..off + 8)
        .ok_or_else(|| elf_err(format!("truncated at {off:#x}")))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(if big {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    })
}

fn cstr(d: &[u8], off: usize) -> String {
    let Some(rest) = d.get(off..) else {
        return String::new();
    };
    let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..len]).into_owned()
}

impl Elf {
    /// Parses the section headers and the symbol table of an ELF64 object.
    pub fn parse(d: &[u8]) -> Result<Elf, FixupError> {
        if d.get(0..4) != Some(b"\x7fELF") {
            return Err(elf_err("not an ELF file"));
        }
        if d.get(4) != Some(&2) {
            return Err(elf_err("not ELF64"));
        }
        let big = match d.get(5) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(elf_err("bad byte order in e_ident")),
        };
        let shoff = rd_u64(d, 0x28, big)? as usize;
        let shentsize = rd_u16(d, 0x3a, big)? as usize;
        let shnum = rd_u16(d, 0x3c, big)? as usize;
        let shstrndx = rd_u16(d, 0x3e, big)? as usize;
        if shentsize != 64 {
            return Err(elf_err(format!(
                "section header size {shentsize}, expected 64"
            )));
        }
        if shoff
            .checked_add(shnum * 64)
            .is_none_or(|end| end > d.len())
        {
            return Err(elf_err("section headers run past the end of the file"));
        }
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let h = shoff + i * 64;
            raw.push((
                rd_u32(d, h, big)?,
                rd_u32(d, h + 4, big)?,
                rd_u64(d, h + 8, big)?,
                rd_u64(d, h + 24, big)?,
                rd_u64(d, h + 32, big)?,
                rd_u32(d, h + 40, big)?,
                h,
            ));
        }
        let strtab = raw
            .get(shstrndx)
            .ok_or_else(|| elf_err("e_shstrndx out of range"))?;
        let (str_off, str_size) = (strtab.3 as usize, strtab.4 as usize);
        let strs = d
            .get(str_off..str_off.saturating_add(str_size))
            .ok_or_else(|| elf_err("section name table runs past the end of the file"))?;
        let sections: Vec<Section> = raw
            .iter()
            .enumerate()
            .map(
                |(index, &(name, sh_type, flags, offset, size, _, header_offset))| Section {
                    index,
                    name: cstr(strs, name as usize),
                    sh_type,
                    flags,
                    offset,
                    size,
                    header_offset,
                },
            )
            .collect();
        let mut symbols = Vec::new();
        if let Some((i, _)) = raw.iter().enumerate().find(|(_, r)| r.1 == SHT_SYMTAB) {
            let (_, _, _, off, size, link, _) = raw[i];
            let names = raw
                .get(link as usize)
                .ok_or_else(|| elf_err("symbol string table index out of range"))?;
            let names = d
                .get(names.3 as usize..(names.3 + names.4) as usize)
                .ok_or_else(|| elf_err("symbol string table runs past the end of the file"))?;
            let (off, size) = (off as usize, size as usize);
            if off.checked_add(size).is_none_or(|end| end > d.len()) {
                return Err(elf_err("symbol table runs past the end of the file"));
            }
            for s in (off..off + size).step_by(24).skip(1) {
                if s + 24 > off + size {
                    break;
                }
                symbols.push(Symbol {
                    name: cstr(names, rd_u32(d, s, big)? as usize),
                    kind: d[s + 4] & 0xf,
                    section: rd_u16(d, s + 6, big)? as usize,
                    value: rd_u64(d, s + 8, big)?,
                    size: rd_u64(d, s + 16, big)?,
                });
            }
        }
        Ok(Elf {
            big,
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
        if s.sh_type == SHT_NOBITS {
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
