//! `ig-image run`: prove an image in the real kernel (runtime-min).

use gadget_store::hint::Hinted;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use runtime_min::load::LoadOptions;
use runtime_min::prove::{self, Format, ProveError, Target};
use runtime_min::session::{self, RunOptions};

use super::{ExitStatus, GlobalArgs};

mod matrix;

/// Record output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// JSON lines: one object per record, fields flattened with dotted names
    Json,
    /// Aligned columns driven by gadget.yaml's `columns.*` field annotations
    Columns,
}

/// Run a gadget in the real kernel: load every map and program through the verifier (CO-RE
/// against this kernel's BTF), attach the programs by section, and print the records of its data
/// sources (tracers, snapshots, map iterators) until --timeout, --max-events or Ctrl-C. Nothing
/// stays loaded afterwards, also after a failure. Needs root (or CAP_BPF, CAP_PERFMON and
/// CAP_SYS_ADMIN).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ig-image run trace_exec --param comm=bash\n  \
ig-image run trace_open --param failed=true --timeout 10s -o json\n  \
ig-image run --verify-only trace_exec          (CI smoke test: exit 0 only if every program loads)\n  \
ig-image run trace_exec --kernel debian:bullseye --kernel debian:sid --exec /bin/true\n\n\
A load failure is classified (missing-btf, core-relocation, unknown-helper, unknown-program-type,\n\
unknown-map-type, attach-point-missing, permission, verifier) and shows the end of the verifier\n\
log; -v shows all of it. With --kernel, each image is proven on each kernel in a throwaway QEMU\n\
microVM (docs/kernels.md). Docs: docs/proving.md\n\n\
JSON (-o json): one line per record (fields flattened with dotted names); with --verify-only one\n\
object {\"gadget\", \"ok\", \"programs\", \"load\", ...}, plus \"verification\" when --public-keys\n\
verified the image. A verified signature is also reported on stderr (`Verified ...`). With\n\
--kernel: one JSON line per image x kernel, each with \"kernel\"."
)]
pub struct RunArgs {
    /// The image (e.g. `trace_exec`, `localhost:5000/gadgets/trace_exec:v1`) or an eBPF object
    /// file; several with --kernel
    #[arg(value_name = "IMAGE", required_unless_present = "merge")]
    images: Vec<String>,
    /// Set a gadget parameter (repeatable). Keys come from gadget.yaml `params.ebpf` (e.g. `pid`,
    /// `comm`, `failed`); the variable name works too
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Stop after this long (500ms, 5s, 2m). Default: until Ctrl-C; a snapshot-only gadget stops
    /// after its snapshot
    #[arg(long, value_name = "DUR", value_parser = prove::parse_duration)]
    timeout: Option<Duration>,
    /// Stop after this many records
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Output format (default: columns on a terminal, json otherwise)
    #[arg(short = 'o', long = "output", value_enum)]
    output: Option<RunFormat>,
    /// Only load every program through the verifier, check that each attach point exists,
    /// report per program and unload; exit 0 only if everything loads
    #[arg(long)]
    verify_only: bool,
    /// With --verify-only: really attach every program and detach it again (slower: each detach
    /// waits for the kernel's RCU grace period)
    #[arg(long, requires = "verify_only")]
    attach: bool,
    /// Kernel BTF for CO-RE relocations (default: /sys/kernel/btf/vmlinux; without it, the
    /// image's btfgen entry for this kernel)
    #[arg(long, value_name = "FILE")]
    kernel_btf: Option<PathBuf>,
    /// Use this platform's manifest instead of the host's (same byte order only)
    #[arg(long, value_name = "ARCH")]
    platform: Option<String>,
    /// gadget.yaml to use with an object file (params, column annotations)
    #[arg(long, value_name = "FILE")]
    metadata: Option<PathBuf>,
    /// How often map iterators are dumped
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = prove::parse_duration)]
    interval: Duration,
    /// Mount proc, sysfs, bpffs, tracefs and debugfs where they are absent, as in a fresh
    /// container such as `kubectl debug --profile=sysadmin node/N` (as upstream `ig`); on by
    /// default in ig-image's container image
    #[arg(long, env = "IG_IMAGE_AUTO_MOUNT_FILESYSTEMS")]
    auto_mount_filesystems: bool,
    /// Under sudo, run from the invoking user's store (SUDO_USER's ~/.ig/oci-store), read only
    /// (as upstream `sudo ig run --oci-store-user`); never pulls. Without sudo, or when the
    /// invoking user is root: the usual store
    #[arg(long)]
    oci_store_user: bool,
    /// Signature and allowed-gadgets policy for images (docs/signing.md)
    #[command(flatten)]
    policy: super::common::PolicyArgs,
    /// Prove on this kernel in a microVM instead of the host's (repeatable): debian:<suite>
    /// (bullseye, bookworm, trixie, sid…), a linux-image-*.deb, or a vmlinuz (with --modules).
    /// One record per image x kernel; --timeout bounds each guest (default 180s)
    #[arg(long = "kernel", value_name = "SPEC")]
    kernels: Vec<String>,
    /// With a vmlinuz --kernel: the directory holding its modules (virtio, 9p)
    #[arg(long, value_name = "DIR", requires = "kernels")]
    modules: Option<PathBuf>,
    /// With --kernel: run this workload in the guest while the gadget is attached (split on
    /// spaces, no shell), e.g. `--exec /bin/true`; its records go into the record
    #[arg(long, value_name = "'CMD ARGS'", requires = "kernels")]
    exec: Option<String>,
    /// With --kernel: guests at once (default: the number of CPUs)
    #[arg(short = 'j', long, value_name = "N", requires = "kernels")]
    jobs: Option<usize>,
    /// With --kernel: the ig-image binary the guests run (default: this one). A --platform the
    /// host cannot run (arm64 here) needs a static ig-image built for it, e.g. by
    /// scripts/cross-arm64
    #[arg(long, value_name = "PATH", requires = "kernels")]
    guest_binary: Option<PathBuf>,
    /// Merge JSON-lines records of earlier --kernel runs (files) into one table; exit 1 if any
    /// cell failed
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "kernels")]
    merge: Vec<PathBuf>,
}

/// The store `run` reads: `--oci-store-user`'s (see [`RunArgs::oci_store_user`]) or the usual.
fn run_store_path(global: &GlobalArgs, oci_store_user: bool) -> anyhow::Result<PathBuf> {
    if !oci_store_user || !rustix::process::geteuid().is_root() {
        return Ok(global.store_path());
    }
    // Root without sudo, or root through sudo: root is the invoking user, its store the usual.
    let user = match std::env::var("SUDO_USER") {
        Ok(u) if !u.is_empty() && u != "root" => u,
        _ => return Ok(global.store_path()),
    };
    let path = gadget_store::user_store_path(&user).with_context(|| {
        format!("--oci-store-user: no user `{user}` (SUDO_USER) in the passwd database")
    })?;
    // Read only: nothing may be created in the user's store (a root-owned file there would
    // lock its owner out), so it must already be complete.
    for part in ["oci-layout", "index.json", gadget_store::layout::LOCK_FILE] {
        if !path.join(part).exists() {
            return Err(Hinted::new(
                format!(
                    "--oci-store-user: `{}` is not a store ig-image or ig has written (no `{part}`): nothing to run, and nothing is pulled",
                    path.display()
                ),
                format!("build or pull the image as `{user}` first"),
            )
            .into());
        }
    }
    Ok(path)
}

pub fn exec(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitStatus> {
    if !args.kernels.is_empty() || !args.merge.is_empty() {
        return matrix::exec(global, &args);
    }
    let [image] = &args.images[..] else {
        anyhow::bail!("several images need --kernel (the host's kernel proves one at a time)");
    };
    let full_log = global.verbose > 0;
    if args.auto_mount_filesystems {
        for m in runtime_min::host_fs::auto_mount()? {
            eprintln!("Mounted {} at {}", m.fstype, m.path.display());
        }
    }
    let target = Target::from_arg(image, args.metadata.clone(), args.platform.clone());
    let store_path = run_store_path(global, args.oci_store_user)?;
    let mut verification = None;
    if let Target::Image { reference, .. } = &target {
        let r = gadget_store::Reference::parse(reference)?;
        let store = gadget_store::Store::open(&store_path).with_context(|| {
            format!("cannot open the image store at `{}`", store_path.display())
        })?;
        let accepted = args
            .policy
            .check(&store, &r)
            .with_context(|| format!("cannot run `{}`", image))?;
        verification = Some(accepted);
    }
    let gadget = target
        .open(|| {
            gadget_store::Store::open(&store_path).map_err(|source| ProveError::Store {
                path: store_path.clone(),
                source,
            })
        })
        .with_context(|| format!("cannot run `{}`", image))?;
    let params = args
        .params
        .iter()
        .map(|p| runtime_min::params::split_arg(p))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid --param")?;
    let load = LoadOptions {
        kernel_btf: args.kernel_btf.clone(),
        params,
        full_log,
    };
    let format = match args.output {
        Some(RunFormat::Json) => Format::Json,
        Some(RunFormat::Columns) => Format::Columns,
        None if std::io::stdout().is_terminal() => Format::Columns,
        None => Format::Json,
    };

    if args.verify_only {
        let report = prove::verify(&gadget, &load, args.attach)
            .with_context(|| format!("cannot verify `{}`", image))?;
        let mut out = crate::output::Out;
        match format {
            Format::Json => {
                let mut doc = serde_json::to_value(&report)?;
                if let Some(accepted) = &verification {
                    doc["verification"] = super::common::verification_json(accepted);
                }
                writeln!(out, "{doc}")?;
            }
            Format::Columns => {
                if let Some(line) = verification.as_ref().and_then(|a| {
                    super::common::verification_line(a, crate::output::colour_stdout())
                }) {
                    writeln!(out, "{line}")?;
                }
                write!(out, "{}", prove::render_verify(&report, full_log))?;
            }
        }
        return Ok(if report.ok {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        });
    }

    if let Some(line) = verification
        .as_ref()
        .and_then(|a| super::common::verification_line(a, crate::output::colour_stderr()))
    {
        eprintln!("{line}");
    }
    let stop = session::stop_on_signals();
    let opts = RunOptions {
        timeout: args.timeout,
        max_events: args.max_events,
        interval: args.interval,
        full_log,
        ..RunOptions::default()
    };
    let mut stdout = std::io::stdout().lock();
    let summary = prove::run_gadget(
        &gadget,
        &load,
        &opts,
        format,
        &mut stdout,
        stop,
        &mut |line| eprintln!("{line}"),
    )
    .with_context(|| format!("cannot run `{}`", image))?;
    stdout.flush()?;
    eprintln!("{}", prove::render_summary(&summary));
    Ok(ExitStatus::Success)
}
