//! Store commands end to end: list, inspect, tag, remove, export, import (and hostile imports).

use ig_image_tests::{TempStore, json_lines, run, sample};

fn build(t: &TempStore, name: &str, tag: &str) -> String {
    let out = json_lines(&t.ok([
        "build".as_ref(),
        sample(name).as_os_str(),
        "-t".as_ref(),
        tag.as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
    ]));
    out[0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn list_tag_remove_and_garbage_collection() {
    let t = TempStore::new();
    let digest = build(&t, "trace_open", "trace_open:v1");
    let out = t.ok(["tag", "trace_open:v1", "localhost:5000/mine/trace_open:v2"]);
    assert!(
        out.contains("Successfully tagged with localhost:5000/mine/trace_open:v2@"),
        "{out}"
    );
    let list = t.ok(["list"]);
    assert!(list.starts_with("REPOSITORY"), "{list}");
    assert!(
        list.contains("trace_open") && list.contains("v1") && list.contains(&digest[7..19]),
        "{list}"
    );
    let long = t.ok(["list", "--no-trunc"]);
    assert!(long.contains(&digest), "{long}");
    let json = json_lines(&t.ok(["list", "-o", "json"]));
    let items = json[0].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|i| i["reference"] == "ghcr.io/inspektor-gadget/gadget/trace_open:v1")
    );
    assert!(
        items.iter().all(|i| i["created"] == "2023-11-14T22:13:20Z"),
        "{items:?}"
    );

    let blobs_before = count_blobs(&t);
    t.ok(["remove", "trace_open:v1"]);
    assert_eq!(
        count_blobs(&t),
        blobs_before,
        "content still tagged as v2 must stay"
    );
    t.check(&[], "amd64,arm64");
    t.ok(["rm", "localhost:5000/mine/trace_open:v2"]);
    assert_eq!(count_blobs(&t), 0, "nothing is tagged any more");
    let err = t.fails(["remove", "trace_open:v1"]);
    assert!(err.contains("trace_open:v1"), "{err}");
}

fn count_blobs(t: &TempStore) -> usize {
    std::fs::read_dir(t.store().join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn inspect_shows_the_object_analysed() {
    let t = TempStore::new();
    build(&t, "trace_open", "trace_open:i");
    let json = json_lines(&t.ok(["inspect", "trace_open:i", "-o", "json"]));
    let doc = &json[0];
    let text = doc.to_string();
    assert_eq!(
        doc["reference"],
        "ghcr.io/inspektor-gadget/gadget/trace_open:i"
    );
    assert!(
        doc["index"]["manifests"].as_array().unwrap().len() == 2,
        "{text}"
    );
    assert!(
        text.contains("tracepoint"),
        "programs with their kind: {text}"
    );
    assert!(
        text.contains("BPF_MAP_TYPE_RINGBUF"),
        "maps with their type: {text}"
    );
    assert!(text.contains("failed"), "params: {text}");
    let yaml = t.ok([
        "inspect",
        "trace_open:i",
        "-o",
        "yaml",
        "--platform",
        "arm64",
    ]);
    assert!(
        yaml.contains("arm64") && yaml.contains("programs"),
        "{yaml}"
    );
    let err = t.fails(["inspect", "nosuch:image"]);
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn export_import_round_trip_into_a_fresh_store() {
    let a = TempStore::new();
    let digest = build(&a, "trace_exec", "localhost:5000/x/trace_exec:v1");
    build(&a, "top_file", "localhost:5000/x/top_file:v1");
    let tar = a.dir.path().join("images.tar");
    a.ok([
        "export".as_ref(),
        "localhost:5000/x/trace_exec:v1".as_ref(),
        "localhost:5000/x/top_file:v1".as_ref(),
        tar.as_os_str(),
    ]);
    let b = TempStore::new();
    let out = b.ok(["import".as_ref(), tar.as_os_str()]);
    assert!(
        out.contains("localhost:5000/x/trace_exec:v1")
            && out.contains("localhost:5000/x/top_file:v1"),
        "{out}"
    );
    let list = json_lines(&b.ok(["list", "-o", "json"]));
    assert!(
        list[0]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["digest"] == digest.as_str()),
        "{list:?}"
    );
    b.check(&[], "amd64,arm64");
}

/// Write a tar with python's tarfile (which, unlike the tar crate, writes hostile entries as asked).
fn hostile_tar(path: &std::path::Path, script: &str) {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(script).arg(path);
    ig_image_tests::assert_success(&run(cmd));
}

#[test]
fn hostile_imports_are_refused_and_change_nothing() {
    let t = TempStore::new();
    build(&t, "trace_open", "trace_open:keep");
    let good = t.dir.path().join("good.tar");
    t.ok([
        "export".as_ref(),
        "trace_open:keep".as_ref(),
        good.as_os_str(),
    ]);
    let before = t.snapshot();
    let cases = [
        (
            "dotdot",
            "import sys,tarfile,io\nsrc=tarfile.open(sys.argv[1]+'.src') if False else None\nt=tarfile.open(sys.argv[1],'w')\nd=b'x'\ni=tarfile.TarInfo('../evil');i.size=1\nt.addfile(i,io.BytesIO(d))\nt.close()",
        ),
        (
            "absolute",
            "import sys,tarfile,io\nt=tarfile.open(sys.argv[1],'w')\ni=tarfile.TarInfo('/etc/evil');i.size=1\nt.addfile(i,io.BytesIO(b'x'))\nt.close()",
        ),
        (
            "symlink",
            "import sys,tarfile\nt=tarfile.open(sys.argv[1],'w')\ni=tarfile.TarInfo('blobs/sha256/'+'a'*64);i.type=tarfile.SYMTYPE;i.linkname='/etc/passwd'\nt.addfile(i)\nt.close()",
        ),
        (
            "device",
            "import sys,tarfile\nt=tarfile.open(sys.argv[1],'w')\ni=tarfile.TarInfo('dev');i.type=tarfile.CHRTYPE;i.devmajor=1;i.devminor=3\nt.addfile(i)\nt.close()",
        ),
    ];
    for (name, script) in cases {
        let path = t.dir.path().join(format!("{name}.tar"));
        hostile_tar(&path, script);
        let err = t.fails(["import".as_ref(), path.as_os_str()]);
        assert!(!err.is_empty(), "{name}: no message");
        assert_eq!(t.snapshot(), before, "{name}: the store changed");
    }
    // A valid export whose blob was tampered with: a digest mismatch, refused as a whole.
    let tampered = t.dir.path().join("tampered.tar");
    hostile_tar(
        &tampered,
        &format!(
            "import sys,tarfile,io\nsrc=tarfile.open({:?})\nt=tarfile.open(sys.argv[1],'w')\ndone=False\nfor m in src.getmembers():\n  f=src.extractfile(m)\n  data=f.read() if f else None\n  if data is not None and m.name.startswith('blobs/sha256/') and not done and len(data)>100 and not data.startswith(b'{{'):\n    data=data[:-1]+bytes([data[-1]^1]); done=True\n  t.addfile(m, io.BytesIO(data) if data is not None else None)\nt.close()\nassert done",
            good.display().to_string()
        ),
    );
    let err = t.fails(["import".as_ref(), tampered.as_os_str()]);
    assert!(
        err.contains("sha256:"),
        "the message names the digest: {err}"
    );
    assert_eq!(t.snapshot(), before, "tampered: the store changed");
}
