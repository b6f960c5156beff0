//! Facts about gadgets that the build side and the run side both need, defined once: the lowest
//! crate of the workspace, which `gadget-store`, `gadget-object`, `runtime-min`, `microvm` and
//! `ig-image` may all depend on. It does no I/O and holds only tables, names and the small
//! functions that map between them.
//!
//! - [`platform`]: the platforms a gadget is built for and their names (OCI, Debian, `uname
//!   -m`, Rust, btfhub-archive, multiarch), syscall-wrapper prefixes and ELF machines;
//! - [`media_types`]: media types and annotation keys of OCI layouts and gadget images;
//! - [`wasm_api`]: the `ig` host module of gadget WASM modules, one typed table;
//! - [`btf`]: BTF type kinds and CO-RE relocation kinds;
//! - [`env`]: every environment variable the tools read, with its meaning.

#![deny(missing_docs)]

pub mod btf;
pub mod env;
pub mod media_types;
pub mod platform;
pub mod wasm_api;
