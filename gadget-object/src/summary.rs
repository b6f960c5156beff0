//! A serializable overview of an object, for `ig-image inspect`.

use serde::Serialize;

use crate::btf::Field;
use crate::{Endianness, GadgetObject};

/// Everything `inspect` shows about an object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectSummary {
    /// Byte order.
    pub endianness: Endianness,
    /// `e_machine`.
    pub machine: u16,
    /// License string.
    pub license: Option<String>,
    /// Section names.
    pub sections: Vec<String>,
    /// Number of BTF types.
    pub btf_types: usize,
    /// Number of CO-RE relocations.
    pub core_relocations: usize,
    /// Programs.
    pub programs: Vec<ProgramSummary>,
    /// Maps.
    pub maps: Vec<MapSummary>,
    /// Parameters.
    pub params: Vec<ParamSummary>,
    /// Data sources with their flattened fields.
    pub datasources: Vec<DataSourceSummary>,
}

/// A program in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramSummary {
    /// Symbol name.
    pub name: String,
    /// Section.
    pub section: String,
    /// Kind (`tracepoint`, `kprobe`, ...).
    pub kind: &'static str,
    /// Attach target.
    pub target: String,
    /// Instruction count.
    pub instructions: u64,
}

/// A map in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct MapSummary {
    /// Name.
    pub name: String,
    /// `BPF_MAP_TYPE_*`.
    #[serde(rename = "type")]
    pub map_type: String,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// C type of the key, when declared with `__type`.
    pub key_type: Option<String>,
    /// C type of the value, when declared with `__type`.
    pub value_type: Option<String>,
}

/// A parameter in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ParamSummary {
    /// Variable name.
    pub name: String,
    /// C type.
    #[serde(rename = "type")]
    pub c_type: String,
    /// Size in bytes.
    pub size: u32,
    /// Default value as text.
    pub default: Option<String>,
    /// Data section.
    pub section: Option<String>,
}

/// A data source in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct DataSourceSummary {
    /// Name.
    pub name: String,
    /// `tracer`, `iter` or `mapiter`.
    pub kind: &'static str,
    /// The map (tracers and map iterators).
    pub map: Option<String>,
    /// Struct names (for map iterators: key then value).
    pub structs: Vec<String>,
    /// Programs (iterators).
    pub programs: Vec<String>,
    /// Flattened fields.
    pub fields: Vec<Field>,
    /// Why the fields could not be listed, if they could not.
    pub error: Option<String>,
}

pub(crate) fn summarize(obj: &GadgetObject) -> ObjectSummary {
    let btf = obj.btf();
    let endianness = obj.elf().endianness;
    let datasources = obj
        .data_sources()
        .into_iter()
        .map(|ds| {
            let (fields, error) = match obj.data_source_fields(&ds.name) {
                Some(Ok(f)) => (f, None),
                Some(Err(e)) => (Vec::new(), Some(e.to_string())),
                None => (Vec::new(), None),
            };
            DataSourceSummary {
                name: ds.name,
                kind: ds.kind.name(),
                map: ds.map,
                structs: ds.structs,
                programs: ds.programs,
                fields,
                error,
            }
        })
        .collect();
    ObjectSummary {
        endianness,
        machine: obj.elf().machine,
        license: obj.elf().license.clone(),
        sections: obj.elf().sections.clone(),
        btf_types: btf.len().saturating_sub(1),
        core_relocations: obj.btf_ext().map_or(0, |e| e.core_relos.len()),
        programs: obj
            .programs()
            .iter()
            .map(|p| ProgramSummary {
                name: p.name.clone(),
                section: p.section.clone(),
                kind: p.kind.name(),
                target: p.target.clone(),
                instructions: p.insn_count,
            })
            .collect(),
        maps: obj
            .maps()
            .iter()
            .map(|m| MapSummary {
                name: m.name.clone(),
                map_type: m.map_type_name.clone(),
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                key_type: m.key_type_id.map(|t| btf.c_type(t)),
                value_type: m.value_type_id.map(|t| btf.c_type(t)),
            })
            .collect(),
        params: obj
            .params()
            .iter()
            .map(|p| ParamSummary {
                name: p.name.clone(),
                c_type: p.c_type.clone(),
                size: p.size,
                default: p.default_string(endianness),
                section: p.section.clone(),
            })
            .collect(),
        datasources,
    }
}
