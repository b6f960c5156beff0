//! Gadget image documents: media types, annotations and the assembly of index + manifests.

pub mod assemble;
pub mod container;
pub mod media_types;

pub use assemble::{AssembledImage, ImageInputs, assemble};
