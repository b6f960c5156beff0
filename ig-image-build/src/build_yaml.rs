//! build.yaml: upstream's keys (`ebpfsource`, `metadata`, `wasm`) plus `platforms`, `includeDirs`, `cflags`.

use std::path::{Path, PathBuf};

use gadget_facts::platform::{self, Platform};
use gadget_object::yaml::{self, YamlLimits};
use yaml_rust2::Yaml;

use super::cflags;
use super::confine::{Escape, GadgetRoot};

/// Default eBPF source file name, relative to the gadget directory.
pub const DEFAULT_EBPF_SOURCE: &str = "program.bpf.c";
/// Default metadata file name.
pub const DEFAULT_METADATA: &str = "gadget.yaml";
/// Default build file name.
pub const DEFAULT_BUILD_FILE: &str = "build.yaml";

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
    /// Not YAML, or over a limit of the hardened loader (size, depth, nodes, aliases).
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    /// A path build.yaml names (or a default file) leads outside the gadget directory.
    #[error("`{path}`: field `{field}`: `{value}` {escape}")]
    Outside {
        /// The build file (or the gadget directory for a default file).
        path: PathBuf,
        /// The key (with list index).
        field: String,
        /// The path as written.
        value: String,
        /// Where it leads.
        escape: Escape,
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
    /// Every path build.yaml names, and the default files, must stay inside `dir` after
    /// symlinks; `file` itself comes from the command line and may be anywhere.
    pub fn load(dir: &Path, file: Option<&Path>) -> Result<BuildSpec, BuildYamlError> {
        if !dir.is_dir() {
            return Err(BuildYamlError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let root = GadgetRoot::new(dir).map_err(|source| BuildYamlError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let (file, doc) = read_build_file(dir, file)?;
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
        let mut named = NamedSources::default();
        if let Some(doc) = doc {
            spec.file = Some(file.clone());
            named = spec.apply(&root, &file, &doc)?;
        }
        // The default files are confined too: a `gadget.yaml` symlink to a secret must not
        // become the image's config blob.
        let culprit = spec.file.clone().unwrap_or_else(|| dir.to_path_buf());
        if !named.metadata {
            confine(&root, &culprit, "metadata", DEFAULT_METADATA)?;
        }
        spec.ebpf_source = ebpf_source(&root, dir, &culprit, named.ebpf)?;
        if spec.ebpf_source.is_none() && spec.wasm.is_none() && !spec.metadata.exists() {
            return Err(BuildYamlError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(spec)
    }

    /// Applies the keys of build file `file` (loaded as `doc`) to this spec; which sources it
    /// named.
    fn apply(
        &mut self,
        root: &GadgetRoot,
        file: &Path,
        doc: &Yaml,
    ) -> Result<NamedSources, BuildYamlError> {
        let dir = self.dir.clone();
        let mut named = NamedSources::default();
        let field_err = |field: &str, message: String| BuildYamlError::Field {
            path: file.to_path_buf(),
            field: field.to_string(),
            message,
        };
        // A path value, checked and confined to the gadget directory.
        let inside = |field: &str, value: &Yaml| -> Result<PathBuf, BuildYamlError> {
            let value = file_value(file, field, value)?;
            confine(root, file, field, &value)?;
            Ok(dir.join(value))
        };
        let Yaml::Hash(map) = doc else {
            if !matches!(doc, Yaml::Null) {
                return Err(field_err("(top level)", "expected a mapping".into()));
            }
            return Ok(named);
        };
        for (key, value) in map {
            let Some(key) = key.as_str() else {
                return Err(field_err("?", "keys must be strings".into()));
            };
            match key {
                "ebpfsource" => named.ebpf = Some(inside(key, value)?),
                "metadata" => {
                    self.metadata = inside(key, value)?;
                    named.metadata = true;
                }
                "wasm" => self.wasm = Some(inside(key, value)?),
                "platforms" => {
                    let list = string_list(file, key, value)?;
                    let parsed = platform::parse_list(&list.join(","))
                        .map_err(|e| field_err(key, e.to_string()))?;
                    if parsed.is_empty() {
                        return Err(field_err(key, "the list is empty".into()));
                    }
                    self.platforms = Some(parsed);
                }
                "includeDirs" => {
                    for (i, d) in string_list(file, key, value)?.into_iter().enumerate() {
                        let field = format!("{key}[{i}]");
                        check_not_flag(file, &field, &d)?;
                        confine(root, file, &field, &d)?;
                        self.include_dirs.push(dir.join(d));
                    }
                }
                "cflags" => {
                    for (i, flag) in string_list(file, key, value)?.into_iter().enumerate() {
                        if let Some(why) = cflags::refusal(&flag, root) {
                            return Err(field_err(&format!("{key}[{i}]"), why));
                        }
                        self.cflags.push(flag);
                    }
                }
                other => self.warnings.push(format!(
                    "`{}`: unknown key `{other}` ignored (known: ebpfsource, metadata, wasm, platforms, includeDirs, cflags)",
                    file.display()
                )),
            }
        }
        Ok(named)
    }
}

/// The sources a build file named itself (the others take their defaults).
#[derive(Default)]
struct NamedSources {
    /// `ebpfsource`, resolved.
    ebpf: Option<PathBuf>,
    /// Whether it named `metadata`.
    metadata: bool,
}

/// The build file's path (`file`, else `<dir>/build.yaml`) and its document; `None` when the
/// default file does not exist (a file given explicitly must).
fn read_build_file(
    dir: &Path,
    file: Option<&Path>,
) -> Result<(PathBuf, Option<Yaml>), BuildYamlError> {
    let (file, explicit) = match file {
        Some(f) if f.is_absolute() || f.exists() => (f.to_path_buf(), true),
        Some(f) => (dir.join(f), true),
        None => (dir.join(DEFAULT_BUILD_FILE), false),
    };
    let doc = match read_limited(&file) {
        Ok(bytes) => Some(yaml::load_bytes(
            &bytes,
            &yaml::file_origin(&file),
            &YamlLimits::DEFAULT,
        )?),
        Err(BuildYamlError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && !explicit =>
        {
            None
        }
        Err(e) => return Err(e),
    };
    Ok((file, doc))
}

/// The eBPF source: the one the build file named (it must exist), else the first default
/// (`program.bpf.c`, `Cargo.toml`) present, confined to the gadget directory; `culprit` is
/// the file blamed in errors.
fn ebpf_source(
    root: &GadgetRoot,
    dir: &Path,
    culprit: &Path,
    named: Option<PathBuf>,
) -> Result<Option<PathBuf>, BuildYamlError> {
    if let Some(path) = named {
        if !path.exists() {
            return Err(BuildYamlError::MissingSource {
                path: culprit.to_path_buf(),
                source_path: path,
            });
        }
        return Ok(Some(path));
    }
    for default in [DEFAULT_EBPF_SOURCE, "Cargo.toml"] {
        if dir.join(default).symlink_metadata().is_ok() {
            confine(root, culprit, "ebpfsource", default)?;
            return Ok(Some(dir.join(default)));
        }
    }
    Ok(None)
}

/// Reads a YAML file, refusing one over the loader's size limit before reading it.
pub(crate) fn read_limited(file: &Path) -> Result<Vec<u8>, BuildYamlError> {
    let read_err = |source| BuildYamlError::Read {
        path: file.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(file).map_err(read_err)?.len();
    yaml::check_size(size, &yaml::file_origin(file), &YamlLimits::DEFAULT)?;
    std::fs::read(file).map_err(read_err)
}

fn confine(root: &GadgetRoot, file: &Path, field: &str, value: &str) -> Result<(), BuildYamlError> {
    root.resolve(Path::new(value))
        .map(drop)
        .map_err(|escape| BuildYamlError::Outside {
            path: file.to_path_buf(),
            field: field.to_string(),
            value: value.to_string(),
            escape,
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
    fn paths_outside_the_gadget_are_refused_naming_key_and_path() {
        let outer = tempfile::tempdir().unwrap();
        let secret = outer.path().join("config.json");
        std::fs::write(&secret, "{\"auths\": {}}").unwrap();
        let d = outer.path().join("g");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("program.bpf.c"), "").unwrap();
        for (yaml, field, value) in [
            ("metadata: ../config.json\n", "metadata", "../config.json"),
            (
                &format!("metadata: {}\n", secret.display()),
                "metadata",
                secret.to_str().unwrap(),
            ),
            ("wasm: ../x.wasm\n", "wasm", "../x.wasm"),
            (
                "ebpfsource: ../../etc/passwd\n",
                "ebpfsource",
                "../../etc/passwd",
            ),
            (
                "includeDirs: [inc, /usr/include]\n",
                "includeDirs[1]",
                "/usr/include",
            ),
        ] {
            std::fs::write(d.join("build.yaml"), yaml).unwrap();
            let err = BuildSpec::load(&d, None).unwrap_err().to_string();
            assert!(
                err.contains(&format!("field `{field}`: `{value}` resolves to"))
                    && err.contains("outside the gadget directory"),
                "{yaml}: {err}"
            );
        }
        // A symlinked default gadget.yaml is confined too.
        std::fs::remove_file(d.join("build.yaml")).unwrap();
        std::os::unix::fs::symlink(&secret, d.join("gadget.yaml")).unwrap();
        let err = BuildSpec::load(&d, None).unwrap_err().to_string();
        assert!(
            err.contains("field `metadata`: `gadget.yaml` resolves to")
                && err.contains("config.json"),
            "{err}"
        );
        // Inside is fine, also through a symlink that stays inside.
        std::fs::remove_file(d.join("gadget.yaml")).unwrap();
        std::fs::write(d.join("real.yaml"), "name: x\n").unwrap();
        std::os::unix::fs::symlink("real.yaml", d.join("gadget.yaml")).unwrap();
        std::fs::write(
            d.join("build.yaml"),
            "metadata: ./gadget.yaml\nincludeDirs: [.]\n",
        )
        .unwrap();
        BuildSpec::load(&d, None).unwrap();
    }

    #[test]
    fn an_alias_bomb_build_yaml_is_refused_by_the_loader() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (i, c) in "bcdefghi".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            bomb.push_str(&format!(
                "{c}: &{c} [{}]\n",
                vec![format!("*{prev}"); 9].join(", ")
            ));
        }
        let d = gadget(&[("program.bpf.c", ""), ("build.yaml", &bomb)]);
        let err = BuildSpec::load(d.path(), None).unwrap_err();
        assert!(
            matches!(
                err,
                BuildYamlError::Yaml(yaml::YamlError::AliasExpansion { .. })
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("build.yaml`: its anchors and aliases"),
            "{err}"
        );
    }

    #[test]
    fn cflags_outside_the_allow_list_are_refused_by_item() {
        let d = gadget(&[
            ("program.bpf.c", ""),
            (
                "build.yaml",
                "cflags: ['-O2', '-Xclang', '-load', '-Xclang', '/abs/x.so']\n",
            ),
        ]);
        let err = BuildSpec::load(d.path(), None).unwrap_err().to_string();
        assert!(err.contains("field `cflags[1]`: `-Xclang`"), "{err}");
        let d = gadget(&[
            ("program.bpf.c", ""),
            ("build.yaml", "cflags: ['-fplugin=./x.so']\n"),
        ]);
        let err = BuildSpec::load(d.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("`cflags[0]`: `-fplugin=./x.so` loads a plugin"),
            "{err}"
        );
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
