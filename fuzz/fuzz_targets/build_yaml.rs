//! build.yaml: loaded from a gadget directory (paths, cflags, platforms, wasm).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::build_yaml(data));
