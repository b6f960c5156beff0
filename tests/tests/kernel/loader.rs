//! Kernel tests of the loader (libbpf with the gadget conventions on top): one fixture per case
//! aya 0.14 could not load, each loaded through this kernel's verifier and, where it emits
//! records, run against actions of the test itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use ig_image_tests::{TempStore, fixture, require_kernel, run};
use serde_json::Value;

use super::{build, events_of, settle, spawn_and_wait, start};

/// `run --verify-only IMAGE -o json`, which must succeed; the report.
fn verify_ok(store: &TempStore, image: &str) -> Value {
    let out = store.ok(["run", "--verify-only", image, "-o", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["ok"], true, "{out}");
    report
}

/// The program called `name` in a verify report.
fn program<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["programs"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no program `{name}` in {report}"))
}

/// `bpftool -j KIND show id ID`, as JSON (null when it fails).
fn bpftool_show(kind: &str, id: &str) -> Value {
    let shown = run({
        let mut c = Command::new("bpftool");
        c.args(["-j", kind, "show", "id", id]);
        c
    });
    serde_json::from_slice(&shown.stdout).unwrap_or(Value::Null)
}

/// The max_entries of the maps called `name` that the process `pid` uses: the maps it holds a
/// descriptor of and the maps its programs reference, found from its descriptors
/// (`/proc/PID/fdinfo`: `map_id`, `prog_id`) and shown with `bpftool … show id ID`. Only that
/// process's objects are looked at, so maps of parallel tests appearing and vanishing do not
/// matter (a walk over every map on the host can fail under that churn).
fn map_sizes(pid: u32, name: &str) -> Vec<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).expect("the run's descriptors");
    let mut map_ids = std::collections::BTreeSet::new();
    for fd in fds.flatten() {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        let field = |key: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
        };
        if let Some(id) = field("map_id:") {
            map_ids.insert(id);
        } else if let Some(id) = field("prog_id:") {
            let prog = bpftool_show("prog", &id);
            for m in prog["map_ids"].as_array().into_iter().flatten() {
                map_ids.insert(m.to_string());
            }
        }
    }
    map_ids
        .iter()
        .map(|id| bpftool_show("map", id))
        .filter(|m| m["name"] == name)
        .filter_map(|m| m["max_entries"].as_u64())
        .collect()
}

#[test]
fn kernel_loader_stack_maps_load_and_give_stack_ids() {
    if !require_kernel("kernel_loader_stack_maps_load_and_give_stack_ids") {
        return;
    }
    let store = TempStore::new();
    build(&store, &fixture("loader_stack_maps"), "stacks:test", &[]);
    let report = verify_ok(&store, "stacks:test");
    assert_eq!(program(&report, "ig_stacks")["status"], "loaded");

    let running = start(&store, &["stacks:test", "-o", "json"]);
    let pid = spawn_and_wait("true");
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let mine = events_of(&stdout, "pid", &Value::from(pid));
    assert_eq!(
        mine.len(),
        1,
        "one exec event for {pid}:\n{stdout}\n{stderr}"
    );
    assert!(
        mine[0]["kernel_stack_id"]
            .as_i64()
            .is_some_and(|id| id >= 0),
        "bpf_get_stackid() on ig_kstack gave an id: {}",
        mine[0]
    );
}

#[test]
fn kernel_loader_syscall_args_core_and_type_matches() {
    if !require_kernel("kernel_loader_syscall_args_core_and_type_matches") {
        return;
    }
    let store = TempStore::new();
    build(&store, &fixture("loader_core_kinds"), "corekinds:test", &[]);
    let report = verify_ok(&store, "corekinds:test");
    assert_eq!(program(&report, "ig_openat")["status"], "loaded");
    assert_eq!(program(&report, "ig_type_matches")["status"], "loaded");

    let running = start(&store, &["corekinds:test", "-o", "json"]);
    // An exec sets the TYPE_MATCHES flag; then an open whose arguments the test knows.
    spawn_and_wait("true");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ig-loader-openat-probe");
    std::fs::write(&path, b"x").unwrap();
    let _ = std::fs::File::open(&path).unwrap();
    settle();
    let (status, stdout, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    let path_s = path.display().to_string();
    let mine: Vec<Value> = events_of(&stdout, "pid", &Value::from(std::process::id()))
        .into_iter()
        .filter(|e| e["fname"] == path_s.as_str())
        .collect();
    assert!(
        !mine.is_empty(),
        "openat of {path_s} seen:\n{stdout}\n{stderr}"
    );
    // File::open is openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0o666).
    let read_only = mine
        .iter()
        .find(|e| e["flags"].as_u64() == Some(libc::O_CLOEXEC as u64))
        .unwrap_or_else(|| panic!("args[2] read through CO-RE is O_RDONLY|O_CLOEXEC: {mine:?}"));
    assert_eq!(read_only["type_matches"], 1, "{read_only}");
}

/// Every path under `dir`, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn kernel_loader_pinned_maps_stay_in_a_private_bpffs() {
    if !require_kernel("kernel_loader_pinned_maps_stay_in_a_private_bpffs") {
        return;
    }
    let store = TempStore::new();
    build(&store, &fixture("loader_pinned_maps"), "pinned:test", &[]);
    let host_bpffs = Path::new("/sys/fs/bpf");
    let before = tree(host_bpffs);
    let tmp = tempfile::tempdir().unwrap();
    let in_tmp = |store: &TempStore, args: &[&str]| {
        let mut c = store.cmd(args);
        c.env("TMPDIR", tmp.path());
        run(c)
    };

    // Twice: pins left behind by the first run would make the second reuse or fail.
    for _ in 0..2 {
        let out = in_tmp(
            &store,
            &["run", "--verify-only", "pinned:test", "-o", "json"],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            report["load"]["pinned_maps"],
            serde_json::json!(["ig_pinned_counts", "ig_pinned_total"]),
            "{report}"
        );
        assert_eq!(program(&report, "ig_pinned")["status"], "loaded");
    }

    // While a run holds the maps, the host's bpffs still shows nothing of them.
    let running = start(&store, &["pinned:test", "-o", "json"]);
    spawn_and_wait("true");
    let during = tree(host_bpffs);
    let sizes = map_sizes(running.child.id(), "ig_pinned_count");
    let (status, _, stderr) = running.interrupt();
    assert!(status.success(), "{stderr}");
    // (Maps of the earlier verify runs may not be freed yet: the kernel frees them lazily.)
    assert!(
        sizes.contains(&128),
        "the pinned map is loaded while running: {sizes:?}"
    );
    assert_eq!(during, before, "nothing pinned in {}", host_bpffs.display());
    assert_eq!(tree(host_bpffs), before);
    assert_eq!(
        tree(tmp.path()),
        Vec::<PathBuf>::new(),
        "the private bpffs mount point is removed"
    );
}

#[test]
fn kernel_loader_socket_enricher_types_come_from_the_runtime() {
    if !require_kernel("kernel_loader_socket_enricher_types_come_from_the_runtime") {
        return;
    }
    let store = TempStore::new();
    build(
        &store,
        &fixture("loader_socket_enricher"),
        "sockets:test",
        &[],
    );
    let report = verify_ok(&store, "sockets:test");
    for p in ["ig_sock_filter", "ig_sock_tc", "ig_sock_trace"] {
        assert_eq!(program(&report, p)["status"], "loaded", "{p}: {report}");
    }
    assert_eq!(
        report["load"]["runtime_types"],
        serde_json::json!(["gadget_socket_value"]),
        "{report}"
    );
    assert_eq!(
        report["load"]["program_types"],
        serde_json::json!([
            ["socket1", "socket_filter"],
            ["classifier/ingress", "sched_cls"]
        ]),
        "{report}"
    );
    assert_eq!(
        program(&report, "ig_sock_filter")["attach"]["attach"],
        "not-attached"
    );
}

#[test]
fn kernel_loader_classifier_perf_event_sections_and_zero_sized_maps() {
    if !require_kernel("kernel_loader_classifier_perf_event_sections_and_zero_sized_maps") {
        return;
    }
    let store = TempStore::new();
    build(&store, &fixture("loader_sections"), "sections:test", &[]);
    let report = verify_ok(&store, "sections:test");
    assert_eq!(program(&report, "ig_tc_count")["status"], "loaded");
    assert_eq!(program(&report, "ig_on_sample")["status"], "loaded");
    assert_eq!(
        report["load"]["program_types"],
        serde_json::json!([
            ["classifier/egress/count", "sched_cls"],
            ["perf_event/ig", "perf_event"]
        ]),
        "{report}"
    );
    assert_eq!(
        report["load"]["max_entries"],
        serde_json::json!([["seen", 32]]),
        "{report}"
    );

    // The sizes the kernel created: the parameter's for `seen`, one slot per possible CPU for
    // the 0-sized perf event array. (A run of this gadget stops at once, having no data source,
    // so the kernel's sizes are read from the report, which asks the kernel for them.)
    let out = store.ok([
        "run",
        "--verify-only",
        "sections:test",
        "-o",
        "json",
        "--param",
        "seen_max_entries=48",
    ]);
    let sized: Value = serde_json::from_str(&out).unwrap();
    let kernel_size = |name: &str| -> Vec<u64> {
        sized["load"]["maps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m[0] == name)
            .filter_map(|m| m[1].as_u64())
            .collect()
    };
    let (seen, samples) = (kernel_size("seen"), kernel_size("samples"));
    assert!(
        seen.contains(&48),
        "`seen` sized by its parameter: {seen:?}\n{sized}"
    );
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let cpus: u64 = possible
        .trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
            None => 1,
        })
        .sum();
    assert!(
        samples.contains(&cpus),
        "`samples` sized to {cpus} CPUs: {samples:?}"
    );
}

/// Sets the size of the first section whose name starts with `prefix` in an ELF64
/// little-endian object.
fn resize_section(object: &mut [u8], prefix: &str, delta: i64) -> String {
    let u16_at = |d: &[u8], o: usize| u16::from_le_bytes([d[o], d[o + 1]]) as usize;
    let u32_at = |d: &[u8], o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |d: &[u8], o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap());
    let shoff = u64_at(object, 0x28) as usize;
    let (shentsize, shnum, shstrndx) = (
        u16_at(object, 0x3a),
        u16_at(object, 0x3c),
        u16_at(object, 0x3e),
    );
    let strtab = u64_at(object, shoff + shstrndx * shentsize + 0x18) as usize;
    for i in 0..shnum {
        let hdr = shoff + i * shentsize;
        let name_at = strtab + u32_at(object, hdr);
        let end = object[name_at..].iter().position(|b| *b == 0).unwrap();
        let name = String::from_utf8_lossy(&object[name_at..name_at + end]).into_owned();
        if name.starts_with(prefix) {
            let size = u64_at(object, hdr + 0x20) as i64 + delta;
            object[hdr + 0x20..hdr + 0x28].copy_from_slice(&(size as u64).to_le_bytes());
            return name;
        }
    }
    panic!("no section `{prefix}*`");
}

/// An object whose program section is not a whole number of instructions (issue 12: aya-obj
/// panicked on it) gets a clear error naming the problem, not a panic.
#[test]
fn kernel_loader_program_section_not_whole_instructions_is_an_error() {
    if !require_kernel("kernel_loader_program_section_not_whole_instructions_is_an_error") {
        return;
    }
    let store = TempStore::new();
    let out_dir = tempfile::tempdir().unwrap();
    build(
        &store,
        &fixture("loader_pinned_maps"),
        "odd:test",
        &["--output-dir", out_dir.path().to_str().unwrap()],
    );
    let object = std::fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("amd64") || p.to_string_lossy().contains("x86"))
        .or_else(|| {
            std::fs::read_dir(out_dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "o"))
        })
        .expect("an object in --output-dir");
    let mut bytes = std::fs::read(&object).unwrap();
    let section = resize_section(&mut bytes, "tracepoint/", -4);
    let odd = out_dir.path().join("odd.bpf.o");
    std::fs::write(&odd, &bytes).unwrap();
    let out = store
        .cmd(["run", "--verify-only", odd.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "{:?}: {text}",
        out.status
    );
    assert!(
        text.contains(&section) || text.contains("size") || text.contains("corrupt"),
        "the error names the section or its size: {text}"
    );
}
