//! `.BTF.ext`: the header, record counts, and CO-RE relocation records.

use serde::Serialize;

use super::{Btf, BtfError, Reader, detect_endianness};

/// One CO-RE relocation (`struct bpf_core_relo`). Strings are kept as offsets into the object's
/// `.BTF` string section (so hostile input cannot make us copy one long string per record); read
/// them with [`CoreRelo::section`] and [`CoreRelo::access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CoreRelo {
    /// Offset of the program section's name in the `.BTF` strings.
    pub section_off: u32,
    /// Byte offset of the instruction within that section.
    pub insn_off: u32,
    /// The root type (in the object's `.BTF`).
    pub type_id: u32,
    /// Offset of the access string (such as `0:1:0`) in the `.BTF` strings.
    pub access_off: u32,
    /// Relocation kind (`BPF_CORE_FIELD_BYTE_OFFSET` = 0, ...).
    pub kind: u32,
}

impl CoreRelo {
    /// The program section the instruction is in.
    pub fn section<'a>(&self, btf: &'a Btf) -> &'a str {
        btf.str_at(self.section_off)
    }

    /// The access string, such as `0:1:0`.
    pub fn access<'a>(&self, btf: &'a Btf) -> &'a str {
        btf.str_at(self.access_off)
    }
}

/// Parsed `.BTF.ext`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BtfExt {
    /// Number of `bpf_func_info` records.
    pub func_info_count: usize,
    /// Number of `bpf_line_info` records.
    pub line_info_count: usize,
    /// CO-RE relocations.
    pub core_relos: Vec<CoreRelo>,
}

const FUNC_INFO_MIN: usize = 8;
const LINE_INFO_MIN: usize = 16;
const CORE_RELO_MIN: usize = 16;

impl BtfExt {
    /// Parses a `.BTF.ext` blob; names are looked up in `btf` (the object's `.BTF`).
    pub fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt, BtfError> {
        let bad = |offset: usize, reason: String| BtfError::BadExt { offset, reason };
        let endianness = detect_endianness(data).map_err(|e| bad(0, e.to_string()))?;
        let r = Reader::new(data, endianness);
        let version = r.bytes(2, 1, ".BTF.ext version")?[0];
        if version != 1 {
            return Err(bad(2, format!("unsupported version {version}, expected 1")));
        }
        let hdr_len = r.u32(4, ".BTF.ext header length")? as usize;
        if !(24..=data.len()).contains(&hdr_len) {
            return Err(bad(
                4,
                format!(
                    "header length {hdr_len} is not between 24 and the blob's {} bytes",
                    data.len()
                ),
            ));
        }
        let mut ext = BtfExt::default();
        let sections: [(usize, usize, &str); 3] = [
            (8, FUNC_INFO_MIN, "func_info"),
            (16, LINE_INFO_MIN, "line_info"),
            (24, CORE_RELO_MIN, "core_relo"),
        ];
        for (field, min_rec, what) in sections {
            if field + 8 > hdr_len {
                continue; // older header without this section
            }
            let off = r.u32(field, "info offset")? as usize;
            let len = r.u32(field + 4, "info length")? as usize;
            if len == 0 {
                continue;
            }
            let start = hdr_len
                .checked_add(off)
                .filter(|s| s.checked_add(len).is_some_and(|e| e <= data.len()));
            let Some(start) = start else {
                return Err(bad(
                    field,
                    format!(
                        "{what} (offset {off:#x}, length {len:#x}) exceeds the blob's {} bytes",
                        data.len()
                    ),
                ));
            };
            let end = start + len;
            let rec_size = r.u32(start, "record size")? as usize;
            if rec_size < min_rec {
                return Err(bad(
                    start,
                    format!("{what} record size {rec_size} is less than {min_rec}"),
                ));
            }
            let mut pos = start + 4;
            while pos < end {
                let sec_off = r.u32(pos, "info section name")?;
                let num = r.u32(pos + 4, "info count")? as usize;
                pos += 8;
                let bytes = num
                    .checked_mul(rec_size)
                    .filter(|b| pos.checked_add(*b).is_some_and(|e| e <= end));
                let Some(bytes) = bytes else {
                    return Err(bad(
                        pos - 4,
                        format!("{what}: {num} records of {rec_size} bytes exceed the section"),
                    ));
                };
                match what {
                    "func_info" => ext.func_info_count += num,
                    "line_info" => ext.line_info_count += num,
                    _ => {
                        for i in 0..num {
                            let at = pos + i * rec_size;
                            let relo = CoreRelo {
                                section_off: sec_off,
                                insn_off: r.u32(at, "core_relo insn_off")?,
                                type_id: r.u32(at + 4, "core_relo type_id")?,
                                access_off: r.u32(at + 8, "core_relo access")?,
                                kind: r.u32(at + 12, "core_relo kind")?,
                            };
                            if btf.get(relo.type_id).is_none() {
                                return Err(bad(
                                    at + 4,
                                    format!(
                                        "core_relo refers to type id {}, which `.BTF` lacks",
                                        relo.type_id
                                    ),
                                ));
                            }
                            ext.core_relos.push(relo);
                        }
                    }
                }
                pos += bytes;
            }
        }
        Ok(ext)
    }
}
