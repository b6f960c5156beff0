//! build.yaml: loaded from a gadget directory (paths, cflags, platforms, wasm).
#![no_main]

use ig_image::build::build_yaml::BuildSpec;
use ig_image_fuzz::{GADGET_YAML, fresh_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir("build_yaml");
    std::fs::write(dir.join("gadget.yaml"), GADGET_YAML).unwrap();
    std::fs::write(dir.join("program.bpf.c"), "").unwrap();
    std::fs::write(dir.join("build.yaml"), data).unwrap();
    let _ = BuildSpec::load(&dir, None);
});
