//! Gadget image references and the OCI image layout store shared with upstream `ig`.
//!
//! This crate never touches the network or the kernel. It provides:
//!
//! - [`Reference`]: parsing and normalization of image references (spec §6);
//! - [`Digest`]: validated `sha256:<hex>` digests;
//! - [`to_canonical_json`]: the deterministic JSON encoding used for every OCI document we write;
//! - [`graph`]: the children of a manifest or index, the one OCI graph walker every crate uses;
//! - [`hint`]: hints as data on errors, and the one error renderer both binaries use;
//! - [`Store`]: the OCI image layout store (tags, blobs, lock, garbage collection, export and
//!   import), shared with upstream `ig`;
//! - [`signatures`]: the bare `sha256-<hex>.sig` and `sha256-<hex>` tags signatures and
//!   referrers indexes live under, as upstream keeps them.
//!
//! ```
//! use gadget_store::Reference;
//! let r: Reference = "trace_exec:v0.42.0".parse().unwrap();
//! assert_eq!(r.full(), "ghcr.io/inspektor-gadget/gadget/trace_exec:v0.42.0");
//! ```

#![deny(missing_docs)]

mod archive;
pub mod canonical;
pub mod digest;
mod error;
pub mod graph;
pub mod hint;
pub mod layout;
mod lock;
pub use gadget_facts::media_types;
pub mod reference;
pub mod signatures;
pub mod store;
#[cfg(test)]
mod test_support;

pub use archive::{ExportReport, printable};
pub use canonical::to_canonical_json;
pub use digest::{Digest, DigestError};
pub use error::{IoFailure, StoreError};
pub use reference::{Reference, ReferenceError};
pub use store::{
    GcReport, RemoveReport, Store, TaggedImage, Transaction, default_store_path, user_store_path,
};
