//! `ig-image init`: a new gadget directory from the templates in the repository's `templates/`
//! (C or Rust eBPF, tracer/snapshot/top, optionally a C or Rust WASM module).
//!
//! The templates are handlebars files embedded in the binary (`include_str!`), so an installed
//! `ig-image` needs no files beside it. A scaffold holds the program source, gadget.yaml,
//! build.yaml, README.md, artifacthub-pkg.yml and a CI workflow
//! (`.github/workflows/gadget.yml`) that builds, checks, signs and pushes with ig-image. A fresh
//! scaffold builds, passes the object and metadata checks, and loads, with no edits.
//!
//! The directory is created with `create_dir` (never over an existing path) and removed again
//! if writing a file fails. No network, no kernel.
//!
//! ```no_run
//! use ig_image_build::scaffold::{InitOptions, Kind, Lang, Wasm};
//! let made = ig_image_build::scaffold::init(&InitOptions {
//!     name: "trace_demo".into(),
//!     lang: Lang::C,
//!     wasm: Wasm::None,
//!     kind: Kind::Tracer,
//!     parent: ".".into(),
//!     image: None,
//!     description: None,
//!     install_from: None,
//! })?;
//! println!("{}", made.dir.display());
//! # Ok::<(), ig_image_build::scaffold::InitError>(())
//! ```

use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde_json::json;

/// The language of the eBPF program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// C, compiled with clang against the bundled SDK.
    C,
    /// Rust (aya-ebpf), compiled with rustc-web and bpf-linker.
    Rust,
}

/// The language of the optional WASM module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Wasm {
    /// No WASM module.
    None,
    /// C, compiled with clang for wasm32-wasi.
    C,
    /// Rust, compiled for wasm32-wasip1.
    Rust,
}

/// What the gadget does, which decides its data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A stream of events (`GADGET_TRACER`, a ring buffer): one event per exec.
    Tracer,
    /// A snapshot (`GADGET_ITER`, an `iter/task` program): the running processes. C only: Rust
    /// (aya-ebpf 0.2.1) has no iterator programs.
    Snapshot,
    /// Periodic rows from a hash map (`GADGET_MAPITER`): system calls per process.
    Top,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tracer => "tracer",
            Kind::Snapshot => "snapshot",
            Kind::Top => "top",
        }
    }
}

/// Options of `ig-image init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Gadget name: also the directory name and the data source name.
    pub name: String,
    /// eBPF language.
    pub lang: Lang,
    /// WASM module.
    pub wasm: Wasm,
    /// Kind of gadget.
    pub kind: Kind,
    /// The directory the new gadget directory is created in.
    pub parent: PathBuf,
    /// Image repository the gadget is published as (default `localhost:5000/gadgets/<name>`).
    pub image: Option<String>,
    /// One-line description (default: one for the kind).
    pub description: Option<String>,
    /// The git repository the CI workflow installs ig-image from (the default of its
    /// `IG_IMAGE_GIT` variable; without it the workflow stops and asks for the variable).
    pub install_from: Option<String>,
}

/// What `init` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scaffold {
    /// The new gadget directory.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

/// Why `init` did nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The name cannot be a gadget name.
    #[error("invalid gadget name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The directory (or a file of that name) already exists.
    #[error("`{dir}` already exists; not overwriting it")]
    Exists {
        /// The path.
        dir: PathBuf,
    },
    /// The image repository is not a valid reference.
    #[error("invalid `--image` `{image}`")]
    Image {
        /// What was given.
        image: String,
        /// Why.
        #[source]
        source: gadget_store::reference::ReferenceError,
    },
    /// This combination has no template (yet).
    #[error("{what}")]
    Unsupported {
        /// What is not supported, and why.
        what: String,
    },
    /// A template failed to render (a bug in the templates).
    #[error("template `{template}` failed to render: {reason}")]
    Render {
        /// The template.
        template: String,
        /// The renderer's message.
        reason: String,
    },
    /// A file or directory could not be created.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
}

/// The embedded templates: (name, text). Names are paths below `templates/` without `.hbs`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "c/tracer.bpf.c",
        include_str!("../../templates/c/tracer.bpf.c.hbs"),
    ),
    (
        "c/snapshot.bpf.c",
        include_str!("../../templates/c/snapshot.bpf.c.hbs"),
    ),
    (
        "c/top.bpf.c",
        include_str!("../../templates/c/top.bpf.c.hbs"),
    ),
    (
        "gadget.yaml",
        include_str!("../../templates/gadget.yaml.hbs"),
    ),
    ("build.yaml", include_str!("../../templates/build.yaml.hbs")),
    ("README.md", include_str!("../../templates/README.md.hbs")),
    (
        "artifacthub-pkg.yml",
        include_str!("../../templates/artifacthub-pkg.yml.hbs"),
    ),
    (
        "github-workflow.yml",
        include_str!("../../templates/github-workflow.yml.hbs"),
    ),
    (
        "rust/Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml.hbs"),
    ),
    (
        "rust/Cargo.lock",
        include_str!("../../templates/rust/Cargo.lock.hbs"),
    ),
    (
        "rust/tracer.rs",
        include_str!("../../templates/rust/tracer.rs.hbs"),
    ),
    (
        "rust/top.rs",
        include_str!("../../templates/rust/top.rs.hbs"),
    ),
    (
        "wasm/module.c",
        include_str!("../../templates/wasm/module.c.hbs"),
    ),
    (
        "wasm/Cargo.toml",
        include_str!("../../templates/wasm/Cargo.toml.hbs"),
    ),
    (
        "wasm/lib.rs",
        include_str!("../../templates/wasm/lib.rs.hbs"),
    ),
];

/// Files written as they are (no template syntax): the Rust gadget SDK, copied from this
/// repository's `gadget-sdk-rs/` so a Rust scaffold builds without ig-image's source tree.
const RAW_FILES: &[(&str, &str)] = &[
    (
        "rust/gadget-sdk.Cargo.toml",
        include_str!("../../templates/rust/gadget-sdk.Cargo.toml"),
    ),
    (
        "rust/gadget-sdk-macros.Cargo.toml",
        include_str!("../../templates/rust/gadget-sdk-macros.Cargo.toml"),
    ),
    (
        "gadget-sdk-rs/src/lib.rs",
        include_str!("../../gadget-sdk-rs/src/lib.rs"),
    ),
    (
        "gadget-sdk-rs/macros/src/lib.rs",
        include_str!("../../gadget-sdk-rs/macros/src/lib.rs"),
    ),
];

/// Longest accepted name (Artifact Hub and OCI path components are fine with it).
pub const MAX_NAME_LEN: usize = 64;

/// Checks a gadget name: `[a-z][a-z0-9]*` parts joined by single `_` or `-`, at most
/// [`MAX_NAME_LEN`] characters. Such a name is a valid OCI repository path component, a C
/// identifier once `-` becomes `_`, and an Artifact Hub name once `_` becomes `-`.
pub fn validate_name(name: &str) -> Result<(), InitError> {
    let bad = |reason: &str| InitError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad(&format!("it is longer than {MAX_NAME_LEN} characters")));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(bad("it must start with a lowercase letter"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(bad(&format!("`{c}` is not allowed")));
    }
    let bytes = name.as_bytes();
    if bytes
        .windows(2)
        .any(|w| matches!(w[0], b'_' | b'-') && matches!(w[1], b'_' | b'-'))
        || name.ends_with(['_', '-'])
    {
        return Err(bad(
            "`_` and `-` must sit between letters or digits, one at a time",
        ));
    }
    Ok(())
}

fn display_name(name: &str) -> String {
    let words: Vec<&str> = name.split(['_', '-']).collect();
    let mut out = words.join(" ");
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

fn default_description(kind: Kind) -> &'static str {
    match kind {
        Kind::Tracer => "Trace process executions",
        Kind::Snapshot => "Show the processes running right now",
        Kind::Top => "Show system calls per process, periodically",
    }
}

/// The files of a scaffold: (template or raw file, output path, raw).
fn plan(opts: &InitOptions) -> Result<Vec<(&'static str, &'static str, bool)>, InitError> {
    let mut files = match (opts.lang, opts.kind) {
        (Lang::C, Kind::Tracer) => vec![("c/tracer.bpf.c", "program.bpf.c", false)],
        (Lang::C, Kind::Snapshot) => vec![("c/snapshot.bpf.c", "program.bpf.c", false)],
        (Lang::C, Kind::Top) => vec![("c/top.bpf.c", "program.bpf.c", false)],
        (Lang::Rust, Kind::Snapshot) => {
            return Err(InitError::Unsupported {
                what: concat!(
                    "`--lang rust --kind snapshot`: aya-ebpf 0.2.1 (the newest that builds with ",
                    "Debian's rustc) has no iterator programs; use `--lang c` for a snapshot ",
                    "gadget, or `--kind tracer`/`top` in Rust"
                )
                .to_string(),
            });
        }
        (Lang::Rust, kind) => vec![
            ("rust/Cargo.toml", "Cargo.toml", false),
            ("rust/Cargo.lock", "Cargo.lock", false),
            (
                if kind == Kind::Top {
                    "rust/top.rs"
                } else {
                    "rust/tracer.rs"
                },
                "src/main.rs",
                false,
            ),
            ("rust/gadget-sdk.Cargo.toml", "gadget-sdk/Cargo.toml", true),
            ("gadget-sdk-rs/src/lib.rs", "gadget-sdk/src/lib.rs", true),
            (
                "rust/gadget-sdk-macros.Cargo.toml",
                "gadget-sdk/macros/Cargo.toml",
                true,
            ),
            (
                "gadget-sdk-rs/macros/src/lib.rs",
                "gadget-sdk/macros/src/lib.rs",
                true,
            ),
        ],
    };
    match opts.wasm {
        Wasm::None => {}
        Wasm::C => files.push(("wasm/module.c", "wasm/module.c", false)),
        Wasm::Rust => {
            files.push(("wasm/Cargo.toml", "wasm/Cargo.toml", false));
            files.push(("wasm/lib.rs", "wasm/src/lib.rs", false));
        }
    }
    files.extend([
        ("gadget.yaml", "gadget.yaml", false),
        ("build.yaml", "build.yaml", false),
        ("README.md", "README.md", false),
        ("artifacthub-pkg.yml", "artifacthub-pkg.yml", false),
        ("github-workflow.yml", ".github/workflows/gadget.yml", false),
    ]);
    Ok(files)
}

/// Renders every file of the scaffold without writing anything: (relative path, contents).
pub fn render(opts: &InitOptions) -> Result<Vec<(PathBuf, String)>, InitError> {
    validate_name(&opts.name)?;
    let files = plan(opts)?;
    let image = match &opts.image {
        Some(i) => i.trim_end_matches('/').to_string(),
        None => format!("localhost:5000/gadgets/{}", opts.name),
    };
    // The repository must make a valid reference once a tag is added.
    gadget_store::reference::Reference::parse(&format!("{image}:v0.1.0")).map_err(|source| {
        InitError::Image {
            image: image.clone(),
            source,
        }
    })?;
    let registry = gadget_store::reference::Reference::parse(&format!("{image}:v0.1.0"))
        .map(|r| r.registry().to_string())
        .unwrap_or_default();
    // A registry on this machine is reached over plain HTTP: the README's push says so.
    let host = registry
        .rsplit_once(':')
        .map_or(registry.as_str(), |(h, _)| h);
    let insecure_registry =
        matches!(host, "localhost" | "127.0.0.1" | "[::1]").then(|| registry.clone());
    if let Some(source) = &opts.install_from {
        if source.trim().is_empty()
            || source.starts_with('-')
            || source
                .chars()
                .any(|c| c.is_whitespace() || c == '\'' || c == '"')
        {
            return Err(InitError::Unsupported {
                what: format!(
                    "--install-from `{source}`: expected a git URL (no spaces or quotes)"
                ),
            });
        }
    }
    let created_at =
        crate::image::assemble::created_timestamp().map_err(|e| InitError::Unsupported {
            what: e.to_string(),
        })?;
    let ident = opts.name.replace('-', "_");
    let description = opts
        .description
        .clone()
        .unwrap_or_else(|| default_description(opts.kind).to_string());
    let data = json!({
        "name": opts.name,
        "ident": ident,
        "ah_name": opts.name.replace('_', "-"),
        "display_name": display_name(&opts.name),
        "description": yaml_plain_or_quoted(&description),
        "kind": opts.kind.name(),
        "lang": match opts.lang { Lang::C => "c", Lang::Rust => "rust" },
        "lang_c": opts.lang == Lang::C,
        "rust": opts.lang == Lang::Rust,
        "wasm": match opts.wasm { Wasm::None => None, Wasm::C => Some("c"), Wasm::Rust => Some("rust") },
        "tracer": opts.kind == Kind::Tracer,
        "snapshot": opts.kind == Kind::Snapshot,
        "top": opts.kind == Kind::Top,
        "c_tracer": opts.lang == Lang::C && opts.kind == Kind::Tracer,
        "c_snapshot": opts.lang == Lang::C && opts.kind == Kind::Snapshot,
        "c_top": opts.lang == Lang::C && opts.kind == Kind::Top,
        "rust_tracer": opts.lang == Lang::Rust && opts.kind == Kind::Tracer,
        "rust_top": opts.lang == Lang::Rust && opts.kind == Kind::Top,
        "ebpf_source": match opts.lang { Lang::C => "program.bpf.c", Lang::Rust => "Cargo.toml" },
        "program_file": match opts.lang { Lang::C => "program.bpf.c", Lang::Rust => "src/main.rs" },
        "wasm_source": match opts.wasm { Wasm::None => None, Wasm::C => Some("wasm/module.c"), Wasm::Rust => Some("wasm/Cargo.toml") },
        "wasm_c": opts.wasm == Wasm::C,
        "wasm_rust": opts.wasm == Wasm::Rust,
        "wasm_file": match opts.wasm { Wasm::None => None, Wasm::C => Some("wasm/module.c"), Wasm::Rust => Some("wasm/src/lib.rs") },
        "image": image,
        "created_at": created_at,
        "license": "GPL-2.0 OR Apache-2.0",
        "install_from": opts.install_from.clone().unwrap_or_default(),
        "registry": registry,
        "insecure_registry": insecure_registry,
    });
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    let mut out = Vec::new();
    for (template, path, raw) in files {
        let table = if raw { RAW_FILES } else { TEMPLATES };
        let text = table
            .iter()
            .find(|(n, _)| *n == template)
            .map(|(_, t)| *t)
            .ok_or_else(|| InitError::Unsupported {
                what: format!("no template `{template}` in this ig-image"),
            })?;
        if raw {
            out.push((PathBuf::from(path), text.to_string()));
            continue;
        }
        let rendered = hb
            .render_template(text, &data)
            .map_err(|e| InitError::Render {
                template: template.to_string(),
                reason: e.to_string(),
            })?;
        out.push((PathBuf::from(path), rendered));
    }
    Ok(out)
}

/// A YAML scalar for a free-text value: as is when plain YAML reads it back unchanged, else
/// double-quoted with JSON escapes (a subset of YAML's).
fn yaml_plain_or_quoted(s: &str) -> String {
    let plain_ok = !s.is_empty()
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`~ ".contains(c))
        && !s.ends_with(' ')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains('\n')
        // YAML 1.1 readers (Go's yaml.v2) take these as booleans or null.
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
        )
        && yaml_rust2::YamlLoader::load_from_str(s)
            .ok()
            .and_then(|d| d.into_iter().next())
            .is_some_and(|y| y.as_str() == Some(s));
    if plain_ok {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

/// Creates `<parent>/<name>` with every file of the scaffold. Refuses an existing path.
pub fn init(opts: &InitOptions) -> Result<Scaffold, InitError> {
    let files = render(opts)?;
    let dir = opts.parent.join(&opts.name);
    if dir.symlink_metadata().is_ok() {
        return Err(InitError::Exists { dir });
    }
    std::fs::create_dir_all(&opts.parent).map_err(|source| {
        InitError::Io(crate::file_error::FileError {
            action: "create",
            path: opts.parent.clone(),
            source,
        })
    })?;
    std::fs::create_dir(&dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            InitError::Exists { dir: dir.clone() }
        } else {
            InitError::Io(crate::file_error::FileError {
                action: "create",
                path: dir.clone(),
                source,
            })
        }
    })?;
    match write_files(&dir, &files) {
        Ok(()) => Ok(Scaffold {
            dir,
            files: files.into_iter().map(|(p, _)| p).collect(),
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

fn write_files(dir: &Path, files: &[(PathBuf, String)]) -> Result<(), InitError> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| {
                InitError::Io(crate::file_error::FileError {
                    action: "create",
                    path: parent.to_path_buf(),
                    source,
                })
            })?;
        }
        std::fs::write(&path, text).map_err(|source| {
            InitError::Io(crate::file_error::FileError {
                action: "write",
                path: path.clone(),
                source,
            })
        })?;
    }
    Ok(())
}

impl gadget_store::hint::Hint for InitError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            InitError::InvalidName { .. } => "use lowercase letters, digits, and single `_` or `-` between them, such as `trace_open`".to_string(),
            InitError::Exists { .. } => "pick another name, or `--dir` to create it elsewhere".to_string(),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(name: &str, kind: Kind) -> InitOptions {
        InitOptions {
            name: name.to_string(),
            lang: Lang::C,
            wasm: Wasm::None,
            kind,
            parent: PathBuf::from("."),
            image: None,
            description: None,
            install_from: None,
        }
    }

    #[test]
    fn names() {
        for good in ["trace_open", "a", "top-file2", "x1_y2-z3"] {
            validate_name(good).unwrap();
        }
        for bad in [
            "", "Trace", "1abc", "a__b", "a_-b", "a_", "a.b", "a b", "-a", "é",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn every_combination_renders_valid_yaml_and_no_leftover_braces() {
        let mut combos = Vec::new();
        for lang in [Lang::C, Lang::Rust] {
            for wasm in [Wasm::None, Wasm::C, Wasm::Rust] {
                for kind in [Kind::Tracer, Kind::Snapshot, Kind::Top] {
                    combos.push((lang, wasm, kind));
                }
            }
        }
        for (lang, wasm, kind) in combos {
            let mut o = opts("my-gadget", kind);
            o.lang = lang;
            o.wasm = wasm;
            if lang == Lang::Rust && kind == Kind::Snapshot {
                assert!(matches!(render(&o), Err(InitError::Unsupported { .. })));
                continue;
            }
            let files = render(&o).unwrap();
            for (path, text) in &files {
                let p = path.to_string_lossy();
                if p.ends_with(".yaml") || p.ends_with(".yml") {
                    let docs = yaml_rust2::YamlLoader::load_from_str(text)
                        .unwrap_or_else(|e| panic!("{p}: {e}\n{text}"));
                    assert_eq!(docs.len(), 1, "{p}");
                }
                if p.ends_with(".bpf.c") {
                    assert!(text.contains("GADGET_"), "{p}");
                }
                if p.ends_with(".c") || p == "src/main.rs" || p.starts_with("wasm/") {
                    assert!(!text.contains("{{"), "{p}");
                    assert!(text.contains("my_gadget"), "{p}");
                }
            }
            let workflow = &files
                .iter()
                .find(|(p, _)| p.ends_with("gadget.yml"))
                .unwrap()
                .1;
            assert!(
                workflow.contains("${{ secrets.COSIGN_PASSWORD }}"),
                "{workflow}"
            );
            let ah = &files
                .iter()
                .find(|(p, _)| p.ends_with("artifacthub-pkg.yml"))
                .unwrap()
                .1;
            assert!(ah.contains("name: my-gadget"), "{ah}");
        }
    }

    #[test]
    fn descriptions_are_quoted_when_needed() {
        assert_eq!(yaml_plain_or_quoted("Trace things"), "Trace things");
        assert_eq!(yaml_plain_or_quoted("a: b"), "\"a: b\"");
        assert_eq!(yaml_plain_or_quoted("yes"), "\"yes\"");
        assert_eq!(yaml_plain_or_quoted("123"), "\"123\"");
    }

    #[test]
    fn refuses_existing_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("taken")).unwrap();
        let mut o = opts("taken", Kind::Tracer);
        o.parent = d.path().to_path_buf();
        assert!(matches!(init(&o), Err(InitError::Exists { .. })));
        o.name = "fresh".into();
        let made = init(&o).unwrap();
        assert!(made.dir.join(".github/workflows/gadget.yml").is_file());
        assert!(matches!(init(&o), Err(InitError::Exists { .. })));
    }
}
