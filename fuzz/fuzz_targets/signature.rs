//! Signature verification against a fresh store holding one image: cosign simple-signing
//! payloads and Sigstore bundle statements signed by the target itself (so that the parsing
//! behind a good signature is reached), and raw signature manifests and bundles as given.
//! The first input byte picks which; the rest is the fuzzed document.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::signature(data));
