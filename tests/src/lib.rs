//! Shared support for the end-to-end tests: temp stores, running the `ig-image` binary, the
//! independent image checker, and the kernel requirement rule.
//!
//! The `ig-image` binary must be built first with the same profile (`scripts/test` does it).

pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// A sample gadget directory.
pub fn sample(name: &str) -> PathBuf {
    workspace_root().join("sample-gadgets").join(name)
}

/// A test fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests").join("fixtures").join(name)
}

/// The names of every C sample gadget.
pub const C_SAMPLES: &[&str] = &["trace_exec", "trace_open", "snapshot_process", "top_file"];

/// The C samples of the SDK's newer API: stacks, the socket enricher, syscall arguments read
/// through CO-RE from `struct syscall_trace_enter`. Their kernel tests need a loader that
/// handles stack maps and the runtime's socket enricher types.
pub const SDK_SAMPLES: &[&str] = &["trace_stacks", "trace_sock_owner", "trace_kill"];

/// The `ig-image` binary next to this test executable's profile directory.
pub fn ig_image_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("ig-image");
    assert!(
        bin.exists(),
        "`{}` is missing: build it first with `cargo build -p ig-image` in the same profile (scripts/test does)",
        bin.display()
    );
    bin
}

/// The independent checker from ../shared/tools.
pub fn checker() -> PathBuf {
    let path = workspace_root().join("../shared/tools/gadget-image-check");
    assert!(
        path.exists(),
        "`{}` is missing: ../shared must sit beside the project",
        path.display()
    );
    path
}

/// A private store and build cache for one test.
pub struct TempStore {
    /// Holds the store and the cache.
    pub dir: tempfile::TempDir,
}

impl Default for TempStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TempStore {
    /// A fresh empty store with its own cache.
    pub fn new() -> TempStore {
        TempStore {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The store directory.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The build cache directory.
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `ig-image --store <store> ARGS` with this test's cache and a fixed SOURCE_DATE_EPOCH.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new(ig_image_bin());
        c.arg("--store").arg(self.store()).args(args);
        c.env("IG_IMAGE_CACHE_DIR", self.cache());
        c.env("SOURCE_DATE_EPOCH", "1700000000");
        c.env_remove("IG_IMAGE_STORE");
        c
    }

    /// Run and require success; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = run(self.cmd(args));
        assert_success(&out);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run and require failure; returns stderr.
    pub fn fails<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = run(self.cmd(args));
        assert!(
            !out.status.success(),
            "expected failure, got success\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }

    /// Run gadget-image-check on the store (optionally for some references); returns its output.
    pub fn check(&self, refs: &[&str], platforms: &str) -> String {
        let out = run({
            let mut c = Command::new("python3");
            c.arg(checker())
                .arg(self.store())
                .args(refs)
                .arg("--platforms")
                .arg(platforms);
            c
        });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "gadget-image-check failed:\n{text}");
        assert!(
            text.contains(" 0 failed"),
            "gadget-image-check reported failures:\n{text}"
        );
        text
    }

    /// Run gadget-image-check on the store with `--pubkey` for each key: every checked image must
    /// carry a cosign signature that verifies with one of them. Returns whether every check
    /// passed, and the checker's output.
    pub fn check_signed(&self, refs: &[&str], platforms: &str, keys: &[&Path]) -> (bool, String) {
        let mut c = Command::new("python3");
        c.arg(checker())
            .arg(self.store())
            .args(refs)
            .arg("--platforms")
            .arg(platforms);
        for k in keys {
            c.arg("--pubkey").arg(k);
        }
        let out = run(c);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success() && text.contains(" 0 failed"), text)
    }

    /// A snapshot of the store's files (path -> content), to prove a failure changed nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        collect(&self.store(), &self.store(), &mut out);
        out.sort();
        out
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, out);
        } else if p.file_name().is_some_and(|n| n != "index.json.lock") {
            out.push((
                p.strip_prefix(root).expect("under root").to_path_buf(),
                std::fs::read(&p).expect("read"),
            ));
        }
    }
}

/// A finished command with what it cost: peak resident memory and wall time.
#[derive(Debug)]
pub struct Measured {
    /// Exit status and captured streams.
    pub out: Output,
    /// Peak resident set size of the child, in MiB (`ru_maxrss` from `wait4`).
    pub max_rss_mib: f64,
    /// Wall time.
    pub elapsed: std::time::Duration,
}

impl Measured {
    /// stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// Requires a refusal as issue 12 defines it: exit code 1 or 2 (not a crash or an abort),
    /// every `needle` in stderr, no raw control bytes on it, under 200 MiB and 5 s.
    pub fn assert_refused(&self, what: &str, needles: &[&str]) {
        let stderr = self.stderr();
        let code = self.out.status.code();
        assert!(
            matches!(code, Some(1 | 2)),
            "{what}: exit {:?} (want 1 or 2)\nstderr:\n{stderr}",
            self.out.status
        );
        for n in needles {
            assert!(stderr.contains(n), "{what}: stderr lacks `{n}`:\n{stderr}");
        }
        assert!(
            !stderr
                .chars()
                .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{fffd}'),
            "{what}: raw bytes on stderr: {stderr:?}"
        );
        assert!(
            self.max_rss_mib < 200.0,
            "{what}: peak memory {:.1} MiB",
            self.max_rss_mib
        );
        assert!(
            self.elapsed < std::time::Duration::from_secs(5),
            "{what}: took {:?}",
            self.elapsed
        );
        eprintln!(
            "{what}: exit {code:?}, {:.1} MiB peak, {:?}",
            self.max_rss_mib, self.elapsed
        );
    }
}

/// Runs `cmd` under a small python3 parent that reports the child's peak RSS
/// (`getrusage(RUSAGE_CHILDREN)`) and applies a 4 GiB address-space limit, so a regression fails
/// the test instead of the machine; the time is the child's wall time. Linux carries `ru_maxrss` across `fork` + `execve`, so a
/// child spawned straight from this (large, multi-threaded) test process would report this
/// process's memory; python's own ~15 MiB is the bias here. A child killed by a signal is
/// reported as killed by it.
pub fn run_measured(cmd: Command) -> Measured {
    const WRAPPER: &str = "import os, resource, subprocess, sys, time\n\
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n\
start = time.monotonic()\n\
rc = subprocess.run(sys.argv[2:]).returncode\n\
took = time.monotonic() - start\n\
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n\
open(sys.argv[1], 'w').write(f'{rss} {took}')\n\
if rc < 0:\n    os.kill(os.getpid(), -rc)\n\
sys.exit(rc)\n";
    let rss_file = tempfile::NamedTempFile::new().expect("temp file");
    let mut wrapped = Command::new("python3");
    wrapped
        .arg("-S")
        .arg("-c")
        .arg(WRAPPER)
        .arg(rss_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(std::process::Stdio::null());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let out = run(wrapped);
    let (kib, secs): (f64, f64) = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|s| {
            let (kib, secs) = s.trim().split_once(' ')?;
            Some((kib.parse().ok()?, secs.parse().ok()?))
        })
        .unwrap_or_else(|| {
            panic!(
                "the measuring wrapper failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    Measured {
        out,
        max_rss_mib: kib / 1024.0,
        elapsed: std::time::Duration::from_secs_f64(secs),
    }
}

/// Run a command, capturing output.
pub fn run(mut cmd: Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Panic with both streams unless the command succeeded.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "command failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Parse JSON lines.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Whether this process can use the kernel for eBPF (root and kernel BTF). Without it a kernel
/// test returns early with a loud reason, unless `IG_REQUIRE_KERNEL=1` (set by CI), in which
/// case it panics: CI never skips kernel tests silently.
pub fn require_kernel(test: &str) -> bool {
    // SAFETY-free check: the effective uid from /proc.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    if root && btf {
        return true;
    }
    let reason =
        format!("{test}: needs root and /sys/kernel/btf/vmlinux (root: {root}, btf: {btf})");
    assert!(
        std::env::var("IG_REQUIRE_KERNEL").as_deref() != Ok("1"),
        "IG_REQUIRE_KERNEL=1 but {reason}"
    );
    eprintln!("SKIPPED (not a pass): {reason}");
    false
}

/// Makes `cmd` run in its own mount namespace where `/sys/kernel/btf` is an empty tmpfs: a
/// kernel without BTF, as far as the child can tell (the BPF syscalls still work). Needs root.
pub fn hide_kernel_btf(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: between fork and exec only async-signal-safe calls (unshare, mount) are made.
    unsafe {
        cmd.pre_exec(|| {
            let check = |r: libc::c_int| {
                if r == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"none".as_ptr(),
                c"/sys/kernel/btf".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            ))
        });
    }
}
