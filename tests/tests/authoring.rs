//! Authoring and publishing: `doctor`, `init`, `artifacthub`, `check`, `build --btfgen`.

use std::path::Path;
use std::process::Command;

use ig_image_tests::{TempStore, json_lines, run};

/// Text of a command's stdout (independent of ig-image).
fn sh(script: &str) -> String {
    let out = run({
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    });
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn doctor_reports_what_this_host_really_has() {
    let t = TempStore::new();
    let out = t.cmd(["doctor", "-o", "json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    let check = |name: &str| -> serde_json::Value {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` check in {report}"))
            .clone()
    };
    let status = |name: &str| check(name)["status"].as_str().unwrap().to_string();

    // Kernel: the release uname gives.
    let release = sh("uname -r");
    assert!(
        check("kernel")["found"]
            .as_str()
            .unwrap()
            .contains(&release),
        "{}",
        check("kernel")
    );
    let (major, minor) = {
        let mut p = release.split(|c: char| !c.is_ascii_digit());
        let a: u32 = p.next().unwrap().parse().unwrap();
        let b: u32 = p.next().unwrap().parse().unwrap();
        (a, b)
    };
    let kernel_ok = (major, minor) >= (5, 10);
    assert_eq!(status("kernel"), if kernel_ok { "ok" } else { "missing" });

    // BTF: whether the file exists.
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    assert_eq!(status("btf"), if btf { "ok" } else { "missing" });

    // Architecture: uname -m.
    assert!(
        check("architecture")["found"]
            .as_str()
            .unwrap()
            .starts_with(&sh("uname -m"))
    );

    // Mounts: /proc/mounts read here.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let has_fs = |fs: &str| {
        mounts
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(fs))
    };
    assert_eq!(
        status("bpffs"),
        if has_fs("bpf") { "ok" } else { "missing" }
    );
    assert_eq!(
        status("tracefs"),
        if has_fs("tracefs") { "ok" } else { "missing" }
    );

    // Capabilities: root has them all.
    if sh("id -u") == "0" {
        assert_eq!(status("capabilities"), "ok", "{}", check("capabilities"));
    }

    // Kprobes: the kernel config read with zcat (this machine: CONFIG_KPROBES is not set).
    let kprobes = sh(
        "(zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null) | grep -E '^CONFIG_KPROBES=|^# CONFIG_KPROBES is not set'",
    );
    match kprobes.as_str() {
        "CONFIG_KPROBES=y" => assert_eq!(status("kprobes"), "ok"),
        "# CONFIG_KPROBES is not set" => {
            assert_eq!(status("kprobes"), "missing");
            assert!(
                check("kprobes")["fix"]
                    .as_str()
                    .unwrap()
                    .contains("CONFIG_KPROBES=y")
            );
        }
        _ => {}
    }

    // Container runtimes: the sockets that exist here.
    for (name, path) in [
        ("runtime.containerd", "/run/containerd/containerd.sock"),
        ("runtime.podman", "/run/podman/podman.sock"),
    ] {
        let present = sh(&format!("test -S {path} && echo yes")) == "yes";
        assert_eq!(
            status(name),
            if present { "ok" } else { "missing" },
            "{name}"
        );
    }

    // Exit status follows `ready`.
    let ready = report["ready"].as_bool().unwrap();
    assert_eq!(out.status.code(), Some(if ready { 0 } else { 1 }));
    let root = sh("id -u") == "0";
    if kernel_ok && btf && has_fs("bpf") && has_fs("tracefs") && root {
        assert!(ready, "{report}");
    }
    if !btf || !kernel_ok {
        assert!(!ready, "{report}");
    }

    // Text output names every check and ends with the verdict.
    let text = t.cmd(["doctor", "--no-toolchain"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("kprobes"), "{text}");
    assert!(!text.contains("toolchain."), "{text}");
    assert!(text.contains("ready"), "{text}");
}

/// Every kind of C scaffold: `init`, then build for amd64 and arm64 with no edits (object and
/// gadget.yaml checks on), the independent checker, and the kernel's verifier.
#[test]
fn init_c_scaffolds_build_check_and_load_without_edits() {
    let t = TempStore::new();
    let parent = t.dir.path().join("gadgets");
    for kind in ["tracer", "snapshot", "top"] {
        let name = format!("new_{kind}");
        t.ok([
            "init",
            &name,
            "--kind",
            kind,
            "--lang",
            "c",
            "--dir",
            parent.to_str().unwrap(),
        ]);
        let dir = parent.join(&name);
        for f in [
            "program.bpf.c",
            "gadget.yaml",
            "build.yaml",
            "README.md",
            "artifacthub-pkg.yml",
            ".github/workflows/gadget.yml",
        ] {
            assert!(dir.join(f).is_file(), "{name}: {f} missing");
        }
        let tag = format!("{name}:dev");
        let err = t
            .cmd(["build", dir.to_str().unwrap(), "-t", &tag])
            .output()
            .unwrap();
        assert!(
            err.status.success(),
            "{}",
            String::from_utf8_lossy(&err.stderr)
        );
        // No warning either: the templates' gadget.yaml matches the program.
        let stderr = String::from_utf8_lossy(&err.stderr);
        assert!(!stderr.contains("warning"), "{name}: {stderr}");
    }
    t.check(&[], "amd64,arm64");
    if ig_image_tests::require_kernel("init_c_scaffolds_build_check_and_load_without_edits") {
        for kind in ["tracer", "snapshot", "top"] {
            let out = t.ok(["run", &format!("new_{kind}:dev"), "--verify-only"]);
            assert!(out.contains("\"ok\":true"), "{kind}: {out}");
        }
    }
    // Never over an existing directory.
    let err = t.fails(["init", "new_top", "--dir", parent.to_str().unwrap()]);
    assert!(err.contains("already exists"), "{err}");
    let err = t.fails(["init", "Bad..Name"]);
    assert!(err.contains("invalid gadget name"), "{err}");
}

/// `artifacthub generate` then `check` passes; editing gadget.yaml makes `check` fail naming
/// the stale field; an invalid hand edit is named too; the author's own keys survive.
#[test]
fn artifacthub_generate_check_and_stale_fields() {
    let t = TempStore::new();
    let dir = t.dir.path().join("trace_exec");
    copy_dir(&ig_image_tests::sample("trace_exec"), &dir);
    let image = "localhost:5000/gadgets/trace_exec:v1.2.3";
    t.ok(["build", dir.to_str().unwrap(), "-t", image]);
    let d = dir.to_str().unwrap();

    // A new file needs the image; then it is valid and fresh.
    let err = t.fails(["artifacthub", "generate", d]);
    assert!(err.contains("--image"), "{err}");
    t.ok(["artifacthub", "generate", d, "--image", image]);
    let pkg = dir.join("artifacthub-pkg.yml");
    let text = std::fs::read_to_string(&pkg).unwrap();
    assert!(text.contains("version: 1.2.3"), "{text}");
    assert!(text.contains("name: trace-exec"), "{text}");
    assert!(text.contains("- linux/amd64"), "{text}");
    assert!(text.contains("- linux/arm64"), "{text}");
    assert!(
        text.contains("createdAt: \"2023-11-14T22:13:20Z\""),
        "{text}"
    ); // SOURCE_DATE_EPOCH
    let index_digest = json_lines(&t.ok(["list", "-o", "json"]))[0][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&index_digest), "{text}");
    let out = t.ok(["artifacthub", "check", d, "--image", image]);
    assert!(out.contains(": ok"), "{out}");

    // The author's keys stay, in place, through a refresh.
    let edited = text.replace(
        "version: 1.2.3\n",
        "version: 1.2.3\ncategory: monitoring-logging\n",
    );
    std::fs::write(&pkg, edited).unwrap();
    t.ok(["artifacthub", "generate", d, "--image", image]);
    let text = std::fs::read_to_string(&pkg).unwrap();
    assert!(
        text.starts_with("version: 1.2.3\ncategory: monitoring-logging\n"),
        "{text}"
    );

    // gadget.yaml changes: stale, with the field named; exit 1.
    let meta = dir.join("gadget.yaml");
    let yaml = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        yaml.replace(
            "description: Trace process executions",
            "description: Execs, traced",
        ),
    )
    .unwrap();
    let out = t.cmd(["artifacthub", "check", d]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stale: `description`"), "{stdout}");
    assert!(stdout.contains("Execs, traced"), "{stdout}");

    // A new tag: version, digest and image are stale against it.
    t.ok(["tag", image, "localhost:5000/gadgets/trace_exec:v1.3.0"]);
    let out = t
        .cmd([
            "artifacthub",
            "check",
            d,
            "--image",
            "localhost:5000/gadgets/trace_exec:v1.3.0",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stale: `version`"), "{stdout}");
    assert!(stdout.contains("stale: `containersImages`"), "{stdout}");

    // Invalid against Artifact Hub's rules.
    t.ok(["artifacthub", "generate", d, "--image", image]);
    let text = std::fs::read_to_string(&pkg).unwrap();
    std::fs::write(
        &pkg,
        text.replace("category: monitoring-logging", "category: games")
            .replace("name: gadget\n", "name: other\n"),
    )
    .unwrap();
    let out = t.cmd(["artifacthub", "check", d]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("invalid: `category`"), "{stdout}");
    assert!(stdout.contains("no entry named `gadget`"), "{stdout}");

    // A tag that is not a version is refused.
    t.ok(["tag", image, "localhost:5000/gadgets/trace_exec:latest"]);
    let err = t.fails([
        "artifacthub",
        "generate",
        d,
        "--image",
        "localhost:5000/gadgets/trace_exec:latest",
    ]);
    assert!(err.contains("not a SemVer 2 version"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
