//! gadget.yaml: ig-image's validation (alone and against a real object), its descriptive
//! fields, and the runtime's reading of it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::gadget_yaml(data));
