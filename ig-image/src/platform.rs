//! Target platforms a gadget can be built for: defined once in the facts crate
//! (`gadget_facts::platform`), re-exported here so `ig_image::platform::*` paths keep working.

pub use gadget_facts::platform::*;
