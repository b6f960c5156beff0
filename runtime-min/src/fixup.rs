//! Rewrites a gadget object so that aya can load it the way the Inspektor Gadget runtime does.
//!
//! Two gadget conventions need the object itself changed before aya parses it:
//!
//! - **Section spellings aya (like libbpf) rejects.** aya refuses the whole object when one
//!   program sits in a section it does not know (`socket1`, `tc`, `usdt/...`, `ksyscall/...`,
//!   `sk_skb` without a kind, ...). Such sections are renamed to a spelling of the same program
//!   type (`socket/ig_<n>`, `classifier/ig_<n>`, `uprobe/ig_<n>`, `kprobe/ig_<n>`), in the ELF
//!   section header string table *and* in `.BTF.ext` (whose function, line and CO-RE records are
//!   keyed by section name). The runtime keeps the original name for attaching.
//! - **Ring buffer to perf event array.** On a kernel without ring buffers a tracer's
//!   `BPF_MAP_TYPE_RINGBUF` map becomes a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` with 4-byte keys and
//!   values. The map's BTF definition is replaced by a new struct appended to `.BTF`.
//!
//! Nothing is rewritten in place in a way that changes sizes: new strings and types are appended,
//! the new `.BTF` and section-name table are written after the end of the file, and only
//! fixed-size header fields are changed. This module is pure: bytes in, bytes out.

use std::str::FromStr as _;

use crate::btf_raw::{BtfBuilder, RawBtf, RawBtfError, kind};

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
const MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;

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
    /// A ring buffer map could not be turned into a perf event array.
    #[error("cannot turn ring buffer `{map}` into a perf event array: {reason}")]
    PerfFallback {
        /// The map.
        map: String,
        /// Why.
        reason: String,
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
const SHF_EXECINSTR: u64 = 4;
/// `STT_FUNC`.
pub const STT_FUNC: u8 = 2;
/// `STT_OBJECT`.
pub const STT_OBJECT: u8 = 1;

/// A parsed ELF64 object (headers only; the bytes stay with the caller).
#[derive(Debug, Clone)]
pub struct Elf {
    big: bool,
    shstrndx: usize,
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
            shstrndx,
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

/// The program type a section spelling aya rejects should be loaded as, or `None` when aya
/// accepts it as it is.
fn aya_kind_for(section: &str) -> Result<Option<&'static str>, FixupError> {
    if aya_obj::ProgramSection::from_str(section).is_ok() {
        return Ok(None);
    }
    let prefix = section.split('/').next().unwrap_or(section);
    let kind = match prefix {
        p if p.starts_with("socket") => "socket",
        p if p.starts_with("perf_event") => "perf_event",
        "tc" | "tcx" | "tc.ingress" | "tc.egress" | "tcx.ingress" | "tcx.egress" => "classifier",
        p if p.starts_with("classifier") => "classifier",
        "usdt" | "uprobe.multi" | "uprobe.multi.s" | "usdt.s" => "uprobe",
        "uretprobe.multi" | "uretprobe.multi.s" => "uretprobe",
        "ksyscall" | "kprobe.multi" | "kprobe.session" => "kprobe",
        "kretsyscall" | "kretprobe.multi" => "kretprobe",
        "raw_tracepoint.w" | "raw_tp.w" => "raw_tp",
        p if p.starts_with("sk_skb") => "sk_skb/stream_verdict",
        p if p.starts_with("sk_msg") => "sk_msg",
        p if p.starts_with("sockops") => "sockops",
        _ => {
            return Err(FixupError::UnsupportedSection {
                section: section.to_string(),
            });
        }
    };
    Ok(Some(kind))
}

/// What to change.
#[derive(Debug, Clone, Default)]
pub struct FixupPlan {
    /// Ring buffer maps to turn into perf event arrays.
    pub perf_maps: Vec<String>,
}

/// The prepared object.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Bytes to give aya (the input itself when nothing changed).
    pub bytes: Vec<u8>,
    /// `(original section, new section)` for each renamed section.
    pub renamed: Vec<(String, String)>,
    /// Maps turned into perf event arrays.
    pub perf_maps: Vec<String>,
}

/// Applies the section renames aya needs and the plan's map changes.
pub fn prepare(data: &[u8], plan: &FixupPlan) -> Result<Prepared, FixupError> {
    let elf = Elf::parse(data)?;
    let mut renames: Vec<(usize, String, String)> = Vec::new();
    for s in &elf.sections {
        if s.flags & SHF_EXECINSTR == 0 || s.size == 0 || s.name.starts_with(".text") {
            continue;
        }
        if let Some(kind) = aya_kind_for(&s.name)? {
            renames.push((s.index, s.name.clone(), format!("{kind}/ig_{}", s.index)));
        }
    }
    if renames.is_empty() && plan.perf_maps.is_empty() {
        return Ok(Prepared {
            bytes: data.to_vec(),
            renamed: Vec::new(),
            perf_maps: Vec::new(),
        });
    }

    let btf_sec = elf.section(".BTF").cloned();
    let btf_bytes = btf_sec.as_ref().and_then(|s| elf.data(data, s));
    let raw = btf_bytes
        .map(RawBtf::parse)
        .transpose()
        .map_err(|source| FixupError::Btf { source })?;
    let mut builder = raw.as_ref().map(BtfBuilder::new);
    let mut out = data.to_vec();

    // .BTF.ext records keyed by the renamed sections point at new strings.
    if let (Some(raw), Some(builder), Some(ext)) = (&raw, &mut builder, elf.section(".BTF.ext")) {
        for (_, old, new) in &renames {
            let new_off = builder.add_string(new);
            for at in btf_ext_sec_name_offsets(data, ext, raw)? {
                if raw.str_at(rd_u32(data, at, elf.big)?) == old.as_str() {
                    put_u32(&mut out, at, new_off, elf.big);
                }
            }
        }
    }

    let mut perf_maps = Vec::new();
    for map in &plan.perf_maps {
        let (Some(raw), Some(builder)) = (&raw, &mut builder) else {
            return Err(FixupError::PerfFallback {
                map: map.clone(),
                reason: "the object has no `.BTF`".into(),
            });
        };
        to_perf_event_array(raw, builder, map)?;
        perf_maps.push(map.clone());
    }

    // New .BTF after the end of the file.
    if let (Some(sec), Some(builder)) = (&btf_sec, &builder) {
        relocate_section(&mut out, sec, &builder.finish(), elf.big);
    }

    // New section-name table with the new names appended.
    if !renames.is_empty() {
        let shstr = &elf.sections[elf.shstrndx];
        let mut table = elf
            .data(data, shstr)
            .ok_or_else(|| elf_err("section name table has no data"))?
            .to_vec();
        let mut name_offsets = Vec::new();
        for (index, _, new) in &renames {
            name_offsets.push((*index, table.len() as u32));
            table.extend_from_slice(new.as_bytes());
            table.push(0);
        }
        let at = append_aligned(&mut out, &table);
        put_u64(&mut out, shstr.header_offset + 24, at as u64, elf.big);
        put_u64(
            &mut out,
            shstr.header_offset + 32,
            table.len() as u64,
            elf.big,
        );
        for (index, off) in name_offsets {
            put_u32(&mut out, elf.sections[index].header_offset, off, elf.big);
        }
    }

    Ok(Prepared {
        bytes: out,
        renamed: renames
            .into_iter()
            .map(|(_, old, new)| (old, new))
            .collect(),
        perf_maps,
    })
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

fn put_u32(out: &mut [u8], at: usize, v: u32, big: bool) {
    out[at..at + 4].copy_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
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

/// File offsets of every `sec_name_off` field in `.BTF.ext` (function, line and CO-RE records).
fn btf_ext_sec_name_offsets(
    d: &[u8],
    ext: &Section,
    raw: &RawBtf<'_>,
) -> Result<Vec<usize>, FixupError> {
    let big = raw.is_big_endian();
    let base = ext.offset as usize;
    let len = ext.size as usize;
    if base.checked_add(len).is_none_or(|e| e > d.len()) || len < 24 {
        return Err(elf_err("`.BTF.ext` runs past the end of the file"));
    }
    let hdr_len = rd_u32(d, base + 4, big)? as usize;
    let mut subsections = vec![
        (
            rd_u32(d, base + 8, big)? as usize,
            rd_u32(d, base + 12, big)? as usize,
        ),
        (
            rd_u32(d, base + 16, big)? as usize,
            rd_u32(d, base + 20, big)? as usize,
        ),
    ];
    if hdr_len >= 32 {
        subsections.push((
            rd_u32(d, base + 24, big)? as usize,
            rd_u32(d, base + 28, big)? as usize,
        ));
    }
    let mut out = Vec::new();
    for (off, sub_len) in subsections {
        if sub_len == 0 {
            continue;
        }
        let start = base + hdr_len + off;
        let end = start + sub_len;
        if end > base + len {
            return Err(elf_err("`.BTF.ext` subsection runs past the section"));
        }
        let rec_size = rd_u32(d, start, big)? as usize;
        if rec_size == 0 {
            return Err(elf_err("`.BTF.ext` record size 0"));
        }
        let mut at = start + 4;
        while at + 8 <= end {
            out.push(at);
            let n = rd_u32(d, at + 4, big)? as usize;
            at = n
                .checked_mul(rec_size)
                .and_then(|b| b.checked_add(at + 8))
                .ok_or_else(|| elf_err("overflow"))?;
        }
    }
    Ok(out)
}

/// Replaces the BTF map definition of `map` with `{ type = PERF_EVENT_ARRAY, key_size = 4,
/// value_size = 4 }` (max_entries left out: the loader then uses the number of CPUs).
fn to_perf_event_array(
    raw: &RawBtf<'_>,
    builder: &mut BtfBuilder,
    map: &str,
) -> Result<(), FixupError> {
    let fail = |reason: &str| FixupError::PerfFallback {
        map: map.to_string(),
        reason: reason.to_string(),
    };
    let var = raw
        .find(map, kind::VAR)
        .ok_or_else(|| fail("no BTF variable of that name"))?;
    let (struct_id, var_type_field) = raw.var_type(var).ok_or_else(|| fail("not a variable"))?;
    let def = raw.skip_mods(struct_id);
    let def_rec = raw
        .get(def)
        .filter(|t| t.kind == kind::STRUCT)
        .ok_or_else(|| fail("definition is not a struct"))?;
    let size = def_rec.size_or_type;
    if size < 8 {
        return Err(fail("definition is smaller than one member"));
    }
    let int = match raw.find("int", kind::INT) {
        Some(id) => id,
        None => {
            let name = builder.add_string("int");
            builder.add_type(name, kind::INT, 0, 4, &[(1 << 24) | 32])
        }
    };
    // int[4]: `__uint(x, 4)` is `int (*x)[4]`.
    let array = builder.add_type(0, kind::ARRAY, 0, 0, &[int, int, MAP_TYPE_PERF_EVENT_ARRAY]);
    let ptr = builder.add_type(0, kind::PTR, 0, array, &[]);
    let names = ["type", "key_size", "value_size"].map(|n| builder.add_string(n));
    // All three values are 4 and share one pointer type; members overlap at offset 0, which BTF
    // allows (offsets must only be non-decreasing and inside the struct).
    let mut words = Vec::new();
    for n in names {
        words.extend_from_slice(&[n, ptr, 0]);
    }
    let new_def = builder.add_type(0, kind::STRUCT, 3, size, &words);
    if !builder.patch_type_u32(raw, var_type_field, new_def) {
        return Err(fail("variable record out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_spellings() {
        assert_eq!(
            aya_kind_for("tracepoint/sched/sched_process_exec").unwrap(),
            None
        );
        assert_eq!(
            aya_kind_for("kprobe/gadget_program_disabled").unwrap(),
            None
        );
        assert_eq!(aya_kind_for("socket1").unwrap(), Some("socket"));
        assert_eq!(aya_kind_for("tc").unwrap(), Some("classifier"));
        assert_eq!(aya_kind_for("classifier/ingress/drop").unwrap(), None);
        assert_eq!(aya_kind_for("usdt/libc:setjmp").unwrap(), Some("uprobe"));
        assert_eq!(aya_kind_for("ksyscall/execve").unwrap(), Some("kprobe"));
        assert_eq!(aya_kind_for("perf_event/1").unwrap(), None);
        assert_eq!(aya_kind_for("perf_event1").unwrap(), Some("perf_event"));
        assert_eq!(
            aya_kind_for("sk_skb").unwrap(),
            Some("sk_skb/stream_verdict")
        );
        assert!(matches!(
            aya_kind_for("struct_ops/x"),
            Err(FixupError::UnsupportedSection { .. })
        ));
    }

    #[test]
    fn rejects_non_elf() {
        assert!(matches!(
            Elf::parse(b"not elf"),
            Err(FixupError::Elf { .. })
        ));
        assert!(prepare(b"\x7fELF\x02\x01", &FixupPlan::default()).is_err());
    }
}
