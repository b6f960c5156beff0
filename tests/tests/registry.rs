//! Registries end to end (issue 4): a real `docker-registry` (distribution 2.8) on
//! `127.0.0.1:0`, skopeo as the interop peer, and a fault-injecting proxy for transient
//! failures. Under `CI=true` a missing tool fails the test (run `scripts/setup`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ig_image_tests::registry::{
    FaultPlan, FaultProxy, Registry, RegistryView, base64, require_registry_tools,
    write_credential_helper,
};
use ig_image_tests::{TempStore, assert_success, json_lines, run, sample};
use sha2::Digest as _;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55-2718";

/// `ig-image ARGS` on `t`'s store with a private, empty auth file and docker config.
fn ig<I, S>(t: &TempStore, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = t.cmd(args);
    c.env("REGISTRY_AUTH_FILE", t.dir.path().join("auth.json"));
    c.env("DOCKER_CONFIG", t.dir.path().join("docker"));
    c.env_remove("RUST_LOG");
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(mut c: Command) -> String {
    let out = run_cmd(&mut c, None);
    assert_success(&out);
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(mut c: Command) -> String {
    let out = run_cmd(&mut c, None);
    assert!(!out.status.success(), "expected failure:\n{}", text(&out));
    text(&out)
}

fn run_cmd(c: &mut Command, stdin: Option<&str>) -> Output {
    match stdin {
        None => run(std::mem::replace(c, Command::new("true"))),
        Some(input) => {
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().expect("spawn");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
            child.wait_with_output().expect("wait")
        }
    }
}

fn json(stdout: &str) -> serde_json::Value {
    json_lines(stdout).pop().expect("a JSON line")
}

fn build(t: &TempStore, gadget: &str, image: &str) -> String {
    let out = json(&ok(ig(
        t,
        [
            "build",
            sample(gadget).to_str().unwrap(),
            "-t",
            image,
            "-o",
            "json",
        ],
    )));
    out["digest"].as_str().expect("digest").to_owned()
}

fn index_json(t: &TempStore) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(t.store().join("index.json")).expect("index.json"))
        .expect("index.json is JSON")
}

fn tagged(t: &TempStore, reference: &str) -> Option<String> {
    index_json(t)["manifests"]
        .as_array()?
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .and_then(|e| e["digest"].as_str().map(str::to_owned))
}

#[test]
fn push_remove_pull_keeps_the_digest_and_an_unchanged_push_uploads_nothing() {
    if !require_registry_tools("push_remove_pull") {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = TempStore::new();
    let image = format!("{host}/gadgets/trace_open:v1");
    let digest = build(&t, "trace_open", &image);

    let first = json(&ok(ig(
        &t,
        ["push", &image, "--insecure-registries", &host, "-o", "json"],
    )));
    assert_eq!(first["digest"], digest.as_str(), "{first}");
    assert_eq!(first["reference"], image.as_str());
    assert!(first["blobs_uploaded"].as_u64().unwrap() >= 3, "{first}");
    assert_eq!(first["blobs_skipped"], 0, "{first}");
    assert!(first["bytes_sent"].as_u64().unwrap() > 1000, "{first}");

    // An unchanged re-push sends no blob.
    let again = json(&ok(ig(
        &t,
        ["push", &image, "--insecure-registries", &host, "-o", "json"],
    )));
    assert_eq!(again["blobs_uploaded"], 0, "{again}");
    assert_eq!(again["blobs_skipped"], first["blobs_uploaded"], "{again}");

    // The text form: one line per finished image.
    let line = ok(ig(&t, ["push", &image, "--insecure-registries", &host]));
    assert!(
        line.starts_with(&format!(
            "Successfully pushed {image}@{digest} (0 blobs uploaded"
        )),
        "{line}"
    );

    let view = RegistryView {
        addr: reg.addr(),
        auth: None,
    };
    assert_eq!(view.tags("gadgets/trace_open"), ["v1"]);
    assert!(view.incomplete_tags("gadgets/trace_open").is_empty());

    // Remove locally, pull back: same digest, the checker passes.
    ok(ig(&t, ["remove", &image]));
    assert_eq!(tagged(&t, &image), None);
    let pulled = json(&ok(ig(
        &t,
        ["pull", &image, "--insecure-registries", &host, "-o", "json"],
    )));
    assert_eq!(pulled["digest"], digest.as_str(), "{pulled}");
    assert_eq!(
        pulled["blobs_downloaded"], first["blobs_uploaded"],
        "{pulled}"
    );
    assert_eq!(
        pulled["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(tagged(&t, &image).as_deref(), Some(digest.as_str()));
    t.check(&[&image], "amd64,arm64");
    assert!(
        !t.store().join("ingest").exists()
            || std::fs::read_dir(t.store().join("ingest")).unwrap().count() == 0,
        "staging directories are cleaned up"
    );

    // Pulling again downloads nothing.
    let again = json(&ok(ig(
        &t,
        ["pull", &image, "--insecure-registries", &host, "-o", "json"],
    )));
    assert_eq!(again["blobs_downloaded"], 0, "{again}");

    // Another repository of the same registry: blobs are mounted, not uploaded.
    let mirror = format!("{host}/mirror/trace_open:v1");
    ok(ig(&t, ["tag", &image, &mirror]));
    let mounted = json(&ok(ig(
        &t,
        [
            "push",
            &mirror,
            "--insecure-registries",
            &host,
            "-o",
            "json",
        ],
    )));
    assert_eq!(mounted["blobs_uploaded"], 0, "{mounted}");
    assert_eq!(
        mounted["blobs_mounted"], first["blobs_uploaded"],
        "{mounted}"
    );
    assert!(view.incomplete_tags("mirror/trace_open").is_empty());

    // A fresh store, by digest: stored untagged, reachable by digest.
    let t2 = TempStore::new();
    let by_digest = format!("{host}/gadgets/trace_open@{digest}");
    ok(ig(
        &t2,
        ["pull", &by_digest, "--insecure-registries", &host],
    ));
    assert!(
        index_json(&t2)["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["digest"] == digest.as_str())
    );
    let inspected = ok(ig(&t2, ["inspect", &by_digest, "-o", "json"]));
    assert!(inspected.contains(&digest), "{inspected}");
}

#[test]
fn pull_of_some_platforms_stores_a_narrower_index() {
    if !require_registry_tools("pull_platform") {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = TempStore::new();
    let image = format!("{host}/p/trace_exec:v1");
    let digest = build(&t, "trace_exec", &image);
    ok(ig(&t, ["push", &image, "--insecure-registries", &host]));

    let t2 = TempStore::new();
    let out = json(&ok(ig(
        &t2,
        [
            "pull",
            &image,
            "--insecure-registries",
            &host,
            "--platform",
            "arm64",
            "-o",
            "json",
        ],
    )));
    assert_eq!(out["source_digest"], digest.as_str(), "{out}");
    assert_ne!(out["digest"], digest.as_str());
    assert_eq!(out["platforms"], serde_json::json!(["linux/arm64"]));
    assert_eq!(
        out["blobs_downloaded"], 2,
        "config + the arm64 program: {out}"
    );
    t2.check(&[&image], "arm64");

    let err = fails(ig(
        &t2,
        [
            "pull",
            &image,
            "--insecure-registries",
            &host,
            "--platform",
            "s390x",
        ],
    ));
    assert!(err.contains("none of the platforms"), "{err}");
}

#[test]
fn insecure_registries_name_exact_hosts_and_loopback_is_not_downgraded() {
    if !require_registry_tools("insecure_registries") {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = TempStore::new();
    let image = format!("{host}/tls/trace_open:v1");
    build(&t, "trace_open", &image);
    for extra in [
        vec![],
        vec!["--insecure-registries", "127.0.0.1:1,localhost:5000"],
    ] {
        let mut args = vec!["push", image.as_str()];
        args.extend(extra);
        let err = fails(ig(&t, args));
        assert!(err.contains("TLS with"), "{err}");
        assert!(
            err.contains(&format!(
                "hint: if {host} serves plain HTTP, pass `--insecure-registries {host}`"
            )),
            "{err}"
        );
    }
    ok(ig(
        &t,
        [
            "push",
            &image,
            "--insecure-registries",
            &format!("127.0.0.1:1,{host}"),
        ],
    ));
}

fn docker_config_with_auth(path: &Path, host: &str, user: &str, password: &str) {
    let auth = base64(format!("{user}:{password}").as_bytes());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        serde_json::json!({"auths": {host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
}

#[test]
fn htpasswd_registry_with_auth_file_login_and_credential_helper() {
    if !require_registry_tools("htpasswd_registry") {
        return;
    }
    let reg = Registry::with_htpasswd(USER, PASSWORD);
    let host = reg.host();
    let t = TempStore::new();
    let image = format!("{host}/auth/trace_open:v1");
    let digest = build(&t, "trace_open", &image);
    let secret_forms = [
        PASSWORD.to_owned(),
        base64(format!("{USER}:{PASSWORD}").as_bytes()),
    ];
    let no_secret = |what: &str, out: &str| {
        for s in &secret_forms {
            assert!(!out.contains(s.as_str()), "{what} shows a secret:\n{out}");
        }
    };

    // No credentials: a clear 401 with the registry's message and what to do.
    let err = fails(ig(&t, ["push", &image, "--insecure-registries", &host]));
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(err.contains("authentication required"), "{err}");
    assert!(
        err.contains(&format!("hint: no credentials for `{host}` were found")),
        "{err}"
    );
    assert!(err.contains(&format!("ig-image login {host}")), "{err}");

    // A wrong password: login fails and writes nothing.
    let auth_file = t.dir.path().join("auth.json");
    let mut c = ig(
        &t,
        [
            "login",
            &host,
            "-u",
            USER,
            "--password-stdin",
            "--insecure-registries",
            &host,
        ],
    );
    let out = run_cmd(&mut c, Some("wrong-password\n"));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));
    assert!(!auth_file.exists());

    // login --password-stdin writes the auth file (mode 0600) in docker's format.
    let mut c = ig(
        &t,
        [
            "-vv",
            "login",
            &host,
            "-u",
            USER,
            "--password-stdin",
            "--insecure-registries",
            &host,
        ],
    );
    let out = run_cmd(&mut c, Some(&format!("{PASSWORD}\n")));
    assert_success(&out);
    no_secret("login -vv", &text(&out));
    assert!(text(&out).contains("Login succeeded"), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&auth_file).unwrap()).unwrap();
    assert_eq!(file["auths"][&host]["auth"], secret_forms[1].as_str());

    // Push with the login, verbose: works, and no secret in any output.
    let mut c = ig(&t, ["-vv", "push", &image, "--insecure-registries", &host]);
    let out = run_cmd(&mut c, None);
    assert_success(&out);
    no_secret("push -vv", &text(&out));

    // logout removes it; the push fails again.
    let out = ok(ig(&t, ["logout", &host]));
    assert!(out.contains("Removed login credentials"), "{out}");
    let err = fails(ig(&t, ["push", &image, "--insecure-registries", &host]));
    assert!(err.contains("401 Unauthorized"), "{err}");
    no_secret("failed push", &err);

    // A docker config file given with --authfile.
    let docker_cfg = t.dir.path().join("elsewhere/config.json");
    docker_config_with_auth(&docker_cfg, &host, USER, PASSWORD);
    let t2 = TempStore::new();
    let out = json(&ok(ig(
        &t2,
        [
            "pull",
            &image,
            "--insecure-registries",
            &host,
            "--authfile",
            docker_cfg.to_str().unwrap(),
            "-o",
            "json",
        ],
    )));
    assert_eq!(out["digest"], digest.as_str());
    t2.check(&[&image], "amd64,arm64");

    // Docker's own config ($DOCKER_CONFIG) when no other auth file exists.
    let t3 = TempStore::new();
    docker_config_with_auth(
        &t3.dir.path().join("docker/config.json"),
        &host,
        USER,
        PASSWORD,
    );
    let mut c = ig(&t3, ["pull", &image, "--insecure-registries", &host]);
    c.env_remove("REGISTRY_AUTH_FILE");
    if !Path::new("/var/lib/ig/config.json").exists() {
        assert_success(&run_cmd(&mut c, None));
    }

    // A wrong password in the file: the 401 says the credentials were rejected.
    docker_config_with_auth(&docker_cfg, &host, USER, "not-it");
    let err = fails(ig(
        &t2,
        [
            "pull",
            &image,
            "--insecure-registries",
            &host,
            "--authfile",
            docker_cfg.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("were rejected"), "{err}");

    // A credential helper named by credHelpers, found on PATH, run without a shell.
    let bin = t.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_credential_helper(&bin, "igtest", &host, USER, PASSWORD);
    let helper_cfg = t.dir.path().join("helper/config.json");
    std::fs::create_dir_all(helper_cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &helper_cfg,
        serde_json::json!({"credHelpers": {&host: "igtest"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let t4 = TempStore::new();
    let mut c = ig(
        &t4,
        [
            "-v",
            "pull",
            &image,
            "--insecure-registries",
            &host,
            "--authfile",
            helper_cfg.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    c.env("PATH", &path);
    let out = run_cmd(&mut c, None);
    assert_success(&out);
    no_secret("pull with a credential helper", &text(&out));
    assert!(
        text(&out).contains("docker-credential-igtest"),
        "-v names where credentials came from:\n{}",
        text(&out)
    );
    t4.check(&[&image], "amd64,arm64");
    // The helper without its program on PATH: a clear error.
    let err = fails(ig(
        &t4,
        [
            "pull",
            &image,
            "--insecure-registries",
            &host,
            "--authfile",
            helper_cfg.to_str().unwrap(),
        ],
    ));
    assert!(
        err.contains("docker-credential-igtest` is not on PATH"),
        "{err}"
    );
}

#[test]
fn skopeo_reads_what_we_push_and_we_pull_what_skopeo_pushes() {
    if !require_registry_tools("skopeo_interop") {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = TempStore::new();
    let image = format!("{host}/interop/trace_exec:v1");
    let digest = build(&t, "trace_exec", &image);
    ok(ig(&t, ["push", &image, "--insecure-registries", &host]));

    // skopeo copy --all of our push into an oci: layout keeps the index digest.
    let layout = t.dir.path().join("skopeo-layout");
    let out = run({
        let mut c = Command::new("skopeo");
        c.args(["copy", "--all", "--src-tls-verify=false"])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:v1", layout.display()));
        c
    });
    assert_success(&out);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str(), "{index}");

    // Our export, unpacked, pushed by skopeo, pulled back by us: intact, same digest.
    let tar = t.dir.path().join("export.tar");
    ok(ig(&t, ["export", &image, tar.to_str().unwrap()]));
    let unpacked = t.dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    assert_success(&run({
        let mut c = Command::new("tar");
        c.arg("-xf").arg(&tar).arg("-C").arg(&unpacked);
        c
    }));
    let theirs = format!("{host}/from-skopeo/trace_exec:v1");
    let out = run({
        let mut c = Command::new("skopeo");
        c.args(["copy", "--all", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{image}", unpacked.display()))
            .arg(format!("docker://{theirs}"));
        c
    });
    assert_success(&out);
    let t2 = TempStore::new();
    let pulled = json(&ok(ig(
        &t2,
        [
            "pull",
            &theirs,
            "--insecure-registries",
            &host,
            "-o",
            "json",
        ],
    )));
    assert_eq!(pulled["digest"], digest.as_str(), "{pulled}");
    t2.check(&[&theirs], "amd64,arm64");
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Writes a blob into a store directory as another tool would; returns its digest.
fn add_blob(store: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    std::fs::write(store.join("blobs/sha256").join(&d[7..]), data).unwrap();
    d
}

fn add_entry(store: &Path, entry: serde_json::Value) {
    let path = store.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().push(entry);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Stores a legacy cosign signature tag and an OCI 1.1 bundle referrer for `image`, the
/// signature in the layout earlier versions wrote (`<repository>:sha256-<hex>.sig`), the
/// referrer as an untagged entry only. Returns (signature manifest, referrer manifest) digests.
fn add_signature_forms(t: &TempStore, image: &str, index_digest: &str) -> (String, String) {
    let store = t.store();
    let index_size = std::fs::read(store.join("blobs/sha256").join(&index_digest[7..]))
        .unwrap()
        .len();
    let name = image.rsplit_once(':').unwrap().0;
    // 1a: legacy tag.
    let payload = serde_json::json!({"critical": {"identity": {"docker-reference": name},
        "image": {"docker-manifest-digest": index_digest},
        "type": "cosign container image signature"}, "optional": null})
    .to_string();
    let payload_d = add_blob(&store, payload.as_bytes());
    let config = br#"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_d = add_blob(&store, config);
    let sig = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": payload_d,
            "size": payload.len(), "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDtest"}}]})
    .to_string();
    let sig_d = add_blob(&store, sig.as_bytes());
    add_entry(
        &store,
        serde_json::json!({"mediaType": MANIFEST, "digest": sig_d, "size": sig.len(),
            "annotations": {"org.opencontainers.image.ref.name": format!("{name}:sha256-{}.sig", &index_digest[7..])}}),
    );
    // 1c: a bundle referrer (untagged entry whose subject is the index).
    let bundle = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","test":true}"#;
    let bundle_d = add_blob(&store, bundle);
    let empty_d = add_blob(&store, b"{}");
    let referrer = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_d, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": bundle_d, "size": bundle.len()}],
        "subject": {"mediaType": INDEX, "digest": index_digest, "size": index_size}})
    .to_string();
    let referrer_d = add_blob(&store, referrer.as_bytes());
    add_entry(
        &store,
        serde_json::json!({"mediaType": MANIFEST, "digest": referrer_d, "size": referrer.len()}),
    );
    (sig_d, referrer_d)
}

#[test]
fn signatures_and_referrers_travel_both_ways() {
    if !require_registry_tools("signatures_travel") {
        return;
    }
    let reg = Registry::start();
    let host = reg.host();
    let t = TempStore::new();
    let repo = "signed/trace_open";
    let image = format!("{host}/{repo}:v1");
    let digest = build(&t, "trace_open", &image);
    let (sig_d, referrer_d) = add_signature_forms(&t, &image, &digest);
    let hex = &digest[7..];

    let out = json(&ok(ig(
        &t,
        ["push", &image, "--insecure-registries", &host, "-o", "json"],
    )));
    assert_eq!(out["signatures"], 1, "{out}");
    assert_eq!(out["referrers"], 1, "{out}");

    let view = RegistryView {
        addr: reg.addr(),
        auth: None,
    };
    let remote_sig = view
        .manifest(repo, &format!("sha256-{hex}.sig"))
        .expect("the .sig tag was pushed");
    assert_eq!(sha256(&remote_sig), sig_d);
    // distribution 2.8 has no referrers API: the sha256-<hex> tag index lists the referrer.
    let tag_index: serde_json::Value = serde_json::from_slice(
        &view
            .manifest(repo, &format!("sha256-{hex}"))
            .expect("the referrers tag index was written"),
    )
    .unwrap();
    assert_eq!(tag_index["manifests"][0]["digest"], referrer_d.as_str());
    assert_eq!(
        tag_index["manifests"][0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert!(
        view.incomplete_tags(repo).is_empty(),
        "{:?}",
        view.incomplete_tags(repo)
    );
    // skopeo sees the signature tag as a manifest.
    assert_success(&run({
        let mut c = Command::new("skopeo");
        c.args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{host}/{repo}:sha256-{hex}.sig"));
        c
    }));
    // Pushing again does not duplicate the referrer.
    ok(ig(&t, ["push", &image, "--insecure-registries", &host]));
    let tag_index: serde_json::Value =
        serde_json::from_slice(&view.manifest(repo, &format!("sha256-{hex}")).unwrap()).unwrap();
    assert_eq!(tag_index["manifests"].as_array().unwrap().len(), 1);

    // A fresh store gets all three forms back, under the bare tags upstream `ig` uses.
    let t2 = TempStore::new();
    let out = json(&ok(ig(
        &t2,
        ["pull", &image, "--insecure-registries", &host, "-o", "json"],
    )));
    assert_eq!(out["digest"], digest.as_str());
    assert_eq!(out["signatures"], 1, "{out}");
    assert_eq!(out["referrers"], 1, "{out}");
    assert_eq!(
        tagged(&t2, &format!("sha256-{hex}.sig")).as_deref(),
        Some(sig_d.as_str())
    );
    let local_index = tagged(&t2, &format!("sha256-{hex}")).expect("the bare referrers index");
    let local_index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t2.store().join("blobs/sha256").join(&local_index[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(local_index["manifests"][0]["digest"], referrer_d.as_str());
    assert!(
        !index_json(&t2)
            .to_string()
            .contains(&format!(":sha256-{hex}")),
        "no tag in a repository: {}",
        index_json(&t2)
    );
    let listed = ok(ig(&t2, ["list"]));
    assert!(!listed.contains("sha256-"), "{listed}");
    assert!(
        index_json(&t2)["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["digest"] == referrer_d.as_str() && e.get("annotations").is_none()),
        "the referrer is an untagged entry"
    );
    t2.check(&[&image], "amd64,arm64");
    // And they survive the next hop (export carries them).
    let tar = t2.dir.path().join("x.tar");
    ok(ig(&t2, ["export", &image, tar.to_str().unwrap()]));
}

fn proxied(t: &TempStore, args: &[&str]) -> (bool, String, Option<serde_json::Value>) {
    let mut c = ig(t, args);
    let out = run_cmd(&mut c, None);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let report = if out.status.success() {
        json_lines(&stdout).pop()
    } else {
        None
    };
    (out.status.success(), text(&out), report)
}

/// The checker when the store holds an image; otherwise: nothing visible at all.
fn check_store(t: &TempStore) {
    let index = index_json(t);
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        let blobs = std::fs::read_dir(t.store().join("blobs/sha256")).map_or(0, |d| d.count());
        assert_eq!(blobs, 0, "a failed pull stores no blob");
    } else {
        t.check(&[], "amd64,arm64");
    }
}

/// Push and pull through a proxy that drops connections and answers 500 to a share of the
/// requests: each transfer finishes or fails clearly, the local store always passes the
/// checker, and no registry tag points at missing content.
fn transfers_under_faults(plan: FaultPlan, expect_success: bool) {
    let reg = Registry::start();
    let proxy = FaultProxy::start(reg.addr(), plan);
    let host = proxy.host();
    let t = TempStore::new();
    let images: Vec<(String, String)> = ["trace_open", "trace_exec"]
        .iter()
        .map(|g| {
            let image = format!("{host}/faults/{g}:v1");
            let d = build(&t, g, &image);
            (image, d)
        })
        .collect();
    let view = RegistryView {
        addr: reg.addr(),
        auth: None,
    };
    let mut pushed = Vec::new();
    for (image, digest) in &images {
        let (success, out, report) = proxied(
            &t,
            &["push", image, "--insecure-registries", &host, "-o", "json"],
        );
        if success {
            assert_eq!(report.unwrap()["digest"], digest.as_str());
            pushed.push((image.clone(), digest.clone()));
        } else {
            eprintln!("push failed as it may under faults:\n{out}");
            assert!(out.contains("error: failed to push"), "{out}");
            assert!(
                out.contains("gave up on") || out.contains("500") || out.contains("connection"),
                "the failure says what went wrong:\n{out}"
            );
        }
        for g in ["trace_open", "trace_exec"] {
            let problems = view.incomplete_tags(&format!("faults/{g}"));
            assert!(problems.is_empty(), "{problems:?}");
        }
    }
    t.check(&[], "amd64,arm64");
    if expect_success {
        assert_eq!(
            pushed.len(),
            images.len(),
            "pushes retried through the faults"
        );
    }
    // Whatever did not get through is pushed directly, so that pulls are tried for every image.
    for (image, digest) in &images {
        if pushed.iter().any(|(i, _)| i == image) {
            continue;
        }
        let direct = image.replacen(&host, &reg.host(), 1);
        ok(ig(&t, ["tag", image, &direct]));
        ok(ig(
            &t,
            ["push", &direct, "--insecure-registries", &reg.host()],
        ));
        pushed.push((image.clone(), digest.clone()));
    }

    let t2 = TempStore::new();
    let mut pulled = 0;
    for (image, digest) in &pushed {
        let (success, out, report) = proxied(
            &t2,
            &["pull", image, "--insecure-registries", &host, "-o", "json"],
        );
        if success {
            assert_eq!(report.unwrap()["digest"], digest.as_str());
            pulled += 1;
        } else {
            eprintln!("pull failed as it may under faults:\n{out}");
            assert!(out.contains("error: failed to pull"), "{out}");
            assert_eq!(tagged(&t2, image), None, "a failed pull leaves no tag");
        }
        check_store(&t2);
    }
    if expect_success {
        assert_eq!(pulled, pushed.len(), "pulls retried through the faults");
    }
    let stats = &proxy.stats;
    let injected = stats.dropped.load(std::sync::atomic::Ordering::SeqCst)
        + stats.errors.load(std::sync::atomic::Ordering::SeqCst);
    assert!(injected > 0, "the proxy injected faults");
    eprintln!(
        "fault proxy: {} requests, {injected} faults; {} pushed, {pulled} pulled",
        stats.requests.load(std::sync::atomic::Ordering::SeqCst),
        pushed.len()
    );
}

#[test]
fn transfers_finish_through_dropped_connections_and_500s() {
    if !require_registry_tools("faults_moderate") {
        return;
    }
    transfers_under_faults(
        FaultPlan {
            drop_percent: 15,
            error_percent: 15,
            corrupt_blobs: false,
            seed: 4,
        },
        true,
    );
}

#[test]
fn transfers_fail_cleanly_when_most_requests_fail() {
    if !require_registry_tools("faults_harsh") {
        return;
    }
    transfers_under_faults(
        FaultPlan {
            drop_percent: 35,
            error_percent: 35,
            corrupt_blobs: false,
            seed: 7,
        },
        false,
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_never_stored() {
    if !require_registry_tools("corrupt_blob") {
        return;
    }
    let reg = Registry::start();
    let t = TempStore::new();
    let direct = format!("{}/corrupt/trace_open:v1", reg.host());
    build(&t, "trace_open", &direct);
    ok(ig(
        &t,
        ["push", &direct, "--insecure-registries", &reg.host()],
    ));

    let proxy = FaultProxy::start(
        reg.addr(),
        FaultPlan {
            drop_percent: 0,
            error_percent: 0,
            corrupt_blobs: true,
            seed: 1,
        },
    );
    let host = proxy.host();
    let t2 = TempStore::new();
    build(&t2, "trace_exec", "already/here:v1");
    let before = t2.snapshot();
    let image = format!("{host}/corrupt/trace_open:v1");
    let err = fails(ig(&t2, ["pull", &image, "--insecure-registries", &host]));
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(
        !err.contains("gave up"),
        "a digest mismatch is not retried:\n{err}"
    );
    assert_eq!(t2.snapshot(), before, "nothing was stored");
}

#[test]
fn registry_test_support_parses_the_port_and_cleans_up() {
    if !require_registry_tools("registry_support") {
        return;
    }
    let dir: PathBuf;
    {
        let reg = Registry::start();
        dir = reg.dir.path().to_owned();
        let view = RegistryView {
            addr: reg.addr(),
            auth: None,
        };
        assert!(view.tags("nothing/here").is_empty());
        assert!(reg.log().contains("listening on 127.0.0.1:"));
    }
    assert!(!dir.exists(), "the registry's directory is removed on drop");
}
