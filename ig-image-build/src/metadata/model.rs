//! The descriptive part of gadget.yaml, as image assembly needs it.

use std::path::Path;

pub(crate) use gadget_object::yaml::kind_name;
use gadget_object::yaml::{self, YamlLimits};
use yaml_rust2::Yaml;

use super::MetadataError;
use super::validate::KNOWN_TOP_LEVEL_KEYS;

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

/// Loads the single YAML document of a gadget.yaml through the hardened loader (size, depth,
/// node and alias limits). An empty file is an empty mapping.
pub(crate) fn load(yaml_text: &str, file: &Path) -> Result<Yaml, MetadataError> {
    let origin = yaml::file_origin(file);
    match yaml::load_str(yaml_text, &origin, &YamlLimits::DEFAULT)? {
        Yaml::Null => Ok(Yaml::Hash(Default::default())),
        doc @ Yaml::Hash(_) => Ok(doc),
        other => Err(MetadataError::Shape {
            file: file.to_path_buf(),
            path: "<root>".to_string(),
            reason: format!("is {}, expected a mapping", kind_name(&other)),
        }),
    }
}

/// Refuses a metadata file that is not a gadget.yaml before it becomes an image's config blob:
/// a non-empty mapping without any of the known top-level keys (a `~/.docker/config.json`
/// named by `metadata:` would otherwise be published with the image). Unknown keys beside a
/// known one are kept.
pub fn require_gadget_yaml(yaml_text: &str, file: &Path) -> Result<(), MetadataError> {
    let Yaml::Hash(root) = load(yaml_text, file)? else {
        return Ok(());
    };
    let known = root.keys().any(|k| {
        k.as_str()
            .is_some_and(|k| KNOWN_TOP_LEVEL_KEYS.contains(&k))
    });
    if root.is_empty() || known {
        return Ok(());
    }
    let found: Vec<String> = root
        .keys()
        .take(5)
        .map(|k| scalar_string(k).unwrap_or_else(|| format!("<{}>", kind_name(k))))
        .collect();
    Err(MetadataError::Shape {
        file: file.to_path_buf(),
        path: "<root>".to_string(),
        reason: format!(
            "is not a gadget.yaml: it has none of the keys {} (found: {}); refusing to put it in the image",
            KNOWN_TOP_LEVEL_KEYS.join(", "),
            found.join(", ")
        ),
    })
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
        let MetadataError::Yaml(yaml::YamlError::Syntax { line, .. }) = &err else {
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
                .starts_with("`g.yaml`: its anchors and aliases")
                && err.to_string().contains("expand to more than 200000 nodes"),
            "{err}"
        );
        assert!(descriptive(&"[".repeat(100_000), Path::new("g.yaml")).is_err());
        let deep: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let err = descriptive(&deep, Path::new("g.yaml")).unwrap_err();
        assert!(err.to_string().contains("deeper than 64 levels"), "{err}");
        // Ordinary aliases are fine.
        let info = descriptive("name: &n x\ndescription: *n\n", Path::new("g.yaml")).unwrap();
        assert_eq!(info.description, "x");
    }

    #[test]
    fn a_mapping_without_gadget_keys_is_not_a_gadget_yaml() {
        let err = require_gadget_yaml(
            "{\"auths\": {\"ghcr.io\": {\"auth\": \"c2VjcmV0\"}}}\n",
            Path::new("/root/.docker/config.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("`/root/.docker/config.json`: `<root>`: is not a gadget.yaml")
                && err.contains("found: auths")
                && !err.contains("c2VjcmV0"),
            "{err}"
        );
        for ok in [
            "",
            "{}\n",
            "name: x\n",
            "name: x\nmyTool: {a: 1}\n",
            "datasources: {}\n",
        ] {
            require_gadget_yaml(ok, Path::new("g.yaml")).unwrap();
        }
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
