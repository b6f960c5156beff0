//! runtime-min: prove a gadget image in the real kernel.
//!
//! The path of a gadget through this crate is: image (from the store, [`source`]) → load
//! ([`load`]: parameters, map sizes, ring buffer fallback, CO-RE, the verifier) → attach
//! ([`attach`]: by section) → read ([`readers`]: ring buffers, perf buffers, iterators, hash
//! maps) → decode ([`decode`]: BTF-driven, record bytes to JSON) → print ([`output`]).
//! [`session`] runs the loop (timeout, event limit, Ctrl-C) and detaches everything at the end.
//!
//! It needs what `kubectl debug --profile=sysadmin` gives a container (root, the host kernel):
//! no daemon, no pinned bpffs path, no network. Nothing it loads is pinned, so when the process
//! ends, or a step fails, the kernel frees every map, program and link.
#![deny(missing_docs)]

pub mod attach;
pub mod btf_raw;
pub mod classify;
pub mod core_cache;
pub mod core_relo;
pub mod decode;
pub mod fixup;
pub mod load;
pub mod metadata;
pub mod output;
pub mod params;
pub mod prove;
pub mod readers;
pub mod session;
pub mod source;
