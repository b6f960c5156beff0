//! Embeds the bundled SDK tree (`ig-image/sdk/include/**`, where gadget authors and the docs find
//! it) into the library and records its content hash.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../ig-image/sdk/include");
    println!("cargo:rerun-if-changed=../ig-image/sdk/include");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    let mut digests = String::from(
        "/// SHA-256 (hex) of each bundled SDK file, by path relative to the include root.\npub static FILE_SHA256: &[(&str, &str)] = &[\n",
    );
    let mut code = String::from(
        "/// Files of the bundled SDK: (path relative to the include root, content).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .expect("collected under root")
            .to_string_lossy()
            .replace('\\', "/");
        let content = std::fs::read(path).expect("readable SDK file");
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
        writeln!(
            digests,
            "    ({rel:?}, {:?}),",
            hex::encode(Sha256::digest(&content))
        )
        .expect("write to string");
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    digests.push_str("];\n");
    code.push_str(&digests);
    let hash = hex::encode(hasher.finalize());
    writeln!(
        code,
        "/// SHA-256 over the SDK's paths and contents.\npub const HASH: &str = {hash:?};"
    )
    .expect("write to string");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("sdk_files.rs");
    std::fs::write(out, code).expect("write sdk_files.rs");
}
