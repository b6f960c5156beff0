//! `ig-image build`: every sample for amd64 and arm64, reproducibility, the cache, parallel builds.

use ig_image_tests::{C_SAMPLES, TempStore, json_lines, sample};

#[test]
fn every_sample_builds_for_both_arches_and_passes_the_checker() {
    let t = TempStore::new();
    let mut args = vec!["build".to_string()];
    args.extend(C_SAMPLES.iter().map(|s| sample(s).display().to_string()));
    args.extend(
        [
            "-t",
            "localhost:5000/samples/{name}:v1",
            "--platform",
            "amd64,arm64",
            "-o",
            "json",
        ]
        .map(String::from),
    );
    let out = json_lines(&t.ok(&args));
    assert_eq!(out.len(), C_SAMPLES.len(), "{out:?}");
    for (built, name) in out.iter().zip(C_SAMPLES) {
        assert_eq!(
            built["reference"],
            format!("localhost:5000/samples/{name}:v1")
        );
        assert_eq!(built["platforms"], serde_json::json!(["amd64", "arm64"]));
        assert!(built["digest"].as_str().unwrap().starts_with("sha256:"));
    }
    let report = t.check(&[], "amd64,arm64");
    assert!(
        report.contains(&format!("{} image(s)", C_SAMPLES.len())),
        "{report}"
    );
}

#[test]
fn same_source_date_epoch_gives_same_digest_and_identical_exports() {
    let a = TempStore::new();
    let b = TempStore::new();
    let dir = sample("trace_open");
    let da = json_lines(&a.ok([
        "build".as_ref(),
        dir.as_os_str(),
        "-t".as_ref(),
        "trace_open:r".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
    ]));
    // The second store builds without the cache: the compile itself must be reproducible.
    let db = json_lines(&b.ok([
        "build".as_ref(),
        dir.as_os_str(),
        "-t".as_ref(),
        "trace_open:r".as_ref(),
        "--no-cache".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
    ]));
    assert_eq!(da[0]["digest"], db[0]["digest"]);
    let ta = a.dir.path().join("a.tar");
    let tb = b.dir.path().join("b.tar");
    a.ok(["export".as_ref(), "trace_open:r".as_ref(), ta.as_os_str()]);
    b.ok(["export".as_ref(), "trace_open:r".as_ref(), tb.as_os_str()]);
    assert_eq!(
        std::fs::read(&ta).unwrap(),
        std::fs::read(&tb).unwrap(),
        "exports differ"
    );
}

#[test]
fn noop_rebuild_reuses_the_cache_and_a_source_change_does_not() {
    let t = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    copy_dir(&sample("trace_exec"), src.path());
    let build = || {
        json_lines(&t.ok([
            "build".as_ref(),
            src.path().as_os_str(),
            "-t".as_ref(),
            "noop:1".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
        ]))[0]
            .clone()
    };
    let first = build();
    assert_eq!(first["cached_objects"], 0);
    let second = build();
    assert_eq!(second["cached_objects"], 2, "{second}");
    assert_eq!(first["digest"], second["digest"]);
    let program = src.path().join("program.bpf.c");
    let text = std::fs::read_to_string(&program).unwrap();
    std::fs::write(&program, format!("{text}\n// a change\n")).unwrap();
    let third = build();
    assert_eq!(
        third["cached_objects"], 0,
        "a changed source must not hit the cache: {third}"
    );
}

#[test]
fn eight_concurrent_builds_and_tags_lose_nothing() {
    let t = TempStore::new();
    let samples = ["trace_exec", "trace_open", "snapshot_process", "top_file"];
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let mut cmd = t.cmd([
                "build".to_string(),
                sample(samples[i % samples.len()]).display().to_string(),
                "-t".to_string(),
                format!("localhost:5000/concurrent/g{i}:v1"),
            ]);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("spawn ig-image")
        })
        .collect();
    for h in handles {
        let out = h.wait_with_output().unwrap();
        ig_image_tests::assert_success(&out);
    }
    // Concurrent tags of one image into many names.
    let tags: Vec<_> = (0..8)
        .map(|i| {
            let mut cmd = t.cmd([
                "tag".to_string(),
                "localhost:5000/concurrent/g0:v1".to_string(),
                format!("localhost:5000/concurrent/t{i}:v1"),
            ]);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("spawn ig-image")
        })
        .collect();
    for h in tags {
        ig_image_tests::assert_success(&h.wait_with_output().unwrap());
    }
    let list = json_lines(&t.ok(["list", "-o", "json"]));
    let names: Vec<String> = list[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_string())
        .collect();
    for i in 0..8 {
        assert!(
            names.contains(&format!("localhost:5000/concurrent/g{i}:v1")),
            "g{i} lost: {names:?}"
        );
        assert!(
            names.contains(&format!("localhost:5000/concurrent/t{i}:v1")),
            "t{i} lost: {names:?}"
        );
    }
    t.check(&[], "amd64,arm64");
}

#[test]
fn several_platforms_and_the_sdk_dir_override() {
    let t = TempStore::new();
    // An external SDK tree ahead of the bundled one: a header that only it has.
    let sdk = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sdk.path().join("gadget")).unwrap();
    std::fs::write(
        sdk.path().join("gadget/only_external.h"),
        "#define ONLY_EXTERNAL 1\n",
    )
    .unwrap();
    let src = tempfile::tempdir().unwrap();
    copy_dir(&sample("trace_exec"), src.path());
    let program = src.path().join("program.bpf.c");
    let text = std::fs::read_to_string(&program).unwrap();
    std::fs::write(
        &program,
        format!("#include <gadget/only_external.h>\n{text}"),
    )
    .unwrap();
    let err = t.fails([
        "build".as_ref(),
        src.path().as_os_str(),
        "-t".as_ref(),
        "x:1".as_ref(),
    ]);
    assert!(err.contains("only_external.h"), "{err}");
    t.ok([
        "build".as_ref(),
        src.path().as_os_str(),
        "--sdk-dir".as_ref(),
        sdk.path().as_os_str(),
        "-t".as_ref(),
        "x:1".as_ref(),
    ]);
    // s390x has no bundled vmlinux.h: the error says what to pass.
    let err = t.fails([
        "build".as_ref(),
        sample("trace_exec").as_os_str(),
        "--platform".as_ref(),
        "s390x".as_ref(),
    ]);
    assert!(err.contains("gadget/s390x/vmlinux.h"), "{err}");
}

#[test]
fn compiler_errors_name_the_gadget_file() {
    let t = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    copy_dir(&sample("trace_exec"), src.path());
    std::fs::write(src.path().join("program.bpf.c"), "int main( {\n").unwrap();
    let err = t.fails([
        "build".as_ref(),
        src.path().as_os_str(),
        "-t".as_ref(),
        "x:1".as_ref(),
    ]);
    assert!(err.contains("program.bpf.c:1:"), "{err}");
    assert!(
        t.snapshot().iter().all(|(p, _)| !p.starts_with("blobs")),
        "a failed build wrote blobs"
    );
}

/// Copy a gadget directory (flat) into `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
