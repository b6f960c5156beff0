//! Supply chain end to end: `build --sbom --provenance [--key]` attaches an SPDX SBOM and a SLSA
//! provenance as referrers of the unchanged index; the SBOM names what clang really read
//! (checked against clang's own `-M` output, run here independently); `verify --attestation`
//! passes only with the right key, an untampered payload and the right subject; attestations
//! travel through export/import and a real registry; builds are reproducible. Keyless: real
//! public-good bundles, and a private Sigstore made at test time (tests/helpers/sigstore_keyless.py)
//! whose keyless-signed image verifies offline with its pinned root, also after push and pull.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ig_image_tests::{TempStore, assert_success, json_lines, run, sample, workspace_root};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const PASSWORD: &str = "correct horse battery staple";
const SPDX: &str = "application/spdx+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

fn with_password(mut c: Command) -> Command {
    c.env("COSIGN_PASSWORD", PASSWORD);
    c
}

fn ok(t: &TempStore, args: &[&str]) -> String {
    let out = run(with_password(t.cmd(args)));
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn key_pair(t: &TempStore, name: &str) -> (PathBuf, PathBuf) {
    let prefix = t.dir.path().join(name);
    ok(
        t,
        &[
            "generate-key-pair",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// Builds `name` as `tag` with extra flags; returns the build's JSON result.
fn build(t: &TempStore, name: &str, tag: &str, extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "build".into(),
        s(&sample(name)).to_owned(),
        "-t".into(),
        tag.into(),
    ];
    args.extend(["-o".to_string(), "json".to_string()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_lines(&ok(t, &args)).remove(0)
}

fn blob(t: &TempStore, digest: &str) -> Vec<u8> {
    std::fs::read(t.store().join("blobs/sha256").join(&digest[7..])).unwrap_or_default()
}

fn index_json(t: &TempStore) -> Value {
    serde_json::from_slice(&std::fs::read(t.store().join("index.json")).unwrap()).unwrap()
}

/// The referrer manifests of `subject` in the store, as (artifactType, manifest digest, doc):
/// untagged `index.json` entries, and manifests listed by indexes (a `sha256-<hex>` tag index).
fn referrers(t: &TempStore, subject: &str) -> Vec<(String, String, Value)> {
    let mut out: Vec<(String, String, Value)> = Vec::new();
    let mut stack: Vec<String> = index_json(t)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["digest"].as_str().map(str::to_owned))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(digest) = stack.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let Ok(doc) = serde_json::from_slice::<Value>(&blob(t, &digest)) else {
            continue;
        };
        if doc["subject"]["digest"] == subject {
            let kind = doc["artifactType"].as_str().unwrap_or_default().to_owned();
            out.push((kind, digest, doc));
        } else if let Some(children) = doc["manifests"].as_array() {
            stack.extend(
                children
                    .iter()
                    .filter_map(|c| c["digest"].as_str().map(str::to_owned)),
            );
        }
    }
    out
}

/// The single layer of the referrer of `artifact_type`.
fn referrer_layer(t: &TempStore, subject: &str, artifact_type: &str) -> Vec<u8> {
    let found: Vec<_> = referrers(t, subject)
        .into_iter()
        .filter(|(a, _, _)| a == artifact_type)
        .collect();
    assert_eq!(found.len(), 1, "one {artifact_type} referrer of {subject}");
    let layer = found[0].2["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    blob(t, &layer)
}

fn clang() -> String {
    std::env::var("CLANG").unwrap_or_else(|_| "clang-19".into())
}

/// The headers clang includes for trace_open on amd64, from clang's own `-M` output with the
/// bundled SDK's source tree: names relative to the SDK (`./bpf/bpf_helpers.h`) or absolute.
fn headers_clang_reports() -> BTreeSet<String> {
    let sdk = workspace_root().join("ig-image/sdk/include");
    let gadget = sample("trace_open");
    let out = Command::new(clang())
        .current_dir(&gadget)
        .args(["-target", "bpf", "-D__TARGET_ARCH_x86", "-M"])
        .arg(format!("-I{}", s(&sdk)))
        .arg(format!("-I{}", s(&sdk.join("gadget/amd64"))))
        .arg("-I/usr/include/x86_64-linux-gnu")
        .arg("program.bpf.c")
        .output()
        .expect("clang runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap().replace("\\\n", " ");
    let (_, deps) = text.split_once(": ").unwrap();
    deps.split_whitespace()
        .filter(|d| d.ends_with(".h"))
        .map(|d| {
            let p = std::fs::canonicalize(gadget.join(d)).unwrap();
            let sdk = std::fs::canonicalize(&sdk).unwrap();
            match p.strip_prefix(&sdk) {
                Ok(rel) => format!("./{}", rel.display()),
                Err(_) => p.display().to_string(),
            }
        })
        .collect()
}

#[test]
fn sbom_and_provenance_are_referrers_of_the_unchanged_index() {
    let t = TempStore::new();
    let (key, _) = key_pair(&t, "cosign");
    let plain = build(&t, "trace_open", "trace_open:plain", &[]);
    let built = build(
        &t,
        "trace_open",
        "trace_open:v1",
        &["--sbom", "--provenance", "--key", s(&key)],
    );
    // Never inside the index: the digest is the one a build without attestations gives.
    assert_eq!(built["digest"], plain["digest"]);
    let digest = built["digest"].as_str().unwrap();
    let index: Value = serde_json::from_slice(&blob(&t, digest)).unwrap();
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["artifactType"] != SPDX && m["mediaType"] != SPDX),
        "{index}"
    );
    let kinds: BTreeSet<String> = referrers(&t, digest).into_iter().map(|r| r.0).collect();
    assert_eq!(
        kinds,
        [SPDX, IN_TOTO, BUNDLE]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let bundles: Vec<_> = referrers(&t, digest)
        .into_iter()
        .filter(|r| r.0 == BUNDLE)
        .map(|r| r.2["annotations"]["dev.sigstore.bundle.predicateType"].clone())
        .collect();
    assert_eq!(bundles.len(), 2, "{bundles:?}");
    assert!(bundles.contains(&Value::from("https://spdx.dev/Document")));
    assert!(bundles.contains(&Value::from("https://slsa.dev/provenance/v1")));
    let reported: Vec<_> = built["attestations"].as_array().unwrap().to_vec();
    assert_eq!(reported.len(), 4, "{built}");

    // The image's own checks still pass, and `list` shows only the images.
    t.check(&["trace_open:v1"], "amd64,arm64");
    let list = ok(&t, &["list"]);
    assert_eq!(list.matches("trace_open").count(), 2, "{list}");
}

#[test]
fn sbom_names_the_sources_every_header_clang_read_and_clangs_version() {
    let t = TempStore::new();
    let built = build(&t, "trace_open", "trace_open:v1", &["--sbom"]);
    let digest = built["digest"].as_str().unwrap();
    let sbom: Value = serde_json::from_slice(&referrer_layer(&t, digest, SPDX)).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    assert_eq!(sbom["creationInfo"]["created"], "2023-11-14T22:13:20Z");

    let files = sbom["files"].as_array().unwrap();
    let by_name = |name: &str| {
        files
            .iter()
            .find(|f| f["fileName"] == name)
            .unwrap_or_else(|| panic!("`{name}` in the SBOM: {files:#?}"))
    };
    let source = by_name("./program.bpf.c");
    let expected = hex::encode(Sha256::digest(
        std::fs::read(sample("trace_open").join("program.bpf.c")).unwrap(),
    ));
    assert_eq!(source["checksums"][0]["checksumValue"], expected.as_str());
    assert!(
        source["comment"]
            .as_str()
            .unwrap()
            .contains("gadget directory"),
        "{source}"
    );
    let vmlinux = by_name("./gadget/amd64/vmlinux.h");
    let expected = hex::encode(Sha256::digest(
        std::fs::read(workspace_root().join("ig-image/sdk/include/gadget/amd64/vmlinux.h"))
            .unwrap(),
    ));
    assert_eq!(vmlinux["checksums"][0]["checksumValue"], expected.as_str());
    assert!(
        vmlinux["comment"].as_str().unwrap().contains("bundled SDK"),
        "{vmlinux}"
    );
    by_name("./gadget/arm64/vmlinux.h");

    // Every header clang itself reports, with its digest.
    let listed: BTreeSet<String> = files
        .iter()
        .map(|f| f["fileName"].as_str().unwrap().to_owned())
        .collect();
    let headers = headers_clang_reports();
    assert!(headers.len() > 5, "{headers:?}");
    for h in &headers {
        assert!(
            listed.contains(h),
            "`{h}` missing from the SBOM: {listed:?}"
        );
        let f = by_name(h);
        let path = match h.strip_prefix("./") {
            Some(rel) => workspace_root().join("ig-image/sdk/include").join(rel),
            None => PathBuf::from(h),
        };
        assert_eq!(
            f["checksums"][0]["checksumValue"],
            hex::encode(Sha256::digest(std::fs::read(&path).unwrap())).as_str(),
            "{h}"
        );
    }

    // clang's version, as clang reports it.
    let version = String::from_utf8(
        Command::new(clang())
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let first = version.lines().next().unwrap().trim();
    let packages = sbom["packages"].as_array().unwrap();
    let clang_pkg = packages
        .iter()
        .find(|p| p["name"] == "clang")
        .expect("clang in the SBOM");
    assert_eq!(clang_pkg["versionInfo"], first);
    assert!(packages.iter().any(|p| p["name"] == "llvm-strip"));
    // Per-platform objects with their digests, the image with its index digest.
    let objects: Vec<_> = packages
        .iter()
        .filter(|p| p["primaryPackagePurpose"] == "FILE")
        .collect();
    assert_eq!(objects.len(), 2, "{objects:?}");
    let image = packages
        .iter()
        .find(|p| p["SPDXID"] == "SPDXRef-Image")
        .unwrap();
    assert_eq!(image["checksums"][0]["checksumValue"], &digest[7..]);

    // A cached rebuild reports the same inputs: the SBOM is identical.
    let again = build(&t, "trace_open", "trace_open:v1", &["--sbom"]);
    assert_eq!(again["cached_objects"], 2);
    assert_eq!(referrers(&t, digest).len(), 1);
}

#[test]
fn a_rebuild_adds_no_referrer_and_restores_a_removed_one() {
    let t = TempStore::new();
    let (key, _) = key_pair(&t, "cosign");
    let flags = ["--sbom", "--provenance", "--key", s(&key)];
    let first = build(&t, "trace_open", "trace_open:v1", &flags);
    let digest = first["digest"].as_str().unwrap().to_owned();
    let attached = |b: &Value| -> Vec<(String, bool)> {
        b["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["manifest"].as_str().unwrap().to_owned(),
                    a["added"] == true,
                )
            })
            .collect()
    };
    assert_eq!(attached(&first).len(), 4, "{first}");
    assert!(attached(&first).iter().all(|(_, added)| *added), "{first}");
    let manifests = |t: &TempStore| -> BTreeSet<String> {
        referrers(t, &digest).into_iter().map(|r| r.1).collect()
    };
    let before = manifests(&t);
    assert_eq!(before.len(), 4);
    let index_before = std::fs::read(t.store().join("index.json")).unwrap();
    let blob_count = || {
        std::fs::read_dir(t.store().join("blobs/sha256"))
            .unwrap()
            .count()
    };
    let blobs_before = blob_count();

    // The same build again: the same referrers, none added, the store untouched.
    for _ in 0..2 {
        let again = build(&t, "trace_open", "trace_open:v1", &flags);
        assert_eq!(again["digest"], first["digest"]);
        let reported: Vec<_> = attached(&again);
        assert_eq!(
            reported.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            attached(&first)
                .into_iter()
                .map(|r| r.0)
                .collect::<Vec<_>>()
        );
        assert!(reported.iter().all(|(_, added)| !*added), "{again}");
        assert_eq!(manifests(&t), before);
        assert_eq!(
            std::fs::read(t.store().join("index.json")).unwrap(),
            index_before
        );
        assert_eq!(blob_count(), blobs_before);
    }

    // A referrer removed from the store (the cache still remembers it) comes back identical.
    let sbom = referrers(&t, &digest)
        .into_iter()
        .find(|r| r.0 == SPDX)
        .unwrap()
        .1;
    let mut index = index_json(&t);
    let referrers_tag = format!("sha256-{}", &digest[7..]);
    index["manifests"].as_array_mut().unwrap().retain(|e| {
        e["digest"] != sbom.as_str()
            && e["annotations"]["org.opencontainers.image.ref.name"] != referrers_tag.as_str()
    });
    std::fs::write(
        t.store().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    assert!(!manifests(&t).contains(&sbom));
    let restored = build(&t, "trace_open", "trace_open:v1", &flags);
    assert!(
        attached(&restored).contains(&(sbom.clone(), true)),
        "{restored}"
    );
    assert_eq!(manifests(&t), before);
    // Listed again in the bare referrers index, where upstream looks.
    let listed = index_json(&t)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["annotations"]["org.opencontainers.image.ref.name"] == referrers_tag.as_str());
    assert!(listed);

    // Another tag is another document (its name is in the SBOM): a new referrer, not a reused one.
    let other = build(&t, "trace_open", "trace_open:v2", &["--sbom"]);
    let (manifest, added) = attached(&other).remove(0);
    assert!(added && !before.contains(&manifest), "{other}");
}

#[test]
fn two_builds_with_one_source_date_epoch_give_identical_attestations() {
    let a = TempStore::new();
    let b = TempStore::new();
    let (key, _) = key_pair(&a, "cosign");
    let flags = ["--sbom", "--provenance", "--key", s(&key)];
    let first = build(&a, "trace_open", "trace_open:v1", &flags);
    // The second without the cache: a fresh compile must report the same inputs.
    let mut no_cache = flags.to_vec();
    no_cache.push("--no-cache");
    let second = build(&b, "trace_open", "trace_open:v1", &no_cache);
    assert_eq!(first["digest"], second["digest"]);
    let digest = first["digest"].as_str().unwrap();
    for kind in [SPDX, IN_TOTO] {
        assert_eq!(
            referrer_layer(&a, digest, kind),
            referrer_layer(&b, digest, kind),
            "{kind} differs between two builds"
        );
    }
    let manifests = |t: &TempStore| -> BTreeSet<String> {
        referrers(t, digest).into_iter().map(|r| r.1).collect()
    };
    assert_eq!(manifests(&a), manifests(&b));

    let provenance: Value = serde_json::from_slice(&referrer_layer(&a, digest, IN_TOTO)).unwrap();
    assert_eq!(
        provenance["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(provenance["subject"][0]["digest"]["sha256"], &digest[7..]);
    let predicate = &provenance["predicate"];
    assert_eq!(
        predicate["buildDefinition"]["externalParameters"]["platforms"],
        serde_json::json!(["amd64", "arm64"])
    );
    assert_eq!(
        predicate["buildDefinition"]["internalParameters"]["SOURCE_DATE_EPOCH"],
        "1700000000"
    );
    // The builder: the GitHub Actions workflow when the tests run in one, else ig-image itself.
    let builder = predicate["runDetails"]["builder"]["id"].as_str().unwrap();
    let expected = match (
        std::env::var("GITHUB_ACTIONS").as_deref(),
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_WORKFLOW_REF"),
    ) {
        (Ok("true"), Ok(server), Ok(workflow)) => format!("{server}/{workflow}"),
        _ => format!("pkg:generic/ig-image@{}", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(builder, expected, "{predicate}");
    let deps = predicate["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert!(deps.iter().any(|d| {
        d["uri"] == "file:gadget/program.bpf.c"
            && d["digest"]["sha256"]
                .as_str()
                .is_some_and(|h| h.len() == 64)
    }));
}

/// Replaces the bundle of the `predicate_type` referrer of `subject` with `edit(bundle)`.
fn rewrite_bundle(
    t: &TempStore,
    subject: &str,
    predicate_type: &str,
    new_subject: Option<&str>,
    edit: impl Fn(Value) -> Value,
) {
    let store = t.store();
    let index_path = store.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let put = |data: &[u8]| {
        let d = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        std::fs::write(store.join("blobs/sha256").join(&d[7..]), data).unwrap();
        d
    };
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| {
            let doc: Value = serde_json::from_slice(&blob(t, e["digest"].as_str().unwrap()))
                .unwrap_or(Value::Null);
            doc["subject"]["digest"] == subject
                && doc["annotations"]["dev.sigstore.bundle.predicateType"] == predicate_type
        })
        .expect("the bundle referrer");
    let mut manifest: Value =
        serde_json::from_slice(&blob(t, entry["digest"].as_str().unwrap())).unwrap();
    let bundle: Value =
        serde_json::from_slice(&blob(t, manifest["layers"][0]["digest"].as_str().unwrap()))
            .unwrap();
    let bytes = serde_json::to_vec(&edit(bundle)).unwrap();
    manifest["layers"][0]["digest"] = put(&bytes).into();
    manifest["layers"][0]["size"] = bytes.len().into();
    if let Some(s) = new_subject {
        manifest["subject"]["digest"] = s.into();
    }
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    entry["digest"] = put(&manifest_bytes).into();
    entry["size"] = manifest_bytes.len().into();
    // The intact referrer is also listed in the bare referrers index `sha256-<hex>`: drop that
    // index, so that only the rewritten copy is left.
    let referrers_tag = format!("sha256-{}", &subject[7..]);
    index["manifests"].as_array_mut().unwrap().retain(|e| {
        e["annotations"]["org.opencontainers.image.ref.name"] != referrers_tag.as_str()
    });
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn verify_attestation_needs_the_key_an_intact_payload_and_the_right_subject() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let (_, other) = key_pair(&t, "other");
    let a = build(
        &t,
        "trace_open",
        "trace_open:v1",
        &["--sbom", "--provenance"],
    );
    let a = a["digest"].as_str().unwrap().to_owned();

    // Unsigned attestations do not verify.
    let err = exits(
        &t,
        1,
        &[
            "verify",
            "trace_open:v1",
            "--attestation",
            "slsaprovenance",
            "--public-keys",
            s(&public),
        ],
    );
    assert!(
        err.contains("no signed") && err.contains("unsigned"),
        "{err}"
    );

    build(
        &t,
        "trace_open",
        "trace_open:v1",
        &["--sbom", "--provenance", "--key", s(&key)],
    );
    let out = ok(
        &t,
        &[
            "verify",
            "trace_open:v1",
            "--attestation",
            "slsaprovenance",
            "--public-keys",
            s(&public),
        ],
    );
    assert!(out.starts_with("Verified trace_open:v1@"), "{out}");
    let doc = &json_lines(&ok(
        &t,
        &[
            "verify",
            "trace_open:v1",
            "--attestation",
            "spdx",
            "--public-keys",
            s(&public),
            "-o",
            "json",
        ],
    ))[0];
    assert_eq!(doc["verified"], true);
    assert_eq!(doc["predicateType"], "https://spdx.dev/Document");
    assert_eq!(doc["predicate"]["spdxVersion"], "SPDX-2.3");
    // The image signature is not satisfied by an attestation.
    let err = exits(
        &t,
        1,
        &["verify", "trace_open:v1", "--public-keys", s(&public)],
    );
    assert!(err.contains("is not signed"), "{err}");

    // Another key.
    let err = exits(
        &t,
        1,
        &[
            "verify",
            "trace_open:v1",
            "--attestation",
            "slsaprovenance",
            "--public-keys",
            s(&other),
        ],
    );
    assert!(
        err.contains("another key or over an altered payload"),
        "{err}"
    );

    // A subject of another digest: in another store, trace_exec's signed provenance listed as
    // a referrer of trace_open.
    let t2 = TempStore::new();
    let a2 = build(&t2, "trace_open", "trace_open:v1", &[]);
    let a2 = a2["digest"].as_str().unwrap().to_owned();
    let b = build(
        &t2,
        "trace_exec",
        "trace_exec:v1",
        &["--provenance", "--key", s(&key)],
    );
    let b = b["digest"].as_str().unwrap().to_owned();
    rewrite_bundle(&t2, &b, "https://slsa.dev/provenance/v1", Some(&a2), |b| b);
    let err = exits(
        &t2,
        1,
        &[
            "verify",
            "trace_open:v1",
            "--attestation",
            "slsaprovenance",
            "--public-keys",
            s(&public),
        ],
    );
    assert!(err.contains("digest mismatch") && err.contains(&b), "{err}");

    // A tampered payload (the SBOM's statement altered after signing).
    rewrite_bundle(&t, &a, "https://spdx.dev/Document", None, |mut bundle| {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let payload = engine
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let altered = String::from_utf8(payload)
            .unwrap()
            .replace("SPDX-2.3", "SPDX-2.2");
        bundle["dsseEnvelope"]["payload"] = engine.encode(altered).into();
        bundle
    });
    let err = exits(
        &t,
        1,
        &[
            "verify",
            "trace_open:v1",
            "--attestation",
            "spdx",
            "--public-keys",
            s(&public),
        ],
    );
    assert!(err.contains("altered payload"), "{err}");
}

#[test]
fn attestations_survive_export_and_import() {
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let built = build(
        &t,
        "trace_open",
        "trace_open:v1",
        &["--sbom", "--provenance", "--key", s(&key)],
    );
    let digest = built["digest"].as_str().unwrap();
    let tar = t.dir.path().join("attested.tar");
    ok(&t, &["export", "trace_open:v1", s(&tar)]);

    let fresh = TempStore::new();
    ok(&fresh, &["import", s(&tar)]);
    for kind in ["slsaprovenance", "spdx"] {
        ok(
            &fresh,
            &[
                "verify",
                "trace_open:v1",
                "--attestation",
                kind,
                "--public-keys",
                s(&public),
            ],
        );
    }
    assert_eq!(
        referrer_layer(&fresh, digest, SPDX),
        referrer_layer(&t, digest, SPDX)
    );
}

#[test]
fn attestations_survive_push_and_pull_through_a_registry() {
    if !ig_image_tests::registry::require_registry_tools(
        "attestations_survive_push_and_pull_through_a_registry",
    ) {
        return;
    }
    let registry = ig_image_tests::registry::Registry::start();
    let host = registry.host();
    let insecure = ["--insecure-registries", host.as_str()];
    let t = TempStore::new();
    let (key, public) = key_pair(&t, "cosign");
    let image = format!("{host}/gadgets/trace_open:v1");
    let built = build(
        &t,
        "trace_open",
        &image,
        &["--sbom", "--provenance", "--key", s(&key)],
    );
    let digest = built["digest"].as_str().unwrap();
    ok(&t, &[&["push", image.as_str()][..], &insecure].concat());
    // The registry has no referrers API: the referrers are listed at the `sha256-<hex>` tag.
    let view = ig_image_tests::registry::RegistryView {
        addr: registry.addr(),
        auth: None,
    };
    let tags = view.tags("gadgets/trace_open");
    assert!(
        tags.contains(&format!("sha256-{}", &digest[7..])),
        "{tags:?}"
    );

    let fresh = TempStore::new();
    ok(&fresh, &[&["pull", image.as_str()][..], &insecure].concat());
    for kind in ["slsaprovenance", "spdx"] {
        ok(
            &fresh,
            &[
                "verify",
                &image,
                "--attestation",
                kind,
                "--public-keys",
                s(&public),
            ],
        );
    }
    assert_eq!(
        referrer_layer(&fresh, digest, SPDX),
        referrer_layer(&t, digest, SPDX)
    );
    // --remote verifies the registry's copy.
    let empty = TempStore::new();
    ok(
        &empty,
        &[
            &[
                "verify",
                image.as_str(),
                "--remote",
                "--attestation",
                "slsaprovenance",
                "--public-keys",
                s(&public),
            ][..],
            &insecure,
        ]
        .concat(),
    );
}

#[test]
fn the_init_workflow_attaches_and_signs_attestations() {
    let t = TempStore::new();
    t.ok(["init", "wf_supply", "--dir", t.dir.path().to_str().unwrap()]);
    let workflow =
        std::fs::read_to_string(t.dir.path().join("wf_supply/.github/workflows/gadget.yml"))
            .unwrap();
    assert!(
        workflow.contains(r#"ig-image build . -t "$REF" --sbom --provenance"#),
        "{workflow}"
    );
    assert!(
        workflow.contains(r#"--sbom --provenance --key "$RUNNER_TEMP/cosign.key""#),
        "{workflow}"
    );
}

fn sigstore_testdata(name: &str) -> String {
    s(&workspace_root()
        .join("ig-image-sign/src/testdata/sigstore")
        .join(name))
    .to_owned()
}

/// `verify-blob` with a real public-good keyless bundle: accepted with the right identity and
/// issuer (exact and regexp), refused naming the step for another identity, an altered file and
/// a root whose log keys are not the bundle's. No network is used (the embedded root).
#[test]
fn verify_blob_checks_a_real_keyless_bundle_offline() {
    let t = TempStore::new();
    let file = sigstore_testdata("cosign-v3-blob.txt");
    let bundle = sigstore_testdata("cosign-v3-blob.sigstore.json");
    let base = ["verify-blob", file.as_str(), "--bundle", bundle.as_str()];
    let who = [
        "--certificate-identity",
        "w.vollprecht@gmail.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    ];
    let out = ok(&t, &[&base[..], &who].concat());
    assert!(
        out.starts_with("Verified OK") && out.contains("w.vollprecht@gmail.com"),
        "{out}"
    );
    ok(
        &t,
        &[
            &base[..],
            &[
                "--certificate-identity-regexp",
                r".*@gmail\.com",
                "--certificate-oidc-issuer-regexp",
                r"https://github\.com/.*",
            ],
        ]
        .concat(),
    );
    let err = exits(
        &t,
        1,
        &[
            &base[..],
            &[
                "--certificate-identity",
                "mallory@example.com",
                "--certificate-oidc-issuer",
                "https://github.com/login/oauth",
            ],
        ]
        .concat(),
    );
    assert!(err.contains("identity policy failed"), "{err}");

    let altered = t.dir.path().join("altered.txt");
    let mut data = std::fs::read(&file).unwrap();
    data.push(b'!');
    std::fs::write(&altered, data).unwrap();
    let err = exits(
        &t,
        1,
        &[
            &["verify-blob", s(&altered), "--bundle", bundle.as_str()][..],
            &who,
        ]
        .concat(),
    );
    assert!(err.contains("failed keyless verification"), "{err}");

    // A pinned root that trusts none of the public-good CAs and logs: refused, never fetched.
    let root = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [], "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": [],
    });
    let root_file = t.dir.path().join("trusted_root.json");
    std::fs::write(&root_file, root.to_string()).unwrap();
    let out = run(with_password(
        t.cmd([&base[..], &who, &["--trusted-root", s(&root_file)]].concat()),
    ));
    assert!(!out.status.success(), "an empty root verified a bundle");

    // Missing identity flags are a usage error, not a verdict.
    exits(
        &t,
        2,
        &[
            &base[..],
            &["--certificate-identity", "w.vollprecht@gmail.com"],
        ]
        .concat(),
    );
}

/// An image whose only bundle is key-based does not pass keyless verification (nor does an
/// unsigned one), and `run`'s policy takes the keyless flags.
#[test]
fn keyless_image_verification_fails_closed() {
    let t = TempStore::new();
    let (key, _) = key_pair(&t, "cosign");
    build(&t, "trace_open", "trace_open:v1", &[]);
    let who = [
        "--certificate-identity",
        "w.vollprecht@gmail.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    ];
    let err = exits(&t, 1, &[&["verify", "trace_open:v1"][..], &who].concat());
    assert!(err.contains("no sigstore bundle"), "{err}");
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
    let err = exits(&t, 1, &[&["verify", "trace_open:v1"][..], &who].concat());
    assert!(err.contains("failed keyless verification"), "{err}");
    let err = exits(
        &t,
        2,
        &[&["run", "trace_open:v1", "--verify-only"][..], &who].concat(),
    );
    assert!(
        err.contains("keyless signature verification failed"),
        "{err}"
    );
}

/// A GitHub Actions identity and issuer, as Fulcio certifies them for a release workflow.
const CI_IDENTITY: &str =
    "https://github.com/acme/gadgets/.github/workflows/release.yml@refs/tags/v1";
const CI_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A bundle signing `payload` (an in-toto statement) keyless by [`CI_IDENTITY`], made by a
/// private Sigstore instance (tests/helpers/sigstore_keyless.py: our own CA, CT log and Rekor
/// log keys), and that instance's trusted root, written in `t`'s directory under `name`.
fn private_sigstore_bundle(
    t: &TempStore,
    name: &str,
    payload: &[u8],
    expired_leaf: bool,
) -> (Value, PathBuf) {
    let dir = t.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let statement = dir.join("statement.json");
    std::fs::write(&statement, payload).unwrap();
    let mut c = Command::new("python3");
    c.arg(workspace_root().join("tests/helpers/sigstore_keyless.py"))
        .arg(&statement)
        .arg(&dir)
        .args(["--identity", CI_IDENTITY, "--issuer", CI_ISSUER]);
    if expired_leaf {
        c.arg("--expired-leaf");
    }
    assert_success(&run(c));
    let bundle =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap()).unwrap();
    (bundle, dir.join("trusted_root.json"))
}

/// The in-toto statement that `sign --format bundle` signs for `subject` (the cosign v3 image
/// signature statement), read back from its bundle referrer.
fn signed_statement(t: &TempStore, subject: &str) -> Vec<u8> {
    use base64::Engine as _;
    let bundle: Value = serde_json::from_slice(&referrer_layer(t, subject, BUNDLE)).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap()
}

/// Signs `image` (index `digest`) keyless, the way `cosign sign --new-bundle-format` in CI does:
/// a bundle referrer whose DSSE statement names the index digest, signed by a private Sigstore's
/// short-lived certificate. Returns that Sigstore's trusted root.
fn sign_keyless(t: &TempStore, key: &Path, image: &str, digest: &str, expired: bool) -> PathBuf {
    ok(t, &["sign", image, "--key", s(key), "--format", "bundle"]);
    let statement = signed_statement(t, digest);
    let name = if expired { "expired" } else { "sigstore" };
    let (keyless, root) = private_sigstore_bundle(t, name, &statement, expired);
    rewrite_bundle(
        t,
        digest,
        "https://sigstore.dev/cosign/sign/v1",
        None,
        |_| keyless.clone(),
    );
    root
}

/// `verify-blob` accepts a bundle from a private Sigstore with that instance's trusted root
/// (and only with it), and refuses another identity or issuer.
#[test]
fn verify_blob_accepts_a_private_sigstore_bundle_with_its_trusted_root() {
    let t = TempStore::new();
    let file = t.dir.path().join("gadget.tar");
    std::fs::write(&file, b"the artifact").unwrap();
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "gadget.tar", "digest": {"sha256": hex::encode(Sha256::digest(b"the artifact"))}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    });
    let (bundle, root) =
        private_sigstore_bundle(&t, "blob", statement.to_string().as_bytes(), false);
    let bundle_file = t.dir.path().join("gadget.tar.sigstore.json");
    std::fs::write(&bundle_file, bundle.to_string()).unwrap();
    let base = ["verify-blob", s(&file), "--bundle", s(&bundle_file)];
    let root_flag = ["--trusted-root", s(&root)];
    let who = [
        "--certificate-identity",
        CI_IDENTITY,
        "--certificate-oidc-issuer",
        CI_ISSUER,
    ];
    let out = ok(&t, &[&base[..], &who, &root_flag, &["-o", "json"]].concat());
    let v = &json_lines(&out)[0];
    assert_eq!(v["identity"], CI_IDENTITY, "{v}");
    assert_eq!(v["issuer"], CI_ISSUER, "{v}");
    assert_eq!(v["tlog_verified"], true, "{v}");
    // The embedded public-good root does not trust this instance.
    let err = exits(&t, 1, &[&base[..], &who].concat());
    assert!(err.contains("failed keyless verification"), "{err}");
    let err = exits(
        &t,
        1,
        &[
            &base[..],
            &[
                "--certificate-identity-regexp",
                r"https://github\.com/acme/.*",
            ],
            &["--certificate-oidc-issuer", "https://accounts.google.com"],
            &root_flag,
        ]
        .concat(),
    );
    assert!(
        err.contains("identity policy failed: issuer mismatch"),
        "{err}"
    );
}

/// `verify trace_open:v1 -o json` keyless with an identity, an issuer and `root` flags.
fn verify_keyless<'a>(identity: &'a str, issuer: &'a str, root: &[&'a str]) -> Vec<&'a str> {
    [
        &["verify", "trace_open:v1", "-o", "json"][..],
        &["--certificate-identity", identity],
        &["--certificate-oidc-issuer", issuer],
        root,
    ]
    .concat()
}

/// An image signed keyless (a bundle referrer with a Fulcio-like certificate, an SCT and a Rekor
/// entry with inclusion proof, checkpoint and SET, all from a private Sigstore) verifies offline
/// with `--certificate-identity`, `--certificate-oidc-issuer` and that instance's
/// `--trusted-root`; and is refused, naming the step, for another identity, another issuer, a
/// tampered payload, a leaf certificate expired at the signing time, and the embedded root.
#[test]
fn an_image_signed_keyless_verifies_offline_against_a_pinned_root() {
    let t = TempStore::new();
    let (key, _) = key_pair(&t, "cosign");
    let built = build(&t, "trace_open", "trace_open:v1", &[]);
    let digest = built["digest"].as_str().unwrap().to_owned();
    let root = sign_keyless(&t, &key, "trace_open:v1", &digest, false);
    let root_flag = ["--trusted-root", s(&root)];
    let out = ok(&t, &verify_keyless(CI_IDENTITY, CI_ISSUER, &root_flag));
    let v = &json_lines(&out)[0];
    assert_eq!(v["identity"], CI_IDENTITY, "{v}");
    assert_eq!(v["issuer"], CI_ISSUER, "{v}");
    assert_eq!(v["digest"], digest.as_str(), "{v}");
    assert_eq!(v["tlog_verified"], true, "{v}");
    let statement = signed_statement(&t, &digest);

    let err = exits(
        &t,
        1,
        &verify_keyless("mallory@example.com", CI_ISSUER, &root_flag),
    );
    assert!(
        err.contains("identity policy failed: identity mismatch"),
        "{err}"
    );
    let err = exits(
        &t,
        1,
        &verify_keyless(CI_IDENTITY, "https://accounts.google.com", &root_flag),
    );
    assert!(
        err.contains("identity policy failed: issuer mismatch"),
        "{err}"
    );
    // Without the pinned root (the embedded public-good one) nothing of this instance verifies.
    let err = exits(&t, 1, &verify_keyless(CI_IDENTITY, CI_ISSUER, &[]));
    assert!(err.contains("failed keyless verification"), "{err}");

    // A payload altered after signing: the statement now names another predicate.
    rewrite_bundle(
        &t,
        &digest,
        "https://sigstore.dev/cosign/sign/v1",
        None,
        |mut bundle| {
            use base64::Engine as _;
            let engine = base64::engine::general_purpose::STANDARD;
            let mut statement: Value = serde_json::from_slice(
                &engine
                    .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap();
            statement["predicate"] = serde_json::json!({"note": "altered"});
            bundle["dsseEnvelope"]["payload"] = engine
                .encode(serde_json::to_vec(&statement).unwrap())
                .into();
            bundle
        },
    );
    let err = exits(&t, 1, &verify_keyless(CI_IDENTITY, CI_ISSUER, &root_flag));
    assert!(err.contains("signature failed"), "{err}");

    // A leaf certificate whose validity ended before the log integrated the entry.
    let (expired, expired_root) = private_sigstore_bundle(&t, "expired", &statement, true);
    rewrite_bundle(
        &t,
        &digest,
        "https://sigstore.dev/cosign/sign/v1",
        None,
        |_| expired.clone(),
    );
    let err = exits(
        &t,
        1,
        &verify_keyless(
            CI_IDENTITY,
            CI_ISSUER,
            &["--trusted-root", s(&expired_root)],
        ),
    );
    assert!(
        err.contains("Fulcio certificate chain at the signing time failed")
            && err.contains("Expired"),
        "{err}"
    );
}

/// A keyless-signed image (private Sigstore) pushed to a real registry and pulled into a fresh
/// store verifies keyless there; `pull` with the keyless policy flags accepts it with the pinned
/// root and refuses it for another identity.
#[test]
fn a_keyless_signed_image_verifies_after_push_and_pull() {
    if !ig_image_tests::registry::require_registry_tools(
        "a_keyless_signed_image_verifies_after_push_and_pull",
    ) {
        return;
    }
    let registry = ig_image_tests::registry::Registry::start();
    let host = registry.host();
    let insecure = ["--insecure-registries", host.as_str()];
    let t = TempStore::new();
    let (key, _) = key_pair(&t, "cosign");
    let image = format!("{host}/gadgets/trace_open:v1");
    let built = build(&t, "trace_open", &image, &[]);
    let digest = built["digest"].as_str().unwrap().to_owned();
    let root = sign_keyless(&t, &key, &image, &digest, false);
    let root_flag = ["--trusted-root", s(&root)];
    let who = [
        "--certificate-identity",
        CI_IDENTITY,
        "--certificate-oidc-issuer",
        CI_ISSUER,
    ];
    ok(&t, &[&["push", image.as_str()][..], &insecure].concat());

    let fresh = TempStore::new();
    ok(&fresh, &[&["pull", image.as_str()][..], &insecure].concat());
    let out = ok(
        &fresh,
        &[
            &["verify", image.as_str(), "-o", "json"][..],
            &who,
            &root_flag,
        ]
        .concat(),
    );
    let v = &json_lines(&out)[0];
    assert_eq!(v["identity"], CI_IDENTITY, "{v}");
    assert_eq!(v["digest"], digest.as_str(), "{v}");
    // The pulled bundle is the pushed one, byte for byte.
    assert_eq!(
        referrer_layer(&fresh, &digest, BUNDLE),
        referrer_layer(&t, &digest, BUNDLE)
    );

    // pull's policy: accepted with the pinned root, refused for another identity.
    let policy_store = TempStore::new();
    ok(
        &policy_store,
        &[&["pull", image.as_str()][..], &insecure, &who, &root_flag].concat(),
    );
    let refused = TempStore::new();
    let err = exits(
        &refused,
        2,
        &[
            &["pull", image.as_str()][..],
            &insecure,
            &["--certificate-identity", "mallory@example.com"],
            &["--certificate-oidc-issuer", CI_ISSUER],
            &root_flag,
        ]
        .concat(),
    );
    assert!(
        err.contains("keyless signature verification failed"),
        "{err}"
    );
    let listed = ok(&refused, &["list", "-o", "json"]);
    assert!(
        !listed.contains("trace_open"),
        "a refused pull left a tag: {listed}"
    );
}
