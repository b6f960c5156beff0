//! Decoding records with the object's BTF.
//!
//! A [`Decoder`] is built once per data source from the flattened fields of its struct
//! (`gadget_object::Btf::flatten_fields`) and gadget.yaml's field annotations; it then turns each
//! record's bytes into one JSON object without allocating per field.
//!
//! # Rules
//!
//! - Integers are JSON numbers (128-bit integers are decimal strings); `_Bool` is `true`/`false`;
//!   floats are numbers; pointers are numbers; other arrays are JSON arrays.
//! - `char` arrays are strings, up to the first NUL (invalid UTF-8 is replaced). A single `char`
//!   is a number (as upstream), shown in columns as the character when printable (`R`).
//! - Nested structs and unions are flattened with dotted names (`proc.parent.comm`); the
//!   containers themselves produce no value. Fields named `__...` (and everything inside them)
//!   are dropped.
//! - Enums are shown by enumerator name (the number when no enumerator matches).
//! - The `gadget_*` types are shown as what they mean: `gadget_timestamp` (boot-time ns) as
//!   RFC 3339 wall-clock time, `gadget_errno` as `ENOENT`, `gadget_signal` as `SIGKILL`,
//!   `gadget_syscall` as the syscall name, `gadget_file_flags` as `O_RDONLY|O_CLOEXEC`,
//!   `gadget_file_mode` as `-rw-r--r--`, and `struct gadget_l3endpoint_t` /
//!   `gadget_l4endpoint_t` as `ip` / `ip:port` (plus `<name>.proto` for L4). A field named
//!   `<x>_raw` keeps its number and gains a formatted sibling `<x>` (upstream's convention:
//!   `timestamp_raw` → `timestamp`, `error_raw` → `error`, `flags_raw` → `flags`); other typed
//!   fields are replaced by their formatted value.
//! - Annotations that change values: `json.skip: true` drops the field from JSON; a `template`
//!   of `timestamp`, `errno`, `signal` or `syscall` on a plain integer formats it like the typed
//!   field. Column annotations (`columns.*`) are used by the column printer.

pub mod format;
mod syscalls;

use std::collections::BTreeMap;

use gadget_object::{DataSourceKind, Field, FieldKind, GadgetObject};

pub use format::Clock;
pub use syscalls::syscall_name;

use crate::metadata::Metadata;

/// A data source's struct could not be turned into a decoder.
#[derive(Debug, thiserror::Error)]
#[error("data source `{datasource}`: {reason}")]
pub struct DecodeError {
    /// The data source.
    pub datasource: String,
    /// Why.
    pub reason: String,
}

/// How one field's bytes become a value.
#[derive(Debug, Clone, PartialEq)]
enum How {
    Unsigned,
    Signed,
    Bool,
    F32,
    F64,
    Bits {
        bit_offset: u32,
        bits: u32,
        signed: bool,
    },
    Wide {
        signed: bool,
    },
    Str,
    Enum {
        signed: bool,
        values: Vec<(i128, String)>,
    },
    Array {
        elem: Box<How>,
        elem_size: usize,
        len: usize,
    },
    Hex,
    Timestamp,
    Errno,
    Signal,
    Syscall,
    FileFlags,
    FileMode,
    Proto,
    L3 {
        version_off: usize,
    },
    L4 {
        version_off: usize,
        port_off: usize,
    },
}

impl How {
    fn numeric(&self) -> bool {
        matches!(
            self,
            How::Unsigned | How::Signed | How::F32 | How::F64 | How::Bits { .. }
        )
    }
}

/// Decimal digits of the largest value of an integer of `size` bytes, plus a sign.
fn int_digits(size: usize) -> usize {
    match size {
        1 => 4,
        2 => 6,
        3 | 4 => 11,
        5..=8 => 20,
        _ => 0,
    }
}

/// One output field.
#[derive(Debug, Clone)]
struct Plan {
    name: String,
    json_key: Vec<u8>,
    offset: usize,
    size: usize,
    how: How,
    json_skip: bool,
    annotations: BTreeMap<String, String>,
    /// A single `char` (a task state such as `R`): a number in JSON, as upstream, but the
    /// character itself in columns.
    char_column: bool,
}

/// A field as the column printer sees it.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    /// Dotted name.
    pub name: String,
    /// gadget.yaml annotations of the field.
    pub annotations: BTreeMap<String, String>,
    /// A number (right-aligned by default).
    pub numeric: bool,
    /// Widest text the value can have when it is an integer (0: not one, or not known).
    pub max_digits: usize,
}

/// Decodes the records of one data source.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Data source name.
    pub name: String,
    /// Its kind.
    pub kind: DataSourceKind,
    /// The map (tracers, map iterators).
    pub map: Option<String>,
    /// The programs (iterators).
    pub programs: Vec<String>,
    /// Bytes of one record (key + value for map iterators).
    pub record_size: usize,
    /// For map iterators: the key's size (the value follows it).
    pub key_size: usize,
    plans: Vec<Plan>,
    clock: Clock,
    big: bool,
}

fn json_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 3);
    push_json_str(&mut k, name.as_bytes());
    k.push(b':');
    k
}

/// The typed meaning of a field from its outermost type name or `template` annotation.
fn typed(type_name: &str, template: Option<&str>) -> Option<How> {
    Some(match (type_name, template) {
        ("gadget_timestamp", _) | (_, Some("timestamp")) => How::Timestamp,
        ("gadget_errno", _) | (_, Some("errno")) => How::Errno,
        ("gadget_signal", _) | (_, Some("signal")) => How::Signal,
        ("gadget_syscall", _) | (_, Some("syscall")) => How::Syscall,
        ("gadget_file_flags", _) => How::FileFlags,
        ("gadget_file_mode", _) => How::FileMode,
        _ => return None,
    })
}

fn plain(kind: &FieldKind, field: Option<&Field>) -> How {
    if let Some(bf) = field.and_then(|f| f.bitfield) {
        let signed = matches!(
            kind,
            FieldKind::Int { signed: true, .. } | FieldKind::Enum { signed: true, .. }
        );
        return How::Bits {
            bit_offset: bf.bit_offset,
            bits: bf.bits,
            signed,
        };
    }
    match kind {
        FieldKind::Int { signed, bits } if *bits > 64 => How::Wide { signed: *signed },
        FieldKind::Int { signed: true, .. } => How::Signed,
        FieldKind::Int { signed: false, .. } => How::Unsigned,
        FieldKind::Bool => How::Bool,
        FieldKind::Float { bits: 32 } => How::F32,
        FieldKind::Float { bits: 64 } => How::F64,
        FieldKind::Enum { signed, values, .. } => How::Enum {
            signed: *signed,
            values: values.iter().map(|v| (v.value, v.name.clone())).collect(),
        },
        FieldKind::String { .. } => How::Str,
        FieldKind::Array {
            len,
            elem_size,
            elem,
        } => How::Array {
            elem: Box::new(plain(elem, None)),
            elem_size: *elem_size as usize,
            len: *len as usize,
        },
        FieldKind::Pointer => How::Unsigned,
        _ => How::Hex,
    }
}

impl Decoder {
    /// Decoders for every data source of `obj`.
    pub fn for_object(
        obj: &GadgetObject,
        metadata: Option<&Metadata>,
        clock: Clock,
    ) -> Result<Vec<Decoder>, DecodeError> {
        obj.data_sources()
            .into_iter()
            .map(|ds| {
                let err = |reason: String| DecodeError {
                    datasource: ds.name.clone(),
                    reason,
                };
                let btf = obj.btf();
                let meta = metadata.and_then(|m| m.datasources.get(&ds.name));
                let annotations = |name: &str| {
                    meta.and_then(|m| m.field(name))
                        .cloned()
                        .unwrap_or_default()
                };
                let big = obj.elf().endianness == gadget_object::Endianness::Big;
                let mut d = Decoder {
                    name: ds.name.clone(),
                    kind: ds.kind,
                    map: ds.map.clone(),
                    programs: ds.programs.clone(),
                    record_size: 0,
                    key_size: 0,
                    plans: Vec::new(),
                    clock,
                    big,
                };
                let parts: Vec<u32> = match ds.kind {
                    DataSourceKind::MapIter => {
                        let map = ds
                            .map
                            .as_deref()
                            .and_then(|m| obj.map(m))
                            .ok_or_else(|| err("its map is missing".into()))?;
                        match (map.key_type_id, map.value_type_id) {
                            (Some(k), Some(v)) => vec![k, v],
                            _ => {
                                return Err(err(format!(
                                    "map `{}` declares no key and value types",
                                    map.name
                                )));
                            }
                        }
                    }
                    _ => {
                        let s = ds.structs.first().ok_or_else(|| err("no struct".into()))?;
                        vec![
                            btf.struct_by_name(s)
                                .ok_or_else(|| err(format!("struct `{s}` is not in the BTF")))?,
                        ]
                    }
                };
                let mut base = 0usize;
                for (i, type_id) in parts.iter().enumerate() {
                    let fields = btf
                        .flatten_fields(*type_id)
                        .map_err(|e| err(e.to_string()))?;
                    d.add_fields(&fields, base, &annotations);
                    let size = btf.size_of(*type_id).unwrap_or(0) as usize;
                    if i == 0 && parts.len() == 2 {
                        d.key_size = size;
                    }
                    base += size;
                }
                d.record_size = base;
                Ok(d)
            })
            .collect()
    }

    fn push(
        &mut self,
        name: String,
        offset: usize,
        size: usize,
        how: How,
        annotations: BTreeMap<String, String>,
    ) {
        let json_skip = annotations.get("json.skip").is_some_and(|v| v == "true");
        self.plans.push(Plan {
            json_key: json_key(&name),
            name,
            offset,
            size,
            how,
            json_skip,
            annotations,
            char_column: false,
        });
    }

    fn add_fields(
        &mut self,
        fields: &[Field],
        base: usize,
        annotations: &dyn Fn(&str) -> BTreeMap<String, String>,
    ) {
        let mut i = 0;
        while i < fields.len() {
            let f = &fields[i];
            // Skip everything nested under field `i` (depth greater than its own).
            let skip_children = |from: usize| {
                let mut j = from + 1;
                while j < fields.len() && fields[j].depth > fields[from].depth {
                    j += 1;
                }
                j
            };
            if f.hidden {
                i = skip_children(i);
                continue;
            }
            if f.is_container() {
                let is_l4 = f.type_name == "gadget_l4endpoint_t";
                if is_l4 || f.type_name == "gadget_l3endpoint_t" {
                    let end = skip_children(i);
                    let child = |n: &str| {
                        fields[i + 1..end]
                            .iter()
                            .find(|c| c.parent == Some(i) && c.member_name == n)
                    };
                    let version_off = child("version")
                        .map_or(f.offset as usize + 16, |c| c.offset as usize)
                        + base;
                    let how = if is_l4 {
                        let port_off = child("port")
                            .map_or(f.offset as usize + 16, |c| c.offset as usize)
                            + base;
                        How::L4 {
                            version_off,
                            port_off,
                        }
                    } else {
                        How::L3 { version_off }
                    };
                    self.push(
                        f.name.clone(),
                        f.offset as usize + base,
                        16,
                        how,
                        annotations(&f.name),
                    );
                    if let Some(p) = child("proto_raw") {
                        let pname = format!("{}.proto", f.name);
                        self.push(
                            pname.clone(),
                            p.offset as usize + base,
                            p.size as usize,
                            How::Proto,
                            annotations(&pname),
                        );
                    }
                    i = end;
                    continue;
                }
                i += 1;
                continue;
            }
            let ann = annotations(&f.name);
            let offset = f.offset as usize + base;
            let size = f.size as usize;
            let is_int = matches!(f.kind, FieldKind::Int { .. } | FieldKind::Enum { .. });
            let typed = if is_int && f.bitfield.is_none() {
                typed(&f.type_name, ann.get("template").map(String::as_str))
            } else {
                None
            };
            match typed {
                Some(how) => {
                    if let Some(stem) = f.name.strip_suffix("_raw") {
                        let raw = plain(&f.kind, Some(f));
                        self.push(f.name.clone(), offset, size, raw, ann);
                        let derived = stem.to_string();
                        let dann = annotations(&derived);
                        self.push(derived, offset, size, how, dann);
                    } else {
                        self.push(f.name.clone(), offset, size, how, ann);
                    }
                }
                None => {
                    let mut how = plain(&f.kind, Some(f));
                    if let How::Bits { bit_offset, .. } = &mut how {
                        *bit_offset += (base * 8) as u32;
                    }
                    self.push(f.name.clone(), offset, size, how, ann);
                    if size == 1 && f.bitfield.is_none() && f.type_name.ends_with("char") {
                        if let Some(plan) = self.plans.last_mut() {
                            plan.char_column = true;
                        }
                    }
                }
            }
            i += 1;
        }
    }

    /// The fields in output order, for column headers.
    pub fn columns(&self) -> Vec<ColumnInfo> {
        self.plans
            .iter()
            .map(|p| ColumnInfo {
                name: p.name.clone(),
                annotations: p.annotations.clone(),
                numeric: p.how.numeric() && !p.char_column,
                max_digits: match p.how {
                    How::Unsigned | How::Signed if !p.char_column => int_digits(p.size),
                    _ => 0,
                },
            })
            .collect()
    }

    /// Field names in output order.
    pub fn field_names(&self) -> Vec<&str> {
        self.plans.iter().map(|p| p.name.as_str()).collect()
    }

    /// Appends one record as a JSON object (no newline). `extra` members (already encoded
    /// `"key":value` text) go first.
    pub fn write_json(&self, record: &[u8], extra: Option<&[u8]>, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        if let Some(e) = extra {
            out.extend_from_slice(e);
            first = false;
        }
        for p in &self.plans {
            if p.json_skip {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&p.json_key);
            self.write_value(p, record, out);
        }
        out.push(b'}');
    }

    /// Each field's value as display text, in [`Decoder::columns`] order (for columns). A single
    /// `char` shows as the character when it is printable.
    pub fn texts(&self, record: &[u8]) -> Vec<String> {
        let mut buf = Vec::new();
        self.plans
            .iter()
            .map(|p| {
                buf.clear();
                if p.char_column {
                    if let Some(&c) = record.get(p.offset) {
                        if c.is_ascii_graphic() {
                            return char::from(c).to_string();
                        }
                    }
                }
                if p.annotations
                    .get("columns.hex")
                    .is_some_and(|v| v == "true")
                    && p.how.numeric()
                {
                    if let Some(v) = self.uint(record, p.offset, p.size) {
                        return format!("{v:#x}");
                    }
                }
                self.write_value(p, record, &mut buf);
                match buf.first() {
                    Some(b'"') => serde_json::from_slice::<String>(&buf).unwrap_or_default(),
                    _ => String::from_utf8_lossy(&buf).into_owned(),
                }
            })
            .collect()
    }

    /// Decodes to a JSON map (convenience; slower than [`Decoder::write_json`]).
    pub fn to_json_value(&self, record: &[u8]) -> serde_json::Value {
        let mut out = Vec::new();
        self.write_json(record, None, &mut out);
        serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null)
    }

    fn uint(&self, record: &[u8], offset: usize, size: usize) -> Option<u64> {
        let b = record.get(offset..offset.checked_add(size)?)?;
        let mut v: u64 = 0;
        match size {
            1 | 2 | 4 | 8 => {
                if self.big {
                    for x in b {
                        v = (v << 8) | u64::from(*x);
                    }
                } else {
                    for x in b.iter().rev() {
                        v = (v << 8) | u64::from(*x);
                    }
                }
                Some(v)
            }
            _ => None,
        }
    }

    fn int(&self, record: &[u8], offset: usize, size: usize) -> Option<i64> {
        let v = self.uint(record, offset, size)?;
        let shift = 64 - size as u32 * 8;
        Some(((v << shift) as i64) >> shift)
    }

    fn write_value(&self, p: &Plan, record: &[u8], out: &mut Vec<u8>) {
        self.write_how(&p.how, record, p.offset, p.size, out);
    }

    fn write_how(&self, how: &How, record: &[u8], offset: usize, size: usize, out: &mut Vec<u8>) {
        let null = |out: &mut Vec<u8>| out.extend_from_slice(b"null");
        match how {
            How::Unsigned => match self.uint(record, offset, size) {
                Some(v) => push_u64(out, v),
                None => null(out),
            },
            How::Signed => match self.int(record, offset, size) {
                Some(v) => push_i64(out, v),
                None => null(out),
            },
            How::Bool => match record.get(offset..offset + size) {
                Some(b) => out.extend_from_slice(if b.iter().any(|&x| x != 0) {
                    b"true"
                } else {
                    b"false"
                }),
                None => null(out),
            },
            How::F32 => match self.uint(record, offset, 4) {
                Some(v) => push_f64(out, f64::from(f32::from_bits(v as u32))),
                None => null(out),
            },
            How::F64 => match self.uint(record, offset, 8) {
                Some(v) => push_f64(out, f64::from_bits(v)),
                None => null(out),
            },
            How::Bits {
                bit_offset,
                bits,
                signed,
            } => match self.bits(record, *bit_offset, *bits, *signed) {
                Some(v) if *signed => push_i64(out, v as i64),
                Some(v) => push_u64(out, v),
                None => null(out),
            },
            How::Wide { signed } => match record.get(offset..offset + 16) {
                Some(b) => push_json_str(out, self.wide_text(b, *signed).as_bytes()),
                None => null(out),
            },
            How::Str => match record.get(offset..offset + size) {
                Some(b) => {
                    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                    push_json_str(out, &b[..end]);
                }
                None => null(out),
            },
            How::Enum { signed, values } => {
                self.write_enum(*signed, values, record, offset, size, out)
            }
            How::Array {
                elem,
                elem_size,
                len,
            } => self.write_array(elem, *elem_size, *len, record, offset, out),
            How::Hex => match record.get(offset..offset + size) {
                Some(b) => push_json_hex(out, b),
                None => null(out),
            },
            How::Timestamp => match self.uint(record, offset, size) {
                Some(v) => {
                    out.push(b'"');
                    self.clock.write_rfc3339(v, out);
                    out.push(b'"');
                }
                None => null(out),
            },
            How::Errno => match self.int(record, offset, size) {
                Some(v) => push_json_str(out, format::errno_name(v).as_bytes()),
                None => null(out),
            },
            How::Signal => match self.uint(record, offset, size) {
                Some(v) => push_json_str(out, format::signal_name(v).as_bytes()),
                None => null(out),
            },
            How::Syscall => match self.uint(record, offset, size) {
                Some(v) => match syscall_name(v) {
                    Some(n) => push_json_str(out, n.as_bytes()),
                    None => push_json_str(out, v.to_string().as_bytes()),
                },
                None => null(out),
            },
            How::FileFlags => match self.uint(record, offset, size) {
                Some(v) => push_json_str(out, format::open_flags(v).as_bytes()),
                None => null(out),
            },
            How::FileMode => match self.uint(record, offset, size) {
                Some(v) => push_json_str(out, format::file_mode(v).as_bytes()),
                None => null(out),
            },
            How::Proto => match self.uint(record, offset, size) {
                Some(v) => push_json_str(out, format::ip_proto(v).as_bytes()),
                None => null(out),
            },
            How::L3 { version_off } | How::L4 { version_off, .. } => {
                let (Some(addr), Some(version)) =
                    (record.get(offset..offset + 16), record.get(*version_off))
                else {
                    null(out);
                    return;
                };
                let text = match how {
                    How::L4 { port_off, .. } => {
                        let port = self.uint(record, *port_off, 2).unwrap_or(0) as u16;
                        format::endpoint(addr, *version, port)
                    }
                    _ => format::ip_addr(addr, *version),
                };
                push_json_str(out, text.as_bytes());
            }
        }
    }

    /// A 128-bit integer's decimal text (JSON numbers lose precision past 2^53).
    fn wide_text(&self, b: &[u8], signed: bool) -> String {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        if signed {
            (if self.big {
                i128::from_be_bytes(a)
            } else {
                i128::from_le_bytes(a)
            })
            .to_string()
        } else {
            (if self.big {
                u128::from_be_bytes(a)
            } else {
                u128::from_le_bytes(a)
            })
            .to_string()
        }
    }

    /// An enum value: its name, or its number when no enumerator has it.
    fn write_enum(
        &self,
        signed: bool,
        values: &[(i128, String)],
        record: &[u8],
        offset: usize,
        size: usize,
        out: &mut Vec<u8>,
    ) {
        let v = if signed {
            self.int(record, offset, size).map(i128::from)
        } else {
            self.uint(record, offset, size).map(i128::from)
        };
        match v {
            Some(v) => match values.iter().find(|(x, _)| *x == v) {
                Some((_, name)) => push_json_str(out, name.as_bytes()),
                None => out.extend_from_slice(v.to_string().as_bytes()),
            },
            None => out.extend_from_slice(b"null"),
        }
    }

    /// An array of `len` elements of `elem_size` bytes each, as a JSON array.
    fn write_array(
        &self,
        elem: &How,
        elem_size: usize,
        len: usize,
        record: &[u8],
        offset: usize,
        out: &mut Vec<u8>,
    ) {
        if record.len() < offset + elem_size * len || elem_size == 0 {
            out.extend_from_slice(b"null");
            return;
        }
        out.push(b'[');
        for i in 0..len {
            if i > 0 {
                out.push(b',');
            }
            self.write_how(elem, record, offset + i * elem_size, elem_size, out);
        }
        out.push(b']');
    }

    fn bits(&self, record: &[u8], bit_offset: u32, bits: u32, signed: bool) -> Option<u64> {
        if bits == 0 || bits > 64 {
            return None;
        }
        let first = (bit_offset / 8) as usize;
        let last = ((bit_offset + bits - 1) / 8) as usize;
        let bytes = record.get(first..=last)?;
        let mut v: u128 = 0;
        let shift = if self.big {
            for b in bytes {
                v = (v << 8) | u128::from(*b);
            }
            (bytes.len() as u32 * 8).checked_sub(bit_offset % 8 + bits)?
        } else {
            for (i, b) in bytes.iter().enumerate() {
                v |= u128::from(*b) << (8 * i);
            }
            bit_offset % 8
        };
        let raw = ((v >> shift) & ((1u128 << bits) - 1)) as u64;
        if signed && bits < 64 {
            let s = 64 - bits;
            return Some((((raw << s) as i64) >> s) as u64);
        }
        Some(raw)
    }
}

fn hex_digit(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'a' + n - 10 }
}

/// Appends `bytes` as a JSON string of lowercase hex digits.
fn push_json_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for x in bytes {
        out.extend_from_slice(&[hex_digit(x >> 4), hex_digit(x & 0xf)]);
    }
    out.push(b'"');
}

/// Appends a decimal u64.
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(
            serde_json::Number::from_f64(v)
                .map(|n| n.to_string())
                .unwrap_or_default()
                .as_bytes(),
        );
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends a JSON string (invalid UTF-8 is replaced).
pub fn push_json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    match std::str::from_utf8(bytes) {
        Ok(s) => escape_into(out, s.as_bytes()),
        Err(_) => escape_into(out, String::from_utf8_lossy(bytes).as_bytes()),
    }
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&[hex_digit(b >> 4), hex_digit(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

#[cfg(test)]
mod tests;
