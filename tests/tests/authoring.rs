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

/// The Debian 6.1 kernel BTFs of tests/fixtures/kernel-btf, unpacked into `dir`:
/// (amd64 path, arm64 path).
pub(crate) fn debian_kernel_btfs(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let fixtures = ig_image_tests::fixture("kernel-btf");
    let mut out = Vec::new();
    for arch in ["amd64", "arm64"] {
        let xz = fixtures.join(format!("debian-6.1.0-56-cloud-{arch}.btf.xz"));
        let raw = dir.join(format!("debian-6.1.0-56-cloud-{arch}.btf"));
        let status = Command::new("python3")
            .args([
                "-c",
                "import lzma,sys; open(sys.argv[2],'wb').write(lzma.decompress(open(sys.argv[1],'rb').read()))",
            ])
            .arg(&xz)
            .arg(&raw)
            .status()
            .unwrap();
        assert!(status.success(), "cannot unpack {}", xz.display());
        out.push(raw);
    }
    (out[0].clone(), out[1].clone())
}

/// `check` reports ok for every sample on the running kernel and on Debian 6.1 amd64/arm64, and
/// a gadget reading `task_struct.bpf_net_context` (added in 6.11) fails on 6.1 with the field
/// named (and passes on a running kernel that has the field).
#[test]
fn check_samples_and_a_field_missing_in_6_1() {
    let t = TempStore::new();
    let (amd64, arm64) = debian_kernel_btfs(t.dir.path());
    let running = Path::new("/sys/kernel/btf/vmlinux");
    let mut kernels = vec![
        "--kernel-btf".to_string(),
        amd64.display().to_string(),
        "--kernel-btf".to_string(),
        arm64.display().to_string(),
    ];
    if running.exists() {
        kernels.extend(["--kernel-btf".to_string(), running.display().to_string()]);
    }
    for name in ig_image_tests::C_SAMPLES {
        let tag = format!("check_{name}:t");
        t.ok([
            "build",
            ig_image_tests::sample(name).to_str().unwrap(),
            "-t",
            &tag,
        ]);
        let mut args = vec!["check".to_string(), tag.clone(), "-o".into(), "json".into()];
        args.extend(kernels.iter().cloned());
        let reports = json_lines(&t.ok(&args));
        assert_eq!(reports.len(), kernels.len() / 2, "{reports:?}");
        for r in &reports {
            assert_eq!(r["ok"], true, "{name}: {r}");
            assert!(r["relocations"].as_u64().unwrap() > 0, "{name}: {r}");
        }
        // The architecture of each file is inferred from its BTF.
        assert_eq!(reports[0]["arch"], "amd64");
        assert_eq!(reports[0]["arch_source"], "inferred");
        assert_eq!(reports[1]["arch"], "arm64");
    }
    // Default target: the running kernel.
    if running.exists() {
        let out = t.ok(["check", "check_trace_exec:t"]);
        assert!(out.contains("running"), "{out}");
        assert!(out.contains(" ok"), "{out}");
    }

    // A directory is built first; the 6.1 kernels lack the field.
    let dir = ig_image_tests::fixture("core_new_field");
    let mut args = vec![
        "check".to_string(),
        dir.display().to_string(),
        "-o".into(),
        "json".into(),
    ];
    args.extend(kernels.iter().cloned());
    let out = t.cmd(&args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports = json_lines(&String::from_utf8_lossy(&out.stdout));
    for r in &reports[..2] {
        assert_eq!(r["ok"], false, "{r}");
        let f = &r["findings"][0];
        assert_eq!(f["kind"], "relocation", "{r}");
        assert!(
            f["subject"].as_str().unwrap().contains("bpf_net_context"),
            "{r}"
        );
        assert!(
            f["reason"]
                .as_str()
                .unwrap()
                .contains("field `bpf_net_context` is not in struct task_struct"),
            "{r}"
        );
        assert_eq!(f["program"], "ig_core_new_field", "{r}");
    }
    if running.exists() {
        // Independently: does the running kernel's BTF name the field at all?
        let blob = std::fs::read(running).unwrap();
        let has_field = blob
            .windows(b"\0bpf_net_context\0".len())
            .any(|w| w == b"\0bpf_net_context\0");
        assert_eq!(reports[2]["ok"], has_field, "{}", reports[2]);
    }
    // The table names the field too.
    let mut args = vec!["check".to_string(), dir.display().to_string()];
    args.extend(kernels[..4].iter().cloned());
    let out = t.cmd(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL: relocation struct task_struct___new.bpf_net_context"),
        "{text}"
    );
}

/// Writes a btfhub-archive-like tree: `<id>/<version>/<arch dir>/<release>.btf.tar.xz`, each an
/// xz'd tar holding `<release>.btf` (made here with Python's tarfile and lzma).
pub(crate) fn btfhub_entry(
    root: &Path,
    id: &str,
    version: &str,
    arch_dir: &str,
    release: &str,
    btf: &Path,
) {
    let dir = root.join(id).join(version).join(arch_dir);
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("python3")
        .args([
            "-c",
            "import io,lzma,sys,tarfile\n\
             data=open(sys.argv[1],'rb').read(); buf=io.BytesIO()\n\
             with tarfile.open(fileobj=buf,mode='w') as t:\n\
             \x20   ti=tarfile.TarInfo(sys.argv[2]+'.btf'); ti.size=len(data); t.addfile(ti,io.BytesIO(data))\n\
             open(sys.argv[3],'wb').write(lzma.compress(buf.getvalue()))",
        ])
        .arg(btf)
        .arg(release)
        .arg(dir.join(format!("{release}.btf.tar.xz")))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Layers of each platform manifest of an image in the store: (arch, [(media type, digest)]).
fn layers(t: &TempStore, image: &str) -> Vec<(String, Vec<(String, String)>)> {
    let report: serde_json::Value =
        serde_json::from_str(&t.ok(["inspect", image, "-o", "json"])).unwrap();
    report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["architecture"].as_str().unwrap().to_string(),
                p["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| {
                        (
                            l["media_type"].as_str().unwrap().to_string(),
                            l["digest"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Entries of a tar.gz blob in the store: (name, size), listed by Python's tarfile.
fn tar_entries(t: &TempStore, digest: &str) -> Vec<(String, u64)> {
    let blob = t
        .store()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let out = run({
        let mut c = Command::new("python3");
        c.args([
            "-c",
            "import sys,tarfile\n\
             for m in tarfile.open(sys.argv[1]).getmembers():\n\
             \x20   assert m.isfile() and m.mode==0o644 and m.uid==0 and m.mtime==0, m\n\
             \x20   print(m.name, m.size)",
        ])
        .arg(&blob);
        c
    });
    ig_image_tests::assert_success(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (n, s) = l.rsplit_once(' ').unwrap();
            (n.to_string(), s.parse().unwrap())
        })
        .collect()
}

/// `build --btfgen` with an archive made of the Debian 6.1 kernel BTFs (and the running
/// kernel's): one btfgen layer per platform, after the eBPF and WASM layers, entries
/// `<ID>/<VERSION_ID>/<arch dir>/<release>.btf` without `./`, each a minimized BTF the runtime
/// loads the gadget with.
#[test]
fn btfgen_layer_layout_and_loading_with_its_btf() {
    let t = TempStore::new();
    let (amd64, arm64) = debian_kernel_btfs(t.dir.path());
    let hub = t.dir.path().join("btfhub-archive");
    btfhub_entry(
        &hub,
        "debian",
        "12",
        "x86_64",
        "6.1.0-56-cloud-amd64",
        &amd64,
    );
    btfhub_entry(
        &hub,
        "debian",
        "12",
        "arm64",
        "6.1.0-56-cloud-arm64",
        &arm64,
    );
    let running = Path::new("/sys/kernel/btf/vmlinux");
    let release = sh("uname -r");
    if running.exists() && sh("uname -m") == "x86_64" {
        btfhub_entry(&hub, "host", "1", "x86_64", &release, running);
    }
    let hub_s = hub.to_str().unwrap();

    // --btfgen needs an archive, and the other way round.
    t.fails([
        "build",
        ig_image_tests::sample("trace_exec").to_str().unwrap(),
        "--btfgen",
    ]);

    for (sample, tag) in [
        ("trace_exec", "btfgen_exec:t"),
        ("trace_open_wasm", "btfgen_wasm:t"),
    ] {
        t.ok([
            "build",
            ig_image_tests::sample(sample).to_str().unwrap(),
            "-t",
            tag,
            "--btfgen",
            "--btfhub-archive",
            hub_s,
        ]);
        for (arch, layers) in layers(&t, tag) {
            let types: Vec<&str> = layers.iter().map(|(m, _)| m.as_str()).collect();
            let mut want = vec!["application/vnd.gadget.ebpf.program.v1+binary"];
            if sample.ends_with("wasm") {
                want.push("application/vnd.gadget.wasm.program.v1+binary");
            }
            want.push("application/vnd.gadget.btfgen.v1+binary");
            assert_eq!(types, want, "{sample} {arch}");
            let entries = tar_entries(&t, &layers.last().unwrap().1);
            let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
            let mut expect = match arch.as_str() {
                "amd64" => vec!["debian/12/x86_64/6.1.0-56-cloud-amd64.btf".to_string()],
                _ => vec!["debian/12/arm64/6.1.0-56-cloud-arm64.btf".to_string()],
            };
            if arch == "amd64" && hub.join("host").exists() {
                expect.push(format!("host/1/x86_64/{release}.btf"));
                expect.sort();
            }
            assert_eq!(names, expect, "{sample} {arch}");
            for (name, size) in &entries {
                assert!(!name.starts_with("./") && !name.starts_with('/'), "{name}");
                // Minimized: a few KiB, not the 4 MB kernel BTF.
                assert!(*size > 100 && *size < 200_000, "{name}: {size} bytes");
            }
        }
    }
    t.check(&[], "amd64,arm64");

    // The layer's BTF is enough for CO-RE: the runtime loads the gadget with it. With the
    // running kernel's minimized BTF the relocations are this kernel's own.
    if hub.join("host").exists()
        && ig_image_tests::require_kernel("btfgen_layer_layout_and_loading_with_its_btf")
    {
        let amd64_layers = layers(&t, "btfgen_exec:t");
        let digest = &amd64_layers
            .iter()
            .find(|(a, _)| a == "amd64")
            .unwrap()
            .1
            .last()
            .unwrap()
            .1;
        let blob = t
            .store()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let out_dir = t.dir.path().join("layer");
        std::fs::create_dir_all(&out_dir).unwrap();
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&blob)
            .arg("-C")
            .arg(&out_dir)
            .status()
            .unwrap();
        assert!(status.success());
        for entry in [
            format!("host/1/x86_64/{release}.btf"),
            "debian/12/x86_64/6.1.0-56-cloud-amd64.btf".to_string(),
        ] {
            let btf = out_dir.join(&entry);
            let out = t.ok([
                "run",
                "btfgen_exec:t",
                "--verify-only",
                "--kernel-btf",
                btf.to_str().unwrap(),
                "-o",
                "json",
            ]);
            assert!(out.contains("\"ok\":true"), "{entry}: {out}");
        }
    }
}

/// `artifacthub push-repo-metadata` pushes the `artifacthub.io` artifact Artifact Hub reads; an
/// invalid file is refused before anything is pushed.
#[test]
fn artifacthub_repo_metadata_is_pushed_as_the_artifacthub_io_tag() {
    use ig_image_tests::registry::{Registry, RegistryView, require_registry_tools};
    if !require_registry_tools("artifacthub_repo_metadata_is_pushed_as_the_artifacthub_io_tag") {
        return;
    }
    let t = TempStore::new();
    let registry = Registry::start();
    let host = registry.host();
    let file = t.dir.path().join("artifacthub-repo.yml");
    let repo = format!("{host}/gadgets/trace_demo");

    std::fs::write(&file, "repositoryID: not-a-uuid\nowners:\n  - name: me\n").unwrap();
    let out = t
        .cmd([
            "artifacthub",
            "push-repo-metadata",
            &repo,
            file.to_str().unwrap(),
            "--insecure-registries",
            &host,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("`repositoryID`"), "{stdout}");
    assert!(stdout.contains("`owners[0].email`"), "{stdout}");
    let view = RegistryView {
        addr: registry.addr(),
        auth: None,
    };
    assert!(view.tags("gadgets/trace_demo").is_empty());

    let yaml = "repositoryID: 5e0c2a7e-1d2f-4a3b-9c8d-7e6f5a4b3c2d\nowners:\n  - name: me\n    email: me@example.com\n";
    std::fs::write(&file, yaml).unwrap();
    t.ok([
        "artifacthub",
        "push-repo-metadata",
        &repo,
        file.to_str().unwrap(),
        "--insecure-registries",
        &host,
    ]);
    assert_eq!(view.tags("gadgets/trace_demo"), ["artifacthub.io"]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &view
            .manifest("gadgets/trace_demo", "artifacthub.io")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.artifacthub.config.v1+yaml"
    );
    assert_eq!(manifest["config"]["size"], 0);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml"
    );
    assert_eq!(layers[0]["size"], yaml.len());
    let digest = layers[0]["digest"].as_str().unwrap();
    assert!(view.has_blob("gadgets/trace_demo", digest));
    // A tag on the repository is refused.
    let err = t.fails([
        "artifacthub",
        "push-repo-metadata",
        &format!("{repo}:v1"),
        file.to_str().unwrap(),
        "--insecure-registries",
        &host,
    ]);
    assert!(err.contains("without a tag"), "{err}");
}

/// The CI workflow of a scaffold names only real ig-image commands.
#[test]
fn init_workflow_uses_real_commands() {
    let t = TempStore::new();
    t.ok(["init", "wf_check", "--dir", t.dir.path().to_str().unwrap()]);
    let workflow =
        std::fs::read_to_string(t.dir.path().join("wf_check/.github/workflows/gadget.yml"))
            .unwrap();
    let subs = ig_image_subcommands(&workflow);
    for sub in [
        "build",
        "check",
        "artifacthub",
        "sign",
        "push",
        "login",
        "kernels",
        "run",
    ] {
        assert!(subs.iter().any(|s| s == sub), "{sub} not in {subs:?}");
    }
    // The kernel matrix: one job per kernel (strategy.matrix), each uploading its records, and a
    // job merging them into one table.
    assert!(
        workflow.contains("suite: [bullseye, bookworm, trixie, sid]"),
        "{workflow}"
    );
    assert!(
        workflow.contains("--kernel \"debian:${{ matrix.suite }}\""),
        "{workflow}"
    );
    assert!(
        workflow.contains("actions/cache@v4") && workflow.contains("actions/upload-artifact@v4"),
        "{workflow}"
    );
    assert!(
        workflow.contains("ig-image run --merge records/*.json"),
        "{workflow}"
    );
    for sub in subs {
        t.ok([sub.as_str(), "--help"]);
    }
}

/// The `ig-image <subcommand>` words of a CI workflow (`ig-image artifacthub check` gives
/// `artifacthub`).
fn ig_image_subcommands(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out: Vec<String> = code
        .split("ig-image")
        .skip(1)
        .filter_map(|rest| {
            let rest = rest
                .strip_prefix(')')
                .unwrap_or(rest)
                .strip_prefix('"')
                .unwrap_or(rest);
            let word = rest.strip_prefix(' ')?.split_whitespace().next()?;
            word.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
                .then(|| word.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Rust eBPF and WASM scaffolds: `init`, build for amd64 and arm64 with no edits, the checker,
/// the verifier. Rust builds compile `core` from source, so the scaffolds live at a fixed place
/// under `target/` and share the Rust tests' build cache: a second run is incremental.
#[test]
fn init_rust_and_wasm_scaffolds_build_check_and_load_without_edits() {
    let root = ig_image_tests::workspace_root().join("target");
    let parent = root.join("ig-image-test-init");
    let cache = root.join("ig-image-test-rust-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let t = TempStore::new();
    let combos: [(&str, &[&str]); 4] = [
        ("init_rs_tracer", &["--lang", "rust", "--kind", "tracer"]),
        ("init_rs_top", &["--lang", "rust", "--kind", "top"]),
        (
            "init_c_wasm_c",
            &["--lang", "c", "--kind", "tracer", "--wasm", "c"],
        ),
        (
            "init_c_wasm_rust",
            &["--lang", "c", "--kind", "top", "--wasm", "rust"],
        ),
    ];
    for (name, flags) in combos {
        let dir = parent.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let mut args = vec!["init", name, "--dir", parent.to_str().unwrap()];
        args.extend_from_slice(flags);
        t.ok(&args);
        let out = t
            .cmd([
                "build",
                dir.to_str().unwrap(),
                "-t",
                &format!("{name}:dev"),
                "-o",
                "json",
            ])
            .env("IG_IMAGE_CACHE_DIR", &cache)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("warning"), "{name}: {stderr}");
        let built = &json_lines(&String::from_utf8_lossy(&out.stdout))[0];
        assert_eq!(built["platforms"], serde_json::json!(["amd64", "arm64"]));
    }
    t.check(&[], "amd64,arm64");
    // WASM layers are in the images that asked for one.
    for (name, wasm) in [
        ("init_rs_tracer", false),
        ("init_c_wasm_c", true),
        ("init_c_wasm_rust", true),
    ] {
        let out = t.ok(["inspect", &format!("{name}:dev"), "-o", "json"]);
        assert_eq!(
            out.contains("application/vnd.gadget.wasm.program.v1+binary"),
            wasm,
            "{name}"
        );
    }
    if ig_image_tests::require_kernel(
        "init_rust_and_wasm_scaffolds_build_check_and_load_without_edits",
    ) {
        for (name, _) in combos {
            let out = t.ok(["run", &format!("{name}:dev"), "--verify-only", "-o", "json"]);
            assert!(out.contains("\"ok\":true"), "{name}: {out}");
        }
    }
    // No Rust snapshot template: aya-ebpf 0.2.1 has no iterator programs.
    let err = t.fails([
        "init",
        "rs_snap",
        "--lang",
        "rust",
        "--kind",
        "snapshot",
        "--dir",
        parent.to_str().unwrap(),
    ]);
    assert!(err.contains("no iterator programs"), "{err}");
    assert!(!parent.join("rs_snap").exists());
}
