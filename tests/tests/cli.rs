//! The command line as a whole: every command is quiet on a closed pipe and prints parseable
//! JSON with `-o json`; upstream `ig image` invocations do what upstream's do; `--update-metadata`
//! leaves a fresh scaffold alone; the init README's steps run in order against a real registry;
//! completions and man pages come out of the clap definitions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ig_image_tests::registry::{Registry, RegistryView, require_registry_tools};
use ig_image_tests::{TempStore, assert_success, run, sample, workspace_root};
use serde_json::Value;

const PASSWORD: &str = "cli-test-password";

/// `cmd` with standard output a pipe whose reading end is already closed: the first write fails
/// with EPIPE, as `| head -c 1` does once head has its byte.
fn run_with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped());
    cmd.output().expect("spawn")
}

/// Builds `sample` into `store` as `tag`.
fn build(store: &TempStore, name: &str, tag: &str) {
    store.ok([
        "build".as_ref(),
        sample(name).as_os_str(),
        "-t".as_ref(),
        tag.as_ref(),
    ]);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One command line, run twice: normally (its output must parse when it is JSON) and with a
/// closed stdout (same exit status, nothing alarming on stderr; nothing at all with -o json).
struct Case {
    args: Vec<String>,
    json: bool,
    /// Runs again before the closed-stdout run (commands that change state, such as `tag`).
    setup: Option<Vec<String>>,
}

fn case(args: &[&str]) -> Case {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "-o" && w[1].starts_with("json"));
    Case {
        args,
        json,
        setup: None,
    }
}

#[test]
fn every_command_is_quiet_on_a_closed_pipe_and_its_json_parses() {
    let t = TempStore::new();
    build(&t, "trace_open", "trace_open:dev");
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let keys = d("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key_prefix = format!("{keys}/cosign");
    let gadget = dir.path().join("gadgets");
    std::fs::create_dir_all(&gadget).unwrap();
    // A key pair and a signature for sign/verify, and a tar for import.
    let mut c = t.cmd(["generate-key-pair", "--output-key-prefix", &key_prefix]);
    c.env("COSIGN_PASSWORD", PASSWORD);
    assert_success(&run(c));
    t.ok(["export", "trace_open:dev", &d("one.tar")]);
    let btf = Path::new("/sys/kernel/btf/vmlinux");
    let authfile = d("auth.json");
    std::fs::write(&authfile, "{}").unwrap();
    let man = d("man");
    let predicate = d("predicate.json");
    std::fs::write(&predicate, r#"{"reviewed": true}"#).unwrap();
    let testdata = workspace_root().join("ig-image-sign/src/testdata/sigstore");
    let blob = testdata.join("cosign-v3-blob.txt").display().to_string();
    let bundle = testdata
        .join("cosign-v3-blob.sigstore.json")
        .display()
        .to_string();
    let verify_blob = [
        "verify-blob",
        &blob,
        "--bundle",
        &bundle,
        "--certificate-identity",
        "w.vollprecht@gmail.com",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
    ];
    // An empty kernel cache of its own: `kernels list`/`prune` must not touch the user's.
    let kernels_dir = d("kernels");

    let mut cases = vec![
        case(&["list"]),
        case(&["list", "-o", "json"]),
        case(&["list", "--no-trunc"]),
        case(&["inspect", "trace_open:dev"]),
        case(&["inspect", "trace_open:dev", "-o", "json"]),
        case(&["inspect", "trace_open:dev", "-o", "jsonpretty"]),
        case(&["inspect", "trace_open:dev", "-o", "yaml"]),
        case(&[
            "inspect",
            "trace_open:dev",
            "--extra-info",
            "ebpf",
            "-o",
            "json",
        ]),
        case(&[
            "inspect",
            "trace_open:dev",
            "--show-datasources",
            "-o",
            "json",
        ]),
        case(&["tag", "trace_open:dev", "trace_open:copy"]),
        case(&["tag", "trace_open:dev", "trace_open:copy", "-o", "json"]),
        case(&["export", "trace_open:dev", &d("out.tar")]),
        case(&["export", "trace_open:dev", &d("out.tar"), "-o", "json"]),
        case(&["export", "trace_open:dev", "-"]),
        case(&["import", &d("one.tar")]),
        case(&["import", &d("one.tar"), "-o", "json"]),
        case(&["doctor", "--no-toolchain"]),
        case(&["doctor", "--no-toolchain", "-o", "json"]),
        case(&[
            "build",
            &sample("trace_open").display().to_string(),
            "-t",
            "trace_open:dev",
        ]),
        case(&[
            "build",
            &sample("trace_open").display().to_string(),
            "-t",
            "trace_open:dev",
            "-o",
            "json",
        ]),
        case(&[
            "sign",
            "trace_open:dev",
            "--key",
            &format!("{key_prefix}.key"),
        ]),
        case(&[
            "sign",
            "trace_open:dev",
            "--key",
            &format!("{key_prefix}.key"),
            "-o",
            "json",
        ]),
        case(&[
            "verify",
            "trace_open:dev",
            "--public-keys",
            &format!("{key_prefix}.pub"),
        ]),
        case(&[
            "verify",
            "trace_open:dev",
            "--public-keys",
            &format!("{key_prefix}.pub"),
            "-o",
            "json",
        ]),
        case(&["logout", "localhost:5999", "--authfile", &authfile]),
        case(&[
            "logout",
            "localhost:5999",
            "--authfile",
            &authfile,
            "-o",
            "json",
        ]),
        case(&[
            "attest",
            "trace_open:dev",
            "--predicate",
            &predicate,
            "--key",
            &format!("{key_prefix}.key"),
        ]),
        case(&[
            "attest",
            "trace_open:dev",
            "--predicate",
            &predicate,
            "--key",
            &format!("{key_prefix}.key"),
            "-o",
            "json",
        ]),
        case(&[&verify_blob[..], &["-o", "json"]].concat()),
        case(&verify_blob),
        case(&["kernels", "list"]),
        case(&["kernels", "list", "-o", "json"]),
        case(&["kernels", "prune", "-o", "json"]),
        case(&["completions", "bash"]),
        case(&["completions", "zsh"]),
        case(&["completions", "fish"]),
        case(&["man", &man]),
        case(&["man", &man, "-o", "json"]),
        case(&["--help"]),
        case(&["--version"]),
    ];
    if btf.exists() {
        cases.push(case(&["check", "trace_open:dev"]));
        cases.push(case(&["check", "trace_open:dev", "-o", "json"]));
        // `run` loads into this kernel (root): verify-only, and a short real run.
        cases.push(case(&["run", "trace_open:dev", "--verify-only"]));
        cases.push(case(&[
            "run",
            "trace_open:dev",
            "--verify-only",
            "-o",
            "json",
        ]));
        cases.push(case(&[
            "run",
            "trace_open:dev",
            "--timeout",
            "1s",
            "-o",
            "columns",
        ]));
    }
    // Commands that change state get their precondition back before each run.
    let mut with_setup = |args: &[&str], setup: &[&str]| {
        let mut c = case(args);
        c.setup = Some(setup.iter().map(|s| s.to_string()).collect());
        cases.push(c);
    };
    with_setup(
        &["remove", "trace_open:gone"],
        &["tag", "trace_open:dev", "trace_open:gone"],
    );
    with_setup(
        &["remove", "trace_open:gone", "-o", "json"],
        &["tag", "trace_open:dev", "trace_open:gone"],
    );
    for (i, json) in [false, true].into_iter().enumerate() {
        let parent = gadget.join(format!("p{i}"));
        std::fs::create_dir_all(&parent).unwrap();
        let parent = parent.display().to_string();
        let mut args = vec!["init", "demo_gadget", "--dir", &parent];
        if json {
            args.extend(["-o", "json"]);
        }
        // init refuses an existing directory: remove the previous run's.
        let mut c = case(&args);
        c.setup = Some(vec!["__rm".into(), format!("{parent}/demo_gadget")]);
        cases.push(c);
    }
    let mut keygen = |json: bool| {
        let mut args = vec![
            "generate-key-pair".to_string(),
            "--output-key-prefix".into(),
            d("k2/cosign"),
            "--force".into(),
        ];
        if json {
            args.extend(["-o".into(), "json".into()]);
        }
        cases.push(Case {
            args,
            json,
            setup: None,
        });
    };
    keygen(false);
    keygen(true);
    std::fs::create_dir_all(d("k2")).unwrap();

    let mut commands_seen = std::collections::BTreeSet::new();
    for c in &cases {
        let setup = || {
            if let Some(s) = &c.setup {
                if s[0] == "__rm" {
                    let _ = std::fs::remove_dir_all(&s[1]);
                } else {
                    assert_success(&run(t.cmd(s)));
                }
            }
        };
        let cmd = || {
            let mut cmd = t.cmd(&c.args);
            cmd.env("COSIGN_PASSWORD", PASSWORD)
                .env("IG_IMAGE_KERNELS_DIR", &kernels_dir)
                .env_remove("NO_COLOR");
            cmd
        };
        setup();
        let normal = run(cmd());
        if c.json {
            // One document, or JSON lines: a stream of values either way.
            let text = String::from_utf8_lossy(&normal.stdout);
            serde_json::Deserializer::from_str(&text)
                .into_iter::<Value>()
                .for_each(|v| {
                    v.unwrap_or_else(|e| panic!("{:?}: not JSON ({e}):\n{text}", c.args));
                });
            assert!(!text.trim().is_empty(), "{:?}: no JSON", c.args);
        }
        setup();
        let closed = run_with_closed_stdout(cmd());
        let err = stderr(&closed);
        assert_eq!(
            closed.status.code(),
            normal.status.code(),
            "{:?}: a closed stdout changed the exit status\nstderr:\n{err}",
            c.args
        );
        for bad in ["panicked", "Broken pipe", "error:", "os error 32"] {
            assert!(
                !err.contains(bad),
                "{:?} with a closed stdout printed {bad:?}:\n{err}",
                c.args
            );
        }
        if c.json {
            assert_eq!(
                err, "",
                "{:?} -o json on a closed pipe: stderr not empty",
                c.args
            );
        }
        commands_seen.insert(c.args[0].clone());
    }
    // Every command is covered: here, or (push, pull, login, artifacthub) in the registry test
    // below. The list comes from --help, so a new command that
    // is not covered fails this test.
    let help = t.ok(["--help"]);
    let listed = help
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap_or_default();
    let mut elsewhere = vec!["push", "pull", "login", "artifacthub", "help"];
    if !btf.exists() {
        // No kernel BTF here: `check` and `run` are covered by the kernel tests, which fail
        // under CI=true on such a host.
        elsewhere.extend(["check", "run"]);
    }
    for line in listed.lines() {
        let Some(name) = line
            .strip_prefix("  ")
            .and_then(|l| l.split_whitespace().next())
        else {
            continue;
        };
        if line.starts_with("   ") || elsewhere.contains(&name) {
            continue;
        }
        assert!(commands_seen.contains(name), "{name} not covered");
    }
}

#[test]
fn registry_commands_are_quiet_on_a_closed_pipe_and_report_verification() {
    if !require_registry_tools("registry_commands_are_quiet_on_a_closed_pipe") {
        return;
    }
    let reg = Registry::start();
    let t = TempStore::new();
    let host = reg.host();
    let image = format!("{host}/gadgets/trace_open:v1");
    build(&t, "trace_open", &image);
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("cosign").display().to_string();
    let mut c = t.cmd(["generate-key-pair", "--output-key-prefix", &prefix]);
    c.env("COSIGN_PASSWORD", PASSWORD);
    assert_success(&run(c));
    let mut c = t.cmd(["sign", &image, "--key", &format!("{prefix}.key")]);
    c.env("COSIGN_PASSWORD", PASSWORD);
    assert_success(&run(c));
    let insecure = ["--insecure-registries", host.as_str()];
    let authfile = dir.path().join("auth.json").display().to_string();
    let repo_meta = dir.path().join("artifacthub-repo.yml");
    std::fs::write(
        &repo_meta,
        "repositoryID: 5b4e7a3c-6f1d-4a8b-9c2e-1d3f5a7b9c0e\nowners:\n  - name: me\n    email: me@example.com\n",
    )
    .unwrap();

    for json in [false, true] {
        let o: &[&str] = if json { &["-o", "json"] } else { &[] };
        let push = [&["push", image.as_str()][..], &insecure, o].concat();
        let normal = run(t.cmd(&push));
        assert_success(&normal);
        if json {
            serde_json::from_slice::<Value>(&normal.stdout).expect("push -o json");
        }
        let closed = run_with_closed_stdout(t.cmd(&push));
        assert!(closed.status.success(), "{}", stderr(&closed));
        assert!(!stderr(&closed).contains("error"), "{}", stderr(&closed));

        // pull --public-keys says which signature verified.
        let fresh = TempStore::new();
        let public = format!("{prefix}.pub");
        let pull = [
            &["pull", image.as_str(), "--public-keys", public.as_str()][..],
            &insecure,
            o,
        ]
        .concat();
        let out = run(fresh.cmd(&pull));
        assert_success(&out);
        let text = String::from_utf8_lossy(&out.stdout);
        if json {
            let doc: Value = serde_json::from_str(&text).expect("pull -o json");
            assert_eq!(doc["verification"]["verified"], true, "{doc}");
            assert!(
                doc["verification"]["signature"]["key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("cosign.pub")),
                "{doc}"
            );
        } else {
            assert!(text.contains("Verified "), "{text}");
            assert!(text.contains("signature by"), "{text}");
        }
        let closed = run_with_closed_stdout(TempStore::new().cmd(&pull));
        assert!(closed.status.success(), "{}", stderr(&closed));
        if json {
            assert_eq!(stderr(&closed), "");
        }

        // login (the open registry accepts anything) and logout.
        let mut login = t.cmd(
            [
                &[
                    "login",
                    host.as_str(),
                    "-u",
                    "me",
                    "--password-stdin",
                    "--authfile",
                ][..],
                &[authfile.as_str()],
                &insecure,
                o,
            ]
            .concat(),
        );
        login.stdin(Stdio::piped());
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        login.stdout(Stdio::from(writer)).stderr(Stdio::piped());
        let mut child = login.spawn().unwrap();
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"secret\n").unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "login: {}", stderr(&out));
        assert!(!stderr(&out).contains("error"), "{}", stderr(&out));

        let repo = format!("{host}/gadgets/trace_open");
        let meta = [
            &["artifacthub", "push-repo-metadata", repo.as_str()][..],
            &[repo_meta.to_str().unwrap()],
            &insecure,
            o,
        ]
        .concat();
        let out = run(t.cmd(&meta));
        assert_success(&out);
        if json {
            let doc: Value =
                serde_json::from_slice(&out.stdout).expect("push-repo-metadata -o json");
            assert_eq!(doc["pushed"], true, "{doc}");
            assert!(doc["digest"].as_str().unwrap().starts_with("sha256:"));
        }
        let closed = run_with_closed_stdout(t.cmd(&meta));
        assert!(closed.status.success(), "{}", stderr(&closed));
    }
}

#[test]
fn upstream_style_invocations_do_what_upstreams_do() {
    let t = TempStore::new();
    let work = tempfile::tempdir().unwrap();
    let gadget = work.path().join("trace_open");
    copy_dir(&sample("trace_open"), &gadget);

    // build -o DIR -t X . : the objects stay in DIR, under upstream's names.
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut c = t.cmd([
        "build",
        "-o",
        out_dir.to_str().unwrap(),
        "-t",
        "upstream:o",
        ".",
    ]);
    c.current_dir(&gadget);
    let out = run(c);
    assert_success(&out);
    for arch in ["amd64", "arm64"] {
        let obj = std::fs::read(out_dir.join(format!("{arch}.bpf.o"))).unwrap();
        assert_eq!(&obj[..4], b"\x7fELF", "{arch}.bpf.o is an object");
    }
    let err = stderr(&out);
    assert!(
        err.contains("Building trace_open"),
        "the gadget's name, not `.`: {err}"
    );
    assert!(!err.contains("Building ."), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Successfully built "),
        "columns output with -o DIR"
    );
    // -o json is still a format.
    let mut c = t.cmd(["build", "-o", "json", "-t", "upstream:json", "."]);
    c.current_dir(&gadget);
    let out = run(c);
    assert_success(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("build -o json");
    assert!(doc["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(!gadget.join("json").exists(), "-o json made no directory");

    // build -l . and the builder-image flags: accepted, ignored, said so in one line.
    let mut c = t.cmd([
        "build",
        "-l",
        "--builder-image",
        "ghcr.io/inspektor-gadget/gadget-builder:main",
        "--builder-image-pull",
        "never",
        "-t",
        "upstream:local",
        ".",
    ]);
    c.current_dir(&gadget);
    let out = run(c);
    assert_success(&out);
    let notes: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("note:"))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("without Docker"), "{notes:?}");

    // inspect: a short summary by default, everything with -o jsonpretty, keys with --extra-info.
    let summary = t.ok(["inspect", "upstream:o"]);
    assert!(
        summary.lines().count() < 25,
        "a summary, not a dump:\n{summary}"
    );
    assert!(
        summary.contains("Image:") && summary.contains("Platforms:"),
        "{summary}"
    );
    assert!(summary.contains("ig_open"), "programs named: {summary}");
    let pretty = t.ok(["inspect", "upstream:o", "-o", "jsonpretty"]);
    assert!(pretty.contains("\n  \""), "indented");
    let doc: Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(doc["platforms"].as_array().unwrap().len(), 2);
    let extra: Value = serde_json::from_str(&t.ok([
        "inspect",
        "upstream:o",
        "--extra-info",
        "ebpf.maps,oci.digest",
        "-o",
        "json",
    ]))
    .unwrap();
    let obj = extra.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["ebpf.maps", "oci.digest"],
        "exactly the keys asked for"
    );
    assert_eq!(obj["oci.digest"], doc["digest"]);
    assert!(
        obj["ebpf.maps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "events"),
        "{extra}"
    );
    let text = t.ok(["inspect", "upstream:o", "--extra-info", "oci.digest"]);
    assert!(text.contains(doc["digest"].as_str().unwrap()), "{text}");
    let err = t.fails(["inspect", "upstream:o", "--extra-info", "ebpf.nope"]);
    assert!(err.contains("ebpf.maps"), "lists the valid keys: {err}");
    let ds: Value =
        serde_json::from_str(&t.ok(["inspect", "upstream:o", "--show-datasources", "-o", "json"]))
            .unwrap();
    assert!(
        ds[0]["fields"].as_array().is_some_and(|f| !f.is_empty()),
        "{ds}"
    );

    // list: relative CREATED in columns, full digests and RFC 3339 with --no-trunc, RFC 3339 in JSON.
    let cols = t.ok(["list"]);
    assert!(cols.contains(" ago"), "{cols}");
    let full = t.ok(["list", "--no-trunc"]);
    assert!(full.contains(doc["digest"].as_str().unwrap()), "{full}");
    assert!(full.contains("2023-11-14T22:13:20Z"), "{full}");
    let json: Value = serde_json::from_str(&t.ok(["list", "-o", "json"])).unwrap();
    assert_eq!(json[0]["created"], "2023-11-14T22:13:20Z");
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

#[test]
fn update_metadata_leaves_a_fresh_scaffold_byte_identical() {
    let t = TempStore::new();
    let parent = tempfile::tempdir().unwrap();
    for kind in ["tracer", "snapshot", "top"] {
        let name = format!("fresh_{kind}");
        t.ok([
            "init",
            &name,
            "--kind",
            kind,
            "--dir",
            parent.path().to_str().unwrap(),
        ]);
        let dir = parent.path().join(&name);
        let before = std::fs::read(dir.join("gadget.yaml")).unwrap();
        let out = run(t.cmd([
            "build",
            dir.to_str().unwrap(),
            "-t",
            &format!("{name}:dev"),
            "--update-metadata",
        ]));
        assert_success(&out);
        let after = std::fs::read(dir.join("gadget.yaml")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&after),
            String::from_utf8_lossy(&before),
            "{kind}: --update-metadata changed a fresh gadget.yaml"
        );
        assert!(!stderr(&out).contains("Updated"), "{}", stderr(&out));
    }
}

#[test]
fn update_metadata_never_changes_an_existing_entry_and_names_params_like_upstream() {
    let t = TempStore::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("trace_open");
    copy_dir(&sample("trace_open"), &dir);
    // Empty URLs stay empty; a missing params section is generated with upstream's names.
    let yaml = std::fs::read_to_string(dir.join("gadget.yaml")).unwrap();
    let mut kept = String::new();
    let mut in_params = false;
    for line in yaml.lines() {
        if line.starts_with("params:") {
            in_params = true;
            continue;
        }
        if in_params && (line.starts_with(' ') || line.is_empty()) {
            continue;
        }
        in_params = false;
        let line = if line.starts_with("homepageURL:") {
            "homepageURL: \"\""
        } else {
            line
        };
        kept.push_str(line);
        kept.push('\n');
    }
    std::fs::write(dir.join("gadget.yaml"), &kept).unwrap();
    t.ok([
        "build",
        dir.to_str().unwrap(),
        "-t",
        "upd:dev",
        "--update-metadata",
    ]);
    let after = std::fs::read_to_string(dir.join("gadget.yaml")).unwrap();
    assert!(
        after.contains("homepageURL: \"\""),
        "empty stays empty:\n{after}"
    );
    assert!(!after.contains("TODO: Fill the gadget homepage"), "{after}");
    assert!(after.contains("key: failed"), "{after}");
    assert!(
        after.contains("defaultValue: \"false\""),
        "a bool's default:\n{after}"
    );
    assert!(!after.contains("defaultValue: \"\""), "{after}");
}

#[test]
fn artifacthub_generate_writes_nothing_when_it_fails_and_version_is_the_global_flag() {
    let t = TempStore::new();
    let parent = tempfile::tempdir().unwrap();
    t.ok(["init", "ah_demo", "--dir", parent.path().to_str().unwrap()]);
    let dir = parent.path().join("ah_demo");
    let pkg = dir.join("artifacthub-pkg.yml");
    // An invalid result (a homepage that is not a URL, from gadget.yaml) is reported, not
    // written.
    let before = std::fs::read(&pkg).unwrap();
    let yaml = std::fs::read_to_string(dir.join("gadget.yaml")).unwrap();
    let broken = yaml.replacen("homepageURL: \"\"", "homepageURL: not a url", 1);
    assert_ne!(broken, yaml, "the scaffold's gadget.yaml names the gadget");
    std::fs::write(dir.join("gadget.yaml"), broken).unwrap();
    let out = run(t.cmd(["artifacthub", "generate", dir.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(&pkg).unwrap(), before, "nothing written");
    assert!(stderr(&out).contains("Not written"), "{}", stderr(&out));

    // --version is ig-image's version everywhere; the package version is --pkg-version.
    let v = t.ok(["artifacthub", "generate", "--version"]);
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v}");
}

#[test]
fn check_prefers_the_image_over_a_same_named_directory_and_says_so() {
    let t = TempStore::new();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&sample("trace_open"), &work.path().join("trace_open"));
    build(&t, "trace_open", "trace_open:latest");
    let btf = work.path().join("missing.btf");
    // The kernel BTF does not exist: the answer comes before any kernel is read, so the test
    // sees which target was chosen without needing a kernel.
    let mut c = t.cmd(["check", "trace_open", "--kernel-btf", btf.to_str().unwrap()]);
    c.current_dir(work.path());
    let out = run(c);
    let err = stderr(&out);
    assert!(err.contains("checking the image"), "{err}");
    assert!(
        !err.contains("Building"),
        "the directory was not built: {err}"
    );
    let mut c = t.cmd([
        "check",
        "./trace_open",
        "--kernel-btf",
        btf.to_str().unwrap(),
    ]);
    c.current_dir(work.path());
    let err = stderr(&run(c));
    assert!(err.contains("Building"), "`./NAME` is the directory: {err}");
}

#[test]
fn doctor_labels_absent_optional_items_optional() {
    let t = TempStore::new();
    let out = run(t.cmd(["doctor", "-o", "json"]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = String::from_utf8_lossy(&run(t.cmd(["doctor"])).stdout).into_owned();
    for check in report["checks"].as_array().unwrap() {
        let name = check["name"].as_str().unwrap();
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == name.split_whitespace().next())
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"));
        if check["status"] == "missing" && check["required"] == false {
            assert!(line.starts_with("optional"), "{line}");
        }
        if check["status"] == "missing" && check["required"] == true {
            assert!(line.starts_with("missing"), "{line}");
        }
    }
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    // Pipes get no escape codes, whatever NO_COLOR says.
    let t = TempStore::new();
    let err = t.fails(["inspect", "nope:none"]);
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    // On a terminal (script(1) gives one), errors are red unless NO_COLOR is set.
    if !Path::new("/usr/bin/script").exists() {
        return;
    }
    let bin = ig_image_tests::ig_image_bin();
    let store = t.store();
    let line = format!(
        "{} --store {} inspect nope:none",
        bin.display(),
        store.display()
    );
    let tty = |no_color: bool| {
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        String::from_utf8_lossy(&run(c).stdout).into_owned()
    };
    assert!(
        tty(false).contains("\x1b[1;31merror\x1b[0m"),
        "{:?}",
        tty(false)
    );
    assert!(!tty(true).contains('\x1b'), "{:?}", tty(true));
}

#[test]
fn export_to_stdout_and_import_from_stdin() {
    let t = TempStore::new();
    build(&t, "trace_open", "trace_open:pipe");
    let out = run(t.cmd(["export", "trace_open:pipe", "-"]));
    assert_success(&out);
    assert!(out.stdout.len() > 1024, "a tar on stdout");
    assert!(
        !Path::new("-").exists(),
        "no file named `-` (cwd {:?})",
        std::env::current_dir()
    );
    let other = TempStore::new();
    let mut c = other.cmd(["import", "-", "-o", "json"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    }
    let imported = child.wait_with_output().unwrap();
    assert_success(&imported);
    let doc: Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert!(
        doc["imported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().ends_with("trace_open:pipe")),
        "{doc}"
    );
    // The same bytes as a file export: one deterministic archive.
    let file = tempfile::tempdir().unwrap();
    let path = file.path().join("x.tar");
    t.ok(["export", "trace_open:pipe", path.to_str().unwrap()]);
    assert_eq!(std::fs::read(&path).unwrap(), out.stdout);
    // A terminal on the other side is refused rather than filled with binary.
    let mut c = t.cmd(["import", "-"]);
    c.stdin(Stdio::null());
    assert!(!run(c).status.success(), "an empty stdin is not an archive");
}

#[test]
fn completions_and_man_pages_come_from_the_cli_definitions() {
    let t = TempStore::new();
    let bash = t.ok(["completions", "bash"]);
    assert!(
        bash.contains("ig-image") && bash.contains("--extra-info"),
        "bash"
    );
    let zsh = t.ok(["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef ig-image"), "zsh");
    let fish = t.ok(["completions", "fish"]);
    assert!(fish.contains("complete -c ig-image"), "fish");
    let dir = tempfile::tempdir().unwrap();
    let json: Value =
        serde_json::from_str(&t.ok(["man", dir.path().to_str().unwrap(), "-o", "json"])).unwrap();
    let pages: Vec<&str> = json["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(pages.contains(&"ig-image.1"), "{pages:?}");
    assert!(pages.contains(&"ig-image-build.1"), "{pages:?}");
    let build = std::fs::read_to_string(dir.path().join("ig-image-build.1")).unwrap();
    assert!(
        build.contains(".TH") && build.contains("update\\-metadata"),
        "{build}"
    );
}

/// The `bash` blocks of the init README, in order: the commands a new author types.
fn readme_commands(readme: &str, section: &str) -> Vec<String> {
    let body = readme
        .split(&format!("## {section}"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section {section}"))
        .split("\n## ")
        .next()
        .unwrap();
    let mut out = Vec::new();
    let mut in_block = false;
    for line in body.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let cmd = line.split(" # ").next().unwrap().trim();
            if !cmd.is_empty() {
                out.push(cmd.to_string());
            }
        }
    }
    out
}

#[test]
fn init_readme_publish_steps_run_in_order_against_a_local_registry() {
    if !require_registry_tools("init_readme_publish_steps_run_in_order") {
        return;
    }
    let reg = Registry::start();
    let t = TempStore::new();
    let parent = tempfile::tempdir().unwrap();
    let image = format!("{}/gadgets/readme_demo", reg.host());
    t.ok([
        "init",
        "readme_demo",
        "--dir",
        parent.path().to_str().unwrap(),
        "--image",
        &image,
    ]);
    let dir: PathBuf = parent.path().join("readme_demo");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let steps = readme_commands(&readme, "Publish");
    assert!(steps.len() >= 6, "{steps:?}");
    assert!(
        steps[0].starts_with("ig-image generate-key-pair"),
        "keys first: {steps:?}"
    );
    for step in &steps {
        let words: Vec<&str> = step.split_whitespace().collect();
        assert_eq!(words[0], "ig-image", "only ig-image commands: {step}");
        let mut c = t.cmd(&words[1..]);
        c.current_dir(&dir).env("COSIGN_PASSWORD", PASSWORD);
        let out = run(c);
        assert!(
            out.status.success(),
            "README step failed: {step}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
    }
    // The registry has the image and its signature.
    let view = RegistryView {
        addr: reg.addr(),
        auth: None,
    };
    let tags = view.tags("gadgets/readme_demo");
    assert!(tags.iter().any(|t| t == "v0.1.0"), "{tags:?}");
    assert!(tags.iter().any(|t| t.ends_with(".sig")), "{tags:?}");
    // The workflow and the docs agree on the secret's name.
    let workflow = std::fs::read_to_string(dir.join(".github/workflows/gadget.yml")).unwrap();
    assert!(workflow.contains("secrets.COSIGN_KEY"), "{workflow}");
    assert!(!workflow.contains("COSIGN_PRIVATE_KEY"));
    assert!(!workflow.contains("example.invalid"));
    let signing =
        std::fs::read_to_string(ig_image_tests::workspace_root().join("docs/signing.md")).unwrap();
    assert!(signing.contains("secrets.COSIGN_KEY"));
}

#[test]
fn init_workflow_installs_from_the_source_the_user_sets() {
    let t = TempStore::new();
    let parent = tempfile::tempdir().unwrap();
    let p = parent.path().to_str().unwrap();
    t.ok(["init", "wf_none", "--dir", p]);
    let none = std::fs::read_to_string(parent.path().join("wf_none/.github/workflows/gadget.yml"))
        .unwrap();
    assert!(none.contains("vars.IG_IMAGE_GIT || ''"), "{none}");
    assert!(
        none.contains("::error::no IG_IMAGE_GIT"),
        "fails clearly when unset"
    );
    t.ok([
        "init",
        "wf_set",
        "--dir",
        p,
        "--install-from",
        "https://git.example.org/me/ig-image.git",
    ]);
    let set =
        std::fs::read_to_string(parent.path().join("wf_set/.github/workflows/gadget.yml")).unwrap();
    assert!(
        set.contains("vars.IG_IMAGE_GIT || 'https://git.example.org/me/ig-image.git'"),
        "{set}"
    );
    assert!(set.contains("--tag \"$IG_IMAGE_VERSION\""), "{set}");
    // The install step, run by bash with the variable unset, stops with the message.
    let step: String = set
        .split("- name: Install ig-image\n        run: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("          "))
        .map(|l| format!("{}\n", &l[10..]))
        .collect();
    let out = run({
        let mut c = Command::new("/bin/bash");
        c.args(["-c", &step])
            .env("IG_IMAGE_GIT", "")
            .env("PATH", "/nonexistent");
        c
    });
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("::error::no IG_IMAGE_GIT"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = t.fails(["init", "wf_bad", "--dir", p, "--install-from", "a b"]);
    assert!(err.contains("--install-from"), "{err}");
}

/// Removes the throwaway user on drop.
struct TempUser(String);

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).output();
    }
}

#[test]
fn run_oci_store_user_reads_the_sudo_users_store_read_only() {
    if !ig_image_tests::require_kernel("run_oci_store_user_reads_the_sudo_users_store_read_only") {
        return;
    }
    // A real user whose home is a temporary directory: `sudo` is simulated by SUDO_USER, which
    // is all sudo tells the program.
    let home = tempfile::tempdir().unwrap();
    let name = format!("igimg{}", std::process::id());
    let out = run({
        let mut c = Command::new("useradd");
        c.args(["--no-create-home", "--home-dir"])
            .arg(home.path())
            .args(["--shell", "/usr/sbin/nologin", &name]);
        c
    });
    assert_success(&out);
    let _user = TempUser(name.clone());
    // The user's store, written as the user would (ig-image build).
    let user_store = home.path().join(".ig/oci-store");
    let builder = TempStore::new();
    let mut c = Command::new(ig_image_tests::ig_image_bin());
    c.arg("--store")
        .arg(&user_store)
        .args([
            "build",
            sample("trace_open").to_str().unwrap(),
            "-t",
            "mine:dev",
        ])
        .env("IG_IMAGE_CACHE_DIR", builder.cache());
    assert_success(&run(c));
    let before = snapshot(&user_store);

    // Root's store (empty) does not have the image; --oci-store-user finds it in the user's.
    let root_store = TempStore::new();
    let sudo = |extra: &[&str]| {
        let mut c = Command::new(ig_image_tests::ig_image_bin());
        c.args(["run", "mine:dev", "--verify-only", "-o", "json"])
            .args(extra)
            .env("IG_IMAGE_STORE", root_store.store())
            .env("SUDO_USER", &name);
        run(c)
    };
    let without = sudo(&[]);
    assert!(
        !without.status.success(),
        "root's own store has no such image"
    );
    let with = sudo(&["--oci-store-user"]);
    assert_success(&with);
    let report: Value = serde_json::from_slice(&with.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        snapshot(&user_store),
        before,
        "the user's store was not written"
    );
    // Never pulls: an image the user does not have is an error, with no network involved.
    let missing = {
        let mut c = Command::new(ig_image_tests::ig_image_bin());
        c.args([
            "run",
            "localhost:1/none:v1",
            "--verify-only",
            "--oci-store-user",
        ])
        .env("SUDO_USER", &name);
        run(c)
    };
    assert!(!missing.status.success());
    assert_eq!(snapshot(&user_store), before);
}

/// Every file of a directory tree with its bytes and owner.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap(), meta.uid()));
            }
        }
    }
    out.sort();
    out
}
