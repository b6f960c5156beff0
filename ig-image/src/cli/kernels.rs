//! `ig-image kernels`: the cache of kernels for `run --kernel` (fetch, list, prune).

use crate::outln;
use clap::{Args, Subcommand};
use microvm::{Arch, KernelCache, KernelSpec, cache};

use super::{ExitStatus, GlobalArgs};
use crate::output::Format;

/// Manage the kernels `run --kernel` boots: only what booting needs is kept (the kernel, as an
/// uncompressed vmlinux on amd64, and its virtio/9p modules), in $IG_IMAGE_KERNELS_DIR, else
/// kernels/ in the build cache (~/.cache/ig-image/kernels). Once fetched, `run --kernel` works
/// offline.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ig-image kernels fetch debian:bullseye debian:bookworm debian:trixie debian:sid\n  \
ig-image kernels fetch --platform arm64 debian:bookworm\n  ig-image kernels list\n  \
ig-image kernels prune debian:sid\n\n\
debian:<suite> is the suite's current linux-image-*-<arch>, found in the suite's (and its security\n\
suite's) Packages index; each .deb must match the index's SHA256, and the index's InRelease\n\
signature is checked with gpgv and debian-archive-keyring when installed. Docs: docs/kernels.md"
)]
pub struct KernelsArgs {
    #[command(subcommand)]
    command: KernelsCommand,
}

#[derive(Debug, Subcommand)]
enum KernelsCommand {
    /// Download and prepare kernels (debian:<suite> or a linux-image-*.deb) into the cache
    Fetch {
        /// Kernel specs
        #[arg(value_name = "SPEC", required = true)]
        specs: Vec<String>,
        /// Architecture: amd64 (default) or arm64
        #[arg(long, value_name = "ARCH")]
        platform: Option<String>,
        /// Resolve again and replace the cached kernel when the archive has a newer one
        #[arg(long)]
        refresh: bool,
        /// Output format: text, or json (one array of the fetched entries, as `list -o json`)
        #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
        output: Format,
    },
    /// List the cached kernels
    #[command(visible_alias = "ls")]
    List {
        /// Output format: text, or json (one array: spec, arch, release, kernel, modules,
        /// packages, suite, trust, fetched, path, bytes)
        #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
        output: Format,
    },
    /// Remove cached kernels (all, or the specs given) and unfinished downloads
    Prune {
        /// Kernel specs (default: all)
        #[arg(value_name = "SPEC")]
        specs: Vec<String>,
        /// Architecture of the specs: amd64 (default) or arm64
        #[arg(long, value_name = "ARCH")]
        platform: Option<String>,
        /// Output format: text, or json ({"removed": [paths]})
        #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
        output: Format,
    },
}

/// One cached kernel as JSON: its metadata plus where it is and how big.
fn entry_json(k: &microvm::cache::PreparedKernel) -> serde_json::Value {
    let mut m = serde_json::to_value(&k.meta).unwrap_or_default();
    m["path"] = k.dir.display().to_string().into();
    m["bytes"] = k.size().into();
    m
}

pub fn exec(_global: &GlobalArgs, args: KernelsArgs) -> anyhow::Result<ExitStatus> {
    let cache = KernelCache::new(cache::default_dir());
    match args.command {
        KernelsCommand::Fetch {
            specs,
            platform,
            refresh,
            output,
        } => {
            let arch = Arch::parse(platform.as_deref())?;
            let mut fetched = Vec::new();
            for text in &specs {
                let spec = KernelSpec::parse(text, None)?;
                if matches!(spec, KernelSpec::Image { .. }) {
                    anyhow::bail!(
                        "`{text}`: a kernel image is not cached; pass it to `run --kernel` with --modules"
                    );
                }
                // With -o json, stderr carries only warnings and errors (docs/commands).
                let k = cache.ensure(&spec, arch, refresh, &mut |m| {
                    if output == Format::Columns {
                        eprintln!("{text}: {m}");
                    }
                })?;
                if output != Format::Columns {
                    fetched.push(entry_json(&k));
                    continue;
                }
                let pkgs: Vec<String> = k
                    .meta
                    .packages
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.version))
                    .collect();
                outln!(
                    "{text}: {} ({}), {} modules, {:.1} MB in {}",
                    k.meta.release,
                    if pkgs.is_empty() {
                        "local package".to_string()
                    } else {
                        pkgs.join(", ")
                    },
                    k.meta.modules.len(),
                    k.size() as f64 / 1e6,
                    k.dir.display()
                );
                if let Some(t) = &k.meta.trust {
                    outln!("  trust: {t}");
                }
            }
            if output != Format::Columns {
                crate::output::print_data(&fetched, output)?;
            }
        }
        KernelsCommand::List { output } => {
            let all = cache.list()?;
            if output != Format::Columns {
                let v: Vec<serde_json::Value> = all.iter().map(entry_json).collect();
                crate::output::print_data(&v, output)?;
            } else if all.is_empty() {
                eprintln!(
                    "no kernels cached in {} (ig-image kernels fetch debian:bookworm)",
                    cache.root.display()
                );
            } else {
                outln!(
                    "{:<20} {:<6} {:<28} {:>8}  FETCHED",
                    "SPEC",
                    "ARCH",
                    "RELEASE",
                    "SIZE"
                );
                for k in &all {
                    outln!(
                        "{:<20} {:<6} {:<28} {:>6.1}MB  {}",
                        k.meta.spec,
                        k.meta.arch,
                        k.meta.release,
                        k.size() as f64 / 1e6,
                        k.meta.fetched
                    );
                }
            }
        }
        KernelsCommand::Prune {
            specs,
            platform,
            output,
        } => {
            let arch = Arch::parse(platform.as_deref())?;
            let parsed = specs
                .iter()
                .map(|s| KernelSpec::parse(s, None).map(|k| (k, arch)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let removed = cache.prune(&parsed)?;
            if output == Format::Columns {
                for d in &removed {
                    outln!("removed {}", d.display());
                }
            } else {
                let paths: Vec<String> = removed.iter().map(|d| d.display().to_string()).collect();
                crate::output::print_data(&serde_json::json!({ "removed": paths }), output)?;
            }
        }
    }
    Ok(ExitStatus::Success)
}
