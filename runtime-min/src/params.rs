//! Gadget parameters: which `--param key=value` keys a gadget takes, and the bytes each value
//! becomes in `.rodata` before the object is loaded.
//!
//! A parameter is a `const volatile` global declared with `GADGET_PARAM(var)`. Its key is, in
//! order: `params.ebpf.<var>.key` from gadget.yaml, the well-known rename (`targ_pid` → `pid`,
//! `targ_tid` → `tid`, `targ_uid` → `uid`, `targ_gid` → `gid`, `targ_comm` → `comm`), or the
//! variable name. The variable name itself is always accepted too. A value given on the command
//! line wins over gadget.yaml's `defaultValue`; without either, the compiled-in value stays.

use gadget_object::{Endianness, FieldKind, GadgetObject};

use crate::metadata::Metadata;

/// A parameter value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// `--param` named a key the gadget does not have.
    #[error("unknown parameter `{key}`; this gadget takes: {known}")]
    Unknown {
        /// The key given.
        key: String,
        /// Valid keys.
        known: String,
    },
    /// `--param` without `=`.
    #[error("`{arg}` is not `key=value`")]
    Syntax {
        /// The argument.
        arg: String,
    },
    /// The value does not fit the variable's type.
    #[error("parameter {param}: invalid value `{value}`: {reason}")]
    Invalid {
        /// `` `key` (`var`, C type) ``.
        param: String,
        /// The value.
        value: String,
        /// Why (says when the value came from gadget.yaml's `defaultValue`).
        reason: String,
    },
}

/// One parameter of a gadget.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    /// The `const volatile` variable.
    pub var: String,
    /// The key users pass to `--param`.
    pub key: String,
    /// gadget.yaml `defaultValue` (non-empty), if any.
    pub metadata_default: Option<String>,
    /// The compiled-in value as text.
    pub compiled_default: Option<String>,
    /// C type, for messages.
    pub c_type: String,
    /// How to encode values.
    pub kind: FieldKind,
    /// Size in bytes.
    pub size: u32,
    /// gadget.yaml description.
    pub description: String,
}

/// The well-known renames of the common filter parameters.
pub fn well_known_key(var: &str) -> Option<&'static str> {
    Some(match var {
        "targ_pid" => "pid",
        "targ_tid" => "tid",
        "targ_uid" => "uid",
        "targ_gid" => "gid",
        "targ_comm" => "comm",
        _ => return None,
    })
}

/// The gadget's parameters, in declaration order.
pub fn specs(obj: &GadgetObject, metadata: Option<&Metadata>) -> Vec<ParamSpec> {
    let endianness = obj.elf().endianness;
    obj.params()
        .iter()
        .filter(|p| p.exists)
        .map(|p| {
            let meta = metadata.and_then(|m| m.param(&p.name));
            let key = meta
                .map(|m| m.key.clone())
                .filter(|k| !k.is_empty())
                .or_else(|| well_known_key(&p.name).map(str::to_string))
                .unwrap_or_else(|| p.name.clone());
            ParamSpec {
                var: p.name.clone(),
                key,
                metadata_default: meta
                    .and_then(|m| m.default.clone())
                    .filter(|d| !d.is_empty()),
                compiled_default: p.default_string(endianness),
                c_type: p.c_type.clone(),
                kind: p.kind.clone(),
                size: p.size,
                description: meta.map(|m| m.description.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

/// Splits `key=value`.
pub fn split_arg(arg: &str) -> Result<(String, String), ParamError> {
    arg.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| ParamError::Syntax {
            arg: arg.to_string(),
        })
}

/// The `(variable, bytes)` to write into `.rodata`: command-line values, else gadget.yaml
/// defaults. Unknown keys are an error listing the valid ones.
pub fn resolve(
    specs: &[ParamSpec],
    given: &[(String, String)],
    endianness: Endianness,
) -> Result<Vec<(String, Vec<u8>)>, ParamError> {
    for (key, _) in given {
        if !specs.iter().any(|s| &s.key == key || &s.var == key) {
            let mut known: Vec<&str> = specs.iter().map(|s| s.key.as_str()).collect();
            known.sort_unstable();
            return Err(ParamError::Unknown {
                key: key.clone(),
                known: if known.is_empty() {
                    "no parameters".to_string()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    let mut out = Vec::new();
    for spec in specs {
        // The last `--param` for a key wins.
        let user = given
            .iter()
            .rev()
            .find(|(k, _)| k == &spec.key || k == &spec.var)
            .map(|(_, v)| v);
        let (value, from_metadata) = match (user, &spec.metadata_default) {
            (Some(v), _) => (v.clone(), false),
            (None, Some(d)) => (d.clone(), true),
            (None, None) => continue,
        };
        let bytes = encode(&spec.kind, spec.size, &value, endianness).map_err(|reason| {
            ParamError::Invalid {
                param: format!("`{}` (`{}`, {})", spec.key, spec.var, spec.c_type),
                value: value.clone(),
                reason: if from_metadata {
                    format!(
                        "{reason} (the default from gadget.yaml `params.ebpf.{}.defaultValue`)",
                        spec.var
                    )
                } else {
                    reason
                },
            }
        })?;
        out.push((spec.var.clone(), bytes));
    }
    Ok(out)
}

fn parse_int(text: &str) -> Result<i128, String> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i128::from_str_radix(hex, 16)
    } else {
        t.parse::<i128>()
    }
    .map_err(|_| "not an integer".to_string())?;
    Ok(if neg { -v } else { v })
}

fn put_int(v: i128, size: u32, endianness: Endianness) -> Vec<u8> {
    let bytes = v.to_le_bytes();
    let mut out = bytes[..size as usize].to_vec();
    if endianness == Endianness::Big {
        out.reverse();
    }
    out
}

/// Encodes a value as the bytes of a variable of `kind` and `size`.
pub fn encode(
    kind: &FieldKind,
    size: u32,
    text: &str,
    endianness: Endianness,
) -> Result<Vec<u8>, String> {
    match kind {
        FieldKind::Int { signed, bits } => {
            let v = parse_int(text)?;
            let bits = (*bits).min(size * 8);
            if bits == 0 || bits > 64 {
                return Err(format!("unsupported integer width {bits}"));
            }
            let (min, max) = if *signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            // Accept -1 for unsigned "all ones" (upstream's GADGET_INVALID_ID spelling).
            let v = if !*signed && v == -1 { max } else { v };
            if v < min || v > max {
                return Err(format!("out of range {min}..={max}"));
            }
            Ok(put_int(v, size, endianness))
        }
        FieldKind::Bool => {
            // Exactly upstream's spellings (its bool validator); an empty value, as an old
            // `defaultValue: ""` writes it, is false.
            let b = match text {
                "true" => true,
                "false" | "" => false,
                _ => return Err(format!("`{text}`: expected true or false")),
            };
            let mut out = vec![0u8; size as usize];
            if let Some(first) = out.first_mut() {
                *first = u8::from(b);
            }
            if endianness == Endianness::Big {
                out.reverse();
            }
            Ok(out)
        }
        FieldKind::String { len } => {
            let len = *len as usize;
            if text.len() >= len {
                return Err(format!("longer than {} bytes", len.saturating_sub(1)));
            }
            if text.as_bytes().contains(&0) {
                return Err("contains a NUL byte".into());
            }
            let mut out = text.as_bytes().to_vec();
            out.resize(size as usize, 0);
            Ok(out)
        }
        FieldKind::Enum { values, .. } => {
            let v = match values.iter().find(|e| e.name == text.trim()) {
                Some(e) => e.value,
                None => parse_int(text).map_err(|_| {
                    let names: Vec<&str> = values.iter().map(|e| e.name.as_str()).collect();
                    format!("expected one of {}", names.join(", "))
                })?,
            };
            Ok(put_int(v, size, endianness))
        }
        other => Err(format!("parameters of kind {other:?} are not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(var: &str, key: &str, kind: FieldKind, size: u32) -> ParamSpec {
        ParamSpec {
            var: var.into(),
            key: key.into(),
            metadata_default: None,
            compiled_default: None,
            c_type: "t".into(),
            kind,
            size,
            description: String::new(),
        }
    }

    #[test]
    fn encodes_values() {
        let le = Endianness::Little;
        let u32k = FieldKind::Int {
            signed: false,
            bits: 32,
        };
        assert_eq!(encode(&u32k, 4, "258", le).unwrap(), vec![2, 1, 0, 0]);
        assert_eq!(encode(&u32k, 4, "0x10", le).unwrap(), vec![16, 0, 0, 0]);
        assert_eq!(encode(&u32k, 4, "-1", le).unwrap(), vec![255; 4]);
        assert_eq!(
            encode(&u32k, 4, "258", Endianness::Big).unwrap(),
            vec![0, 0, 1, 2]
        );
        assert!(encode(&u32k, 4, "4294967296", le).is_err());
        assert!(encode(&u32k, 4, "x", le).is_err());
        assert_eq!(
            encode(
                &FieldKind::Int {
                    signed: true,
                    bits: 8
                },
                1,
                "-2",
                le
            )
            .unwrap(),
            vec![0xfe]
        );
        assert_eq!(encode(&FieldKind::Bool, 1, "true", le).unwrap(), vec![1]);
        assert!(encode(&FieldKind::Bool, 1, "maybe", le).is_err());
        // Only upstream's spellings.
        assert_eq!(encode(&FieldKind::Bool, 1, "false", le).unwrap(), vec![0]);
        for other in ["yes", "TRUE", "True", "1", "on", " true"] {
            assert!(
                encode(&FieldKind::Bool, 1, other, le).is_err(),
                "{other} accepted"
            );
        }
        let s = encode(&FieldKind::String { len: 16 }, 16, "cat", le).unwrap();
        assert_eq!(&s[..4], b"cat\0");
        assert_eq!(s.len(), 16);
        assert!(encode(&FieldKind::String { len: 16 }, 16, "0123456789abcdef", le).is_err());
    }

    #[test]
    fn resolves_keys_renames_and_defaults() {
        let mut specs = vec![
            spec(
                "targ_pid",
                "pid",
                FieldKind::Int {
                    signed: false,
                    bits: 32,
                },
                4,
            ),
            spec("failed", "failed", FieldKind::Bool, 1),
        ];
        specs[1].metadata_default = Some("true".into());
        let le = Endianness::Little;
        let out = resolve(&specs, &[("pid".into(), "7".into())], le).unwrap();
        assert_eq!(
            out,
            vec![
                ("targ_pid".into(), vec![7, 0, 0, 0]),
                ("failed".into(), vec![1])
            ]
        );
        // The variable name works too; the last value wins.
        let out = resolve(
            &specs,
            &[("targ_pid".into(), "1".into()), ("pid".into(), "2".into())],
            le,
        )
        .unwrap();
        assert_eq!(out[0].1, vec![2, 0, 0, 0]);
        let err = resolve(&specs, &[("nope".into(), "1".into())], le).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown parameter `nope`; this gadget takes: failed, pid"
        );
        assert!(split_arg("novalue").is_err());
        assert_eq!(
            split_arg("comm=a=b").unwrap(),
            ("comm".into(), "a=b".into())
        );
    }

    #[test]
    fn well_known() {
        assert_eq!(well_known_key("targ_comm"), Some("comm"));
        assert_eq!(well_known_key("failed"), None);
    }
}
