//! The parts of gadget.yaml the runtime uses: `params.ebpf` (keys and defaults) and the
//! annotations of data sources and their fields (columns, templates, `json.skip`).
//!
//! gadget.yaml is free-form upstream; anything not read here is ignored, never rejected.

use std::collections::BTreeMap;

use gadget_object::yaml::{self, YamlError, YamlLimits};
use yaml_rust2::Yaml;

/// gadget.yaml could not be read: not YAML, not a mapping, or over a limit of the hardened
/// loader (size, depth, nodes, alias expansion); the message names where it came from.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct MetadataError(#[from] pub YamlError);

/// `params.ebpf.<var>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamMeta {
    /// The variable.
    pub var: String,
    /// `key` (empty when not given).
    pub key: String,
    /// `defaultValue`, when given.
    pub default: Option<String>,
    /// `description`.
    pub description: String,
}

/// Annotations of one data source and of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSourceMeta {
    /// `datasources.<ds>.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `datasources.<ds>.fields.<field>.annotations`, by (dotted) field name, in file order.
    pub fields: Vec<(String, BTreeMap<String, String>)>,
}

impl DataSourceMeta {
    /// A field's annotations.
    pub fn field(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// What the runtime reads from gadget.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `name`.
    pub name: String,
    /// `params.ebpf`, in file order.
    pub params: Vec<ParamMeta>,
    /// `params.wasm`, in file order.
    pub wasm_params: Vec<ParamMeta>,
    /// `datasources`, by name.
    pub datasources: BTreeMap<String, DataSourceMeta>,
}

/// A YAML scalar as text (`true`, `40`, `start`); `None` for maps, lists and null.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn annotations(y: &Yaml) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Yaml::Hash(h) = &y["annotations"] {
        for (k, v) in h {
            if let (Some(k), Some(v)) = (scalar(k), scalar(v)) {
                out.insert(k, v);
            }
        }
    }
    out
}

impl Metadata {
    /// Parses gadget.yaml text.
    pub fn parse(text: &str) -> Result<Metadata, MetadataError> {
        Self::parse_from(text.as_bytes(), "gadget.yaml")
    }

    /// Parses gadget.yaml bytes through the hardened loader; `origin` names them in errors
    /// ("`dir/gadget.yaml`", or the image and its config blob).
    pub fn parse_from(bytes: &[u8], origin: &str) -> Result<Metadata, MetadataError> {
        let map = yaml::load_mapping(bytes, origin, &YamlLimits::DEFAULT)?;
        if map.is_empty() {
            return Ok(Metadata::default());
        }
        let doc = Yaml::Hash(map);
        let mut md = Metadata {
            name: scalar(&doc["name"]).unwrap_or_default(),
            ..Metadata::default()
        };
        if let Yaml::Hash(params) = &doc["params"]["ebpf"] {
            for (var, p) in params {
                let Some(var) = scalar(var) else { continue };
                md.params.push(ParamMeta {
                    var,
                    key: scalar(&p["key"]).unwrap_or_default(),
                    default: scalar(&p["defaultValue"]),
                    description: scalar(&p["description"]).unwrap_or_default(),
                });
            }
        }
        if let Yaml::Hash(params) = &doc["params"]["wasm"] {
            for (var, p) in params {
                let Some(var) = scalar(var) else { continue };
                md.wasm_params.push(ParamMeta {
                    var,
                    key: scalar(&p["key"]).unwrap_or_default(),
                    default: scalar(&p["defaultValue"]),
                    description: scalar(&p["description"]).unwrap_or_default(),
                });
            }
        }
        if let Yaml::Hash(dss) = &doc["datasources"] {
            for (name, ds) in dss {
                let Some(name) = scalar(name) else { continue };
                let mut meta = DataSourceMeta {
                    annotations: annotations(ds),
                    fields: Vec::new(),
                };
                if let Yaml::Hash(fields) = &ds["fields"] {
                    for (f, fy) in fields {
                        if let Some(f) = scalar(f) {
                            meta.fields.push((f, annotations(fy)));
                        }
                    }
                }
                md.datasources.insert(name, meta);
            }
        }
        Ok(md)
    }

    /// `params.ebpf.<var>`.
    pub fn param(&self, var: &str) -> Option<&ParamMeta> {
        self.params.iter().find(|p| p.var == var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_params_and_annotations() {
        let md = Metadata::parse(
            "name: x\nunknown: {a: 1}\nparams:\n  ebpf:\n    targ_pid:\n      key: pid\n      defaultValue: \"0\"\n    failed:\n      defaultValue: false\n\
             datasources:\n  open:\n    annotations: {description: d}\n    fields:\n      proc.comm:\n        annotations:\n          columns.width: 16\n          columns.hidden: true\n",
        )
        .unwrap();
        assert_eq!(md.name, "x");
        assert_eq!(md.param("targ_pid").unwrap().key, "pid");
        assert_eq!(
            md.param("failed").unwrap().default.as_deref(),
            Some("false")
        );
        let ds = &md.datasources["open"];
        assert_eq!(ds.annotations["description"], "d");
        assert_eq!(ds.field("proc.comm").unwrap()["columns.width"], "16");
        assert_eq!(ds.field("proc.comm").unwrap()["columns.hidden"], "true");
    }

    #[test]
    fn tolerates_empty_and_rejects_lists() {
        assert_eq!(Metadata::parse("").unwrap(), Metadata::default());
        assert!(Metadata::parse("- a\n- b\n").is_err());
        assert!(Metadata::parse("a: [").is_err());
    }

    #[test]
    fn an_alias_bomb_is_refused_naming_its_origin() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (i, c) in "bcdefghi".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            text.push_str(&format!(
                "{c}: &{c} [{}]\n",
                vec![format!("*{prev}"); 9].join(", ")
            ));
        }
        let origin = yaml::blob_origin("x:1", "sha256:00");
        let err = Metadata::parse_from(text.as_bytes(), &origin).unwrap_err();
        assert!(matches!(err.0, YamlError::AliasExpansion { .. }), "{err}");
        assert!(err.to_string().starts_with(&origin), "{err}");
    }
}
