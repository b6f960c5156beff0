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

/// The SDK samples (stacks, socket enricher, syscall arguments through CO-RE) build for both
/// arches, pass the independent checker, and their objects use the SDK API they show.
#[test]
fn sdk_samples_build_for_both_arches_and_use_the_api_they_show() {
    let t = TempStore::new();
    for name in ig_image_tests::SDK_SAMPLES {
        t.ok([
            "build",
            sample(name).to_str().unwrap(),
            "-t",
            &format!("{name}:v1"),
            "--platform",
            "amd64,arm64",
        ]);
    }
    let refs: Vec<String> = ig_image_tests::SDK_SAMPLES
        .iter()
        .map(|n| format!("{n}:v1"))
        .collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    t.check(&refs, "amd64,arm64");
    let ebpf = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&t.ok(["inspect", &format!("{name}:v1"), "-o", "json"])).unwrap();
        v["platforms"][0]["ebpf"].clone()
    };
    let map_names = |e: &serde_json::Value| -> Vec<String> {
        e["maps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    let stacks = ebpf("trace_stacks");
    let maps = map_names(&stacks);
    for m in ["ig_kstack", "ig_ustack", "ig_build_id", "events"] {
        assert!(
            maps.contains(&m.to_string()),
            "trace_stacks lacks {m}: {maps:?}"
        );
    }
    let params: Vec<&str> = stacks["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"collect_ustack"), "{params:?}");
    let sock = ebpf("trace_sock_owner");
    assert!(
        map_names(&sock).contains(&"gadget_sockets".to_string()),
        "{sock}"
    );
    let kill = ebpf("trace_kill");
    assert!(kill["core_relocations"].as_u64().unwrap() > 0, "{kill}");
    assert_eq!(kill["datasources"][0]["name"], "kill");
}

/// The decl-tag spellings of newer upstream SDKs (`GADGET_ITER(name, type)` with
/// `GADGET_ITER_MEMBER` on each program, `GADGET_ASSERT`) build with the bundled SDK, and the
/// iterator's programs are found through the tags.
#[test]
fn decl_tag_iterators_and_asserts_build_and_are_discovered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("program.bpf.c"),
        r#"#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct entry {
	gadget_pid pid;
	gadget_comm comm[TASK_COMM_LEN];
};

const volatile bool verbose = false;
GADGET_PARAM(verbose);
GADGET_ASSERT(not_verbose_twice, "!params.verbose || true");

GADGET_ITER(tasks, entry);

SEC("iter/task")
GADGET_ITER_MEMBER(tasks)
int dump_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct entry e = {};

	if (!task)
		return 0;
	e.pid = task->tgid;
	__builtin_memcpy(e.comm, task->comm, sizeof(e.comm));
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#,
    )
    .unwrap();
    let t = TempStore::new();
    t.ok(["build", dir.path().to_str().unwrap(), "-t", "tags:v1"]);
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(["inspect", "tags:v1", "-o", "json"])).unwrap();
    let ds = &v["platforms"][0]["ebpf"]["datasources"][0];
    assert_eq!(ds["name"], "tasks", "{ds}");
    assert_eq!(ds["programs"], serde_json::json!(["dump_tasks"]), "{ds}");
}
