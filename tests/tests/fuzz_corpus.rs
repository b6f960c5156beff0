//! Replays the fuzz seeds through the fuzz targets' own functions (fuzz/src/targets.rs, shared
//! by path), so CI runs every target on the checked-in seeds without the instrumented fuzz
//! build: the seeds of `fuzz/seeds/<target>/` and the samples, fixtures and test data that
//! `scripts/fuzz` copies into each corpus. A panic names the target and the seed.

#[path = "../../fuzz/src/support.rs"]
mod support;
#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files matching `pattern` (relative to the repository; one `*`, for a directory or a file
/// name prefix/suffix), sorted.
fn glob(pattern: &str) -> Vec<PathBuf> {
    let (before, after) = pattern.split_once('*').expect("one `*`");
    let (dir, prefix) = before.rsplit_once('/').unwrap_or(("", before));
    let (suffix, below) = match after.split_once('/') {
        Some((suffix, below)) => (suffix, Some(below)),
        None => (after, None),
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .map(|e| match below {
            Some(b) => e.path().join(b),
            None => e.path(),
        })
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// The seeds of one target: what `scripts/fuzz` copies into its corpus.
fn seeds(target: &str) -> Vec<PathBuf> {
    let patterns: &[&str] = match target {
        "object" => &["gadget-object/testdata/*.o", "runtime-min/testdata/*.o"],
        "gadget_yaml" => &[
            "sample-gadgets/*/gadget.yaml",
            "tests/fixtures/*/gadget.yaml",
            "templates/gadget.yaml*.hbs",
        ],
        "build_yaml" => &["sample-gadgets/*/build.yaml", "templates/build.yaml*.hbs"],
        "artifacthub" => &[
            "sample-gadgets/*/artifacthub-pkg.yml",
            "templates/artifacthub-pkg.yml*.hbs",
        ],
        "cosign_key" => &[
            "ig-image-sign/src/testdata/*.key",
            "ig-image-sign/src/testdata/*.pem",
        ],
        _ => &[],
    };
    let mut files: Vec<PathBuf> = patterns.iter().flat_map(|p| glob(p)).collect();
    files.extend(glob(&format!("fuzz/seeds/{target}/*")));
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = seeds(target);
    assert!(!files.is_empty(), "{target}: no seeds");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        eprintln!("{target}: {}", file.display());
        run(&data);
        // Cut short and empty inputs too, as the fuzzer's first mutations do.
        run(&data[..data.len() / 2]);
    }
    run(&[]);
}

#[test]
fn every_fuzz_target_takes_its_seeds_without_a_panic() {
    type Target = (&'static str, fn(&[u8]));
    let all: [Target; 11] = [
        ("object", targets::object),
        ("gadget_yaml", targets::gadget_yaml),
        ("build_yaml", targets::build_yaml),
        ("artifacthub", targets::artifacthub),
        ("reference", targets::reference),
        ("oci", targets::oci),
        ("tar_import", targets::tar_import),
        ("wasm", targets::wasm),
        ("cosign_key", targets::cosign_key),
        ("signature", targets::signature),
        ("decoder", targets::decoder),
    ];
    for (target, run) in all {
        replay(target, run);
    }
}

/// The list above and scripts/fuzz's list of targets are the same.
#[test]
fn the_replay_covers_every_target_of_scripts_fuzz() {
    let script = std::fs::read_to_string(root().join("scripts/fuzz")).unwrap();
    let line = script
        .lines()
        .find(|l| l.starts_with("ALL=("))
        .expect("scripts/fuzz lists its targets");
    let listed: Vec<&str> = line["ALL=(".len()..line.len() - 1].split(' ').collect();
    let mut ours = vec![
        "object",
        "gadget_yaml",
        "build_yaml",
        "artifacthub",
        "reference",
        "oci",
        "tar_import",
        "wasm",
        "cosign_key",
        "signature",
        "decoder",
    ];
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    ours.sort_unstable();
    assert_eq!(listed_sorted, ours);
}
