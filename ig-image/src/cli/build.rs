//! `ig-image build`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use ig_image::build::{self, BuildError, BuildOptions, BuildReporter, BuiltImage};
use ig_image::platform::{self, Platform};

use super::{ExitStatus, GlobalArgs};
use crate::output::{self, Format};

/// Arguments of `ig-image build`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image build sample-gadgets/trace_open -t trace_open:dev\n  \
ig-image build gadgets/* -t 'localhost:5000/gadgets/{name}:v1' -o json\n  \
SOURCE_DATE_EPOCH=0 ig-image build . --platform amd64,arm64,s390x --sdk-dir ~/ig/include\n  \
ig-image build . -t trace_open:v1 --sbom --provenance --key cosign.key   (docs/supply-chain.md)\n\n\
build.yaml keys: ebpfsource, metadata, wasm (bundled as is), platforms, includeDirs, and cflags\n\
(a YAML list, one compiler argument per item, never through a shell). See docs/authoring.md.")]
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
    /// Create or update gadget.yaml from the object (keeps unknown keys, key order and existing entries)
    #[arg(long)]
    update_metadata: bool,
    /// Check gadget.yaml against the object; `--validate-metadata=false` turns it off
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    validate_metadata: bool,
    /// Also write each platform's stripped object to DIR as `<name>.<arch>.bpf.o`
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Output format of the result: text, or json (one object per gadget, JSON lines)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
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

/// A parsed `--platform` list (a newtype so clap treats it as one value).
#[derive(Debug, Clone)]
struct PlatformList(Vec<Platform>);

fn parse_platforms(s: &str) -> Result<PlatformList, String> {
    let list = platform::parse_list(s).map_err(|e| e.to_string())?;
    if list.is_empty() {
        return Err("the platform list is empty".into());
    }
    Ok(PlatformList(list))
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
                format!("{} ({})", dir.display(), list.join(", ")),
            );
        }
    }
}

pub fn exec(global: &GlobalArgs, args: BuildArgs) -> anyhow::Result<ExitStatus> {
    // Opened when the first image is ready: a build that fails creates no store.
    let store = build::StoreTarget::lazy(global.store_path());
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        .max(1);
    if args.key.is_some() && !args.sbom && !args.provenance {
        anyhow::bail!(
            "`--key` signs the attestations, and none was asked for\nhint: add `--sbom` and/or `--provenance`; sign the image itself with `ig-image sign`"
        );
    }
    let key = match &args.key {
        Some(path) => {
            let password = ig_image::sign::keys::Password::from_env_or_prompt(false)?;
            Some(std::sync::Arc::new(ig_image::sign::keys::load_private_key(
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
        jobs,
        cache_dir: (!args.no_cache).then(build::cache::default_dir),
        btfgen_archive: args.btfhub_archive.clone(),
        attest: ig_image::attest::AttestOptions {
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
        anyhow::bail!(
            "`-t {}` would give {} gadgets the same name\nhint: use `{{name}}` in the tag, e.g. `-t 'localhost:5000/gadgets/{{name}}:v1'`",
            opts.tag.as_deref().unwrap_or(""),
            opts.dirs.len()
        );
    }
    let reporter = Reporter {
        quiet: args.output != Format::Columns,
    };
    let results = build::build_all(&store, &opts, &reporter);
    let mut failed = 0;
    for (dir, result) in opts.dirs.iter().zip(results) {
        match result {
            Ok(built) => report_success(&built, args.output)?,
            Err(error) => {
                failed += 1;
                report_failure(dir, error, args.output)?;
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
            format!("{} in {} ms{cache_note}", built.dir.display(), built.millis),
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
        println!("Successfully built {}@{}", built.reference, built.digest);
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
