//! cosign key files: public keys (PEM, SPKI DER), private keys (PKCS#8) and the encrypted
//! envelope of `cosign.key` (under `cfg(fuzzing)` the scrypt cost is lowered, so that inputs
//! reaching the key derivation stay fast).
#![no_main]

use ig_image::sign::keys::{Password, PrivateKey, PublicKey, decrypt_envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = PublicKey::from_pem(data, "fuzz.pub");
    let _ = PublicKey::from_spki_der(data, "fuzz.pub");
    let _ = PrivateKey::from_pkcs8_der(data, "fuzz.key");
    let password = Password::new(b"fuzz".to_vec());
    let _ = PrivateKey::from_encrypted_pem(data, &password, "fuzz.key");
    let _ = decrypt_envelope(data, &password, "fuzz.key");
});
