//! Flattening a struct into the fields a runtime shows, and reading field values from records.
//!
//! The rules follow upstream's ebpf operator, made precise:
//! - Nested structs and unions (also through typedefs) are flattened with dotted names
//!   (`proc.parent.comm`). The container itself is listed too (kind `struct`/`union`), before its
//!   members, and members point back at it through [`Field::parent`].
//! - Anonymous struct/union members are flattened into their parent without a name component
//!   and without a container field (C accesses them as `e.anon_member`).
//! - Members whose name starts with `__` are kept, with [`Field::hidden`] set (and so are all
//!   fields nested inside them).
//! - `char` arrays (element type named `char`, or with the BTF `CHAR` encoding, through typedefs
//!   such as `gadget_comm`) are strings; other arrays are arrays.
//! - [`Field::type_name`] is the outermost name (`gadget_pid`, not `__u32`): the runtime picks
//!   templates and enrichment by it.
//! - Bitfields carry their exact bit position, from either encoding BTF has (`kind_flag`
//!   member offsets, or the legacy `INT` offset/bits).

use serde::Serialize;

use super::{Btf, BtfError, MAX_CHAIN, Member, TypeKind};
use crate::Endianness;

/// Most fields one flattened struct may produce (nested structs can multiply).
pub const MAX_FIELDS: usize = 65_536;

/// Most nesting levels followed when flattening.
pub const MAX_DEPTH: usize = 32;

/// One enumerator of an enum field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnumValue {
    /// Its name (`OP_READ`).
    pub name: String,
    /// Its value, exact for both signed and unsigned 64-bit enums.
    pub value: i128,
}

/// How to interpret a field's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldKind {
    /// An integer of `bits` bits of storage (8, 16, 32, 64, 128). For bitfields see
    /// [`Field::bitfield`] for the value's width.
    Int {
        /// Two's complement signed.
        signed: bool,
        /// Storage width in bits.
        bits: u32,
    },
    /// `_Bool` (BTF `BOOL` encoding).
    Bool,
    /// IEEE float of `bits` bits.
    Float {
        /// Width in bits.
        bits: u32,
    },
    /// An enum, with its enumerators (so a runtime can print names).
    Enum {
        /// Whether values are signed.
        signed: bool,
        /// Storage width in bits.
        bits: u32,
        /// Enumerators in declaration order.
        values: Vec<EnumValue>,
    },
    /// A `char` array: a NUL-terminated (or full-length) string of at most `len` bytes.
    String {
        /// Array length in bytes.
        len: u32,
    },
    /// Any other array.
    Array {
        /// Number of elements.
        len: u32,
        /// Size of one element in bytes (0 if unknown).
        elem_size: u32,
        /// Kind of the elements.
        elem: Box<FieldKind>,
    },
    /// A struct container; its members follow it in the flattened list.
    Struct,
    /// A union container; its members follow it in the flattened list.
    Union,
    /// A pointer (8 bytes of address, meaningless in user space).
    Pointer,
    /// Anything else (forward declarations, functions, void).
    Unknown {
        /// The BTF kind name.
        btf_kind: String,
    },
}

/// The exact position of a bitfield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bitfield {
    /// Bit offset from the start of the *record* (the flattened root struct), in BTF's numbering:
    /// on little-endian targets bit `n` is bit `n % 8` (LSB first) of byte `n / 8`; on big-endian
    /// targets bits count from the most significant bit of byte 0.
    pub bit_offset: u32,
    /// Width in bits.
    pub bits: u32,
}

/// One flattened field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Dotted name from the root (`proc.parent.comm`).
    pub name: String,
    /// The member's own name (`comm`).
    pub member_name: String,
    /// Index of the containing struct/union field in the same list, if nested.
    pub parent: Option<usize>,
    /// Nesting depth (0 for members of the root).
    pub depth: usize,
    /// Byte offset from the start of the record. For bitfields, the first byte holding any of
    /// the field's bits.
    pub offset: u32,
    /// Size in bytes. For bitfields, the number of bytes spanned by the field's bits.
    pub size: u32,
    /// Set for bitfields.
    pub bitfield: Option<Bitfield>,
    /// The member's BTF type id.
    pub type_id: u32,
    /// Outermost type name (`gadget_pid`, `gadget_comm` for `gadget_comm comm[16]`); empty for
    /// anonymous types and pointers.
    pub type_name: String,
    /// C spelling of the member's type (`gadget_comm[16]`).
    pub c_type: String,
    /// How to interpret the bytes.
    pub kind: FieldKind,
    /// The member, or a container of it, is named `__...`: the runtime does not show it.
    pub hidden: bool,
}

impl Field {
    /// Whether this is a struct or union container (its members follow it).
    pub fn is_container(&self) -> bool {
        matches!(self.kind, FieldKind::Struct | FieldKind::Union)
    }

    /// The field's bytes within `record` (for bitfields, the bytes spanning its bits).
    pub fn bytes<'a>(&self, record: &'a [u8]) -> Option<&'a [u8]> {
        let start = self.offset as usize;
        record.get(start..start.checked_add(self.size as usize)?)
    }

    /// The field's value as raw bits, zero-extended: integers, bools, enums and bitfields of at
    /// most 64 bits. `None` for other kinds or when `record` is too short.
    pub fn read_u64(&self, record: &[u8], endianness: Endianness) -> Option<u64> {
        let bytes = self.bytes(record)?;
        match self.bitfield {
            Some(bf) => {
                if bf.bits == 0 || bf.bits > 64 || bytes.len() > 16 {
                    return None;
                }
                let n = bytes.len() as u32;
                let mut v: u128 = 0;
                let shift = match endianness {
                    Endianness::Little => {
                        for (i, b) in bytes.iter().enumerate() {
                            v |= u128::from(*b) << (8 * i);
                        }
                        bf.bit_offset % 8
                    }
                    Endianness::Big => {
                        for b in bytes {
                            v = (v << 8) | u128::from(*b);
                        }
                        (n * 8).checked_sub(bf.bit_offset % 8 + bf.bits)?
                    }
                };
                Some(((v >> shift) & ((1u128 << bf.bits) - 1)) as u64)
            }
            None => {
                if !matches!(
                    self.kind,
                    FieldKind::Int { .. } | FieldKind::Bool | FieldKind::Enum { .. }
                ) {
                    return None;
                }
                read_uint(bytes, endianness)
            }
        }
    }

    /// Like [`Field::read_u64`], sign-extended from the field's width.
    pub fn read_i64(&self, record: &[u8], endianness: Endianness) -> Option<i64> {
        let raw = self.read_u64(record, endianness)?;
        let width = self
            .bitfield
            .map_or(self.size.saturating_mul(8), |b| b.bits);
        if width == 0 || width >= 64 {
            return Some(raw as i64);
        }
        let shift = 64 - width;
        Some(((raw << shift) as i64) >> shift)
    }

    /// For [`FieldKind::Float`] fields of 32 or 64 bits: the value.
    pub fn read_f64(&self, record: &[u8], endianness: Endianness) -> Option<f64> {
        let raw = read_uint(self.bytes(record)?, endianness)?;
        match self.kind {
            FieldKind::Float { bits: 32 } => Some(f64::from(f32::from_bits(raw as u32))),
            FieldKind::Float { bits: 64 } => Some(f64::from_bits(raw)),
            _ => None,
        }
    }

    /// For [`FieldKind::String`] fields: the text up to the first NUL (lossy UTF-8).
    pub fn read_string(&self, record: &[u8]) -> Option<String> {
        if !matches!(self.kind, FieldKind::String { .. }) {
            return None;
        }
        Some(c_string(self.bytes(record)?))
    }
}

/// Text up to the first NUL, lossily decoded.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Reads a 1-, 2-, 4- or 8-byte unsigned integer.
pub(crate) fn read_uint(bytes: &[u8], endianness: Endianness) -> Option<u64> {
    if !matches!(bytes.len(), 1 | 2 | 4 | 8) {
        return None;
    }
    let mut v: u64 = 0;
    match endianness {
        Endianness::Little => {
            for (i, b) in bytes.iter().enumerate() {
                v |= u64::from(*b) << (8 * i);
            }
        }
        Endianness::Big => {
            for b in bytes {
                v = (v << 8) | u64::from(*b);
            }
        }
    }
    Some(v)
}

struct Walk<'a> {
    btf: &'a Btf,
    root: u32,
    root_name: String,
    root_bits: u64,
    out: Vec<Field>,
}

impl Btf {
    /// How a value of this type is interpreted (typedefs and qualifiers are followed).
    pub fn field_kind(&self, type_id: u32) -> FieldKind {
        self.field_kind_depth(type_id, 0)
    }

    fn field_kind_depth(&self, type_id: u32, depth: usize) -> FieldKind {
        let id = self.resolve(type_id);
        let Some(ty) = self.get(id) else {
            return FieldKind::Unknown {
                btf_kind: "INVALID".to_string(),
            };
        };
        match &ty.kind {
            TypeKind::Int { encoding, size, .. } => {
                if encoding.bool {
                    FieldKind::Bool
                } else {
                    FieldKind::Int {
                        signed: encoding.signed,
                        bits: size * 8,
                    }
                }
            }
            TypeKind::Float { size } => FieldKind::Float { bits: size * 8 },
            TypeKind::Enum {
                signed,
                values,
                size,
                ..
            } => FieldKind::Enum {
                signed: *signed,
                bits: size * 8,
                values: values
                    .iter()
                    .map(|v| EnumValue {
                        name: self.enumerator_name(v).to_string(),
                        value: if *signed {
                            i128::from(v.value as i64)
                        } else {
                            i128::from(v.value)
                        },
                    })
                    .collect(),
            },
            TypeKind::Array { elem, len, .. } => {
                let elem_id = self.resolve(*elem);
                let is_char = matches!(
                    self.get(elem_id).map(|t| &t.kind),
                    Some(TypeKind::Int { size: 1, encoding, .. }) if encoding.char || self.name(elem_id) == "char"
                );
                if is_char {
                    FieldKind::String { len: *len }
                } else if depth >= MAX_CHAIN {
                    FieldKind::Unknown {
                        btf_kind: "ARRAY".to_string(),
                    }
                } else {
                    FieldKind::Array {
                        len: *len,
                        elem_size: self.size_of(*elem).unwrap_or(0),
                        elem: Box::new(self.field_kind_depth(*elem, depth + 1)),
                    }
                }
            }
            TypeKind::Struct { .. } => FieldKind::Struct,
            TypeKind::Union { .. } => FieldKind::Union,
            TypeKind::Ptr { .. } => FieldKind::Pointer,
            other => FieldKind::Unknown {
                btf_kind: other.name().to_string(),
            },
        }
    }

    /// Flattens a struct or union (typedefs and qualifiers are followed) into the fields a
    /// runtime shows; see the module docs for the rules.
    pub fn flatten_fields(&self, type_id: u32) -> Result<Vec<Field>, BtfError> {
        let root = self.try_resolve(type_id)?;
        let ty = self.type_by_id(root)?;
        let size = match &ty.kind {
            TypeKind::Struct { size, .. } | TypeKind::Union { size, .. } => *size,
            other => {
                return Err(BtfError::NotComposite {
                    type_id,
                    name: self.name(type_id).to_string(),
                    kind: other.name(),
                });
            }
        };
        let mut walk = Walk {
            btf: self,
            root,
            root_name: self.name(root).to_string(),
            root_bits: u64::from(size) * 8,
            out: Vec::new(),
        };
        walk.composite(root, 0, "", None, 0, false)?;
        Ok(walk.out)
    }
}

impl Walk<'_> {
    fn composite(
        &mut self,
        composite: u32,
        base_bit: u64,
        prefix: &str,
        parent: Option<usize>,
        depth: usize,
        hidden: bool,
    ) -> Result<(), BtfError> {
        if depth > MAX_DEPTH {
            return Err(BtfError::Cycle {
                type_id: self.root,
                limit: MAX_DEPTH,
            });
        }
        let btf = self.btf;
        let members = match &btf.type_by_id(composite)?.kind {
            TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => members,
            _ => return Ok(()),
        };
        for member in members {
            let member_name = btf.member_name(member);
            let resolved = btf.resolve(member.type_id);
            let resolved_kind = &btf.type_by_id(resolved)?.kind;
            let is_composite = matches!(
                resolved_kind,
                TypeKind::Struct { .. } | TypeKind::Union { .. }
            );
            let abs_bit = base_bit + u64::from(member.bit_offset);
            if member_name.is_empty() {
                if is_composite {
                    self.composite(resolved, abs_bit, prefix, parent, depth + 1, hidden)?;
                }
                // An unnamed non-composite member is padding (`int :3;`): nothing to show.
                continue;
            }

            let (offset, size, bitfield) =
                self.placement(member, resolved_kind, abs_bit, prefix, member_name)?;
            let name = format!("{prefix}{member_name}");
            let hidden = hidden || member_name.starts_with("__");
            if self.out.len() >= MAX_FIELDS {
                return Err(BtfError::TooManyFields {
                    type_id: self.root,
                    name: self.root_name.clone(),
                    limit: MAX_FIELDS,
                });
            }
            let index = self.out.len();
            self.out.push(Field {
                name: name.clone(),
                member_name: member_name.to_string(),
                parent,
                depth,
                offset,
                size,
                bitfield,
                type_id: member.type_id,
                type_name: btf.type_name(member.type_id).to_string(),
                c_type: btf.c_type(member.type_id),
                kind: btf.field_kind(member.type_id),
                hidden,
            });
            if is_composite {
                self.composite(
                    resolved,
                    abs_bit,
                    &format!("{name}."),
                    Some(index),
                    depth + 1,
                    hidden,
                )?;
            }
        }
        Ok(())
    }

    /// Where a member's value lies in the root: `(byte offset, byte size, bit field)`, from
    /// its bit offset `abs_bit`, its bit field size or legacy int bits; an error when it
    /// reaches past the root's end.
    fn placement(
        &self,
        member: &Member,
        resolved_kind: &TypeKind,
        abs_bit: u64,
        prefix: &str,
        member_name: &str,
    ) -> Result<(u32, u32, Option<Bitfield>), BtfError> {
        let btf = self.btf;
        // Where the value's bits are.
        let legacy_int_bits = match resolved_kind {
            TypeKind::Int {
                size, offset, bits, ..
            } if *offset != 0 || *bits != size * 8 => Some((u64::from(*offset), *bits)),
            _ => None,
        };
        let type_size = btf.size_of(member.type_id).unwrap_or(0);
        let bitfield = match (member.bitfield_size, legacy_int_bits) {
            (Some(bits), _) => Some((abs_bit, bits)),
            (None, Some((off, bits))) => Some((abs_bit + off, bits)),
            (None, None) if !abs_bit.is_multiple_of(8) => {
                Some((abs_bit, type_size.saturating_mul(8)))
            }
            (None, None) => None,
        };
        let (start_bit, end_bit) = match bitfield {
            Some((bit, bits)) => (bit, bit + u64::from(bits)),
            None => (abs_bit, abs_bit + u64::from(type_size) * 8),
        };
        if end_bit > self.root_bits {
            return Err(BtfError::MemberOutOfBounds {
                type_id: self.root,
                name: self.root_name.clone(),
                member: format!("{prefix}{member_name}"),
                start: start_bit,
                end: end_bit,
                size: (self.root_bits / 8) as u32,
            });
        }
        // Both fit in u32: end_bit <= root size * 8 and the root size is a u32.
        let (offset, size, bitfield) = match bitfield {
            Some((bit, bits)) => {
                let first = bit / 8;
                let last = end_bit.div_ceil(8);
                (
                    first as u32,
                    (last - first) as u32,
                    Some(Bitfield {
                        bit_offset: bit as u32,
                        bits,
                    }),
                )
            }
            None => ((abs_bit / 8) as u32, type_size, None),
        };
        Ok((offset, size, bitfield))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::BtfBuilder;
    use super::*;

    use gadget_facts::btf::kind::{ARRAY, STRUCT, TYPEDEF, UNION};

    fn sample() -> Btf {
        let mut b = BtfBuilder::new();
        b.int("unsigned int", 4, false); // 1
        b.int("char", 1, true); // 2
        b.header("gadget_comm", TYPEDEF, 0, false, 2); // 3
        b.header("", ARRAY, 0, false, 0); // 4: gadget_comm[16]
        b.raw(&[3, 1, 16]);
        b.header("inner", STRUCT, 2, false, 20); // 5
        let (comm, pid) = (b.string("comm"), b.string("pid"));
        b.raw(&[comm, 4, 0, pid, 1, 128]);
        b.header("", UNION, 1, false, 4); // 6 (anonymous union)
        let u = b.string("u");
        b.raw(&[u, 1, 0]);
        b.header("outer", STRUCT, 5, true, 32); // 7, kind_flag: bitfields
        let (a, bf, inn, hid) = (
            b.string("a"),
            b.string("bf"),
            b.string("in"),
            b.string("__hidden"),
        );
        b.raw(&[a, 1, 0]);
        b.raw(&[bf, 1, (3 << 24) | 37]); // 3 bits at bit 37
        b.raw(&[inn, 5, 64]);
        b.raw(&[0, 6, 224]);
        b.raw(&[hid, 5, 64]); // overlaps, fine for the test
        Btf::parse(&b.build()).unwrap()
    }

    #[test]
    fn flattens_nested_anonymous_and_hidden() {
        let btf = sample();
        let fields = btf.flatten_fields(7).unwrap();
        let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a",
                "bf",
                "in",
                "in.comm",
                "in.pid",
                "u",
                "__hidden",
                "__hidden.comm",
                "__hidden.pid"
            ]
        );
        let comm = &fields[3];
        assert_eq!(
            (comm.offset, comm.size, comm.parent, comm.depth),
            (8, 16, Some(2), 1)
        );
        assert_eq!(comm.type_name, "gadget_comm");
        assert_eq!(comm.c_type, "gadget_comm[16]");
        assert_eq!(comm.kind, FieldKind::String { len: 16 });
        assert!(fields[2].is_container());
        let bf = &fields[1];
        assert_eq!(
            bf.bitfield,
            Some(Bitfield {
                bit_offset: 37,
                bits: 3
            })
        );
        assert_eq!((bf.offset, bf.size), (4, 1));
        assert_eq!(fields[5].offset, 28);
        assert!(!fields[3].hidden);
        assert!(fields[6].hidden && fields[7].hidden);
    }

    #[test]
    fn reads_bitfields_both_endians() {
        let f = Field {
            name: "x".into(),
            member_name: "x".into(),
            parent: None,
            depth: 0,
            offset: 0,
            size: 2,
            bitfield: Some(Bitfield {
                bit_offset: 5,
                bits: 6,
            }),
            type_id: 1,
            type_name: String::new(),
            c_type: String::new(),
            kind: FieldKind::Int {
                signed: true,
                bits: 32,
            },
            hidden: false,
        };
        // LE: value 0b101101 at bits 5..11: 0b101101 << 5 = 0x5a0
        assert_eq!(
            f.read_u64(&[0xa0, 0x05], Endianness::Little),
            Some(0b101101)
        );
        assert_eq!(f.read_i64(&[0xa0, 0x05], Endianness::Little), Some(-19));
        // BE: bits counted from the MSB: bits 5..11 of 0b00000101_10100000
        assert_eq!(
            f.read_u64(&[0b0000_0101, 0b1010_0000], Endianness::Big),
            Some(0b101101)
        );
        assert_eq!(f.read_u64(&[0xa0], Endianness::Little), None);
    }

    #[test]
    fn reads_floats_and_strings() {
        let mut f = Field {
            name: "x".into(),
            member_name: "x".into(),
            parent: None,
            depth: 0,
            offset: 1,
            size: 8,
            bitfield: None,
            type_id: 1,
            type_name: String::new(),
            c_type: String::new(),
            kind: FieldKind::Float { bits: 64 },
            hidden: false,
        };
        let mut record = vec![0xff];
        record.extend_from_slice(&1.5f64.to_be_bytes());
        assert_eq!(f.read_f64(&record, Endianness::Big), Some(1.5));
        assert_eq!(
            f.read_u64(&record, Endianness::Big),
            None,
            "floats are not integers"
        );
        f.kind = FieldKind::String { len: 8 };
        assert_eq!(f.read_string(b"-ab\0cdefg"), Some("ab".to_string()));
        assert_eq!(f.read_string(b"-ab"), None, "record too short");
    }

    #[test]
    fn flatten_rejects_non_struct_and_out_of_bounds() {
        let btf = sample();
        assert!(matches!(
            btf.flatten_fields(1),
            Err(BtfError::NotComposite { kind: "INT", .. })
        ));
        let mut b = BtfBuilder::new();
        b.int("int", 4, true);
        b.header("s", STRUCT, 1, false, 4);
        let x = b.string("x");
        b.raw(&[x, 1, 64]);
        let btf = Btf::parse(&b.build()).unwrap();
        let err = btf.flatten_fields(2).unwrap_err();
        assert!(
            err.to_string()
                .contains("member `x` (bits 64..96) lies outside the 4-byte type"),
            "{err}"
        );
    }

    #[test]
    fn flatten_limits_exponential_nesting() {
        // s_k has two members of type s_{k-1}; 2^25 leaves would be produced without the limit.
        let mut b = BtfBuilder::new();
        b.int("int", 4, true); // 1
        let (l, r) = (b.string("l"), b.string("r"));
        let mut prev = 1;
        let mut size = 4u32;
        for k in 0..25 {
            b.header(&format!("s{k}"), STRUCT, 2, false, size * 2);
            b.raw(&[l, prev, 0, r, prev, size * 8]);
            prev = k + 2;
            size *= 2;
        }
        let btf = Btf::parse(&b.build()).unwrap();
        assert!(matches!(
            btf.flatten_fields(prev),
            Err(BtfError::TooManyFields { .. })
        ));
    }
}
