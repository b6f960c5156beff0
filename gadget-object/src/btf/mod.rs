//! A small, defensive BTF parser: types, strings, VARs, DATASECs, FUNCs, and the `.BTF.ext`
//! header with its CO-RE relocation records.
//!
//! # Why not aya-obj
//!
//! aya-obj 0.3.0 (the newest release usable with our `rust-version`) parses BTF, but keeps the
//! pieces we need private: `Btf::type_by_id`, `Btf::string_at` and `Btf::types` are
//! `pub(crate)`, and the fields of `Struct`, `Member`, `Var` and `DataSec` are `pub(crate)` too.
//! Its public surface is built for loading (fix-ups, sanitising for the kernel), not for walking
//! types, so it cannot answer "what are the members of `struct event`, at which bit offsets".
//! It would also pull a second `object` version into the build. This module is the part we need,
//! written to treat every offset and count as hostile.
//!
//! # Robustness
//!
//! [`Btf::parse`] never panics and never allocates more than a small multiple of its input: every
//! count is checked against the bytes that remain before anything is reserved. Every type
//! reference is checked at parse time, so a parsed [`Btf`] never hands out a dangling id. Walks
//! that follow references (typedef chains, nested structs) are depth-limited, because malformed
//! BTF can contain cycles. Errors carry the byte offset within the section.
//!
//! Name lookups scan the type table linearly: gadget objects hold a few hundred types, and even a
//! kernel's 150k types scan in about a millisecond. No name index is built, so hostile BTF with a
//! million references to one long string costs no memory.

mod ext;
mod fields;
pub mod raw;
mod record;

use serde::Serialize;

use crate::Endianness;

pub use ext::{BtfExt, CoreRelo};
pub use fields::{Bitfield, EnumValue, Field, FieldKind};
pub(crate) use fields::{c_string, read_uint};

/// Longest typedef/qualifier chain or nesting followed before giving up (cycle guard).
pub const MAX_CHAIN: usize = 64;

const HEADER_MIN_LEN: usize = 24;
const TYPE_HEADER_LEN: usize = 12;

/// Why BTF could not be parsed or walked. Offsets are bytes from the start of the blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// A read ran past the end of the data.
    #[error("truncated at offset {offset:#x}: {what} needs {needed} bytes, {available} available")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The blob does not start with the BTF magic in either byte order.
    #[error("bad magic {magic:#06x} at offset 0x0, expected 0xeb9f")]
    BadMagic {
        /// The first two bytes, read little-endian.
        magic: u16,
    },
    /// Only BTF version 1 exists.
    #[error("unsupported BTF version {version} at offset 0x2, expected 1")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The header's lengths and offsets do not fit the blob.
    #[error("bad header: {reason}")]
    BadHeader {
        /// What is wrong.
        reason: String,
    },
    /// The string section is not a sequence of NUL-terminated UTF-8 strings.
    #[error("string section at offset {offset:#x}: {reason}")]
    BadStrings {
        /// Offset of the problem within the blob.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A type record has a kind this parser does not know.
    #[error("type [{type_id}] at offset {offset:#x}: unknown kind {kind}")]
    UnknownKind {
        /// The type id.
        type_id: u32,
        /// Offset of the record.
        offset: usize,
        /// The kind number.
        kind: u32,
    },
    /// A type record is structurally invalid.
    #[error("type [{type_id}] at offset {offset:#x}: {reason}")]
    BadType {
        /// The type id.
        type_id: u32,
        /// Offset of the record.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A type refers to an id that does not exist.
    #[error("type [{type_id}] {kind}: refers to type id {target}, but the last type id is {last}")]
    BadTypeRef {
        /// The referring type.
        type_id: u32,
        /// Its kind.
        kind: &'static str,
        /// The missing id.
        target: u32,
        /// The largest valid id.
        last: u32,
    },
    /// A name offset points outside the string section.
    #[error(
        "type [{type_id}]: name offset {name_off:#x} is outside the string section ({len} bytes)"
    )]
    BadNameOffset {
        /// The type id.
        type_id: u32,
        /// The offending offset.
        name_off: u32,
        /// String section length.
        len: usize,
    },
    /// A walk through the types followed more links than [`MAX_CHAIN`] (a cycle, or absurd nesting).
    #[error("type [{type_id}]: chain of type references longer than {limit}")]
    Cycle {
        /// Where the walk started.
        type_id: u32,
        /// The limit.
        limit: usize,
    },
    /// A type id that does not exist was asked for.
    #[error("no type with id {type_id}")]
    NoSuchType {
        /// The id.
        type_id: u32,
    },
    /// [`Btf::flatten_fields`] was asked to flatten something that is not a struct or union.
    #[error("type [{type_id}] `{name}` is a {kind}, not a struct or union")]
    NotComposite {
        /// The type id.
        type_id: u32,
        /// Its name.
        name: String,
        /// Its kind.
        kind: &'static str,
    },
    /// A member lies outside its containing type.
    #[error(
        "type [{type_id}] `{name}`: member `{member}` (bits {start}..{end}) lies outside the {size}-byte type"
    )]
    MemberOutOfBounds {
        /// The containing type.
        type_id: u32,
        /// Its name.
        name: String,
        /// The member's name.
        member: String,
        /// First bit.
        start: u64,
        /// One past the last bit.
        end: u64,
        /// The container's size in bytes.
        size: u32,
    },
    /// Flattening would produce more than [`fields::MAX_FIELDS`] fields.
    #[error("type [{type_id}] `{name}`: more than {limit} fields when flattened")]
    TooManyFields {
        /// The type id.
        type_id: u32,
        /// Its name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// The `.BTF.ext` blob is malformed.
    #[error("offset {offset:#x}: {reason}")]
    BadExt {
        /// Offset within `.BTF.ext`.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Encoding bits of a BTF `INT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IntEncoding {
    /// `BTF_INT_SIGNED`.
    pub signed: bool,
    /// `BTF_INT_CHAR` (clang never sets it; `char` is recognised by name as well).
    pub char: bool,
    /// `BTF_INT_BOOL`.
    pub bool: bool,
}

/// Linkage of a `FUNC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FuncLinkage {
    /// `static`.
    Static,
    /// Global.
    Global,
    /// `extern`.
    Extern,
}

/// Linkage of a `VAR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarLinkage {
    /// `static` (file scope).
    Static,
    /// Global, allocated in this object.
    Global,
    /// `extern`.
    Extern,
}

impl std::fmt::Display for VarLinkage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VarLinkage::Static => "static",
            VarLinkage::Global => "global",
            VarLinkage::Extern => "extern",
        })
    }
}

/// A struct or union member as stored in BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    name_off: u32,
    /// The member's type.
    pub type_id: u32,
    /// Offset in bits from the start of the containing type.
    pub bit_offset: u32,
    /// Bitfield width, when the containing type has `kind_flag` set and the width is non-zero.
    pub bitfield_size: Option<u32>,
}

/// One enumerator (ENUM or ENUM64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumerator {
    name_off: u32,
    /// The value's 64-bit pattern: sign-extended when the enum is signed, zero-extended otherwise.
    pub value: u64,
}

/// A `FUNC_PROTO` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncParam {
    name_off: u32,
    /// Its type (0 with an empty name means `...`).
    pub type_id: u32,
}

/// One variable (or function) placed in a `DATASEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecVar {
    /// The `VAR` (or `FUNC`) type id.
    pub type_id: u32,
    /// Offset within the section as recorded in BTF. Clang writes 0 here; libbpf fixes it up
    /// from the symbol table, and so does [`crate::GadgetObject`].
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// What a type is. Ids in here are always valid for the [`Btf`] they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeKind {
    /// Type id 0.
    Void,
    /// `INT`.
    Int {
        /// Size in bytes.
        size: u32,
        /// Encoding bits.
        encoding: IntEncoding,
        /// Bit offset of the value within the storage (legacy bitfields).
        offset: u32,
        /// Number of value bits.
        bits: u32,
    },
    /// `PTR`.
    Ptr {
        /// Pointee.
        target: u32,
    },
    /// `ARRAY`.
    Array {
        /// Element type.
        elem: u32,
        /// Index type.
        index: u32,
        /// Number of elements.
        len: u32,
    },
    /// `STRUCT`.
    Struct {
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// `UNION`.
    Union {
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// `ENUM` or `ENUM64`.
    Enum {
        /// Size in bytes.
        size: u32,
        /// Whether the values are signed (`kind_flag`).
        signed: bool,
        /// Whether this was an `ENUM64` record.
        is64: bool,
        /// Enumerators in declaration order.
        values: Vec<Enumerator>,
    },
    /// `FWD`: a declared but not defined struct or union.
    Fwd {
        /// `union` rather than `struct`.
        union: bool,
    },
    /// `TYPEDEF`.
    Typedef {
        /// The aliased type.
        target: u32,
    },
    /// `VOLATILE`.
    Volatile {
        /// The qualified type.
        target: u32,
    },
    /// `CONST`.
    Const {
        /// The qualified type.
        target: u32,
    },
    /// `RESTRICT`.
    Restrict {
        /// The qualified type.
        target: u32,
    },
    /// `FUNC`.
    Func {
        /// Its `FUNC_PROTO`.
        proto: u32,
        /// Linkage.
        linkage: FuncLinkage,
    },
    /// `FUNC_PROTO`.
    FuncProto {
        /// Return type.
        ret: u32,
        /// Parameters.
        params: Vec<FuncParam>,
    },
    /// `VAR`.
    Var {
        /// The variable's type.
        target: u32,
        /// Linkage.
        linkage: VarLinkage,
    },
    /// `DATASEC`.
    DataSec {
        /// Size as recorded (clang writes 0).
        size: u32,
        /// Variables in the section.
        vars: Vec<SecVar>,
    },
    /// `FLOAT`.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// `DECL_TAG`.
    DeclTag {
        /// The tagged type.
        target: u32,
        /// -1 for the type itself, else the member or parameter index.
        component: i32,
    },
    /// `TYPE_TAG`.
    TypeTag {
        /// The tagged type.
        target: u32,
    },
}

impl TypeKind {
    /// The BTF kind name, as bpftool prints it (`STRUCT`, `TYPEDEF`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            TypeKind::Void => "VOID",
            TypeKind::Int { .. } => "INT",
            TypeKind::Ptr { .. } => "PTR",
            TypeKind::Array { .. } => "ARRAY",
            TypeKind::Struct { .. } => "STRUCT",
            TypeKind::Union { .. } => "UNION",
            TypeKind::Enum { is64: false, .. } => "ENUM",
            TypeKind::Enum { is64: true, .. } => "ENUM64",
            TypeKind::Fwd { .. } => "FWD",
            TypeKind::Typedef { .. } => "TYPEDEF",
            TypeKind::Volatile { .. } => "VOLATILE",
            TypeKind::Const { .. } => "CONST",
            TypeKind::Restrict { .. } => "RESTRICT",
            TypeKind::Func { .. } => "FUNC",
            TypeKind::FuncProto { .. } => "FUNC_PROTO",
            TypeKind::Var { .. } => "VAR",
            TypeKind::DataSec { .. } => "DATASEC",
            TypeKind::Float { .. } => "FLOAT",
            TypeKind::DeclTag { .. } => "DECL_TAG",
            TypeKind::TypeTag { .. } => "TYPE_TAG",
        }
    }

    /// The single type this kind refers to, for kinds that refer to exactly one.
    fn target(&self) -> Option<u32> {
        match *self {
            TypeKind::Ptr { target }
            | TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::Var { target, .. }
            | TypeKind::DeclTag { target, .. }
            | TypeKind::TypeTag { target } => Some(target),
            TypeKind::Func { proto, .. } => Some(proto),
            _ => None,
        }
    }

    fn is_qualifier(&self) -> bool {
        matches!(
            self,
            TypeKind::Const { .. }
                | TypeKind::Volatile { .. }
                | TypeKind::Restrict { .. }
                | TypeKind::TypeTag { .. }
        )
    }
}

/// One BTF type: a name (possibly empty) and a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    name_off: u32,
    /// What the type is.
    pub kind: TypeKind,
}

/// Parsed BTF. Type id `n` is `types()[n]`; id 0 is `void`.
#[derive(Debug, Clone)]
pub struct Btf {
    endianness: Endianness,
    types: Vec<Type>,
    strings: Vec<u8>,
}

/// Little helper reading fixed-size integers with bounds checks.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    big: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], endianness: Endianness) -> Self {
        Reader {
            data,
            big: endianness == Endianness::Big,
        }
    }

    pub(crate) fn bytes(
        &self,
        offset: usize,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], BtfError> {
        let available = self.data.len().saturating_sub(offset);
        if len > available {
            return Err(BtfError::Truncated {
                offset,
                what,
                needed: len,
                available,
            });
        }
        Ok(&self.data[offset..offset + len])
    }

    pub(crate) fn u32(&self, offset: usize, what: &'static str) -> Result<u32, BtfError> {
        let b = self.bytes(offset, 4, what)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
}

/// Reads the BTF magic and returns the blob's byte order.
pub(crate) fn detect_endianness(data: &[u8]) -> Result<Endianness, BtfError> {
    match data {
        [0x9f, 0xeb, ..] => Ok(Endianness::Little),
        [0xeb, 0x9f, ..] => Ok(Endianness::Big),
        [a, b, ..] => Err(BtfError::BadMagic {
            magic: u16::from_le_bytes([*a, *b]),
        }),
        _ => Err(BtfError::Truncated {
            offset: 0,
            what: "BTF magic",
            needed: 2,
            available: data.len(),
        }),
    }
}

impl Btf {
    /// Parses a raw BTF blob (the contents of a `.BTF` section, or `/sys/kernel/btf/vmlinux`).
    /// The byte order is taken from the magic.
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let endianness = detect_endianness(data)?;
        let r = Reader::new(data, endianness);
        let version = r.bytes(2, 1, "header version")?[0];
        if version != 1 {
            return Err(BtfError::UnsupportedVersion { version });
        }
        let hdr_len = r.u32(4, "header length")? as usize;
        if hdr_len < HEADER_MIN_LEN {
            return Err(BtfError::BadHeader {
                reason: format!("header length {hdr_len} is less than {HEADER_MIN_LEN}"),
            });
        }
        if hdr_len > data.len() {
            return Err(BtfError::BadHeader {
                reason: format!(
                    "header length {hdr_len} exceeds the blob's {} bytes",
                    data.len()
                ),
            });
        }
        let type_off = r.u32(8, "type_off")? as usize;
        let type_len = r.u32(12, "type_len")? as usize;
        let str_off = r.u32(16, "str_off")? as usize;
        let str_len = r.u32(20, "str_len")? as usize;
        let region = |name: &str, off: usize, len: usize| -> Result<(usize, usize), BtfError> {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(s), Some(e)) if e <= data.len() => Ok((s, e)),
                _ => Err(BtfError::BadHeader {
                    reason: format!(
                        "{name} section (offset {off:#x}, length {len:#x} after a {hdr_len}-byte header) exceeds the blob's {} bytes",
                        data.len()
                    ),
                }),
            }
        };
        let (type_start, type_end) = region("type", type_off, type_len)?;
        let (str_start, str_end) = region("string", str_off, str_len)?;
        let strings = data[str_start..str_end].to_vec();
        validate_strings(&strings, str_start)?;

        let mut btf = Btf {
            endianness,
            types: vec![Type {
                name_off: 0,
                kind: TypeKind::Void,
            }],
            strings,
        };
        let mut pos = type_start;
        while pos < type_end {
            let type_id = u32::try_from(btf.types.len()).map_err(|_| BtfError::BadHeader {
                reason: "more than 2^32 types".to_string(),
            })?;
            let (ty, next) = record::parse_type(&r, pos, type_end, type_id)?;
            btf.types.push(ty);
            pos = next;
        }
        btf.validate()?;
        Ok(btf)
    }

    /// BTF holding only `void`, for objects without a `.BTF` section.
    pub fn empty(endianness: Endianness) -> Btf {
        Btf {
            endianness,
            types: vec![Type {
                name_off: 0,
                kind: TypeKind::Void,
            }],
            strings: vec![0],
        }
    }

    /// Checks every name offset and type reference.
    fn validate(&self) -> Result<(), BtfError> {
        let last = (self.types.len() - 1) as u32;
        let check_ref = |type_id: u32, kind: &'static str, target: u32| {
            if target > last {
                Err(BtfError::BadTypeRef {
                    type_id,
                    kind,
                    target,
                    last,
                })
            } else {
                Ok(())
            }
        };
        let check_name = |type_id: u32, name_off: u32| {
            if name_off as usize >= self.strings.len() && name_off != 0 {
                Err(BtfError::BadNameOffset {
                    type_id,
                    name_off,
                    len: self.strings.len(),
                })
            } else {
                Ok(())
            }
        };
        for (id, ty) in self.types.iter().enumerate().skip(1) {
            let id = id as u32;
            let kind = ty.kind.name();
            check_name(id, ty.name_off)?;
            if let Some(t) = ty.kind.target() {
                check_ref(id, kind, t)?;
            }
            match &ty.kind {
                TypeKind::Array { elem, index, .. } => {
                    check_ref(id, kind, *elem)?;
                    check_ref(id, kind, *index)?;
                }
                TypeKind::Struct { members, .. } | TypeKind::Union { members, .. } => {
                    for m in members {
                        check_name(id, m.name_off)?;
                        check_ref(id, kind, m.type_id)?;
                    }
                }
                TypeKind::Enum { values, .. } => {
                    for v in values {
                        check_name(id, v.name_off)?;
                    }
                }
                TypeKind::FuncProto { ret, params } => {
                    check_ref(id, kind, *ret)?;
                    for p in params {
                        check_name(id, p.name_off)?;
                        check_ref(id, kind, p.type_id)?;
                    }
                }
                TypeKind::DataSec { vars, .. } => {
                    for v in vars {
                        check_ref(id, kind, v.type_id)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Byte order of the blob.
    pub fn endianness(&self) -> Endianness {
        self.endianness
    }

    /// Number of type ids, including `void` (id 0).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the blob holds no types besides `void`.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// All types, indexed by id.
    pub fn types(&self) -> &[Type] {
        &self.types
    }

    /// The type with this id.
    pub fn get(&self, type_id: u32) -> Option<&Type> {
        self.types.get(type_id as usize)
    }

    /// The type with this id, or an error naming the id.
    pub fn type_by_id(&self, type_id: u32) -> Result<&Type, BtfError> {
        self.get(type_id).ok_or(BtfError::NoSuchType { type_id })
    }

    /// The string at `offset` in the string section (empty when out of range or not UTF-8 at
    /// that offset).
    pub fn str_at(&self, offset: u32) -> &str {
        let Some(tail) = self.strings.get(offset as usize..) else {
            return "";
        };
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        std::str::from_utf8(&tail[..end]).unwrap_or("")
    }

    fn name_bytes(&self, name_off: u32) -> &[u8] {
        let Some(tail) = self.strings.get(name_off as usize..) else {
            return &[];
        };
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        &tail[..end]
    }

    /// The name of a type (empty for anonymous types and `void`).
    pub fn name(&self, type_id: u32) -> &str {
        self.get(type_id).map_or("", |t| self.str_at(t.name_off))
    }

    /// The name of a type record (empty for anonymous types).
    pub fn name_of(&self, ty: &Type) -> &str {
        self.str_at(ty.name_off)
    }

    /// A member's name (empty for anonymous members).
    pub fn member_name(&self, member: &Member) -> &str {
        self.str_at(member.name_off)
    }

    /// An enumerator's name.
    pub fn enumerator_name(&self, value: &Enumerator) -> &str {
        self.str_at(value.name_off)
    }

    /// A function parameter's name.
    pub fn param_name(&self, param: &FuncParam) -> &str {
        self.str_at(param.name_off)
    }

    /// Ids of every type named `name`, in id order.
    pub fn ids_by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        let wanted = name.as_bytes();
        self.types
            .iter()
            .enumerate()
            .skip(1)
            .filter(move |(_, t)| !wanted.is_empty() && self.name_bytes(t.name_off) == wanted)
            .map(|(id, _)| id as u32)
    }

    /// The first type named `name` whose kind passes `filter`.
    pub fn find(&self, name: &str, filter: impl Fn(&TypeKind) -> bool) -> Option<u32> {
        self.ids_by_name(name)
            .find(|&id| filter(&self.types[id as usize].kind))
    }

    /// Looks a name up the way a C programmer would mean it: a struct or union definition first,
    /// then a typedef, then an enum, int or float, then a `VAR`. Forward declarations are skipped.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.struct_by_name(name)
            .or_else(|| self.find(name, |k| matches!(k, TypeKind::Typedef { .. })))
            .or_else(|| {
                self.find(name, |k| {
                    matches!(
                        k,
                        TypeKind::Enum { .. } | TypeKind::Int { .. } | TypeKind::Float { .. }
                    )
                })
            })
            .or_else(|| self.var_by_name(name))
    }

    /// A struct or union definition (not a forward declaration) named `name`.
    pub fn struct_by_name(&self, name: &str) -> Option<u32> {
        self.find(name, |k| {
            matches!(k, TypeKind::Struct { .. } | TypeKind::Union { .. })
        })
    }

    /// A `VAR` named `name`.
    pub fn var_by_name(&self, name: &str) -> Option<u32> {
        self.find(name, |k| matches!(k, TypeKind::Var { .. }))
    }

    /// A `DATASEC` named `name` (for example `.rodata`).
    pub fn datasec_by_name(&self, name: &str) -> Option<u32> {
        self.find(name, |k| matches!(k, TypeKind::DataSec { .. }))
    }

    /// A `FUNC` named `name`.
    pub fn func_by_name(&self, name: &str) -> Option<u32> {
        self.find(name, |k| matches!(k, TypeKind::Func { .. }))
    }

    /// Follows typedefs and qualifiers (const, volatile, restrict, type tags) to the underlying
    /// type. Stops early (returning where it got to) on a chain longer than [`MAX_CHAIN`].
    pub fn resolve(&self, type_id: u32) -> u32 {
        self.walk(type_id, |k| {
            matches!(k, TypeKind::Typedef { .. }) || k.is_qualifier()
        })
    }

    /// Like [`Btf::resolve`], but an error on a cycle.
    pub fn try_resolve(&self, type_id: u32) -> Result<u32, BtfError> {
        let mut id = type_id;
        for _ in 0..MAX_CHAIN {
            let ty = self.type_by_id(id)?;
            match ty.kind {
                TypeKind::Typedef { target }
                | TypeKind::Const { target }
                | TypeKind::Volatile { target }
                | TypeKind::Restrict { target }
                | TypeKind::TypeTag { target } => id = target,
                _ => return Ok(id),
            }
        }
        Err(BtfError::Cycle {
            type_id,
            limit: MAX_CHAIN,
        })
    }

    /// Follows qualifiers only (const, volatile, restrict, type tags); typedefs are kept.
    pub fn skip_qualifiers(&self, type_id: u32) -> u32 {
        self.walk(type_id, TypeKind::is_qualifier)
    }

    fn walk(&self, type_id: u32, through: impl Fn(&TypeKind) -> bool) -> u32 {
        let mut id = type_id;
        for _ in 0..MAX_CHAIN {
            match self.get(id) {
                Some(t) if through(&t.kind) => match t.kind.target() {
                    Some(next) => id = next,
                    None => return id,
                },
                _ => return id,
            }
        }
        id
    }

    /// Size in bytes of a type, following typedefs and qualifiers; `None` for types without a
    /// size (void, functions, forward declarations) or on overflow or a cycle.
    pub fn size_of(&self, type_id: u32) -> Option<u32> {
        let mut id = type_id;
        let mut factor: u32 = 1;
        for _ in 0..MAX_CHAIN {
            let ty = self.get(id)?;
            match &ty.kind {
                TypeKind::Int { size, .. }
                | TypeKind::Struct { size, .. }
                | TypeKind::Union { size, .. }
                | TypeKind::Enum { size, .. }
                | TypeKind::Float { size }
                | TypeKind::DataSec { size, .. } => return factor.checked_mul(*size),
                TypeKind::Ptr { .. } => return factor.checked_mul(8),
                TypeKind::Array { elem, len, .. } => {
                    factor = factor.checked_mul(*len)?;
                    id = *elem;
                }
                TypeKind::Typedef { target }
                | TypeKind::Const { target }
                | TypeKind::Volatile { target }
                | TypeKind::Restrict { target }
                | TypeKind::TypeTag { target }
                | TypeKind::Var { target, .. } => id = *target,
                TypeKind::Void
                | TypeKind::Fwd { .. }
                | TypeKind::Func { .. }
                | TypeKind::FuncProto { .. }
                | TypeKind::DeclTag { .. } => {
                    return None;
                }
            }
        }
        None
    }

    /// The outermost *name* of a type, as the runtime sees it: qualifiers are skipped, and the
    /// first name found is returned, so a member declared `gadget_pid pid` gives `gadget_pid`
    /// (not `__u32` or `unsigned int`). For an array, the element's outermost name
    /// (`gadget_comm comm[16]` gives `gadget_comm`). Empty for anonymous types and pointers.
    pub fn type_name(&self, type_id: u32) -> &str {
        let mut id = type_id;
        for _ in 0..MAX_CHAIN {
            let Some(ty) = self.get(id) else { return "" };
            match ty.kind {
                TypeKind::Const { target }
                | TypeKind::Volatile { target }
                | TypeKind::Restrict { target }
                | TypeKind::TypeTag { target } => id = target,
                TypeKind::Array { elem, .. } => id = elem,
                TypeKind::Void => return "void",
                _ => return self.str_at(ty.name_off),
            }
        }
        ""
    }

    /// A C spelling of the type, for people: `gadget_comm[16]`, `struct gadget_process`,
    /// `const volatile __u32`, `void *`.
    pub fn c_type(&self, type_id: u32) -> String {
        self.c_type_depth(type_id, 0)
    }

    fn c_type_depth(&self, type_id: u32, depth: usize) -> String {
        if depth > MAX_CHAIN {
            return "...".to_string();
        }
        let Some(ty) = self.get(type_id) else {
            return format!("<bad type {type_id}>");
        };
        let name = self.str_at(ty.name_off);
        let named = |prefix: &str| {
            if name.is_empty() {
                format!("{prefix} (anon)")
            } else {
                format!("{prefix} {name}")
            }
        };
        match &ty.kind {
            TypeKind::Void => "void".to_string(),
            TypeKind::Int { .. } | TypeKind::Float { .. } | TypeKind::Typedef { .. } => {
                name.to_string()
            }
            TypeKind::Struct { .. } => named("struct"),
            TypeKind::Union { .. } => named("union"),
            TypeKind::Enum { .. } => named("enum"),
            TypeKind::Fwd { union } => named(if *union { "union" } else { "struct" }),
            TypeKind::Ptr { target } => format!("{} *", self.c_type_depth(*target, depth + 1)),
            TypeKind::Const { target } => {
                format!("const {}", self.c_type_depth(*target, depth + 1))
            }
            TypeKind::Volatile { target } => {
                format!("volatile {}", self.c_type_depth(*target, depth + 1))
            }
            TypeKind::Restrict { target } => {
                format!("{} restrict", self.c_type_depth(*target, depth + 1))
            }
            TypeKind::TypeTag { target } => self.c_type_depth(*target, depth + 1),
            TypeKind::Array { .. } => {
                let mut dims = String::new();
                let mut id = type_id;
                for _ in 0..MAX_CHAIN {
                    match self.get(id).map(|t| &t.kind) {
                        Some(TypeKind::Array { elem, len, .. }) => {
                            dims.push_str(&format!("[{len}]"));
                            id = *elem;
                        }
                        _ => break,
                    }
                }
                format!("{}{dims}", self.c_type_depth(id, depth + 1))
            }
            TypeKind::Func { .. } => format!("func {name}"),
            TypeKind::FuncProto { .. } => "func_proto".to_string(),
            TypeKind::Var { target, .. } => self.c_type_depth(*target, depth + 1),
            TypeKind::DataSec { .. } => format!("datasec {name}"),
            TypeKind::DeclTag { .. } => format!("decl_tag {name}"),
        }
    }

    /// Whether a variable of this type is `const volatile` (both qualifiers before the first
    /// non-qualifier type, in either order, through typedefs), or an array of such elements.
    pub fn is_const_volatile(&self, type_id: u32) -> bool {
        let (mut is_const, mut is_volatile) = (false, false);
        let mut id = type_id;
        for _ in 0..MAX_CHAIN {
            match self.get(id).map(|t| &t.kind) {
                Some(TypeKind::Const { target }) => {
                    is_const = true;
                    id = *target;
                }
                Some(TypeKind::Volatile { target }) => {
                    is_volatile = true;
                    id = *target;
                }
                Some(
                    TypeKind::Restrict { target }
                    | TypeKind::TypeTag { target }
                    | TypeKind::Typedef { target },
                ) => {
                    id = *target;
                }
                Some(TypeKind::Array { elem, .. }) if !is_const && !is_volatile => id = *elem,
                _ => break,
            }
        }
        is_const && is_volatile
    }

    /// All `DATASEC`s: (type id, name).
    pub fn datasecs(&self) -> impl Iterator<Item = (u32, &str)> {
        self.types
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.kind, TypeKind::DataSec { .. }))
            .map(|(id, t)| (id as u32, self.str_at(t.name_off)))
    }

    /// The `DATASEC` a `VAR` (by type id) sits in, with its entry.
    pub fn section_of_var(&self, var_id: u32) -> Option<(&str, SecVar)> {
        self.types.iter().find_map(|t| match &t.kind {
            TypeKind::DataSec { vars, .. } => vars
                .iter()
                .find(|v| v.type_id == var_id)
                .map(|v| (self.str_at(t.name_off), *v)),
            _ => None,
        })
    }

    /// All `VAR`s: (type id, name, linkage).
    pub fn vars(&self) -> impl Iterator<Item = (u32, &str, VarLinkage)> {
        self.types
            .iter()
            .enumerate()
            .filter_map(|(id, t)| match t.kind {
                TypeKind::Var { linkage, .. } => {
                    Some((id as u32, self.str_at(t.name_off), linkage))
                }
                _ => None,
            })
    }
}

/// Checks that the string section starts with NUL, ends with NUL and is UTF-8 between NULs.
fn validate_strings(strings: &[u8], base: usize) -> Result<(), BtfError> {
    if strings.is_empty() {
        return Ok(());
    }
    if strings[0] != 0 {
        return Err(BtfError::BadStrings {
            offset: base,
            reason: "does not start with a NUL byte",
        });
    }
    if strings[strings.len() - 1] != 0 {
        return Err(BtfError::BadStrings {
            offset: base + strings.len() - 1,
            reason: "does not end with a NUL byte",
        });
    }
    let mut start = 0;
    for chunk in strings.split(|&b| b == 0) {
        if std::str::from_utf8(chunk).is_err() {
            return Err(BtfError::BadStrings {
                offset: base + start,
                reason: "string is not UTF-8",
            });
        }
        start += chunk.len() + 1;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gadget_facts::btf::kind::{
        ARRAY as KIND_ARRAY, INT as KIND_INT, STRUCT as KIND_STRUCT, TYPEDEF as KIND_TYPEDEF,
    };

    /// Builds little-endian BTF blobs by hand for tests.
    #[derive(Default)]
    pub(crate) struct BtfBuilder {
        types: Vec<u8>,
        strings: Vec<u8>,
    }

    impl BtfBuilder {
        pub(crate) fn new() -> Self {
            BtfBuilder {
                types: Vec::new(),
                strings: vec![0],
            }
        }

        pub(crate) fn string(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        pub(crate) fn raw(&mut self, words: &[u32]) {
            for w in words {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
        }

        pub(crate) fn header(
            &mut self,
            name: &str,
            kind: u32,
            vlen: u32,
            kind_flag: bool,
            size_or_type: u32,
        ) {
            let name_off = self.string(name);
            let info = (u32::from(kind_flag) << 31) | (kind << 24) | vlen;
            self.raw(&[name_off, info, size_or_type]);
        }

        pub(crate) fn int(&mut self, name: &str, size: u32, signed: bool) {
            self.header(name, KIND_INT, 0, false, size);
            self.raw(&[(u32::from(signed) << 24) | (size * 8)]);
        }

        pub(crate) fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&0xeb9fu16.to_le_bytes());
            out.push(1);
            out.push(0);
            out.extend_from_slice(&24u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
            out.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
            out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    #[test]
    fn parses_ints_typedefs_and_structs() {
        let mut b = BtfBuilder::new();
        b.int("unsigned int", 4, false); // 1
        b.header("__u32", KIND_TYPEDEF, 0, false, 1); // 2
        b.header("pair", KIND_STRUCT, 2, false, 8); // 3
        let (a, c) = (b.string("a"), b.string("b"));
        b.raw(&[a, 2, 0, c, 1, 32]);
        let btf = Btf::parse(&b.build()).unwrap();
        assert_eq!(btf.len(), 4);
        assert_eq!(btf.lookup("pair"), Some(3));
        assert_eq!(btf.lookup("__u32"), Some(2));
        assert_eq!(btf.resolve(2), 1);
        assert_eq!(btf.size_of(3), Some(8));
        assert_eq!(btf.type_name(2), "__u32");
        assert_eq!(btf.c_type(3), "struct pair");
        let TypeKind::Struct { members, .. } = &btf.types()[3].kind else {
            panic!()
        };
        assert_eq!(btf.member_name(&members[1]), "b");
        assert_eq!(members[1].bit_offset, 32);
    }

    #[test]
    fn rejects_dangling_type_reference() {
        let mut b = BtfBuilder::new();
        b.header("t", KIND_TYPEDEF, 0, false, 7);
        let err = Btf::parse(&b.build()).unwrap_err();
        assert_eq!(
            err,
            BtfError::BadTypeRef {
                type_id: 1,
                kind: "TYPEDEF",
                target: 7,
                last: 1
            }
        );
        assert!(err.to_string().contains("refers to type id 7"), "{err}");
    }

    #[test]
    fn rejects_huge_vlen_without_allocating() {
        let mut b = BtfBuilder::new();
        b.header("s", KIND_STRUCT, 0xffff, false, 4);
        let err = Btf::parse(&b.build()).unwrap_err();
        assert!(
            matches!(
                err,
                BtfError::Truncated {
                    what: "STRUCT/UNION members",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_unknown_kind_with_offset() {
        let mut b = BtfBuilder::new();
        b.int("int", 4, true);
        b.header("x", 31, 0, false, 0);
        let err = Btf::parse(&b.build()).unwrap_err();
        assert_eq!(
            err,
            BtfError::UnknownKind {
                type_id: 2,
                offset: 24 + 16,
                kind: 31
            }
        );
    }

    #[test]
    fn rejects_bad_header_lengths() {
        let mut blob = BtfBuilder::new().build();
        blob[20..24].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let err = Btf::parse(&blob).unwrap_err();
        assert!(matches!(err, BtfError::BadHeader { .. }), "{err}");
        assert!(matches!(
            Btf::parse(&[0x9f]),
            Err(BtfError::Truncated { .. })
        ));
        assert!(matches!(
            Btf::parse(&[1, 2, 3]),
            Err(BtfError::BadMagic { magic: 0x0201 })
        ));
    }

    #[test]
    fn rejects_bad_name_offset_and_strings() {
        let mut b = BtfBuilder::new();
        b.raw(&[999, KIND_INT << 24, 4, 32]);
        assert!(matches!(
            Btf::parse(&b.build()),
            Err(BtfError::BadNameOffset { name_off: 999, .. })
        ));
        let mut b = BtfBuilder::new();
        b.strings = vec![0, 0xff, 0xfe, 0];
        assert!(matches!(
            Btf::parse(&b.build()),
            Err(BtfError::BadStrings {
                reason: "string is not UTF-8",
                ..
            })
        ));
    }

    #[test]
    fn typedef_cycle_does_not_hang() {
        let mut b = BtfBuilder::new();
        b.header("a", KIND_TYPEDEF, 0, false, 2);
        b.header("b", KIND_TYPEDEF, 0, false, 1);
        let btf = Btf::parse(&b.build()).unwrap();
        let _ = btf.resolve(1);
        assert_eq!(btf.size_of(1), None);
        assert!(matches!(btf.try_resolve(1), Err(BtfError::Cycle { .. })));
        assert!(!btf.c_type(1).is_empty());
        assert!(!btf.is_const_volatile(1));
    }

    #[test]
    fn array_size_overflow_is_none() {
        let mut b = BtfBuilder::new();
        b.int("int", 4, true); // 1
        b.header("", KIND_ARRAY, 0, false, 0); // 2
        b.raw(&[1, 1, u32::MAX]);
        let btf = Btf::parse(&b.build()).unwrap();
        assert_eq!(btf.size_of(2), None);
    }
}
