//! WASM modules: the build's validation (wasmparser) and the runtime's (wasmi: parse, imports,
//! exports, instantiation without running anything).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::wasm(data));
