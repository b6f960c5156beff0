//! Turns the string fields of a Rust eBPF object into C `char` arrays in its `.BTF`, so every
//! runtime (ours and upstream `ig`) shows them as text. Pure: object bytes in, object bytes out;
//! no files, no tools.
//!
//! Rust has no C `char`: a `[u8; 16]` reaches BTF as `ARRAY(INT "u8", unsigned)`, which runtimes
//! rightly print as numbers (a byte array is not always text). Gadget authors mark text with
//! `gadget_sdk::GadgetString<N>`, a `#[repr(transparent)]` wrapper over `[u8; N]`, whose BTF
//! (after bpf-linker) is
//!
//! ```text
//! [53] STRUCT 'GadgetString_3C_16_3E_' size=16 vlen=1      ("GadgetString<16>", sanitized)
//!         '__0' type_id=54 bits_offset=0
//! [54] ARRAY '(anon)' type_id=36 index_type_id=4 nr_elems=16   ([36] INT 'u8' size=1)
//! ```
//!
//! [`rewrite`] repoints every struct or union member whose type (through typedefs and
//! qualifiers) is such a marker struct (named `GadgetString`, optionally followed by its generic
//! arguments, with exactly one member at offset 0: an array of a 1-byte integer filling the
//! struct) to a new `ARRAY(INT "char" size 1 signed, index = a 4-byte unsigned INT, N)`, which is
//! what clang emits for `char comm[16]` and what upstream `ig` turns into a string (`type:char`
//! and a signed 1-byte element). Layout and sizes do not change. New types are appended, so no
//! existing type id changes and `.BTF.ext` stays valid; the marker structs stay in `.BTF`,
//! unreferenced by the rewritten members.
//!
//! Objects whose `.BTF` does not contain the marker name are returned unchanged (`None`), without
//! even parsing the BTF. The output depends only on the input bytes.

use std::collections::BTreeMap;

use gadget_object::btf::raw::{BtfBuilder, RawBtf, kind};
use gadget_object::elf_patch::{self, Elf, FixupError};

/// The name (before generic arguments) of `gadget_sdk::GadgetString`.
pub const MARKER: &str = "GadgetString";

/// BTF `INT` encoding word for C `char`: signed, offset 0, 8 bits.
const CHAR_ENCODING: u32 = (1 << 24) | 8;
/// BTF `INT` encoding word for a 32-bit unsigned integer (the array index type).
const U32_ENCODING: u32 = 32;

/// What [`rewrite`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The new object.
    pub bytes: Vec<u8>,
    /// Members repointed, as `struct.member` (in type id order).
    pub fields: Vec<String>,
}

/// The `.BTF` of an object rewritten so that `GadgetString<N>` members are `char[N]`, or `None`
/// when the object has no such member (then it must be used as it is).
pub fn rewrite(object: &[u8]) -> Result<Option<Rewritten>, FixupError> {
    let elf = Elf::parse(object)?;
    let Some(blob) = elf.section(".BTF").and_then(|s| elf.data(object, s)) else {
        return Ok(None);
    };
    if !contains(blob, MARKER.as_bytes()) {
        return Ok(None);
    }
    let raw = RawBtf::parse(blob).map_err(|source| FixupError::Btf { source })?;
    let Some((new_blob, fields)) = rewrite_btf(&raw) else {
        return Ok(None);
    };
    let bytes = elf_patch::replace_btf(object, &new_blob)?;
    Ok(Some(Rewritten { bytes, fields }))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether a BTF name is the marker's: `GadgetString`, maybe followed by its generic arguments
/// as rustc writes them (`<16>`) or as bpf-linker sanitizes them (`_3C_16_3E_`).
fn is_marker_name(name: &str) -> bool {
    name.strip_prefix(MARKER)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('<') || rest.starts_with("_3C_"))
}

/// `N` when type `id` is a marker struct of the expected shape.
fn marker_len(raw: &RawBtf<'_>, id: u32) -> Option<u32> {
    let t = raw.get(id)?;
    if t.kind != kind::STRUCT || t.vlen != 1 || !is_marker_name(raw.str_at(t.name_off)) {
        return None;
    }
    let [member] = raw.members(id)[..] else {
        return None;
    };
    // Offset 0 and no bitfield size, whatever the struct's kind_flag.
    if raw.u32_at(member.offset + 8)? != 0 {
        return None;
    }
    let (elem, nelems, _) = raw.array(raw.skip_mods(member.type_id))?;
    let elem = raw.get(raw.skip_mods(elem))?;
    if elem.kind != kind::INT || elem.size_or_type != 1 || nelems != t.size_or_type {
        return None;
    }
    // A plain 8-bit integer (not bool, no bit offset).
    let encoding = raw.u32_at(elem.offset + 12)?;
    (encoding & 0x00ff_ffff == 8 && (encoding >> 24) & 0x4 == 0).then_some(nelems)
}

/// An existing `INT` of `size` bytes with exactly this encoding word, preferring `name`.
fn find_int(raw: &RawBtf<'_>, name: &str, size: u32, encoding: u32) -> Option<u32> {
    let fits = |id: u32| {
        raw.get(id).is_some_and(|t| {
            t.kind == kind::INT
                && t.size_or_type == size
                && raw.u32_at(t.offset + 12) == Some(encoding)
        })
    };
    raw.find_all(name, kind::INT)
        .find(|&id| fits(id))
        .or_else(|| (1..=raw.len() as u32).find(|&id| fits(id)))
}

/// The new blob and the members repointed, or `None` when no member has a marker type.
fn rewrite_btf(raw: &RawBtf<'_>) -> Option<(Vec<u8>, Vec<String>)> {
    let ids = 1..=u32::try_from(raw.len()).ok()?;
    let markers: BTreeMap<u32, u32> = ids
        .clone()
        .filter_map(|id| Some((id, marker_len(raw, id)?)))
        .collect();
    if markers.is_empty() {
        return None;
    }
    // (blob offset of the member's type field, N, "struct.member")
    let mut patches = Vec::new();
    for id in ids {
        let Some(t) = raw.get(id) else { continue };
        if t.kind != kind::STRUCT && t.kind != kind::UNION {
            continue;
        }
        for m in raw.members(id) {
            let Some(&n) = markers.get(&raw.skip_mods(m.type_id)) else {
                continue;
            };
            // A bitfield cannot be an array: leave such (malformed) members alone.
            if t.kind_flag && raw.u32_at(m.offset + 8).is_none_or(|w| w >> 24 != 0) {
                continue;
            }
            let name = format!("{}.{}", raw.str_at(t.name_off), raw.str_at(m.name_off));
            patches.push((m.offset + 4, n, name));
        }
    }
    if patches.is_empty() {
        return None;
    }

    let mut b = BtfBuilder::new(raw);
    let char_id = find_int(raw, "char", 1, CHAR_ENCODING).unwrap_or_else(|| {
        let name = b.add_string("char");
        b.add_type(name, kind::INT, 0, 1, &[CHAR_ENCODING])
    });
    let index_id = find_int(raw, "__ARRAY_SIZE_TYPE__", 4, U32_ENCODING).unwrap_or_else(|| {
        let name = b.add_string("__ARRAY_SIZE_TYPE__");
        b.add_type(name, kind::INT, 0, 4, &[U32_ENCODING])
    });
    let mut arrays: BTreeMap<u32, u32> = BTreeMap::new();
    let mut fields = Vec::with_capacity(patches.len());
    for (at, n, name) in patches {
        let array = *arrays
            .entry(n)
            .or_insert_with(|| b.add_type(0, kind::ARRAY, 0, 0, &[char_id, index_id, n]));
        if !b.patch_type_u32(raw, at, array) {
            return None;
        }
        fields.push(name);
    }
    Some((b.finish(), fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gadget_object::btf::{Btf, FieldKind};

    fn w(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }

    /// BTF as bpf-linker writes it for
    /// `struct event { u32 pid; GadgetString<16> comm; [u8; 4] raw; GadgetString<16> other }`:
    /// [1] INT u8, [2] INT __ARRAY_SIZE_TYPE__, [3] INT u32, [4] ARRAY u8[16],
    /// [5] STRUCT GadgetString_3C_16_3E_ { __0: [4] }, [6] ARRAY u8[4],
    /// [7] STRUCT event { pid: [3], comm: [5], raw: [6], other: [8] }, [8] CONST -> [5].
    fn linker_btf(marker: &str) -> Vec<u8> {
        let mut strings = b"\0u8\0__ARRAY_SIZE_TYPE__\0u32\0".to_vec();
        let mut name = |s: &str| {
            let at = strings.len() as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            at
        };
        let (marker_name, zero, event, pid, comm, raw_n, other) = (
            name(marker),
            name("__0"),
            name("event"),
            name("pid"),
            name("comm"),
            name("raw"),
            name("other"),
        );
        let mut t = Vec::new();
        for x in [1, kind::INT << 24, 1, 8] {
            w(&mut t, x);
        }
        for x in [4, kind::INT << 24, 4, 32] {
            w(&mut t, x);
        }
        for x in [24, kind::INT << 24, 4, 32] {
            w(&mut t, x);
        }
        for x in [0, kind::ARRAY << 24, 0, 1, 2, 16] {
            w(&mut t, x);
        }
        for x in [marker_name, (kind::STRUCT << 24) | 1, 16, zero, 4, 0] {
            w(&mut t, x);
        }
        for x in [0, kind::ARRAY << 24, 0, 1, 2, 4] {
            w(&mut t, x);
        }
        for x in [
            event,
            (kind::STRUCT << 24) | 4,
            40,
            pid,
            3,
            0,
            comm,
            5,
            32,
            raw_n,
            6,
            160,
            other,
            8,
            192,
        ] {
            w(&mut t, x);
        }
        for x in [0, kind::CONST << 24, 5] {
            w(&mut t, x);
        }
        let mut blob = vec![0x9f, 0xeb, 1, 0];
        for x in [24, 0, t.len() as u32, t.len() as u32, strings.len() as u32] {
            w(&mut blob, x);
        }
        blob.extend_from_slice(&t);
        blob.extend_from_slice(&strings);
        blob
    }

    /// A minimal ELF64 relocatable object: sections null, `.shstrtab`, `.text`, `.BTF`.
    fn object(btf: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.shstrtab\0.text\0.BTF\0";
        let text = [0x95u8, 0, 0, 0, 0, 0, 0, 0]; // exit
        let mut d = vec![0u8; 64];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = 2; // ELF64
        d[5] = 1; // little-endian
        d[6] = 1;
        d[16] = 1; // ET_REL
        d[18] = 247; // EM_BPF
        let put_sections = |d: &mut Vec<u8>, bytes: &[u8]| {
            let at = d.len();
            d.extend_from_slice(bytes);
            while !d.len().is_multiple_of(8) {
                d.push(0);
            }
            at
        };
        let str_at = put_sections(&mut d, shstrtab);
        let text_at = put_sections(&mut d, &text);
        let btf_at = put_sections(&mut d, btf);
        let shoff = d.len();
        let mut sh = |name: u32, ty: u32, flags: u64, off: usize, size: usize| {
            let mut h = Vec::new();
            w(&mut h, name);
            w(&mut h, ty);
            h.extend_from_slice(&flags.to_le_bytes());
            h.extend_from_slice(&0u64.to_le_bytes());
            h.extend_from_slice(&(off as u64).to_le_bytes());
            h.extend_from_slice(&(size as u64).to_le_bytes());
            h.extend_from_slice(&[0; 8]);
            h.extend_from_slice(&8u64.to_le_bytes());
            h.extend_from_slice(&0u64.to_le_bytes());
            d.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0, 0);
        sh(1, 3, 0, str_at, shstrtab.len());
        sh(11, 1, 6, text_at, text.len());
        sh(17, 1, 0, btf_at, btf.len());
        d[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        d[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
        d[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        d[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes());
        d[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        d
    }

    fn btf_of(object: &[u8]) -> Vec<u8> {
        let elf = Elf::parse(object).unwrap();
        elf.data(object, elf.section(".BTF").unwrap())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn marker_members_become_char_arrays() {
        let input = object(&linker_btf("GadgetString_3C_16_3E_"));
        let out = rewrite(&input).unwrap().expect("rewritten");
        assert_eq!(out.fields, ["event.comm", "event.other"]);
        let new_btf = btf_of(&out.bytes);
        let raw = RawBtf::parse(&new_btf).unwrap();
        // char, and one array shared by both members; the u32 index type is reused.
        assert_eq!(raw.len(), 8 + 2);
        assert_eq!(raw.name(9), "char");
        assert_eq!(raw.array(10).map(|(e, n, _)| (e, n)), Some((9, 16)));
        let members = raw.members(7);
        let types: Vec<u32> = members.iter().map(|m| m.type_id).collect();
        assert_eq!(types, [3, 10, 6, 10], "only the marker members move");
        let offsets: Vec<u32> = members.iter().map(|m| m.bit_offset).collect();
        assert_eq!(offsets, [0, 32, 160, 192], "layout unchanged");
        // Existing records are byte-identical (ids and .BTF.ext stay valid) but for the two
        // member type fields.
        let old_btf = btf_of(&input);
        let old = RawBtf::parse(&old_btf).unwrap();
        let end = old.get(8).unwrap().offset + 12;
        let changed: Vec<usize> = (24..end)
            .step_by(4)
            .filter(|&i| old_btf[i..i + 4] != new_btf[i..i + 4])
            .collect();
        let comm = members[1].offset + 4;
        let other = members[3].offset + 4;
        assert_eq!(changed, [comm, other]);

        // What runtimes decode: strings, and the genuine byte array stays an array.
        let btf = Btf::parse(&new_btf).unwrap();
        assert_eq!(btf.field_kind(10), FieldKind::String { len: 16 });
        assert!(matches!(btf.field_kind(6), FieldKind::Array { len: 4, .. }));
        assert_eq!(btf.size_of(7), Some(40));
    }

    #[test]
    fn rewrite_is_deterministic_and_the_rest_of_the_object_stays() {
        let input = object(&linker_btf("GadgetString_3C_16_3E_"));
        let a = rewrite(&input).unwrap().unwrap();
        let b = rewrite(&input).unwrap().unwrap();
        assert_eq!(a, b);
        // Only the `.BTF` section header's offset and size change; the new blob is appended.
        let shoff = input.len() - 4 * 64;
        let btf_header = shoff + 3 * 64;
        let changed: Vec<usize> = (0..input.len())
            .filter(|&i| input[i] != a.bytes[i])
            .collect();
        assert!(!changed.is_empty());
        assert!(
            changed
                .iter()
                .all(|&i| (btf_header + 24..btf_header + 40).contains(&i)),
            "{changed:?}"
        );
        let elf = Elf::parse(&a.bytes).unwrap();
        assert_eq!(
            elf.data(&a.bytes, elf.section(".text").unwrap()),
            Some(&[0x95u8, 0, 0, 0, 0, 0, 0, 0][..])
        );
        // Rewriting the result again changes nothing more.
        assert!(rewrite(&a.bytes).unwrap().is_none());
    }

    #[test]
    fn objects_without_the_marker_are_left_alone() {
        for name in ["Bytes_3C_16_3E_", "GadgetStringy", "GadgetStrin"] {
            let input = object(&linker_btf(name));
            assert!(rewrite(&input).unwrap().is_none(), "{name}");
        }
        assert!(is_marker_name("GadgetString"));
        assert!(is_marker_name("GadgetString<16>"));
        assert!(!is_marker_name("GadgetString_16"));
    }

    #[test]
    fn hostile_input_is_an_error_or_nothing_never_a_panic() {
        let input = object(&linker_btf("GadgetString_3C_16_3E_"));
        for len in 0..input.len() {
            let _ = rewrite(&input[..len]);
        }
        let btf = linker_btf("GadgetString_3C_16_3E_");
        for i in 0..btf.len() {
            for v in [0u8, 0xff, 0x7f] {
                let mut bad = btf.clone();
                bad[i] = v;
                let _ = rewrite(&object(&bad));
            }
        }
        assert!(rewrite(b"not an object").is_err());
    }
}
