//! Cosign-compatible signatures, made and checked offline against the local store.
//!
//! - [`keys`]: cosign's key files (`cosign.key` encrypted with scrypt + NaCl secretbox around a
//!   PKCS#8 key, `cosign.pub` PKIX PEM), passwords, signing and verifying primitives.
//! - [`cosign`]: the three ways a signature is stored next to an image (the legacy
//!   `sha256-<hex>.sig` tag, an OCI 1.1 referrer, a sigstore bundle referrer) and [`cosign::sign`].
//! - [`verify`]: finds every signature of an image in the store and checks it: signature bytes
//!   with the keys first, only then the signed payload's digest against the image's index digest.
//! - [`keyless`]: keyless (Fulcio + Rekor) bundle verification, offline, against a pinned trusted
//!   root.
//! - [`attestation`]: `verify --attestation TYPE`: signed attestations (DSSE envelopes in
//!   sigstore bundle referrers) of an image, checked like signatures.
//! - [`policy`]: what `run` and `pull` enforce: `--verify-image`, `--public-keys`,
//!   `--allowed-gadgets`.
//!
//! The signed digest is always the image's **index** digest, as upstream `ig` and cosign
//! expect (`../shared/spec/signing-and-publishing.md` §1). No network here: `push` and `pull`
//! carry the store representations written by [`cosign`] to and from registries.
//!
//! ```no_run
//! use gadget_store::{Reference, Store};
//! use ig_image_sign::{cosign, keys, verify};
//!
//! # fn main() -> anyhow::Result<()> {
//! let store = Store::open_default()?;
//! let image = Reference::parse("trace_open:v1")?;
//! let password = keys::Password::from_env_or_prompt(false)?;
//! let key = keys::load_private_key("cosign.key".as_ref(), &password)?;
//! cosign::sign(&store, &image, &key, cosign::SignatureFormat::Legacy)?;
//! let public = keys::load_public_keys(&["cosign.pub".to_string()])?;
//! let verified = verify::verify(&store, &image, &public)?;
//! println!("{} verified by {}", verified.digest, verified.key);
//! # Ok(()) }
//! ```

pub mod attestation;
pub mod cosign;
pub mod keyless;
pub mod keys;
pub mod policy;
pub mod verify;
