//! `ig-image doctor`: can this host run (and build) eBPF gadgets?
//!
//! Each check reads what the kernel and the file system say (`/proc`, `/sys`, `/boot`, sockets,
//! PATH) and reports one [`Check`]: [`Status::Ok`], [`Status::Warning`] or [`Status::Missing`],
//! what was found, and the fix. Nothing is changed on the host, nothing is loaded into the kernel
//! and no network is used. Every path is read below [`DoctorOptions::root`] so tests can point
//! the checks at a fake tree.
//!
//! A check is *required* when gadgets cannot run without it (kernel version, BTF, privileges,
//! bpffs, tracefs, ring buffers): [`DoctorReport::ready`] is false when a required check is
//! missing. Kprobes, container runtimes and the build toolchain are optional: a gadget that does
//! not use them runs without them.
//!
//! ```no_run
//! let report = ig_image_check::doctor::run(&ig_image_check::doctor::DoctorOptions::default());
//! for c in &report.checks {
//!     println!("{} {} {}", c.status, c.name, c.found);
//! }
//! ```

use std::io::Read as _;
use std::path::{Path, PathBuf};

use gadget_object::Btf;
use gadget_object::btf::TypeKind;
use serde::Serialize;

use gadget_facts::platform::Platform;
use ig_image_build::toolchain::CToolchain;

/// The oldest kernel upstream gadgets support.
pub const MIN_KERNEL: (u32, u32) = (5, 10);
/// The first kernel with `BPF_MAP_TYPE_RINGBUF`.
pub const RINGBUF_KERNEL: (u32, u32) = (5, 8);

/// `CAP_SYS_ADMIN`.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_PERFMON` (Linux 5.8).
pub const CAP_PERFMON: u32 = 38;
/// `CAP_BPF` (Linux 5.8).
pub const CAP_BPF: u32 = 39;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Present and usable.
    Ok,
    /// Usable with a caveat, or could not be determined.
    Warning,
    /// Absent.
    Missing,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Missing => "missing",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short stable name (`kernel`, `btf`, `capabilities`, `kprobes`, `runtime.docker`, ...).
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// Whether gadgets in general need it (a missing required check makes the host not ready).
    pub required: bool,
    /// What was found, for people.
    pub found: String,
    /// How to fix it (absent when the status is ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// False when a required check is missing.
    pub ready: bool,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// A check by name.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Where to look.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Prefix of every absolute path read (`/` on a real host).
    pub root: PathBuf,
    /// `$XDG_RUNTIME_DIR`, for rootless Podman's socket.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// Whether to check the build toolchain (clang, llvm-strip, Rust eBPF).
    pub toolchain: bool,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            root: PathBuf::from("/"),
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            toolchain: true,
        }
    }
}

struct Host<'a> {
    opts: &'a DoctorOptions,
}

impl Host<'_> {
    fn path(&self, abs: &str) -> PathBuf {
        self.opts.root.join(abs.trim_start_matches('/'))
    }
    fn read(&self, abs: &str) -> Option<String> {
        std::fs::read_to_string(self.path(abs)).ok()
    }
    fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists()
    }
}

fn check(name: &str, status: Status, required: bool, found: String, fix: Option<String>) -> Check {
    Check {
        name: name.to_string(),
        status,
        required,
        found,
        fix: if status == Status::Ok { None } else { fix },
    }
}

/// Runs every check.
pub fn run(opts: &DoctorOptions) -> DoctorReport {
    let host = Host { opts };
    let release = host
        .read("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string());
    let version = release.as_deref().and_then(parse_kernel_version);
    let btf_path = host.path("/sys/kernel/btf/vmlinux");
    let btf = std::fs::read(&btf_path).ok().map(|b| Btf::parse(&b));

    let mut checks = vec![
        kernel_check(release.as_deref(), version),
        btf_check(&btf_path, btf.as_ref()),
    ];
    checks.push(capabilities_check(&host));
    let mounts = host.read("/proc/mounts").unwrap_or_default();
    checks.push(mount_check(
        &mounts,
        "bpffs",
        &["bpf"],
        "mount -t bpf bpf /sys/fs/bpf",
        "pinning maps and programs needs it; ig mounts it itself when it can",
    ));
    checks.push(mount_check(
        &mounts,
        "tracefs",
        &["tracefs"],
        "mount -t tracefs tracefs /sys/kernel/tracing",
        "attaching tracepoints reads their ids from it",
    ));
    checks.push(arch_check(&host));
    checks.push(memory_check(&host, version));
    checks.push(ringbuf_check(
        version,
        btf.as_ref().and_then(|b| b.as_ref().ok()),
    ));
    checks.push(kprobes_check(&host, release.as_deref()));
    checks.extend(runtime_checks(&host));
    if opts.toolchain {
        checks.extend(toolchain_checks());
    }
    let ready = !checks
        .iter()
        .any(|c| c.required && c.status == Status::Missing);
    DoctorReport { ready, checks }
}

/// `6.18.44-fc-v595` → `(6, 18, 44)`; the patch level is 0 when absent.
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

fn at_least(v: Option<(u32, u32, u32)>, want: (u32, u32)) -> Option<bool> {
    v.map(|(a, b, _)| (a, b) >= want)
}

fn kernel_check(release: Option<&str>, version: Option<(u32, u32, u32)>) -> Check {
    let (want_major, want_minor) = MIN_KERNEL;
    match (release, at_least(version, MIN_KERNEL)) {
        (Some(r), Some(true)) => check(
            "kernel",
            Status::Ok,
            true,
            format!("{r} (>= {want_major}.{want_minor})"),
            None,
        ),
        (Some(r), Some(false)) => check(
            "kernel",
            Status::Missing,
            true,
            format!("{r}: older than {want_major}.{want_minor}"),
            Some(format!(
                "upgrade to Linux {want_major}.{want_minor} or newer: upstream gadgets need it"
            )),
        ),
        (r, _) => check(
            "kernel",
            Status::Warning,
            true,
            format!(
                "cannot read the kernel version ({})",
                r.unwrap_or("/proc/sys/kernel/osrelease unreadable")
            ),
            Some("check that /proc is mounted".to_string()),
        ),
    }
}

fn btf_check(path: &Path, btf: Option<&Result<Btf, gadget_object::BtfError>>) -> Check {
    let fix = "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distributions since 2020), \
               or build gadgets with `ig-image build --btfgen --btfhub-archive DIR`";
    match btf {
        Some(Ok(b)) => check(
            "btf",
            Status::Ok,
            true,
            format!("/sys/kernel/btf/vmlinux ({} types): CO-RE works", b.len()),
            None,
        ),
        Some(Err(e)) => check(
            "btf",
            Status::Warning,
            true,
            format!("`{}` is not readable BTF: {e}", path.display()),
            Some(fix.to_string()),
        ),
        None => check(
            "btf",
            Status::Missing,
            true,
            "/sys/kernel/btf/vmlinux does not exist: no kernel BTF for CO-RE".to_string(),
            Some(fix.to_string()),
        ),
    }
}

/// The effective capability mask from `/proc/self/status`.
fn cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

fn capabilities_check(host: &Host) -> Check {
    let unpriv = host
        .read("/proc/sys/kernel/unprivileged_bpf_disabled")
        .and_then(|s| s.trim().parse::<u32>().ok());
    let unpriv_text = match unpriv {
        Some(0) => "unprivileged_bpf_disabled=0 (unprivileged users may load socket filters)",
        Some(1) => "unprivileged_bpf_disabled=1 (unprivileged BPF off until reboot)",
        Some(2) => "unprivileged_bpf_disabled=2 (unprivileged BPF off; root may re-enable)",
        _ => "unprivileged_bpf_disabled unreadable",
    };
    let Some(caps) = host.read("/proc/self/status").as_deref().and_then(cap_eff) else {
        return check(
            "capabilities",
            Status::Warning,
            true,
            format!("cannot read CapEff from /proc/self/status; {unpriv_text}"),
            Some("check that /proc is mounted".to_string()),
        );
    };
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    let names: Vec<&str> = [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
    ]
    .iter()
    .filter(|(b, _)| has(*b))
    .map(|(_, n)| *n)
    .collect();
    let held = if names.is_empty() {
        "none of CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON".to_string()
    } else {
        names.join(", ")
    };
    let found = format!("CapEff {caps:016x}: {held}; {unpriv_text}");
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        check("capabilities", Status::Ok, true, found, None)
    } else {
        let fix = "run as root, or grant CAP_BPF and CAP_PERFMON (plus CAP_SYS_ADMIN for \
                   iterators and some attach types): `setcap cap_bpf,cap_perfmon+ep <binary>` \
                   or `--cap-add BPF --cap-add PERFMON` for a container; unprivileged BPF \
                   cannot load tracing programs whatever unprivileged_bpf_disabled says";
        let status = if has(CAP_BPF) || has(CAP_PERFMON) {
            Status::Warning
        } else {
            Status::Missing
        };
        check("capabilities", status, true, found, Some(fix.to_string()))
    }
}

/// Mount points of the file systems of these types in `/proc/mounts`.
fn mounts_of<'a>(mounts: &'a str, fstypes: &[&str]) -> Vec<&'a str> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, point, fstype) = (f.next()?, f.next()?, f.next()?);
            fstypes.contains(&fstype).then_some(point)
        })
        .collect()
}

fn mount_check(mounts: &str, name: &str, fstypes: &[&str], fix: &str, why: &str) -> Check {
    let points = mounts_of(mounts, fstypes);
    if points.is_empty() {
        check(
            name,
            Status::Missing,
            true,
            format!("no {} mount in /proc/mounts ({why})", fstypes.join("/")),
            Some(fix.to_string()),
        )
    } else {
        let mut points = points;
        points.dedup();
        check(
            name,
            Status::Ok,
            true,
            format!("mounted at {}", points.join(", ")),
            None,
        )
    }
}

fn arch_check(host: &Host) -> Check {
    let machine = host
        .read("/proc/sys/kernel/arch")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| uname_machine().unwrap_or_default());
    let oci = Platform::from_machine(&machine).map(Platform::oci_arch);
    match oci {
        Some(a @ ("amd64" | "arm64")) => check(
            "architecture",
            Status::Ok,
            true,
            format!("{machine} ({a}: published gadget images carry it)"),
            None,
        ),
        Some(a) => check(
            "architecture",
            Status::Warning,
            true,
            format!("{machine} ({a}): published gadget images carry amd64 and arm64 only"),
            Some(format!(
                "build gadgets for it yourself: `ig-image build --platform {a}`"
            )),
        ),
        None => check(
            "architecture",
            Status::Missing,
            true,
            format!("`{machine}`: not a platform gadgets are built for"),
            Some("use an amd64 or arm64 host".to_string()),
        ),
    }
}

/// The machine name as `uname -m` spells it, for the architecture this binary runs on.
fn uname_machine() -> Option<String> {
    Some(
        Platform::host()
            .map_or(std::env::consts::ARCH, Platform::uname_machine)
            .to_string(),
    )
}

fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `Max locked memory` soft limit in bytes from `/proc/self/limits` (`None` = unlimited).
fn memlock_limit(limits: &str) -> Option<Option<u64>> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))?;
    let soft = line["Max locked memory".len()..]
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

fn memory_check(host: &Host, version: Option<(u32, u32, u32)>) -> Check {
    let meminfo = host.read("/proc/meminfo").unwrap_or_default();
    let (Some(total), Some(avail)) = (
        meminfo_kib(&meminfo, "MemTotal"),
        meminfo_kib(&meminfo, "MemAvailable"),
    ) else {
        return check(
            "memory",
            Status::Warning,
            true,
            "cannot read MemTotal/MemAvailable from /proc/meminfo".to_string(),
            Some("check that /proc is mounted".to_string()),
        );
    };
    let mib = |k: u64| k / 1024;
    let memlock = host
        .read("/proc/self/limits")
        .as_deref()
        .and_then(memlock_limit);
    let memlock_text = match memlock {
        Some(None) => "memlock unlimited".to_string(),
        Some(Some(b)) => format!("memlock {} KiB", b / 1024),
        None => "memlock unknown".to_string(),
    };
    // Before 5.11 BPF memory is charged to RLIMIT_MEMLOCK, not to the memory cgroup.
    let rlimit_counts = at_least(version, (5, 11)) == Some(false);
    let mut found = format!(
        "{} MiB total, {} MiB available; {memlock_text}",
        mib(total),
        mib(avail)
    );
    if !rlimit_counts {
        found.push_str(" (not charged: kernel >= 5.11 uses the memory cgroup)");
    }
    if avail < 256 * 1024 {
        return check(
            "memory",
            Status::Warning,
            true,
            found,
            Some("free memory: gadgets' maps and ring buffers need tens of MiB".to_string()),
        );
    }
    if rlimit_counts && memlock.is_some_and(|m| m.is_some_and(|b| b < 64 << 20)) {
        return check(
            "memory",
            Status::Warning,
            true,
            found,
            Some(
                "raise the memlock limit (`ulimit -l unlimited`): this kernel charges BPF maps to it"
                    .to_string(),
            ),
        );
    }
    check("memory", Status::Ok, true, found, None)
}

/// Whether a BTF has `BPF_MAP_TYPE_RINGBUF` in `enum bpf_map_type`.
pub fn btf_has_enum_value(btf: &Btf, enum_name: &str, value: &str) -> bool {
    btf.ids_by_name(enum_name)
        .any(|id| match &btf.types()[id as usize].kind {
            TypeKind::Enum { values, .. } => values.iter().any(|v| btf.enumerator_name(v) == value),
            _ => false,
        })
}

fn ringbuf_check(version: Option<(u32, u32, u32)>, btf: Option<&Btf>) -> Check {
    let fix = "upgrade to Linux 5.8 or newer; gadgets using perf event arrays still work";
    if let Some(btf) = btf {
        return if btf_has_enum_value(btf, "bpf_map_type", "BPF_MAP_TYPE_RINGBUF") {
            check(
                "ringbuf",
                Status::Ok,
                true,
                "BPF_MAP_TYPE_RINGBUF is in the kernel's enum bpf_map_type".to_string(),
                None,
            )
        } else {
            check(
                "ringbuf",
                Status::Missing,
                true,
                "the kernel's enum bpf_map_type has no BPF_MAP_TYPE_RINGBUF".to_string(),
                Some(fix.to_string()),
            )
        };
    }
    match at_least(version, RINGBUF_KERNEL) {
        Some(true) => check(
            "ringbuf",
            Status::Ok,
            true,
            "kernel >= 5.8 (no BTF to confirm)".to_string(),
            None,
        ),
        Some(false) => check(
            "ringbuf",
            Status::Missing,
            true,
            "kernel older than 5.8".to_string(),
            Some(fix.to_string()),
        ),
        None => check(
            "ringbuf",
            Status::Warning,
            true,
            "unknown: no kernel version and no BTF".to_string(),
            Some(fix.to_string()),
        ),
    }
}

/// `CONFIG_<name>` from a kernel config text: `Some(true)` for `=y`/`=m`, `Some(false)` for
/// `is not set` or absent from a complete config.
pub fn config_option(config: &str, name: &str) -> Option<bool> {
    let set = format!("CONFIG_{name}=");
    let unset = format!("# CONFIG_{name} is not set");
    for line in config.lines() {
        if let Some(v) = line.strip_prefix(&set) {
            return Some(v == "y" || v == "m");
        }
        if line == unset {
            return Some(false);
        }
    }
    config.contains("CONFIG_").then_some(false)
}

/// The kernel config: `/proc/config.gz`, else `/boot/config-<release>`. Returns (where, text).
fn kernel_config(host: &Host, release: Option<&str>) -> Option<(String, String)> {
    if let Ok(bytes) = std::fs::read(host.path("/proc/config.gz")) {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(("/proc/config.gz".to_string(), text));
        }
    }
    let boot = format!("/boot/config-{}", release?);
    host.read(&boot).map(|t| (boot, t))
}

/// Whether the kernel below `root` is built with `CONFIG_KPROBES` (from `/proc/config.gz` or
/// `/boot/config-<release>`); `None` when no kernel config is readable.
pub fn kprobes_configured(root: &Path) -> Option<bool> {
    let opts = DoctorOptions {
        root: root.to_path_buf(),
        xdg_runtime_dir: None,
        toolchain: false,
    };
    let host = Host { opts: &opts };
    let release = host
        .read("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string());
    let (_, config) = kernel_config(&host, release.as_deref())?;
    Some(config_option(&config, "KPROBES") == Some(true))
}

fn kprobes_check(host: &Host, release: Option<&str>) -> Check {
    let fix = "gadgets with kprobe/kretprobe programs cannot attach here; use a kernel built \
               with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y, or gadgets that use \
               tracepoints";
    let events = [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ]
    .into_iter()
    .find(|p| host.exists(p));
    if let Some((source, config)) = kernel_config(host, release) {
        return match config_option(&config, "KPROBES") {
            Some(true) => check(
                "kprobes",
                Status::Ok,
                false,
                format!("CONFIG_KPROBES=y ({source})"),
                None,
            ),
            _ => check(
                "kprobes",
                Status::Missing,
                false,
                format!("CONFIG_KPROBES is not set ({source})"),
                Some(fix.to_string()),
            ),
        };
    }
    match events {
        Some(p) => check(
            "kprobes",
            Status::Ok,
            false,
            format!("{p} exists (no kernel config to read)"),
            None,
        ),
        None => check(
            "kprobes",
            Status::Warning,
            false,
            "no kernel config (/proc/config.gz, /boot/config-<release>) and no kprobe_events \
             in tracefs: kprobe support unknown"
                .to_string(),
            Some(
                "mount tracefs and look for kprobe_events, or read the kernel's config".to_string(),
            ),
        ),
    }
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

fn runtime_checks(host: &Host) -> Vec<Check> {
    let mut out = Vec::new();
    let mut runtime =
        |name: &str, label: &str, candidates: Vec<PathBuf>, shown: &str, start: &str| {
            let found = candidates.iter().find(|p| is_socket(p));
            out.push(match found {
                Some(p) => check(
                    &format!("runtime.{name}"),
                    Status::Ok,
                    false,
                    format!("{label} socket at {}", p.display()),
                    None,
                ),
                None => check(
                    &format!("runtime.{name}"),
                    Status::Missing,
                    false,
                    format!("no {label} socket ({shown})"),
                    Some(format!(
                        "only needed to enrich events of {label} containers: {start}"
                    )),
                ),
            });
        };
    runtime(
        "containerd",
        "containerd",
        vec![host.path("/run/containerd/containerd.sock")],
        "/run/containerd/containerd.sock",
        "`systemctl start containerd`",
    );
    runtime(
        "docker",
        "Docker",
        vec![
            host.path("/run/docker.sock"),
            host.path("/var/run/docker.sock"),
        ],
        "/run/docker.sock",
        "`systemctl start docker`",
    );
    runtime(
        "crio",
        "CRI-O",
        vec![
            host.path("/run/crio/crio.sock"),
            host.path("/var/run/crio/crio.sock"),
        ],
        "/run/crio/crio.sock",
        "`systemctl start crio`",
    );
    runtime(
        "podman",
        "Podman (rootful)",
        vec![host.path("/run/podman/podman.sock")],
        "/run/podman/podman.sock",
        "`systemctl start podman.socket`",
    );
    let rootless = host
        .opts
        .xdg_runtime_dir
        .as_ref()
        .map(|d| d.join("podman/podman.sock"));
    let shown = rootless.as_ref().map_or_else(
        || "$XDG_RUNTIME_DIR is not set".to_string(),
        |p| p.display().to_string(),
    );
    runtime(
        "podman-rootless",
        "Podman (rootless)",
        rootless.into_iter().collect(),
        &shown,
        "`systemctl --user start podman.socket` as that user",
    );
    out
}

fn tool_version(path: &Path) -> String {
    std::process::Command::new(path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8(o.stdout)
                .ok()?
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_default()
}

fn toolchain_checks() -> Vec<Check> {
    let mut out = Vec::new();
    match CToolchain::discover() {
        Ok(tc) => {
            out.push(check(
                "toolchain.clang",
                Status::Ok,
                false,
                format!(
                    "{} ({})",
                    tc.clang.path.display(),
                    tool_version(&tc.clang.path)
                ),
                None,
            ));
            out.push(check(
                "toolchain.llvm-strip",
                Status::Ok,
                false,
                tc.strip.path.display().to_string(),
                None,
            ));
        }
        Err(e) => {
            let msg = &e.to_string();
            let hint = gadget_store::hint::Hint::hints(&e).join("\n");
            let fix = Some(if hint.is_empty() {
                "apt-get install clang-19 llvm-19".to_string()
            } else {
                hint
            });
            let name = if msg.contains("llvm-strip") || msg.contains("LLVM_STRIP") {
                "toolchain.llvm-strip"
            } else {
                "toolchain.clang"
            };
            out.push(check(
                name,
                Status::Missing,
                false,
                format!("{msg} (C gadgets cannot be built)"),
                fix,
            ));
        }
    }
    // Rust eBPF: Debian's rustc-web with its library source (for -Z build-std=core) and
    // bpf-linker on PATH (docs/authoring.md).
    let rustc = Path::new("/usr/bin/rustc");
    let rustc_version = if rustc.exists() {
        tool_version(rustc)
    } else {
        String::new()
    };
    let src = std::fs::read_dir("/usr/src").ok().and_then(|d| {
        d.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rustc-"))
                && p.join("library/core").is_dir()
        })
    });
    let linker = which::which("bpf-linker").ok();
    let mut missing = Vec::new();
    if rustc_version.is_empty() {
        missing.push("rustc-web (/usr/bin/rustc)");
    }
    if src.is_none() {
        missing.push("rust-web-src (/usr/src/rustc-*/library)");
    }
    if linker.is_none() {
        missing.push("bpf-linker on PATH");
    }
    if missing.is_empty() {
        out.push(check(
            "toolchain.rust-ebpf",
            Status::Ok,
            false,
            format!(
                "{rustc_version}; library source {}; bpf-linker {}",
                src.as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                linker
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
            None,
        ));
    } else {
        out.push(check(
            "toolchain.rust-ebpf",
            Status::Missing,
            false,
            format!(
                "missing {} (Rust eBPF gadgets cannot be built)",
                missing.join(", ")
            ),
            Some(
                "apt-get install rustc-web rust-web-src cargo-web llvm-22-dev, then \
                 `LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --version 0.13.0 \
                 --no-default-features --features llvm-22` (docs/host-requirements.md)"
                    .to_string(),
            ),
        ));
    }
    out
}

/// Whether `run --kernel` can prove gadgets in microVMs here: QEMU and static busybox, the
/// accelerator (KVM only when a probe guest really runs), and the cached kernels. None is
/// required.
pub fn microvm_checks() -> Vec<Check> {
    use microvm::{Arch, vm};
    let arch = Arch::parse(None).unwrap_or(Arch::Amd64);
    let qemu = vm::qemu_binary(arch);
    let busybox = std::path::Path::new(microvm::initramfs::BUSYBOX).is_file();
    let mut out = vec![match (&qemu, busybox) {
        (Some(q), true) => check(
            "microvm.qemu",
            Status::Ok,
            false,
            format!(
                "{} ({}), {}",
                q.display(),
                tool_version(q),
                microvm::initramfs::BUSYBOX
            ),
            None,
        ),
        _ => check(
            "microvm.qemu",
            Status::Missing,
            false,
            format!(
                "{}: {}, busybox: {}",
                arch.qemu(),
                if qemu.is_some() { "found" } else { "missing" },
                if busybox { "found" } else { "missing" }
            ),
            Some(format!(
                "apt-get install {} busybox-static (needed by run --kernel)",
                arch.qemu_package()
            )),
        ),
    }];
    if qemu.is_some() {
        let accel = vm::choose_accel(arch);
        out.push(check(
            "microvm.accel",
            if accel.accel == vm::Accel::Kvm {
                Status::Ok
            } else {
                Status::Warning
            },
            false,
            format!(
                "{}: {}",
                accel.accel.to_string().to_uppercase(),
                accel.reason
            ),
            Some("guests run under software emulation (TCG): slower, still correct".into()),
        ));
    }
    let cache = microvm::KernelCache::new(microvm::cache::default_dir());
    let kernels = cache.list().unwrap_or_default();
    out.push(check(
        "microvm.kernels",
        if kernels.is_empty() {
            Status::Warning
        } else {
            Status::Ok
        },
        false,
        if kernels.is_empty() {
            format!("none cached in {}", cache.root.display())
        } else {
            kernels
                .iter()
                .map(|k| format!("{} ({})", k.meta.spec, k.meta.release))
                .collect::<Vec<_>>()
                .join(", ")
        },
        Some(
            "ig-image kernels fetch debian:bullseye debian:bookworm debian:trixie debian:sid"
                .into(),
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = d.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    fn report(root: &Path) -> DoctorReport {
        run(&DoctorOptions {
            root: root.to_path_buf(),
            xdg_runtime_dir: None,
            toolchain: false,
        })
    }

    #[test]
    fn parses_kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v595"), Some((6, 18, 44)));
        assert_eq!(parse_kernel_version("5.10"), Some((5, 10, 0)));
        assert_eq!(parse_kernel_version("4.19.0-27-amd64"), Some((4, 19, 0)));
        assert_eq!(parse_kernel_version("garbage"), None);
    }

    #[test]
    fn old_unprivileged_host_without_btf() {
        let root = fake_root(&[
            ("/proc/sys/kernel/osrelease", "4.19.0-27-amd64\n"),
            ("/proc/sys/kernel/arch", "x86_64\n"),
            ("/proc/self/status", "Name:\tx\nCapEff:\t0000000000000000\n"),
            ("/proc/sys/kernel/unprivileged_bpf_disabled", "2\n"),
            ("/proc/mounts", "proc /proc proc rw 0 0\n"),
            (
                "/proc/meminfo",
                "MemTotal:  2048000 kB\nMemAvailable: 100000 kB\n",
            ),
            (
                "/proc/self/limits",
                "Max locked memory         65536                65536                bytes\n",
            ),
            ("/boot/config-4.19.0-27-amd64", "CONFIG_KPROBES=y\n"),
        ]);
        let r = report(root.path());
        assert!(!r.ready);
        let status = |n: &str| r.get(n).unwrap().status;
        assert_eq!(status("kernel"), Status::Missing);
        assert_eq!(status("btf"), Status::Missing);
        assert_eq!(status("capabilities"), Status::Missing);
        assert!(r.get("capabilities").unwrap().found.contains("=2"));
        assert_eq!(status("bpffs"), Status::Missing);
        assert_eq!(status("tracefs"), Status::Missing);
        assert_eq!(status("memory"), Status::Warning);
        assert_eq!(status("ringbuf"), Status::Missing);
        assert_eq!(status("kprobes"), Status::Ok);
        assert!(r.get("kprobes").unwrap().found.contains("/boot/config-"));
        assert_eq!(status("runtime.docker"), Status::Missing);
        assert!(
            r.checks
                .iter()
                .all(|c| (c.status == Status::Ok) == c.fix.is_none())
        );
    }

    #[test]
    fn modern_host_with_cap_bpf_and_perfmon() {
        let caps = (1u64 << CAP_BPF) | (1u64 << CAP_PERFMON);
        let status_text = format!("CapEff:\t{caps:016x}\n");
        let root = fake_root(&[
            ("/proc/sys/kernel/osrelease", "6.1.0-56-cloud-arm64\n"),
            ("/proc/sys/kernel/arch", "aarch64\n"),
            ("/proc/self/status", &status_text),
            (
                "/proc/mounts",
                "bpf /sys/fs/bpf bpf rw 0 0\ntracefs /sys/kernel/tracing tracefs rw 0 0\n",
            ),
            (
                "/proc/meminfo",
                "MemTotal:  8048000 kB\nMemAvailable: 4000000 kB\n",
            ),
            (
                "/boot/config-6.1.0-56-cloud-arm64",
                "# CONFIG_KPROBES is not set\n",
            ),
        ]);
        let r = report(root.path());
        let status = |n: &str| r.get(n).unwrap().status;
        assert_eq!(status("kernel"), Status::Ok);
        assert_eq!(status("capabilities"), Status::Ok);
        assert_eq!(status("architecture"), Status::Ok);
        assert_eq!(status("bpffs"), Status::Ok);
        assert_eq!(status("ringbuf"), Status::Ok, "{:?}", r.get("ringbuf"));
        assert_eq!(status("kprobes"), Status::Missing);
        // No BTF: not ready.
        assert_eq!(status("btf"), Status::Missing);
        assert!(!r.ready);
    }

    #[test]
    fn sockets_are_found() {
        let root = fake_root(&[]);
        let sock = root.path().join("run/podman/podman.sock");
        std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let xdg = root.path().join("user");
        std::fs::create_dir_all(xdg.join("podman")).unwrap();
        let _l2 = std::os::unix::net::UnixListener::bind(xdg.join("podman/podman.sock")).unwrap();
        let r = run(&DoctorOptions {
            root: root.path().to_path_buf(),
            xdg_runtime_dir: Some(xdg),
            toolchain: false,
        });
        assert_eq!(r.get("runtime.podman").unwrap().status, Status::Ok);
        assert_eq!(r.get("runtime.podman-rootless").unwrap().status, Status::Ok);
        assert_eq!(r.get("runtime.containerd").unwrap().status, Status::Missing);
    }

    #[test]
    fn kernel_config_options() {
        assert_eq!(config_option("CONFIG_KPROBES=y\n", "KPROBES"), Some(true));
        assert_eq!(
            config_option("# CONFIG_KPROBES is not set\n", "KPROBES"),
            Some(false)
        );
        assert_eq!(config_option("CONFIG_X=y\n", "KPROBES"), Some(false));
        assert_eq!(config_option("", "KPROBES"), None);
    }
}
