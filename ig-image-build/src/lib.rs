//! ig-image's build side: gadget directories in, tagged images in the store out, and what a
//! build needs around that. It never loads eBPF (no loader, aya or libbpf below it).
//!
//! `ig-image build`, in this module: per directory, read build.yaml, compile the eBPF source once
//! per platform (in parallel, through the cache; C with clang in [`c`], a Cargo package with
//! cargo and bpf-linker in [`rust`]), build and validate the WASM module if any ([`wasm`]),
//! check each object and the gadget.yaml against it, optionally update gadget.yaml, assemble the
//! image and store it with its tag in one store transaction. Several directories build in
//! parallel, with at most `jobs` compiler processes at once.
//!
//! Around it: [`image`] (index and manifest assembly), [`metadata`] (gadget.yaml checks and
//! updates), [`attest`] (SBOM and provenance), [`btfgen`] (minimized BTF for old kernels),
//! [`sdk`] (the embedded SDK), [`scaffold`] (`init`), [`artifacthub`] (Artifact Hub files),
//! [`inspect`] (what an image in the store holds), [`file_error`] (the shared I/O error).

pub mod artifacthub;
pub mod attest;
pub mod btfgen;
pub mod file_error;
pub mod image;
pub mod inspect;
pub mod metadata;
pub mod scaffold;
pub mod sdk;

pub mod btf_strings;
pub mod build_yaml;
pub mod c;
pub mod cache;
pub mod cflags;
pub mod confine;
pub mod reads;
pub mod rust;
pub mod sandbox;
pub mod toolchain;
pub mod wasm;
pub mod wasm_go;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use gadget_facts::media_types as mt;
use gadget_facts::platform::{self, Platform};
use gadget_object::{GadgetObject, Severity};
use gadget_store::Store;
use gadget_store::reference::Reference;

use build_yaml::BuildSpec;
use cache::BuildCache;
use toolchain::CToolchain;

/// The builder version written into every image's annotations.
pub const BUILDER_VERSION: &str = concat!("ig-image/v", env!("CARGO_PKG_VERSION"));

/// Options of one `ig-image build` call.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Gadget directories.
    pub dirs: Vec<PathBuf>,
    /// Tag template; `{name}` is replaced by the directory name. Default `{name}:latest`.
    pub tag: Option<String>,
    /// Build file, relative to each directory unless absolute.
    pub file: Option<PathBuf>,
    /// Platforms from the command line (override build.yaml).
    pub platforms: Option<Vec<Platform>>,
    /// External SDK tree searched before the bundled one.
    pub sdk_dir: Option<PathBuf>,
    /// Extra include directories (`-I`).
    pub include_dirs: Vec<PathBuf>,
    /// Create or update gadget.yaml from the object.
    pub update_metadata: bool,
    /// Check gadget.yaml against the object.
    pub validate_metadata: bool,
    /// Also write each platform's object to this directory (`<name>.<arch>.bpf.o`).
    pub output_dir: Option<PathBuf>,
    /// Upstream's `build -o DIR`: keep the generated files in this directory under upstream's
    /// names (`<arch>.bpf.o`, `program.wasm`). One gadget directory at a time.
    pub upstream_output_dir: Option<PathBuf>,
    /// Maximum compiler processes at once.
    pub jobs: usize,
    /// The cache directory, or `None` for `--no-cache`.
    pub cache_dir: Option<PathBuf>,
    /// `--btfgen --btfhub-archive DIR`: add a btfgen layer made from this btfhub-archive tree.
    pub btfgen_archive: Option<PathBuf>,
    /// `--sbom`, `--provenance`, `--key`: attestations attached as referrers of the image.
    pub attest: crate::attest::AttestOptions,
}

/// What one built gadget produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltImage {
    /// The gadget directory.
    pub dir: PathBuf,
    /// Full normalized reference the image was tagged with.
    pub reference: String,
    /// Index digest.
    pub digest: String,
    /// Platforms in the image.
    pub platforms: Vec<String>,
    /// Objects reused from the cache (out of `platforms.len()`).
    pub cached_objects: usize,
    /// Warnings from build.yaml, the compiler and the checks.
    pub warnings: Vec<String>,
    /// Wall time in milliseconds.
    pub millis: u128,
    /// Whether gadget.yaml was written by `--update-metadata`.
    pub metadata_updated: bool,
    /// Attestations attached as referrers (`--sbom`, `--provenance`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<crate::attest::attach::Attached>,
}

/// Why a gadget did not build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// build.yaml problem.
    #[error(transparent)]
    BuildYaml(#[from] build_yaml::BuildYamlError),
    /// No usable clang / llvm-strip.
    #[error(transparent)]
    Toolchain(#[from] toolchain::ToolchainError),
    /// Compiler or strip failure.
    #[error(transparent)]
    Compile(#[from] c::CompileError),
    /// The bundled SDK could not be unpacked.
    #[error(transparent)]
    Sdk(#[from] crate::sdk::SdkError),
    /// The object or the metadata failed the checks.
    #[error("`{dir}` failed {count} check(s):\n{details}")]
    Checks {
        /// The gadget directory.
        dir: PathBuf,
        /// How many errors.
        count: usize,
        /// One line per error, naming the culprit.
        details: String,
    },
    /// The built object is not a readable gadget object.
    #[error("the {platform} object built from `{source_path}` is unreadable")]
    Object {
        /// The source.
        source_path: PathBuf,
        /// The platform.
        platform: Platform,
        /// Why.
        #[source]
        source: gadget_object::ObjectError,
    },
    /// gadget.yaml could not be read, parsed or written.
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
    /// `--update-metadata` without an eBPF object.
    #[error("`--update-metadata` needs an eBPF program, and `{dir}` has none")]
    UpdateWithoutObject {
        /// The gadget directory.
        dir: PathBuf,
    },
    /// The tag is not a valid reference.
    #[error("invalid tag for `{dir}`")]
    Tag {
        /// The gadget directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: gadget_store::reference::ReferenceError,
    },
    /// A Rust eBPF build failed.
    #[error(transparent)]
    Rust(#[from] rust::RustBuildError),
    /// The WASM module could not be built or is not a valid gadget module.
    #[error(transparent)]
    Wasm(#[from] wasm::WasmError),
    /// btfgen failed.
    #[error(transparent)]
    Btfgen(#[from] crate::btfgen::BtfgenError),
    /// `--btfgen` for a gadget without an eBPF program.
    #[error("`--btfgen` needs an eBPF program, and `{dir}` has none")]
    BtfgenWithoutObject {
        /// The gadget directory.
        dir: PathBuf,
    },
    /// Assembling the image failed.
    #[error(transparent)]
    Assemble(#[from] image::assemble::AssembleError),
    /// An input file could not be read for the SBOM or the provenance.
    #[error("cannot record the inputs of `{dir}` for the SBOM/provenance")]
    Inventory {
        /// The gadget directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The attestations could not be attached.
    #[error(transparent)]
    Attest(#[from] crate::attest::attach::AttachError),
    /// Writing to the store failed.
    #[error("cannot store the image of `{dir}`")]
    Store {
        /// The gadget directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: gadget_store::StoreError,
    },
}

/// Receives progress of a build (the CLI prints it; the library never does).
pub trait BuildReporter: Sync {
    /// A gadget started building for these platforms.
    fn started(&self, _dir: &Path, _platforms: &[Platform]) {}
    /// A gadget finished.
    fn finished(&self, _result: &Result<BuiltImage, BuildError>, _dir: &Path) {}
}

/// A reporter that says nothing.
#[derive(Debug, Default)]
pub struct SilentReporter;
impl BuildReporter for SilentReporter {}

/// A counting semaphore bounding concurrent compiler processes.
struct Slots {
    free: Mutex<usize>,
    cond: Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            cond: Condvar::new(),
        }
    }

    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self
                .free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while *free == 0 {
                free = self
                    .cond
                    .wait(free)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            *free -= 1;
        }
        let out = f();
        *self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        self.cond.notify_one();
        out
    }
}

/// The tag for a directory: the template with `{name}` replaced, default `<dirname>:latest`.
pub fn tag_for(template: Option<&str>, dir: &Path) -> String {
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "gadget".to_string());
    template.unwrap_or("{name}").replace("{name}", &name)
}

/// Where built images go: the store is opened (and created when missing) only once the first
/// image is ready, so a build that fails leaves no store behind.
#[derive(Debug)]
pub struct StoreTarget {
    path: PathBuf,
    opened: Mutex<Option<Store>>,
}

impl StoreTarget {
    /// The store at `path`, not opened yet.
    pub fn lazy(path: impl Into<PathBuf>) -> StoreTarget {
        StoreTarget {
            path: path.into(),
            opened: Mutex::new(None),
        }
    }

    /// A store already open.
    pub fn open(store: Store) -> StoreTarget {
        StoreTarget {
            path: store.path().to_path_buf(),
            opened: Mutex::new(Some(store)),
        }
    }

    /// The store, opened on first use.
    pub fn get(&self) -> Result<Store, gadget_store::StoreError> {
        let mut opened = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = opened.as_ref() {
            return Ok(store.clone());
        }
        let store = Store::open(&self.path)?;
        *opened = Some(store.clone());
        Ok(store)
    }
}

/// Build every directory of `opts` into `store`. One result per directory, in order.
pub fn build_all(
    store: &StoreTarget,
    opts: &BuildOptions,
    reporter: &dyn BuildReporter,
) -> Vec<Result<BuiltImage, BuildError>> {
    let slots = Slots::new(opts.jobs);
    let results: Vec<Mutex<Option<Result<BuiltImage, BuildError>>>> =
        opts.dirs.iter().map(|_| Mutex::new(None)).collect();
    let next = Mutex::new(0usize);
    let workers = opts.jobs.clamp(1, opts.dirs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(dir) = opts.dirs.get(i) else { break };
                    let result = build_one(store, opts, dir, &slots, reporter);
                    reporter.finished(&result, dir);
                    *results[i]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .expect("every directory was built")
        })
        .collect()
}

fn build_one(
    store: &StoreTarget,
    opts: &BuildOptions,
    dir: &Path,
    slots: &Slots,
    reporter: &dyn BuildReporter,
) -> Result<BuiltImage, BuildError> {
    let started = Instant::now();
    let spec = BuildSpec::load(dir, opts.file.as_deref())?;
    // Before compiling: the metadata file must load within the limits and be a gadget.yaml.
    if spec.metadata.exists() {
        read_metadata(&spec.metadata)?;
    }
    let mut warnings = spec.warnings.clone();
    let platforms = opts
        .platforms
        .clone()
        .or_else(|| spec.platforms.clone())
        .unwrap_or_else(|| platform::DEFAULT_PLATFORMS.to_vec());
    let reference_text = tag_for(opts.tag.as_deref(), dir);
    let reference: Reference = reference_text.parse().map_err(|source| BuildError::Tag {
        dir: dir.to_path_buf(),
        source,
    })?;
    reporter.started(dir, &platforms);

    // 1. Compile: objects, one per platform, in parallel; the WASM module.
    let objects = compile_objects(opts, &spec, &platforms, slots)?;
    for object in objects.iter().flatten() {
        if !object.warnings.trim().is_empty() {
            warnings.push(without_warning_prefix(object.warnings.trim()));
        }
    }
    let wasm = build_wasm(opts, &spec, slots, &mut warnings)?;

    // 2. Check: every platform's object, then gadget.yaml (updated first when asked).
    let mut errors = Vec::new();
    let parsed = check_objects(&spec, &objects, &mut errors, &mut warnings)?;
    let metadata_updated = if opts.update_metadata {
        update_metadata_file(dir, &spec, parsed.first())?
    } else {
        false
    };
    let metadata_bytes = check_metadata(opts, &spec, parsed.first(), &mut errors, &mut warnings)?;
    if !errors.is_empty() {
        return Err(BuildError::Checks {
            dir: dir.to_path_buf(),
            count: errors.len(),
            details: errors.join("\n"),
        });
    }

    // 3. Assemble the image.
    let created = image::assemble::created_timestamp()?;
    let annotations = annotations_for(&spec, metadata_bytes.as_deref(), &created)?;
    let btfgen = btfgen_layers(opts, dir, &platforms, &objects)?;
    let inputs = image::ImageInputs {
        btfgen,
        metadata: metadata_bytes,
        annotations,
        objects: platforms
            .iter()
            .zip(&objects)
            .map(|(p, o)| (*p, o.as_ref().map(|o| o.bytes.clone())))
            .collect(),
        wasm,
    };
    let assembled = image::assemble(&inputs)?;

    // 4. Store it, with its attestations, and write the objects where asked.
    let facts = if opts.attest.any() {
        let index_digest =
            gadget_store::Digest::try_from(assembled.index.digest()).map_err(|e| {
                image::assemble::AssembleError {
                    message: format!("the index digest: {e}"),
                }
            })?;
        Some(BuildFacts {
            opts,
            spec: &spec,
            reference: &reference,
            index_digest,
            created: &created,
            platforms: &platforms,
            objects: &objects,
            wasm: inputs.wasm.as_deref(),
            metadata: inputs.metadata.as_deref(),
            blobs: &assembled.blobs,
        })
    } else {
        None
    };
    let attestations = store_image(store, dir, &reference, &assembled, facts.as_ref())?;
    if let Some(out) = &opts.output_dir {
        write_objects(out, &reference_text, &objects)?;
    }
    if let Some(out) = &opts.upstream_output_dir {
        write_upstream_outputs(out, &objects, inputs.wasm.as_deref())?;
    }
    Ok(BuiltImage {
        dir: dir.to_path_buf(),
        reference: reference.full(),
        digest: assembled.index.digest().to_string(),
        platforms: platforms.iter().map(|p| p.oci_arch().to_string()).collect(),
        cached_objects: objects.iter().flatten().filter(|o| o.cached).count(),
        warnings,
        millis: started.elapsed().as_millis(),
        metadata_updated,
        attestations,
    })
}

/// The gadget's eBPF object for each platform (`None` each when it has no eBPF source),
/// compiled in parallel from C or from a Cargo package.
fn compile_objects(
    opts: &BuildOptions,
    spec: &BuildSpec,
    platforms: &[Platform],
    slots: &Slots,
) -> Result<Vec<Option<c::CompiledObject>>, BuildError> {
    let compiled = match &spec.ebpf_source {
        None => return Ok(platforms.iter().map(|_| None).collect()),
        // A Cargo package: `ebpfsource` names its Cargo.toml or its directory, or the gadget
        // directory has a Cargo.toml and no program.bpf.c.
        Some(src)
            if src.file_name().is_some_and(|n| n == "Cargo.toml")
                || src.join("Cargo.toml").is_file() =>
        {
            let manifest = if src.is_dir() {
                src.join("Cargo.toml")
            } else {
                src.clone()
            };
            compile_rust_platforms(opts, &manifest, platforms, slots)?
        }
        Some(src) => compile_platforms(opts, spec, src, platforms, slots)?,
    };
    Ok(compiled.into_iter().map(Some).collect())
}

/// The WASM module's bytes, when the gadget has one: compiled if it is a source, validated in
/// every case; its warnings go to `warnings`.
fn build_wasm(
    opts: &BuildOptions,
    spec: &BuildSpec,
    slots: &Slots,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, BuildError> {
    let Some(source) = &spec.wasm else {
        return Ok(None);
    };
    let cache_root = opts.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let module = slots.run(|| {
        wasm::build_module(&wasm::WasmRequest {
            source,
            gadget_dir: &spec.dir,
            build_file: spec.file.as_deref(),
            cache_root: &cache_root,
            use_cache: opts.cache_dir.is_some(),
        })
    })?;
    warnings.extend(module.warnings.iter().cloned());
    Ok(Some(module.bytes))
}

/// Parses and checks every platform's object; findings go to `errors` and `warnings`, each
/// once (the platforms' objects come from one source).
fn check_objects(
    spec: &BuildSpec,
    objects: &[Option<c::CompiledObject>],
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<GadgetObject>, BuildError> {
    let mut parsed = Vec::new();
    for object in objects.iter().flatten() {
        let source_path = spec.ebpf_source.clone().unwrap_or_default();
        let obj = GadgetObject::parse(&object.bytes).map_err(|source| BuildError::Object {
            source_path,
            platform: object.platform,
            source,
        })?;
        let order = match object.platform.byte_order() {
            platform::ByteOrder::Little => gadget_object::Endianness::Little,
            platform::ByteOrder::Big => gadget_object::Endianness::Big,
        };
        for d in obj.check(order) {
            match d.severity {
                Severity::Error => errors.push(format!("[{}] {d}", object.platform)),
                Severity::Warning => warnings.push(format!(
                    "[{}] {}: {}",
                    object.platform, d.subject, d.message
                )),
            }
        }
        parsed.push(obj);
    }
    dedup_platform_lines(errors);
    dedup_platform_lines(warnings);
    Ok(parsed)
}

/// `--update-metadata`: writes gadget.yaml as updated from `obj`; true when it changed.
fn update_metadata_file(
    dir: &Path,
    spec: &BuildSpec,
    obj: Option<&GadgetObject>,
) -> Result<bool, BuildError> {
    let obj = obj.ok_or_else(|| BuildError::UpdateWithoutObject {
        dir: dir.to_path_buf(),
    })?;
    let existing = match std::fs::read_to_string(&spec.metadata) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(BuildError::Io(crate::file_error::FileError {
                action: "read",
                path: spec.metadata.clone(),
                source,
            }));
        }
    };
    let updated = metadata::update(existing.as_deref(), obj)?;
    if existing.as_deref() == Some(updated.as_str()) {
        return Ok(false);
    }
    cache::write_atomic(&spec.metadata, updated.as_bytes()).map_err(|source| {
        BuildError::Io(crate::file_error::FileError {
            action: "write",
            path: spec.metadata.clone(),
            source,
        })
    })?;
    Ok(true)
}

/// The metadata file's bytes (the image's config blob), when there is one, validated against
/// the first object unless validation is off; findings go to `errors` and `warnings`.
fn check_metadata(
    opts: &BuildOptions,
    spec: &BuildSpec,
    first_object: Option<&GadgetObject>,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, BuildError> {
    // Through the hardened loader (size checked before reading), and it must be a gadget.yaml,
    // not any mapping (`metadata:` was confined to the gadget directory by build.yaml's loader).
    if !spec.metadata.exists() {
        return Ok(None);
    }
    let bytes = read_metadata(&spec.metadata)?;
    if opts.validate_metadata {
        let text = String::from_utf8_lossy(&bytes);
        for d in metadata::validate(&text, &spec.metadata, first_object)? {
            match d.severity {
                Severity::Error => errors.push(d.to_string()),
                Severity::Warning => warnings.push(format!(
                    "`{}`: {}: {}",
                    spec.metadata.display(),
                    d.subject,
                    d.message
                )),
            }
        }
    }
    Ok(Some(bytes))
}

/// The image's annotations: gadget.yaml's descriptive fields and annotations, when it has one,
/// with the builder's version and the creation time.
fn annotations_for(
    spec: &BuildSpec,
    metadata_bytes: Option<&[u8]>,
    created: &str,
) -> Result<Vec<(String, String)>, BuildError> {
    let Some(bytes) = metadata_bytes else {
        return Ok(image::assemble::image_annotations(
            None,
            &[],
            BUILDER_VERSION,
            created,
        ));
    };
    let info = metadata::descriptive(&String::from_utf8_lossy(bytes), &spec.metadata)?;
    let fields = [
        (mt::TITLE, info.name.clone()),
        (mt::DESCRIPTION, info.description.clone()),
        (mt::URL, info.homepage_url.clone()),
        (mt::DOCUMENTATION, info.documentation_url.clone()),
        (mt::SOURCE, info.source_url.clone()),
    ];
    Ok(image::assemble::image_annotations(
        Some(&fields),
        &info.annotations,
        BUILDER_VERSION,
        created,
    ))
}

/// `--btfgen`: minimized kernel BTFs for each platform's object (after the checks passed).
fn btfgen_layers(
    opts: &BuildOptions,
    dir: &Path,
    platforms: &[Platform],
    objects: &[Option<c::CompiledObject>],
) -> Result<Vec<(Platform, Vec<u8>)>, BuildError> {
    let Some(archive) = &opts.btfgen_archive else {
        return Ok(Vec::new());
    };
    let with_objects: Vec<(Platform, &[u8])> = platforms
        .iter()
        .zip(objects)
        .filter_map(|(p, o)| o.as_ref().map(|o| (*p, o.bytes.as_slice())))
        .collect();
    if with_objects.is_empty() {
        return Err(BuildError::BtfgenWithoutObject {
            dir: dir.to_path_buf(),
        });
    }
    Ok(crate::btfgen::generate(archive, &with_objects, opts.jobs)?
        .into_iter()
        .map(|l| (l.platform, l.blob))
        .collect())
}

/// Writes and tags the image, with its attestations when `facts` is given, in one store
/// transaction: all or nothing. The attestations' plan (the inventory and its memo lookup) is
/// made on another thread while the transaction takes the store's lock, reads its index and
/// writes the image, so a no-op rebuild does not wait for it.
fn store_image(
    store: &StoreTarget,
    dir: &Path,
    reference: &Reference,
    assembled: &image::assemble::AssembledImage,
    facts: Option<&BuildFacts<'_>>,
) -> Result<Vec<crate::attest::attach::Attached>, BuildError> {
    use crate::attest::memo::Plan;
    enum Failed {
        Store(gadget_store::StoreError),
        Inventory(std::io::Error),
        Attach(crate::attest::attach::AttachError),
    }
    impl From<gadget_store::StoreError> for Failed {
        fn from(e: gadget_store::StoreError) -> Self {
            Failed::Store(e)
        }
    }
    let store = store.get().map_err(|source| BuildError::Store {
        dir: dir.to_path_buf(),
        source,
    })?;
    std::thread::scope(|scope| {
        let planning = facts.map(|f| {
            scope.spawn(move || {
                inventory_of(f).map(|inventory| {
                    Plan::new(inventory, &f.opts.attest, f.opts.cache_dir.as_deref())
                })
            })
        });
        let (plan, attachment) = store
            .transaction(|tx| {
                for (_, bytes) in &assembled.blobs {
                    tx.write_blob(bytes)?;
                }
                tx.tag(reference, assembled.index.clone())?;
                let Some(planning) = planning else {
                    return Ok((None, Default::default()));
                };
                let plan = planning
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    .map_err(Failed::Inventory)?;
                let attachment = plan.attach(tx, &assembled.index).map_err(Failed::Attach)?;
                Ok((Some(plan), attachment))
            })
            .map_err(|e| match e {
                Failed::Store(source) => BuildError::Store {
                    dir: dir.to_path_buf(),
                    source,
                },
                Failed::Inventory(source) => BuildError::Inventory {
                    dir: dir.to_path_buf(),
                    source,
                },
                Failed::Attach(e) => BuildError::Attest(e),
            })?;
        Ok(plan
            .map(|plan: Plan<'_>| plan.finish(attachment))
            .unwrap_or_default())
    })
}

/// What [`inventory_of`] needs from one gadget's build.
struct BuildFacts<'a> {
    opts: &'a BuildOptions,
    spec: &'a BuildSpec,
    reference: &'a Reference,
    index_digest: gadget_store::Digest,
    created: &'a str,
    platforms: &'a [Platform],
    objects: &'a [Option<c::CompiledObject>],
    wasm: Option<&'a [u8]>,
    /// The metadata file's content as the build read it (the config blob).
    metadata: Option<&'a [u8]>,
    /// The image's blobs with their descriptors (the objects' and the module's digests).
    blobs: &'a [(oci_spec::image::Descriptor, Vec<u8>)],
}

impl BuildFacts<'_> {
    /// SHA-256 hex of `bytes`: the digest the image already gives that content, else computed.
    fn sha256_of(&self, bytes: &[u8]) -> String {
        self.blobs
            .iter()
            .find(|(_, b)| b.as_slice() == bytes)
            .and_then(|(d, _)| {
                d.digest()
                    .as_ref()
                    .strip_prefix("sha256:")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| cache::sha256_hex(bytes))
    }
}

/// The role of a file a compiler read.
fn role_of(path: &Path) -> &'static str {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("Cargo.lock") => "cargo-lock",
        Some("Cargo.toml") => "cargo-manifest",
        Some("config.toml") => "cargo-config",
        Some(n) if n.ends_with(".rs") => "rust-source",
        Some(n) if n.ends_with(".c") => "ebpf-source",
        _ => "header",
    }
}

/// Everything the SBOM and the provenance say about this build (see [`crate::attest`]).
fn inventory_of(f: &BuildFacts<'_>) -> std::io::Result<crate::attest::inventory::Inventory> {
    use crate::attest::inventory::{self, ObjectInfo, Roots};
    let opts = f.opts;
    let spec = f.spec;
    let cache_root = opts.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let is_rust = f.objects.iter().flatten().any(|o| {
        o.dependencies
            .iter()
            .any(|d| d.file_name().is_some_and(|n| n == "Cargo.toml"))
    });
    let is_c = spec.ebpf_source.is_some() && !is_rust;
    let roots = Roots {
        gadget: spec.dir.clone(),
        bundled_sdk: is_c.then(|| crate::sdk::include_dir(&cache_root)),
        sdk_dir: opts.sdk_dir.clone(),
        include_dirs: opts
            .include_dirs
            .iter()
            .chain(&spec.include_dirs)
            .cloned()
            .collect(),
    }
    .canonicalized();

    let canonical = CanonicalPaths::default();
    let files = input_files(f, &canonical);
    let mut crates = Vec::new();
    for lock in files.paths().filter(|p| p.ends_with("Cargo.lock")) {
        let text = std::fs::read_to_string(lock)
            .map_err(|e| std::io::Error::new(e.kind(), format!("`{}`: {e}", lock.display())))?;
        crates.extend(inventory::cargo_lock_crates(&text));
    }
    crates.sort();
    crates.dedup();
    let resolved = files.resolve(&roots)?;
    let tools = tools_used(opts, spec, is_c, is_rust);
    let definition = build_definition(f, &roots.gadget, &canonical);
    Ok(inventory::Inventory {
        reference: f.reference.full(),
        repository: f.reference.name(),
        tag: f.reference.tag().map(str::to_owned),
        index_digest: f.index_digest.clone(),
        created: f.created.to_owned(),
        source_date_epoch: std::env::var(gadget_facts::env::SOURCE_DATE_EPOCH)
            .ok()
            .filter(|v| !v.trim().is_empty()),
        files: resolved,
        tools,
        crates,
        sdk: is_c.then(inventory::bundled_sdk_info),
        objects: f
            .objects
            .iter()
            .flatten()
            .map(|o| ObjectInfo {
                platform: o.platform.oci_arch().to_string(),
                sha256: f.sha256_of(&o.bytes),
                size: o.bytes.len(),
            })
            .collect(),
        wasm: f.wasm.map(|w| (f.sha256_of(w), w.len())),
        definition,
    })
}

/// Canonical paths, each resolved once: the file list and the build definition name the same
/// files.
#[derive(Default)]
struct CanonicalPaths(std::cell::RefCell<std::collections::HashMap<PathBuf, PathBuf>>);

impl CanonicalPaths {
    /// `p` canonicalized (as given when it cannot be).
    fn of(&self, p: &Path) -> PathBuf {
        self.0
            .borrow_mut()
            .entry(p.to_path_buf())
            .or_insert_with(|| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
            .clone()
    }
}

/// The files the build read, each with its role: build file, metadata, what each compiler
/// read, the WASM source and its crate's manifest and lock file.
fn input_files(
    f: &BuildFacts<'_>,
    canonical: &CanonicalPaths,
) -> crate::attest::inventory::FileSet {
    let spec = f.spec;
    let mut files = crate::attest::inventory::FileSet::default();
    if let Some(build_file) = spec.file.as_deref().filter(|p| p.is_file()) {
        files.add(&canonical.of(build_file), "build-file", None);
    }
    if spec.metadata.is_file() {
        let path = canonical.of(&spec.metadata);
        files.add(&path, "metadata", None);
        if let Some(bytes) = f.metadata {
            files.checked(&path, &f.sha256_of(bytes));
        }
    }
    for object in f.objects.iter().flatten() {
        for dep in &object.dependencies {
            files.add(dep, role_of(dep), Some(object.platform));
        }
        for dep in &object.checked {
            files.checked(&dep.path, &dep.sha256);
        }
        if object.dependencies.is_empty() {
            if let Some(src) = spec.ebpf_source.as_deref().filter(|p| p.is_file()) {
                files.add(&canonical.of(src), "ebpf-source", Some(object.platform));
            }
        }
    }
    if let Some(wasm) = &spec.wasm {
        let wasm = canonical.of(wasm);
        if wasm.is_file() {
            files.add(&wasm, "wasm-source", None);
        }
        let crate_dir = if wasm.is_dir() {
            Some(wasm.clone())
        } else {
            wasm.parent().map(Path::to_path_buf)
        };
        for name in ["Cargo.toml", "Cargo.lock"] {
            if let Some(p) = crate_dir
                .as_ref()
                .map(|d| d.join(name))
                .filter(|p| p.is_file())
            {
                files.add(&p, role_of(&p), None);
            }
        }
    }
    files
}

/// The compilers and tools the build used, with their versions.
fn tools_used(
    opts: &BuildOptions,
    spec: &BuildSpec,
    is_c: bool,
    is_rust: bool,
) -> Vec<crate::attest::inventory::ToolInfo> {
    use crate::attest::inventory::tool_info;
    // Tool versions are remembered per tool identity (path, size, mtime) even with `--no-cache`:
    // that flag rebuilds the objects, and a changed tool has another identity anyway. Without
    // it a clean build would run `clang --version` and `llvm-strip --version` for its SBOM.
    let tool_cache_dir = opts.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let tool_cache = Some(tool_cache_dir.as_path());
    let mut tools = Vec::new();
    if is_c
        || spec
            .wasm
            .as_ref()
            .is_some_and(|w| w.extension().is_some_and(|e| e == "c"))
    {
        if let Ok(c) = CToolchain::discover() {
            tools.push(tool_info("clang", &c.clang, tool_cache));
            tools.push(tool_info("llvm-strip", &c.strip, tool_cache));
        }
    }
    if is_rust {
        if let Ok(r) = toolchain::RustToolchain::discover() {
            tools.push(tool_info("rustc", &r.rustc, tool_cache));
            tools.push(tool_info("cargo", &r.cargo, tool_cache));
            tools.push(tool_info("bpf-linker", &r.bpf_linker, tool_cache));
        }
        if let Ok(c) = CToolchain::discover() {
            tools.push(tool_info("llvm-strip", &c.strip, tool_cache));
        }
    }
    tools
}

/// The build definition the provenance records: the build file's settings (paths relative to
/// the gadget directory) and the flags.
fn build_definition(
    f: &BuildFacts<'_>,
    gadget_root: &Path,
    canonical: &CanonicalPaths,
) -> serde_json::Value {
    let (spec, opts) = (f.spec, f.opts);
    let relative = |p: &Path| {
        let p = canonical.of(p);
        p.strip_prefix(gadget_root)
            .map(|r| format!("./{}", r.display()))
            .unwrap_or_else(|_| p.display().to_string())
    };
    serde_json::json!({
        "gadget": spec.dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        "tag": f.reference.full(),
        "platforms": f.platforms.iter().map(|p| p.oci_arch()).collect::<Vec<_>>(),
        "buildFile": {
            "file": spec.file.as_deref().filter(|p| p.is_file()).map(relative),
            "ebpfsource": spec.ebpf_source.as_deref().map(relative),
            "metadata": relative(&spec.metadata),
            "wasm": spec.wasm.as_deref().map(relative),
            "platforms": spec.platforms.as_ref().map(|ps| ps.iter().map(|p| p.oci_arch()).collect::<Vec<_>>()),
            "includeDirs": spec.include_dirs.iter().map(|d| relative(d)).collect::<Vec<_>>(),
            "cflags": spec.cflags,
        },
        "flags": {
            "sdkDir": opts.sdk_dir.as_deref().map(|d| canonical.of(d).display().to_string()),
            "include": opts.include_dirs.iter().map(|d| canonical.of(d).display().to_string()).collect::<Vec<_>>(),
            "updateMetadata": opts.update_metadata,
            "validateMetadata": opts.validate_metadata,
            "btfgen": opts.btfgen_archive.is_some(),
            "sbom": opts.attest.sbom,
            "provenance": opts.attest.provenance,
            "signed": opts.attest.key.is_some(),
        },
    })
}

/// Reads the metadata file (size checked first), which must be UTF-8 and a gadget.yaml within
/// the loader's limits.
fn read_metadata(path: &Path) -> Result<Vec<u8>, BuildError> {
    let bytes = build_yaml::read_limited(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        metadata::MetadataError::from(gadget_object::yaml::YamlError::NotUtf8 {
            origin: gadget_object::yaml::file_origin(path),
            offset: e.valid_up_to(),
        })
    })?;
    metadata::require_gadget_yaml(text, path)?;
    Ok(bytes)
}

/// A warning's text without a leading `warning: ` (cargo's and clang's own lines carry one; the
/// CLI adds its own prefix, and `-o json` lists warnings without any).
fn without_warning_prefix(text: &str) -> String {
    text.strip_prefix("warning: ").unwrap_or(text).to_string()
}

fn dedup_platform_lines(lines: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    lines.retain(|l| {
        let body = l
            .split_once("] ")
            .map_or(l.as_str(), |(_, b)| b)
            .to_string();
        seen.insert(body)
    });
}

fn compile_platforms(
    opts: &BuildOptions,
    spec: &BuildSpec,
    source: &Path,
    platforms: &[Platform],
    slots: &Slots,
) -> Result<Vec<c::CompiledObject>, BuildError> {
    let toolchain = CToolchain::discover()?;
    let cache_root = opts.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let bundled = crate::sdk::ensure_unpacked(&cache_root)?;
    let immutable_root = std::fs::canonicalize(&bundled).unwrap_or(bundled.clone());
    let cache = opts.cache_dir.as_ref().map(|d| BuildCache::new(d.clone()));
    let mut sdk_dirs = Vec::new();
    if let Some(external) = &opts.sdk_dir {
        sdk_dirs.push(external.clone());
    }
    sdk_dirs.push(bundled);
    let mut include_dirs = vec![spec.dir.clone()];
    include_dirs.extend(opts.include_dirs.iter().cloned());
    include_dirs.extend(spec.include_dirs.iter().cloned());

    per_platform(platforms, slots, |platform| {
        c::compile(&c::CompileRequest {
            source,
            gadget_dir: &spec.dir,
            platform,
            include_dirs: &include_dirs,
            sdk_dirs: &sdk_dirs,
            cflags: &spec.cflags,
            toolchain: &toolchain,
            cache: cache.as_ref(),
            immutable_root: &immutable_root,
        })
        .map_err(BuildError::from)
    })
}

/// Run `job` once per platform, in parallel, each holding a compiler slot; results in
/// platform order, the first failure first.
fn per_platform<T: Send>(
    platforms: &[Platform],
    slots: &Slots,
    job: impl Fn(Platform) -> Result<T, BuildError> + Sync,
) -> Result<Vec<T>, BuildError> {
    let job = &job;
    std::thread::scope(|scope| {
        let handles: Vec<_> = platforms
            .iter()
            .map(|&platform| scope.spawn(move || slots.run(|| job(platform))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("compile thread does not panic"))
            .collect()
    })
}

fn compile_rust_platforms(
    opts: &BuildOptions,
    manifest: &Path,
    platforms: &[Platform],
    slots: &Slots,
) -> Result<Vec<c::CompiledObject>, BuildError> {
    let toolchain = toolchain::RustToolchain::discover()?;
    let strip = CToolchain::discover()?.strip;
    let cache = opts.cache_dir.as_ref().map(|d| BuildCache::new(d.clone()));
    // Cargo's target directories: kept under the cache so edits rebuild incrementally; a
    // throw-away directory with `--no-cache`.
    let scratch;
    let target_root = match &opts.cache_dir {
        Some(dir) => dir.join("rust-target"),
        None => {
            scratch = tempfile::Builder::new()
                .prefix("ig-image-rust-target-")
                .tempdir()
                .map_err(|source| {
                    BuildError::Io(crate::file_error::FileError {
                        action: "create",
                        path: std::env::temp_dir(),
                        source,
                    })
                })?;
            scratch.path().to_path_buf()
        }
    };
    per_platform(platforms, slots, |platform| {
        rust::compile(&rust::RustRequest {
            manifest,
            platform,
            toolchain: &toolchain,
            strip: &strip,
            cache: cache.as_ref(),
            target_root: &target_root,
        })
        .map_err(BuildError::from)
    })
}

/// Writes what upstream's builder leaves in its output directory: `<arch>.bpf.o` per platform
/// and `program.wasm`.
fn write_upstream_outputs(
    out: &Path,
    objects: &[Option<c::CompiledObject>],
    wasm: Option<&[u8]>,
) -> Result<(), BuildError> {
    let write = |path: PathBuf, bytes: &[u8]| {
        cache::write_atomic(&path, bytes).map_err(|source| {
            BuildError::Io(crate::file_error::FileError {
                action: "write",
                path,
                source,
            })
        })
    };
    for object in objects.iter().flatten() {
        write(
            out.join(format!("{}.bpf.o", object.platform)),
            &object.bytes,
        )?;
    }
    if let Some(bytes) = wasm {
        write(out.join("program.wasm"), bytes)?;
    }
    Ok(())
}

fn write_objects(
    out: &Path,
    reference: &str,
    objects: &[Option<c::CompiledObject>],
) -> Result<(), BuildError> {
    let stem: String = reference
        .rsplit('/')
        .next()
        .unwrap_or(reference)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    for object in objects.iter().flatten() {
        let path = out.join(format!("{stem}.{}.bpf.o", object.platform));
        cache::write_atomic(&path, &object.bytes).map_err(|source| {
            BuildError::Io(crate::file_error::FileError {
                action: "write",
                path: path.clone(),
                source,
            })
        })?;
    }
    Ok(())
}

/// The hints of the errors this one is transparently (the chain skips them).
impl gadget_store::hint::Hint for BuildError {
    fn hints(&self) -> Vec<String> {
        match self {
            BuildError::Toolchain(e) => e.hints(),
            BuildError::Compile(e) => e.hints(),
            BuildError::Rust(e) => e.hints(),
            BuildError::Wasm(e) => e.hints(),
            BuildError::Btfgen(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}
