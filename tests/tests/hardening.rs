//! Hostile inputs of issue 12's table (rows 1, 2, 4, 5, 7, 8, 9, 10): each is refused with a
//! clear error naming the culprit, exit code 1 or 2, under 200 MiB and 5 s, and the store is
//! unchanged (or, when there was none, not created).

use std::path::{Path, PathBuf};
use std::process::Command;

use ig_image_tests::{TempStore, assert_success, json_lines, run, run_measured, sample};
use sha2::Digest as _;

/// The "billion laughs" of row 1: nine anchors, each nine aliases of the previous one
/// (9^9 = 387 million strings once expanded), in about 400 bytes.
fn alias_bomb() -> String {
    let mut text = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    for (i, c) in "bcdefghi".chars().enumerate() {
        let prev = (b'a' + i as u8) as char;
        let refs = vec![format!("*{prev}"); 9].join(", ");
        text.push_str(&format!("{c}: &{c} [{refs}]\n"));
    }
    assert!((380..=420).contains(&text.len()), "{}", text.len());
    text
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

/// A tar of an OCI layout holding one image `reference` for this machine's architecture whose
/// config blob is `config` (the eBPF layer is a placeholder: every refusal here happens before
/// it is read). Made with the `tar` tool, argument vector only.
fn image_tar(dir: &Path, reference: &str, config: &[u8]) -> PathBuf {
    let layout = dir.join(format!("layout-{}", &sha256(reference.as_bytes())[7..19]));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let d = sha256(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        (d, data.len())
    };
    let (config_digest, config_size) = put(config);
    let (layer_digest, layer_size) = put(b"placeholder, not an ELF object");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.gadget.v1+binary",
        "config": {
            "mediaType": "application/vnd.gadget.config.v1+yaml",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.gadget.ebpf.program.v1+binary",
            "digest": layer_digest,
            "size": layer_size,
        }],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    });
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": host_arch(), "os": "linux"},
        }],
    });
    let (index_digest, index_size) = put(&serde_json::to_vec(&index).unwrap());
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest,
            "size": index_size,
            "annotations": {"org.opencontainers.image.ref.name": reference},
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let tar = layout.with_extension("tar");
    let out = run({
        let mut c = Command::new("tar");
        c.arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(&layout)
            .args(["oci-layout", "index.json", "blobs"]);
        c
    });
    assert_success(&out);
    tar
}

/// Imports an image whose config blob is `config` and returns the store snapshot after it.
fn import_image(t: &TempStore, reference: &str, config: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let tar = image_tar(t.dir.path(), reference, config);
    t.ok(["import".as_ref(), tar.as_os_str()]);
    t.snapshot()
}

/// A gadget directory under `parent` with these files.
fn gadget_dir(parent: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, data) in files {
        std::fs::write(dir.join(f), data).unwrap();
    }
    dir
}

#[test]
fn row1_an_alias_bomb_config_blob_is_refused_by_inspect_and_verify_only() {
    let t = TempStore::new();
    let reference = "localhost:5000/hostile/bomb:v1";
    let before = import_image(&t, reference, alias_bomb().as_bytes());
    for args in [
        vec!["inspect", reference],
        vec!["inspect", reference, "-o", "json"],
        vec!["run", reference, "--verify-only"],
    ] {
        let m = run_measured(t.cmd(&args));
        m.assert_refused(
            &args.join(" "),
            &[
                "gadget.yaml config blob sha256:",
                reference,
                "anchors and aliases",
                "200000",
            ],
        );
        assert_eq!(t.snapshot(), before, "{args:?} changed the store");
    }
}

#[test]
fn row2_an_alias_bomb_build_yaml_is_refused_and_creates_no_store() {
    let t = TempStore::new();
    let dir = gadget_dir(
        t.dir.path(),
        "bomb",
        &[
            ("program.bpf.c", b"int x;\n"),
            ("build.yaml", alias_bomb().as_bytes()),
        ],
    );
    let m = run_measured(t.cmd(["build".as_ref(), dir.as_os_str()]));
    m.assert_refused(
        "build with a bomb build.yaml",
        &["bomb/build.yaml`: its anchors and aliases", "200000"],
    );
    assert!(
        !t.store().exists(),
        "a failed build left a store skeleton behind"
    );
    // With an existing store: unchanged.
    let other = gadget_dir(t.dir.path(), "other", &[("gadget.yaml", b"name: x\n")]);
    t.ok([
        "build".as_ref(),
        other.as_os_str(),
        "-t".as_ref(),
        "x:1".as_ref(),
    ]);
    let before = t.snapshot();
    let m = run_measured(t.cmd(["build".as_ref(), dir.as_os_str()]));
    m.assert_refused("build with a bomb build.yaml", &["anchors and aliases"]);
    assert_eq!(t.snapshot(), before);
}

#[test]
fn row4_cflags_that_load_code_or_write_files_are_refused_by_item() {
    let t = TempStore::new();
    let outside = t.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let trace = outside.join("trace.json");
    let output = outside.join("out.o");
    let depfile = outside.join("dep.d");
    let cases: Vec<(Vec<String>, usize, String)> = vec![
        (
            vec!["-O2".into(), "-fplugin=./x.so".into()],
            1,
            "loads a plugin".into(),
        ),
        (
            vec![
                "-Xclang".into(),
                "-load".into(),
                "-Xclang".into(),
                "/abs/x.so".into(),
            ],
            0,
            "passes raw options".into(),
        ),
        (
            vec![format!("-ftime-trace={}", trace.display())],
            0,
            "writes files".into(),
        ),
        (vec![format!("-o{}", output.display())], 0, "output".into()),
        (
            vec![format!("--output={}", output.display())],
            0,
            "output".into(),
        ),
        (
            vec!["-MF".into(), depfile.display().to_string()],
            0,
            "dependency".into(),
        ),
        (
            vec![format!("-Wp,-MD,{}", depfile.display())],
            0,
            "preprocessor".into(),
        ),
        (
            vec!["@flags.txt".into()],
            0,
            "reads compiler arguments from a file".into(),
        ),
        (
            vec!["-I/etc".into()],
            0,
            "outside the gadget directory".into(),
        ),
    ];
    for (i, (flags, bad, why)) in cases.iter().enumerate() {
        let list: Vec<String> = flags.iter().map(|f| format!("'{f}'")).collect();
        let build_yaml = format!("cflags: [{}]\n", list.join(", "));
        let dir = gadget_dir(
            t.dir.path(),
            &format!("cflags{i}"),
            &[
                (
                    "program.bpf.c",
                    b"char LICENSE[] __attribute__((section(\"license\"))) = \"GPL\";\n",
                ),
                ("x.so", b"\x7fELF not really"),
                ("flags.txt", b"-fplugin=./x.so\n"),
                ("build.yaml", build_yaml.as_bytes()),
            ],
        );
        let m = run_measured(t.cmd(["build".as_ref(), dir.as_os_str()]));
        m.assert_refused(
            build_yaml.trim_end(),
            &[&format!("field `cflags[{bad}]`: `{}`", flags[*bad]), why],
        );
        assert!(!t.store().exists(), "{build_yaml}: a store was created");
    }
    for f in [&trace, &output, &depfile] {
        assert!(!f.exists(), "`{}` was written", f.display());
    }
}

#[test]
fn row5_no_path_leads_a_secret_out_of_the_gadget_directory() {
    let t = TempStore::new();
    let secret = t.dir.path().join("config.json");
    std::fs::write(
        &secret,
        r#"{"auths": {"ghcr.io": {"auth": "U0VDUkVUVE9LRU4="}}}"#,
    )
    .unwrap();
    let program: &[u8] = b"int x;\n";
    let abs = format!("metadata: {}\n", secret.display());
    // (what the case is, the files written into the gadget directory, what the error must say)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a [u8])>, Vec<String>);
    let cases: Vec<Case> = vec![
        (
            "metadata: ../",
            vec![("build.yaml", b"metadata: ../config.json\n")],
            vec!["field `metadata`: `../config.json` resolves to".into()],
        ),
        (
            "metadata: absolute",
            vec![("build.yaml", abs.as_bytes())],
            vec![format!(
                "field `metadata`: `{}` resolves to",
                secret.display()
            )],
        ),
        (
            "ebpfsource: ../",
            vec![("build.yaml", b"ebpfsource: ../config.json\n")],
            vec!["field `ebpfsource`: `../config.json`".into()],
        ),
        (
            "includeDirs: ..",
            vec![("build.yaml", b"includeDirs: ['..']\n")],
            vec!["field `includeDirs[0]`: `..` resolves to".into()],
        ),
        (
            "a copied docker config as metadata",
            vec![
                ("build.yaml", b"metadata: auth.json\n"),
                (
                    "auth.json",
                    br#"{"auths": {"ghcr.io": {"auth": "U0VDUkVUVE9LRU4="}}}"#,
                ),
            ],
            vec![
                "auth.json`: `<root>`: is not a gadget.yaml".into(),
                "found: auths".into(),
            ],
        ),
    ];
    for (what, files, needles) in cases {
        let mut files = files;
        files.push(("program.bpf.c", program));
        let dir = gadget_dir(
            t.dir.path(),
            &what.replace([' ', ':', '.', '/'], "_"),
            &files,
        );
        let m = run_measured(t.cmd(["build".as_ref(), dir.as_os_str()]));
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        m.assert_refused(what, &needles);
        assert!(
            !m.stderr().contains("U0VDUkVUVE9LRU4"),
            "{what}: the secret was printed"
        );
        assert!(!t.store().exists(), "{what}: a store was created");
    }
    // A gadget.yaml symlink to the secret.
    let dir = gadget_dir(t.dir.path(), "symlinked", &[("program.bpf.c", program)]);
    std::os::unix::fs::symlink(&secret, dir.join("gadget.yaml")).unwrap();
    let m = run_measured(t.cmd(["build".as_ref(), dir.as_os_str()]));
    m.assert_refused(
        "gadget.yaml symlink",
        &[
            "field `metadata`: `gadget.yaml` resolves to",
            "config.json",
            "outside the gadget directory",
        ],
    );
    assert!(!t.store().exists());
}

#[test]
fn row7_export_refuses_destinations_inside_the_store() {
    let t = TempStore::new();
    let reference = "localhost:5000/hostile/ok:v1";
    let before = import_image(&t, reference, b"name: ok\ndescription: fine\n");
    let blob = std::fs::read_dir(t.store().join("blobs/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for dest in [
        t.store().join("index.json"),
        t.store().join("oci-layout"),
        t.store().join("index.json.lock"),
        blob,
        t.store().join("blobs/sha256/new.tar"),
    ] {
        let m = run_measured(t.cmd(["export".as_ref(), reference.as_ref(), dest.as_os_str()]));
        m.assert_refused(
            &format!("export to {}", dest.display()),
            &["refusing to export to", "inside the image store"],
        );
        assert_eq!(t.snapshot(), before, "{}", dest.display());
        let list = t.ok(["list", "--no-trunc"]);
        assert!(list.contains("hostile/ok"), "{list}");
    }
}

#[test]
fn row8_import_reads_gzip_and_names_garbage_without_raw_bytes() {
    let t = TempStore::new();
    let tar = image_tar(t.dir.path(), "localhost:5000/hostile/gz:v1", b"name: gz\n");
    let gz = t.dir.path().join("image.tar.gz");
    let out = run({
        let mut c = Command::new("gzip");
        c.arg("-c").arg(&tar);
        c
    });
    assert_success(&out);
    std::fs::write(&gz, &out.stdout).unwrap();
    let imported = t.ok(["import".as_ref(), gz.as_os_str()]);
    assert!(imported.contains("hostile/gz:v1"), "{imported}");
    let before = t.snapshot();

    let mut garbage = b"\x1b[2J\x1b]0;owned\x07\x00\xff\xfe binary".to_vec();
    garbage.resize(4096, 0x9b);
    let garbage_path = t.dir.path().join("garbage.tar");
    std::fs::write(&garbage_path, &garbage).unwrap();
    let zstd_path = t.dir.path().join("image.tar.zst");
    std::fs::write(&zstd_path, b"\x28\xb5\x2f\xfd\x04\x00rest").unwrap();
    // A tar header whose size field holds raw bytes (the tar crate quotes them).
    let mut header = vec![0u8; 1536];
    header[..8].copy_from_slice(b"oci-layo");
    header[124..136].copy_from_slice(b"\x1b[31m\xff\xfe\x07\x01\x02\x03\x04");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header[..512].iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let header_path = t.dir.path().join("bad-header.tar");
    std::fs::write(&header_path, &header).unwrap();
    for (path, needle) in [
        (
            &garbage_path,
            "is not a tar archive (it starts with `\\x1b[2J",
        ),
        (&zstd_path, "zstd-compressed file, not a tar archive"),
        (&header_path, "bad-header.tar"),
    ] {
        let m = run_measured(t.cmd(["import".as_ref(), path.as_os_str()]));
        m.assert_refused(&format!("import {}", path.display()), &[needle]);
        assert_eq!(t.snapshot(), before, "{}", path.display());
    }
}

#[test]
fn row9_a_huge_gadget_yaml_is_refused_for_its_size_not_for_aliases() {
    let t = TempStore::new();
    let mut big = String::with_capacity(52 << 20);
    for i in 0..1_000_000 {
        big.push_str(&format!(
            "key_{i:07}: value_{i:07}_padding_padding_padding\n"
        ));
    }
    assert!(big.len() >= 50_000_000, "{}", big.len());
    let dir = gadget_dir(
        t.dir.path(),
        "huge",
        &[
            ("program.bpf.c", b"int x;\n"),
            ("gadget.yaml", big.as_bytes()),
        ],
    );
    let m = run_measured(t.cmd(["build".as_ref(), dir.as_os_str()]));
    m.assert_refused(
        "build with a 50 MB gadget.yaml",
        &[
            "huge/gadget.yaml`: is ",
            "bytes, more than the 4194304-byte limit",
        ],
    );
    assert!(!m.stderr().contains("alias"), "{}", m.stderr());
    assert!(!t.store().exists());

    // Under the size limit, the node limit speaks, again without claiming aliases.
    let many: String = (0..120_000).map(|i| format!("k{i}: v\n")).collect();
    std::fs::write(dir.join("gadget.yaml"), &many).unwrap();
    let m = run_measured(t.cmd(["build".as_ref(), dir.as_os_str()]));
    m.assert_refused(
        "build with 120 000 keys",
        &["huge/gadget.yaml`: has more than 100000 YAML nodes"],
    );
    assert!(!m.stderr().contains("alias"), "{}", m.stderr());

    // The same file as an image's config blob: refused from the manifest's size.
    let reference = "localhost:5000/hostile/huge:v1";
    let before = import_image(&t, reference, big.as_bytes());
    let m = run_measured(t.cmd(["inspect", reference]));
    m.assert_refused(
        "inspect with a 50 MB config blob",
        &[
            "gadget.yaml config blob sha256:",
            reference,
            "more than the 4194304-byte limit",
        ],
    );
    assert!(!m.stderr().contains("alias"));
    assert_eq!(t.snapshot(), before);
}

#[test]
fn row10_build_warnings_carry_one_prefix() {
    let t = TempStore::new();
    let src = sample("trace_open");
    let dir = t.dir.path().join("warned");
    std::fs::create_dir_all(&dir).unwrap();
    let program = std::fs::read_to_string(src.join("program.bpf.c")).unwrap();
    std::fs::write(
        dir.join("program.bpf.c"),
        format!("{program}\nstatic __attribute__((unused)) int harden_warn(void) {{ int unused_variable; return 0; }}\n"),
    )
    .unwrap();
    let metadata = std::fs::read_to_string(src.join("gadget.yaml")).unwrap();
    std::fs::write(
        dir.join("gadget.yaml"),
        format!("{metadata}myTool:\n  a: 1\n"),
    )
    .unwrap();
    let out = run(t.cmd([
        "build".as_ref(),
        dir.as_os_str(),
        "--platform".as_ref(),
        "amd64".as_ref(),
    ]));
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("myTool"), "{stderr}");
    assert!(stderr.contains("unused_variable"), "{stderr}");
    assert!(!stderr.contains("warning: warning:"), "{stderr}");
    for line in stderr.lines().filter(|l| l.starts_with("warning: ")) {
        assert!(!line["warning: ".len()..].starts_with("warning"), "{line}");
    }
    let json = json_lines(&t.ok([
        "build".as_ref(),
        dir.as_os_str(),
        "--platform".as_ref(),
        "amd64".as_ref(),
        "--no-cache".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
    ]));
    let warnings = json[0]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("myTool")),
        "{warnings:?}"
    );
    for w in warnings {
        let w = w.as_str().unwrap();
        assert!(!w.starts_with("warning"), "{w}");
        assert!(!w.contains("warning: warning:"), "{w}");
    }
}

/// A C source cannot read a file outside the gadget directory, its include directories, the SDK
/// and the compiler's own headers: `#include` with `../` or an absolute path, `#include_next`,
/// `#embed`, `__has_include`/`__has_embed` probes, a macro-built name, a symlinked file or
/// directory inside the gadget directory. Each is a real clang build of a real gadget with the
/// hostile lines added, which would otherwise succeed with the secret compiled in; the error
/// names the source and the path, and never quotes the secret.
#[test]
fn a_c_source_reads_nothing_outside_the_gadget_directory() {
    const TOKEN: &str = "SECRETTOKEN_7f3a";
    let t = TempStore::new();
    let outside = t.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret_h = outside.join("secret.h");
    std::fs::write(
        &secret_h,
        format!("static const char leaked[] __attribute__((used)) = \"{TOKEN}\";\n"),
    )
    .unwrap();
    // Not C: a compile that reads it fails with the secret in its messages.
    std::fs::write(outside.join("quoted.h"), format!("{TOKEN} hunter2;\n")).unwrap();
    std::fs::write(outside.join("secret.bin"), TOKEN).unwrap();
    let abs = outside.display().to_string();
    let sample_src = sample("trace_open");
    let program = std::fs::read_to_string(sample_src.join("program.bpf.c")).unwrap();
    let metadata = std::fs::read(sample_src.join("gadget.yaml")).unwrap();
    let build = |name: &str, extra: &str, links: &[(&str, &Path)]| {
        let dir = gadget_dir(
            t.dir.path(),
            name,
            &[
                ("program.bpf.c", format!("{program}\n{extra}\n").as_bytes()),
                ("gadget.yaml", &metadata),
            ],
        );
        std::fs::create_dir_all(dir.join("include")).unwrap();
        std::fs::write(dir.join("include/real.h"), "#define HARDEN_INSIDE 1\n").unwrap();
        for (link, target) in links {
            std::os::unix::fs::symlink(target, dir.join(link)).unwrap();
        }
        let m = run_measured(t.cmd([
            "build".as_ref(),
            dir.as_os_str(),
            "--platform".as_ref(),
            "amd64".as_ref(),
            "--no-cache".as_ref(),
        ]));
        (dir, m)
    };

    // The control: the same gadget reading a header through a symlink that stays inside.
    let (_, ok) = build(
        "inside",
        "#include \"inside.h\"\n#if __has_include(\"include/real.h\")\n#endif",
        &[("inside.h", Path::new("include/real.h"))],
    );
    assert_eq!(ok.out.status.code(), Some(0), "control: {}", ok.stderr());
    let store_before = t.snapshot();

    let embed = format!(
        "static const char e[] __attribute__((used)) = {{\n#embed \"{abs}/secret.bin\"\n}};"
    );
    // (case, the lines added to program.bpf.c, symlinks in the gadget directory, the path the
    // error must name as read)
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a Path)>, String);
    let cases: Vec<Case> = vec![
        ("dotdot", "#include \"../outside/secret.h\"".into(), vec![], "../outside/secret.h".into()),
        ("absolute", format!("#include \"{abs}/secret.h\""), vec![], format!("{abs}/secret.h")),
        ("angled absolute", format!("#include <{abs}/secret.h>"), vec![], format!("{abs}/secret.h")),
        ("include_next", "#include_next \"../outside/secret.h\"".into(), vec![], "outside/secret.h".into()),
        ("embed", embed.clone(), vec![], format!("{abs}/secret.bin")),
        (
            "has_include probe",
            format!("#if __has_include(\"{abs}/secret.h\")\nint harden_probe __attribute__((used));\n#endif"),
            vec![],
            format!("{abs}/secret.h"),
        ),
        (
            "has_embed probe",
            format!("#if __has_embed(\"{abs}/secret.bin\")\nint harden_probe __attribute__((used));\n#endif"),
            vec![],
            format!("{abs}/secret.bin"),
        ),
        (
            "macro-built name",
            "#define HARDEN_STR(x) #x\n#define HARDEN_PATH(x) HARDEN_STR(x)\n#include HARDEN_PATH(../outside/secret.h)".into(),
            vec![],
            "../outside/secret.h".into(),
        ),
        ("symlinked file", "#include \"link.h\"".into(), vec![("link.h", secret_h.as_path())], "link.h".into()),
        ("symlinked directory", "#include \"up/secret.h\"".into(), vec![("up", outside.as_path())], "up/secret.h".into()),
        (
            "symlink in an include directory",
            "#include <gadget/harden.h>".into(),
            vec![("gadget", outside.as_path())],
            "gadget".into(),
        ),
        // Inside the sandbox's toolchain trees but outside the roots: under Landlock the compile
        // succeeds, and its own dependency list refuses it before its object is used.
        (
            "embed from the toolchain trees",
            "static const char g[] __attribute__((used)) = {\n#embed \"/usr/share/common-licenses/GPL-3\"\n};".into(),
            vec![],
            "/usr/share/common-licenses/GPL-3".into(),
        ),
        ("failing compile quoting the secret", "#include \"../outside/quoted.h\"".into(), vec![], "../outside/quoted.h".into()),
        (
            "a missing header and #error do not hide it",
            "#include \"../outside/quoted.h\"\n#include \"missing_harden.h\"\n#error stop here".into(),
            vec![],
            "../outside/quoted.h".into(),
        ),
    ];
    // The symlinked include directory case needs the link's file to exist.
    std::fs::write(outside.join("harden.h"), "int harden_h;\n").unwrap();
    for (what, extra, links, named) in cases {
        let (_, m) = build(&what.replace([' ', '#'], "_"), &extra, &links);
        m.assert_refused(
            what,
            &[
                "program.bpf.c` reads `",
                &named,
                "outside the gadget directory",
            ],
        );
        assert!(
            !m.stderr().contains(TOKEN),
            "{what}: the secret was printed:\n{}",
            m.stderr()
        );
        assert!(
            !m.stderr().contains("hunter2"),
            "{what}: the secret was printed"
        );
        assert_eq!(t.snapshot(), store_before, "{what}: the store changed");
    }

    // The assembler reads `.incbin` and `.include` files itself, unseen by the preprocessor:
    // the compiler's sandbox (Landlock) refuses them, directly or through a symlink inside.
    for (what, extra, links) in [
        (
            "asm .incbin",
            format!(
                "asm(\".pushsection .rodata.harden\\n.incbin \\\"{abs}/secret.bin\\\"\\n.popsection\");"
            ),
            vec![],
        ),
        (
            "asm .incbin through a symlink",
            "asm(\".pushsection .rodata.harden\\n.incbin \\\"blob.bin\\\"\\n.popsection\");"
                .to_string(),
            vec![("blob.bin", outside.join("secret.bin"))],
        ),
        (
            "asm .include",
            format!("asm(\".include \\\"{abs}/quoted.h\\\"\");"),
            vec![],
        ),
    ] {
        let links: Vec<(&str, &Path)> = links.iter().map(|(l, p)| (*l, p.as_path())).collect();
        let (_, m) = build(&what.replace([' ', '.'], "_"), &extra, &links);
        m.assert_refused(
            what,
            &[
                "program.bpf.c`",
                "Could not find",
                "hint: clang may read only",
            ],
        );
        assert!(
            !m.stderr().contains(TOKEN),
            "{what}: the secret was printed:\n{}",
            m.stderr()
        );
        assert_eq!(t.snapshot(), store_before, "{what}: the store changed");
    }
}
