//! Artifact Hub package files (`artifacthub-pkg.yml`): generate them from gadget.yaml and the
//! image in the store, and check that they are valid and in sync.
//!
//! Which fields ig-image owns (refreshed by [`generate`], compared by [`check`]):
//!
//! | field | from |
//! |---|---|
//! | `name` | gadget.yaml `name`, with `_` as `-` (Artifact Hub allows letters, digits, dashes) |
//! | `description` | gadget.yaml `description` |
//! | `homeURL` | gadget.yaml `homepageURL`, when set |
//! | `links` | `Documentation` and `Source` entries from `documentationURL` and `sourceURL`, when set; other links are kept |
//! | `version` | the image tag without a leading `v` (SemVer 2) |
//! | `createdAt` | the image's `org.opencontainers.image.created` |
//! | `digest` | the image index digest |
//! | `containersImages` | the `gadget` entry: image reference and its real platforms; other entries are kept |
//! | `install` | a `sudo ig run <image>` snippet |
//!
//! `displayName` is filled from the name only when absent. Every other key (license, category,
//! keywords, maintainers, changes, ...) belongs to the author and is kept as written, in the
//! author's order (yaml-rust2 mappings keep insertion order). Comments do not survive a rewrite.
//!
//! Without an image, only the gadget.yaml fields are generated or compared. Validity follows
//! `signing-and-publishing.md` §2. The repository metadata artifact (`artifacthub.io` tag) is
//! described by [`REPO_METADATA_CONFIG`] and [`REPO_METADATA_LAYER`].
//!
//! Pure apart from reading the store and the files it is given; no network.

use std::path::{Path, PathBuf};

use gadget_facts::media_types as mt;
use gadget_object::yaml;
use gadget_store::reference::Reference;
use gadget_store::{Digest, Store};
use serde::Serialize;
use serde_json::Value;
use yaml_rust2::Yaml;
use yaml_rust2::yaml::Hash;

/// The package file's name in a gadget directory.
pub const PKG_FILE: &str = "artifacthub-pkg.yml";
/// Config media type of the repository metadata artifact.
pub const REPO_METADATA_CONFIG: &str = "application/vnd.cncf.artifacthub.config.v1+yaml";
/// Layer media type of the repository metadata artifact.
pub const REPO_METADATA_LAYER: &str =
    "application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml";
/// The tag Artifact Hub reads repository metadata from.
pub const REPO_METADATA_TAG: &str = "artifacthub.io";

/// Artifact Hub's categories.
pub const CATEGORIES: [&str; 8] = [
    "ai-machine-learning",
    "database",
    "integration-delivery",
    "monitoring-logging",
    "networking",
    "security",
    "storage",
    "streaming-messaging",
];

/// Kinds of `changes` entries.
pub const CHANGE_KINDS: [&str; 6] = [
    "added",
    "changed",
    "deprecated",
    "removed",
    "fixed",
    "security",
];

/// Keys Artifact Hub knows in a package file.
const KNOWN_KEYS: [&str; 22] = [
    "version",
    "name",
    "displayName",
    "createdAt",
    "description",
    "category",
    "digest",
    "license",
    "homeURL",
    "logoURL",
    "logoPath",
    "keywords",
    "links",
    "readme",
    "install",
    "changes",
    "maintainers",
    "provider",
    "prerelease",
    "deprecated",
    "annotations",
    "containersImages",
];

/// Why a package file could not be generated or checked.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactHubError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
    /// gadget.yaml could not be read.
    #[error(transparent)]
    Metadata(#[from] crate::metadata::MetadataError),
    /// The file is not YAML, not a mapping, or breaks a limit of the hardened loader.
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    /// The image reference is invalid.
    #[error("invalid image reference `{image}`")]
    Reference {
        /// What was given.
        image: String,
        /// Why.
        #[source]
        source: gadget_store::reference::ReferenceError,
    },
    /// The image is not in the store, or its documents are unreadable.
    #[error("cannot read the image `{image}` from the store")]
    Store {
        /// The image.
        image: String,
        /// Why.
        #[source]
        source: gadget_store::StoreError,
    },
    /// The image's documents are not what a gadget image holds.
    #[error("`{image}`: {reason}")]
    Image {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// No SemVer version can be taken from the image tag.
    #[error("`{image}`: the tag `{tag}` is not a SemVer 2 version (such as v1.2.3 or 1.2.3)")]
    NotSemver {
        /// The image.
        image: String,
        /// The tag.
        tag: String,
    },
    /// There is no image and no existing file to take the version from.
    #[error(
        "`{path}` does not exist and no image was given: the version and creation date come from the image"
    )]
    NeedImage {
        /// The package file.
        path: PathBuf,
    },
    /// The result could not be written as YAML.
    #[error("cannot write YAML: {reason}")]
    Emit {
        /// The emitter's message.
        reason: String,
    },
}

/// What kind of problem [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    /// The field disagrees with gadget.yaml or the image.
    Stale,
    /// The file breaks Artifact Hub's rules.
    Invalid,
    /// Allowed, but probably a mistake (unknown key).
    Warning,
}

/// One finding of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stale, invalid or a warning.
    pub kind: ProblemKind,
    /// The field (`containersImages[0].platforms`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ProblemKind::Stale => "stale",
            ProblemKind::Invalid => "invalid",
            ProblemKind::Warning => "warning",
        };
        write!(f, "{kind}: `{}`: {}", self.field, self.message)
    }
}

/// Facts about an image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageFacts {
    /// Full normalized reference.
    pub reference: String,
    /// The tag.
    pub tag: String,
    /// Index digest.
    pub digest: String,
    /// `org.opencontainers.image.created` (empty when absent).
    pub created: String,
    /// `os/architecture[/variant]` of every manifest, in index order.
    pub platforms: Vec<String>,
}

/// Reads what the package file needs from an image in the store.
pub fn image_facts(store: &Store, image: &str) -> Result<ImageFacts, ArtifactHubError> {
    let reference = Reference::parse(image).map_err(|source| ArtifactHubError::Reference {
        image: image.to_string(),
        source,
    })?;
    let store_err = |source| ArtifactHubError::Store {
        image: image.to_string(),
        source,
    };
    let desc = store.resolve(&reference).map_err(store_err)?;
    let bad = |reason: String| ArtifactHubError::Image {
        image: image.to_string(),
        reason,
    };
    let digest = Digest::parse(desc.digest().as_ref()).map_err(|e| bad(e.to_string()))?;
    let index: Value = store.read_json(&digest).map_err(store_err)?;
    if desc.media_type().to_string() != mt::INDEX {
        return Err(bad(format!(
            "is a `{}`, not an image index",
            desc.media_type()
        )));
    }
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the index has no `manifests`".to_string()))?;
    let mut platforms = Vec::new();
    for m in manifests {
        let p = m.get("platform");
        let os = p.and_then(|p| p.get("os")).and_then(Value::as_str);
        let arch = p
            .and_then(|p| p.get("architecture"))
            .and_then(Value::as_str);
        let (Some(os), Some(arch)) = (os, arch) else {
            continue;
        };
        let mut s = format!("{os}/{arch}");
        if let Some(v) = p.and_then(|p| p.get("variant")).and_then(Value::as_str) {
            s.push('/');
            s.push_str(v);
        }
        platforms.push(s);
    }
    if platforms.is_empty() {
        return Err(bad("no manifest of the index names a platform".to_string()));
    }
    let created = index
        .pointer(&format!("/annotations/{}", mt::CREATED.replace('/', "~1")))
        .and_then(Value::as_str)
        .or_else(|| {
            manifests.first().and_then(|m| {
                m.get("annotations")
                    .and_then(|a| a.get(mt::CREATED))
                    .and_then(Value::as_str)
            })
        })
        .unwrap_or("")
        .to_string();
    Ok(ImageFacts {
        reference: reference.full(),
        tag: reference.tag().unwrap_or("").to_string(),
        digest: desc.digest().to_string(),
        created,
        platforms,
    })
}

/// Options of [`generate`] and [`check`].
#[derive(Debug, Clone, Default)]
pub struct PkgOptions {
    /// The gadget directory (holds gadget.yaml and artifacthub-pkg.yml).
    pub dir: PathBuf,
    /// The image's facts, when an image is given.
    pub image: Option<ImageFacts>,
    /// Version to use instead of the one from the tag.
    pub version: Option<String>,
}

/// The version a tag gives: without a leading `v`, and SemVer 2.
pub fn version_from_tag(image: &str, tag: &str) -> Result<String, ArtifactHubError> {
    let v = tag.strip_prefix('v').unwrap_or(tag);
    if is_semver(v) {
        Ok(v.to_string())
    } else {
        Err(ArtifactHubError::NotSemver {
            image: image.to_string(),
            tag: tag.to_string(),
        })
    }
}

fn s(text: &str) -> Yaml {
    Yaml::String(text.to_string())
}

fn get<'a>(h: &'a Hash, key: &str) -> Option<&'a Yaml> {
    h.get(&s(key))
}

fn str_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(v) | Yaml::Real(v) => Some(v.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn set(h: &mut Hash, key: &str, value: Yaml) {
    // Replacing the value of an existing key keeps its position (linked hash map).
    if let Some(slot) = h.get_mut(&s(key)) {
        *slot = value;
    } else {
        h.insert(s(key), value);
    }
}

/// The derived values: (field, value). `None` values remove nothing; they are just not derived.
fn derived(
    info: &crate::metadata::GadgetInfo,
    dir: &Path,
    opts: &PkgOptions,
) -> Result<Vec<(&'static str, Yaml)>, ArtifactHubError> {
    let mut out = Vec::new();
    let name = if info.name.trim().is_empty() {
        dir.canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default()
    } else {
        info.name.trim().to_string()
    };
    out.push(("name", s(&ah_name(&name))));
    out.push(("description", s(info.description.trim())));
    if !info.homepage_url.trim().is_empty() {
        out.push(("homeURL", s(info.homepage_url.trim())));
    }
    if let Some(img) = &opts.image {
        let version = match &opts.version {
            Some(v) => v.clone(),
            None => version_from_tag(&img.reference, &img.tag)?,
        };
        out.push(("version", s(&version)));
        if !img.created.is_empty() {
            out.push(("createdAt", s(&img.created)));
        }
        out.push(("digest", s(&img.digest)));
        out.push((
            "install",
            s(&format!(
                "# Run\n```bash\nsudo ig run {}\n```\n",
                img.reference
            )),
        ));
    } else if let Some(v) = &opts.version {
        out.push(("version", s(v)));
    }
    Ok(out)
}

/// Artifact Hub name from a gadget name: `_` and other disallowed characters as `-`.
pub fn ah_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn display_name(name: &str) -> String {
    let mut out = name.replace(['_', '-'], " ");
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

/// The links ig-image derives: (name, url).
fn derived_links(info: &crate::metadata::GadgetInfo) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !info.documentation_url.trim().is_empty() {
        out.push(("Documentation", info.documentation_url.trim().to_string()));
    }
    if !info.source_url.trim().is_empty() {
        out.push(("Source", info.source_url.trim().to_string()));
    }
    out
}

fn link(name: &str, url: &str) -> Yaml {
    let mut h = Hash::new();
    h.insert(s("name"), s(name));
    h.insert(s("url"), s(url));
    Yaml::Hash(h)
}

fn gadget_entry(img: &ImageFacts) -> Yaml {
    let mut h = Hash::new();
    h.insert(s("name"), s("gadget"));
    h.insert(s("image"), s(&img.reference));
    h.insert(
        s("platforms"),
        Yaml::Array(img.platforms.iter().map(|p| s(p)).collect()),
    );
    Yaml::Hash(h)
}

fn read_gadget_info(dir: &Path) -> Result<crate::metadata::GadgetInfo, ArtifactHubError> {
    let path = dir.join("gadget.yaml");
    let text = std::fs::read_to_string(&path).map_err(|source| {
        ArtifactHubError::Io(crate::file_error::FileError {
            action: "read",
            path: path.clone(),
            source,
        })
    })?;
    Ok(crate::metadata::descriptive(&text, &path)?)
}

fn read_pkg(path: &Path) -> Result<Option<Hash>, ArtifactHubError> {
    let bytes = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ArtifactHubError::Io(crate::file_error::FileError {
                action: "read",
                path: path.to_path_buf(),
                source,
            }));
        }
    };
    Ok(Some(load_yaml_mapping(&bytes, path)?))
}

/// The hardened loader (size, depth, node and alias limits) for the Artifact Hub files.
fn load_yaml_mapping(bytes: &[u8], path: &Path) -> Result<Hash, ArtifactHubError> {
    Ok(yaml::load_mapping(
        bytes,
        &yaml::file_origin(path),
        &yaml::YamlLimits::DEFAULT,
    )?)
}

/// The refreshed document: `existing` (or a new one) with every derived field set.
fn refresh(
    existing: Option<Hash>,
    info: &crate::metadata::GadgetInfo,
    opts: &PkgOptions,
    path: &Path,
) -> Result<Hash, ArtifactHubError> {
    let fresh = existing.is_none();
    if fresh && opts.image.is_none() {
        return Err(ArtifactHubError::NeedImage {
            path: path.to_path_buf(),
        });
    }
    let mut doc = existing.unwrap_or_default();
    let values = derived(info, &opts.dir, opts)?;
    if fresh {
        // A new file gets Artifact Hub's usual order.
        for key in ["version", "name", "displayName", "createdAt", "description"] {
            if key == "displayName" {
                continue;
            }
            if let Some((_, v)) = values.iter().find(|(k, _)| *k == key) {
                doc.insert(s(key), v.clone());
            }
        }
    }
    for (k, v) in &values {
        set(&mut doc, k, v.clone());
    }
    if get(&doc, "displayName").is_none() {
        let name = values
            .iter()
            .find(|(k, _)| *k == "name")
            .and_then(|(_, v)| str_of(v))
            .unwrap_or_default();
        let mut reordered = Hash::new();
        for (k, v) in doc {
            let after_name = k == s("name");
            reordered.insert(k, v);
            if after_name {
                reordered.insert(s("displayName"), s(&display_name(&name)));
            }
        }
        doc = reordered;
        if get(&doc, "displayName").is_none() {
            doc.insert(s("displayName"), s(&display_name(&name)));
        }
    }
    // links: refresh ours by name, keep the author's.
    let ours = derived_links(info);
    if !ours.is_empty() || get(&doc, "links").is_some() {
        let mut links: Vec<Yaml> = match get(&doc, "links") {
            Some(Yaml::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        for (name, url) in &ours {
            let pos = links.iter().position(|l| match l {
                Yaml::Hash(h) => get(h, "name").and_then(str_of).as_deref() == Some(*name),
                _ => false,
            });
            match pos {
                Some(i) => links[i] = link(name, url),
                None => links.push(link(name, url)),
            }
        }
        set(&mut doc, "links", Yaml::Array(links));
    }
    // containersImages: the `gadget` entry is ours, others are kept.
    if let Some(img) = &opts.image {
        let mut images: Vec<Yaml> = match get(&doc, "containersImages") {
            Some(Yaml::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let pos = images.iter().position(is_gadget_entry);
        match pos {
            Some(i) => images[i] = gadget_entry(img),
            None => images.insert(0, gadget_entry(img)),
        }
        set(&mut doc, "containersImages", Yaml::Array(images));
    }
    Ok(doc)
}

fn is_gadget_entry(y: &Yaml) -> bool {
    match y {
        Yaml::Hash(h) => get(h, "name").and_then(str_of).as_deref() == Some("gadget"),
        _ => false,
    }
}

/// Writes the document: no `---`, literal blocks for multi-line strings, a final newline.
pub fn emit(doc: &Hash) -> Result<String, ArtifactHubError> {
    crate::metadata::emit_yaml(&Yaml::Hash(doc.clone())).map_err(|e| ArtifactHubError::Emit {
        reason: e.to_string(),
    })
}

/// What [`generate`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// The package file.
    pub path: PathBuf,
    /// Whether the file was written (content changed and the result is valid).
    pub changed: bool,
    /// Problems of the result (invalid fields the author must fix, unknown keys).
    pub problems: Vec<Problem>,
}

/// Writes or refreshes `<dir>/artifacthub-pkg.yml`. Unchanged content is not rewritten, and an
/// invalid result is not written at all (the problems say why).
pub fn generate(opts: &PkgOptions) -> Result<Generated, ArtifactHubError> {
    let path = opts.dir.join(PKG_FILE);
    let info = read_gadget_info(&opts.dir)?;
    let existing = read_pkg(&path)?;
    let before = existing.clone();
    let doc = refresh(existing, &info, opts, &path)?;
    let problems = validate(&doc);
    // An invalid result is reported, never written: the file stays as it was.
    let invalid = problems.iter().any(|p| p.kind == ProblemKind::Invalid);
    let changed = before.as_ref() != Some(&doc) && !invalid;
    if changed {
        let text = emit(&doc)?;
        crate::cache::write_atomic(&path, text.as_bytes()).map_err(|source| {
            ArtifactHubError::Io(crate::file_error::FileError {
                action: "write",
                path: path.clone(),
                source,
            })
        })?;
    }
    Ok(Generated {
        path,
        changed,
        problems,
    })
}

/// Checks `<dir>/artifacthub-pkg.yml`: valid against Artifact Hub's rules, and every derived
/// field equal to what [`generate`] would write (the image fields only when an image is given).
pub fn check(opts: &PkgOptions) -> Result<Vec<Problem>, ArtifactHubError> {
    let path = opts.dir.join(PKG_FILE);
    let info = read_gadget_info(&opts.dir)?;
    let Some(existing) = read_pkg(&path)? else {
        return Ok(vec![Problem {
            kind: ProblemKind::Invalid,
            field: PKG_FILE.to_string(),
            message: format!(
                "`{}` does not exist (create it with `ig-image artifacthub generate`)",
                path.display()
            ),
        }]);
    };
    let mut problems = validate(&existing);
    let want = refresh(Some(existing.clone()), &info, opts, &path)?;
    for (k, v) in &want {
        let key = str_of(k).unwrap_or_default();
        let have = existing.get(k);
        if have == Some(v) {
            continue;
        }
        if key == "displayName" {
            continue; // only filled when absent; a missing one is reported by validate
        }
        problems.push(Problem {
            kind: ProblemKind::Stale,
            field: key.clone(),
            message: format!(
                "is {}, {} gives {} (run `ig-image artifacthub generate`)",
                have.map_or_else(|| "absent".to_string(), short),
                source_of(&key),
                short(v)
            ),
        });
    }
    Ok(problems)
}

fn source_of(key: &str) -> &'static str {
    match key {
        "name" | "description" | "homeURL" | "links" => "gadget.yaml",
        _ => "the image",
    }
}

/// A one-line rendering of a YAML value for messages.
fn short(y: &Yaml) -> String {
    let json = crate::inspect::yaml_to_json(y);
    let text = match json {
        Value::String(s) => format!("`{}`", s.replace('\n', "\\n")),
        other => format!("`{other}`"),
    };
    if text.chars().count() > 160 {
        format!("{}...`", text.chars().take(156).collect::<String>())
    } else {
        text
    }
}

fn problem(kind: ProblemKind, field: &str, message: impl Into<String>) -> Problem {
    Problem {
        kind,
        field: field.to_string(),
        message: message.into(),
    }
}

/// Checks a package document against Artifact Hub's rules (`signing-and-publishing.md` §2).
pub fn validate(doc: &Hash) -> Vec<Problem> {
    use ProblemKind::{Invalid, Warning};
    let mut out = Vec::new();
    validate_strings(doc, &mut out);
    for key in ["prerelease", "deprecated"] {
        match get(doc, key) {
            None | Some(Yaml::Boolean(_)) => {}
            Some(_) => out.push(problem(Invalid, key, "must be true or false")),
        }
    }
    match get(doc, "keywords") {
        None => {}
        Some(Yaml::Array(a)) if a.iter().all(|k| matches!(k, Yaml::String(_))) => {}
        Some(_) => out.push(problem(Invalid, "keywords", "must be a list of strings")),
    }
    validate_list_of_maps(doc, "links", &["name", "url"], &mut out);
    validate_list_of_maps(doc, "maintainers", &["name", "email"], &mut out);
    if let Some(Yaml::Array(links)) = get(doc, "links") {
        for (i, l) in links.iter().enumerate() {
            if let Some(url) = l["url"].as_str() {
                if !is_url(url) {
                    out.push(problem(
                        Invalid,
                        &format!("links[{i}].url"),
                        format!("`{url}` is not an http(s) URL"),
                    ));
                }
            }
        }
    }
    match get(doc, "provider") {
        None => {}
        Some(Yaml::Hash(h)) if get(h, "name").is_some_and(|n| n.as_str().is_some()) => {}
        Some(_) => out.push(problem(
            Invalid,
            "provider",
            "must be a mapping with `name`",
        )),
    }
    validate_annotations(doc, &mut out);
    validate_changes(doc, &mut out);
    validate_images(doc, &mut out);
    for k in doc.keys() {
        let key = str_of(k).unwrap_or_default();
        if !KNOWN_KEYS.contains(&key.as_str()) {
            out.push(problem(
                Warning,
                &key,
                "is not a key Artifact Hub knows; it is ignored",
            ));
        }
    }
    out
}

/// A string field's value (numbers are taken as strings); a problem when it is required and
/// missing or empty, or is not a string.
fn string_field(doc: &Hash, out: &mut Vec<Problem>, key: &str, required: bool) -> Option<String> {
    use ProblemKind::Invalid;
    match get(doc, key) {
        None | Some(Yaml::Null) => {
            if required {
                out.push(problem(Invalid, key, "is required"));
            }
            None
        }
        Some(Yaml::String(v)) if v.trim().is_empty() && required => {
            out.push(problem(Invalid, key, "is empty"));
            None
        }
        Some(v @ (Yaml::String(_) | Yaml::Integer(_) | Yaml::Real(_))) => str_of(v),
        Some(_) => {
            out.push(problem(Invalid, key, "must be a string"));
            None
        }
    }
}

/// The string fields: present where required, and `version`, `name`, `createdAt`, `category`
/// and the URLs in their forms.
fn validate_strings(doc: &Hash, out: &mut Vec<Problem>) {
    use ProblemKind::Invalid;
    if let Some(v) = string_field(doc, out, "version", true) {
        if !is_semver(&v) {
            out.push(problem(
                Invalid,
                "version",
                format!("`{v}` is not SemVer 2 (MAJOR.MINOR.PATCH[-pre][+build])"),
            ));
        }
    }
    if let Some(v) = string_field(doc, out, "name", true) {
        if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            out.push(problem(
                Invalid,
                "name",
                format!("`{v}`: only letters, digits and dashes are allowed"),
            ));
        }
    }
    string_field(doc, out, "displayName", true);
    if let Some(v) = string_field(doc, out, "createdAt", true) {
        if !is_rfc3339(&v) {
            out.push(problem(
                Invalid,
                "createdAt",
                format!("`{v}` is not an RFC 3339 date-time (2024-01-02T15:04:05Z)"),
            ));
        }
    }
    string_field(doc, out, "description", true);
    if let Some(v) = string_field(doc, out, "category", false) {
        if !CATEGORIES.contains(&v.as_str()) {
            out.push(problem(
                Invalid,
                "category",
                format!("`{v}` is not one of {}", CATEGORIES.join(", ")),
            ));
        }
    }
    for key in ["digest", "license", "readme", "install", "logoPath"] {
        string_field(doc, out, key, false);
    }
    for key in ["homeURL", "logoURL"] {
        if let Some(v) = string_field(doc, out, key, false) {
            if !is_url(&v) {
                out.push(problem(
                    Invalid,
                    key,
                    format!("`{v}` is not an http(s) URL"),
                ));
            }
        }
    }
}

/// `annotations`: a mapping of strings.
fn validate_annotations(doc: &Hash, out: &mut Vec<Problem>) {
    use ProblemKind::Invalid;
    match get(doc, "annotations") {
        None => {}
        Some(Yaml::Hash(h)) => {
            for (k, v) in h {
                if str_of(v).is_none() {
                    out.push(problem(
                        Invalid,
                        &format!("annotations.{}", str_of(k).unwrap_or_default()),
                        "must be a string",
                    ));
                }
            }
        }
        Some(_) => out.push(problem(Invalid, "annotations", "must be a mapping")),
    }
}

/// `changes`: a list of strings or of mappings with a known `kind` and a `description`.
fn validate_changes(doc: &Hash, out: &mut Vec<Problem>) {
    use ProblemKind::Invalid;
    match get(doc, "changes") {
        None => {}
        Some(Yaml::Array(changes)) => {
            for (i, c) in changes.iter().enumerate() {
                match c {
                    Yaml::String(_) => {}
                    Yaml::Hash(h) => {
                        let kind = get(h, "kind").and_then(Yaml::as_str);
                        if !kind.is_some_and(|k| CHANGE_KINDS.contains(&k)) {
                            out.push(problem(
                                Invalid,
                                &format!("changes[{i}].kind"),
                                format!("must be one of {}", CHANGE_KINDS.join(", ")),
                            ));
                        }
                        if get(h, "description").and_then(Yaml::as_str).is_none() {
                            out.push(problem(
                                Invalid,
                                &format!("changes[{i}].description"),
                                "is required",
                            ));
                        }
                    }
                    _ => out.push(problem(
                        Invalid,
                        &format!("changes[{i}]"),
                        "must be a string or a mapping with `kind` and `description`",
                    )),
                }
            }
        }
        Some(_) => out.push(problem(Invalid, "changes", "must be a list")),
    }
}

fn validate_list_of_maps(doc: &Hash, key: &str, fields: &[&str], out: &mut Vec<Problem>) {
    match get(doc, key) {
        None => {}
        Some(Yaml::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Yaml::Hash(h) = item else {
                    out.push(problem(
                        ProblemKind::Invalid,
                        &format!("{key}[{i}]"),
                        format!("must be a mapping with {}", fields.join(", ")),
                    ));
                    continue;
                };
                for f in fields {
                    if get(h, f).and_then(Yaml::as_str).is_none_or(str::is_empty) {
                        out.push(problem(
                            ProblemKind::Invalid,
                            &format!("{key}[{i}].{f}"),
                            "is required",
                        ));
                    }
                }
            }
        }
        Some(_) => out.push(problem(ProblemKind::Invalid, key, "must be a list")),
    }
}

fn validate_images(doc: &Hash, out: &mut Vec<Problem>) {
    let field = "containersImages";
    let Some(Yaml::Array(images)) = get(doc, field) else {
        out.push(problem(
            ProblemKind::Invalid,
            field,
            if get(doc, field).is_none() {
                "is required for gadgets: it must list the `gadget` image"
            } else {
                "must be a list"
            },
        ));
        return;
    };
    for (i, img) in images.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Yaml::Hash(h) = img else {
            out.push(problem(ProblemKind::Invalid, &at, "must be a mapping"));
            continue;
        };
        match get(h, "image").and_then(Yaml::as_str) {
            Some(r) => {
                if let Err(e) = Reference::parse(r) {
                    out.push(problem(
                        ProblemKind::Invalid,
                        &format!("{at}.image"),
                        format!("`{r}` is not an image reference: {e}"),
                    ));
                }
            }
            None => out.push(problem(
                ProblemKind::Invalid,
                &format!("{at}.image"),
                "is required",
            )),
        }
        match get(h, "platforms") {
            None => {}
            Some(Yaml::Array(p))
                if p.iter().all(|x| {
                    x.as_str()
                        .is_some_and(|s| s.split('/').count() >= 2 && !s.contains(' '))
                }) => {}
            Some(_) => out.push(problem(
                ProblemKind::Invalid,
                &format!("{at}.platforms"),
                "must be a list of `os/arch` strings (linux/amd64)",
            )),
        }
    }
    if !images.iter().any(is_gadget_entry) {
        out.push(problem(
            ProblemKind::Invalid,
            field,
            "has no entry named `gadget` (required for the Inspektor gadgets kind)",
        ));
    }
    for (i, img) in images.iter().enumerate() {
        if let Some(n) = img["name"].as_str() {
            if n != "gadget" && n != "gadget-alternative-location" {
                out.push(problem(
                    ProblemKind::Warning,
                    &format!("{field}[{i}].name"),
                    format!("`{n}`: gadgets use `gadget` and `gadget-alternative-location`"),
                ));
            }
        }
    }
}

fn is_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

/// SemVer 2.0.0: `MAJOR.MINOR.PATCH`, optional `-prerelease` and `+build`.
pub fn is_semver(v: &str) -> bool {
    semver::Version::parse(v).is_ok()
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with ranges checked (a leap
/// second only where one can fall). The date and time are parted by `T`, `t` or a space.
pub fn is_rfc3339(v: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    matches!(v.as_bytes().get(10), Some(b'T' | b't' | b' '))
        && time::OffsetDateTime::parse(v, &Rfc3339).is_ok()
}

/// Reads and checks an `artifacthub-repo.yml` (`repositoryID`, `owners`, `ignore`); returns its
/// bytes, to push as the repository metadata layer.
pub fn read_repo_metadata(path: &Path) -> Result<(Vec<u8>, Vec<Problem>), ArtifactHubError> {
    let bytes = std::fs::read(path).map_err(|source| {
        ArtifactHubError::Io(crate::file_error::FileError {
            action: "read",
            path: path.to_path_buf(),
            source,
        })
    })?;
    let doc = load_yaml_mapping(&bytes, path)?;
    let mut problems = Vec::new();
    match get(&doc, "repositoryID") {
        None => {}
        Some(Yaml::String(id)) if is_uuid(id) => {}
        Some(_) => problems.push(problem(
            ProblemKind::Invalid,
            "repositoryID",
            "must be the repository's UUID from Artifact Hub",
        )),
    }
    validate_list_of_maps(&doc, "owners", &["email"], &mut problems);
    validate_list_of_maps(&doc, "ignore", &["name"], &mut problems);
    for k in doc.keys() {
        let key = str_of(k).unwrap_or_default();
        if !["repositoryID", "owners", "ignore"].contains(&key.as_str()) {
            problems.push(problem(
                ProblemKind::Warning,
                &key,
                "is not a key of artifacthub-repo.yml",
            ));
        }
    }
    Ok((bytes, problems))
}

/// Stores the repository metadata artifact in `store`, tagged `<repo>:artifacthub.io`: an OCI
/// image manifest whose config is the empty blob of media type [`REPO_METADATA_CONFIG`] and
/// whose one layer is `artifacthub-repo.yml` ([`REPO_METADATA_LAYER`], titled like `oras push`
/// titles it). Returns the tagged reference. Deterministic: the same file gives the same digest.
pub fn store_repo_metadata(
    store: &Store,
    repo: &str,
    yaml: &[u8],
) -> Result<Reference, ArtifactHubError> {
    use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
    let reference_err = |image: String, source| ArtifactHubError::Reference { image, source };
    let parsed =
        Reference::parse(repo).map_err(|source| reference_err(repo.to_string(), source))?;
    // A parsed reference always has a tag (`latest`); refuse one written by the user.
    let last_slash = repo.rfind('/');
    let explicit_tag = repo
        .rfind(':')
        .is_some_and(|c| last_slash.is_none_or(|s| c > s));
    if explicit_tag || parsed.digest().is_some() {
        return Err(ArtifactHubError::Image {
            image: repo.to_string(),
            reason: format!(
                "give the repository without a tag or digest: the metadata goes to the `{REPO_METADATA_TAG}` tag"
            ),
        });
    }
    let full = format!("{}:{REPO_METADATA_TAG}", parsed.name());
    let reference = parsed
        .with_tag(REPO_METADATA_TAG)
        .map_err(|source| reference_err(full.clone(), source))?;
    let bad = |reason: String| ArtifactHubError::Image {
        image: full.clone(),
        reason,
    };
    let descriptor = |media: &str, data: &[u8]| -> Result<Descriptor, ArtifactHubError> {
        let digest = crate::image::assemble::digest_of(data).map_err(|e| bad(e.to_string()))?;
        Ok(Descriptor::new(
            MediaType::from(media),
            data.len() as u64,
            digest,
        ))
    };
    let config = descriptor(REPO_METADATA_CONFIG, b"")?;
    let mut layer = descriptor(REPO_METADATA_LAYER, yaml)?;
    layer.set_annotations(Some(
        [(
            "org.opencontainers.image.title".to_string(),
            "artifacthub-repo.yml".to_string(),
        )]
        .into_iter()
        .collect(),
    ));
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let bytes =
        gadget_store::canonical::to_canonical_json(&manifest).map_err(|e| bad(e.to_string()))?;
    let manifest_desc = descriptor(mt::MANIFEST, &bytes)?;
    store
        .transaction(|tx| {
            tx.write_blob(b"")?;
            tx.write_blob(yaml)?;
            tx.write_blob(&bytes)?;
            tx.tag(&reference, manifest_desc.clone())
        })
        .map_err(|source| ArtifactHubError::Store {
            image: full.clone(),
            source,
        })?;
    Ok(reference)
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl gadget_store::hint::Hint for ArtifactHubError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            ArtifactHubError::NotSemver { .. } => {
                "tag the image with its version, or pass `--pkg-version`".to_string()
            }
            ArtifactHubError::NeedImage { .. } => {
                "pass `--image REF` (an image in the store, tagged with its version)".to_string()
            }
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Hash {
        match yaml_rust2::YamlLoader::load_from_str(text)
            .unwrap()
            .remove(0)
        {
            Yaml::Hash(h) => h,
            _ => panic!(),
        }
    }

    #[test]
    fn semver() {
        for good in [
            "0.1.0",
            "1.2.3-rc.1",
            "1.2.3+build.5",
            "10.20.30-alpha-1.0+x",
        ] {
            assert!(is_semver(good), "{good}");
        }
        for bad in [
            "1.2",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "v1.2.3",
            "latest",
            "1.2.3+",
            "1.2.3-a..b",
            " 1.2.3",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn rfc3339() {
        for good in [
            "2024-01-02T15:04:05Z",
            "2024-02-29T00:00:00.123+01:00",
            "2023-12-31t23:59:60z",
            "2024-01-02 15:04:05-07:30",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-01-02",
            "2024-01-02T15:04:05",
            "2024-13-02T15:04:05Z",
            "2024-01-02T15:04:05+1:00",
            "2024-01-02X15:04:05Z",
            "2024-01-02T15:04:05Zjunk",
            "2024-01-02T25:04:05Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn validate_reports_each_rule() {
        let d = doc(
            "version: v1\nname: a_b\ncreatedAt: yesterday\ndescription: x\ncategory: fun\n\
             containersImages:\n  - name: other\n    image: 'UPPER:case'\nfoo: 1\n",
        );
        let found: Vec<String> = validate(&d).iter().map(ToString::to_string).collect();
        let has = |s: &str| found.iter().any(|f| f.contains(s));
        assert!(has("invalid: `version`"), "{found:?}");
        assert!(has("invalid: `name`"), "{found:?}");
        assert!(has("invalid: `displayName`: is required"), "{found:?}");
        assert!(has("invalid: `createdAt`"), "{found:?}");
        assert!(has("invalid: `category`"), "{found:?}");
        assert!(has("invalid: `containersImages[0].image`"), "{found:?}");
        assert!(has("has no entry named `gadget`"), "{found:?}");
        assert!(has("warning: `foo`"), "{found:?}");
    }

    #[test]
    fn refresh_keeps_author_fields_and_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gadget.yaml"),
            "name: trace_x\ndescription: New words\nhomepageURL: https://x.example\n\
             documentationURL: https://x.example/docs\nsourceURL: ''\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(PKG_FILE),
            "version: 0.1.0\nname: trace-x\ndisplayName: Trace X by hand\n\
             createdAt: '2024-01-01T00:00:00Z'\ndescription: Old words\nlicense: MIT\n\
             links:\n  - name: Blog\n    url: https://blog.example\n\
             containersImages:\n  - name: gadget\n    image: ghcr.io/a/b:v0.1.0\n  \
             - name: gadget-alternative-location\n    image: docker.io/a/b:v0.1.0\n",
        )
        .unwrap();
        let opts = PkgOptions {
            dir: dir.path().to_path_buf(),
            image: Some(ImageFacts {
                reference: "ghcr.io/a/b:v0.2.0".into(),
                tag: "v0.2.0".into(),
                digest: "sha256:abcd".into(),
                created: "2024-05-06T07:08:09Z".into(),
                platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            }),
            version: None,
        };
        let stale: Vec<String> = check(&opts)
            .unwrap()
            .iter()
            .filter(|p| p.kind == ProblemKind::Stale)
            .map(|p| p.field.clone())
            .collect();
        for f in [
            "version",
            "description",
            "createdAt",
            "digest",
            "links",
            "containersImages",
        ] {
            assert!(stale.iter().any(|s| s == f), "{f} not in {stale:?}");
        }
        let g = generate(&opts).unwrap();
        assert!(g.changed);
        let text = std::fs::read_to_string(dir.path().join(PKG_FILE)).unwrap();
        let keys: Vec<String> = doc(&text).keys().filter_map(str_of).collect();
        assert_eq!(
            &keys[..8],
            [
                "version",
                "name",
                "displayName",
                "createdAt",
                "description",
                "license",
                "links",
                "containersImages"
            ]
        );
        assert!(text.contains("displayName: Trace X by hand"), "{text}");
        assert!(text.contains("https://blog.example"), "{text}");
        assert!(text.contains("gadget-alternative-location"), "{text}");
        assert!(text.contains("sudo ig run ghcr.io/a/b:v0.2.0"), "{text}");
        assert_eq!(check(&opts).unwrap(), Vec::<Problem>::new(), "{text}");
        // Idempotent.
        assert!(!generate(&opts).unwrap().changed);
    }

    #[test]
    fn new_file_needs_an_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gadget.yaml"), "name: x\ndescription: d\n").unwrap();
        let opts = PkgOptions {
            dir: dir.path().to_path_buf(),
            ..PkgOptions::default()
        };
        assert!(matches!(
            generate(&opts),
            Err(ArtifactHubError::NeedImage { .. })
        ));
    }
}
