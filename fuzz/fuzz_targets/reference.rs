//! Image references and digests: parsing, and that what parses prints back into something that
//! parses to the same reference.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::reference(data));
