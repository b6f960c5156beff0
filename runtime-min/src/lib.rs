//! runtime-min: prove a gadget image in the real kernel.
//!
//! The path of a gadget through this crate is: image (from the store, [`source`]) → load
//! ([`load`]: parameters, map sizes, ring buffer fallback, CO-RE, the verifier) → attach
//! ([`attach`]: by section) → read ([`readers`]: ring buffers, perf buffers, iterators, hash
//! maps) → decode ([`decode`]: BTF-driven, record bytes to JSON) → print ([`output`]).
//! [`session`] runs the loop (timeout, event limit, Ctrl-C) and detaches everything at the end;
//! [`prove`] puts it together for command lines (`ig-image run`, the `runtime-min` binary).
//!
//! Loading is libbpf's (through libbpf-rs), with the gadget conventions on top (see [`load`]).
//! Supporting modules: `gadget_object::elf_patch` reads ELF headers and symbols;
//! `gadget_object::btf::raw` reads and minimizes raw BTF for CO-RE, cached per boot by
//! [`core_cache`], and `gadget_object::runtime_types` adds the types upstream's runtime provides; [`libbpf_log`] captures libbpf's messages per load;
//! [`classify`] and [`core_relo`] turn kernel errors into classified failures; [`metadata`] and
//! [`params`] read gadget.yaml and `--param` values.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use runtime_min::{load::LoadOptions, prove, source::Gadget};
//! let gadget = Gadget::from_object_file("program.bpf.o".as_ref(), None)?;
//! let report = prove::verify(&gadget, &LoadOptions::default(), false)?;
//! print!("{}", prove::render_verify(&report, false));
//! # Ok(()) }
//! ```
//!
//! It needs what `kubectl debug --profile=sysadmin` gives a container (root, the host kernel):
//! no daemon, no pinned bpffs path, no network. Nothing it loads stays pinned (maps a gadget pins
//! go to a private bpffs that disappears after loading), so when the process ends, or a step
//! fails, the kernel frees every map, program and link.
#![deny(missing_docs)]

pub mod attach;
pub mod btfgen;
pub mod classify;
pub mod core_cache;
pub mod core_relo;
pub mod decode;
pub mod host_fs;
pub mod libbpf_log;
pub mod load;
pub mod metadata;
pub mod output;
pub mod params;
pub mod prove;
pub mod readers;
pub mod session;
pub mod source;
pub mod wasm;

/// The hints of this crate's errors ([`gadget_store::hint::HintLookup`]): what the binaries'
/// error renderer prints after the chain.
pub fn hints_of(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    use gadget_store::hint::hints_if;
    [
        hints_if::<load::LoadError>,
        hints_if::<session::RunError>,
        hints_if::<host_fs::MountError>,
        hints_if::<prove::ProveError>,
    ]
    .iter()
    .flat_map(|lookup| lookup(error))
    .collect()
}
