//! Hostile WASM modules and eBPF objects (issue 12, rows 3, 6 and 6b): each is refused or
//! stopped with a clear error naming the culprit, exit status 1 or 2, in bounded time and
//! memory, and the store is left unchanged. None of these needs the kernel: the WASM module
//! runs, and objects are checked, before anything is loaded.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ig_image_tests::{TempStore, fixture, sample};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Most time and memory a refused or stopped command may take.
const TIME_LIMIT: Duration = Duration::from_secs(5);
const MEMORY_LIMIT_KB: i64 = 200 * 1024;

const WASM_LAYER: &str = "application/vnd.gadget.wasm.program.v1+binary";
const EBPF_LAYER: &str = "application/vnd.gadget.ebpf.program.v1+binary";

/// How a command ended: status, stderr, wall time and peak memory (kB).
struct Ended {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
    max_rss_kb: i64,
}

/// The line a looping module logs (`-v`) just before it loops.
const LOOPING: &str = "wasm fd 1: looping";

/// Runs `cmd`, sends `signal` once the module logged [`LOOPING`] when given, and waits
/// (killing it after 60 s so that a hang fails the test instead of blocking it).
// The child is reaped by `wait4` (for its rusage), which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_bounded(mut cmd: Command, signal: Option<libc::c_int>) -> Ended {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn ig-image");
    let pid = child.id() as libc::pid_t;
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(sig) = signal.filter(|_| line.contains(LOOPING)) {
                // SAFETY: `pid` is our child, not yet reaped (it has not closed stderr).
                unsafe { libc::kill(pid, sig) };
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        // SAFETY: at worst the pid is gone (ESRCH); the test has failed by then anyway.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let elapsed = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Ended {
        code,
        stderr: reader.join().unwrap(),
        elapsed,
        max_rss_kb: usage.ru_maxrss,
    }
}

/// The refusal every row expects: exit 1 or 2, a message containing each of `needles`,
/// bounded time and memory.
fn assert_refused(e: &Ended, needles: &[&str]) {
    assert!(
        matches!(e.code, Some(1 | 2)),
        "exit status {:?}, want 1 or 2\n{}",
        e.code,
        e.stderr
    );
    for n in needles {
        assert!(e.stderr.contains(n), "stderr lacks `{n}`:\n{}", e.stderr);
    }
    assert!(!e.stderr.contains("panicked"), "{}", e.stderr);
    assert!(e.elapsed < TIME_LIMIT, "took {:?}\n{}", e.elapsed, e.stderr);
    assert!(
        e.max_rss_kb < MEMORY_LIMIT_KB,
        "peak memory {} kB\n{}",
        e.max_rss_kb,
        e.stderr
    );
}

/// Builds trace_open's eBPF program with `module` as its WASM module, tagged `tag`.
fn build_with_module(store: &TempStore, module: &[u8], tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = sample("trace_open_wasm");
    for f in ["program.bpf.c", "gadget.yaml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("module.wasm"), module).unwrap();
    std::fs::write(dir.path().join("build.yaml"), "wasm: module.wasm\n").unwrap();
    store.ok(["build", &dir.path().display().to_string(), "-t", tag]);
}

/// A module that passes the build's validation and whose export `looping` logs [`LOOPING`]
/// (on stdout, through WASI) and then never returns.
fn module_looping_in(looping: &str) -> Vec<u8> {
    let func = |name: &str, result: &str, value: &str| {
        if name == looping {
            format!(
                "(func (export \"{name}\") {result}
                   (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
                   (loop (br 0)) unreachable)"
            )
        } else {
            format!("(func (export \"{name}\") {result} {value})")
        }
    };
    let mut funcs = vec![
        func("_initialize", "", ""),
        func("gadgetAPIVersion", "(result i64)", "i64.const 1"),
    ];
    for call in ["gadgetInit", "gadgetStart", "gadgetStop"] {
        funcs.push(func(call, "(result i32)", "i32.const 0"));
    }
    funcs.push("(func (export \"dataSourceCallback\") (param i64 i32 i32))".into());
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "looping\n")
  (data (i32.const 16) "\00\00\00\00\08\00\00\00")
  {})"#,
        funcs.join("\n")
    ))
    .expect("valid WAT")
}

/// Row 6: `--timeout` stops a module that loops in `_initialize`.
#[test]
fn wasm_looping_in_initialize_is_stopped_by_the_timeout() {
    let store = TempStore::new();
    build_with_module(&store, &module_looping_in("_initialize"), "loop_init:test");
    let before = store.snapshot();
    let e = run_bounded(
        store.cmd(["run", "loop_init:test", "--timeout", "1s"]),
        None,
    );
    assert_refused(&e, &["`_initialize` was interrupted", "--timeout"]);
    assert!(e.elapsed >= Duration::from_millis(900), "{:?}", e.elapsed);
    assert_eq!(store.snapshot(), before, "the store changed");
}

/// Row 6: the first SIGTERM stops a module that loops in `gadgetInit`.
#[test]
fn wasm_looping_in_gadget_init_is_stopped_by_sigterm() {
    let store = TempStore::new();
    build_with_module(&store, &module_looping_in("gadgetInit"), "loop_ginit:test");
    let e = run_bounded(
        store.cmd(["run", "loop_ginit:test", "-v"]),
        Some(libc::SIGTERM),
    );
    assert_refused(&e, &["`gadgetInit` was interrupted", "SIGINT or SIGTERM"]);
}

/// Row 6: the first SIGINT stops a module that loops in `gadgetStart`. (Without a signal or a
/// timeout its fuel budget ends it: unit-tested in runtime-min/src/wasm.rs, where the time it
/// takes on a loaded machine does not matter.)
#[test]
fn wasm_looping_in_gadget_start_is_stopped_by_sigint() {
    let store = TempStore::new();
    build_with_module(
        &store,
        &module_looping_in("gadgetStart"),
        "loop_gstart:test",
    );
    let e = run_bounded(
        store.cmd(["run", "loop_gstart:test", "-v"]),
        Some(libc::SIGINT),
    );
    assert_refused(&e, &["`gadgetStart` was interrupted", "SIGINT or SIGTERM"]);
}

/// Rewrites every layer of `media_type` in the image `tag` of `store` to `bytes` (new blobs,
/// manifests and index, digests and sizes right): an image as a registry could serve it.
fn replace_layer(store: &Path, tag: &str, media_type: &str, bytes: &[u8]) {
    let blob_path = |digest: &str| {
        store
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").expect("sha256 digest"))
    };
    let put = |data: &[u8]| -> (String, usize) {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        std::fs::write(blob_path(&digest), data).unwrap();
        (digest, data.len())
    };
    let read = |digest: &str| -> Value {
        serde_json::from_slice(&std::fs::read(blob_path(digest)).unwrap()).unwrap()
    };
    let index_path = store.join("index.json");
    let mut top: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = top["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| {
            e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!("/{tag}")))
        })
        .unwrap_or_else(|| panic!("no entry for {tag}"));
    let mut index = read(entry["digest"].as_str().unwrap());
    let mut replaced = 0;
    for m in index["manifests"].as_array_mut().unwrap() {
        let mut manifest = read(m["digest"].as_str().unwrap());
        for layer in manifest["layers"].as_array_mut().unwrap() {
            if layer["mediaType"] == media_type {
                let (d, n) = put(bytes);
                layer["digest"] = d.into();
                layer["size"] = n.into();
                replaced += 1;
            }
        }
        let (d, n) = put(&serde_json::to_vec(&manifest).unwrap());
        m["digest"] = d.into();
        m["size"] = n.into();
    }
    assert!(replaced > 0, "{tag} has no `{media_type}` layer");
    let (d, n) = put(&serde_json::to_vec(&index).unwrap());
    entry["digest"] = d.into();
    entry["size"] = n.into();
    std::fs::write(&index_path, serde_json::to_vec(&top).unwrap()).unwrap();
}

/// Row 6b: `run --verify-only` refuses an image whose WASM layer is empty, random or
/// truncated, as `run` does, before anything is loaded.
#[test]
fn wasm_layer_that_is_broken_is_refused_by_verify_only_and_run() {
    let store = TempStore::new();
    let good = module_looping_in("none");
    build_with_module(&store, &good, "broken_wasm:test");
    let mut random = vec![0u8; 4096];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("empty", Vec::new(), "empty"),
        ("random", random, "WASM module"),
        ("truncated", good[..good.len() - 7].to_vec(), "WASM module"),
    ];
    for (what, bytes, needle) in cases {
        replace_layer(&store.store(), "broken_wasm:test", WASM_LAYER, &bytes);
        let before = store.snapshot();
        for args in [
            vec!["run", "broken_wasm:test", "--verify-only"],
            vec!["run", "broken_wasm:test", "--timeout", "1s"],
        ] {
            let e = run_bounded(store.cmd(&args), None);
            assert_refused(&e, &[needle, "broken_wasm:test"]);
            assert!(!e.stderr.contains("Running "), "{what}: {}", e.stderr);
        }
        assert_eq!(store.snapshot(), before, "{what}: the store changed");
    }
}

/// An object whose first program section is cut to a size that is not a multiple of 8 (its
/// section header says 3 bytes fewer).
fn truncated_program_section(object: &[u8]) -> Vec<u8> {
    let mut o = object.to_vec();
    assert_eq!(&o[..4], b"\x7fELF");
    assert_eq!(o[4], 2, "ELF64");
    assert_eq!(o[5], 1, "little-endian");
    let u16_at =
        |o: &[u8], at: usize| u16::from_le_bytes(o[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |o: &[u8], at: usize| u64::from_le_bytes(o[at..at + 8].try_into().unwrap());
    let shoff = u64_at(&o, 0x28) as usize;
    let (shentsize, shnum) = (u16_at(&o, 0x3a), u16_at(&o, 0x3c));
    for i in 1..shnum {
        let h = shoff + i * shentsize;
        let flags = u64_at(&o, h + 8);
        let size = u64_at(&o, h + 32);
        const SHF_EXECINSTR: u64 = 4;
        if flags & SHF_EXECINSTR != 0 && size >= 16 {
            o[h + 32..h + 40].copy_from_slice(&(size - 3).to_le_bytes());
            return o;
        }
    }
    panic!("no program section");
}

/// Row 3: a program section whose size is not a multiple of 8 is refused by `check`, by
/// `run --verify-only` (the loader's reading) and, in an image, by `inspect` and `run`, each
/// naming the section.
#[test]
fn object_with_a_program_section_not_a_multiple_of_8_is_refused_everywhere() {
    let store = TempStore::new();
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("valid_tracer");
    for f in ["program.bpf.c", "gadget.yaml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    store.ok(["build", &dir.path().display().to_string(), "-t", "cut:test"]);
    // The built object, from the store: the eBPF layer of this machine's manifest.
    let top: Value =
        serde_json::from_slice(&std::fs::read(store.store().join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        std::fs::read(
            store
                .store()
                .join("blobs/sha256")
                .join(d.strip_prefix("sha256:").unwrap()),
        )
        .unwrap()
    };
    let json = |d: &str| -> Value { serde_json::from_slice(&blob(d)).unwrap() };
    let index = json(top["manifests"][0]["digest"].as_str().unwrap());
    let manifest = json(index["manifests"][0]["digest"].as_str().unwrap());
    let layer = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == EBPF_LAYER)
        .expect("an eBPF layer");
    let object = blob(layer["digest"].as_str().unwrap());
    let cut = truncated_program_section(&object);
    let path = dir.path().join("cut.o");
    std::fs::write(&path, &cut).unwrap();
    let file = path.display().to_string();
    let needle = "not a whole number of 8-byte instructions";

    let e = run_bounded(store.cmd(["check", &file]), None);
    assert_refused(&e, &[needle, "section `"]);
    let e = run_bounded(store.cmd(["run", &file, "--verify-only"]), None);
    assert_refused(&e, &[needle]);

    replace_layer(&store.store(), "cut:test", EBPF_LAYER, &cut);
    let before = store.snapshot();
    for args in [
        vec!["inspect", "cut:test"],
        vec!["run", "cut:test", "--verify-only"],
        vec!["check", "cut:test"],
    ] {
        let e = run_bounded(store.cmd(&args), None);
        assert_refused(&e, &[needle]);
    }
    assert_eq!(store.snapshot(), before, "the store changed");
}
