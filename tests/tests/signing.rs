//! Signing end to end: cosign key pairs, `sign` in the three formats, `verify`, the independent
//! checker (`gadget-image-check --pubkey`), signatures through export + import, key-file interop
//! with an independent implementation (tests/helpers/cosign_key.py: OpenSSL + libsodium).

use std::path::{Path, PathBuf};
use std::process::Command;

use ig_image_tests::{TempStore, assert_success, json_lines, run, sample, workspace_root};
use sha2::{Digest as _, Sha256};

const PASSWORD: &str = "correct horse battery staple";

/// `ig-image ARGS` with COSIGN_PASSWORD set; requires success.
fn ok(t: &TempStore, args: &[&str]) -> String {
    let out = run(with_password(t.cmd(args)));
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

/// `ig-image ARGS`; requires exit status `code`; returns stdout + stderr.
fn exits(t: &TempStore, code: i32, args: &[&str]) -> String {
    let out = run(with_password(t.cmd(args)));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(code), "{args:?}:\n{text}");
    text
}

fn with_password(mut c: Command) -> Command {
    c.env("COSIGN_PASSWORD", PASSWORD);
    c
}

/// A key pair in the test's directory: (`<name>.key`, `<name>.pub`).
fn key_pair(t: &TempStore, name: &str) -> (PathBuf, PathBuf) {
    let prefix = t.dir.path().join(name);
    let out = ok(
        t,
        &[
            "generate-key-pair",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    assert!(out.contains("Private key written to"), "{out}");
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

fn build(t: &TempStore, name: &str, tag: &str) -> String {
    let out = json_lines(&ok(
        t,
        &[
            "build",
            sample(name).to_str().unwrap(),
            "-t",
            tag,
            "-o",
            "json",
        ],
    ));
    out[0]["digest"].as_str().unwrap().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The `ref.name` annotations of a layout's `index.json`, sorted.
fn ref_names_in(layout_index: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = layout_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The tags of the store's `index.json`, sorted.
fn ref_names(t: &TempStore) -> Vec<String> {
    ref_names_in(&index_of(&t.store()))
}

fn index_of(layout: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The `index.json` inside an exported tar.
fn index_in_tar(tar: &Path) -> serde_json::Value {
    let out = run({
        let mut c = Command::new("tar");
        c.arg("-xOf").arg(tar).arg("index.json");
        c
    });
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_checker(t: &TempStore, image: &str, key: &Path, expect_pass: bool) {
    let (passed, text) = t.check_signed(&[image], "amd64,arm64", &[key]);
    assert_eq!(
        passed,
        expect_pass,
        "gadget-image-check --pubkey {} on {image}:\n{text}",
        key.display()
    );
    if !expect_pass {
        assert!(text.contains("a cosign signature that verifies"), "{text}");
    }
}

#[test]
fn legacy_signature_passes_the_independent_checker_and_only_with_its_key() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let (_, other) = key_pair(&t, "other");
    let digest = build(&t, "trace_open", "trace_open:v1");

    assert_checker(&t, "trace_open:v1", &public, false);
    let out = ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    assert!(out.contains("legacy signature"), "{out}");
    // Stored where upstream `ig` looks: the bare tag, no repository; `list` shows images only.
    let sig_tag = format!("sha256-{}.sig", &digest[7..]);
    assert!(out.contains(&format!("tag {sig_tag})")), "{out}");
    assert_eq!(
        ref_names(&t),
        [
            "ghcr.io/inspektor-gadget/gadget/trace_open:v1".to_string(),
            sig_tag
        ]
    );
    let listed = ok(&t, &["list"]);
    assert!(
        listed.contains("trace_open") && !listed.contains("sha256-"),
        "{listed}"
    );
    let listed = &json_lines(&ok(&t, &["list", "-o", "json"]))[0];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    assert_checker(&t, "trace_open:v1", &public, true);
    assert_checker(&t, "trace_open:v1", &other, false);

    let out = ok(
        &t,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    assert!(out.starts_with("Verified trace_open:v1@"), "{out}");
    let doc = &json_lines(&ok(
        &t,
        &[
            "verify",
            "trace_open:v1",
            "--public-keys",
            &format!("{},{}", s(&other), s(&public)),
            "-o",
            "json",
        ],
    ))[0];
    assert_eq!(doc["verified"], true);
    assert_eq!(doc["format"], "legacy");
    assert_eq!(doc["digest"], digest.as_str());
    assert_eq!(doc["key"], s(&public));

    // Signing again with the same key adds nothing; another key appends a layer.
    let out = ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    assert!(out.contains("already carries"), "{out}");
    let (key2, public2) = key_pair(&t, "second");
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key2)]);
    ok(
        &t,
        &["verify", "trace_open:v1", "--public-keys", s(&public2)],
    );
    ok(
        &t,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    assert_checker(&t, "trace_open:v1", &public2, true);

    // The image's own checks still pass with its signature beside it.
    t.check(&["trace_open:v1"], "amd64,arm64");
}

#[test]
fn oci_1_1_and_bundle_signatures_verify_with_us_and_the_checker() {
    let base = TempStore::new();
    build(&base, "trace_open", "trace_open:v1");
    let tar = base.dir.path().join("image.tar");
    ok(&base, &["export", "trace_open:v1", s(&tar)]);
    for format in ["oci-1-1", "bundle"] {
        let t = TempStore::new();
        ok(&t, &["import", s(&tar)]);
        let (key, public) = key_pair(&t, "cosign");
        let (_, other) = key_pair(&t, "other");
        let out = ok(
            &t,
            &[
                "sign",
                "trace_open:v1",
                "--key",
                s(&key),
                "--format",
                format,
            ],
        );
        assert!(
            out.contains(&format!("{format} signature, referrer sha256:")),
            "{out}"
        );
        let doc = &json_lines(&ok(
            &t,
            &[
                "verify",
                "trace_open:v1",
                "--public-keys",
                s(&public),
                "-o",
                "json",
            ],
        ))[0];
        assert_eq!(doc["format"], format, "{doc}");
        let err = exits(
            &t,
            1,
            &["verify", "trace_open:v1", "--public-keys", s(&other)],
        );
        assert!(err.contains("made with another key"), "{err}");
        assert_checker(&t, "trace_open:v1", &public, true);
        assert_checker(&t, "trace_open:v1", &other, false);
        // No legacy tag was written: the referrer carries the signature, listed in the bare
        // referrers index `sha256-<hex>` where upstream `ig` looks.
        let index = std::fs::read_to_string(t.store().join("index.json")).unwrap();
        assert!(!index.contains(".sig\""), "{index}");
        let digest = doc["digest"].as_str().unwrap();
        assert!(
            ref_names(&t).contains(&format!("sha256-{}", &digest[7..])),
            "{index}"
        );
        let listed = ok(&t, &["list"]);
        assert!(!listed.contains("sha256-"), "{listed}");
    }
}

#[test]
fn signatures_survive_export_and_import() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let (_, other) = key_pair(&t, "other");
    build(&t, "trace_open", "trace_open:v1");
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    ok(
        &t,
        &[
            "sign",
            "trace_open:v1",
            "--key",
            s(&key),
            "--format",
            "bundle",
        ],
    );
    let tar = t.dir.path().join("signed.tar");
    ok(&t, &["export", "trace_open:v1", s(&tar)]);
    let hex = index_hex(&t, "trace_open:v1");
    assert_eq!(
        ref_names_in(&index_in_tar(&tar)),
        [
            "ghcr.io/inspektor-gadget/gadget/trace_open:v1".to_string(),
            format!("sha256-{hex}"),
            format!("sha256-{hex}.sig"),
        ]
    );

    let fresh = TempStore::new();
    let out = ok(&fresh, &["import", s(&tar)]);
    assert_eq!(
        out.trim(),
        "Successfully imported ghcr.io/inspektor-gadget/gadget/trace_open:v1"
    );
    assert_eq!(ref_names(&fresh), ref_names_in(&index_in_tar(&tar)));
    assert!(!ok(&fresh, &["list"]).contains("sha256-"));
    assert_checker(&fresh, "trace_open:v1", &public, true);
    assert_checker(&fresh, "trace_open:v1", &other, false);
    let doc = &json_lines(&ok(
        &fresh,
        &[
            "verify",
            "trace_open:v1",
            "--public-keys",
            s(&public),
            "-o",
            "json",
        ],
    ))[0];
    assert_eq!(doc["verified"], true);
    exits(
        &fresh,
        1,
        &["verify", "trace_open:v1", "--public-keys", s(&other)],
    );
}

#[test]
fn verify_rejects_unsigned_wrong_key_tampered_and_other_digest() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let (_, other) = key_pair(&t, "other");
    let a = build(&t, "trace_open", "trace_open:v1");
    let b = build(&t, "trace_exec", "trace_exec:v1");

    // Unsigned.
    let err = exits(
        &t,
        1,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    assert!(err.contains("is not signed"), "{err}");
    let out = exits(
        &t,
        1,
        &[
            "verify",
            "trace_open:v1",
            "--public-keys",
            s(&public),
            "-o",
            "json",
        ],
    );
    let doc: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(doc["verified"], false);
    assert!(
        doc["reason"].as_str().unwrap().contains("is not signed"),
        "{doc}"
    );

    // Wrong key.
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    let err = exits(
        &t,
        1,
        &["verify", "trace_open:v1", "--public-keys", s(&other)],
    );
    assert!(
        err.contains("verifies with") && err.contains("made with another key"),
        "{err}"
    );
    let err = exits(
        &t,
        1,
        &["verify", "trace_open:v1", "--public-keys", "upstream"],
    );
    assert!(err.contains("`upstream`"), "{err}");

    // A signature for another digest: trace_exec's signature placed at trace_open's .sig tag.
    ok(&t, &["sign", "trace_exec:v1", "--key", s(&key)]);
    let open_sig = format!("sha256-{}.sig", &a[7..]);
    let exec_sig = format!("sha256-{}.sig", &b[7..]);
    retag(&t, &exec_sig, &open_sig);
    let err = exits(
        &t,
        1,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    assert!(err.contains("digest mismatch") && err.contains(&b), "{err}");
    assert_checker(&t, "trace_open:v1", &public, false);

    // A tampered payload: re-sign properly, then alter the signed payload in the store.
    ok(&t, &["remove", &open_sig]);
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    ok(
        &t,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    tamper_payload(&t, &a);
    let err = exits(
        &t,
        1,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    assert!(err.contains("altered content"), "{err}");
    assert_checker(&t, "trace_open:v1", &public, false);

    // A missing key file is an operational error (2), not a verdict.
    let err = exits(
        &t,
        2,
        &[
            "verify",
            "trace_open:v1",
            "--public-keys",
            "/nonexistent.pub",
        ],
    );
    assert!(err.contains("/nonexistent.pub"), "{err}");
}

/// Points the store's tag `to` at what its tag `from` points at, as another tool could.
fn retag(t: &TempStore, from: &str, to: &str) {
    let path = t.store().join("index.json");
    let mut index = index_of(&t.store());
    let entries = index["manifests"].as_array_mut().unwrap();
    let mut copy = entries
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == from)
        .unwrap_or_else(|| panic!("no tag `{from}`"))
        .clone();
    copy["annotations"]["org.opencontainers.image.ref.name"] = to.into();
    entries.retain(|e| e["annotations"]["org.opencontainers.image.ref.name"] != to);
    entries.push(copy);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// The hex of the index digest `image` is tagged with.
fn index_hex(t: &TempStore, image: &str) -> String {
    let doc = &json_lines(&ok(t, &["inspect", image, "-o", "json"]))[0];
    doc["digest"].as_str().unwrap()[7..].to_owned()
}

/// Rewrites the legacy signature of `digest` so its payload differs from what was signed
/// (blobs stay content-addressed and intact; only the signature no longer matches).
fn tamper_payload(t: &TempStore, digest: &str) {
    let store = t.store();
    let index_path = store.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let bare = format!("sha256-{}.sig", &digest[7..]);
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == bare.as_str())
        .expect("a bare .sig entry");
    let blob = |d: &str| store.join("blobs/sha256").join(&d[7..]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let payload =
        std::fs::read_to_string(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let altered = payload.replace("\"optional\":null", "\"optional\":{\"by\":\"mallory\"}");
    assert_ne!(altered, payload);
    let put = |data: &[u8]| {
        let d = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        std::fs::write(blob(&d), data).unwrap();
        d
    };
    manifest["layers"][0]["digest"] = put(altered.as_bytes()).into();
    manifest["layers"][0]["size"] = altered.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    entry["digest"] = put(&manifest_bytes).into();
    entry["size"] = manifest_bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn generate_key_pair_refuses_to_overwrite_without_force() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let before = std::fs::read(&public).unwrap();
    let prefix = t.dir.path().join("cosign");
    let err = exits(
        &t,
        2,
        &["generate-key-pair", "--output-key-prefix", s(&prefix)],
    );
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&public).unwrap(), before);
    ok(
        &t,
        &[
            "generate-key-pair",
            "--output-key-prefix",
            s(&prefix),
            "--force",
        ],
    );
    assert_ne!(std::fs::read(&public).unwrap(), before);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A wrong password is refused clearly; without COSIGN_PASSWORD and a terminal, too.
    build(&t, "trace_open", "trace_open:v1");
    let mut c = t.cmd(["sign", "trace_open:v1", "--key", s(&key)]);
    c.env("COSIGN_PASSWORD", "wrong");
    let out = run(c);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("wrong password"), "{err}");
    let mut c = t.cmd(["sign", "trace_open:v1", "--key", s(&key)]);
    c.env_remove("COSIGN_PASSWORD")
        .stdin(std::process::Stdio::null());
    let out = run(c);
    assert!(!out.status.success());
}

#[test]
fn a_store_signed_in_the_earlier_layout_keeps_working_and_exports_bare_tags() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    build(&t, "trace_open", "trace_open:v1");
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    let hex = index_hex(&t, "trace_open:v1");
    // The layout earlier versions wrote: the signature in the image's repository.
    let old = format!("ghcr.io/inspektor-gadget/gadget/trace_open:sha256-{hex}.sig");
    retag(&t, &format!("sha256-{hex}.sig"), &old);
    remove_tag_entry(&t, &format!("sha256-{hex}.sig"));
    assert!(ref_names(&t).contains(&old));
    ok(
        &t,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    // The independent checker refuses that form ...
    assert_checker(&t, "trace_open:v1", &public, false);
    // ... and an export writes it bare, which it accepts once imported.
    let tar = t.dir.path().join("old.tar");
    ok(&t, &["export", "trace_open:v1", s(&tar)]);
    assert!(ref_names_in(&index_in_tar(&tar)).contains(&format!("sha256-{hex}.sig")));
    let fresh = TempStore::new();
    ok(&fresh, &["import", s(&tar)]);
    assert_checker(&fresh, "trace_open:v1", &public, true);
    ok(
        &fresh,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    // Signing again in the old store moves the signature to the bare tag.
    let (key2, public2) = key_pair(&t, "second");
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key2)]);
    assert_eq!(
        ref_names(&t),
        [
            "ghcr.io/inspektor-gadget/gadget/trace_open:v1".to_string(),
            format!("sha256-{hex}.sig")
        ]
    );
    for p in [&public, &public2] {
        assert_checker(&t, "trace_open:v1", p, true);
    }
    // Removing the image removes its signature.
    ok(&t, &["remove", "trace_open:v1"]);
    assert!(ref_names(&t).is_empty(), "{:?}", ref_names(&t));
}

/// Drops the store's entries tagged `name`.
fn remove_tag_entry(t: &TempStore, name: &str) {
    let path = t.store().join("index.json");
    let mut index = index_of(&t.store());
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["annotations"]["org.opencontainers.image.ref.name"] != name);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Whether python3 has `cryptography` (scripts/setup --deps installs it; the checker needs it
/// too). Without it the test returns early with a loud reason, except under `CI=true`.
fn require_python_cryptography(test: &str) -> bool {
    let probe = run({
        let mut c = Command::new("python3");
        c.args(["-c", "import cryptography"]);
        c
    });
    if probe.status.success() {
        return true;
    }
    let reason = format!(
        "{test}: python3 lacks cryptography: {}",
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {reason}"
    );
    eprintln!("SKIPPED (not a pass): {reason}");
    false
}

#[test]
fn a_store_laid_out_like_upstreams_imports_and_verifies_in_all_three_cosign_formats() {
    if !require_python_cryptography("a_store_laid_out_like_upstreams") {
        return;
    }
    // Three images, exported, then signed and laid out by an independent script the way
    // upstream's signed test store is: bare `sha256-<hex>.sig`, `sha256-<hex>` referrers
    // indexes, a notation signature, per-platform manifests listed untagged.
    let src = TempStore::new();
    for g in ["trace_open", "trace_exec", "snapshot_process"] {
        build(&src, g, &format!("{g}:v1"));
    }
    let ours = src.dir.path().join("ours.tar");
    ok(
        &src,
        &[
            "export",
            "trace_open:v1",
            "trace_exec:v1",
            "snapshot_process:v1",
            s(&ours),
        ],
    );
    let layout = src.dir.path().join("upstream.tar");
    let prefix = src.dir.path().join("upstream");
    let out = run({
        let mut c = Command::new("python3");
        c.arg(workspace_root().join("tests/helpers/upstream_store.py"))
            .arg(&ours)
            .arg(&layout)
            .arg(&prefix);
        c
    });
    assert_success(&out);
    let digests: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let public = prefix.with_extension("pub");
    let names = ref_names_in(&index_in_tar(&layout));
    for (fmt, suffix) in [("legacy", ".sig"), ("oci11", ""), ("bundle", "")] {
        let hex = &digests[fmt].as_str().unwrap()[7..];
        assert!(
            names.contains(&format!("sha256-{hex}{suffix}")),
            "{names:?}"
        );
    }

    let t = TempStore::new();
    let (_, other) = key_pair(&t, "other");
    let out = ok(&t, &["import", s(&layout)]);
    assert!(!out.contains("sha256-"), "only images are reported:\n{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    // The bare tags are kept as they are, and `list` shows only the three images.
    assert_eq!(ref_names(&t), names);
    let listed = &json_lines(&ok(&t, &["list", "-o", "json"]))[0];
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    for (fmt, expected) in [
        ("legacy", "legacy"),
        ("oci11", "oci-1-1"),
        ("bundle", "bundle"),
    ] {
        let image = format!("ttl.sh/signed_with_cosign_{fmt}:latest");
        let doc = &json_lines(&ok(
            &t,
            &["verify", &image, "--public-keys", s(&public), "-o", "json"],
        ))[0];
        assert_eq!(doc["verified"], true, "{doc}");
        assert_eq!(doc["format"], expected, "{doc}");
        assert_eq!(doc["digest"], digests[fmt], "{doc}");
        let err = exits(&t, 1, &["verify", &image, "--public-keys", s(&other)]);
        assert!(err.contains("made with another key"), "{fmt}: {err}");
        assert_checker(&t, &image, &public, true);
    }

    // Export → import → verify keeps all of it.
    let tar = t.dir.path().join("again.tar");
    let images: Vec<String> = ["legacy", "oci11", "bundle"]
        .iter()
        .map(|f| format!("ttl.sh/signed_with_cosign_{f}:latest"))
        .collect();
    let mut args = vec!["export"];
    args.extend(images.iter().map(String::as_str));
    args.push(s(&tar));
    ok(&t, &args);
    let again = TempStore::new();
    ok(&again, &["import", s(&tar)]);
    for image in &images {
        ok(&again, &["verify", image, "--public-keys", s(&public)]);
        assert_checker(&again, image, &public, true);
    }
}

// ------------------------------------------------------------------------------------------
// Key-file interop with an independent implementation (OpenSSL + libsodium through python).

fn helper() -> PathBuf {
    workspace_root().join("tests/helpers/cosign_key.py")
}

/// Whether python3 has PyNaCl and cryptography (scripts/setup --deps must install them). Without
/// them a test returns early with a loud reason, except under `CI=true`, where it fails.
fn require_python_crypto(test: &str) -> bool {
    let probe = run({
        let mut c = Command::new("python3");
        c.args(["-c", "import nacl, cryptography"]);
        c
    });
    if probe.status.success() {
        return true;
    }
    let reason = format!(
        "{test}: python3 lacks PyNaCl or cryptography (`python3 -m pip install pynacl cryptography`): {}",
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {reason}"
    );
    eprintln!("SKIPPED (not a pass): {reason}");
    false
}

fn helper_cmd(args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(helper()).args(args).env("COSIGN_PASSWORD", PASSWORD);
    c
}

fn helper_ok(args: &[&str]) -> String {
    let out = run(helper_cmd(args));
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn our_key_files_are_read_by_an_independent_implementation() {
    if !require_python_crypto("our_key_files_are_read_by_an_independent_implementation") {
        return;
    }
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    // It decrypts our cosign.key (scrypt + secretbox + PKCS#8) to the key cosign.pub holds.
    let derived = helper_ok(&["public", s(&key)]);
    assert_eq!(derived, std::fs::read_to_string(&public).unwrap());
    // A signature it makes with our key verifies with our public key (OpenSSL's check).
    let message = t.dir.path().join("message");
    std::fs::write(&message, b"hello").unwrap();
    let sig = helper_ok(&["sign", s(&key), s(&message)]);
    assert_success(&run(helper_cmd(&[
        "verify",
        s(&public),
        s(&message),
        sig.trim(),
    ])));
}

#[test]
fn an_independently_written_key_signs_with_us() {
    if !require_python_crypto("an_independently_written_key_signs_with_us") {
        return;
    }
    let t = TempStore::new();
    let prefix = t.dir.path().join("py");
    helper_ok(&["generate", s(&prefix)]);
    let (key, public) = (prefix.with_extension("key"), prefix.with_extension("pub"));
    build(&t, "trace_open", "trace_open:v1");
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    ok(
        &t,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    assert_checker(&t, "trace_open:v1", &public, true);
}

// ------------------------------------------------------------------------------------------
// The policy of `run`: refused before anything reaches the kernel; allowed images run.

#[test]
fn run_refuses_by_policy_before_loading() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let (_, other) = key_pair(&t, "other");
    build(&t, "trace_open", "trace_open:v1");
    build(&t, "trace_exec", "trace_exec:v1");
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    let p = s(&public);

    let err = exits(
        &t,
        2,
        &["run", "trace_exec:v1", "--public-keys", p, "--verify-only"],
    );
    assert!(
        err.contains("signature verification failed") && err.contains("is not signed"),
        "{err}"
    );
    let err = exits(
        &t,
        2,
        &[
            "run",
            "trace_open:v1",
            "--public-keys",
            s(&other),
            "--verify-only",
        ],
    );
    assert!(err.contains("made with another key"), "{err}");
    let err = exits(
        &t,
        2,
        &[
            "run",
            "trace_open:v1",
            "--allowed-gadgets",
            "ghcr.io/inspektor-gadget/gadget/trace_exec*",
            "--verify-only",
        ],
    );
    assert!(err.contains("is not allowed by --allowed-gadgets"), "{err}");
    let err = exits(
        &t,
        2,
        &[
            "run",
            "trace_open:v2",
            "--allowed-gadgets",
            "trace_open:v1",
            "--verify-only",
        ],
    );
    assert!(
        err.contains("not found"),
        "an unknown image is not in the store: {err}"
    );
    let err = exits(
        &t,
        2,
        &["run", "trace_open:v1", "--verify-image", "--verify-only"],
    );
    assert!(err.contains("--verify-image needs --public-keys"), "{err}");
}

#[test]
fn kernel_run_loads_signed_and_allowed_images() {
    if !ig_image_tests::require_kernel("kernel_run_loads_signed_and_allowed_images") {
        return;
    }
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let digest = build(&t, "trace_open", "trace_open:v1");
    build(&t, "trace_exec", "trace_exec:v1");
    ok(&t, &["sign", "trace_open:v1", "--key", s(&key)]);
    let p = s(&public);
    ok(
        &t,
        &["run", "trace_open:v1", "--public-keys", p, "--verify-only"],
    );
    let by_digest = format!("ghcr.io/inspektor-gadget/gadget/trace_open@{digest}");
    ok(
        &t,
        &[
            "run",
            "trace_open:v1",
            "--public-keys",
            p,
            "--allowed-gadgets",
            &by_digest,
            "--verify-only",
        ],
    );
    ok(
        &t,
        &[
            "run",
            "trace_open:v1",
            "--allowed-gadgets",
            "trace_open:v1",
            "--verify-only",
        ],
    );
    ok(
        &t,
        &[
            "run",
            "trace_exec:v1",
            "--allowed-gadgets",
            "ghcr.io/inspektor-gadget/gadget/*",
            "--verify-only",
        ],
    );
    let out = run(with_password(t.cmd([
        "run",
        "trace_exec:v1",
        "--public-keys",
        p,
        "--verify-image=false",
        "--verify-only",
    ])));
    assert_success(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not verifying the signature"), "{err}");
}

// ------------------------------------------------------------------------------------------
// Through a real registry: push and pull carry the signatures; `verify --remote`; `pull`'s
// policy.

#[test]
fn signatures_survive_push_and_pull_through_a_registry() {
    if !ig_image_tests::registry::require_registry_tools(
        "signatures_survive_push_and_pull_through_a_registry",
    ) {
        return;
    }
    let registry = ig_image_tests::registry::Registry::start();
    let host = registry.host();
    let insecure = ["--insecure-registries", host.as_str()];
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let (_, other) = key_pair(&t, "other");
    let signed = format!("{host}/gadgets/trace_open:v1");
    let unsigned = format!("{host}/gadgets/trace_exec:v1");
    build(&t, "trace_open", &signed);
    build(&t, "trace_exec", &unsigned);
    ok(&t, &["sign", &signed, "--key", s(&key)]);
    ok(
        &t,
        &["sign", &signed, "--key", s(&key), "--format", "oci-1-1"],
    );
    for image in [&signed, &unsigned] {
        ok(&t, &[&["push", image.as_str()][..], &insecure].concat());
    }

    // Pulled into a fresh store, the signatures verify with us and with the checker, stored
    // under the bare tags upstream `ig` uses.
    let fresh = TempStore::new();
    ok(
        &fresh,
        &[&["pull", signed.as_str()][..], &insecure].concat(),
    );
    let hex = index_hex(&fresh, &signed);
    assert_eq!(
        ref_names(&fresh),
        [
            signed.clone(),
            format!("sha256-{hex}"),
            format!("sha256-{hex}.sig")
        ]
    );
    assert_checker(&fresh, &signed, &public, true);
    assert_checker(&fresh, &signed, &other, false);
    ok(&fresh, &["verify", &signed, "--public-keys", s(&public)]);

    // --remote verifies the registry's copy without touching the local store.
    let empty = TempStore::new();
    let out = ok(
        &empty,
        &[
            &[
                "verify",
                signed.as_str(),
                "--remote",
                "--public-keys",
                s(&public),
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert!(out.starts_with("Verified"), "{out}");
    let err = exits(
        &empty,
        1,
        &[
            &[
                "verify",
                signed.as_str(),
                "--remote",
                "--public-keys",
                s(&other),
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert!(err.contains("made with another key"), "{err}");
    let err = exits(
        &empty,
        1,
        &[
            &[
                "verify",
                unsigned.as_str(),
                "--remote",
                "--public-keys",
                s(&public),
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert!(err.contains("is not signed"), "{err}");
    assert!(!empty.store().join("index.json").exists() || !ok(&empty, &["list"]).contains("trace"));

    // pull's policy: a signed image is accepted; an unsigned one is refused and not kept.
    let policed = TempStore::new();
    ok(
        &policed,
        &[
            &["pull", signed.as_str(), "--public-keys", s(&public)][..],
            &insecure,
        ]
        .concat(),
    );
    let err = exits(
        &policed,
        2,
        &[
            &["pull", unsigned.as_str(), "--public-keys", s(&public)][..],
            &insecure,
        ]
        .concat(),
    );
    assert!(
        err.contains("refused") && err.contains("is not signed"),
        "{err}"
    );
    let list = ok(&policed, &["list"]);
    assert!(
        list.contains("trace_open") && !list.contains("trace_exec"),
        "{list}"
    );
    let err = exits(
        &policed,
        2,
        &[
            &[
                "pull",
                signed.as_str(),
                "--allowed-gadgets",
                "ghcr.io/inspektor-gadget/gadget/*",
            ][..],
            &insecure,
        ]
        .concat(),
    );
    assert!(err.contains("not allowed by --allowed-gadgets"), "{err}");
    assert!(
        ok(&policed, &["list"]).contains("trace_open"),
        "the earlier tag is kept"
    );
}
