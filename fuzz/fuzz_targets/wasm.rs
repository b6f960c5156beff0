//! WASM modules: the build's validation (wasmparser) and the runtime's (wasmi: parse, imports,
//! exports, instantiation without running anything).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ig_image::build::wasm::validate(data);
    let _ = runtime_min::wasm::validate(data);
    let _ = runtime_min::wasm::unsupported_imports(data);
});
