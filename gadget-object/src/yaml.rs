//! The one hardened YAML loader for everything ig-image and the runtime read as YAML:
//! gadget.yaml (from a gadget directory or an image's config blob), build.yaml and
//! artifacthub-pkg.yml.
//!
//! Before any tree is built, the text is checked against [`YamlLimits`]: its size, then (walking
//! the parser's events, which allocates nothing per node) its nesting depth, its node count and
//! the nodes that anchors and aliases would materialize. `yaml-rust2`'s loader copies a node once
//! per anchor and once per alias, so a few hundred bytes of "billion laughs" would otherwise
//! exhaust memory; and dropping a tree recurses, so depth is bounded too. Each limit has its own
//! error naming where the text came from ([`YamlError`]'s `origin`) and the limit.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::{ScanError, Yaml, YamlLoader};

pub use yaml_rust2;

/// The bounds every document is checked against before it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest text accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes (scalars, mappings, sequences, aliases) written in the text.
    pub max_nodes: u64,
    /// Most nodes the loaded tree may hold once anchors are copied and aliases expanded.
    pub max_expanded_nodes: u64,
}

impl YamlLimits {
    /// The limits of every file ig-image reads: far above any real gadget.yaml (upstream's
    /// largest are a few KiB, a few hundred nodes), far below what would strain memory (the
    /// loaded tree of 200 000 nodes takes some tens of MB).
    pub const DEFAULT: YamlLimits = YamlLimits {
        max_bytes: 4 << 20,
        max_depth: 64,
        max_nodes: 100_000,
        max_expanded_nodes: 200_000,
    };
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits::DEFAULT
    }
}

/// Why a YAML text was not loaded. `origin` says where it came from: "`dir/gadget.yaml`", or
/// "the config blob sha256:… of `image`" (see [`file_origin`], [`blob_origin`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// Larger than [`YamlLimits::max_bytes`].
    #[error("{origin}: is {size} bytes, more than the {limit}-byte limit for a YAML file")]
    TooLarge {
        /// Where the text came from.
        origin: String,
        /// Its size in bytes.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("{origin}: is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Where the text came from.
        origin: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Not YAML.
    #[error("{origin}: invalid YAML at line {line}, column {column}: {reason}")]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        reason: String,
    },
    /// Nested deeper than [`YamlLimits::max_depth`].
    #[error("{origin}: nests mappings and lists deeper than {limit} levels (at line {line})")]
    TooDeep {
        /// Where the text came from.
        origin: String,
        /// The line where the limit was crossed.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// More than [`YamlLimits::max_nodes`] nodes written in the text.
    #[error(
        "{origin}: has more than {limit} YAML nodes (keys, values and list items; at line {line})"
    )]
    TooManyNodes {
        /// Where the text came from.
        origin: String,
        /// The line where the limit was crossed.
        line: usize,
        /// The limit.
        limit: u64,
    },
    /// Anchors and aliases would materialize more than [`YamlLimits::max_expanded_nodes`] nodes.
    #[error(
        "{origin}: its anchors and aliases (`&name`, `*name`) expand to more than {limit} nodes (at line {line}); is it a \"billion laughs\" file?"
    )]
    AliasExpansion {
        /// Where the text came from.
        origin: String,
        /// The line where the limit was crossed.
        line: usize,
        /// The limit.
        limit: u64,
    },
    /// More than one document (`---`).
    #[error("{origin}: holds {count} YAML documents, expected one")]
    MultipleDocuments {
        /// Where the text came from.
        origin: String,
        /// How many.
        count: usize,
    },
    /// The document is not a mapping.
    #[error("{origin}: is {found}, expected a mapping")]
    NotAMapping {
        /// Where the text came from.
        origin: String,
        /// What it is (`a list`, `a string`, ...).
        found: &'static str,
    },
}

/// The origin of a file: its path in backquotes.
pub fn file_origin(path: &std::path::Path) -> String {
    format!("`{}`", path.display())
}

/// The origin of an image's config blob.
pub fn blob_origin(image: &str, digest: &str) -> String {
    format!("the gadget.yaml config blob {digest} of `{image}`")
}

/// `a mapping`, `a list`, `a string`, ... for messages.
pub fn kind_name(value: &Yaml) -> &'static str {
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

/// Refuses a size over the limit before anything is read (for files and blobs whose size is
/// known up front).
pub fn check_size(size: u64, origin: &str, limits: &YamlLimits) -> Result<(), YamlError> {
    if size > limits.max_bytes as u64 {
        return Err(YamlError::TooLarge {
            origin: origin.to_string(),
            size,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

/// Loads the single document of `bytes` (UTF-8). An empty text (or a document holding only
/// `~`/null) is [`Yaml::Null`].
pub fn load_bytes(bytes: &[u8], origin: &str, limits: &YamlLimits) -> Result<Yaml, YamlError> {
    check_size(bytes.len() as u64, origin, limits)?;
    let text = std::str::from_utf8(bytes).map_err(|e| YamlError::NotUtf8 {
        origin: origin.to_string(),
        offset: e.valid_up_to(),
    })?;
    load_str(text, origin, limits)
}

/// Loads the single document of `text`. An empty text is [`Yaml::Null`].
pub fn load_str(text: &str, origin: &str, limits: &YamlLimits) -> Result<Yaml, YamlError> {
    check_size(text.len() as u64, origin, limits)?;
    check_shape(text, origin, limits)?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| syntax(origin, &e))?;
    if docs.len() > 1 {
        return Err(YamlError::MultipleDocuments {
            origin: origin.to_string(),
            count: docs.len(),
        });
    }
    Ok(match docs.into_iter().next() {
        None | Some(Yaml::BadValue) => Yaml::Null,
        Some(doc) => doc,
    })
}

/// Loads a document that must be a mapping (or empty, which is an empty mapping).
pub fn load_mapping(
    bytes: &[u8],
    origin: &str,
    limits: &YamlLimits,
) -> Result<yaml_rust2::yaml::Hash, YamlError> {
    match load_bytes(bytes, origin, limits)? {
        Yaml::Null => Ok(Default::default()),
        Yaml::Hash(map) => Ok(map),
        other => Err(YamlError::NotAMapping {
            origin: origin.to_string(),
            found: kind_name(&other),
        }),
    }
}

fn syntax(origin: &str, e: &ScanError) -> YamlError {
    YamlError::Syntax {
        origin: origin.to_string(),
        line: e.marker().line(),
        column: e.marker().col() + 1,
        reason: e.info().to_string(),
    }
}

/// Walks the parser's events and refuses a text that breaks a limit, before the loader
/// allocates anything. Counts, for every anchored node, its size (the loader keeps a copy of it)
/// and, for every alias, the size of its target (the loader copies it again).
fn check_shape(text: &str, origin: &str, limits: &YamlLimits) -> Result<(), YamlError> {
    let mut parser = Parser::new_from_str(text);
    // Size of each anchored node, by anchor id.
    let mut anchor_sizes: HashMap<usize, u64> = HashMap::new();
    // (anchor id, expanded size so far) of each open collection.
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut written: u64 = 0;
    let mut expanded: u64 = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| syntax(origin, &e))?;
        let line = mark.line();
        // (nodes written, nodes the loader materializes) for this event.
        let (own, size) = match event {
            Event::StreamEnd => return Ok(()),
            Event::MappingStart(aid, _) | Event::SequenceStart(aid, _) => {
                if open.len() >= limits.max_depth {
                    return Err(YamlError::TooDeep {
                        origin: origin.to_string(),
                        line,
                        limit: limits.max_depth,
                    });
                }
                open.push((aid, 1));
                (1, 1)
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some((aid, size)) = open.pop() else {
                    continue;
                };
                if let Some(parent) = open.last_mut() {
                    parent.1 = parent.1.saturating_add(size);
                }
                if aid > 0 {
                    anchor_sizes.insert(aid, size);
                    // The loader's copy in its anchor map.
                    (0, size)
                } else {
                    (0, 0)
                }
            }
            Event::Scalar(_, _, aid, _) => {
                if let Some(parent) = open.last_mut() {
                    parent.1 = parent.1.saturating_add(1);
                }
                if aid > 0 {
                    anchor_sizes.insert(aid, 1);
                    (1, 2)
                } else {
                    (1, 1)
                }
            }
            Event::Alias(id) => {
                let size = anchor_sizes.get(&id).copied().unwrap_or(1);
                if let Some(parent) = open.last_mut() {
                    parent.1 = parent.1.saturating_add(size);
                }
                (1, size)
            }
            _ => continue,
        };
        written = written.saturating_add(own);
        expanded = expanded.saturating_add(size);
        if written > limits.max_nodes {
            return Err(YamlError::TooManyNodes {
                origin: origin.to_string(),
                line,
                limit: limits.max_nodes,
            });
        }
        if expanded > limits.max_expanded_nodes {
            return Err(YamlError::AliasExpansion {
                origin: origin.to_string(),
                line,
                limit: limits.max_expanded_nodes,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: YamlLimits = YamlLimits::DEFAULT;

    /// The 411-byte "billion laughs" of issue 12, row 1.
    fn alias_bomb() -> String {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (i, c) in "bcdefghi".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{c}: &{c} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn loads_a_mapping_in_file_order() {
        let map = load_mapping(b"name: x\ndescription: y\n", "`g.yaml`", &L).unwrap();
        let keys: Vec<_> = map.keys().filter_map(Yaml::as_str).collect();
        assert_eq!(keys, ["name", "description"]);
        assert!(load_mapping(b"", "`g.yaml`", &L).unwrap().is_empty());
        assert!(
            load_mapping(b"# only a comment\n", "`g.yaml`", &L)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_alias_bomb_is_refused_as_an_alias_expansion() {
        let bomb = alias_bomb();
        assert!(bomb.len() < 500, "{}", bomb.len());
        let err = load_bytes(bomb.as_bytes(), "`dir/gadget.yaml`", &L).unwrap_err();
        assert!(
            matches!(err, YamlError::AliasExpansion { limit: 200_000, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with("`dir/gadget.yaml`: its anchors and aliases"),
            "{text}"
        );
        assert!(text.contains("200000"), "{text}");
    }

    #[test]
    fn many_plain_keys_are_too_many_nodes_not_aliases() {
        let mut text = String::new();
        for i in 0..60_000 {
            text.push_str(&format!("k{i}: v\n"));
        }
        let err = load_str(&text, "`g.yaml`", &L).unwrap_err();
        assert!(
            matches!(err, YamlError::TooManyNodes { limit: 100_000, .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("alias"), "{err}");
        let big = "k: v\n".repeat(1_000_000);
        let err = load_str(&big, "`g.yaml`", &L).unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::TooLarge {
                    size: 5_000_000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("alias"), "{err}");
    }

    #[test]
    fn nesting_is_bounded_before_the_loader_recurses() {
        // yaml-rust2's scanner stops flow nesting itself (a syntax error at 256 levels).
        let err = load_str(&"[".repeat(100_000), "`g.yaml`", &L).unwrap_err();
        assert!(
            matches!(err, YamlError::TooDeep { .. } | YamlError::Syntax { .. }),
            "{err}"
        );
        let block: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let err = load_str(&block, "`g.yaml`", &L).unwrap_err();
        assert!(matches!(err, YamlError::TooDeep { limit: 64, .. }), "{err}");
        let deep = format!("{}x{}", "[".repeat(64), "]".repeat(64));
        assert!(load_str(&deep, "`g.yaml`", &L).is_ok());
        let deeper = format!("{}x{}", "[".repeat(65), "]".repeat(65));
        assert!(load_str(&deeper, "`g.yaml`", &L).is_err());
    }

    #[test]
    fn nested_anchors_count_their_copies() {
        // Every level is anchored: the loader keeps a copy of each, quadratic in the depth.
        let mut limits = L;
        limits.max_expanded_nodes = 1_000;
        let wide = vec!["x"; 200].join(", ");
        let text = format!("a: &a [&b [&c [&d [&e [&f [{wide}]]]]]]\n");
        let err = load_str(&text, "`g.yaml`", &limits).unwrap_err();
        assert!(matches!(err, YamlError::AliasExpansion { .. }), "{err}");
        // Small anchors and aliases are fine.
        let doc = load_str("name: &n x\ndescription: *n\n", "`g.yaml`", &L).unwrap();
        assert_eq!(doc["description"].as_str(), Some("x"));
    }

    #[test]
    fn other_errors_name_the_origin() {
        let origin = blob_origin("docker.io/library/x:1", "sha256:abc");
        let err = load_bytes(b"name: a\n  bad: [\n", &origin, &L).unwrap_err();
        let YamlError::Syntax { line, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*line, 2);
        assert!(
            err.to_string()
                .starts_with("the gadget.yaml config blob sha256:abc of `docker.io/library/x:1`: invalid YAML at line 2"),
            "{err}"
        );
        let err = load_bytes(b"a: \xff\xfe\n", "`g.yaml`", &L).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`g.yaml`: is not UTF-8 text (invalid byte at offset 3)"
        );
        let err = load_bytes(b"a: 1\n---\nb: 2\n", "`g.yaml`", &L).unwrap_err();
        assert!(
            matches!(err, YamlError::MultipleDocuments { count: 2, .. }),
            "{err}"
        );
        let err = load_mapping(b"- a\n", "`g.yaml`", &L).unwrap_err();
        assert_eq!(err.to_string(), "`g.yaml`: is a list, expected a mapping");
        let err = check_size(50 << 20, "`g.yaml`", &L).unwrap_err();
        assert!(err.to_string().contains("52428800 bytes"), "{err}");
    }
}
