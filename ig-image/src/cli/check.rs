//! `ig-image check`.

use gadget_store::hint::Hinted;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use gadget_facts::platform::Platform;
use gadget_store::Reference;
use ig_image_build::{self as build, BuildOptions, SilentReporter};
use ig_image_check::compat::{self, KernelReport, Severity, TargetKernel};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Arguments of `ig-image check`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image check trace_exec:dev                                  (the running kernel)\n  \
ig-image check . --kernel-btf 6.1-amd64.btf --kernel-btf 6.1-arm64.btf:arm64\n  \
ig-image check trace_exec:dev --kernel-btf /sys/kernel/btf/vmlinux --kernel-btf old.btf -o json\n\n\
A kernel BTF file is a raw BTF blob, as /sys/kernel/btf/vmlinux is (btfhub-archive's files once \
unpacked, or `bpftool btf dump` input). Its architecture picks the object checked against it: \
say it with FILE:ARCH, or let it be inferred (big-endian: s390x; else from the register structs: \
x86's pt_regs.r15, arm64's user_pt_regs.pstate, powerpc's gpr, riscv's pt_regs.epc).\n\n\
Checked per kernel: every CO-RE relocation (resolved as libbpf does), every attach point \
(tracepoints through btf_trace_<name>, syscall tracepoints through the syscall's function, \
kprobe/fentry functions, LSM hooks, iterator targets), program, attach and map types; on the \
running kernel also that kprobes exist. Exit 1 when a kernel fails. Docs: docs/compatibility.md\n\n\
JSON (-o json): one line per kernel: {\"kernel\", \"btf\", \"arch\", \"arch_source\", \"ok\",\n\
\"relocations\", \"programs\", \"findings\": [...]}")]
pub struct CheckArgs {
    /// An image in the store, a gadget directory (built first, into a throwaway store), or an eBPF object file. A bare NAME that is both an image and a path here is the image (`./NAME` for the path)
    #[arg(value_name = "IMAGE|DIR")]
    target: String,
    /// A kernel's BTF to check against, FILE or FILE:ARCH (repeatable; default: the running kernel's /sys/kernel/btf/vmlinux)
    #[arg(long = "kernel-btf", value_name = "FILE[:ARCH]")]
    kernel_btf: Vec<String>,
    /// Output format: a table, or json (one object per kernel, JSON lines)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

fn load_targets(specs: &[String]) -> anyhow::Result<Vec<TargetKernel>> {
    if specs.is_empty() {
        return Ok(vec![TargetKernel::running().map_err(|e| {
            Hinted::wrap(
                "cannot check against the running kernel",
                "pass `--kernel-btf FILE` for another kernel",
                e,
            )
        })?]);
    }
    specs
        .iter()
        .map(|s| {
            if s == compat::RUNNING_BTF {
                TargetKernel::running()
            } else {
                TargetKernel::load(s)
            }
            .map_err(anyhow::Error::from)
        })
        .collect()
}

/// Whether `target` names an image in the store (for a bare name that is also a path).
fn is_stored_image(global: &GlobalArgs, target: &str) -> bool {
    let Ok(reference) = Reference::parse(target) else {
        return false;
    };
    global.store_path().join("index.json").exists()
        && global
            .open_store()
            .is_ok_and(|store| store.resolve(&reference).is_ok())
}

fn objects(global: &GlobalArgs, target: &str) -> anyhow::Result<Vec<(Platform, Vec<u8>)>> {
    let path = Path::new(target);
    // A bare name (no `/`) that is both a path here and an image in the store is the image:
    // `check` is mostly run on what was just built. `./NAME` always means the path.
    let bare = !target.contains('/') && target != "." && target != "..";
    if bare && path.exists() && is_stored_image(global, target) {
        output::note(format!(
            "`{target}` is both an image in the store and a path here: checking the image (write `./{target}` for the path)"
        ));
    } else if path.is_dir() {
        return build_dir(path);
    } else if path.is_file() {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read `{target}`"))?;
        return Ok(compat::objects_from_file(&bytes)?);
    }

    let reference = Reference::parse(target)?;
    let store = global.open_store()?;
    compat::objects_from_store(&store, &reference)
        .with_context(|| format!("cannot read the image `{target}`"))
}

/// Builds a gadget directory into a throwaway store (the build cache is used) and returns its
/// objects.
fn build_dir(dir: &Path) -> anyhow::Result<Vec<(Platform, Vec<u8>)>> {
    let tmp = tempfile::tempdir().context("cannot create a temporary store")?;
    let store = gadget_store::Store::open(tmp.path().join("store"))?;
    let opts = BuildOptions {
        dirs: vec![dir.to_path_buf()],
        tag: Some("ig-image-check:tmp".to_string()),
        file: None,
        platforms: None,
        sdk_dir: None,
        include_dirs: Vec::new(),
        update_metadata: false,
        validate_metadata: false,
        output_dir: None,
        upstream_output_dir: None,
        jobs: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        cache_dir: Some(build::cache::default_dir()),
        btfgen_archive: None,
        attest: Default::default(),
    };
    output::status("Building", dir.display());
    let built = build::build_all(
        &build::StoreTarget::open(store.clone()),
        &opts,
        &SilentReporter,
    )
    .pop()
    .expect("one result per directory")
    .with_context(|| format!("failed to build `{}`", dir.display()))?;
    let reference = Reference::parse(&built.reference)?;
    Ok(compat::objects_from_store(&store, &reference)?)
}

pub fn exec(global: &GlobalArgs, args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let objects = objects(global, &args.target)?;
    anyhow::ensure!(
        !objects.is_empty(),
        "`{}` has no eBPF program: nothing to check against a kernel",
        args.target
    );
    let objects = compat::parse_objects(objects)?;
    let targets = load_targets(&args.kernel_btf)?;
    let reports: Vec<KernelReport> = targets
        .iter()
        .map(|t| compat::check_kernel(&objects, t))
        .collect();
    if args.output == Format::Columns {
        print_table(&reports)?;
    } else {
        for r in &reports {
            output::print_data(r, args.output)?;
        }
    }
    Ok(if reports.iter().all(|r| r.ok) {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn print_table(reports: &[KernelReport]) -> anyhow::Result<()> {
    let colour = output::colour_stdout();
    let good = output::paint("ok", output::Paint::Good, colour);
    let bad = output::paint("FAIL", output::Paint::Bad, colour);
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let errors: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            let warnings = r.findings.len() - errors.len();
            // RESULT is the last column, so colour codes cannot upset the alignment.
            let result = match (errors.first(), warnings) {
                (None, 0) => good.clone(),
                (None, w) => format!("{good} ({w} warning(s), below)"),
                (Some(first), _) if errors.len() == 1 => format!("{bad}: {first}"),
                (Some(first), _) => {
                    format!("{bad}: {first} (+{} more, below)", errors.len() - 1)
                }
            };
            vec![
                r.kernel.clone(),
                r.arch.clone(),
                r.relocations.to_string(),
                r.programs.to_string(),
                result,
            ]
        })
        .collect();
    output::print_table(&["KERNEL", "ARCH", "RELOS", "PROGS", "RESULT"], &rows)?;
    for r in reports {
        let rest: Vec<_> = r
            .findings
            .iter()
            .enumerate()
            .filter(|(i, f)| !(*i == 0 && f.severity == Severity::Error))
            .map(|(_, f)| f)
            .collect();
        if rest.is_empty() {
            continue;
        }
        outln!("\n{} ({}):", r.kernel, PathBuf::from(&r.btf).display());
        for f in rest {
            let tag = match f.severity {
                Severity::Error => output::paint("error", output::Paint::Bad, colour),
                Severity::Warning => output::paint("warning", output::Paint::Warn, colour),
            };
            outln!("  {tag}: {f}");
        }
    }
    Ok(())
}
