//! The ELF/BTF object parser and the object checks: whatever the bytes, a result, never a
//! panic; and what parses also gets its data sources, fields and decoders.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::object(data));
