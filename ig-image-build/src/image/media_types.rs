//! Media types and annotation keys of gadget images: defined once in the store crate.

pub use gadget_store::media_types::*;
