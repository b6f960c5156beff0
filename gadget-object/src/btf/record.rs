//! Parsing one BTF type record: its 12-byte header, then the trailing data its kind defines,
//! one function a kind.

use super::{
    BtfError, Enumerator, FuncLinkage, FuncParam, IntEncoding, Member, Reader, SecVar,
    TYPE_HEADER_LEN, Type, TypeKind, VarLinkage,
};
use gadget_facts::btf::kind::{
    ARRAY as KIND_ARRAY, CONST as KIND_CONST, DATASEC as KIND_DATASEC, DECL_TAG as KIND_DECL_TAG,
    ENUM as KIND_ENUM, ENUM64 as KIND_ENUM64, FLOAT as KIND_FLOAT, FUNC as KIND_FUNC,
    FUNC_PROTO as KIND_FUNC_PROTO, FWD as KIND_FWD, INT as KIND_INT, PTR as KIND_PTR,
    RESTRICT as KIND_RESTRICT, STRUCT as KIND_STRUCT, TYPE_TAG as KIND_TYPE_TAG,
    TYPEDEF as KIND_TYPEDEF, UNION as KIND_UNION, VAR as KIND_VAR, VOLATILE as KIND_VOLATILE,
};

/// Parses one type record at `pos`; returns it and the offset of the next record.
pub(super) fn parse_type(
    r: &Reader<'_>,
    pos: usize,
    end: usize,
    type_id: u32,
) -> Result<(Type, usize), BtfError> {
    let (name_off, kind, rec) = Record::read_header(r, pos, end, type_id)?;
    let target = rec.size_or_type;
    let (kind, next) = match kind {
        KIND_INT => rec.int()?,
        KIND_PTR => (TypeKind::Ptr { target }, rec.body),
        KIND_ARRAY => rec.array()?,
        KIND_STRUCT | KIND_UNION => rec.struct_or_union(kind == KIND_STRUCT)?,
        KIND_ENUM | KIND_ENUM64 => rec.enumeration(kind == KIND_ENUM64)?,
        KIND_FWD => (
            TypeKind::Fwd {
                union: rec.kind_flag,
            },
            rec.body,
        ),
        KIND_TYPEDEF => (TypeKind::Typedef { target }, rec.body),
        KIND_VOLATILE => (TypeKind::Volatile { target }, rec.body),
        KIND_CONST => (TypeKind::Const { target }, rec.body),
        KIND_RESTRICT => (TypeKind::Restrict { target }, rec.body),
        KIND_FUNC => rec.func()?,
        KIND_FUNC_PROTO => rec.func_proto()?,
        KIND_VAR => rec.var()?,
        KIND_DATASEC => rec.datasec()?,
        KIND_FLOAT => rec.float()?,
        KIND_DECL_TAG => rec.decl_tag()?,
        KIND_TYPE_TAG => (TypeKind::TypeTag { target }, rec.body),
        other => {
            return Err(BtfError::UnknownKind {
                type_id,
                offset: pos,
                kind: other,
            });
        }
    };
    Ok((Type { name_off, kind }, next))
}

/// One record's header fields that its kind's trailing data is read with, and a reader that
/// ends where the type section does.
struct Record<'a> {
    reader: Reader<'a>,
    type_id: u32,
    /// Offset of the record's header.
    pos: usize,
    /// Offset of the trailing data, right after the header.
    body: usize,
    vlen: usize,
    kind_flag: bool,
    /// The header's `size` or `type` (a union).
    size_or_type: u32,
}

/// What a kind's parser returns: the kind and the offset of the next record.
type Parsed = Result<(TypeKind, usize), BtfError>;

impl<'a> Record<'a> {
    /// Reads the header at `pos`: the name offset, the kind, and the rest as a [`Record`].
    fn read_header(
        r: &Reader<'a>,
        pos: usize,
        end: usize,
        type_id: u32,
    ) -> Result<(u32, u32, Record<'a>), BtfError> {
        let reader = Reader {
            data: &r.data[..end],
            big: r.big,
        };
        let name_off = reader.u32(pos, "type name_off")?;
        let info = reader.u32(pos + 4, "type info")?;
        let size_or_type = reader.u32(pos + 8, "type size/type")?;
        let record = Record {
            reader,
            type_id,
            pos,
            body: pos + TYPE_HEADER_LEN,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type,
        };
        Ok((name_off, (info >> 24) & 0x1f, record))
    }

    /// A malformed record.
    fn bad(&self, reason: String) -> BtfError {
        BtfError::BadType {
            type_id: self.type_id,
            offset: self.pos,
            reason,
        }
    }

    /// The u32 `at` bytes into the trailing data.
    fn u32(&self, at: usize, what: &'static str) -> Result<u32, BtfError> {
        self.reader.u32(self.body + at, what)
    }

    /// The record's `vlen` trailing entries of `entry` bytes each, read by `read` from each
    /// entry's offset, and the offset of the next record. That they all fit is checked before
    /// anything is reserved.
    fn entries<T>(
        &self,
        entry: usize,
        what: &'static str,
        read: impl Fn(&Reader<'a>, usize) -> Result<T, BtfError>,
    ) -> Result<(Vec<T>, usize), BtfError> {
        let needed = self.vlen * entry;
        self.reader.bytes(self.body, needed, what)?;
        let mut items = Vec::with_capacity(self.vlen);
        for i in 0..self.vlen {
            items.push(read(&self.reader, self.body + i * entry)?);
        }
        Ok((items, self.body + needed))
    }

    /// A FUNC's or VAR's linkage, 0 to 2, as `kinds` names them.
    fn linkage<L: Copy>(&self, value: u32, owner: &str, kinds: [L; 3]) -> Result<L, BtfError> {
        match kinds.get(value as usize) {
            Some(linkage) => Ok(*linkage),
            None => Err(self.bad(format!("{owner} linkage {value} is not 0, 1 or 2"))),
        }
    }

    fn int(&self) -> Parsed {
        let v = self.u32(0, "INT encoding")?;
        let encoding = (v >> 24) & 0xf;
        let offset = (v >> 16) & 0xff;
        let bits = v & 0xff;
        let size = self.size_or_type;
        // rustc emits Rust's unit type `()` as a zero-sized INT (`INT '()' size=0
        // nr_bits=0`), e.g. as the key type of aya's BTF map definitions; the kernel
        // accepts it. Every other INT has a power-of-two size and at least one bit.
        let unit = size == 0 && bits == 0 && offset == 0;
        if !unit && !matches!(size, 1 | 2 | 4 | 8 | 16) {
            return Err(self.bad(format!("INT size {size} is not 1, 2, 4, 8 or 16")));
        }
        if !unit && (bits == 0 || offset + bits > size * 8) {
            return Err(self.bad(format!(
                "INT with {bits} bits at bit offset {offset} does not fit {size} bytes"
            )));
        }
        let encoding = IntEncoding {
            signed: encoding & 1 != 0,
            char: encoding & 2 != 0,
            bool: encoding & 4 != 0,
        };
        let int = TypeKind::Int {
            size,
            encoding,
            offset,
            bits,
        };
        Ok((int, self.body + 4))
    }

    fn array(&self) -> Parsed {
        let elem = self.u32(0, "ARRAY elem type")?;
        let index = self.u32(4, "ARRAY index type")?;
        let len = self.u32(8, "ARRAY nelems")?;
        Ok((TypeKind::Array { elem, index, len }, self.body + 12))
    }

    fn struct_or_union(&self, is_struct: bool) -> Parsed {
        let kind_flag = self.kind_flag;
        let (members, next) = self.entries(12, "STRUCT/UNION members", |r, at| {
            let name_off = r.u32(at, "member name_off")?;
            let type_id = r.u32(at + 4, "member type")?;
            let off = r.u32(at + 8, "member offset")?;
            let (bit_offset, bitfield_size) = if kind_flag {
                let bits = off >> 24;
                (off & 0x00ff_ffff, (bits != 0).then_some(bits))
            } else {
                (off, None)
            };
            Ok(Member {
                name_off,
                type_id,
                bit_offset,
                bitfield_size,
            })
        })?;
        let size = self.size_or_type;
        if is_struct {
            Ok((TypeKind::Struct { size, members }, next))
        } else {
            Ok((TypeKind::Union { size, members }, next))
        }
    }

    fn enumeration(&self, is64: bool) -> Parsed {
        let size = self.size_or_type;
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(self.bad(format!("enum size {size} is not 1, 2, 4 or 8")));
        }
        let signed = self.kind_flag;
        let entry = if is64 { 12 } else { 8 };
        let (values, next) = self.entries(entry, "enum values", |r, at| {
            let name_off = r.u32(at, "enumerator name_off")?;
            let lo = r.u32(at + 4, "enumerator value")?;
            let value = if is64 {
                let hi = r.u32(at + 8, "enumerator value (high)")?;
                (u64::from(hi) << 32) | u64::from(lo)
            } else if signed {
                i64::from(lo as i32) as u64
            } else {
                u64::from(lo)
            };
            Ok(Enumerator { name_off, value })
        })?;
        let enumeration = TypeKind::Enum {
            size,
            signed,
            is64,
            values,
        };
        Ok((enumeration, next))
    }

    fn func(&self) -> Parsed {
        use FuncLinkage::{Extern, Global, Static};
        let linkage = self.linkage(self.vlen as u32, "FUNC", [Static, Global, Extern])?;
        let proto = self.size_or_type;
        Ok((TypeKind::Func { proto, linkage }, self.body))
    }

    fn func_proto(&self) -> Parsed {
        let (params, next) = self.entries(8, "FUNC_PROTO params", |r, at| {
            Ok(FuncParam {
                name_off: r.u32(at, "param name_off")?,
                type_id: r.u32(at + 4, "param type")?,
            })
        })?;
        let ret = self.size_or_type;
        Ok((TypeKind::FuncProto { ret, params }, next))
    }

    fn var(&self) -> Parsed {
        use VarLinkage::{Extern, Global, Static};
        let value = self.u32(0, "VAR linkage")?;
        let linkage = self.linkage(value, "VAR", [Static, Global, Extern])?;
        let target = self.size_or_type;
        Ok((TypeKind::Var { target, linkage }, self.body + 4))
    }

    fn datasec(&self) -> Parsed {
        let (vars, next) = self.entries(12, "DATASEC entries", |r, at| {
            Ok(SecVar {
                type_id: r.u32(at, "DATASEC var type")?,
                offset: r.u32(at + 4, "DATASEC var offset")?,
                size: r.u32(at + 8, "DATASEC var size")?,
            })
        })?;
        let size = self.size_or_type;
        Ok((TypeKind::DataSec { size, vars }, next))
    }

    fn float(&self) -> Parsed {
        let size = self.size_or_type;
        if !matches!(size, 2 | 4 | 8 | 12 | 16) {
            return Err(self.bad(format!("FLOAT size {size} is not 2, 4, 8, 12 or 16")));
        }
        Ok((TypeKind::Float { size }, self.body))
    }

    fn decl_tag(&self) -> Parsed {
        let component = self.u32(0, "DECL_TAG component_idx")? as i32;
        let target = self.size_or_type;
        Ok((TypeKind::DeclTag { target, component }, self.body + 4))
    }
}
