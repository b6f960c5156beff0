//! Kernel-matrix tests of `ig-image run --kernel` (the `microvm` crate): gadgets proven on
//! Debian's bullseye (5.10), bookworm (6.1), trixie (6.12) and sid kernels, each in a throwaway
//! QEMU microVM. The four kernels are fetched once per machine into the shared kernel cache
//! (`$IG_IMAGE_KERNELS_DIR`, else ~/.cache/ig-image/kernels); later runs work offline.
//!
//! Needs qemu-system-x86_64 and busybox-static; under CI=true (`IG_REQUIRE_KERNEL=1`) a missing
//! one fails the test instead of skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ig_image_tests::{TempStore, fixture, json_lines, run, sample};
use serde_json::Value;

const SUITES: &[&str] = &["bullseye", "bookworm", "trixie", "sid"];

/// The machine-wide kernel cache the tests share.
fn kernels_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("IG_IMAGE_KERNELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home.join(".cache"), PathBuf::from)
        .join("ig-image")
        .join("kernels")
}

/// Whether QEMU and static busybox are here; under IG_REQUIRE_KERNEL=1 their absence fails.
fn require_qemu(test: &str) -> bool {
    let qemu = which("qemu-system-x86_64");
    let busybox = Path::new("/bin/busybox").is_file();
    if qemu && busybox {
        return true;
    }
    let reason = format!(
        "{test}: needs qemu-system-x86_64 and busybox-static (qemu: {qemu}, busybox: {busybox})"
    );
    assert!(
        std::env::var("IG_REQUIRE_KERNEL").as_deref() != Ok("1"),
        "IG_REQUIRE_KERNEL=1 but {reason}"
    );
    eprintln!("SKIPPED (not a pass): {reason}");
    false
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// `ig-image ARGS` with the shared kernel cache.
fn cmd(store: &TempStore, args: &[&str]) -> Command {
    let mut c = store.cmd(args);
    c.env("IG_IMAGE_KERNELS_DIR", kernels_dir());
    c
}

/// Fetches the four kernels once per machine (a no-op when cached).
fn fetch_kernels() {
    static FETCHED: OnceLock<()> = OnceLock::new();
    FETCHED.get_or_init(|| {
        let store = TempStore::new();
        let specs: Vec<String> = SUITES.iter().map(|s| format!("debian:{s}")).collect();
        let mut args = vec!["kernels", "fetch"];
        args.extend(specs.iter().map(String::as_str));
        let out = run(cmd(&store, &args));
        assert!(
            out.status.success(),
            "kernels fetch failed\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `--kernel debian:<suite>` for every suite.
fn kernel_args() -> Vec<String> {
    SUITES
        .iter()
        .flat_map(|s| ["--kernel".to_string(), format!("debian:{s}")])
        .collect()
}

/// Runs `ig-image run ARGS -o json` and returns (records, success, stderr).
fn matrix(store: &TempStore, args: &[String]) -> (Vec<Value>, bool, String) {
    let mut all: Vec<&str> = vec!["run"];
    all.extend(args.iter().map(String::as_str));
    all.extend(["-o", "json"]);
    // A generous bound: guests are emulated, and the tests share two cores with everything else.
    if !args.iter().any(|a| a == "--timeout") {
        all.extend(["--timeout", "300s"]);
    }
    let start = Instant::now();
    let out = run(cmd(store, &all));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "ig-image {} took {:.1} s\n{stderr}",
        all.join(" "),
        start.elapsed().as_secs_f64()
    );
    (
        json_lines(&String::from_utf8_lossy(&out.stdout)),
        out.status.success(),
        stderr,
    )
}

fn record<'a>(records: &'a [Value], image: &str, suite: &str) -> &'a Value {
    let kernel = format!("debian:{suite}");
    records
        .iter()
        .find(|r| r["kernel"] == kernel.as_str() && r["image"] == image)
        .unwrap_or_else(|| panic!("no record for {image} on {kernel}: {records:#?}"))
}

/// trace_exec's record `r` (on `label`) with `--exec true`: its program loaded and attached, the
/// workload exited 0, and an event names it (`true`) with the guest runner (`ig-image`) as its
/// parent.
fn assert_attached_and_saw_true(r: &Value, label: &str) {
    let prog = &r["verify"]["programs"][0];
    assert_eq!(prog["status"], "loaded", "{label}: {r:#}");
    assert_eq!(prog["attach"]["attach"], "attached", "{label}: {r:#}");
    let exec = &r["exec"];
    assert_eq!(exec["exit"], 0, "{label}: {r:#}");
    let pid = exec["pid"].as_u64().unwrap();
    let parent = exec["parent_pid"].as_u64().unwrap();
    let e = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["proc.pid"].as_u64() == Some(pid))
        .unwrap_or_else(|| panic!("{label}: no event for the workload (pid {pid}): {r:#}"));
    assert_eq!(e["proc.comm"], "true", "{label}: {e}");
    assert_eq!(e["proc.parent.pid"].as_u64(), Some(parent), "{label}: {e}");
    assert_eq!(e["proc.parent.comm"], "ig-image", "{label}: {e}");
}

/// The top_file sample built with its kprobe variant (`-DTOP_FILE_KPROBES`).
fn build_top_file_kprobe(store: &TempStore) {
    let dir = store.dir.path().join("top_file_kprobe");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["program.bpf.c", "gadget.yaml"] {
        std::fs::copy(sample("top_file").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("build.yaml"), "cflags: [\"-DTOP_FILE_KPROBES\"]\n").unwrap();
    store.ok([
        "build",
        dir.to_str().unwrap(),
        "-t",
        "top_file_kprobe:test",
        "--platform",
        "amd64",
    ]);
}

#[test]
fn microvm_trace_exec_and_kprobes_on_four_debian_kernels_then_merge() {
    if !require_qemu("microvm_trace_exec_and_kprobes_on_four_debian_kernels_then_merge") {
        return;
    }
    fetch_kernels();
    let store = TempStore::new();
    store.ok([
        "build",
        sample("trace_exec").to_str().unwrap(),
        "-t",
        "trace_exec:test",
        "--platform",
        "amd64",
    ]);
    build_top_file_kprobe(&store);

    // Run 1: trace_exec with a workload: every kernel verifies, attaches and sees `true` exec'd
    // by the guest runner.
    let mut args = vec!["trace_exec:test".to_string()];
    args.extend(kernel_args());
    args.extend(["--exec".to_string(), "/bin/true".to_string()]);
    let (execs, ok, stderr) = matrix(&store, &args);
    assert!(ok, "trace_exec failed on a kernel:\n{stderr}\n{execs:#?}");
    assert_eq!(execs.len(), 4, "{execs:#?}");
    for suite in SUITES {
        let r = record(&execs, "trace_exec:test", suite);
        assert_eq!(r["ok"], true, "{r:#}");
        assert_attached_and_saw_true(r, suite);
        let release = r["kernel_release"].as_str().unwrap();
        let want = match *suite {
            "bullseye" => "5.10.",
            "bookworm" => "6.1.",
            "trixie" => "6.12.",
            _ => "",
        };
        assert!(release.starts_with(want), "{suite}: {release}");
        assert_eq!(r["arch"], "amd64");
    }

    // Run 2: the kprobe variant of top_file attaches and counts the bytes the workload reads on
    // every kernel...
    let mut args = vec!["top_file_kprobe:test".to_string()];
    args.extend(kernel_args());
    args.extend(["--exec".to_string(), "/bin/cat /etc/os-release".to_string()]);
    let (tops, ok, stderr) = matrix(&store, &args);
    assert!(
        ok,
        "top_file (kprobes) failed on a kernel:\n{stderr}\n{tops:#?}"
    );
    for suite in SUITES {
        let r = record(&tops, "top_file_kprobe:test", suite);
        for p in r["verify"]["programs"].as_array().unwrap() {
            assert_eq!(p["attach"]["attach"], "attached", "{suite}: {p}");
            assert!(p["section"].as_str().unwrap().starts_with("kprobe/"), "{p}");
        }
        let pid = r["exec"]["pid"].as_u64().unwrap();
        let row = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["pid"].as_u64() == Some(pid) && e["file"] == "os-release")
            .unwrap_or_else(|| {
                panic!("{suite}: no top_file row for cat reading os-release: {r:#}")
            });
        assert!(
            row["rbytes_raw"]
                .as_u64()
                .or(row["rbytes"].as_u64())
                .unwrap_or(0)
                > 0,
            "{suite}: {row}"
        );
    }
    // ...and cannot attach on this host, which has no kprobes (when that is so).
    if !Path::new("/sys/kernel/tracing/kprobe_events").exists()
        && !Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
    {
        let out = run(cmd(
            &store,
            &["run", "top_file_kprobe:test", "--verify-only", "-o", "json"],
        ));
        assert!(
            !out.status.success(),
            "top_file_kprobe verified on a host without kprobes"
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            report.to_string().contains("attach-point-missing"),
            "{report:#}"
        );
    }

    // Merge the two runs' records into one table.
    let a = store.dir.path().join("exec.json");
    let b = store.dir.path().join("top.json");
    let lines = |rs: &[Value]| rs.iter().map(|r| format!("{r}\n")).collect::<String>();
    std::fs::write(&a, lines(&execs)).unwrap();
    std::fs::write(&b, lines(&tops)).unwrap();
    let out = run(cmd(
        &store,
        &["run", "--merge", a.to_str().unwrap(), b.to_str().unwrap()],
    ));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("IMAGE"), "{table}");
    for s in SUITES {
        assert!(rows[0].contains(&format!("debian:{s}")), "{table}");
    }
    assert!(
        rows[1].starts_with("trace_exec:test") && rows[1].matches('✓').count() == 4,
        "{table}"
    );
    assert!(
        rows[2].starts_with("top_file_kprobe:test") && rows[2].matches('✓').count() == 4,
        "{table}"
    );
}

#[test]
fn microvm_a_field_linux_5_10_lacks_fails_on_bullseye_only() {
    if !require_qemu("microvm_a_field_linux_5_10_lacks_fails_on_bullseye_only") {
        return;
    }
    fetch_kernels();
    let store = TempStore::new();
    store.ok([
        "build",
        fixture("core_task_state").to_str().unwrap(),
        "-t",
        "core_task_state:test",
        "--platform",
        "amd64",
    ]);
    let mut args = vec![
        "core_task_state:test".to_string(),
        "--verify-only".to_string(),
    ];
    args.extend(kernel_args());
    let (records, ok, stderr) = matrix(&store, &args);
    assert!(!ok, "the matrix must fail (bullseye)\n{stderr}");
    for suite in SUITES {
        let r = record(&records, "core_task_state:test", suite);
        if *suite == "bullseye" {
            assert_eq!(r["ok"], false, "{r:#}");
            let p = &r["verify"]["programs"][0];
            assert_eq!(p["status"], "failed", "{r:#}");
            assert_eq!(p["class"], "core-relocation", "{r:#}");
            assert!(p["message"].as_str().unwrap().contains("__state"), "{r:#}");
            assert!(r["reason"].as_str().unwrap().contains("__state"), "{r:#}");
        } else {
            assert_eq!(r["ok"], true, "{suite}: {r:#}");
        }
    }
    // The table names the failure and its field.
    let mut table_args: Vec<&str> = vec![
        "run",
        "core_task_state:test",
        "--verify-only",
        "--kernel",
        "debian:bullseye",
        "-o",
        "columns",
    ];
    table_args.push("--timeout");
    table_args.push("300s");
    let out = run(cmd(&store, &table_args));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap_or("")
            .contains("✗ core-relocation (ig_core_task_state)"),
        "{text}"
    );
    assert!(
        text.contains("on debian:bullseye: ig_core_task_state: core-relocation:")
            && text.contains("`__state`"),
        "{text}"
    );
}

#[test]
fn microvm_a_truncated_vmlinuz_gives_a_record_not_a_hang() {
    if !require_qemu("microvm_a_truncated_vmlinuz_gives_a_record_not_a_hang") {
        return;
    }
    fetch_kernels();
    let store = TempStore::new();
    store.ok([
        "build",
        sample("trace_exec").to_str().unwrap(),
        "-t",
        "trace_exec:test",
        "--platform",
        "amd64",
    ]);
    let full = std::fs::read(kernels_dir().join("debian-bookworm-amd64").join("vmlinuz"))
        .expect("cached bookworm vmlinuz");
    let cut = store.dir.path().join("vmlinuz");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let start = Instant::now();
    let args: Vec<String> = [
        "trace_exec:test",
        "--kernel",
        cut.to_str().unwrap(),
        "--timeout",
        "40s",
        "--verify-only",
    ]
    .map(String::from)
    .to_vec();
    let (records, ok, stderr) = matrix(&store, &args);
    assert!(
        start.elapsed() < Duration::from_secs(90),
        "took {:?}",
        start.elapsed()
    );
    assert!(!ok, "{stderr}");
    assert_eq!(records.len(), 1, "{stderr}");
    let r = &records[0];
    assert_eq!(r["ok"], false, "{r:#}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("did not finish") || reason.contains("without a result"),
        "{reason}"
    );
    assert!(
        reason.contains("truncated"),
        "the reason says the image is truncated: {reason}"
    );
    assert_eq!(r["kernel_notes"].as_array().map(Vec::len), Some(1), "{r:#}");
    // Either QEMU's exit code or the kill after --timeout is recorded.
    assert!(
        r["boot"]["qemu_exit"].is_number() || r["boot"]["timed_out"] == true,
        "{r:#}"
    );
}

#[test]
fn microvm_kernel_specs_and_cache_errors_are_clear() {
    let store = TempStore::new();
    let empty = store.dir.path().join("no-kernels");
    let mut c = store.cmd(["run", "x:y", "--kernel", "ubuntu:jammy"]);
    c.env("IG_IMAGE_KERNELS_DIR", &empty);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kernel spec `ubuntu:jammy`"));
    // A suite that does not exist: named, with the archive's answer, nothing left in the cache.
    let mut c = store.cmd(["kernels", "fetch", "debian:no-such-suite"]);
    c.env("IG_IMAGE_KERNELS_DIR", &empty);
    let out = run(c);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("debian:no-such-suite"), "{err}");
    let mut c = store.cmd(["kernels", "list", "-o", "json"]);
    c.env("IG_IMAGE_KERNELS_DIR", &empty);
    let out = run(c);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

/// The static arm64 ig-image the arm64 guest runs: `$IG_IMAGE_ARM64_BINARY`, else built (or
/// found up to date) by scripts/cross-arm64, which prints its path.
fn arm64_guest_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IG_IMAGE_ARM64_BINARY").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let out = run(Command::new(
        ig_image_tests::workspace_root().join("scripts/cross-arm64"),
    ));
    ig_image_tests::assert_success(&out);
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("scripts/cross-arm64 prints the binary's path"),
    )
}

/// trace_exec's arm64 build proven on Debian bookworm's arm64 kernel under qemu-system-aarch64
/// (TCG), by a static arm64 ig-image in the guest: it verifies, attaches, and reports the
/// workload `true` (busybox's arm64 applet: the host's /bin/true is an amd64 program) with the
/// guest runner as its parent.
#[test]
#[ignore = "cross-builds a static arm64 ig-image first (scripts/cross-arm64, about 15 min from clean here): run with `cargo test --release -p ig-image-tests --test integration -- --ignored microvm::microvm_arm64`"]
fn microvm_arm64_trace_exec_on_bookworm_arm64() {
    if !require_qemu("microvm_arm64_trace_exec_on_bookworm_arm64") {
        return;
    }
    if !which("qemu-system-aarch64") {
        let reason = "microvm_arm64_trace_exec_on_bookworm_arm64: needs qemu-system-aarch64";
        assert!(
            std::env::var("IG_REQUIRE_KERNEL").as_deref() != Ok("1"),
            "IG_REQUIRE_KERNEL=1 but {reason}"
        );
        eprintln!("SKIPPED (not a pass): {reason}");
        return;
    }
    let guest = arm64_guest_binary();
    let store = TempStore::new();
    let fetch = run(cmd(
        &store,
        &["kernels", "fetch", "--platform", "arm64", "debian:bookworm"],
    ));
    ig_image_tests::assert_success(&fetch);
    store.ok([
        "build",
        sample("trace_exec").to_str().unwrap(),
        "-t",
        "trace_exec:test",
        "--platform",
        "arm64",
    ]);
    let args: Vec<String> = [
        "trace_exec:test",
        "--kernel",
        "debian:bookworm",
        "--platform",
        "arm64",
        "--guest-binary",
        guest.to_str().unwrap(),
        "--exec",
        "true",
        "--timeout",
        "600s",
    ]
    .map(String::from)
    .to_vec();
    let (records, ok, stderr) = matrix(&store, &args);
    assert!(ok, "trace_exec failed on arm64:\n{stderr}\n{records:#?}");
    assert!(
        stderr.contains("arm64") && stderr.contains("TCG"),
        "{stderr}"
    );
    let r = record(&records, "trace_exec:test", "bookworm");
    assert_eq!(r["arch"], "arm64", "{r:#}");
    let release = r["kernel_release"].as_str().unwrap();
    assert!(
        release.starts_with("6.1.") && release.ends_with("-arm64"),
        "{release}"
    );
    assert_attached_and_saw_true(r, "bookworm arm64");
}

/// An arm64 guest cannot run the host's amd64 programs: without a static arm64 --guest-binary,
/// with a dynamic or amd64 one, or with an amd64 --exec program, `run` says so before booting.
#[test]
fn microvm_arm64_refuses_programs_the_guest_cannot_run() {
    let store = TempStore::new();
    let base = [
        "run",
        "x:y",
        "--kernel",
        "debian:bookworm",
        "--platform",
        "arm64",
    ];
    let err = store.fails(base);
    assert!(
        err.contains("--guest-binary") && err.contains("scripts/cross-arm64"),
        "{err}"
    );
    let host = ig_image_tests::ig_image_bin();
    let mut args = base.to_vec();
    args.extend(["--guest-binary", host.to_str().unwrap()]);
    let err = store.fails(&args);
    assert!(err.contains("it is a program for amd64"), "{err}");
    // A static arm64 ELF program (headers only) passes; the amd64 /bin/true then cannot run.
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1; // version
    elf[16] = 2; // ET_EXEC
    elf[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf[20] = 1;
    elf[52] = 64; // e_ehsize
    elf[54] = 56; // e_phentsize
    let fake = store.dir.path().join("arm64-static");
    std::fs::write(&fake, &elf).unwrap();
    let mut args = base.to_vec();
    args.extend([
        "--guest-binary",
        fake.to_str().unwrap(),
        "--exec",
        "/bin/true",
    ]);
    let err = store.fails(&args);
    assert!(
        err.contains("`/bin/true` is a program for amd64") && err.contains("--exec true"),
        "{err}"
    );
}
