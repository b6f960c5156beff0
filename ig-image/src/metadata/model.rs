//! The descriptive part of gadget.yaml, as image assembly needs it.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

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

/// Loads the single YAML document of a gadget.yaml. An empty file is an empty mapping.
pub(crate) fn load(yaml_text: &str, file: &Path) -> Result<Yaml, MetadataError> {
    let docs = YamlLoader::load_from_str(yaml_text).map_err(|e| MetadataError::Syntax {
        file: file.to_path_buf(),
        line: e.marker().line(),
        column: e.marker().col() + 1,
        reason: e.info().to_string(),
    })?;
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
