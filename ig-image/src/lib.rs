//! ig-image: build gadget images without Docker, keep them in upstream's store, and prove them.
// Temporarily reduced while the store and object APIs land (full version in progress).

pub mod env;
pub mod metadata;

pub mod platform;
pub mod sdk;
