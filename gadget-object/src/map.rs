//! Maps: libbpf-style BTF map definitions in `.maps` (`__uint`, `__type`, `__array`), plus the
//! legacy `struct bpf_map_def` in a `maps` section.

use serde::Serialize;

use crate::btf::{Btf, TypeKind};
use crate::check::Diagnostic;
use crate::elf::RawElf;
use crate::{Endianness, btf::read_uint};

/// `BPF_MAP_TYPE_*` names, indexed by value (kernel uapi order).
const MAP_TYPE_NAMES: [&str; 34] = [
    "BPF_MAP_TYPE_UNSPEC",
    "BPF_MAP_TYPE_HASH",
    "BPF_MAP_TYPE_ARRAY",
    "BPF_MAP_TYPE_PROG_ARRAY",
    "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
    "BPF_MAP_TYPE_PERCPU_HASH",
    "BPF_MAP_TYPE_PERCPU_ARRAY",
    "BPF_MAP_TYPE_STACK_TRACE",
    "BPF_MAP_TYPE_CGROUP_ARRAY",
    "BPF_MAP_TYPE_LRU_HASH",
    "BPF_MAP_TYPE_LRU_PERCPU_HASH",
    "BPF_MAP_TYPE_LPM_TRIE",
    "BPF_MAP_TYPE_ARRAY_OF_MAPS",
    "BPF_MAP_TYPE_HASH_OF_MAPS",
    "BPF_MAP_TYPE_DEVMAP",
    "BPF_MAP_TYPE_SOCKMAP",
    "BPF_MAP_TYPE_CPUMAP",
    "BPF_MAP_TYPE_XSKMAP",
    "BPF_MAP_TYPE_SOCKHASH",
    "BPF_MAP_TYPE_CGROUP_STORAGE",
    "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY",
    "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE",
    "BPF_MAP_TYPE_QUEUE",
    "BPF_MAP_TYPE_STACK",
    "BPF_MAP_TYPE_SK_STORAGE",
    "BPF_MAP_TYPE_DEVMAP_HASH",
    "BPF_MAP_TYPE_STRUCT_OPS",
    "BPF_MAP_TYPE_RINGBUF",
    "BPF_MAP_TYPE_INODE_STORAGE",
    "BPF_MAP_TYPE_TASK_STORAGE",
    "BPF_MAP_TYPE_BLOOM_FILTER",
    "BPF_MAP_TYPE_USER_RINGBUF",
    "BPF_MAP_TYPE_CGRP_STORAGE",
    "BPF_MAP_TYPE_ARENA",
];

/// `BPF_MAP_TYPE_HASH`.
pub const MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub const MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
/// `BPF_MAP_TYPE_PERCPU_HASH`.
pub const MAP_TYPE_PERCPU_HASH: u32 = 5;
/// `BPF_MAP_TYPE_LRU_HASH`.
pub const MAP_TYPE_LRU_HASH: u32 = 9;
/// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
pub const MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
/// `BPF_MAP_TYPE_RINGBUF`.
pub const MAP_TYPE_RINGBUF: u32 = 27;

/// The `BPF_MAP_TYPE_*` name of a map type value (`unknown map type N` if unknown).
pub fn map_type_name(map_type: u32) -> String {
    MAP_TYPE_NAMES.get(map_type as usize).map_or_else(
        || format!("unknown map type {map_type}"),
        |s| (*s).to_string(),
    )
}

/// One map definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Map {
    /// Map (variable) name.
    pub name: String,
    /// `.maps` (BTF definition) or `maps` (legacy `struct bpf_map_def`).
    pub section: String,
    /// `BPF_MAP_TYPE_*` value.
    pub map_type: u32,
    /// `BPF_MAP_TYPE_*` name.
    pub map_type_name: String,
    /// Key size: `__uint(key_size, N)` if given, else the size of the `__type(key, T)`, else 0.
    pub key_size: u32,
    /// Value size, same rules as `key_size`.
    pub value_size: u32,
    /// `max_entries` as declared (0 when set at load time through `<map>_max_entries`).
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: u32,
    /// `pinning` (0 none, 1 by name).
    pub pinning: u32,
    /// The `__type(key, T)` type id.
    pub key_type_id: Option<u32>,
    /// The `__type(value, T)` type id.
    pub value_type_id: Option<u32>,
    /// Declares an inner map with `__array(values, ...)` (map-in-map).
    pub has_inner_map: bool,
    /// Name of a `const volatile` global `<map>_max_entries` that sets `max_entries` at load.
    pub max_entries_var: Option<String>,
}

impl Map {
    /// Ring buffer or perf event array.
    pub fn is_event_stream(&self) -> bool {
        matches!(self.map_type, MAP_TYPE_RINGBUF | MAP_TYPE_PERF_EVENT_ARRAY)
    }

    /// HASH, LRU_HASH, PERCPU_HASH or LRU_PERCPU_HASH.
    pub fn is_hash(&self) -> bool {
        matches!(
            self.map_type,
            MAP_TYPE_HASH | MAP_TYPE_LRU_HASH | MAP_TYPE_PERCPU_HASH | MAP_TYPE_LRU_PERCPU_HASH
        )
    }
}

/// `__uint(name, N)` is `int (*name)[N]`: pointer to an array of N ints.
fn uint_value(btf: &Btf, type_id: u32) -> Option<u32> {
    let TypeKind::Ptr { target } = btf.get(btf.skip_qualifiers(type_id))?.kind else {
        return None;
    };
    match btf.get(btf.skip_qualifiers(target))?.kind {
        TypeKind::Array { len, .. } => Some(len),
        _ => None,
    }
}

/// `__type(name, T)` is `typeof(T) *name`.
fn type_value(btf: &Btf, type_id: u32) -> Option<u32> {
    match btf.get(btf.skip_qualifiers(type_id))?.kind {
        TypeKind::Ptr { target } => Some(target),
        _ => None,
    }
}

pub(crate) fn parse_maps(
    btf: &Btf,
    elf: &RawElf<'_>,
    endianness: Endianness,
    problems: &mut Vec<Diagnostic>,
) -> Vec<Map> {
    let mut maps = btf_maps(btf, problems);
    maps.extend(legacy_maps(elf, endianness, problems));
    for map in &mut maps {
        let var = format!("{}_max_entries", map.name);
        if let Some(id) = btf.var_by_name(&var) {
            if let Some(TypeKind::Var { target, .. }) = btf.get(id).map(|t| &t.kind) {
                if btf.is_const_volatile(*target) {
                    map.max_entries_var = Some(var);
                }
            }
        }
    }
    maps
}

/// The maps of the BTF-defined `.maps` section.
fn btf_maps(btf: &Btf, problems: &mut Vec<Diagnostic>) -> Vec<Map> {
    let mut maps = Vec::new();
    let Some(sec) = btf.datasec_by_name(".maps") else {
        return maps;
    };
    let Some(TypeKind::DataSec { vars, .. }) = btf.get(sec).map(|t| &t.kind) else {
        return maps;
    };
    for v in vars {
        let name = btf.name(v.type_id).to_string();
        let Some(TypeKind::Var { target, .. }) = btf.get(v.type_id).map(|t| &t.kind) else {
            continue;
        };
        let def = btf.resolve(*target);
        let Some(TypeKind::Struct { members, .. }) = btf.get(def).map(|t| &t.kind) else {
            problems.push(Diagnostic::error(
                format!("map `{name}`"),
                "definition in `.maps` is not a struct",
            ));
            continue;
        };
        maps.push(btf_map(btf, name, members, problems));
    }
    maps
}

/// Map `name` from the members of its `.maps` definition (`__uint` and `__type` members).
fn btf_map(
    btf: &Btf,
    name: String,
    members: &[crate::btf::Member],
    problems: &mut Vec<Diagnostic>,
) -> Map {
    let mut map = Map {
        name: name.clone(),
        section: ".maps".to_string(),
        map_type: 0,
        map_type_name: String::new(),
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        map_flags: 0,
        pinning: 0,
        key_type_id: None,
        value_type_id: None,
        has_inner_map: false,
        max_entries_var: None,
    };
    let (mut key_size, mut value_size) = (None, None);
    for m in members {
        let member = btf.member_name(m);
        let mut as_uint = || {
            let v = uint_value(btf, m.type_id);
            if v.is_none() {
                problems.push(Diagnostic::error(
                    format!("map `{name}`"),
                    format!("member `{member}` is not declared with __uint(name, value)"),
                ));
            }
            v
        };
        match member {
            "type" => map.map_type = as_uint().unwrap_or(0),
            "max_entries" => map.max_entries = as_uint().unwrap_or(0),
            "map_flags" => map.map_flags = as_uint().unwrap_or(0),
            "pinning" => map.pinning = as_uint().unwrap_or(0),
            "key_size" => key_size = as_uint(),
            "value_size" => value_size = as_uint(),
            "key" => map.key_type_id = type_value(btf, m.type_id),
            "value" => map.value_type_id = type_value(btf, m.type_id),
            "values" => map.has_inner_map = true,
            _ => {}
        }
    }
    map.key_size = key_size
        .or_else(|| map.key_type_id.and_then(|t| btf.size_of(t)))
        .unwrap_or(0);
    map.value_size = value_size
        .or_else(|| map.value_type_id.and_then(|t| btf.size_of(t)))
        .unwrap_or(0);
    map.map_type_name = map_type_name(map.map_type);
    map
}

/// The maps of a legacy `maps` section:
/// `struct bpf_map_def { type, key_size, value_size, max_entries, map_flags; }`.
fn legacy_maps(
    elf: &RawElf<'_>,
    endianness: Endianness,
    problems: &mut Vec<Diagnostic>,
) -> Vec<Map> {
    let mut maps = Vec::new();
    let Some(legacy) = elf.section("maps") else {
        return maps;
    };
    let data = legacy.data.unwrap_or(&[]);
    for sym in elf
        .symbols
        .iter()
        .filter(|s| s.section == Some(legacy.index) && s.is_object)
    {
        let field = |i: u64| {
            let start = usize::try_from(sym.value.checked_add(i * 4)?).ok()?;
            read_uint(data.get(start..start.checked_add(4)?)?, endianness).map(|v| v as u32)
        };
        if sym.size < 16 {
            problems.push(Diagnostic::error(
                format!("map `{}`", sym.name),
                "legacy map definition is shorter than 16 bytes",
            ));
            continue;
        }
        let (Some(map_type), Some(key_size), Some(value_size), Some(max_entries)) =
            (field(0), field(1), field(2), field(3))
        else {
            problems.push(Diagnostic::error(
                format!("map `{}`", sym.name),
                "legacy map definition lies outside the `maps` section",
            ));
            continue;
        };
        maps.push(Map {
            name: sym.name.clone(),
            section: "maps".to_string(),
            map_type,
            map_type_name: map_type_name(map_type),
            key_size,
            value_size,
            max_entries,
            map_flags: if sym.size >= 20 {
                field(4).unwrap_or(0)
            } else {
                0
            },
            pinning: 0,
            key_type_id: None,
            value_type_id: None,
            has_inner_map: false,
            max_entries_var: None,
        });
    }
    maps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_type_names() {
        assert_eq!(map_type_name(27), "BPF_MAP_TYPE_RINGBUF");
        assert_eq!(map_type_name(1), "BPF_MAP_TYPE_HASH");
        assert_eq!(map_type_name(33), "BPF_MAP_TYPE_ARENA");
        assert_eq!(map_type_name(99), "unknown map type 99");
    }
}
