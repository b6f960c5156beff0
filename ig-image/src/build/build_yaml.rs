//! build.yaml: upstream's keys (`ebpfsource`, `metadata`, `wasm`) plus `platforms`, `includeDirs`, `cflags`.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use crate::platform::{self, Platform};

/// Default eBPF source file name, relative to the gadget directory.
pub const DEFAULT_EBPF_SOURCE: &str = "program.bpf.c";
/// Default metadata file name.
pub const DEFAULT_METADATA: &str = "gadget.yaml";
/// Default build file name.
pub const DEFAULT_BUILD_FILE: &str = "build.yaml";

/// Flags that would break the pipeline (output, mode, target, dependency files) if set in `cflags`.
const RESERVED_FLAGS: &[&str] = &[
    "-o",
    "-c",
    "-S",
    "-E",
    "-M",
    "-MD",
    "-MMD",
    "-MF",
    "-MT",
    "-MQ",
    "-target",
    "--target",
    "-emit-llvm",
];

/// A problem with build.yaml.
#[derive(Debug, thiserror::Error)]
pub enum BuildYamlError {
    /// The file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML.
    #[error("`{path}`: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message with line and column.
        message: String,
    },
    /// A key has a value of the wrong shape or an unsafe value.
    #[error("`{path}`: field `{field}`: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The key at fault (with list index).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A non-default `ebpfsource` that does not exist.
    #[error("`{path}`: field `ebpfsource`: `{source_path}` does not exist")]
    MissingSource {
        /// The build file (or the gadget directory when there is none).
        path: PathBuf,
        /// The missing source.
        source_path: PathBuf,
    },
    /// The gadget directory is missing or not a directory.
    #[error("`{dir}` is not a gadget directory (it does not exist or is not a directory)")]
    NotADirectory {
        /// What was given.
        dir: PathBuf,
    },
    /// Nothing to build.
    #[error(
        "nothing to build in `{dir}`: no eBPF source (`{DEFAULT_EBPF_SOURCE}`), no metadata file and no wasm module"
    )]
    Empty {
        /// The gadget directory.
        dir: PathBuf,
    },
}

/// What to build for one gadget directory, with paths resolved against it.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The gadget directory.
    pub dir: PathBuf,
    /// The build file that was read, if any.
    pub file: Option<PathBuf>,
    /// The eBPF source (C file or Cargo package), when the gadget has one.
    pub ebpf_source: Option<PathBuf>,
    /// The metadata file path (it may not exist yet).
    pub metadata: PathBuf,
    /// A WASM module to bundle.
    pub wasm: Option<PathBuf>,
    /// Platforms named in build.yaml.
    pub platforms: Option<Vec<Platform>>,
    /// Extra include directories (`includeDirs`).
    pub include_dirs: Vec<PathBuf>,
    /// Extra compiler arguments (`cflags`), one argument each, never through a shell.
    pub cflags: Vec<String>,
    /// Non-fatal remarks (unknown keys).
    pub warnings: Vec<String>,
}

impl BuildSpec {
    /// Read `file` (default `<dir>/build.yaml`, optional) and resolve every path against `dir`.
    pub fn load(dir: &Path, file: Option<&Path>) -> Result<BuildSpec, BuildYamlError> {
        if !dir.is_dir() {
            return Err(BuildYamlError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let (file, explicit) = match file {
            Some(f) if f.is_absolute() || f.exists() => (f.to_path_buf(), true),
            Some(f) => (dir.join(f), true),
            None => (dir.join(DEFAULT_BUILD_FILE), false),
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
            Err(source) => return Err(BuildYamlError::Read { path: file, source }),
        };
        let mut spec = BuildSpec {
            dir: dir.to_path_buf(),
            file: None,
            ebpf_source: None,
            metadata: dir.join(DEFAULT_METADATA),
            wasm: None,
            platforms: None,
            include_dirs: Vec::new(),
            cflags: Vec::new(),
            warnings: Vec::new(),
        };
        let mut ebpf_explicit = None;
        if let Some(text) = text {
            let doc = parse(&file, &text)?;
            spec.file = Some(file.clone());
            let field_err = |field: &str, message: String| BuildYamlError::Field {
                path: file.clone(),
                field: field.to_string(),
                message,
            };
            if let Yaml::Hash(map) = &doc {
                for (key, value) in map {
                    let Some(key) = key.as_str() else {
                        return Err(field_err("?", "keys must be strings".into()));
                    };
                    match key {
                        "ebpfsource" => ebpf_explicit = Some(file_value(&file, key, value)?),
                        "metadata" => spec.metadata = dir.join(file_value(&file, key, value)?),
                        "wasm" => spec.wasm = Some(dir.join(file_value(&file, key, value)?)),
                        "platforms" => {
                            let list = string_list(&file, key, value)?;
                            let parsed = platform::parse_list(&list.join(","))
                                .map_err(|e| field_err(key, e.to_string()))?;
                            if parsed.is_empty() {
                                return Err(field_err(key, "the list is empty".into()));
                            }
                            spec.platforms = Some(parsed);
                        }
                        "includeDirs" => {
                            for (i, d) in string_list(&file, key, value)?.into_iter().enumerate() {
                                check_not_flag(&file, &format!("{key}[{i}]"), &d)?;
                                spec.include_dirs.push(dir.join(d));
                            }
                        }
                        "cflags" => {
                            for (i, flag) in string_list(&file, key, value)?.into_iter().enumerate() {
                                check_cflag(&file, &format!("{key}[{i}]"), &flag)?;
                                spec.cflags.push(flag);
                            }
                        }
                        other => spec.warnings.push(format!(
                            "`{}`: unknown key `{other}` ignored (known: ebpfsource, metadata, wasm, platforms, includeDirs, cflags)",
                            file.display()
                        )),
                    }
                }
            } else if !matches!(doc, Yaml::Null | Yaml::BadValue) {
                return Err(field_err("(top level)", "expected a mapping".into()));
            }
        }
        match ebpf_explicit {
            Some(src) => {
                let path = dir.join(&src);
                if !path.exists() {
                    return Err(BuildYamlError::MissingSource {
                        path: spec.file.clone().unwrap_or_else(|| dir.to_path_buf()),
                        source_path: path,
                    });
                }
                spec.ebpf_source = Some(path);
            }
            None => {
                let default = dir.join(DEFAULT_EBPF_SOURCE);
                if default.exists() {
                    spec.ebpf_source = Some(default);
                } else if dir.join("Cargo.toml").exists() {
                    spec.ebpf_source = Some(dir.join("Cargo.toml"));
                }
            }
        }
        if spec.ebpf_source.is_none() && spec.wasm.is_none() && !spec.metadata.exists() {
            return Err(BuildYamlError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(spec)
    }
}

fn parse(file: &Path, text: &str) -> Result<Yaml, BuildYamlError> {
    let mut docs = YamlLoader::load_from_str(text).map_err(|e| BuildYamlError::Syntax {
        path: file.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(if docs.is_empty() {
        Yaml::Null
    } else {
        docs.swap_remove(0)
    })
}

fn file_value(file: &Path, key: &str, value: &Yaml) -> Result<String, BuildYamlError> {
    let s = value.as_str().ok_or_else(|| BuildYamlError::Field {
        path: file.to_path_buf(),
        field: key.to_string(),
        message: "expected a file name (string)".into(),
    })?;
    check_not_flag(file, key, s)?;
    Ok(s.to_string())
}

fn check_not_flag(file: &Path, field: &str, value: &str) -> Result<(), BuildYamlError> {
    if value.is_empty() || value.starts_with('-') || value.starts_with('@') {
        return Err(BuildYamlError::Field {
            path: file.to_path_buf(),
            field: field.to_string(),
            message: format!("`{value}` is not a usable path (empty, or starts with `-` or `@`)"),
        });
    }
    Ok(())
}

fn check_cflag(file: &Path, field: &str, flag: &str) -> Result<(), BuildYamlError> {
    let name = flag.split('=').next().unwrap_or(flag);
    let reserved = RESERVED_FLAGS.contains(&name)
        || (name.starts_with("-M") && name.len() <= 4)
        || flag.starts_with('@');
    if flag.is_empty() || reserved {
        return Err(BuildYamlError::Field {
            path: file.to_path_buf(),
            field: field.to_string(),
            message: format!(
                "`{flag}` cannot be used: ig-image sets the output, target and dependency-file flags itself, and response files (`@file`) are refused"
            ),
        });
    }
    Ok(())
}

fn string_list(file: &Path, key: &str, value: &Yaml) -> Result<Vec<String>, BuildYamlError> {
    let err = |message: &str| BuildYamlError::Field {
        path: file.to_path_buf(),
        field: key.to_string(),
        message: message.to_string(),
    };
    match value {
        Yaml::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Yaml::String(s) => Ok(s.clone()),
                Yaml::Integer(n) => Ok(n.to_string()),
                _ => Err(BuildYamlError::Field {
                    path: file.to_path_buf(),
                    field: format!("{key}[{i}]"),
                    message: "expected a string".into(),
                }),
            })
            .collect(),
        Yaml::String(s) if key == "platforms" => {
            Ok(s.split(',').map(|p| p.trim().to_string()).collect())
        }
        _ => Err(err(
            "expected a list of strings (a YAML sequence, one argument per item)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gadget(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn defaults_without_build_yaml() {
        let d = gadget(&[("program.bpf.c", ""), ("gadget.yaml", "name: x\n")]);
        let spec = BuildSpec::load(d.path(), None).unwrap();
        assert_eq!(spec.ebpf_source.unwrap(), d.path().join("program.bpf.c"));
        assert!(spec.file.is_none());
        assert!(spec.cflags.is_empty());
    }

    #[test]
    fn reads_extended_keys_and_warns_on_unknown() {
        let d = gadget(&[
            ("prog.c", ""),
            (
                "build.yaml",
                "ebpfsource: prog.c\nplatforms: [arm64, amd64]\nincludeDirs: [inc]\ncflags: ['-DFOO=1', '-Wno-unused']\nfrobnicate: 1\n",
            ),
        ]);
        let spec = BuildSpec::load(d.path(), None).unwrap();
        assert_eq!(
            spec.platforms.unwrap(),
            vec![Platform::Amd64, Platform::Arm64]
        );
        assert_eq!(spec.cflags, vec!["-DFOO=1", "-Wno-unused"]);
        assert_eq!(spec.include_dirs, vec![d.path().join("inc")]);
        assert_eq!(spec.warnings.len(), 1);
        assert!(spec.warnings[0].contains("`frobnicate`"));
    }

    #[test]
    fn refuses_pipeline_flags_and_flag_like_paths() {
        let d = gadget(&[
            ("program.bpf.c", ""),
            ("build.yaml", "cflags: ['-O2', '-o', '/etc/passwd']\n"),
        ]);
        let err = BuildSpec::load(d.path(), None).unwrap_err().to_string();
        assert!(err.contains("cflags[1]") && err.contains("`-o`"), "{err}");
        let d = gadget(&[("build.yaml", "ebpfsource: -rf\n")]);
        let err = BuildSpec::load(d.path(), None).unwrap_err().to_string();
        assert!(err.contains("ebpfsource"), "{err}");
        let d = gadget(&[("program.bpf.c", ""), ("build.yaml", "cflags: '-O2 -DX'\n")]);
        let err = BuildSpec::load(d.path(), None).unwrap_err().to_string();
        assert!(err.contains("list"), "{err}");
    }

    #[test]
    fn missing_explicit_source_is_an_error() {
        let d = gadget(&[("build.yaml", "ebpfsource: nope.c\n")]);
        let err = BuildSpec::load(d.path(), None).unwrap_err().to_string();
        assert!(err.contains("nope.c"), "{err}");
    }

    #[test]
    fn missing_directory_is_named() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let err = BuildSpec::load(&missing, None).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("not a gadget directory"),
            "{err}"
        );
    }

    #[test]
    fn empty_gadget_is_an_error() {
        let d = gadget(&[]);
        assert!(matches!(
            BuildSpec::load(d.path(), None),
            Err(BuildYamlError::Empty { .. })
        ));
    }
}
