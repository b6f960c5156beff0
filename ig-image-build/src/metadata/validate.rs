//! gadget.yaml checks (gadget-sdk.md §5), each a [`Diagnostic`] whose subject is the YAML path
//! of the culprit (`datasources.open.fields.fname.annotations.columns.width`).
//!
//! The line between errors and warnings is upstream's (`ig image build --validate-metadata`,
//! `pkg/metadata/v1`): what it refuses is an error here, what it accepts is at most a warning.
//!
//! Errors (upstream refuses these too):
//! - `params.ebpf.<var>` that is no `GADGET_PARAM` of the object, or without a non-empty `key`;
//! - a value of the wrong shape, which upstream's typed decoding of gadget.yaml rejects:
//!   descriptive keys and annotation values that are not scalars, sections (`datasources`,
//!   `fields`, `annotations`, `params`, ...) that are not mappings, param entries whose
//!   `isMandatory` is no boolean or whose `possibleValues` is no list of strings.
//!
//! Warnings (upstream builds and runs such gadgets):
//! - a data source that is no tracer, iterator or map iterator of the object: upstream's runtime
//!   ignores its entry (upstream's own trace_oomkill and ci/image_inspect ship with one), and a
//!   WASM module may create it;
//! - an annotation string outside its domain (see [`check_annotation`]), which only the
//!   component reading it looks at;
//! - a field that is neither in the struct (dotted names through nested structs), nor derived by
//!   the runtime (`x` from `x_raw`), nor an enrichment field (`k8s.*`, `runtime.*`): upstream
//!   gadgets rely on names the runtime adds, so this cannot be an error;
//! - unknown top-level keys (kept as they are: the runtime reads the file as a free-form tree);
//! - descriptive keys still holding a `TODO: ` placeholder from `--update-metadata`.
//!
//! Without an object, only the shapes are checked.

use std::collections::HashSet;
use std::path::Path;

use gadget_object::{Diagnostic, GadgetObject};
use yaml_rust2::Yaml;
use yaml_rust2::yaml::Hash;

use super::MetadataError;
use super::model::{kind_name, load, scalar_string};

/// The top-level keys of gadget.yaml the runtime knows (gadget-image.md §4).
pub const KNOWN_TOP_LEVEL_KEYS: [&str; 10] = [
    "name",
    "description",
    "homepageURL",
    "documentationURL",
    "sourceURL",
    "annotations",
    "datasources",
    "params",
    "operator",
    "programs",
];

/// The descriptive top-level keys, which hold strings.
pub(crate) const DESCRIPTIVE_KEYS: [&str; 5] = [
    "name",
    "description",
    "homepageURL",
    "documentationURL",
    "sourceURL",
];

/// Options for [`validate_with`].
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// The gadget also has a WASM module, which may create data sources of its own: data sources
    /// unknown to the eBPF object are then warnings, not errors.
    pub has_wasm: bool,
}

/// Validates gadget.yaml, against `object` when given. A YAML syntax error is an `Err` naming
/// the file and line; every other finding is a [`Diagnostic`].
pub fn validate(
    yaml_text: &str,
    file: &Path,
    object: Option<&GadgetObject>,
) -> Result<Vec<Diagnostic>, MetadataError> {
    validate_with(yaml_text, file, object, &ValidateOptions::default())
}

/// [`validate`] with options.
pub fn validate_with(
    yaml_text: &str,
    file: &Path,
    object: Option<&GadgetObject>,
    options: &ValidateOptions,
) -> Result<Vec<Diagnostic>, MetadataError> {
    let doc = load(yaml_text, file)?;
    let mut v = Validator {
        object,
        options,
        out: Vec::new(),
    };
    if let Yaml::Hash(root) = &doc {
        v.root(root);
    }
    Ok(v.out)
}

struct Validator<'a> {
    object: Option<&'a GadgetObject>,
    options: &'a ValidateOptions,
    out: Vec<Diagnostic>,
}

/// Whether a value is a YAML scalar (what a Go `map[string]string` accepts).
fn is_scalar(v: &Yaml) -> bool {
    scalar_string(v).is_some()
}

fn key_text(k: &Yaml) -> String {
    scalar_string(k).unwrap_or_else(|| format!("<{} key>", kind_name(k)))
}

impl Validator<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.out.push(Diagnostic::error(path, message));
    }

    fn warning(&mut self, path: &str, message: impl Into<String>) {
        self.out.push(Diagnostic::warning(path, message));
    }

    /// The mapping at `path`, or `None` (absent or empty); an error when it is something else.
    fn mapping<'y>(&mut self, value: &'y Yaml, path: &str) -> Option<&'y Hash> {
        match value {
            Yaml::Hash(h) => Some(h),
            Yaml::Null | Yaml::BadValue => None,
            other => {
                self.error(path, format!("is {}, expected a mapping", kind_name(other)));
                None
            }
        }
    }

    fn root(&mut self, root: &Hash) {
        for (k, value) in root {
            let key = key_text(k);
            match key.as_str() {
                k if DESCRIPTIVE_KEYS.contains(&k) => match scalar_string(value) {
                    None => self.error(&key, format!("is {}, expected a string", kind_name(value))),
                    Some(s) if s.starts_with("TODO: ") => {
                        self.warning(&key, format!("still holds the placeholder `{s}`"));
                    }
                    Some(_) => {}
                },
                "annotations" => {
                    if let Some(map) = self.mapping(value, "annotations") {
                        self.annotations(map, "annotations");
                    }
                }
                "datasources" => {
                    if let Some(map) = self.mapping(value, "datasources") {
                        self.datasources(map);
                    }
                }
                "params" => {
                    if let Some(map) = self.mapping(value, "params") {
                        self.params(map);
                    }
                }
                "operator" | "programs" => {
                    self.mapping(value, &key);
                }
                _ => self.warning(
                    &key,
                    format!(
                        "unknown top-level key (kept as is; known keys: {})",
                        KNOWN_TOP_LEVEL_KEYS.join(", ")
                    ),
                ),
            }
        }
    }

    fn datasources(&mut self, datasources: &Hash) {
        let known: Option<Vec<String>> = self
            .object
            .map(|o| o.data_sources().into_iter().map(|d| d.name).collect());
        for (k, value) in datasources {
            let name = key_text(k);
            let path = format!("datasources.{name}");
            let Some(ds) = self.mapping(value, &path) else {
                continue;
            };
            let mut is_known = true;
            if let Some(known) = &known {
                if !known.contains(&name) {
                    is_known = false;
                    let list = if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    };
                    let message = format!(
                        "is not a data source of the eBPF object (no tracer, iterator or map iterator `{name}`; it has: {list})"
                    );
                    let consequence = if self.options.has_wasm {
                        "fine if the WASM module creates it"
                    } else {
                        "the runtime ignores its entry"
                    };
                    self.warning(&path, format!("{message}; {consequence}"));
                }
            }
            for (fk, fvalue) in ds {
                let key = key_text(fk);
                let sub = format!("{path}.{key}");
                match key.as_str() {
                    "annotations" => {
                        if let Some(map) = self.mapping(fvalue, &sub) {
                            self.annotations(map, &sub);
                        }
                    }
                    "fields" => {
                        if let Some(fields) = self.mapping(fvalue, &sub) {
                            self.fields(&name, fields, &sub, is_known);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn fields(&mut self, ds: &str, fields: &Hash, path: &str, check_names: bool) {
        let object_fields: Option<(HashSet<String>, String)> = match self.object {
            Some(object) if check_names => match object.data_source_fields(ds) {
                Some(Ok(list)) => {
                    let structs = object
                        .data_sources()
                        .into_iter()
                        .find(|d| d.name == ds)
                        .map(|d| {
                            d.structs
                                .iter()
                                .map(|s| format!("`{s}`"))
                                .collect::<Vec<_>>()
                                .join(" and ")
                        })
                        .unwrap_or_default();
                    Some((list.into_iter().map(|f| f.name).collect(), structs))
                }
                // A missing struct is reported by the object checks; don't pile on.
                _ => None,
            },
            _ => None,
        };
        for (k, value) in fields {
            let field = key_text(k);
            let fpath = format!("{path}.{field}");
            if let Some((names, structs)) = &object_fields {
                let derived = names.contains(&format!("{field}_raw"));
                let enrichment = ["k8s", "runtime"]
                    .iter()
                    .any(|p| field == *p || field.starts_with(&format!("{p}.")));
                if !names.contains(&field) && !derived && !enrichment {
                    self.warning(
                        &fpath,
                        format!(
                            "not a field of {structs}, nor derived by the runtime (no `{field}_raw`), nor an enrichment field (`k8s.*`, `runtime.*`)"
                        ),
                    );
                }
            }
            let Some(entry) = self.mapping(value, &fpath) else {
                continue;
            };
            for (ek, evalue) in entry {
                if key_text(ek) == "annotations" {
                    let apath = format!("{fpath}.annotations");
                    if let Some(map) = self.mapping(evalue, &apath) {
                        self.annotations(map, &apath);
                    }
                }
            }
        }
    }

    /// A value that is not a string fails upstream's decoding of gadget.yaml (annotations are a
    /// `map[string]string`): an error. A string outside a known annotation's domain is only read
    /// (and ignored) by the component that uses it: a warning.
    fn annotations(&mut self, annotations: &Hash, path: &str) {
        for (k, value) in annotations {
            let key = key_text(k);
            let apath = format!("{path}.{key}");
            if let Err(message) = check_annotation(&key, value) {
                if is_scalar(value) {
                    self.warning(&apath, message);
                } else {
                    self.error(&apath, message);
                }
            }
        }
    }

    fn params(&mut self, params: &Hash) {
        for (k, value) in params {
            let group = key_text(k);
            let gpath = format!("params.{group}");
            let Some(entries) = self.mapping(value, &gpath) else {
                continue;
            };
            for (pk, pvalue) in entries {
                let name = key_text(pk);
                let ppath = format!("{gpath}.{name}");
                let entry = self.mapping(pvalue, &ppath);
                if group != "ebpf" {
                    continue;
                }
                if let Some(object) = self.object {
                    if object.param(&name).is_none() {
                        let list = object
                            .params()
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>();
                        let list = if list.is_empty() {
                            "none".to_string()
                        } else {
                            list.join(", ")
                        };
                        self.error(
                            &ppath,
                            format!("`{name}` is not a parameter of the eBPF object (no `GADGET_PARAM({name})`; it has: {list})"),
                        );
                    }
                }
                let empty = Hash::new();
                let entry = entry.unwrap_or(&empty);
                match entry.get(&Yaml::String("key".into())) {
                    None => self.error(&ppath, "has no `key`"),
                    Some(key) => match scalar_string(key) {
                        Some(s) if !s.trim().is_empty() => {}
                        Some(_) => self.error(&format!("{ppath}.key"), "is empty"),
                        None => self.error(
                            &format!("{ppath}.key"),
                            format!("is {}, expected a string", kind_name(key)),
                        ),
                    },
                }
                for (ek, evalue) in entry {
                    let ekey = key_text(ek);
                    let epath = format!("{ppath}.{ekey}");
                    let problem = match ekey.as_str() {
                        "defaultValue" | "description" | "alias" | "title" | "typeHint"
                        | "valueHint"
                            if !is_scalar(evalue) =>
                        {
                            format!("is {}, expected a string", kind_name(evalue))
                        }
                        "possibleValues" if !matches!(evalue, Yaml::Array(items) if items.iter().all(is_scalar)) =>
                        {
                            format!("is {}, expected a list of strings", kind_name(evalue))
                        }
                        "isMandatory"
                            if scalar_string(evalue).and_then(|s| parse_bool(&s)).is_none() =>
                        {
                            "expected `true` or `false`".to_string()
                        }
                        _ => continue,
                    };
                    self.error(&epath, problem);
                }
            }
        }
    }
}

/// Go's `strconv.ParseBool`, which the runtime uses for boolean annotations.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Checks one annotation value. The runtime reads annotations as strings, so every value must be
/// a scalar; a YAML integer `64` and a string `"64"` are the same to it. Known keys have domains:
///
/// | annotation | accepted values |
/// |---|---|
/// | `columns.width`, `columns.maxwidth`, `columns.minwidth`, `columns.precision` | non-negative integers |
/// | `columns.alignment` | `left`, `right` |
/// | `columns.ellipsis` | `none`, `start`, `end`, `middle` |
/// | `columns.hidden`, `columns.fixed`, `columns.hex`, `json.skip` | booleans as Go parses them (`true`, `false`, `1`, `0`, `t`, `f`, ...) |
/// | `description`, `template`, `columns.alias`, `value.one-of`, anything else | any string |
pub fn check_annotation(key: &str, value: &Yaml) -> Result<(), String> {
    let Some(text) = scalar_string(value) else {
        let hint = if matches!(value, Yaml::Hash(_)) {
            " (annotations are flat: write `columns.width: 10`, not a nested mapping)"
        } else {
            ""
        };
        return Err(format!("is {}, expected a string{hint}", kind_name(value)));
    };
    let text = text.trim();
    let problem = match key {
        "columns.width" | "columns.maxwidth" | "columns.minwidth" | "columns.precision"
            if text.parse::<u32>().is_err() =>
        {
            "is not a non-negative integer"
        }
        "columns.alignment" if !matches!(text, "left" | "right") => "is not `left` or `right`",
        "columns.ellipsis" if !matches!(text, "none" | "start" | "end" | "middle") => {
            "is not one of `none`, `start`, `end`, `middle`"
        }
        "columns.hidden" | "columns.fixed" | "columns.hex" | "json.skip"
            if parse_bool(text).is_none() =>
        {
            "is not `true` or `false`"
        }
        _ => return Ok(()),
    };
    Err(format!("`{text}` {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_OBJECT: &[u8] = include_bytes!("../../../gadget-object/testdata/good.o");

    fn object() -> GadgetObject {
        GadgetObject::parse(GOOD_OBJECT).unwrap()
    }

    fn run(text: &str, object: Option<&GadgetObject>) -> Vec<String> {
        validate(text, Path::new("gadget.yaml"), object)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn with_object(text: &str) -> Vec<String> {
        run(text, Some(&object()))
    }

    const VALID: &str = r#"
name: exec
description: Trace exec
homepageURL: https://example.invalid
documentationURL: https://example.invalid/docs
sourceURL: https://example.invalid/src
annotations:
  io.artifacthub.package.category: monitoring-logging
datasources:
  exec:
    annotations:
      cli.clear-screen-before: "false"
    fields:
      proc.comm:
        annotations:
          template: comm
          columns.width: 16
      proc.parent.pid:
        annotations:
          columns.hidden: true
      timestamp:
        annotations:
          columns.alignment: right
      flags:
        annotations:
          columns.width: "12"
      k8s.podName: {}
      fname:
        annotations:
          columns.ellipsis: start
          columns.maxwidth: 64
  counters:
    fields:
      pid: {}
      count: {}
  procs: {}
  socks: {}
params:
  ebpf:
    targ_pid:
      key: pid
      defaultValue: "0"
      description: Only this pid
      isMandatory: false
      possibleValues: ["0", "1"]
  wasm:
    anything:
      key: x
operator:
  oci:
    verify-image: false
programs:
  trace_exec:
    attach_to: sys_enter_execve
"#;

    #[test]
    fn valid_file_has_no_findings() {
        assert_eq!(with_object(VALID), Vec::<String>::new());
        assert_eq!(run(VALID, None), Vec::<String>::new());
    }

    #[test]
    fn syntax_error_is_an_error_naming_file_and_line() {
        let err = validate(
            "name: x\ndatasources:\n  - a\n  b: c\n",
            Path::new("g/gadget.yaml"),
            None,
        )
        .unwrap_err();
        let MetadataError::Yaml(gadget_object::yaml::YamlError::Syntax { origin, line, .. }) = &err
        else {
            panic!("{err}")
        };
        assert_eq!((origin.as_str(), *line), ("`g/gadget.yaml`", 4));
        assert!(
            err.to_string()
                .starts_with("`g/gadget.yaml`: invalid YAML at line 4"),
            "{err}"
        );
    }

    #[test]
    fn unknown_datasource_is_a_warning_naming_it() {
        let text = "datasources:\n  open: {}\n";
        assert_eq!(
            with_object(text),
            [
                "warning: datasources.open: is not a data source of the eBPF object (no tracer, iterator or map iterator `open`; it has: exec, procs, socks, counters); the runtime ignores its entry"
            ]
        );
        let obj = object();
        let d = validate_with(
            text,
            Path::new("g.yaml"),
            Some(&obj),
            &ValidateOptions { has_wasm: true },
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, gadget_object::Severity::Warning);
        assert!(
            d[0].to_string()
                .ends_with("fine if the WASM module creates it")
        );
        assert!(
            run(text, None).is_empty(),
            "without an object, names are not checked"
        );
    }

    #[test]
    fn unknown_field_is_a_warning_derived_and_enrichment_are_fine() {
        let text = "datasources:\n  exec:\n    fields:\n      nosuch: {}\n      flags: {}\n      timestamp: {}\n      runtime.containerName: {}\n      proc.parent.comm: {}\n      proc.nope: {}\n";
        assert_eq!(
            with_object(text),
            [
                "warning: datasources.exec.fields.nosuch: not a field of `event`, nor derived by the runtime (no `nosuch_raw`), nor an enrichment field (`k8s.*`, `runtime.*`)",
                "warning: datasources.exec.fields.proc.nope: not a field of `event`, nor derived by the runtime (no `proc.nope_raw`), nor an enrichment field (`k8s.*`, `runtime.*`)",
            ]
        );
        let text = "datasources:\n  counters:\n    fields:\n      cpu: {}\n      bogus: {}\n";
        assert_eq!(
            with_object(text),
            [
                "warning: datasources.counters.fields.bogus: not a field of `counts_key` and `counts_value`, nor derived by the runtime (no `bogus_raw`), nor an enrichment field (`k8s.*`, `runtime.*`)"
            ]
        );
    }

    #[test]
    fn params_must_name_real_params_and_have_a_key() {
        let text = "params:\n  ebpf:\n    targ_pid:\n      key: ''\n    nosuch:\n      key: x\n    targ_comm:\n      description: d\n    cfg: {key: [a]}\n";
        assert_eq!(
            with_object(text),
            [
                "error: params.ebpf.targ_pid.key: is empty",
                "error: params.ebpf.nosuch: `nosuch` is not a parameter of the eBPF object (no `GADGET_PARAM(nosuch)`; it has: targ_pid, targ_comm, targ_flag, cfg)",
                "error: params.ebpf.targ_comm: has no `key`",
                "error: params.ebpf.cfg.key: is a list, expected a string",
            ]
        );
    }

    #[test]
    fn param_value_shapes() {
        let text = "params:\n  ebpf:\n    targ_pid:\n      key: pid\n      defaultValue: [1]\n      isMandatory: maybe\n      possibleValues: a\n";
        assert_eq!(
            with_object(text),
            [
                "error: params.ebpf.targ_pid.defaultValue: is a list, expected a string",
                "error: params.ebpf.targ_pid.isMandatory: expected `true` or `false`",
                "error: params.ebpf.targ_pid.possibleValues: is a string, expected a list of strings",
            ]
        );
    }

    #[test]
    fn annotation_shapes_are_errors_and_domains_warnings() {
        let text = r#"
datasources:
  exec:
    fields:
      fname:
        annotations:
          columns.width: wide
          columns.maxwidth: -3
          columns.minwidth: 2.5
          columns.alignment: center
          columns.ellipsis: both
          columns.hidden: yes
          columns.fixed: "true"
          columns.hex: 1
          json.skip: nope
          columns: {width: 3}
          description: [a]
          template: comm
"#;
        assert_eq!(
            with_object(text),
            [
                "warning: datasources.exec.fields.fname.annotations.columns.width: `wide` is not a non-negative integer",
                "warning: datasources.exec.fields.fname.annotations.columns.maxwidth: `-3` is not a non-negative integer",
                "warning: datasources.exec.fields.fname.annotations.columns.minwidth: `2.5` is not a non-negative integer",
                "warning: datasources.exec.fields.fname.annotations.columns.alignment: `center` is not `left` or `right`",
                "warning: datasources.exec.fields.fname.annotations.columns.ellipsis: `both` is not one of `none`, `start`, `end`, `middle`",
                "warning: datasources.exec.fields.fname.annotations.columns.hidden: `yes` is not `true` or `false`",
                "warning: datasources.exec.fields.fname.annotations.json.skip: `nope` is not `true` or `false`",
                "error: datasources.exec.fields.fname.annotations.columns: is a mapping, expected a string (annotations are flat: write `columns.width: 10`, not a nested mapping)",
                "error: datasources.exec.fields.fname.annotations.description: is a list, expected a string",
            ]
        );
    }

    #[test]
    fn datasource_and_top_level_annotations_are_checked_too() {
        let text = "annotations:\n  a: [1]\ndatasources:\n  exec:\n    annotations:\n      columns.width: x\n";
        assert_eq!(
            run(text, None),
            [
                "error: annotations.a: is a list, expected a string",
                "warning: datasources.exec.annotations.columns.width: `x` is not a non-negative integer",
            ]
        );
    }

    #[test]
    fn unknown_top_level_keys_are_warnings() {
        let d = run("name: x\nfoo: 1\ntracers: {}\n", None);
        assert_eq!(d.len(), 2);
        assert!(
            d[0].starts_with(
                "warning: foo: unknown top-level key (kept as is; known keys: name, description,"
            ),
            "{d:?}"
        );
        assert!(
            d[1].starts_with("warning: tracers: unknown top-level key"),
            "{d:?}"
        );
    }

    #[test]
    fn wrong_section_shapes_are_errors() {
        assert_eq!(
            run(
                "name: [x]\ndatasources: [a]\nparams:\n  ebpf: 3\noperator: x\n",
                None
            ),
            [
                "error: name: is a list, expected a string",
                "error: datasources: is a list, expected a mapping",
                "error: params.ebpf: is an integer, expected a mapping",
                "error: operator: is a string, expected a mapping",
            ]
        );
        assert_eq!(
            run("datasources:\n  exec:\n    fields:\n      pid: 3\n", None),
            ["error: datasources.exec.fields.pid: is an integer, expected a mapping"]
        );
    }

    #[test]
    fn placeholders_are_warnings() {
        assert_eq!(
            run("name: 'TODO: Fill the gadget name'\n", None),
            ["warning: name: still holds the placeholder `TODO: Fill the gadget name`"]
        );
    }

    #[test]
    fn check_annotation_accepts_integers_and_strings_alike() {
        assert!(check_annotation("columns.width", &Yaml::Integer(10)).is_ok());
        assert!(check_annotation("columns.width", &Yaml::String("10".into())).is_ok());
        assert!(check_annotation("columns.hidden", &Yaml::Boolean(true)).is_ok());
        assert!(check_annotation("columns.hex", &Yaml::String("F".into())).is_ok());
        assert!(check_annotation("something.else", &Yaml::String("whatever".into())).is_ok());
    }
}
