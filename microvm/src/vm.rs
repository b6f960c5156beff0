//! Booting a guest under QEMU (argument vectors only): the accelerator probe, the command line,
//! a wall-clock bound with kill by pid, the console's last lines and the peak memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use gadget_facts::env::IG_IMAGE_ACCEL;
use serde::{Deserialize, Serialize};

use crate::spec::Arch;

/// Guest memory.
pub const MEMORY_MIB: u32 = 256;

/// How the guest's CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// What the accelerator probe found.
#[derive(Debug, Clone, Serialize)]
pub struct AccelChoice {
    /// The accelerator to use.
    pub accel: Accel,
    /// Why.
    pub reason: String,
}

/// The QEMU binary for `arch`, if installed.
pub fn qemu_binary(arch: Arch) -> Option<PathBuf> {
    which::which(arch.qemu()).ok()
}

/// Chooses KVM only when it really runs a guest: `/dev/kvm` opens and a 64 KiB firmware that
/// writes to QEMU's debug-exit port runs under `-accel kvm` (on some hosts `/dev/kvm` exists but
/// cannot run unmodified guests). `IG_IMAGE_ACCEL=tcg|kvm` forces the choice. Probed once per
/// process.
pub fn choose_accel(arch: Arch) -> AccelChoice {
    static AMD64: OnceLock<AccelChoice> = OnceLock::new();
    match std::env::var(IG_IMAGE_ACCEL).as_deref() {
        Ok("tcg") => {
            return AccelChoice {
                accel: Accel::Tcg,
                reason: "IG_IMAGE_ACCEL=tcg".into(),
            };
        }
        Ok("kvm") => {
            return AccelChoice {
                accel: Accel::Kvm,
                reason: "IG_IMAGE_ACCEL=kvm".into(),
            };
        }
        _ => {}
    }
    if !arch.is_host() || arch != Arch::Amd64 {
        return AccelChoice {
            accel: Accel::Tcg,
            reason: format!("{} is emulated on this machine", arch.debian()),
        };
    }
    AMD64.get_or_init(probe_kvm).clone()
}

fn probe_kvm() -> AccelChoice {
    let tcg = |reason: String| AccelChoice {
        accel: Accel::Tcg,
        reason,
    };
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return tcg(format!("/dev/kvm: {e}"));
    }
    if let Some(note) = kvm_failure_marker().and_then(|p| std::fs::read_to_string(p).ok()) {
        return tcg(format!(
            "KVM failed in a guest earlier in this boot of the host ({})",
            note.trim()
        ));
    }
    let Some(qemu) = qemu_binary(Arch::Amd64) else {
        return tcg("qemu-system-x86_64 is not installed".into());
    };
    let Ok(dir) = tempfile::tempdir() else {
        return tcg("no temporary directory".into());
    };
    // Reset vector at 0xffff0: mov al,0x2a; out 0xf4,al; hlt.
    let mut bios = vec![0xf4u8; 64 << 10];
    bios[0xfff0..0xfff5].copy_from_slice(&[0xb0, 0x2a, 0xe6, 0xf4, 0xf4]);
    let bios_path = dir.path().join("probe.bin");
    if std::fs::write(&bios_path, &bios).is_err() {
        return tcg("cannot write the probe firmware".into());
    }
    let mut cmd = Command::new(qemu);
    cmd.args([
        "-M",
        "pc",
        "-accel",
        "kvm",
        "-cpu",
        "max",
        "-m",
        "16",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ])
    .arg("-bios")
    .arg(&bios_path)
    .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    match run_bounded(cmd, Duration::from_secs(5), None) {
        Ok(r) if r.exit_code == Some((0x2a << 1) | 1) => AccelChoice {
            accel: Accel::Kvm,
            reason: "KVM ran a probe guest".into(),
        },
        Ok(r) if r.timed_out => {
            tcg("KVM probe guest hung: /dev/kvm cannot run unmodified guests here".into())
        }
        Ok(r) => tcg(format!(
            "KVM probe guest failed (exit {:?}{})",
            r.exit_code,
            r.stderr
                .lines()
                .last()
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        )),
        Err(e) => tcg(format!("KVM probe: {e:#}")),
    }
}

/// What a bounded process did.
#[derive(Debug, Clone)]
pub struct Bounded {
    /// Exit code (`None`: killed by a signal).
    pub exit_code: Option<i32>,
    /// Killed after the bound.
    pub timed_out: bool,
    /// Killed because its stderr showed the `stop_on` text.
    pub stopped: bool,
    /// Wall time.
    pub wall: Duration,
    /// Peak resident memory (KiB) from `wait4`.
    pub peak_rss_kib: u64,
    /// Its stderr.
    pub stderr: String,
}

/// What QEMU prints when KVM cannot run an instruction of the guest (then it pauses the guest
/// and waits: it does not exit). Some hosts run the accelerator probe under KVM but not a real
/// kernel.
pub const KVM_FAILURE: &str = "KVM internal error";

/// Runs `cmd` (stdin and stdout null, stderr captured to a file) for at most `bound`, then
/// kills it by pid. With `stop_on`, it is also killed as soon as its stderr shows that text
/// ([`Bounded::stopped`]).
pub fn run_bounded(
    mut cmd: Command,
    bound: Duration,
    stop_on: Option<&str>,
) -> anyhow::Result<Bounded> {
    let errfile = tempfile::tempfile()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(errfile.try_clone()?);
    let start = Instant::now();
    let child = cmd.spawn().context("cannot start QEMU")?;
    let pid = child.id() as libc::pid_t;
    let mut timed_out = false;
    let mut stopped = false;
    let mut polls = 0u32;
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter for wait4.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our child, not yet reaped (only this loop waits for it).
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
        if r == pid {
            break (status, rusage);
        }
        if r < 0 {
            bail!("waiting for QEMU: {}", std::io::Error::last_os_error());
        }
        polls += 1;
        // Killed once: when QEMU printed `stop_on` (looked for every 10th poll), or at the bound.
        if !stopped && !timed_out {
            stopped = polls.is_multiple_of(10)
                && stop_on.is_some_and(|text| file_contains(&errfile, text));
            timed_out = !stopped && start.elapsed() > bound;
            if stopped || timed_out {
                // SAFETY: kill by the pid of our unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::mem::forget(child);
    let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let mut stderr = String::new();
    let mut f = errfile;
    use std::io::{Read as _, Seek as _};
    let _ = f.rewind();
    let _ = (&mut f).take(64 << 10).read_to_string(&mut stderr);
    Ok(Bounded {
        exit_code,
        timed_out,
        stopped,
        wall: start.elapsed(),
        peak_rss_kib: rusage.ru_maxrss as u64,
        stderr,
    })
}

/// Where a KVM failure inside a guest is remembered until the host reboots (the file name
/// carries the boot id), so that later processes start under TCG instead of paying for the
/// failure again: on some hosts a real kernel runs for half a minute under KVM before it fails.
fn kvm_failure_marker() -> Option<PathBuf> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(std::env::temp_dir().join(format!("ig-image-kvm-failed-{}", boot_id.trim())))
}

/// Remembers that KVM failed inside a guest ([`KVM_FAILURE`]), for [`choose_accel`] in later
/// processes of this boot; a marker that cannot be written is only logged.
pub fn remember_kvm_failure(note: &str) {
    if let Some(path) = kvm_failure_marker() {
        if let Err(e) = std::fs::write(&path, note) {
            log::debug!("cannot write `{}`: {e}", path.display());
        }
    }
}

/// Whether the first 64 KiB of `file` (a growing stderr capture) contain `text`.
fn file_contains(file: &std::fs::File, text: &str) -> bool {
    use std::os::unix::fs::FileExt as _;
    let mut buf = vec![0u8; 64 << 10];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    buf[..n]
        .windows(text.len().max(1))
        .any(|w| w == text.as_bytes())
}

/// One guest boot.
#[derive(Debug, Clone)]
pub struct Boot<'a> {
    /// Guest architecture.
    pub arch: Arch,
    /// Accelerator.
    pub accel: Accel,
    /// Kernel file.
    pub kernel: &'a Path,
    /// Initramfs.
    pub initrd: &'a Path,
    /// The read-write share (mounted at the same path in the guest).
    pub job_dir: &'a Path,
    /// The ig-image binary (a path in the host root).
    pub exe: &'a Path,
    /// Serial console log.
    pub console: &'a Path,
}

impl Boot<'_> {
    /// Whether the host's programs cannot run in the guest (another architecture): the init then
    /// puts busybox's applets first on `PATH`.
    fn foreign(&self) -> bool {
        !self.arch.is_host()
    }
}

/// The QEMU command for a boot.
pub fn command(qemu: &Path, boot: &Boot) -> anyhow::Result<Command> {
    for (what, p) in [
        ("job directory", boot.job_dir),
        ("ig-image binary", boot.exe),
    ] {
        let s = p
            .to_str()
            .with_context(|| format!("the {what} path is not UTF-8"))?;
        if s.chars().any(|c| c.is_whitespace() || c == '"' || c == ',') {
            bail!(
                "the {what} path `{s}` contains whitespace, quotes or commas (not allowed on a kernel command line)"
            );
        }
    }
    let mut c = Command::new(qemu);
    let console_dev = match boot.arch {
        Arch::Amd64 => {
            c.args(["-M", "pc", "-cpu", "max"]);
            "ttyS0"
        }
        Arch::Arm64 => {
            c.args(["-M", "virt", "-cpu", "max"]);
            "ttyAMA0"
        }
    };
    c.args(["-accel", &boot.accel.to_string(), "-smp", "1", "-m", &format!("{MEMORY_MIB}M")])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(boot.kernel)
        .arg("-initrd")
        .arg(boot.initrd)
        .arg("-append")
        .arg(format!(
            "console={console_dev} panic=-1 rdinit=/init loglevel=4 mitigations=off igvm.job={} igvm.exe={}{}",
            boot.job_dir.display(),
            boot.exe.display(),
            if boot.foreign() { " igvm.applets=1" } else { "" }
        ))
        .arg("-fsdev")
        .arg("local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap")
        .args(["-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"])
        .arg("-fsdev")
        .arg(format!("local,id=results,path={},security_model=none", boot.job_dir.display()))
        .args(["-device", "virtio-9p-pci,fsdev=results,mount_tag=results"])
        .arg("-serial")
        .arg(format!("file:{}", boot.console.display()));
    if boot.arch == Arch::Amd64 {
        c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    }
    Ok(c)
}

/// The last `n` non-empty lines of the console log.
pub fn console_tail(path: &Path, n: usize) -> Vec<String> {
    let data = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&data);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_processes_stop_when_stderr_shows_the_text() {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo 'qemu: KVM internal error. Suberror: 1' >&2; sleep 30",
        ]);
        let r = run_bounded(c, Duration::from_secs(20), Some(KVM_FAILURE)).unwrap();
        assert!(r.stopped && !r.timed_out, "{r:?}");
        assert!(r.wall < Duration::from_secs(10), "{r:?}");
        assert!(r.stderr.contains(KVM_FAILURE));
    }

    #[test]
    fn bounded_processes_are_killed_by_pid() {
        let mut c = Command::new("sleep");
        c.arg("30");
        let r = run_bounded(c, Duration::from_millis(200), None).unwrap();
        assert!(r.timed_out);
        assert_eq!(r.exit_code, None);
        assert!(r.wall < Duration::from_secs(5));
        let r = run_bounded(Command::new("true"), Duration::from_secs(5), None).unwrap();
        assert_eq!(r.exit_code, Some(0));
    }

    #[test]
    fn refuses_paths_that_break_the_command_line() {
        let boot = Boot {
            arch: Arch::Amd64,
            accel: Accel::Tcg,
            kernel: Path::new("/k"),
            initrd: Path::new("/i"),
            job_dir: Path::new("/tmp/a b"),
            exe: Path::new("/x"),
            console: Path::new("/c"),
        };
        assert!(command(Path::new("qemu"), &boot).is_err());
    }
}
