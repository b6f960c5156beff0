//! The command reference in docs/commands/ is `--help` itself: this test fails when they drift
//! (regenerate with `scripts/gen-command-docs`).

use ig_image_tests::{assert_success, ig_image_bin, run, workspace_root};

fn help(args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(ig_image_bin());
    cmd.args(args)
        .arg("--help")
        .env_remove("IG_IMAGE_STORE")
        .env_remove("COLUMNS");
    let out = run(cmd);
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

fn page_block(name: &str) -> String {
    let path = workspace_root()
        .join("docs/commands")
        .join(format!("{name}.md"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/gen-command-docs)", path.display()));
    let start = text.find("```text\n").expect("a ```text block") + "```text\n".len();
    let end = text[start..].find("\n```").expect("block end") + start;
    text[start..end].to_string()
}

#[test]
fn every_command_page_matches_its_help() {
    let top = help(&[]);
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| {
            // A command line is indented by exactly two spaces; wrapped descriptions by more.
            l.strip_prefix("  ")
                .filter(|l| !l.starts_with(' '))
                .and_then(|l| l.split_whitespace().next())
                .map(str::to_string)
        })
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 7, "{commands:?}");
    for command in commands {
        assert_eq!(
            page_block(&command),
            help(&[&command]).trim_end(),
            "docs/commands/{command}.md is stale: run scripts/gen-command-docs"
        );
    }
}

/// The normal (non-dev, non-build) dependencies of every workspace package, transitively, by
/// package name, from `cargo metadata`'s resolve graph.
fn transitive_dependencies()
-> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .current_dir(workspace_root());
    let out = run(cmd);
    assert_success(&out);
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let normal = node["deps"].as_array().unwrap().iter().filter(|d| {
            d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null())
        });
        direct.insert(
            node["id"].as_str().unwrap(),
            normal.map(|d| d["pkg"].as_str().unwrap()).collect(),
        );
    }
    let mut all = BTreeMap::new();
    for member in meta["workspace_members"].as_array().unwrap() {
        let mut seen = BTreeSet::new();
        let mut todo = vec![member.as_str().unwrap()];
        while let Some(id) = todo.pop() {
            for &dep in &direct[id] {
                if seen.insert(name_of[dep].to_string()) {
                    todo.push(dep);
                }
            }
        }
        all.insert(name_of[member.as_str().unwrap()].to_string(), seen);
    }
    all
}

/// docs/design.md's crate rules: nothing used by `build` reaches the loader, aya/libbpf or the
/// registry's HTTP stack; registry and signing depend on no other ig-image crate; only the CLI
/// depends on the loader.
#[test]
fn every_crate_keeps_to_its_dependency_rule() {
    let deps = transitive_dependencies();
    let reaches = |krate: &str, dep: &str| deps[krate].contains(dep);
    for build_side in [
        "ig-image-build",
        "ig-image-sign",
        "gadget-object",
        "gadget-store",
        "gadget-facts",
    ] {
        for forbidden in [
            "runtime-min",
            "libbpf-rs",
            "libbpf-sys",
            "aya",
            "aya-obj",
            "reqwest",
        ] {
            assert!(
                !reaches(build_side, forbidden),
                "{build_side} depends on {forbidden} (docs/design.md, Crates)"
            );
        }
    }
    for alone in ["ig-image-registry", "ig-image-sign"] {
        for other in [
            "ig-image-registry",
            "ig-image-sign",
            "ig-image-build",
            "ig-image-check",
        ] {
            assert!(
                alone == other || !reaches(alone, other),
                "{alone} depends on {other} (docs/design.md, Crates)"
            );
        }
    }
    for (krate, its) in &deps {
        if its.contains("runtime-min") {
            assert_eq!(krate, "ig-image", "only the CLI may depend on the loader");
        }
    }
    assert!(
        reaches("ig-image", "runtime-min"),
        "the rule above tests nothing"
    );
}
