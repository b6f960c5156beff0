//! `ig-image build`.

use gadget_store::hint::Hinted;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use gadget_facts::platform::Platform;
use ig_image_build::{self as build, BuildError, BuildOptions, BuildReporter, BuiltImage};

use super::common::{PlatformList, parse_platforms};
use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Arguments of `ig-image build`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image build sample-gadgets/trace_open -t trace_open:dev\n  \
ig-image build gadgets/* -t 'localhost:5000/gadgets/{name}:v1' -o json\n  \
SOURCE_DATE_EPOCH=0 ig-image build . --platform amd64,arm64,s390x --sdk-dir ~/ig/include\n  \
ig-image build . -t trace_demo:dev -o out/          (upstream's -o: keep out/amd64.bpf.o, ...)\n  \
ig-image build . -t trace_open:v1 --sbom --provenance --key cosign.key   (docs/supply-chain.md)\n\n\
-o takes a format or a directory: `columns`, `text`, `json`, `jsonpretty` and `yaml` are formats;\n\
any other value is upstream's output directory for the generated files (`<arch>.bpf.o`,\n\
`program.wasm`). Write `-o ./json` for a directory named like a format.\n\
-l/--local, --builder-image and --builder-image-pull are accepted for upstream's scripts and\n\
ignored: ig-image always builds locally, without Docker.\n\n\
build.yaml keys: ebpfsource, metadata, wasm (a .wasm file, or a Go or Rust source built to one),\n\
platforms, includeDirs, and cflags (a YAML list, one compiler argument per item, never through\n\
a shell). See docs/authoring.md.\n\n\
JSON (-o json): one line per gadget: {\"dir\", \"reference\", \"digest\", \"platforms\",\n\
\"cached_objects\", \"warnings\", \"millis\", \"metadata_updated\"}, or {\"dir\", \"error\": [causes]}.")]
pub struct BuildArgs {
    /// Gadget directories to build
    #[arg(value_name = "DIR", default_value = ".")]
    dirs: Vec<PathBuf>,
    /// Image name; `{name}` is the directory's name (default: `{name}:latest`)
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    tag: Option<String>,
    /// Build file, relative to each directory (default: build.yaml, optional)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Comma-separated platforms (default: build.yaml `platforms`, else amd64,arm64)
    #[arg(long, value_name = "LIST", value_parser = parse_platforms)]
    platform: Option<PlatformList>,
    /// External SDK tree laid out like upstream's include/ (DIR/gadget/*.h, DIR/gadget/<arch>/vmlinux.h), searched before the bundled one
    #[arg(long, value_name = "DIR")]
    sdk_dir: Option<PathBuf>,
    /// Extra include directory (repeatable)
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    include: Vec<PathBuf>,
    /// Create or update gadget.yaml from the object: adds what is missing, never changes an existing entry (even an empty one), keeps unknown keys and order; nothing is written when nothing is missing
    #[arg(long)]
    update_metadata: bool,
    /// Check gadget.yaml against the object; `--validate-metadata=false` turns it off
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    validate_metadata: bool,
    /// Also write each platform's stripped object to DIR as `<name>.<arch>.bpf.o`
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Output format of the result (text, or json: one object per gadget, JSON lines), or upstream's directory for the generated files
    #[arg(short = 'o', long = "output", value_name = "FORMAT|DIR", default_value = "columns", value_parser = parse_output)]
    output: BuildOutput,
    /// Upstream's "build using local tools": accepted and ignored (ig-image always builds locally)
    #[arg(short = 'l', long)]
    local: bool,
    /// Upstream's builder container image: accepted and ignored (no Docker here)
    #[arg(long, value_name = "IMAGE")]
    builder_image: Option<String>,
    /// Upstream's builder image pull policy: accepted and ignored (no Docker here)
    #[arg(long, value_name = "always|missing|never", value_parser = ["always", "missing", "never"])]
    builder_image_pull: Option<String>,
    /// Compiler processes at once (default: number of cores)
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Do not read or write the build cache (compiled objects); the unpacked SDK and the tools' versions (keyed by each tool's path, size and mtime) are still reused
    #[arg(long)]
    no_cache: bool,
    /// Add a btfgen layer: minimized kernel BTF (bpftool gen min_core_btf) for every kernel of --btfhub-archive, so the gadget runs on kernels without /sys/kernel/btf/vmlinux
    #[arg(long, requires = "btfhub_archive")]
    btfgen: bool,
    /// A btfhub-archive tree: <ID>/<VERSION_ID>/<x86_64|arm64>/<release>.btf.tar.xz
    #[arg(long, value_name = "DIR", requires = "btfgen")]
    btfhub_archive: Option<PathBuf>,
    /// Attach an SPDX 2.3 SBOM (every source and header clang read, tools, crates, objects) as an OCI 1.1 referrer of the image
    #[arg(long)]
    sbom: bool,
    /// Attach a SLSA v1 provenance statement (build definition, resolved dependencies, builder) as an OCI 1.1 referrer
    #[arg(long)]
    provenance: bool,
    /// Also sign the SBOM and provenance with this cosign key (DSSE envelopes in sigstore bundles, as `cosign attest`)
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

/// `-o`: a format name, or (upstream's meaning) a directory.
#[derive(Debug, Clone)]
enum BuildOutput {
    Format(Format),
    Dir(PathBuf),
}

fn parse_output(s: &str) -> Result<BuildOutput, String> {
    use clap::ValueEnum as _;
    match Format::from_str(s, false) {
        Ok(f) => Ok(BuildOutput::Format(f)),
        Err(_) if s.is_empty() => Err("empty value: a format or a directory".into()),
        Err(_) => Ok(BuildOutput::Dir(PathBuf::from(s))),
    }
}

struct Reporter {
    quiet: bool,
}

impl BuildReporter for Reporter {
    fn started(&self, dir: &Path, platforms: &[Platform]) {
        if !self.quiet {
            let list: Vec<&str> = platforms.iter().map(|p| p.oci_arch()).collect();
            output::status(
                "Building",
                format!("{} [{}]", gadget_name(dir), list.join(", ")),
            );
        }
    }
}

/// How a gadget directory is named on status lines: its own name (`.` says nothing), then
/// `from PATH` when the path is not simply the name.
fn gadget_name(dir: &Path) -> String {
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let shown = dir.display().to_string();
    if shown.trim_end_matches('/') == name || shown == "." || shown == "./" {
        name
    } else {
        format!("{name} from {shown}")
    }
}

pub fn exec(global: &GlobalArgs, args: BuildArgs) -> anyhow::Result<ExitStatus> {
    let (format, upstream_output_dir) = match &args.output {
        BuildOutput::Format(f) => (*f, None),
        BuildOutput::Dir(d) => (Format::Columns, Some(d.clone())),
    };
    if args.local || args.builder_image.is_some() || args.builder_image_pull.is_some() {
        output::note(
            "-l/--local, --builder-image and --builder-image-pull are ignored: ig-image always builds locally, without Docker",
        );
    }
    if let Some(dir) = &upstream_output_dir {
        anyhow::ensure!(
            args.dirs.len() == 1,
            "`-o {}` keeps one gadget's generated files (upstream's meaning): build one directory at a time, or use --output-dir",
            dir.display()
        );
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the output directory `{}`", dir.display()))?;
    }
    // Opened when the first image is ready: a build that fails creates no store.
    let store = build::StoreTarget::lazy(global.store_path());
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        .max(1);
    if args.key.is_some() && !args.sbom && !args.provenance {
        return Err(Hinted::new(
            "`--key` signs the attestations, and none was asked for",
            "add `--sbom` and/or `--provenance`; sign the image itself with `ig-image sign`",
        )
        .into());
    }
    let key = match &args.key {
        Some(path) => {
            let password = ig_image_sign::keys::Password::from_env_or_prompt(false)?;
            Some(std::sync::Arc::new(ig_image_sign::keys::load_private_key(
                path, &password,
            )?))
        }
        None => None,
    };
    let opts = BuildOptions {
        dirs: args.dirs.clone(),
        tag: args.tag.clone(),
        file: args.file.clone(),
        platforms: args.platform.clone().map(|p| p.0),
        sdk_dir: args.sdk_dir.clone(),
        include_dirs: args.include.clone(),
        update_metadata: args.update_metadata,
        validate_metadata: args.validate_metadata,
        output_dir: args.output_dir.clone(),
        upstream_output_dir,
        jobs,
        cache_dir: (!args.no_cache).then(build::cache::default_dir),
        btfgen_archive: args.btfhub_archive.clone(),
        attest: ig_image_build::attest::AttestOptions {
            sbom: args.sbom,
            provenance: args.provenance,
            key,
        },
    };
    if let Some(sdk) = &opts.sdk_dir {
        anyhow::ensure!(
            sdk.is_dir(),
            "`--sdk-dir {}`: not a directory",
            sdk.display()
        );
    }
    if opts.tag.is_some()
        && opts.dirs.len() > 1
        && !opts.tag.as_deref().unwrap_or("").contains("{name}")
    {
        return Err(Hinted::new(
            format!(
                "`-t {}` would give {} gadgets the same name",
                opts.tag.as_deref().unwrap_or(""),
                opts.dirs.len()
            ),
            "use `{name}` in the tag, e.g. `-t 'localhost:5000/gadgets/{name}:v1'`",
        )
        .into());
    }
    let reporter = Reporter {
        quiet: format != Format::Columns,
    };
    let results = build::build_all(&store, &opts, &reporter);
    let mut failed = 0;
    for (dir, result) in opts.dirs.iter().zip(results) {
        match result {
            Ok(built) => report_success(&built, format)?,
            Err(error) => {
                failed += 1;
                report_failure(dir, error, format)?;
            }
        }
    }
    if failed > 0 && opts.dirs.len() > 1 {
        output::warning(format!(
            "{failed} of {} gadgets failed to build",
            opts.dirs.len()
        ));
    }
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn report_success(built: &BuiltImage, format: Format) -> anyhow::Result<()> {
    for w in &built.warnings {
        output::warning(w);
    }
    if format == Format::Columns {
        if built.metadata_updated {
            output::status(
                "Updated",
                format!("{}", built.dir.join("gadget.yaml").display()),
            );
        }
        let cache_note = if built.cached_objects > 0 {
            format!(
                ", {} of {} objects from cache",
                built.cached_objects,
                built.platforms.len()
            )
        } else {
            String::new()
        };
        output::status(
            "Finished",
            format!(
                "{} in {} ms{cache_note}",
                gadget_name(&built.dir),
                built.millis
            ),
        );
        for a in &built.attestations {
            output::status(
                "Attached",
                format!(
                    "{} {} ({}) {}",
                    if a.signed { "signed" } else { "unsigned" },
                    a.kind,
                    a.artifact_type,
                    a.manifest
                ),
            );
        }
        outln!("Successfully built {}@{}", built.reference, built.digest);
    } else {
        output::print_data(built, format).context("cannot print the result")?;
    }
    Ok(())
}

fn report_failure(dir: &Path, error: BuildError, format: Format) -> anyhow::Result<()> {
    let error = anyhow::Error::new(error).context(format!("failed to build `{}`", dir.display()));
    output::print_error(&error);
    if format != Format::Columns {
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        output::print_data(&serde_json::json!({"dir": dir, "error": causes}), format)?;
    }
    Ok(())
}
