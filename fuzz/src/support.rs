//! Shared set-up of the fuzz targets: temporary stores and gadget directories, made once per
//! process and reused by every input. Shared by path with the `fuzz_corpus` test (tests/tests/fuzz_corpus.rs).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory that lives as long as the fuzzing process.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

/// A fresh, empty sub-directory of [`scratch_dir`] (the previous input's is removed first).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = scratch_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The text of `data`, or `None` when it is not UTF-8 (the YAML readers take text).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A minimal gadget.yaml, for targets that need one beside the file they fuzz.
pub const GADGET_YAML: &str = "name: fuzz\ndescription: a gadget for the fuzzer\n";

/// A file of this repository (relative to its root), read at build time.
#[macro_export]
macro_rules! repo_file {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $path))
    };
}
