//! Kernel tests of `ig-image run` (runtime-min): each sample gadget is built into an image and
//! run for real — loaded through this kernel's verifier, attached, and its records read back —
//! against actions the test performs itself. Needs root and kernel BTF (`require_kernel`).
//!
//! Tests in this file run in parallel inside one process, and other processes on the machine
//! exec and open files too: every assertion looks for the test's own pid, child or file name.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ig_image_tests::{TempStore, fixture, json_lines, require_kernel, run, sample};
use serde_json::Value;

mod loader;

/// A gadget running in the background.
struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

/// Starts `ig-image run ARGS` and waits until it says it is attached and reading.
fn start(store: &TempStore, args: &[&str]) -> Running {
    start_cmd(store.cmd(["run"].iter().chain(args)), args)
}

/// Starts `cmd` (an `ig-image run` with `args`) and waits until it is attached and reading.
fn start_cmd(mut cmd: Command, args: &[&str]) -> Running {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ig-image run");
    let mut out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).expect("read stdout");
        s
    });
    let (tx, rx) = mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines() {
            let line = line.expect("read stderr");
            if line.starts_with("Running ") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`ig-image run {}` never became ready\nstderr:\n{}",
            args.join(" "),
            stderr.join().unwrap_or_default()
        );
    }
    Running {
        child,
        stdout,
        stderr,
    }
}

impl Running {
    /// Ctrl-C (SIGINT), then waits; returns status, stdout and stderr.
    fn interrupt(self) -> (ExitStatus, String, String) {
        let pid = self.child.id().to_string();
        let killed = run({
            let mut c = Command::new("kill");
            c.args(["-INT", &pid]);
            c
        });
        assert!(killed.status.success(), "kill -INT {pid} failed");
        self.wait()
    }

    fn wait(mut self) -> (ExitStatus, String, String) {
        let status = self.child.wait().expect("wait");
        (
            status,
            self.stdout.join().expect("stdout thread"),
            self.stderr.join().expect("stderr thread"),
        )
    }
}

fn build(store: &TempStore, dir: &Path, tag: &str, extra: &[&str]) {
    let mut args = vec![
        "build".to_string(),
        dir.display().to_string(),
        "-t".into(),
        tag.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    store.ok(&args);
}

/// Runs `/bin/<name>` to completion and returns its pid.
fn spawn_and_wait(name: &str) -> u32 {
    let mut c = Command::new(format!("/bin/{name}"))
        .spawn()
        .unwrap_or_else(|e| panic!("/bin/{name}: {e}"));
    let pid = c.id();
    c.wait().expect("wait");
    pid
}

fn events_of(stdout: &str, field: &str, value: &Value) -> Vec<Value> {
    json_lines(stdout)
        .into_iter()
        .filter(|e| &e[field] == value)
        .collect()
}

/// Lets events already in flight reach the reader before it is stopped.
fn settle() {
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn kernel_trace_exec_reports_spawned_true_with_pid_ppid_comm() {
    if !require_kernel("kernel_trace_exec_reports_spawned_true_with_pid_ppid_comm") {
        return;
    }
    let store = TempStore::new();
    build(&store, &sample("trace_exec"), "trace_exec:test", &[]);
    let running = start(
        &store,
        &["trace_exec:test", "-o", "json", "--timeout", "60s"],
    );
    let pid = spawn_and_wait("true");
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(
        status.success(),
        "Ctrl-C must stop cleanly with status 0: {status}\n{stderr}"
    );
    assert!(stderr.contains("Stopped (interrupted)"), "{stderr}");
    let mine = events_of(&stdout, "proc.pid", &Value::from(pid));
    assert_eq!(
        mine.len(),
        1,
        "one exec event for pid {pid}\nstdout:\n{stdout}"
    );
    let e = &mine[0];
    assert_eq!(e["proc.comm"], "true");
    assert_eq!(e["proc.tid"], Value::from(pid));
    assert_eq!(
        e["proc.parent.pid"],
        Value::from(std::process::id()),
        "ppid is this test process"
    );
    assert_eq!(e["filename"], "/bin/true");
    assert!(
        e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{e}"
    );
    let mntns = std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .display()
        .to_string();
    assert_eq!(mntns, format!("mnt:[{}]", e["proc.mntns_id"]));
}

#[test]
fn kernel_trace_exec_comm_param_filters_in_and_out() {
    if !require_kernel("kernel_trace_exec_comm_param_filters_in_and_out") {
        return;
    }
    let store = TempStore::new();
    build(&store, &sample("trace_exec"), "trace_exec:test", &[]);

    // comm=true: our /bin/true is reported, and nothing but `true`.
    let running = start(
        &store,
        &["trace_exec:test", "-o", "json", "--param", "comm=true"],
    );
    let pid_true = spawn_and_wait("true");
    let pid_false = spawn_and_wait("false");
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let all = json_lines(&stdout);
    assert!(
        all.iter().all(|e| e["proc.comm"] == "true"),
        "only comm=true passes:\n{stdout}"
    );
    assert_eq!(
        events_of(&stdout, "proc.pid", &Value::from(pid_true)).len(),
        1,
        "{stdout}"
    );
    assert!(events_of(&stdout, "proc.pid", &Value::from(pid_false)).is_empty());

    // comm=false: /bin/true is filtered out, /bin/false (run to prove the gadget works) is in.
    let running = start(
        &store,
        &["trace_exec:test", "-o", "json", "--param", "comm=false"],
    );
    let pid_true = spawn_and_wait("true");
    let pid_false = spawn_and_wait("false");
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    assert!(
        events_of(&stdout, "proc.pid", &Value::from(pid_true)).is_empty(),
        "{stdout}"
    );
    assert_eq!(
        events_of(&stdout, "proc.pid", &Value::from(pid_false)).len(),
        1,
        "{stdout}"
    );
}

#[test]
fn kernel_trace_open_reports_opened_file_and_failed_only() {
    if !require_kernel("kernel_trace_open_reports_opened_file_and_failed_only") {
        return;
    }
    let store = TempStore::new();
    build(&store, &sample("trace_open"), "trace_open:test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("present.txt");
    let missing = dir.path().join("missing.txt");
    std::fs::write(&present, b"x").unwrap();
    let me = std::process::id().to_string();
    let fname = |p: &Path| Value::from(p.display().to_string());

    let running = start(
        &store,
        &[
            "trace_open:test",
            "-o",
            "json",
            "--param",
            &format!("pid={me}"),
        ],
    );
    drop(std::fs::File::open(&present).expect("open present"));
    assert!(std::fs::File::open(&missing).is_err());
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let ok = events_of(&stdout, "fname", &fname(&present));
    let failed = events_of(&stdout, "fname", &fname(&missing));
    assert_eq!(ok.len(), 1, "{stdout}");
    assert_eq!(failed.len(), 1, "{stdout}");
    assert_eq!(ok[0]["error"], "");
    assert!(ok[0]["fd"].as_u64().is_some_and(|fd| fd > 2), "{}", ok[0]);
    assert_eq!(ok[0]["proc.pid"], Value::from(std::process::id()));
    assert!(
        ok[0]["flags"]
            .as_str()
            .is_some_and(|f| f.starts_with("O_RDONLY")),
        "{}",
        ok[0]
    );
    assert_eq!(failed[0]["error"], "ENOENT");
    assert_eq!(failed[0]["error_raw"], 2);

    let running = start(
        &store,
        &[
            "trace_open:test",
            "-o",
            "json",
            "--param",
            &format!("pid={me}"),
            "--param",
            "failed=true",
        ],
    );
    drop(std::fs::File::open(&present).expect("open present"));
    assert!(std::fs::File::open(&missing).is_err());
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    assert!(
        events_of(&stdout, "fname", &fname(&present)).is_empty(),
        "failed=true hides successful opens:\n{stdout}"
    );
    assert_eq!(
        events_of(&stdout, "fname", &fname(&missing)).len(),
        1,
        "{stdout}"
    );
    assert!(
        json_lines(&stdout).iter().all(|e| e["error"] != ""),
        "only failures:\n{stdout}"
    );
}

#[test]
fn kernel_snapshot_process_lists_this_process() {
    if !require_kernel("kernel_snapshot_process_lists_this_process") {
        return;
    }
    let store = TempStore::new();
    build(
        &store,
        &sample("snapshot_process"),
        "snapshot_process:test",
        &[],
    );
    let out = store.ok(["run", "snapshot_process:test", "-o", "json"]);
    let me = std::process::id();
    let mine = events_of(&out, "pid", &Value::from(me));
    assert_eq!(mine.len(), 1, "{out}");
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(mine[0]["comm"], comm.trim_end());
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let ppid: u64 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(mine[0]["ppid"], Value::from(ppid));
    // A filter narrows the snapshot to this process.
    let out = store.ok([
        "run",
        "snapshot_process:test",
        "-o",
        "json",
        "--param",
        &format!("pid={me}"),
    ]);
    let all = json_lines(&out);
    assert_eq!(all.len(), 1, "{out}");
    assert_eq!(all[0]["pid"], Value::from(me));
}

#[test]
fn kernel_top_file_shows_bytes_written() {
    if !require_kernel("kernel_top_file_shows_bytes_written") {
        return;
    }
    let store = TempStore::new();
    build(&store, &sample("top_file"), "top_file:test", &[]);
    let dir = tempfile::tempdir().unwrap();
    let name = format!("top_file_probe_{}.dat", std::process::id());
    let path = dir.path().join(&name);
    let me = std::process::id().to_string();
    let running = start(
        &store,
        &[
            "top_file:test",
            "-o",
            "json",
            "--param",
            &format!("pid={me}"),
            "--interval",
            "200ms",
        ],
    );
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&vec![b'z'; 12345]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let rows = events_of(&stdout, "file", &Value::from(name.clone()));
    assert!(
        !rows.is_empty(),
        "no row for {name}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let last = rows.last().unwrap();
    assert_eq!(last["wbytes"], 12345, "{last}");
    assert!(last["writes"].as_u64().is_some_and(|w| w >= 1), "{last}");
    assert_eq!(last["pid"], Value::from(std::process::id()));
    assert!(last["interval"].as_u64().is_some(), "{last}");
}

/// Names of the loaded BPF programs and maps, from bpftool.
fn loaded_names() -> (Vec<String>, Vec<String>) {
    let names = |what: &str| -> Vec<String> {
        let out = run({
            let mut c = Command::new("bpftool");
            c.args(["-j", what, "show"]);
            c
        });
        assert!(
            out.status.success(),
            "bpftool {what} show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect()
    };
    (names("prog"), names("map"))
}

#[test]
fn kernel_broken_gadget_fails_classified_and_leaves_nothing_loaded() {
    if !require_kernel("kernel_broken_gadget_fails_classified_and_leaves_nothing_loaded") {
        return;
    }
    let store = TempStore::new();
    build(&store, &fixture("broken_null_check"), "broken:test", &[]);
    let (progs_before, maps_before) = loaded_names();
    assert!(
        !progs_before.iter().any(|n| n.starts_with("broken_null")),
        "{progs_before:?}"
    );

    let err = store.fails(["run", "broken:test", "--timeout", "5s"]);
    assert!(
        err.contains("[verifier]"),
        "classified as a verifier rejection:\n{err}"
    );
    assert!(
        err.contains("invalid mem access 'map_value_or_null'"),
        "the verifier's message:\n{err}"
    );
    assert!(
        err.contains("bpf_map_lookup_elem"),
        "the log's last lines:\n{err}"
    );
    assert!(err.contains("hint: "), "{err}");

    let out = store
        .cmd(["run", "--verify-only", "broken:test", "-o", "columns"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "--verify-only exits 1 when a program fails"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAILED broken_null_check") && text.contains("[verifier]"),
        "{text}"
    );

    let out = store
        .cmd(["run", "--verify-only", "broken:test", "-o", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["ok"], false);
    assert_eq!(report["programs"][0]["status"], "failed");
    assert_eq!(report["programs"][0]["class"], "verifier");
    assert!(
        report["programs"][0]["verifier_log"]
            .as_str()
            .is_some_and(|l| l.contains("R0 invalid mem access"))
    );

    let (progs_after, maps_after) = loaded_names();
    assert!(
        !progs_after.iter().any(|n| n.starts_with("broken_null")),
        "program left loaded: {progs_after:?}"
    );
    let leaked: Vec<&String> = maps_after
        .iter()
        .filter(|m| m.as_str() == "exec_count" && !maps_before.contains(m))
        .collect();
    assert!(leaked.is_empty(), "map left loaded: {maps_after:?}");
}

#[test]
fn kernel_core_relocation_failure_names_type_and_field() {
    if !require_kernel("kernel_core_relocation_failure_names_type_and_field") {
        return;
    }
    let store = TempStore::new();
    build(&store, &fixture("broken_core_relo"), "core:test", &[]);
    let err = store.fails(["run", "core:test", "--timeout", "5s"]);
    assert!(err.contains("[core-relocation]"), "{err}");
    assert!(
        err.contains("`struct task_struct` field `no_such_field_ig`"),
        "{err}"
    );
    assert!(
        err.contains("the kernel's `struct task_struct` has no field `no_such_field_ig`"),
        "{err}"
    );
}

#[test]
fn kernel_arm64_trace_exec_loads_and_decodes_here() {
    if !require_kernel("kernel_arm64_trace_exec_loads_and_decodes_here") {
        return;
    }
    // Built against the bundled arm64 vmlinux.h (another architecture, another kernel version):
    // it only works here if CO-RE really relocates every field access to this kernel's layout.
    let store = TempStore::new();
    build(
        &store,
        &sample("trace_exec"),
        "trace_exec:arm64",
        &["--platform", "arm64"],
    );
    let out = store
        .cmd([
            "run",
            "--verify-only",
            "--platform",
            "arm64",
            "trace_exec:arm64",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["programs"][0]["status"], "loaded");
    assert!(
        report["gadget"]
            .as_str()
            .is_some_and(|g| g.contains("arm64"))
    );

    // And the relocated reads are right: real_parent->tgid, comm and the mount namespace.
    let running = start(
        &store,
        &["--platform", "arm64", "trace_exec:arm64", "-o", "json"],
    );
    let pid = spawn_and_wait("true");
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let mine = events_of(&stdout, "proc.pid", &Value::from(pid));
    assert_eq!(mine.len(), 1, "{stdout}");
    assert_eq!(mine[0]["proc.comm"], "true");
    assert_eq!(mine[0]["proc.parent.pid"], Value::from(std::process::id()));
    let mntns = std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .display()
        .to_string();
    assert_eq!(mntns, format!("mnt:[{}]", mine[0]["proc.mntns_id"]));
}

#[test]
fn kernel_perf_buffer_fallback_delivers_events() {
    if !require_kernel("kernel_perf_buffer_fallback_delivers_events") {
        return;
    }
    // A copy of this kernel's BTF in which the ring buffer helpers are renamed: to the loader
    // and to the gadget's CO-RE checks (bpf_core_enum_value_exists) this is a kernel without
    // ring buffers, so the tracer map must become a perf event array and the program must use
    // bpf_perf_event_output — for real, on this kernel.
    let mut btf = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let needle = b"BPF_FUNC_ringbuf_";
    let mut renamed = 0;
    for i in 0..btf.len().saturating_sub(needle.len()) {
        if &btf[i..i + needle.len()] == needle {
            btf[i + needle.len() - 2] = b'X';
            renamed += 1;
        }
    }
    assert!(
        renamed >= 4,
        "ring buffer helpers found in the kernel BTF: {renamed}"
    );
    let dir = tempfile::tempdir().unwrap();
    let doctored = dir.path().join("vmlinux-no-ringbuf.btf");
    std::fs::write(&doctored, &btf).unwrap();
    let doctored = doctored.display().to_string();

    let store = TempStore::new();
    build(&store, &sample("trace_exec"), "trace_exec:test", &[]);
    let out = store.ok([
        "run",
        "--verify-only",
        "trace_exec:test",
        "-o",
        "json",
        "--kernel-btf",
        &doctored,
    ]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], true, "{out}");
    assert_eq!(
        report["load"]["perf_maps"],
        serde_json::json!(["events"]),
        "{out}"
    );

    let running = start(
        &store,
        &["trace_exec:test", "-o", "json", "--kernel-btf", &doctored],
    );
    let pid = spawn_and_wait("true");
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let mine = events_of(&stdout, "proc.pid", &Value::from(pid));
    assert_eq!(
        mine.len(),
        1,
        "event through the perf buffer:\n{stdout}\n{stderr}"
    );
    assert_eq!(mine[0]["proc.comm"], "true");
}

#[test]
fn kernel_run_rejects_unknown_param_and_reports_max_events() {
    if !require_kernel("kernel_run_rejects_unknown_param_and_reports_max_events") {
        return;
    }
    let store = TempStore::new();
    build(
        &store,
        &sample("snapshot_process"),
        "snapshot_process:test",
        &[],
    );
    let err = store.fails(["run", "snapshot_process:test", "--param", "nope=1"]);
    assert!(
        err.contains("unknown parameter `nope`; this gadget takes: comm, gid, pid, tid, uid"),
        "{err}"
    );
    let err = store.fails(["run", "snapshot_process:test", "--param", "pid=abc"]);
    assert!(err.contains("invalid value `abc`"), "{err}");
    let out = store.ok([
        "run",
        "snapshot_process:test",
        "-o",
        "json",
        "--max-events",
        "3",
    ]);
    assert_eq!(json_lines(&out).len(), 3, "{out}");
    let out = store.ok([
        "run",
        "snapshot_process:test",
        "-o",
        "columns",
        "--param",
        &format!("pid={}", std::process::id()),
    ]);
    let mut lines = out.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == ["PID", "PPID", "COMM", "UID", "GID", "MNTNS_ID"]),
        "{out}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|r| r.trim_start().starts_with(&std::process::id().to_string())),
        "{out}"
    );
}

#[test]
fn kernel_loader_conventions_max_entries_section_spellings_disabled() {
    if !require_kernel("kernel_loader_conventions_max_entries_section_spellings_disabled") {
        return;
    }
    let store = TempStore::new();
    build(
        &store,
        &fixture("loader_conventions"),
        "conventions:test",
        &[],
    );
    let out = store.ok(["run", "--verify-only", "conventions:test", "-o", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], true, "{out}");
    let programs = report["programs"].as_array().unwrap();
    let by_name = |n: &str| {
        programs
            .iter()
            .find(|p| p["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {out}"))
    };
    assert_eq!(by_name("ig_count")["status"], "loaded");
    assert_eq!(
        by_name("ig_socket")["status"],
        "loaded",
        "section `socket1` loads as a socket filter"
    );
    assert_eq!(by_name("ig_socket")["attach"]["attach"], "not-attached");
    assert_eq!(by_name("ig_disabled")["attach"]["attach"], "not-attached");
    assert!(
        by_name("ig_disabled")["attach"]["reason"]
            .as_str()
            .unwrap()
            .contains("gadget_program_disabled")
    );
    assert_eq!(
        report["load"]["max_entries"],
        serde_json::json!([["counts", 64]]),
        "{out}"
    );

    // The constant is a parameter too; the map the kernel holds has that size.
    let running = start(
        &store,
        &[
            "conventions:test",
            "-o",
            "json",
            "--param",
            "counts_max_entries=128",
        ],
    );
    let shown = run({
        let mut c = Command::new("bpftool");
        c.args(["-j", "map", "show", "name", "counts"]);
        c
    });
    let (status, _, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let maps: Value = serde_json::from_slice(&shown.stdout).expect("bpftool JSON");
    let sizes: Vec<u64> = match &maps {
        Value::Array(a) => a.iter().filter_map(|m| m["max_entries"].as_u64()).collect(),
        m => m["max_entries"].as_u64().into_iter().collect(),
    };
    assert!(
        sizes.contains(&128),
        "map `counts` created with max_entries 128: {maps}"
    );
}

#[test]
fn kernel_missing_attach_point_is_classified() {
    if !require_kernel("kernel_missing_attach_point_is_classified") {
        return;
    }
    let store = TempStore::new();
    build(
        &store,
        &fixture("missing_attach_point"),
        "missing:test",
        &[],
    );
    let out = store
        .cmd(["run", "--verify-only", "missing:test", "-o", "columns"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("[attach-point-missing]"), "{text}");
    assert!(
        text.contains("ig_no_such_category/ig_no_such_event"),
        "{text}"
    );
    let err = store.fails(["run", "missing:test", "--timeout", "5s"]);
    assert!(
        err.contains("[attach-point-missing]") && err.contains("ig_no_such_event"),
        "{err}"
    );
}

/// The WASM module of trace_open_wasm adds `basename` to every event and drops the opens under
/// its `skip-prefix` parameter (by releasing the event), in JSON and in columns.
#[test]
fn kernel_trace_open_wasm_adds_basename_and_drops_skipped_opens() {
    if !require_kernel("kernel_trace_open_wasm_adds_basename_and_drops_skipped_opens") {
        return;
    }
    let store = TempStore::new();
    build(
        &store,
        &sample("trace_open_wasm"),
        "trace_open_wasm:test",
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("wasm-keep.txt");
    let skipped = dir.path().join("drop-me.txt");
    for f in [&keep, &skipped] {
        std::fs::write(f, b"x").unwrap();
    }
    let pid = format!("pid={}", std::process::id());
    let skip = format!("skip-prefix={}/drop-", dir.path().display());

    for format in ["json", "columns"] {
        let running = start(
            &store,
            &[
                "trace_open_wasm:test",
                "-o",
                format,
                "--timeout",
                "4s",
                "--param",
                &pid,
                "--param",
                &skip,
            ],
        );
        drop(std::fs::File::open(&skipped).expect("open file"));
        drop(std::fs::File::open(&keep).expect("open file"));
        let (status, stdout, stderr) = running.wait();
        assert!(status.success(), "{stderr}");
        if format == "json" {
            let events = events_of(&stdout, "fname", &Value::from(keep.display().to_string()));
            assert_eq!(events.len(), 1, "{stdout}\n{stderr}");
            assert_eq!(events[0]["basename"], "wasm-keep.txt", "{}", events[0]);
            assert_eq!(events[0]["proc.pid"], Value::from(std::process::id()));
            let all = json_lines(&stdout);
            // Every event gets the field; the skipped open is gone.
            assert!(all.iter().all(|e| e["basename"].is_string()), "{stdout}");
            assert!(
                !all.iter().any(|e| e["basename"] == "drop-me.txt"),
                "the module drops opens under skip-prefix:\n{stdout}"
            );
            assert!(
                stderr.contains(&format!("wasm params: {skip}")),
                "the module's params are echoed:\n{stderr}"
            );
            // The summary counts printed records and names the drops.
            assert!(
                stderr.contains(&format!("{} records (open: {})", all.len(), all.len()))
                    && stderr.contains("dropped by the WASM module: open: "),
                "{stderr}"
            );
        } else {
            let header = stdout.lines().next().unwrap_or_default();
            assert!(header.ends_with("BASENAME"), "{stdout}");
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains("wasm-keep.txt") && l.trim_end().ends_with("wasm-keep.txt")),
                "a row for the kept open, its basename last:\n{stdout}"
            );
            assert!(!stdout.contains("drop-me.txt"), "{stdout}");
        }
    }
}

#[test]
fn kernel_wasm_module_with_unsupported_import_is_refused_before_loading() {
    if !require_kernel("kernel_wasm_module_with_unsupported_import_is_refused_before_loading") {
        return;
    }
    let store = TempStore::new();
    let dir = tempfile::tempdir().unwrap();
    let src = sample("trace_open_wasm");
    for f in ["program.bpf.c", "gadget.yaml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let module = wat::parse_str(
        r#"(module
  (import "ig" "gadgetLog" (func (param i32 i64)))
  (import "ig" "newPerfReader" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_initialize"))
  (func (export "gadgetAPIVersion") (result i64) i64.const 1)
  (func (export "gadgetInit") (result i32) i32.const 0)
  (func (export "dataSourceCallback") (param i64 i32 i32)))"#,
    )
    .expect("valid WAT");
    std::fs::write(dir.path().join("module.wasm"), module).unwrap();
    std::fs::write(dir.path().join("build.yaml"), "wasm: module.wasm\n").unwrap();
    build(&store, dir.path(), "unsupported_wasm:test", &[]);
    let stderr = store.fails(["run", "unsupported_wasm:test", "--timeout", "2s"]);
    assert!(stderr.contains("newPerfReader"), "{stderr}");
    assert!(stderr.contains("does not support"), "{stderr}");
    assert!(!stderr.contains("gadgetLog"), "{stderr}");
    assert!(
        !stderr.contains("Running "),
        "refused before loading:\n{stderr}"
    );
}

/// This host's key in a btfgen layer: os-release `ID`, `VERSION_ID`, btfhub's arch name, release.
fn host_btfgen_key() -> (String, String, String, String) {
    let os = std::fs::read_to_string("/etc/os-release").expect("/etc/os-release");
    let value = |k: &str| {
        os.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("/etc/os-release has no {k}"))
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string();
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    (value("ID"), value("VERSION_ID"), arch.to_string(), release)
}

/// On a kernel without `/sys/kernel/btf/vmlinux` (hidden here in a private mount namespace) and
/// without `--kernel-btf`, `run` takes this kernel's BTF from the image's btfgen layer (looked up
/// by os-release ID/VERSION_ID, architecture and release), and the gadget's CO-RE reads are
/// right: the exec of `/bin/true` is reported with this test as its parent. An image whose layer
/// lacks this kernel, or that has no layer, fails naming what is missing.
#[test]
fn kernel_btfgen_layer_serves_a_kernel_without_btf() {
    if !require_kernel("kernel_btfgen_layer_serves_a_kernel_without_btf") {
        return;
    }
    let store = TempStore::new();
    let dir = store.dir.path();
    let (amd64, arm64) = crate::authoring::debian_kernel_btfs(dir);
    let hub = dir.join("btfhub-archive");
    for (arch_dir, release, btf) in [
        ("x86_64", "6.1.0-56-cloud-amd64", &amd64),
        ("arm64", "6.1.0-56-cloud-arm64", &arm64),
    ] {
        crate::authoring::btfhub_entry(&hub, "debian", "12", arch_dir, release, btf);
    }
    let hub_s = hub.to_str().unwrap();
    let exec = sample("trace_exec");
    build(
        &store,
        &exec,
        "btfgen_old:t",
        &["--btfgen", "--btfhub-archive", hub_s],
    );
    let (id, version, arch_dir, release) = host_btfgen_key();
    crate::authoring::btfhub_entry(
        &hub,
        &id,
        &version,
        &arch_dir,
        &release,
        Path::new("/sys/kernel/btf/vmlinux"),
    );
    build(
        &store,
        &exec,
        "btfgen_new:t",
        &["--btfgen", "--btfhub-archive", hub_s],
    );
    build(&store, &exec, "plain:t", &[]);
    let entry = format!("{id}/{version}/{arch_dir}/{release}.btf");

    let hidden = |args: &[&str]| {
        let mut c = store.cmd(["run"].iter().chain(args));
        ig_image_tests::hide_kernel_btf(&mut c);
        c
    };
    let out = run(hidden(&["btfgen_new:t", "--verify-only", "-o", "json"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["load"]["kernel_btf"],
        format!("btfgen layer: {entry}"),
        "{report}"
    );

    let running = start_cmd(
        hidden(&["btfgen_new:t", "-o", "json", "--timeout", "60s"]),
        &["btfgen_new:t (kernel BTF hidden)"],
    );
    let pid = spawn_and_wait("true");
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{status}\n{stderr}");
    let mine = events_of(&stdout, "proc.pid", &Value::from(pid));
    assert_eq!(
        mine.len(),
        1,
        "one exec event for pid {pid}\n{stdout}\n{stderr}"
    );
    assert_eq!(mine[0]["proc.comm"], "true");
    assert_eq!(
        mine[0]["proc.parent.pid"],
        Value::from(std::process::id()),
        "the CO-RE read of the parent went through the layer's BTF"
    );

    for (image, expect) in [
        (
            "btfgen_old:t",
            vec![entry.as_str(), "debian/12/x86_64/6.1.0-56-cloud-amd64.btf"],
        ),
        (
            "plain:t",
            vec!["has no btfgen layer", "--btfgen", "--kernel-btf"],
        ),
    ] {
        let out = run(hidden(&[image, "--verify-only"]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{image}: {stdout}{stderr}");
        for want in expect {
            assert!(
                stdout.contains(want) || stderr.contains(want),
                "{image}: `{want}` missing from\n{stdout}{stderr}"
            );
        }
    }
}

/// trace_kill: the syscall's arguments read through CO-RE from `struct syscall_trace_enter`'s
/// flexible `args[]` arrive as the target pid and the signal.
#[test]
fn kernel_trace_kill_reads_syscall_arguments_through_core() {
    if !require_kernel("kernel_trace_kill_reads_syscall_arguments_through_core") {
        return;
    }
    let store = TempStore::new();
    build(&store, &sample("trace_kill"), "trace_kill:test", &[]);
    let me = std::process::id();
    let running = start(
        &store,
        &[
            "trace_kill:test",
            "-o",
            "json",
            "--param",
            &format!("pid={me}"),
        ],
    );
    // Signal 0 checks a pid without sending anything: to ourselves it succeeds, to a pid above
    // pid_max it fails with ESRCH.
    let absent: i32 = 0x3fff_fff0;
    // SAFETY: kill(2) with signal 0 has no effect on any process.
    assert_eq!(unsafe { libc::kill(me as i32, 0) }, 0);
    // SAFETY: as above; the pid does not exist.
    assert_eq!(unsafe { libc::kill(absent, 0) }, -1);
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let ok = events_of(&stdout, "target", &Value::from(me));
    assert_eq!(ok.len(), 1, "{stdout}");
    assert_eq!(ok[0]["sig_raw"], 0, "{}", ok[0]);
    assert_eq!(ok[0]["error"], "", "{}", ok[0]);
    assert_eq!(ok[0]["proc.pid"], Value::from(me));
    let failed = events_of(&stdout, "target", &Value::from(absent));
    assert_eq!(failed.len(), 1, "{stdout}");
    assert_eq!(failed[0]["error"], "ESRCH", "{}", failed[0]);
}

/// trace_stacks: a kernel stack id from `ig_kstack` on every event, and a user stack (the
/// executable's inode, a stack id) only with `collect-ustack`.
#[test]
fn kernel_trace_stacks_records_kernel_and_user_stacks() {
    if !require_kernel("kernel_trace_stacks_records_kernel_and_user_stacks") {
        return;
    }
    let store = TempStore::new();
    build(&store, &sample("trace_stacks"), "trace_stacks:test", &[]);
    let me = std::process::id().to_string();
    let dir = tempfile::tempdir().unwrap();
    for collect in ["false", "true"] {
        let file = dir.path().join(format!("victim-{collect}"));
        std::fs::write(&file, b"x").unwrap();
        let running = start(
            &store,
            &[
                "trace_stacks:test",
                "-o",
                "json",
                "--param",
                &format!("pid={me}"),
                "--param",
                &format!("collect-ustack={collect}"),
            ],
        );
        std::fs::remove_file(&file).unwrap();
        settle();
        let (status, stdout, stderr) = running.interrupt();
        assert!(status.success(), "{stderr}");
        let events = events_of(&stdout, "name", &Value::from(file.display().to_string()));
        assert_eq!(
            events.len(),
            1,
            "collect-ustack={collect}: {stdout}\n{stderr}"
        );
        let e = &events[0];
        let kstack = e["kstack_raw"].as_u64().unwrap();
        // A stack id is a bucket of ig_kstack: its 10 000 entries are rounded up to 16 384
        // buckets by the kernel (stack_map_alloc: roundup_pow_of_two), so any id below that.
        assert!(kstack < 16_384, "a stack id of ig_kstack: {e}");
        let inode = e["ustack_raw.inode"].as_u64().unwrap();
        if collect == "true" {
            assert!(inode != 0, "the executable's inode: {e}");
        } else {
            assert_eq!(inode, 0, "no user stack without collect-ustack: {e}");
        }
    }
}

/// trace_sock_owner: TCP state changes of a local connection decode with both endpoints; the
/// owner comes from the socket enricher map, which this runtime leaves empty.
#[test]
fn kernel_trace_sock_owner_reports_tcp_state_changes() {
    if !require_kernel("kernel_trace_sock_owner_reports_tcp_state_changes") {
        return;
    }
    let store = TempStore::new();
    build(
        &store,
        &sample("trace_sock_owner"),
        "trace_sock_owner:test",
        &[],
    );
    let running = start(&store, &["trace_sock_owner:test", "-o", "json"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (server, _) = listener.accept().unwrap();
    drop(client);
    drop(server);
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    // Endpoints decode as `addr:port`, the state enums by name on the `_raw` fields.
    let suffix = format!(":{port}");
    let ours: Vec<Value> = json_lines(&stdout)
        .into_iter()
        .filter(|e| {
            [&e["src"], &e["dst"]]
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.ends_with(&suffix)))
        })
        .collect();
    let states: Vec<&str> = ours
        .iter()
        .filter_map(|e| e["newstate_raw"].as_str())
        .collect();
    assert!(states.contains(&"tcp_syn_sent"), "{states:?}\n{stdout}");
    assert!(states.contains(&"tcp_established"), "{states:?}\n{stdout}");
    assert!(ours.iter().all(|e| e["enriched"] == 0), "{stdout}");
}
