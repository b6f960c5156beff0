//! The descriptive part of gadget.yaml, as image assembly needs it.

use std::path::Path;

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{ScanError, Yaml, YamlLoader};

use super::MetadataError;

/// The descriptive keys of gadget.yaml. Absent keys are empty strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GadgetInfo {
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `homepageURL`.
    pub homepage_url: String,
    /// `documentationURL`.
    pub documentation_url: String,
    /// `sourceURL`.
    pub source_url: String,
    /// The `annotations:` map, in file order, values as strings.
    pub annotations: Vec<(String, String)>,
}

/// Most nodes a document may expand to through aliases (the loader copies every alias target,
/// so a "billion laughs" file would otherwise exhaust memory).
const MAX_EXPANDED_NODES: u64 = 1_000_000;

/// Deepest nesting accepted (dropping and emitting trees recurse).
const MAX_DEPTH: usize = 128;

fn syntax(file: &Path, e: &ScanError) -> MetadataError {
    MetadataError::Syntax {
        file: file.to_path_buf(),
        line: e.marker().line(),
        column: e.marker().col() + 1,
        reason: e.info().to_string(),
    }
}

/// Walks the parser events and refuses documents whose aliases expand past
/// [`MAX_EXPANDED_NODES`], before the loader copies anything.
fn check_expansion(yaml_text: &str, file: &Path) -> Result<(), MetadataError> {
    let mut parser = Parser::new_from_str(yaml_text);
    let mut anchor_sizes: HashMap<usize, u64> = HashMap::new();
    // (anchor id, nodes so far) of each open collection.
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut total: u64 = 0;
    loop {
        let (event, _) = parser.next_token().map_err(|e| syntax(file, &e))?;
        let added = match event {
            Event::StreamEnd => return Ok(()),
            Event::MappingStart(aid, _) | Event::SequenceStart(aid, _) => {
                if open.len() >= MAX_DEPTH {
                    return Err(MetadataError::Shape {
                        file: file.to_path_buf(),
                        path: "<root>".to_string(),
                        reason: format!("nests deeper than {MAX_DEPTH} levels"),
                    });
                }
                open.push((aid, 1));
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some((aid, size)) = open.pop() else {
                    continue;
                };
                if aid > 0 {
                    anchor_sizes.insert(aid, size);
                }
                if let Some(parent) = open.last_mut() {
                    parent.1 = parent.1.saturating_add(size);
                }
                continue;
            }
            Event::Scalar(_, _, aid, _) => {
                if aid > 0 {
                    anchor_sizes.insert(aid, 1);
                }
                1
            }
            Event::Alias(id) => anchor_sizes.get(&id).copied().unwrap_or(1),
            _ => continue,
        };
        if let Some(parent) = open.last_mut() {
            parent.1 = parent.1.saturating_add(added);
        }
        total = total.saturating_add(added);
        if total > MAX_EXPANDED_NODES {
            return Err(MetadataError::Shape {
                file: file.to_path_buf(),
                path: "<root>".to_string(),
                reason: format!("expands to more than {MAX_EXPANDED_NODES} nodes through aliases"),
            });
        }
    }
}

/// Loads the single YAML document of a gadget.yaml. An empty file is an empty mapping.
pub(crate) fn load(yaml_text: &str, file: &Path) -> Result<Yaml, MetadataError> {
    check_expansion(yaml_text, file)?;
    let docs = YamlLoader::load_from_str(yaml_text).map_err(|e| syntax(file, &e))?;
    if docs.len() > 1 {
        return Err(MetadataError::Shape {
            file: file.to_path_buf(),
            path: "<root>".to_string(),
            reason: format!("holds {} YAML documents, expected one", docs.len()),
        });
    }
    match docs.into_iter().next() {
        None | Some(Yaml::Null) | Some(Yaml::BadValue) => Ok(Yaml::Hash(Default::default())),
        Some(doc @ Yaml::Hash(_)) => Ok(doc),
        Some(other) => Err(MetadataError::Shape {
            file: file.to_path_buf(),
            path: "<root>".to_string(),
            reason: format!("is {}, expected a mapping", kind_name(&other)),
        }),
    }
}

/// A scalar as the runtime reads it (a Go `map[string]string` decodes `64` as `"64"`).
pub(crate) fn scalar_string(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// `a mapping`, `a list`, `a string`, ... for messages.
pub(crate) fn kind_name(value: &Yaml) -> &'static str {
    match value {
        Yaml::Real(_) => "a number",
        Yaml::Integer(_) => "an integer",
        Yaml::String(_) => "a string",
        Yaml::Boolean(_) => "a boolean",
        Yaml::Array(_) => "a list",
        Yaml::Hash(_) => "a mapping",
        Yaml::Alias(_) => "an alias",
        Yaml::Null => "empty",
        Yaml::BadValue => "an invalid value",
    }
}

/// Reads the descriptive keys and the `annotations:` map.
///
/// Errors when the text is not YAML, or when one of these keys holds a list or mapping where a
/// string belongs (the runtime would reject it too).
pub fn descriptive(yaml_text: &str, file: &Path) -> Result<GadgetInfo, MetadataError> {
    let doc = load(yaml_text, file)?;
    let shape = |path: &str, reason: String| MetadataError::Shape {
        file: file.to_path_buf(),
        path: path.to_string(),
        reason,
    };
    let get = |key: &str| -> Result<String, MetadataError> {
        match &doc[key] {
            Yaml::BadValue => Ok(String::new()),
            v => scalar_string(v)
                .ok_or_else(|| shape(key, format!("is {}, expected a string", kind_name(v)))),
        }
    };
    let mut annotations = Vec::new();
    match &doc["annotations"] {
        Yaml::BadValue | Yaml::Null => {}
        Yaml::Hash(map) => {
            for (k, v) in map {
                let key = scalar_string(k).ok_or_else(|| {
                    shape("annotations", format!("has a key that is {}", kind_name(k)))
                })?;
                let value = scalar_string(v).ok_or_else(|| {
                    shape(
                        &format!("annotations.{key}"),
                        format!("is {}, expected a string", kind_name(v)),
                    )
                })?;
                annotations.push((key, value));
            }
        }
        other => {
            return Err(shape(
                "annotations",
                format!("is {}, expected a mapping of strings", kind_name(other)),
            ));
        }
    }
    Ok(GadgetInfo {
        name: get("name")?,
        description: get("description")?,
        homepage_url: get("homepageURL")?,
        documentation_url: get("documentationURL")?,
        source_url: get("sourceURL")?,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_descriptive_keys_and_annotations_in_order() {
        let text = "name: trace_open\ndescription: Trace open\nsourceURL: https://x\nannotations:\n  z.key: one\n  a.key: 2\n";
        let info = descriptive(text, Path::new("gadget.yaml")).unwrap();
        assert_eq!(info.name, "trace_open");
        assert_eq!(info.description, "Trace open");
        assert_eq!(info.homepage_url, "");
        assert_eq!(info.source_url, "https://x");
        assert_eq!(
            info.annotations,
            vec![("z.key".into(), "one".into()), ("a.key".into(), "2".into())]
        );
    }

    #[test]
    fn empty_file_is_empty_info() {
        assert_eq!(
            descriptive("", Path::new("g.yaml")).unwrap(),
            GadgetInfo::default()
        );
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = descriptive("name: a\n  bad: [\n", Path::new("dir/gadget.yaml")).unwrap_err();
        let MetadataError::Syntax { line, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*line, 2);
        assert!(
            err.to_string()
                .starts_with("`dir/gadget.yaml`: invalid YAML at line"),
            "{err}"
        );
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused_before_loading() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let err = descriptive(&text, Path::new("g.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .contains("expands to more than 1000000 nodes"),
            "{err}"
        );
        assert!(descriptive(&"[".repeat(100_000), Path::new("g.yaml")).is_err());
        let deep: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let err = descriptive(&deep, Path::new("g.yaml")).unwrap_err();
        assert!(
            err.to_string().contains("nests deeper than 128 levels"),
            "{err}"
        );
        // Ordinary aliases are fine.
        let info = descriptive("name: &n x\ndescription: *n\n", Path::new("g.yaml")).unwrap();
        assert_eq!(info.description, "x");
    }

    #[test]
    fn wrong_shapes_name_the_path() {
        let err = descriptive("name: [a]\n", Path::new("g.yaml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`g.yaml`: `name`: is a list, expected a string"
        );
        let err = descriptive("annotations:\n  k: {a: b}\n", Path::new("g.yaml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`g.yaml`: `annotations.k`: is a mapping, expected a string"
        );
        let err = descriptive("- a\n", Path::new("g.yaml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`g.yaml`: `<root>`: is a list, expected a mapping"
        );
    }
}
