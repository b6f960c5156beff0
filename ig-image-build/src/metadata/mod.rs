//! gadget.yaml: read its descriptive keys, validate it against an eBPF object, and update it the
//! way upstream's `--update-metadata` does, without losing what upstream loses.
//!
//! The file is handled as a YAML tree with `yaml-rust2`, whose mappings keep insertion order, so
//! unknown keys (`operator:`, `programs:`) and the author's key order survive an update. Comments
//! do not survive a rewrite; [`update`] therefore returns the input unchanged when there is nothing
//! to add.
//!
//! Pure: no network, no kernel; callers read and write the file.

mod model;
mod update;
mod validate;

use std::path::PathBuf;

pub use model::{GadgetInfo, descriptive, require_gadget_yaml};
pub(crate) use update::emit_yaml;
pub use update::update;
pub use validate::{ValidateOptions, validate, validate_with};

/// Why gadget.yaml could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The text is not YAML, or breaks a limit of the hardened loader.
    #[error(transparent)]
    Yaml(#[from] gadget_object::yaml::YamlError),
    /// The YAML is well-formed but its shape is not a gadget.yaml.
    #[error("`{file}`: `{path}`: {reason}")]
    Shape {
        /// The metadata file (empty when unknown).
        file: PathBuf,
        /// YAML path of the offending node (`<root>` for the document).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The updated tree could not be written out as YAML.
    #[error("cannot write the updated gadget.yaml")]
    Emit {
        /// The emitter's reason.
        #[source]
        source: yaml_rust2::EmitError,
    },
}
