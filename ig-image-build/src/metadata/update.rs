//! `--update-metadata`: fill gadget.yaml from the eBPF object, upstream's way, minus its bug.
//!
//! What is added (gadget-image.md §4):
//! - `name`, `description`, `homepageURL`, `documentationURL`, `sourceURL` when absent:
//!   `TODO: Fill the gadget name` style placeholders. A key that is present is never changed,
//!   even when empty (an author may leave a URL empty on purpose); missing keys go right after
//!   the last descriptive key present (at the top when there is none), so a new file reads in
//!   upstream's order;
//! - `datasources.<ds>.fields.<field>.annotations.description: 'TODO: Fill field description'`
//!   for every data source of the object and every top-level field of its struct (for a map
//!   iterator, the key struct's then the value struct's). Nested structs contribute their
//!   top-level name only (`proc`, not `proc.comm`), as upstream. Fields of anonymous members are
//!   top-level; `__`-prefixed fields, which the runtime never shows, are left out. Fields missing
//!   from an existing data source are appended to it;
//! - `params.ebpf.<var>: {key: <key>, defaultValue: <default>, description: 'TODO: Fill
//!   parameter description'}` for every parameter whose variable exists. The key is the name
//!   users of upstream gadgets type: the variable's name without a `targ_` prefix, `_` written
//!   `-` (`targ_pid` -> `pid`, `ignore_failed` -> `ignore-failed`). The default is the
//!   variable's initial value (`false` for a zero `bool`, `0` for a zero integer); it is left
//!   out, as upstream's generator leaves it out, when the value has no text form (an empty
//!   string, a struct).
//!
//! What is kept: every existing entry, unchanged, including keys this tool does not know
//! (`operator:`, `programs:`, `params.wasm`), in their order. Upstream re-marshals a typed struct
//! and drops those (upstream bug). When nothing needs adding, the input is returned byte for
//! byte, comments included; otherwise the file is re-emitted and comments are lost.

use std::path::Path;

use gadget_object::GadgetObject;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

use super::MetadataError;
use super::model::{kind_name, load, scalar_string};
use super::validate::DESCRIPTIVE_KEYS;

const PLACEHOLDERS: [&str; 5] = [
    "TODO: Fill the gadget name",
    "TODO: Fill the gadget description",
    "TODO: Fill the gadget homepage URL",
    "TODO: Fill the gadget documentation URL",
    "TODO: Fill the gadget source code URL",
];

const FIELD_DESCRIPTION: &str = "TODO: Fill field description";
const PARAM_DESCRIPTION: &str = "TODO: Fill parameter description";

/// The name used for the file in errors (update works on text; the caller knows the path).
const FILE: &str = "gadget.yaml";

fn s(text: &str) -> Yaml {
    Yaml::String(text.to_string())
}

fn shape(path: &str, value: &Yaml, expected: &str) -> MetadataError {
    MetadataError::Shape {
        file: FILE.into(),
        path: path.to_string(),
        reason: format!(
            "is {}, expected {expected}; cannot update it",
            kind_name(value)
        ),
    }
}

/// The mapping under `key` in `parent`, created (inserted by `place`) when absent or null.
/// Returns whether it was created.
fn child_mapping<'a>(
    parent: &'a mut Hash,
    key: &str,
    path: &str,
    place: impl FnOnce(&mut Hash, Yaml, Yaml),
) -> Result<(&'a mut Hash, bool), MetadataError> {
    let k = s(key);
    let created = match parent.get(&k) {
        None => {
            place(parent, k.clone(), Yaml::Hash(Hash::new()));
            true
        }
        Some(Yaml::Null) => {
            // `key:` with nothing after it: fill it in place.
            if let Some(slot) = parent.get_mut(&k) {
                *slot = Yaml::Hash(Hash::new());
            }
            true
        }
        Some(Yaml::Hash(_)) => false,
        Some(other) => return Err(shape(path, other, "a mapping")),
    };
    match parent.get_mut(&k) {
        Some(Yaml::Hash(h)) => Ok((h, created)),
        // Just made sure it is a mapping.
        _ => Err(MetadataError::Shape {
            file: FILE.into(),
            path: path.to_string(),
            reason: "vanished".into(),
        }),
    }
}

fn append(parent: &mut Hash, k: Yaml, v: Yaml) {
    parent.insert(k, v);
}

/// Inserts `k` before the entry keyed `before` when that exists, else appends.
fn insert_before(parent: &mut Hash, before: &str, k: Yaml, v: Yaml) {
    let anchor = s(before);
    if !parent.contains_key(&anchor) {
        parent.insert(k, v);
        return;
    }
    let old = std::mem::take(parent);
    for (ok, ov) in old {
        if ok == anchor {
            parent.insert(k.clone(), v.clone());
        }
        parent.insert(ok, ov);
    }
}

/// Fills gadget.yaml from the object; see the module docs. `existing` is the current file's text
/// (`None` when there is no file yet). Returns the new text.
pub fn update(existing: Option<&str>, object: &GadgetObject) -> Result<String, MetadataError> {
    let text = existing.unwrap_or("");
    let Yaml::Hash(mut root) = load(text, Path::new(FILE))? else {
        // `load` only returns mappings.
        return Err(MetadataError::Shape {
            file: FILE.into(),
            path: "<root>".into(),
            reason: "is not a mapping".into(),
        });
    };
    let mut changed = add_descriptive_keys(&mut root)?;
    changed |= add_data_sources(&mut root, object)?;
    changed |= add_params(&mut root, object)?;
    if !changed {
        return Ok(text.to_string());
    }
    emit(&Yaml::Hash(root))
}

/// Stage 1: the descriptive keys missing, with placeholders, after the last one present (or
/// at the top); present ones, even empty, are the author's. Whether any was added.
fn add_descriptive_keys(root: &mut Hash) -> Result<bool, MetadataError> {
    let mut changed = false;
    let mut missing: Vec<(Yaml, Yaml)> = Vec::new();
    for (key, placeholder) in DESCRIPTIVE_KEYS.iter().zip(PLACEHOLDERS) {
        match root.get_mut(&s(key)) {
            None => missing.push((s(key), s(placeholder))),
            // Present, even empty: the author's; never changed.
            Some(value) => {
                if !matches!(value, Yaml::Null) && scalar_string(value).is_none() {
                    return Err(shape(key, value, "a string"));
                }
            }
        }
    }
    if !missing.is_empty() {
        changed = true;
        // Right after the last descriptive key present, or at the top when there is none.
        let is_descriptive =
            |k: &Yaml| scalar_string(k).is_some_and(|k| DESCRIPTIVE_KEYS.contains(&k.as_str()));
        let at = root.keys().rposition(is_descriptive).map_or(0, |i| i + 1);
        let old = std::mem::take(root);
        for (i, (k, v)) in old.into_iter().enumerate() {
            if i == at {
                root.extend(missing.drain(..));
            }
            root.insert(k, v);
        }
        root.extend(missing);
    }
    Ok(changed)
}

/// Stage 2: each data source, with a placeholder for each top-level field not described yet.
/// Whether anything was added.
fn add_data_sources(root: &mut Hash, object: &GadgetObject) -> Result<bool, MetadataError> {
    let mut changed = false;
    let sources = object.data_sources();
    if !sources.is_empty() {
        let (datasources, created) =
            child_mapping(root, "datasources", "datasources", |h, k, v| {
                insert_before(h, "params", k, v)
            })?;
        changed |= created;
        for ds in sources {
            let names: Vec<String> = match object.data_source_fields(&ds.name) {
                Some(Ok(fields)) => fields
                    .into_iter()
                    .filter(|f| !f.name.contains('.') && !f.hidden)
                    .map(|f| f.name)
                    .collect(),
                // A missing or broken struct is reported by the checks; still add the data source.
                _ => Vec::new(),
            };
            let path = format!("datasources.{}", ds.name);
            let (entry, created) = child_mapping(datasources, &ds.name, &path, append)?;
            changed |= created;
            if names.is_empty() {
                continue;
            }
            let (fields, created) =
                child_mapping(entry, "fields", &format!("{path}.fields"), append)?;
            changed |= created;
            for name in names {
                // A struct is described already when its members are, by dotted name
                // (`proc.comm`): adding `proc` then would only add a placeholder.
                let prefix = format!("{name}.");
                let described = fields.contains_key(&s(&name))
                    || fields
                        .keys()
                        .any(|k| scalar_string(k).is_some_and(|k| k.starts_with(&prefix)));
                if described {
                    continue;
                }
                let mut annotations = Hash::new();
                annotations.insert(s("description"), s(FIELD_DESCRIPTION));
                let mut field = Hash::new();
                field.insert(s("annotations"), Yaml::Hash(annotations));
                fields.insert(s(&name), Yaml::Hash(field));
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// Stage 3: each parameter not listed yet under `params.ebpf`, with its key and default.
/// Whether anything was added.
fn add_params(root: &mut Hash, object: &GadgetObject) -> Result<bool, MetadataError> {
    let mut changed = false;
    let endianness = object.elf().endianness;
    let params: Vec<(&str, Option<String>)> = object
        .params()
        .iter()
        .filter(|p| p.exists)
        .map(|p| (p.name.as_str(), param_default(p, endianness)))
        .collect();
    if !params.is_empty() {
        let (params_map, created) = child_mapping(root, "params", "params", append)?;
        changed |= created;
        let (ebpf, created) = child_mapping(params_map, "ebpf", "params.ebpf", append)?;
        changed |= created;
        for (name, default) in params {
            if ebpf.contains_key(&s(name)) {
                continue;
            }
            let mut entry = Hash::new();
            entry.insert(s("key"), s(&param_key(name)));
            if let Some(default) = default {
                entry.insert(s("defaultValue"), s(&default));
            }
            entry.insert(s("description"), s(PARAM_DESCRIPTION));
            ebpf.insert(s(name), Yaml::Hash(entry));
            changed = true;
        }
    }
    Ok(changed)
}

/// The `--param` key of a parameter variable: see the module docs.
pub fn param_key(variable: &str) -> String {
    let name = variable
        .strip_prefix("targ_")
        .filter(|n| !n.is_empty())
        .unwrap_or(variable);
    name.replace('_', "-")
}

/// The `defaultValue` of a parameter: its initial value when that has a text form.
fn param_default(
    param: &gadget_object::Param,
    endianness: gadget_object::Endianness,
) -> Option<String> {
    use gadget_object::FieldKind;
    match &param.kind {
        FieldKind::Bool => Some(
            param
                .default_string(endianness)
                .unwrap_or_else(|| "false".to_string()),
        ),
        FieldKind::Int { .. } | FieldKind::Enum { .. } | FieldKind::Float { .. } => {
            param.default_string(endianness)
        }
        FieldKind::String { .. } => param.default_string(endianness).filter(|d| !d.is_empty()),
        _ => None,
    }
}

/// Writes the tree out as [`emit_yaml`] does.
fn emit(doc: &Yaml) -> Result<String, MetadataError> {
    emit_yaml(doc).map_err(|source| MetadataError::Emit { source })
}

/// Writes a YAML tree the way gadget authors write gadget.yaml and artifacthub-pkg.yml: no
/// `---` header, multi-line strings as literal blocks, empty values as `key:` (not `key: ~`),
/// and a final newline.
pub(crate) fn emit_yaml(doc: &Yaml) -> Result<String, yaml_rust2::EmitError> {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    emitter.dump(doc)?;
    let body = out.strip_prefix("---\n").unwrap_or(&out);
    // A plain scalar never contains `: `, so a line ending in `: ~` is always an empty value.
    let mut text = String::with_capacity(body.len() + 1);
    for line in body.lines() {
        text.push_str(
            line.strip_suffix(" ~")
                .filter(|l| l.ends_with(':'))
                .unwrap_or(line),
        );
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_OBJECT: &[u8] = include_bytes!("../../../gadget-object/testdata/good.o");
    const MINIMAL_OBJECT: &[u8] = include_bytes!("../../../gadget-object/testdata/minimal.o");

    fn object() -> GadgetObject {
        GadgetObject::parse(GOOD_OBJECT).unwrap()
    }

    fn keys(yaml: &Yaml) -> Vec<String> {
        match yaml {
            Yaml::Hash(h) => h.keys().filter_map(scalar_string).collect(),
            _ => Vec::new(),
        }
    }

    fn parse(text: &str) -> Yaml {
        load(text, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn new_file_gets_upstream_shape() {
        let out = update(None, &GadgetObject::parse(MINIMAL_OBJECT).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"name: "TODO: Fill the gadget name"
description: "TODO: Fill the gadget description"
homepageURL: "TODO: Fill the gadget homepage URL"
documentationURL: "TODO: Fill the gadget documentation URL"
sourceURL: "TODO: Fill the gadget source code URL"
datasources:
  exec:
    fields:
      pid:
        annotations:
          description: "TODO: Fill field description"
      comm:
        annotations:
          description: "TODO: Fill field description"
      a:
        annotations:
          description: "TODO: Fill field description"
      b:
        annotations:
          description: "TODO: Fill field description"
      c:
        annotations:
          description: "TODO: Fill field description"
params:
  ebpf:
    defaults:
      key: defaults
      description: "TODO: Fill parameter description"
"#
        );
        // What we write, we validate cleanly (apart from the placeholders).
        let obj = GadgetObject::parse(MINIMAL_OBJECT).unwrap();
        let findings = super::super::validate(&out, Path::new("g.yaml"), Some(&obj)).unwrap();
        assert!(
            findings.iter().all(|d| d.message.contains("placeholder")),
            "{findings:?}"
        );
    }

    #[test]
    fn covers_every_kind_of_data_source_with_top_level_fields_only() {
        let out = update(None, &object()).unwrap();
        let doc = parse(&out);
        assert_eq!(
            keys(&doc["datasources"]),
            ["exec", "procs", "socks", "counters"]
        );
        let exec = keys(&doc["datasources"]["exec"]["fields"]);
        assert_eq!(
            exec,
            [
                "timestamp_raw",
                "proc",
                "flags_raw",
                "error",
                "op",
                "a",
                "b",
                "c",
                "addr_raw",
                "anon_u32",
                "anon_u16",
                "fname",
                "matrix",
                "flag",
                "ratio",
                "cv",
                "ptr",
                "big"
            ]
        );
        assert_eq!(
            keys(&doc["datasources"]["counters"]["fields"]),
            ["pid", "cpu", "count", "bytes"]
        );
        assert_eq!(
            keys(&doc["datasources"]["procs"]["fields"]),
            ["comm", "pid"]
        );
        assert_eq!(
            keys(&doc["params"]["ebpf"]),
            ["targ_pid", "targ_comm", "targ_flag", "cfg"]
        );
        // Upstream's well-known names, and the initial values as defaults.
        let ebpf = &doc["params"]["ebpf"];
        assert_eq!(ebpf["targ_pid"]["key"].as_str(), Some("pid"));
        assert_eq!(ebpf["targ_pid"]["defaultValue"].as_str(), Some("42"));
        assert_eq!(ebpf["targ_comm"]["key"].as_str(), Some("comm"));
        assert_eq!(ebpf["targ_comm"]["defaultValue"].as_str(), Some("bash"));
        assert!(
            ebpf["cfg"]["defaultValue"].is_badvalue(),
            "a struct has no text form: no default, as upstream's generator writes it"
        );
        assert_eq!(ebpf["targ_flag"]["key"].as_str(), Some("flag"));
        assert_eq!(ebpf["targ_flag"]["defaultValue"].as_str(), Some("false"));
    }

    #[test]
    fn a_struct_described_by_dotted_member_names_is_not_added_again() {
        let existing =
            "name: n\ndescription: d\nhomepageURL: h\ndocumentationURL: u\nsourceURL: s\n";
        let first = update(Some(existing), &object()).unwrap();
        let doc = parse(&first);
        let fields = keys(&doc["datasources"]["exec"]["fields"]);
        let Some(nested) = fields.iter().find(|f| !f.contains('.')) else {
            return;
        };
        // Describe that field's members by dotted name instead: nothing is added back.
        let dotted = first.replace(
            &format!("      {nested}:\n"),
            &format!("      {nested}.x:\n"),
        );
        assert_eq!(update(Some(&dotted), &object()).unwrap(), dotted);
    }

    #[test]
    fn param_keys_are_upstreams_well_known_names() {
        assert_eq!(param_key("targ_pid"), "pid");
        assert_eq!(param_key("ignore_failed"), "ignore-failed");
        assert_eq!(param_key("targ_"), "targ-");
        assert_eq!(param_key("cfg"), "cfg");
    }

    #[test]
    fn keeps_unknown_keys_order_and_existing_entries() {
        let existing = r#"operator:
  oci:
    verify-image: false
name: mygadget
datasources:
  exec:
    annotations:
      cli.clear-screen-before: "true"
    fields:
      fname:
        annotations:
          description: The file
          columns.width: 64
      custom_field:
        annotations:
          description: kept although not in the struct
params:
  ebpf:
    targ_pid:
      key: pid
      defaultValue: "7"
      description: My pid
  wasm:
    extra:
      key: extra
programs:
  trace_exec: {}
zzz_unknown: [1, 2]
"#;
        let out = update(Some(existing), &object()).unwrap();
        let doc = parse(&out);
        let before = parse(existing);
        assert_eq!(
            keys(&doc),
            [
                "operator",
                "name",
                "description",
                "homepageURL",
                "documentationURL",
                "sourceURL",
                "datasources",
                "params",
                "programs",
                "zzz_unknown"
            ]
        );
        assert_eq!(doc["operator"], before["operator"]);
        assert_eq!(doc["programs"], before["programs"]);
        assert_eq!(doc["zzz_unknown"], before["zzz_unknown"]);
        assert_eq!(doc["name"].as_str(), Some("mygadget"));
        assert_eq!(doc["params"]["wasm"], before["params"]["wasm"]);
        assert_eq!(
            doc["params"]["ebpf"]["targ_pid"],
            before["params"]["ebpf"]["targ_pid"]
        );
        let exec = &doc["datasources"]["exec"];
        assert_eq!(
            exec["annotations"],
            before["datasources"]["exec"]["annotations"]
        );
        assert_eq!(
            exec["fields"]["fname"],
            before["datasources"]["exec"]["fields"]["fname"]
        );
        let fields = keys(&exec["fields"]);
        assert_eq!(
            &fields[..3],
            ["fname", "custom_field", "timestamp_raw"],
            "existing fields first, new ones appended"
        );
        assert!(!fields[1..].contains(&"fname".to_string()));
        assert_eq!(
            keys(&doc["params"]["ebpf"]),
            ["targ_pid", "targ_comm", "targ_flag", "cfg"]
        );
    }

    #[test]
    fn never_changes_present_descriptive_values_even_empty() {
        let existing =
            "name: ''\ndescription: Mine\nhomepageURL:\nsourceURL: s\ndocumentationURL: d\n";
        let out = update(
            Some(existing),
            &GadgetObject::parse(MINIMAL_OBJECT).unwrap(),
        )
        .unwrap();
        let doc = parse(&out);
        assert_eq!(
            &keys(&doc)[..5],
            [
                "name",
                "description",
                "homepageURL",
                "sourceURL",
                "documentationURL"
            ]
        );
        assert_eq!(doc["name"].as_str(), Some(""));
        assert_eq!(doc["description"].as_str(), Some("Mine"));
        assert!(doc["homepageURL"].is_null());
    }

    #[test]
    fn is_idempotent_and_keeps_comments_when_nothing_changes() {
        let obj = object();
        let first = update(None, &obj).unwrap();
        let commented = format!("# my comment\n{first}");
        assert_eq!(update(Some(&commented), &obj).unwrap(), commented);
    }

    #[test]
    fn refuses_to_update_wrong_shapes() {
        let err = update(Some("datasources: [a]\n"), &object()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`gadget.yaml`: `datasources`: is a list, expected a mapping; cannot update it"
        );
        let err = update(Some("datasources:\n  exec: 3\n"), &object()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`gadget.yaml`: `datasources.exec`: is an integer, expected a mapping; cannot update it"
        );
        assert!(matches!(
            update(Some("a: [\n"), &object()),
            Err(MetadataError::Yaml(_))
        ));
    }

    #[test]
    fn emits_empty_values_and_multiline_strings_readably() {
        let existing = "name: n\ndescription: |\n  line one\n  line two\nhomepageURL: h\ndocumentationURL: u\nsourceURL: s\nextra:\n";
        let out = update(
            Some(existing),
            &GadgetObject::parse(MINIMAL_OBJECT).unwrap(),
        )
        .unwrap();
        assert!(
            out.contains("description: |\n  line one\n  line two\n"),
            "{out}"
        );
        assert!(out.contains("\nextra:\n"), "{out}");
        assert_eq!(parse(&out)["description"], parse(existing)["description"]);
    }

    #[test]
    fn datasources_go_before_existing_params() {
        let existing = "name: n\ndescription: d\nhomepageURL: h\ndocumentationURL: u\nsourceURL: s\nparams:\n  ebpf: {}\n";
        let out = update(
            Some(existing),
            &GadgetObject::parse(MINIMAL_OBJECT).unwrap(),
        )
        .unwrap();
        assert_eq!(keys(&parse(&out))[5..], ["datasources", "params"]);
    }
}
