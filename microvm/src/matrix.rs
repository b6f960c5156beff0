//! Proving images on kernels: one throwaway microVM per image × kernel, several in parallel,
//! each giving a [`Record`] — also when the guest panics, hangs or cannot mount its root.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use crate::cache::PreparedKernel;
use crate::guest::{GuestJob, GuestResult};
use crate::record::{self, BootStats, Record};
use crate::spec::Arch;
use crate::vm::{self, Accel, Boot};

/// Console lines kept in a failed record.
const CONSOLE_LINES: usize = 20;

/// How to run the matrix.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// Guest architecture.
    pub arch: Arch,
    /// Accelerator.
    pub accel: Accel,
    /// Guests at once.
    pub jobs: usize,
    /// Wall-clock bound per guest.
    pub timeout: Duration,
    /// A workload to run while attached.
    pub exec: Option<Vec<String>>,
    /// Only verify.
    pub verify_only: bool,
    /// More `ig-image run` arguments for the guest.
    pub run_args: Vec<String>,
    /// The ig-image binary (run in the guest from the host root): for a guest of another
    /// architecture, a static build for that architecture.
    pub exe: PathBuf,
    /// The guest's static busybox for kernels whose cache entry has none (the host's
    /// `/bin/busybox` for the host's architecture).
    pub busybox: Option<PathBuf>,
    /// A store holding every image (copied for each guest).
    pub store: PathBuf,
}

/// One kernel of the matrix.
#[derive(Debug, Clone)]
pub struct MatrixKernel {
    /// The spec as the user wrote it.
    pub label: String,
    /// Its files.
    pub kernel: PreparedKernel,
}

/// Runs every image on every kernel; `on_record` sees each record as it completes. Records come
/// back in image-major order.
pub fn run(
    images: &[String],
    kernels: &[MatrixKernel],
    opts: &MatrixOptions,
    on_record: &(dyn Fn(&Record) + Sync),
) -> anyhow::Result<Vec<Record>> {
    let qemu = vm::qemu_binary(opts.arch).with_context(|| {
        format!(
            "`{}` is not installed (Debian package {})",
            opts.arch.qemu(),
            opts.arch.qemu_package()
        )
    })?;
    let work = tempfile::Builder::new()
        .prefix("ig-image-vm-")
        .tempdir()
        .context("cannot create a work directory")?;
    let mut initrds = Vec::new();
    for (i, k) in kernels.iter().enumerate() {
        let path = work.path().join(format!("initramfs-{i}.cpio"));
        let busybox = k
            .kernel
            .busybox_path()
            .or_else(|| opts.busybox.clone())
            .with_context(|| {
                format!(
                    "`{}`: no static busybox for {} guests (`ig-image kernels fetch --platform {} debian:bookworm` caches Debian's)",
                    k.label,
                    opts.arch.debian(),
                    opts.arch.debian()
                )
            })?;
        crate::initramfs::write(&path, &k.kernel.module_paths(), &busybox)
            .with_context(|| format!("cannot build the initramfs for `{}`", k.label))?;
        initrds.push(path);
    }
    let cells: Vec<(usize, usize)> = (0..images.len())
        .flat_map(|i| (0..kernels.len()).map(move |k| (i, k)))
        .collect();
    let results: Mutex<Vec<Option<Record>>> = Mutex::new(vec![None; cells.len()]);
    let next = AtomicUsize::new(0);
    let kvm_failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1).min(cells.len().max(1)) {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(i, k)) = cells.get(n) else { break };
                    let job_dir = work.path().join(format!("guest-{n}"));
                    let rec = prove_one(
                        &qemu,
                        &images[i],
                        &kernels[k],
                        &initrds[k],
                        &job_dir,
                        opts,
                        &kvm_failed,
                    )
                    .unwrap_or_else(|e| failed(&images[i], &kernels[k], opts, format!("{e:#}")));
                    on_record(&rec);
                    results.lock().expect("no poisoned lock")[n] = Some(rec);
                }
            });
        }
    });
    Ok(results
        .into_inner()
        .expect("no poisoned lock")
        .into_iter()
        .flatten()
        .collect())
}

fn failed(image: &str, k: &MatrixKernel, opts: &MatrixOptions, reason: String) -> Record {
    Record {
        image: image.to_string(),
        kernel: k.label.clone(),
        arch: opts.arch.debian().to_string(),
        kernel_release: k.kernel.meta.release.clone(),
        kernel_notes: k.kernel.meta.notes.clone(),
        ok: false,
        reason: Some(reason),
        boot: BootStats {
            accel: opts.accel.to_string(),
            ..BootStats::default()
        },
        ..Record::default()
    }
}

fn prove_one(
    qemu: &Path,
    image: &str,
    k: &MatrixKernel,
    initrd: &Path,
    job_dir: &Path,
    opts: &MatrixOptions,
    kvm_failed: &AtomicBool,
) -> anyhow::Result<Record> {
    std::fs::create_dir_all(job_dir)?;
    let store = job_dir.join("store");
    copy_dir(&opts.store, &store).context("cannot copy the store for the guest")?;
    let bound_ms = opts.timeout.as_millis() as u64;
    let job = GuestJob {
        exe: opts.exe.clone(),
        store,
        image: image.to_string(),
        run_args: opts.run_args.clone(),
        exec: opts.exec.clone(),
        verify_only: opts.verify_only,
        drain_ms: 500,
        exec_timeout_ms: bound_ms,
    };
    std::fs::write(job_dir.join("job.json"), serde_json::to_vec_pretty(&job)?)?;
    let console = job_dir.join("console.log");
    let kernel_path = k.kernel.kernel_path();
    let boot = Boot {
        arch: opts.arch,
        accel: if kvm_failed.load(Ordering::SeqCst) {
            Accel::Tcg
        } else {
            opts.accel
        },
        kernel: &kernel_path,
        initrd,
        job_dir,
        exe: &opts.exe,
        console: &console,
    };
    let (outcome, accel, accel_note) = boot_guest(qemu, boot, opts.timeout, kvm_failed)?;
    let mut rec = failed(image, k, opts, String::new());
    rec.boot = BootStats {
        accel: accel.to_string(),
        wall_ms: outcome.wall.as_millis() as u64,
        qemu_exit: outcome.exit_code,
        timed_out: outcome.timed_out,
        peak_rss_kib: outcome.peak_rss_kib,
        accel_note,
    };
    let result: Option<GuestResult> = std::fs::read(job_dir.join("result.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut console_tail = vm::console_tail(&console, CONSOLE_LINES);
    console_tail.extend(
        outcome
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("qemu: {l}")),
    );
    let Some(result) = result else {
        let mut reason = no_result_reason(&outcome, &console_tail, opts);
        if let Some(note) = k.kernel.meta.notes.first() {
            reason.push_str(&format!(" (kernel: {note})"));
        }
        rec.reason = Some(reason);
        rec.console = console_tail;
        return Ok(rec);
    };
    judge(&mut rec, &result, opts);
    if !rec.ok {
        rec.console = console_tail;
        rec.stderr = format!("{}{}", result.verify_stderr, result.run_stderr);
    }
    Ok(rec)
}

/// Why a guest left no result: it was killed at the timeout, or stopped (with the console or
/// QEMU line that tells why, when there is one).
fn no_result_reason(
    outcome: &vm::Bounded,
    console_tail: &[String],
    opts: &MatrixOptions,
) -> String {
    if outcome.timed_out {
        return format!(
            "the guest did not finish within {}s (killed)",
            opts.timeout.as_secs()
        );
    }
    let telling = console_tail.iter().find(|l| {
        l.contains("Kernel panic") || l.contains("ig-vm: cannot") || l.starts_with("qemu: ")
    });
    let detail = match telling {
        Some(l) => format!(": {}", l.trim()),
        None if console_tail.is_empty() => {
            ": the kernel printed nothing (it did not start)".to_string()
        }
        None => String::new(),
    };
    format!(
        "the guest stopped without a result (QEMU exit {}){detail}",
        outcome
            .exit_code
            .map_or("by signal".into(), |c| c.to_string()),
    )
}

/// Records the guest's result: the verify report, then (with `--exec`) the gadget run, and
/// whether the cell passed.
fn judge(rec: &mut Record, result: &GuestResult, opts: &MatrixOptions) {
    if !result.kernel_release.is_empty() {
        rec.kernel_release = result.kernel_release.clone();
    }
    rec.verify = result.verify.clone();
    rec.reason = match &result.verify {
        None => Some(format!(
            "`ig-image run --verify-only` failed (exit {}): {}",
            result.verify_exit.unwrap_or(-1),
            result
                .verify_stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no report")
        )),
        Some(v) => record::verify_reason(v),
    };
    if rec.reason.is_none() && opts.exec.is_some() && !opts.verify_only {
        let exec = result.exec.clone().unwrap_or_default();
        rec.reason = if let Some(e) = &exec.error {
            Some(e.clone())
        } else if result.run_exit != Some(0) {
            Some(format!(
                "the gadget run ended with exit {:?}: {}",
                result.run_exit,
                result
                    .run_stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
            ))
        } else {
            None
        };
        rec.events = Some(result.events.clone());
        rec.exec = Some(exec);
    }
    rec.ok = rec.reason.is_none();
}

/// Boots one guest. When KVM fails inside it (QEMU's [`vm::KVM_FAILURE`]: some hosts run the
/// accelerator probe under KVM but not a real kernel), the guest is stopped at once and booted
/// again under TCG, and `kvm_failed` makes the matrix's later guests start under TCG. Returns
/// the outcome, the accelerator that gave it, and a note when it fell back.
fn boot_guest(
    qemu: &Path,
    mut boot: Boot<'_>,
    timeout: Duration,
    kvm_failed: &AtomicBool,
) -> anyhow::Result<(vm::Bounded, Accel, Option<String>)> {
    let stop_on = (boot.accel == Accel::Kvm).then_some(vm::KVM_FAILURE);
    let outcome = vm::run_bounded(vm::command(qemu, &boot)?, timeout, stop_on)?;
    if !outcome.stopped {
        return Ok((outcome, boot.accel, None));
    }
    kvm_failed.store(true, Ordering::SeqCst);
    boot.accel = Accel::Tcg;
    // Nothing of the failed boot may pass for the retry's result.
    let _ = std::fs::remove_file(boot.job_dir.join("result.json"));
    let retry = vm::run_bounded(vm::command(qemu, &boot)?, timeout, None)?;
    let failure = format!("{} after {} ms", vm::KVM_FAILURE, outcome.wall.as_millis());
    vm::remember_kvm_failure(&failure);
    let note = format!(
        "KVM failed in this guest ({failure}; the probe guest had run): booted again under TCG"
    );
    Ok((retry, Accel::Tcg, Some(note)))
}

/// Copies a directory tree of regular files (no symlinks followed).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        let dest = to.join(e.file_name());
        if t.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else if t.is_file() {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}
