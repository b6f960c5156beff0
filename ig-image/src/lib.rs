//! ig-image: build gadget images without Docker, keep them in upstream's store, and prove them.
//!
//! The library does the work; the `ig-image` binary (`src/cli`) parses arguments and prints.
//! Modules: [`build`] (C gadgets into images), [`image`] (index/manifest assembly),
//! [`metadata`] (gadget.yaml checks and updates), [`sdk`] (the embedded SDK), [`platform`],
//! [`env`] (environment variables), [`inspect`] (what an image holds), [`sign`] (cosign
//! signatures: keys, signing, verifying, the run/pull policy).

pub mod artifacthub;
pub mod attest;
pub mod btfgen;
pub mod build;
pub mod compat;
pub mod doctor;
pub mod env;
pub mod file_error;
pub mod hints;
pub mod image;
pub mod inspect;
pub mod metadata;
pub mod platform;
pub mod registry;
pub mod scaffold;
pub mod sdk;
pub mod sign;
