//! `check` agrees with the loader (issue 15 item 5): for every gadget fixture (every directory of
//! `tests/fixtures` with a `program.bpf.c`) and every C sample, `check` against the running
//! kernel says ok exactly when `run --verify-only` loads every program.
//!
//! `check` loads nothing: it answers from BTF (CO-RE relocations, attach points, types, helpers,
//! program and map types). A program the kernel's verifier refuses for its own logic (an
//! unchecked map lookup, say) passes every one of those questions, so the one allowed difference
//! is `check` ok where `run` fails with every failure classified `verifier`, the class that
//! carries the verifier's log.

use std::path::PathBuf;

use ig_image_tests::{
    C_SAMPLES, SDK_SAMPLES, TempStore, fixture, json_lines, require_kernel, run, sample,
    workspace_root,
};
use serde_json::Value;

/// Every fixture gadget and every C sample, as (name, directory).
fn gadgets() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    let fixtures = workspace_root().join("tests").join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("program.bpf.c").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    out.extend(names.into_iter().map(|n| (n.clone(), fixture(&n))));
    for name in C_SAMPLES
        .iter()
        .chain(SDK_SAMPLES)
        .chain(&["trace_open_wasm"])
    {
        out.push(((*name).to_string(), sample(name)));
    }
    out
}

/// The classes of the failed programs and of a setup failure in a `run -o json` report.
fn failure_classes(report: &Value) -> Vec<String> {
    let mut classes: Vec<String> = report["programs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["status"] != "loaded" && p["status"] != "attached")
        .filter_map(|p| p["class"].as_str().map(String::from))
        .collect();
    if let Some(c) = report["setup_failure"]["class"].as_str() {
        classes.push(c.to_string());
    }
    classes
}

#[test]
fn kernel_check_says_ok_exactly_when_run_verify_only_loads() {
    if !require_kernel("kernel_check_says_ok_exactly_when_run_verify_only_loads") {
        return;
    }
    let t = TempStore::new();
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let mut disagreements = Vec::new();
    let mut table = Vec::new();
    for (name, dir) in gadgets() {
        let tag = format!("agree_{name}:t");
        t.ok([
            "build",
            dir.to_str().unwrap(),
            "-t",
            &tag,
            "--platform",
            arch,
            "--validate-metadata=false",
        ]);
        let check = run(t.cmd(["check", &tag, "-o", "json"]));
        let reports = json_lines(&String::from_utf8_lossy(&check.stdout));
        assert_eq!(reports.len(), 1, "{name}: {reports:?}");
        let check_ok = reports[0]["ok"] == true;
        assert_eq!(
            check.status.success(),
            check_ok,
            "{name}: check's exit status and its report differ"
        );

        let verify = run(t.cmd(["run", "--verify-only", &tag, "-o", "json"]));
        let runs = json_lines(&String::from_utf8_lossy(&verify.stdout));
        assert_eq!(runs.len(), 1, "{name}: {runs:?}");
        let run_ok = runs[0]["ok"] == true;
        assert_eq!(
            verify.status.success(),
            run_ok,
            "{name}: run's exit status and its report differ"
        );
        let classes = failure_classes(&runs[0]);
        table.push(format!(
            "{name}: check {} run {} {classes:?}",
            if check_ok { "ok" } else { "FAIL" },
            if run_ok { "ok" } else { "FAIL" }
        ));

        let verifier_only = !classes.is_empty() && classes.iter().all(|c| c == "verifier");
        if check_ok != run_ok && !(check_ok && verifier_only) {
            disagreements.push(format!(
                "{name}: check says {}, run --verify-only {}\ncheck: {}\nrun: {}",
                if check_ok { "ok" } else { "not ok" },
                if run_ok { "loads" } else { "fails" },
                reports[0],
                runs[0]
            ));
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        disagreements.is_empty(),
        "check and the loader disagree:\n{}",
        disagreements.join("\n\n")
    );
}
