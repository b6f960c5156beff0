//! ig-image's own container image (scripts/container-image), run the way
//! `kubectl debug --profile=sysadmin node/N --image=…` runs it: its root filesystem unpacked,
//! the config's entrypoint and environment, a privileged process in new mount and UTS
//! namespaces that shares the host's PID namespace, and no /proc, /sys, bpffs or tracefs
//! mounted until ig-image mounts them.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ig_image_tests::{
    assert_success, ig_image_bin, json_lines, require_kernel, run, sample, workspace_root,
};
use serde_json::Value;

/// A blob of an OCI layout by digest (`sha256:<hex>`).
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob")
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).expect("JSON blob")
}

/// The index digest `tag` points at in an OCI layout's index.json.
fn tagged(layout: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no `{tag}` in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn container_image_proves_trace_exec_like_a_debug_container() {
    if !require_kernel("container_image_proves_trace_exec_like_a_debug_container") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tag = "localhost/ig-image:test";

    // The image: a static build (cached in target/static after the first time).
    let mut script = Command::new(workspace_root().join("scripts/container-image"));
    script
        .args(["--out", out.to_str().unwrap(), "--tag", tag])
        .env("SOURCE_DATE_EPOCH", "1700000000");
    assert_success(&run(script));
    let layout = out.join("layout");
    let index_digest = tagged(&layout, tag);
    let index = json_blob(&layout, &index_digest);
    let amd64 = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .expect("an amd64 manifest");
    let manifest = json_blob(&layout, amd64["digest"].as_str().unwrap());
    let config = json_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert!(out.join("ig-image.tar").is_file(), "no exported tar");

    // Reproducible: the same binary, CA roots and time give the same index digest.
    let bin = workspace_root().join("target/static/x86_64-unknown-linux-gnu/release/ig-image");
    let again = run({
        let mut c = Command::new(&bin);
        c.args(["--store", dir.path().join("again").to_str().unwrap()])
            .args(["container-image", "--tag", tag, "-o", "json"])
            .arg(format!("--binary=amd64={}", bin.display()))
            .env("SOURCE_DATE_EPOCH", "1700000000");
        c
    });
    assert_success(&again);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["digest"], index_digest.as_str(), "not reproducible");

    // The root filesystem, unpacked as a runtime does.
    let rootfs = dir.path().join("rootfs");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = blob(&layout, layers[0]["digest"].as_str().unwrap());
    tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]))
        .unpack(&rootfs)
        .unwrap();
    let entrypoint: Vec<String> = config["config"]["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(entrypoint, ["/usr/bin/ig-image"]);
    assert!(
        std::fs::metadata(rootfs.join("etc/ssl/certs/ca-certificates.crt"))
            .unwrap()
            .len()
            > 1000,
        "no CA roots"
    );
    for mount_point in ["proc", "sys"] {
        assert_eq!(
            std::fs::read_dir(rootfs.join(mount_point)).unwrap().count(),
            0,
            "/{mount_point} is not empty in the image"
        );
    }

    // The gadget store, taken from a path (as `--store /host/var/lib/ig/oci-store` would).
    let built = run({
        let mut c = Command::new(ig_image_bin());
        c.args(["--store", rootfs.join("store").to_str().unwrap(), "build"])
            .arg(sample("trace_exec"))
            .args(["-t", "trace_exec:ct", "--platform", "amd64"])
            .env("IG_IMAGE_CACHE_DIR", dir.path().join("cache"));
        c
    });
    assert_success(&built);

    // The debug container: privileged (root), new mount and UTS namespaces, the host's PID
    // namespace, the image's root, entrypoint and environment, nothing else.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--uts", "--fork", "--root"])
        .arg(&rootfs)
        .args(["--wd", "/", "--"])
        .args(&entrypoint)
        .args(["--store", "/store", "run", "trace_exec:ct", "-o", "json"])
        .args(["--timeout", "20s"])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for kv in config["config"]["Env"].as_array().unwrap() {
        let (k, v) = kv.as_str().unwrap().split_once('=').unwrap();
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("unshare");
    let mut stdout = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let (ready_tx, ready) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines() {
            let line = line.unwrap();
            if line.starts_with("Running ") {
                let _ = ready_tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let became_ready = ready.recv_timeout(Duration::from_secs(60)).is_ok();
    let mut pids = Vec::new();
    if became_ready {
        for _ in 0..3 {
            let mut t = Command::new("/bin/true").spawn().unwrap();
            pids.push(t.id());
            t.wait().unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(became_ready, "never became ready\nstderr:\n{stderr}");
    assert!(status.success(), "{status}\nstderr:\n{stderr}");
    for mounted in [
        "Mounted proc at /proc",
        "Mounted sysfs at /sys",
        "Mounted bpf at /sys/fs/bpf",
        "Mounted tracefs at /sys/kernel/tracing",
    ] {
        assert!(stderr.contains(mounted), "no `{mounted}`:\n{stderr}");
    }
    // The host's processes, seen from the container (the host PID namespace).
    let records = json_lines(&stdout);
    let seen: Vec<&Value> = records
        .iter()
        .filter(|r| r["proc.comm"] == "true" && pids.iter().any(|p| r["proc.pid"] == *p))
        .collect();
    for r in &seen {
        assert_eq!(r["proc.parent.pid"], std::process::id(), "the parent: {r}");
    }
    assert_eq!(
        seen.len(),
        pids.len(),
        "not every /bin/true ({pids:?}) was seen:\n{stdout}\nstderr:\n{stderr}"
    );
    // The host's mounts are untouched (the container's were private).
    assert!(Path::new("/proc/self").exists());
}

/// `scripts/container-image --arm64`: a two-platform image whose arm64 root filesystem holds
/// scripts/cross-arm64's static AArch64 ig-image, byte for byte, beside the amd64 one. (The
/// arm64 binary itself is proven in an arm64 kernel by
/// `microvm::microvm_arm64_trace_exec_on_bookworm_arm64`.)
#[test]
#[ignore = "cross-builds a static arm64 ig-image first (scripts/cross-arm64, about 15 min from clean here): run with `cargo test --release -p ig-image-tests --test integration -- --ignored container::container_image_arm64`"]
fn container_image_arm64_holds_the_static_aarch64_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tag = "localhost/ig-image:arm64-test";
    let mut script = Command::new(workspace_root().join("scripts/container-image"));
    script
        .args(["--out", out.to_str().unwrap(), "--tag", tag, "--arm64"])
        .env("SOURCE_DATE_EPOCH", "1700000000");
    assert_success(&run(script));
    let cross = run(Command::new(workspace_root().join("scripts/cross-arm64")));
    assert_success(&cross);
    let arm64_bin = String::from_utf8_lossy(&cross.stdout).trim().to_string();

    let layout = out.join("layout");
    let index = json_blob(&layout, &tagged(&layout, tag));
    let manifests = index["manifests"].as_array().unwrap();
    let mut arches: Vec<&str> = manifests
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    arches.sort();
    assert_eq!(arches, ["amd64", "arm64"], "{index}");
    for m in manifests {
        let arch = m["platform"]["architecture"].as_str().unwrap();
        let manifest = json_blob(&layout, m["digest"].as_str().unwrap());
        let config = json_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch, "{config}");
        let layer = blob(&layout, manifest["layers"][0]["digest"].as_str().unwrap());
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
        let mut binary = None;
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap() == Path::new("usr/bin/ig-image") {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                binary = Some(bytes);
            }
        }
        let binary = binary.unwrap_or_else(|| panic!("no usr/bin/ig-image in the {arch} layer"));
        assert_eq!(&binary[..4], b"\x7fELF");
        let machine = u16::from_le_bytes([binary[18], binary[19]]);
        let expected = if arch == "arm64" { 183 } else { 62 }; // EM_AARCH64, EM_X86_64
        assert_eq!(machine, expected, "{arch}: ELF machine {machine}");
        if arch == "arm64" {
            assert!(
                binary == std::fs::read(&arm64_bin).unwrap(),
                "the arm64 layer's ig-image is not {arm64_bin}"
            );
        }
    }
}
