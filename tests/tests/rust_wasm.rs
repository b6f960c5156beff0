//! Issue 6: Rust eBPF gadgets (`sample-gadgets/trace_exec_rs`, cargo + bpf-linker) and WASM
//! modules (`sample-gadgets/trace_open_wasm`, module validation).
//!
//! Rust builds compile `core` (and `std` for WASM) from source, about a minute per target on a
//! quiet machine, so every test here shares one build cache that persists under `target/`
//! (`ig-image-test-rust-cache`): cargo's incremental state is reused across tests and runs, and
//! concurrent builds of one package wait for each other on cargo's lock. Assertions about the
//! cache therefore look at a second build, which must be a hit whatever the first one was.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ig_image_tests::{
    TempStore, assert_success, json_lines, require_kernel, run, sample, workspace_root,
};
use serde_json::Value;

/// The build cache shared by the Rust and WASM builds of this module.
fn shared_cache() -> PathBuf {
    let dir = workspace_root()
        .join("target")
        .join("ig-image-test-rust-cache");
    std::fs::create_dir_all(&dir).expect("create the shared cache");
    dir
}

/// `ig-image --store <store> ARGS` with the shared cache.
fn cmd<S: AsRef<std::ffi::OsStr>>(t: &TempStore, args: &[S]) -> Command {
    let mut c = t.cmd(args);
    c.env("IG_IMAGE_CACHE_DIR", shared_cache());
    c
}

/// `build DIR -t TAG -o json EXTRA...` with the shared cache; the one JSON result.
fn build_json(t: &TempStore, dir: &Path, tag: &str, extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "build".into(),
        dir.display().to_string(),
        "-t".into(),
        tag.into(),
        "-o".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(ToString::to_string));
    let out = run(cmd(t, &args));
    assert_success(&out);
    let mut lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.remove(0)
}

#[test]
fn rust_sample_builds_passes_the_checker_and_a_noop_rebuild_reuses_the_cache() {
    let t = TempStore::new();
    let dir = sample("trace_exec_rs");
    let first = build_json(&t, &dir, "trace_exec_rs:test", &[]);
    assert_eq!(first["platforms"], serde_json::json!(["amd64", "arm64"]));
    assert_eq!(first["warnings"], serde_json::json!([]), "{first}");
    let report = t.check(&[], "amd64,arm64");
    assert!(report.contains("1 image(s)"), "{report}");

    let second = build_json(&t, &dir, "trace_exec_rs:test", &[]);
    assert_eq!(second["cached_objects"], 2, "no-op rebuild: {second}");
    assert_eq!(
        second["digest"], first["digest"],
        "same sources and SOURCE_DATE_EPOCH"
    );
    // No path of this checkout in the objects (BTF line info): the package is `.`, the
    // `gadget-sdk` path dependency `/deps/gadget-sdk-rs`, so the digest does not depend on
    // where the sources live.
    let out_dir = t.dir.path().join("objects");
    let out_s = out_dir.display().to_string();
    build_json(&t, &dir, "trace_exec_rs:test", &["--output-dir", &out_s]);
    let root = workspace_root()
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&root), "{} mentions {root}", path.display());
        assert!(
            text.contains("/deps/gadget-sdk-rs/src/lib.rs"),
            "{}",
            path.display()
        );
    }

    // The object is what the build pipeline checks: tracer, param and BTF are discoverable.
    let inspect = run(cmd(
        &t,
        &[
            "inspect",
            "trace_exec_rs:test",
            "-o",
            "json",
            "--platform",
            "amd64",
        ],
    ));
    assert_success(&inspect);
    let text = String::from_utf8_lossy(&inspect.stdout);
    for wanted in [
        "sched/sched_process_exec",
        "targ_pid",
        "\"exec\"",
        "filename",
    ] {
        assert!(text.contains(wanted), "inspect lacks {wanted}:\n{text}");
    }
    // `GadgetString` fields are `char` arrays after the build's BTF rewrite: strings, decoded as
    // JSON strings; the other fields are untouched.
    let doc: Value = serde_json::from_str(&text).unwrap();
    let fields = doc["platforms"][0]["ebpf"]["datasources"][0]["fields"]
        .as_array()
        .unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no field {name}: {fields:?}"))
    };
    for (name, c_type, len) in [("comm", "char[16]", 16), ("filename", "char[512]", 512)] {
        let f = field(name);
        assert_eq!(f["c_type"], c_type, "{f}");
        assert_eq!(
            f["kind"],
            serde_json::json!({"kind": "string", "len": len}),
            "{f}"
        );
    }
    assert_eq!(field("pid")["c_type"], "u32");
}

#[test]
fn rust_source_edit_misses_the_cache_and_rebuilds_incrementally() {
    // A copy at a fixed place (so cargo's target directory is reused from run to run), with the
    // path dependency on gadget-sdk made absolute.
    let copy = workspace_root()
        .join("target")
        .join("ig-image-test-rust-src")
        .join("trace_exec_rs");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(copy.join("src")).unwrap();
    let from = sample("trace_exec_rs");
    for f in ["Cargo.lock", "gadget.yaml", "src/main.rs"] {
        std::fs::copy(from.join(f), copy.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(from.join("Cargo.toml"))
        .unwrap()
        .replace(
            "path = \"../../gadget-sdk-rs\"",
            &format!(
                "path = \"{}\"",
                workspace_root().join("gadget-sdk-rs").display()
            ),
        );
    std::fs::write(copy.join("Cargo.toml"), manifest).unwrap();

    let t = TempStore::new();
    let amd64 = ["--platform", "amd64"];
    build_json(&t, &copy, "edit:test", &amd64);
    let hit = build_json(&t, &copy, "edit:test", &amd64);
    assert_eq!(hit["cached_objects"], 1, "{hit}");

    let main = copy.join("src/main.rs");
    let mut text = std::fs::read_to_string(&main).unwrap();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    text.push_str(&format!("\n// edited by the test at {stamp}\n"));
    std::fs::write(&main, text).unwrap();
    let edited = build_json(&t, &copy, "edit:test", &amd64);
    assert_eq!(
        edited["cached_objects"], 0,
        "an edited source must rebuild: {edited}"
    );
    let again = build_json(&t, &copy, "edit:test", &amd64);
    assert_eq!(again["cached_objects"], 1, "{again}");
}

#[test]
fn kernel_rust_sample_verifier_loads_and_reports_spawned_true() {
    if !require_kernel("kernel_rust_sample_verifier_loads_and_reports_spawned_true") {
        return;
    }
    let t = TempStore::new();
    build_json(&t, &sample("trace_exec_rs"), "trace_exec_rs:test", &[]);

    let verify = run(cmd(
        &t,
        &["run", "--verify-only", "trace_exec_rs:test", "-o", "json"],
    ));
    assert_success(&verify);
    let report = json_lines(&String::from_utf8_lossy(&verify.stdout));
    assert_eq!(report[0]["ok"], true, "{report:?}");
    let programs = report[0]["programs"].as_array().unwrap();
    let names: Vec<&str> = programs
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ig_exec_fork", "ig_trace_exec"], "{report:?}");
    assert!(
        programs.iter().all(|p| p["status"] == "loaded"),
        "{report:?}"
    );

    let mut running = cmd(
        &t,
        &[
            "run",
            "trace_exec_rs:test",
            "-o",
            "json",
            "--timeout",
            "60s",
        ],
    );
    running.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = running.spawn().expect("spawn ig-image run");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err_thread = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("Running ") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let stdout = child.stdout.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut s = String::new();
        let mut stdout = stdout;
        let _ = stdout.read_to_string(&mut s);
        s
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`ig-image run` never became ready:\n{}",
            err_thread.join().unwrap()
        );
    }
    let mut spawned = Command::new("/bin/true").spawn().expect("/bin/true");
    let pid = spawned.id();
    spawned.wait().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let kill = run({
        let mut c = Command::new("kill");
        c.args(["-INT", &child.id().to_string()]);
        c
    });
    assert!(kill.status.success());
    let status = child.wait().unwrap();
    let stdout = out_thread.join().unwrap();
    let stderr = err_thread.join().unwrap();
    assert!(status.success(), "{status}\n{stderr}");

    let events: Vec<Value> = json_lines(&stdout)
        .into_iter()
        .filter(|e| e["pid"] == pid)
        .collect();
    assert_eq!(
        events.len(),
        1,
        "one exec event for pid {pid}:\n{stdout:.2000}"
    );
    let e = &events[0];
    // `GadgetString` fields: char arrays in the image's BTF, so JSON strings (not arrays of
    // numbers) in runtime-min, as in upstream ig.
    assert_eq!(e["comm"], "true", "{e}");
    assert_eq!(e["filename"], "/bin/true", "{e}");
    assert_eq!(
        e["ppid"],
        std::process::id(),
        "the test process forked it: {e}"
    );
    assert!(e["timestamp_raw"].as_u64().unwrap() > 0, "{e}");
}

#[test]
fn wasm_sample_module_is_bundled_and_validated() {
    let t = TempStore::new();
    build_json(&t, &sample("trace_open_wasm"), "trace_open_wasm:test", &[]);
    t.check(&[], "amd64,arm64");
    let mut digests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let out = run(cmd(
            &t,
            &[
                "inspect",
                "trace_open_wasm:test",
                "-o",
                "json",
                "--platform",
                arch,
            ],
        ));
        assert_success(&out);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers = doc["platforms"][0]["manifest"]["layers"]
            .as_array()
            .unwrap();
        let types: Vec<&str> = layers
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "application/vnd.gadget.ebpf.program.v1+binary",
                "application/vnd.gadget.wasm.program.v1+binary"
            ]
        );
        digests.push(layers[1]["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1], "one module for every platform");
    let hex = digests[0].strip_prefix("sha256:").unwrap();
    let module = std::fs::read(t.store().join("blobs/sha256").join(hex)).unwrap();
    assert!(module.starts_with(b"\0asm\x01\0\0\0"));
    for name in [
        &b"gadgetAPIVersion"[..],
        b"_initialize",
        b"dataSourceCallback",
        b"dataSourceAddField",
        b"basename",
    ] {
        assert!(
            module.windows(name.len()).any(|w| w == name),
            "module lacks {}",
            String::from_utf8_lossy(name)
        );
    }
}

/// A gadget directory with a minimal gadget.yaml and `wasm: <module>`.
fn wasm_gadget(root: &Path, name: &str, module: &str, source: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("gadget.yaml"),
        format!("name: {name}\ndescription: broken module\n"),
    )
    .unwrap();
    std::fs::write(dir.join("build.yaml"), format!("wasm: {module}\n")).unwrap();
    std::fs::write(dir.join(module), source).unwrap();
    dir
}

const C_PRELUDE: &str = "#include <stdint.h>\n\
#define IG(n) __attribute__((import_module(\"ig\"), import_name(#n)))\n\
#define EXPORT(n) __attribute__((export_name(#n)))\n";

#[test]
fn broken_wasm_modules_fail_the_build_naming_the_culprit() {
    let root = tempfile::tempdir().unwrap();
    let version = "EXPORT(gadgetAPIVersion) uint64_t gadgetAPIVersion(void) { return 1; }\n";
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            wasm_gadget(
                root.path(),
                "no_version",
                "m.c",
                &format!(
                    "{C_PRELUDE}EXPORT(gadgetInit) int32_t gadgetInit(void) {{ return 0; }}\n"
                ),
            ),
            vec!["missing export `gadgetAPIVersion`: expected a function () -> (i64)"],
        ),
        (
            wasm_gadget(
                root.path(),
                "version_i32",
                "m.c",
                &format!(
                    "{C_PRELUDE}EXPORT(gadgetAPIVersion) int32_t gadgetAPIVersion(void) {{ return 1; }}\n"
                ),
            ),
            vec!["export `gadgetAPIVersion` has type () -> (i32), expected () -> (i64)"],
        ),
        (
            wasm_gadget(
                root.path(),
                "bad_hook",
                "m.c",
                &format!("{C_PRELUDE}{version}EXPORT(gadgetStart) void gadgetStart(void) {{}}\n"),
            ),
            vec!["export `gadgetStart` has type () -> (), expected () -> (i32)"],
        ),
        (
            wasm_gadget(
                root.path(),
                "bad_import_type",
                "m.c",
                &format!(
                    "{C_PRELUDE}{version}IG(gadgetLog) void gadgetLog(int32_t level);\n\
                     EXPORT(gadgetInit) int32_t gadgetInit(void) {{ gadgetLog(1); return 0; }}\n"
                ),
            ),
            vec!["`ig` import `gadgetLog` has type (i32) -> (), expected (i32, i64) -> ()"],
        ),
        (
            wasm_gadget(
                root.path(),
                "unknown_import",
                "m.c",
                &format!(
                    "{C_PRELUDE}{version}IG(frobnicate) int32_t frobnicate(int32_t);\n\
                     __attribute__((import_module(\"env\"), import_name(\"helper\"))) int32_t helper(void);\n\
                     EXPORT(gadgetInit) int32_t gadgetInit(void) {{ return frobnicate(helper()); }}\n"
                ),
            ),
            vec![
                "unknown `ig` import `frobnicate`",
                "import `env`.`helper`: unknown import module `env`",
            ],
        ),
    ];
    // A command module (a `main`, no reactor), prebuilt with clang: bundled `.wasm` files are
    // validated too.
    let command = wasm_gadget(
        root.path(),
        "command",
        "main.c",
        &format!("{C_PRELUDE}{version}int main(void) {{ return 0; }}\n"),
    );
    let clang = ["clang-19", "clang-20", "clang-21", "clang-22"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("a clang-NN for wasm32-wasi (scripts/setup installs clang-19)");
    let built = run({
        let mut c = Command::new(clang);
        c.args(["--target=wasm32-wasi", "-O2", "-o"])
            .arg(command.join("command.wasm"))
            .arg(command.join("main.c"));
        c
    });
    assert_success(&built);
    std::fs::write(command.join("build.yaml"), "wasm: command.wasm\n").unwrap();

    let t = TempStore::new();
    let mut all = cases.clone();
    all.push((
        command,
        vec![
            "missing export `_initialize`: expected a function () -> ()",
            "export `_start`: a WASI command module",
        ],
    ));
    for (dir, wanted) in &all {
        let mut args = vec!["build".to_string(), dir.display().to_string()];
        args.extend(["-t".into(), "broken:test".into()]);
        let out = run(cmd(&t, &args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} built:\n{stderr}", dir.display());
        for w in wanted {
            assert!(
                stderr.contains(w),
                "{}: wanted {w:?} in:\n{stderr}",
                dir.display()
            );
        }
    }
    // Failed builds store nothing: no blob, no tag.
    for (path, content) in t.snapshot() {
        assert!(
            !path.starts_with("blobs"),
            "a failed build stored {}",
            path.display()
        );
        if path == Path::new("index.json") {
            let index: Value = serde_json::from_slice(&content).unwrap();
            assert_eq!(index["manifests"], serde_json::json!([]), "{index}");
        }
    }
}

#[test]
fn rust_wasm_crate_builds_into_a_valid_reactor_module() {
    // A gadget with its cdylib inside it (build.yaml paths stay inside the gadget directory), at
    // a fixed place, so cargo's target directory (std built from source) is reused.
    let gadget = workspace_root()
        .join("target")
        .join("ig-image-test-rust-src")
        .join("rust_module_gadget");
    let krate = gadget.join("wasm_module");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"wasm_module\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [workspace]\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
         [profile.release]\npanic = \"abort\"\nopt-level = \"s\"\n",
    )
    .unwrap();
    std::fs::write(
        krate.join("src/lib.rs"),
        "#[link(wasm_import_module = \"ig\")]\n\
         unsafe extern \"C\" {\n    fn gadgetLog(level: i32, msg: u64);\n}\n\n\
         #[unsafe(no_mangle)]\npub extern \"C\" fn gadgetAPIVersion() -> u64 {\n    1\n}\n\n\
         #[unsafe(no_mangle)]\npub extern \"C\" fn gadgetInit() -> i32 {\n\
         \x20   let msg = String::from(\"hello from a Rust module\");\n\
         \x20   // SAFETY: the host reads `msg` during the call.\n\
         \x20   unsafe { gadgetLog(2, ((msg.len() as u64) << 32) | msg.as_ptr() as u64) };\n\
         \x20   0\n}\n",
    )
    .unwrap();
    std::fs::write(
        gadget.join("gadget.yaml"),
        "name: rust_module\ndescription: a Rust WASM module\n",
    )
    .unwrap();
    std::fs::write(gadget.join("build.yaml"), "wasm: wasm_module/Cargo.toml\n").unwrap();
    let t = TempStore::new();
    build_json(&t, &gadget, "rust_module:test", &["--platform", "amd64"]);
    t.check(&[], "amd64");
    let started = std::time::Instant::now();
    build_json(&t, &gadget, "rust_module:test", &["--platform", "amd64"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a no-op rebuild of the module is a cache hit: {:?}",
        started.elapsed()
    );
}
