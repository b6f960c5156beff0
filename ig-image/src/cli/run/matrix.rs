//! `ig-image run --kernel SPEC…` (each image on each kernel in a microVM) and `run --merge`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use microvm::matrix::{self, MatrixKernel, MatrixOptions};
use microvm::record::{self, Record};
use microvm::{Arch, KernelCache, KernelSpec, cache, vm};
use runtime_min::prove::Target;

use super::{RunArgs, RunFormat};
use crate::cli::{ExitStatus, GlobalArgs};

/// The bound per guest when --timeout is not given.
const DEFAULT_GUEST_TIMEOUT: Duration = Duration::from_secs(180);

pub fn exec(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<ExitStatus> {
    let json = args.output == Some(RunFormat::Json);
    if !args.merge.is_empty() {
        if !args.images.is_empty() {
            bail!("--merge takes record files only, not images");
        }
        let records = record::read_records(&args.merge)?;
        return print(&records, json, true);
    }
    let arch = Arch::parse(args.platform.as_deref())?;
    let exec: Option<Vec<String>> = args
        .exec
        .as_ref()
        .map(|e| e.split_whitespace().map(str::to_string).collect())
        .filter(|v: &Vec<String>| !v.is_empty());
    if args.exec.is_some() && exec.is_none() {
        bail!("--exec needs a command");
    }
    let exe = guest_binary(args.guest_binary.as_deref(), arch)?;
    if let Some(program) = exec.as_ref().map(|e| Path::new(&e[0])) {
        check_workload(program, arch)?;
    }
    let accel = vm::choose_accel(arch);
    let cache = KernelCache::new(cache::default_dir());
    let kernels = fetch_kernels(args, &cache, arch)?;
    // The images: policy checked here; the guests get a copy of a store holding only them.
    let stage = tempfile::Builder::new()
        .prefix("ig-image-stage-")
        .tempdir()?;
    let stage_store = stage.path().join("store");
    let images = stage_images(global, args, stage.path(), &stage_store)?;

    let run_args = guest_run_args(args)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = MatrixOptions {
        arch,
        accel: accel.accel,
        jobs,
        timeout: args.timeout.unwrap_or(DEFAULT_GUEST_TIMEOUT),
        exec,
        verify_only: args.verify_only,
        run_args,
        exe,
        busybox: if arch.is_host() {
            Some(PathBuf::from(microvm::initramfs::BUSYBOX))
        } else {
            cache.any_busybox(arch)
        },
        store: stage_store,
    };
    eprintln!(
        "Proving {} image(s) on {} kernel(s) in microVMs ({}, {} at a time; {}: {})",
        images.len(),
        kernels.len(),
        arch.debian(),
        jobs,
        accel.accel.to_string().to_uppercase(),
        accel.reason
    );
    let printed = std::sync::Mutex::new(());
    let records = matrix::run(&images, &kernels, &opts, &|r: &Record| {
        let _guard = printed.lock();
        if json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
            let _ = out.flush();
        } else {
            eprintln!(
                "  {} on {}: {} ({:.1} s)",
                r.image,
                r.kernel,
                if r.ok { "ok" } else { "FAILED" },
                r.boot.wall_ms as f64 / 1000.0
            );
        }
    })?;
    print(&records, json, false)
}

/// Each `--kernel` from the kernel cache (fetched when missing), with its notes printed.
fn fetch_kernels(
    args: &RunArgs,
    cache: &KernelCache,
    arch: Arch,
) -> anyhow::Result<Vec<MatrixKernel>> {
    let mut kernels = Vec::new();
    for text in &args.kernels {
        let spec = KernelSpec::parse(text, args.modules.as_deref())?;
        let kernel = cache
            .ensure(&spec, arch, false, &mut |m| eprintln!("{text}: {m}"))
            .with_context(|| format!("kernel `{text}`"))?;
        for note in &kernel.meta.notes {
            eprintln!("{text}: note: {note}");
        }
        kernels.push(MatrixKernel {
            label: spec.label(),
            kernel,
        });
    }
    Ok(kernels)
}

/// The images for the guests: object files by absolute path; images checked against the
/// policy and copied into a store of their own at `stage_store` (under `stage`), which the
/// guests get a copy of.
fn stage_images(
    global: &GlobalArgs,
    args: &RunArgs,
    stage: &Path,
    stage_store: &Path,
) -> anyhow::Result<Vec<String>> {
    let staged = gadget_store::Store::open(stage_store)?;
    let mut images = Vec::new();
    let store_path = super::run_store_path(global, args.oci_store_user)?;
    for image in &args.images {
        match Target::from_arg(image, None, None) {
            Target::Object { path, .. } => images.push(absolute(&path)?.display().to_string()),
            Target::Image { reference, .. } => {
                let r = gadget_store::Reference::parse(&reference)?;
                let store = gadget_store::Store::open(&store_path).with_context(|| {
                    format!("cannot open the image store at `{}`", store_path.display())
                })?;
                args.policy
                    .check(&store, &r)
                    .with_context(|| format!("cannot run `{image}`"))?;
                let tar = stage.join("image.tar");
                store
                    .export(std::slice::from_ref(&r), &tar)
                    .with_context(|| format!("cannot copy `{image}` for the guests"))?;
                staged.import(&tar)?;
                std::fs::remove_file(&tar)?;
                images.push(image.clone());
            }
        }
    }
    drop(staged);
    Ok(images)
}

/// The `run` arguments each guest passes on: `--param`s, `--kernel-btf`, `--metadata` (paths
/// made absolute) and `--platform`.
fn guest_run_args(args: &RunArgs) -> anyhow::Result<Vec<String>> {
    let mut run_args = Vec::new();
    for p in &args.params {
        run_args.extend(["--param".to_string(), p.clone()]);
    }
    if let Some(btf) = &args.kernel_btf {
        run_args.extend([
            "--kernel-btf".to_string(),
            absolute(btf)?.display().to_string(),
        ]);
    }
    if let Some(m) = &args.metadata {
        run_args.extend(["--metadata".to_string(), absolute(m)?.display().to_string()]);
    }
    if let Some(p) = &args.platform {
        run_args.extend(["--platform".to_string(), p.clone()]);
    }
    Ok(run_args)
}

/// Prints the table (or, for merged records in JSON mode, the records), and the exit status.
fn print(records: &[Record], json: bool, merged: bool) -> anyhow::Result<ExitStatus> {
    let mut out = std::io::stdout().lock();
    if json {
        if merged {
            for r in records {
                writeln!(out, "{}", serde_json::to_string(r)?)?;
            }
        }
    } else {
        write!(out, "{}", record::render_table(records))?;
    }
    out.flush()?;
    Ok(if records.iter().all(|r| r.ok) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The ig-image binary the guests run: `--guest-binary`, else this one when the guest's
/// architecture is the host's. A guest of another architecture shares the host's root, so its
/// binary must be static (no dynamic loader of its architecture is there).
fn guest_binary(given: Option<&Path>, arch: Arch) -> anyhow::Result<PathBuf> {
    let Some(path) = given else {
        if arch.is_host() {
            return std::env::current_exe().context("cannot find the ig-image binary");
        }
        bail!(
            "--platform {a} boots {a} guests, which cannot run this ig-image: pass a static ig-image built for {a} with --guest-binary PATH (scripts/cross-arm64 builds one; docs/proving.md)",
            a = arch.debian()
        );
    };
    let path = absolute(path).context("--guest-binary")?;
    if arch.is_host() {
        let head = microvm::elf::read_head(&path).context("--guest-binary")?;
        if microvm::elf::arch_of(&head) != Some(arch) {
            bail!(
                "--guest-binary `{}` is not an ELF program for {}",
                path.display(),
                arch.debian()
            );
        }
    } else {
        microvm::elf::check_static_file(&path, arch).context("--guest-binary")?;
    }
    Ok(path)
}

/// Refuses an `--exec` program the guest cannot run: one built for another architecture than
/// the guest's (in an arm64 guest, the host's `/bin/true`). Such guests put busybox's applets
/// first on `PATH`, so `--exec true` works there.
fn check_workload(program: &Path, arch: Arch) -> anyhow::Result<()> {
    if arch.is_host() || !program.is_absolute() {
        return Ok(());
    }
    let Ok(head) = microvm::elf::read_head(program) else {
        return Ok(());
    };
    match microvm::elf::arch_of(&head) {
        Some(a) if a != arch => bail!(
            "--exec `{}` is a program for {}, which the {} guest cannot run; name one of busybox's applets instead (e.g. `--exec true`: the guest puts them first on PATH)",
            program.display(),
            a.debian(),
            arch.debian()
        ),
        _ => Ok(()),
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("cannot find `{}`", p.display()))
}
