//! cosign key files: public keys (PEM, SPKI DER), private keys (PKCS#8) and the encrypted
//! envelope of `cosign.key` (under `cfg(fuzzing)` the scrypt cost is lowered, so that inputs
//! reaching the key derivation stay fast).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::cosign_key(data));
