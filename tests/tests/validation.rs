//! Build-time checks: each validation error of gadget-sdk.md §5 has a broken gadget whose build
//! fails with a message naming the culprit, each check upstream does not enforce builds with a
//! warning naming it; `--update-metadata` keeps what the author wrote.

use std::path::Path;

use ig_image_tests::{TempStore, fixture};

/// Copy the valid tracer fixture into a temp dir, applying text replacements to its files.
fn variant(c_edits: &[(&str, &str)], yaml_edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, edits) in [("program.bpf.c", c_edits), ("gadget.yaml", yaml_edits)] {
        let mut text = std::fs::read_to_string(fixture("valid_tracer").join(file)).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "fixture {file} has no `{from}`");
            text = text.replace(from, to);
        }
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    dir
}

fn build_fails(dir: &Path) -> String {
    let t = TempStore::new();
    let err = t.fails([
        "build".as_ref(),
        dir.as_os_str(),
        "-t".as_ref(),
        "broken:1".as_ref(),
    ]);
    assert!(
        t.snapshot().iter().all(|(p, _)| !p.starts_with("blobs")),
        "a failed build stored blobs"
    );
    err
}

#[test]
fn the_valid_fixture_builds() {
    let t = TempStore::new();
    t.ok([
        "build".as_ref(),
        fixture("valid_tracer").as_os_str(),
        "-t".as_ref(),
        "valid:1".as_ref(),
    ]);
    t.check(&["valid:1"], "amd64,arm64");
}

#[test]
fn tracer_map_missing() {
    let d = variant(
        &[(
            "GADGET_TRACER(exec, events, event)",
            "GADGET_TRACER(exec, nosuchmap, event)",
        )],
        &[],
    );
    let err = build_fails(d.path());
    assert!(err.contains("nosuchmap"), "{err}");
}

#[test]
fn tracer_map_of_the_wrong_type() {
    let d = variant(
        &[
            (
                "GADGET_TRACER_MAP(events, 1024 * 256);",
                "struct {\n\t__uint(type, BPF_MAP_TYPE_HASH);\n\t__uint(max_entries, 16);\n\t__type(key, u32);\n\t__type(value, u32);\n} hashmap SEC(\".maps\");\nGADGET_TRACER_MAP(events, 1024 * 256);",
            ),
            (
                "GADGET_TRACER(exec, events, event)",
                "GADGET_TRACER(exec, hashmap, event)",
            ),
        ],
        &[],
    );
    let err = build_fails(d.path());
    assert!(
        err.contains("hashmap") && err.to_lowercase().contains("hash"),
        "{err}"
    );
}

#[test]
fn tracer_struct_missing() {
    let d = variant(
        &[(
            "GADGET_TRACER(exec, events, event)",
            "GADGET_TRACER(exec, events, nosuchstruct)",
        )],
        &[],
    );
    let err = build_fails(d.path());
    assert!(err.contains("nosuchstruct"), "{err}");
}

#[test]
fn param_not_const() {
    let d = variant(
        &[(
            "const volatile bool verbose = false;",
            "volatile bool verbose = false;",
        )],
        &[],
    );
    let err = build_fails(d.path());
    assert!(err.contains("verbose") && err.contains("const"), "{err}");
}

#[test]
fn param_not_in_btf() {
    let d = variant(
        &[(
            "GADGET_PARAM(verbose);",
            "GADGET_PARAM(verbose);\nGADGET_PARAM(ghost);",
        )],
        &[],
    );
    let err = build_fails(d.path());
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn metadata_param_that_is_not_a_param() {
    let d = variant(
        &[],
        &[(
            "    verbose:\n      key: verbose",
            "    phantom:\n      key: phantom",
        )],
    );
    let err = build_fails(d.path());
    assert!(err.contains("phantom"), "{err}");
}

/// Build and require success with a warning on stderr that names `culprit`.
fn build_warns(dir: &Path, culprit: &str) -> String {
    let t = TempStore::new();
    let out = t
        .cmd([
            "build".as_ref(),
            dir.as_os_str(),
            "-t".as_ref(),
            "warn:1".as_ref(),
        ])
        .output()
        .unwrap();
    ig_image_tests::assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("warning") && l.contains(culprit)),
        "no warning naming `{culprit}`: {stderr}"
    );
    t.check(&["warn:1"], "amd64,arm64");
    stderr
}

#[test]
fn unknown_datasource_is_a_warning_naming_it() {
    // Upstream's runtime ignores such entries, and upstream's own gadgets ship with them.
    let d = variant(&[], &[("  exec:\n", "  nosuchsource:\n")]);
    let stderr = build_warns(d.path(), "datasources.nosuchsource");
    assert!(stderr.contains("is not a data source"), "{stderr}");
}

#[test]
fn annotation_outside_its_domain_is_a_warning() {
    let d = variant(&[], &[("columns.width: 16", "columns.width: wide")]);
    let stderr = build_warns(d.path(), "columns.width");
    assert!(stderr.contains("wide"), "{stderr}");
}

#[test]
fn annotation_that_is_not_a_string_is_an_error() {
    // Upstream decodes annotations as strings: a mapping fails its decoding.
    let d = variant(&[], &[("columns.width: 16", "columns: {width: 16}")]);
    let err = build_fails(d.path());
    assert!(
        err.contains("annotations.columns") && err.contains("mapping"),
        "{err}"
    );
}

#[test]
fn unknown_field_is_a_warning_not_an_error() {
    let d = variant(&[], &[("      pid:\n", "      nosuchfield:\n")]);
    build_warns(d.path(), "nosuchfield");
}

#[test]
fn validation_can_be_turned_off() {
    let d = variant(
        &[],
        &[(
            "    verbose:\n      key: verbose",
            "    phantom:\n      key: phantom",
        )],
    );
    let t = TempStore::new();
    t.ok([
        "build".as_ref(),
        d.path().as_os_str(),
        "-t".as_ref(),
        "off:1".as_ref(),
        "--validate-metadata=false".as_ref(),
    ]);
}

#[test]
fn update_metadata_keeps_unknown_keys_order_and_entries() {
    let d = variant(&[], &[]);
    let yaml = d.path().join("gadget.yaml");
    let original = std::fs::read_to_string(&yaml).unwrap();
    let with_operator = format!("{original}operator:\n  oci:\n    verify-image: false\n");
    // Drop the datasource so the update has something to add.
    let edited = with_operator.replace("datasources:\n  exec:\n    fields:\n      comm:\n        annotations:\n          columns.width: 16\n      pid:\n        annotations:\n          template: pid\n", "");
    std::fs::write(&yaml, &edited).unwrap();
    let t = TempStore::new();
    t.ok([
        "build".as_ref(),
        d.path().as_os_str(),
        "-t".as_ref(),
        "upd:1".as_ref(),
        "--update-metadata".as_ref(),
    ]);
    let updated = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        updated.contains("operator:") && updated.contains("verify-image: false"),
        "{updated}"
    );
    assert!(
        updated.contains("exec:") && updated.contains("timestamp_raw"),
        "{updated}"
    );
    assert!(
        updated.contains("description: say more"),
        "existing entries must stay: {updated}"
    );
    // Key order: name stays first, operator stays after params.
    let pos = |k: &str| {
        updated
            .find(k)
            .unwrap_or_else(|| panic!("{k} missing in {updated}"))
    };
    assert!(
        pos("name:") < pos("params:") && pos("params:") < pos("operator:"),
        "{updated}"
    );
}

#[test]
fn update_metadata_creates_a_missing_file() {
    let d = variant(&[], &[]);
    std::fs::remove_file(d.path().join("gadget.yaml")).unwrap();
    let t = TempStore::new();
    t.ok([
        "build".as_ref(),
        d.path().as_os_str(),
        "-t".as_ref(),
        "new:1".as_ref(),
        "--update-metadata".as_ref(),
    ]);
    let created = std::fs::read_to_string(d.path().join("gadget.yaml")).unwrap();
    assert!(
        created.contains("TODO") && created.contains("verbose"),
        "{created}"
    );
}
