//! Go WASM modules (`wasm: go/program.go`): built with `go build -buildmode=c-shared` for
//! `wasip1` from the nearest `go.mod`, as upstream's builder does, through the build cache; a
//! missing or too old `go` is an error naming the tool and the version needed.
//!
//! Debian 12 (this machine's distribution, backports included) has no Go 1.24, so the real build
//! runs only where a `go` 1.24 or newer is on PATH; the plumbing (arguments, environment, cache,
//! validation of what `go` wrote) is tested everywhere with a stand-in `go` that records how it
//! was called and writes a reactor module assembled from WAT.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ig_image_tests::{TempStore, run, sample};

/// A minimal gadget module: a WASI reactor with the gadget API version export.
const REACTOR_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_initialize"))
  (func (export "gadgetAPIVersion") (result i64) (i64.const 1)))"#;

/// A Go module that needs no download: only the standard library and `//go:wasmexport`.
const PROGRAM_GO: &str = r#"package main

//go:wasmexport gadgetAPIVersion
func gadgetAPIVersion() uint64 { return 1 }

func main() {}
"#;

/// A gadget: trace_open's eBPF program and metadata, and a Go module under `go/`.
fn go_gadget() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["program.bpf.c", "gadget.yaml"] {
        std::fs::copy(sample("trace_open").join(file), dir.path().join(file)).unwrap();
    }
    let go = dir.path().join("go");
    std::fs::create_dir_all(&go).unwrap();
    std::fs::write(go.join("go.mod"), "module example.com/gadget\n\ngo 1.24\n").unwrap();
    std::fs::write(go.join("program.go"), PROGRAM_GO).unwrap();
    std::fs::write(dir.path().join("build.yaml"), "wasm: go/program.go\n").unwrap();
    dir
}

/// The directories of this process's PATH.
fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// PATH with `bin` first.
fn path_with(bin: &Path) -> std::ffi::OsString {
    std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(path_dirs())).unwrap()
}

/// A `go` on PATH, if any.
fn real_go() -> Option<PathBuf> {
    path_dirs()
        .into_iter()
        .map(|d| d.join("go"))
        .find(|g| g.is_file())
}

fn build(t: &TempStore, dir: &Path, path_env: Option<&std::ffi::OsStr>) -> std::process::Output {
    let mut c: Command = t.cmd([
        "build".as_ref(),
        dir.as_os_str(),
        "-t".as_ref(),
        "go_wasm:t".as_ref(),
        "--platform".as_ref(),
        "amd64".as_ref(),
    ]);
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    c.env_remove("GO");
    run(c)
}

#[test]
fn go_module_builds_with_go_or_the_error_names_the_missing_toolchain() {
    let dir = go_gadget();
    let t = TempStore::new();
    let out = build(&t, dir.path(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let version = real_go().map(|go| {
        String::from_utf8_lossy(&Command::new(go).arg("version").output().unwrap().stdout)
            .into_owned()
    });
    match version {
        None => {
            assert!(!out.status.success(), "built without go: {stderr}");
            assert!(stderr.contains("no `go` is on PATH"), "{stderr}");
            assert!(stderr.contains("Go 1.24 or newer"), "{stderr}");
            assert!(
                t.snapshot().iter().all(|(p, _)| !p.starts_with("blobs")),
                "a failed build stored blobs"
            );
        }
        Some(v) if !new_enough(&v) => {
            assert!(!out.status.success(), "built with {v}: {stderr}");
            assert!(stderr.contains("Go 1.24 or newer"), "{stderr}");
        }
        Some(v) => {
            ig_image_tests::assert_success(&out);
            t.check(&["go_wasm:t"], "amd64");
            let inspect = t.ok(["inspect", "go_wasm:t", "-o", "json"]);
            assert!(inspect.contains("wasm"), "{v}: {inspect}");
        }
    }
}

fn new_enough(version: &str) -> bool {
    version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("go1."))
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u32>()
                .ok()
        })
        .is_some_and(|minor| minor >= 24)
}

/// A stand-in `go`: `version` says 1.24; `build` appends its arguments and the variables the
/// build must set to `log`, checks it runs from nowhere special, and copies `module` to `-o`.
fn fake_go(bin: &Path, log: &Path, module: &Path) {
    let script = format!(
        r#"#!/bin/sh
if [ "$1" = version ]; then echo 'go version go1.24.9 linux/amd64'; exit 0; fi
echo "ARGS $*" >> '{log}'
echo "ENV GOOS=$GOOS GOARCH=$GOARCH CGO_ENABLED=$CGO_ENABLED GOTOOLCHAIN=$GOTOOLCHAIN" >> '{log}'
out=""
prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then out="$a"; fi
  prev="$a"
done
cp '{module}' "$out"
"#,
        log = log.display(),
        module = module.display()
    );
    let go = bin.join("go");
    std::fs::write(&go, script).unwrap();
    std::fs::set_permissions(&go, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in `go` in `tools/bin`, writing a WAT-assembled reactor: its log file and a PATH with
/// it first.
fn with_fake_go(tools: &Path) -> (PathBuf, std::ffi::OsString) {
    let module = tools.join("module.wasm");
    std::fs::write(&module, wat::parse_str(REACTOR_WAT).unwrap()).unwrap();
    let log = tools.join("go.log");
    let bin = tools.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    fake_go(&bin, &log, &module);
    (log, path_with(&bin))
}

#[test]
fn go_build_gets_upstreams_arguments_and_environment_and_is_cached() {
    let dir = go_gadget();
    let tools = tempfile::tempdir().unwrap();
    let (log, path) = with_fake_go(tools.path());

    let t = TempStore::new();
    let out = build(&t, dir.path(), Some(&path));
    ig_image_tests::assert_success(&out);
    t.check(&["go_wasm:t"], "amd64");
    let text = std::fs::read_to_string(&log).unwrap();
    let go_dir = std::fs::canonicalize(dir.path().join("go")).unwrap();
    let args = text.lines().find(|l| l.starts_with("ARGS ")).unwrap();
    let expected_prefix = format!("ARGS build -C {} -o ", go_dir.display());
    assert!(args.starts_with(&expected_prefix), "{args}");
    assert!(
        args.ends_with(
            "/program.wasm -buildmode=c-shared -ldflags -w -s -trimpath -buildvcs=false program.go"
        ),
        "{args}"
    );
    assert!(
        text.contains("ENV GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=local"),
        "{text}"
    );

    // Same sources: the cache answers, go is not run again.
    ig_image_tests::assert_success(&build(&t, dir.path(), Some(&path)));
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("ARGS ")
            .count(),
        1
    );
    // Any file of the Go module changed: built again.
    std::fs::write(
        dir.path().join("go").join("program.go"),
        format!("{PROGRAM_GO}\n// changed\n"),
    )
    .unwrap();
    ig_image_tests::assert_success(&build(&t, dir.path(), Some(&path)));
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("ARGS ")
            .count(),
        2
    );
}

#[test]
fn go_source_outside_a_go_module_in_the_gadget_is_refused() {
    let dir = go_gadget();
    std::fs::remove_file(dir.path().join("go").join("go.mod")).unwrap();
    let tools = tempfile::tempdir().unwrap();
    let (_, path) = with_fake_go(tools.path());
    let t = TempStore::new();
    let out = build(&t, dir.path(), Some(&path));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("go/program.go") && stderr.contains("no `go.mod`"),
        "{stderr}"
    );
}
