//! Gadget image documents: the assembly of index + manifests with their annotations (the media
//! types are `gadget_facts::media_types`).

pub mod assemble;
pub mod container;

pub use assemble::{AssembledImage, ImageInputs, assemble};
