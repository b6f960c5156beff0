//! A zero-copy view of raw BTF (an object's `.BTF` or a kernel's `/sys/kernel/btf/vmlinux`), and a
//! way to append types and strings to it.
//!
//! `gadget_object::Btf` is the rich, owned model used to decode records. This module is the
//! other half: it keeps the blob as bytes and only indexes where each type record starts, so it
//! can scan a kernel's 5 MB BTF in a few milliseconds (to check that an enum value exists, or to
//! explain a failed CO-RE relocation) and can patch an object's BTF in place (the ring buffer to
//! perf event array fallback rewrites a map definition). It never panics on hostile input: every
//! read is bounds-checked and a malformed blob is an error.

use std::fmt;

mod minimize;

/// BTF kinds (`BTF_KIND_*`), defined in `gadget_facts::btf`.
pub use gadget_facts::btf::kind;

/// Raw BTF that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed BTF at offset {offset:#x}: {reason}")]
pub struct RawBtfError {
    /// Byte offset within the blob.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

fn bad(offset: usize, reason: impl Into<String>) -> RawBtfError {
    RawBtfError {
        offset,
        reason: reason.into(),
    }
}

/// `v` in the blob's byte order.
fn encode(big: bool, v: u32) -> [u8; 4] {
    if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// Little- or big-endian u32 reader over a blob.
#[derive(Clone, Copy)]
struct Rd<'a> {
    data: &'a [u8],
    big: bool,
}

impl Rd<'_> {
    fn u32(&self, off: usize) -> Result<u32, RawBtfError> {
        let b = self
            .data
            .get(
                off..off
                    .checked_add(4)
                    .ok_or_else(|| bad(off, "offset overflow"))?,
            )
            .ok_or_else(|| bad(off, "truncated"))?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
}

/// One type record's location and header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRec {
    /// Offset of the record's 12-byte header within the blob.
    pub offset: usize,
    /// `name_off`.
    pub name_off: u32,
    /// `BTF_KIND_*`.
    pub kind: u32,
    /// `vlen`.
    pub vlen: u32,
    /// `kind_flag`.
    pub kind_flag: bool,
    /// `size` or `type` (a union in the header).
    pub size_or_type: u32,
}

/// A member of a struct or union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMember {
    /// Offset of the 12-byte member record within the blob.
    pub offset: usize,
    /// `name_off`.
    pub name_off: u32,
    /// Member type id.
    pub type_id: u32,
    /// Bit offset (the low 24 bits when the struct's `kind_flag` is set).
    pub bit_offset: u32,
}

/// A zero-copy index over a BTF blob.
pub struct RawBtf<'a> {
    data: &'a [u8],
    big: bool,
    hdr_len: usize,
    type_off: usize,
    type_len: usize,
    str_off: usize,
    str_len: usize,
    /// `types[id - 1]` is type `id` (id 0 is `void`).
    types: Vec<TypeRec>,
}

impl fmt::Debug for RawBtf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawBtf")
            .field("types", &self.types.len())
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Bytes of a record's trailing data for a kind with `vlen` entries.
fn trailing_len(kind: u32, vlen: u32) -> Option<usize> {
    let vlen = vlen as usize;
    Some(match kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => vlen * 12,
        kind::ENUM | kind::FUNC_PROTO => vlen * 8,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        _ => return None,
    })
}

impl<'a> RawBtf<'a> {
    /// Indexes a BTF blob (either byte order).
    pub fn parse(data: &'a [u8]) -> Result<RawBtf<'a>, RawBtfError> {
        let big = match data.get(0..2) {
            Some([0x9f, 0xeb]) => false,
            Some([0xeb, 0x9f]) => true,
            _ => return Err(bad(0, "bad magic (expected 0xeb9f)")),
        };
        let r = Rd { data, big };
        let hdr_len = r.u32(4)? as usize;
        let type_off = r.u32(8)? as usize;
        let type_len = r.u32(12)? as usize;
        let str_off = r.u32(16)? as usize;
        let str_len = r.u32(20)? as usize;
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(bad(4, format!("header length {hdr_len}")));
        }
        let types_start = hdr_len
            .checked_add(type_off)
            .ok_or_else(|| bad(8, "overflow"))?;
        let types_end = types_start
            .checked_add(type_len)
            .ok_or_else(|| bad(12, "overflow"))?;
        let strs_start = hdr_len
            .checked_add(str_off)
            .ok_or_else(|| bad(16, "overflow"))?;
        let strs_end = strs_start
            .checked_add(str_len)
            .ok_or_else(|| bad(20, "overflow"))?;
        if types_end > data.len() || strs_end > data.len() {
            return Err(bad(0, "sections run past the end of the blob"));
        }
        let mut types = Vec::with_capacity(type_len / 16);
        let mut off = types_start;
        while off < types_end {
            if off + 12 > types_end {
                return Err(bad(off, "truncated type header"));
            }
            let name_off = r.u32(off)?;
            let info = r.u32(off + 4)?;
            let size_or_type = r.u32(off + 8)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let trailing =
                trailing_len(kind, vlen).ok_or_else(|| bad(off, format!("unknown kind {kind}")))?;
            types.push(TypeRec {
                offset: off,
                name_off,
                kind,
                vlen,
                kind_flag: info >> 31 == 1,
                size_or_type,
            });
            off += 12 + trailing;
        }
        if off != types_end {
            return Err(bad(off, "last type runs past the type section"));
        }
        Ok(RawBtf {
            data,
            big,
            hdr_len,
            type_off,
            type_len,
            str_off,
            str_len,
            types,
        })
    }

    /// The blob.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Big-endian blob.
    pub fn is_big_endian(&self) -> bool {
        self.big
    }

    /// Number of types, not counting `void`.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether there are no types besides `void`.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    fn rd(&self) -> Rd<'a> {
        Rd {
            data: self.data,
            big: self.big,
        }
    }

    /// A u32 at an absolute blob offset.
    pub fn u32_at(&self, offset: usize) -> Option<u32> {
        self.rd().u32(offset).ok()
    }

    /// Type `id`'s record (`None` for `void` and unknown ids).
    pub fn get(&self, id: u32) -> Option<&TypeRec> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// The string at `name_off` (empty when out of range or not UTF-8).
    pub fn str_at(&self, name_off: u32) -> &'a str {
        let start = self.hdr_len + self.str_off + name_off as usize;
        let end = self.hdr_len + self.str_off + self.str_len;
        let Some(bytes) = self.data.get(start..end) else {
            return "";
        };
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..len]).unwrap_or("")
    }

    /// Type `id`'s name.
    pub fn name(&self, id: u32) -> &'a str {
        self.get(id).map_or("", |t| self.str_at(t.name_off))
    }

    /// Ids of every type of `kind` named `name`.
    pub fn find_all<'s>(&'s self, name: &'s str, kind: u32) -> impl Iterator<Item = u32> + 's {
        self.types
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.kind == kind && self.str_at(t.name_off) == name)
            .map(|(i, _)| i as u32 + 1)
    }

    /// The first type of `kind` named `name`.
    pub fn find(&self, name: &str, kind: u32) -> Option<u32> {
        self.find_all(name, kind).next()
    }

    /// Members of a struct or union (empty for other kinds).
    pub fn members(&self, id: u32) -> Vec<RawMember> {
        let Some(t) = self.get(id) else {
            return Vec::new();
        };
        if t.kind != kind::STRUCT && t.kind != kind::UNION {
            return Vec::new();
        }
        let r = self.rd();
        (0..t.vlen as usize)
            .filter_map(|i| {
                let off = t.offset + 12 + i * 12;
                let offset_raw = r.u32(off + 8).ok()?;
                Some(RawMember {
                    offset: off,
                    name_off: r.u32(off).ok()?,
                    type_id: r.u32(off + 4).ok()?,
                    bit_offset: if t.kind_flag {
                        offset_raw & 0x00ff_ffff
                    } else {
                        offset_raw
                    },
                })
            })
            .collect()
    }

    /// Enumerator names of an `ENUM` or `ENUM64`.
    pub fn enumerators(&self, id: u32) -> Vec<&'a str> {
        let Some(t) = self.get(id) else {
            return Vec::new();
        };
        let step = match t.kind {
            kind::ENUM => 8,
            kind::ENUM64 => 12,
            _ => return Vec::new(),
        };
        let r = self.rd();
        (0..t.vlen as usize)
            .filter_map(|i| r.u32(t.offset + 12 + i * step).ok().map(|o| self.str_at(o)))
            .collect()
    }

    /// `(elem type, nelems)` of an `ARRAY`, and the blob offset of its `nelems` field.
    pub fn array(&self, id: u32) -> Option<(u32, u32, usize)> {
        let t = self.get(id)?;
        if t.kind != kind::ARRAY {
            return None;
        }
        let r = self.rd();
        Some((
            r.u32(t.offset + 12).ok()?,
            r.u32(t.offset + 20).ok()?,
            t.offset + 20,
        ))
    }

    /// The `type` of a `VAR` and the blob offset of that field.
    pub fn var_type(&self, id: u32) -> Option<(u32, usize)> {
        let t = self.get(id)?;
        (t.kind == kind::VAR).then_some((t.size_or_type, t.offset + 8))
    }

    /// Follows typedefs and qualifiers.
    pub fn skip_mods(&self, mut id: u32) -> u32 {
        for _ in 0..64 {
            match self.get(id) {
                Some(t)
                    if matches!(
                        t.kind,
                        kind::TYPEDEF
                            | kind::VOLATILE
                            | kind::CONST
                            | kind::RESTRICT
                            | kind::TYPE_TAG
                    ) =>
                {
                    id = t.size_or_type;
                }
                _ => return id,
            }
        }
        id
    }

    /// Whether `enum enum_name` (or `enum64`) has an enumerator `value`.
    pub fn enum_has_value(&self, enum_name: &str, value: &str) -> bool {
        self.types.iter().enumerate().any(|(i, t)| {
            matches!(t.kind, kind::ENUM | kind::ENUM64)
                && self.str_at(t.name_off) == enum_name
                && self.enumerators(i as u32 + 1).contains(&value)
        })
    }

    /// Byte offsets (header fields) for rebuilding: `(hdr_len, type_off, type_len, str_off, str_len)`.
    fn layout(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.hdr_len,
            self.type_off,
            self.type_len,
            self.str_off,
            self.str_len,
        )
    }
}

impl RawBtf<'_> {
    /// A valid BTF blob in this machine's byte order with no types (only `void`) and an empty
    /// string table.
    pub fn empty_blob() -> Vec<u8> {
        let mut out = 0xeb9f_u16.to_ne_bytes().to_vec();
        out.extend_from_slice(&[1, 0]);
        for v in [24u32, 0, 0, 0, 1] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.push(0);
        out
    }
}

/// What a CO-RE relocation is rooted at: a kind (`BTF_KIND_*`) and a name without its
/// `___flavor` suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CoreRoot {
    /// `BTF_KIND_*` of the object's root type.
    pub kind: u32,
    /// Essential name.
    pub name: String,
}

fn essential(name: &str) -> &str {
    name.find("___").map_or(name, |i| &name[..i])
}

/// Appends types and strings to a BTF blob and patches u32 fields in place. New types get the
/// ids after the last existing one, so no existing id changes.
#[derive(Debug, Clone)]
pub struct BtfBuilder {
    big: bool,
    header: Vec<u8>,
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

impl BtfBuilder {
    /// Starts from an existing blob.
    pub fn new(raw: &RawBtf<'_>) -> BtfBuilder {
        let (hdr_len, type_off, type_len, str_off, str_len) = raw.layout();
        let d = raw.bytes();
        BtfBuilder {
            big: raw.is_big_endian(),
            header: d[..hdr_len].to_vec(),
            types: d[hdr_len + type_off..hdr_len + type_off + type_len].to_vec(),
            strings: d[hdr_len + str_off..hdr_len + str_off + str_len].to_vec(),
            next_id: raw.len() as u32 + 1,
        }
    }

    fn enc(&self, v: u32) -> [u8; 4] {
        encode(self.big, v)
    }

    /// Adds a string, returning its offset (an existing identical string is reused).
    pub fn add_string(&mut self, s: &str) -> u32 {
        let needle: Vec<u8> = s.bytes().chain(std::iter::once(0)).collect();
        // Reuse only whole strings (preceded by a NUL or at offset 0).
        let mut start = 0;
        for (i, &b) in self.strings.iter().enumerate() {
            if b == 0 {
                if self.strings[start..=i] == needle[..] {
                    return start as u32;
                }
                start = i + 1;
            }
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(&needle);
        off
    }

    /// Appends a type record (header + trailing data as u32 words); returns its id.
    pub fn add_type(
        &mut self,
        name_off: u32,
        kind: u32,
        vlen: u32,
        size_or_type: u32,
        words: &[u32],
    ) -> u32 {
        let info = (kind << 24) | (vlen & 0xffff);
        for w in [name_off, info, size_or_type].iter().chain(words) {
            let b = self.enc(*w);
            self.types.extend_from_slice(&b);
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Overwrites a u32 at a blob offset of the *original* blob that lies in the type section.
    pub fn patch_type_u32(&mut self, raw: &RawBtf<'_>, blob_offset: usize, value: u32) -> bool {
        let (hdr_len, type_off, ..) = raw.layout();
        let Some(rel) = blob_offset.checked_sub(hdr_len + type_off) else {
            return false;
        };
        let b = self.enc(value);
        match self.types.get_mut(rel..rel + 4) {
            Some(slot) => {
                slot.copy_from_slice(&b);
                true
            }
            None => false,
        }
    }

    /// The new blob: header (lengths updated), types, strings.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        let hdr_len = out.len();
        let put =
            |out: &mut Vec<u8>, at: usize, v: u32| out[at..at + 4].copy_from_slice(&self.enc(v));
        put(&mut out, 8, 0);
        put(&mut out, 12, self.types.len() as u32);
        put(&mut out, 16, self.types.len() as u32);
        put(&mut out, 20, self.strings.len() as u32);
        debug_assert!(hdr_len >= 24);
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF: [1] int, [2] enum e { A, B }, [3] struct s { int x; }.
    fn tiny() -> Vec<u8> {
        let strings = b"\0int\0e\0A\0B\0s\0x\0".to_vec();
        let mut types = Vec::new();
        let w = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        // int: name 1, INT, size 4, encoding (signed, 32 bits)
        w(&mut types, 1);
        w(&mut types, kind::INT << 24);
        w(&mut types, 4);
        w(&mut types, (1 << 24) | 32);
        // enum e: name 5, 2 values, size 4
        w(&mut types, 5);
        w(&mut types, (kind::ENUM << 24) | 2);
        w(&mut types, 4);
        w(&mut types, 7);
        w(&mut types, 0);
        w(&mut types, 9);
        w(&mut types, 1);
        // struct s: name 11, 1 member, size 4
        w(&mut types, 11);
        w(&mut types, (kind::STRUCT << 24) | 1);
        w(&mut types, 4);
        w(&mut types, 13);
        w(&mut types, 1);
        w(&mut types, 0);
        let mut out = vec![0x9f, 0xeb, 1, 0];
        w(&mut out, 24);
        w(&mut out, 0);
        w(&mut out, types.len() as u32);
        w(&mut out, types.len() as u32);
        w(&mut out, strings.len() as u32);
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn indexes_and_looks_up() {
        let blob = tiny();
        let b = RawBtf::parse(&blob).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b.find("int", kind::INT), Some(1));
        assert!(b.enum_has_value("e", "B"));
        assert!(!b.enum_has_value("e", "C"));
        let m = b.members(3);
        assert_eq!(m.len(), 1);
        assert_eq!(b.str_at(m[0].name_off), "x");
    }

    #[test]
    fn appends_types_and_strings() {
        let blob = tiny();
        let b = RawBtf::parse(&blob).unwrap();
        let mut builder = BtfBuilder::new(&b);
        let name = builder.add_string("arr");
        assert_eq!(builder.add_string("int"), 1, "existing strings are reused");
        let id = builder.add_type(name, kind::ARRAY, 0, 0, &[1, 1, 4]);
        assert_eq!(id, 4);
        let out = builder.finish();
        let b2 = RawBtf::parse(&out).unwrap();
        assert_eq!(b2.len(), 4);
        assert_eq!(b2.name(4), "arr");
        assert_eq!(b2.array(4).map(|(e, n, _)| (e, n)), Some((1, 4)));
    }

    #[test]
    fn minimizes_to_what_core_can_reach() {
        // [1] int, [2] struct in { int v; }, [3] ptr -> [5], [4] struct s { struct in a; struct big *p; },
        // [5] struct big { int x; }, [6] struct other { int y; }
        let strings = b"\0int\0in\0v\0s\0a\0p\0big\0x\0other\0y\0".to_vec();
        let w = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        let mut t = Vec::new();
        for x in [1, kind::INT << 24, 4, 32] {
            w(&mut t, x)
        }
        for x in [5, (kind::STRUCT << 24) | 1, 4, 8, 1, 0] {
            w(&mut t, x)
        }
        for x in [0, kind::PTR << 24, 5] {
            w(&mut t, x)
        }
        for x in [10, (kind::STRUCT << 24) | 2, 16, 12, 2, 0, 14, 3, 64] {
            w(&mut t, x)
        }
        for x in [16, (kind::STRUCT << 24) | 1, 4, 20, 1, 0] {
            w(&mut t, x)
        }
        for x in [22, (kind::STRUCT << 24) | 1, 4, 28, 1, 0] {
            w(&mut t, x)
        }
        let mut blob = vec![0x9f, 0xeb, 1, 0];
        for x in [24, 0, t.len() as u32, t.len() as u32, strings.len() as u32] {
            w(&mut blob, x)
        }
        blob.extend_from_slice(&t);
        blob.extend_from_slice(&strings);
        let b = RawBtf::parse(&blob).unwrap();
        assert_eq!(b.len(), 6);
        let mini = b.minimize_for_core(&[CoreRoot {
            kind: kind::STRUCT,
            name: "s".into(),
        }]);
        let m = RawBtf::parse(&mini).unwrap();
        // s, in, int and the (cut) pointer; not big, not other.
        assert_eq!(m.len(), 4);
        let s_id = m.find("s", kind::STRUCT).unwrap();
        assert!(m.find("big", kind::STRUCT).is_none() && m.find("other", kind::STRUCT).is_none());
        let members = m.members(s_id);
        assert_eq!(m.str_at(members[0].name_off), "a");
        assert_eq!(m.name(m.skip_mods(members[0].type_id)), "in");
        let ptr = m.get(members[1].type_id).unwrap();
        assert_eq!(
            (ptr.kind, ptr.size_or_type),
            (kind::PTR, 0),
            "member pointers point at void"
        );
        assert_eq!(
            m.members(m.find("in", kind::STRUCT).unwrap())[0].type_id,
            m.find("int", kind::INT).unwrap()
        );
        // Rooted at `big`, only big and int.
        let mini = b.minimize_for_core(&[CoreRoot {
            kind: kind::STRUCT,
            name: "big".into(),
        }]);
        assert_eq!(RawBtf::parse(&mini).unwrap().len(), 2);
    }

    #[test]
    fn empty_blob_parses() {
        let blob = RawBtf::empty_blob();
        assert!(RawBtf::parse(&blob).unwrap().is_empty());
    }

    #[test]
    fn rejects_garbage() {
        assert!(RawBtf::parse(b"nope").is_err());
        let mut blob = tiny();
        blob[12] = 0xff; // type_len far too long
        assert!(RawBtf::parse(&blob).is_err());
    }
}
