//! artifacthub-pkg.yml: read and checked (against Artifact Hub's rules and the gadget.yaml
//! beside it).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::artifacthub(data));
