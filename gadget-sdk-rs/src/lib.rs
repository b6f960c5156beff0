//! Declare Inspektor Gadget features from a Rust eBPF program (aya-ebpf), in the discovery form
//! of the gadget SDK: unused globals named `gadget_tracer_<name>___<map>___<struct>`,
//! `gadget_param_<var>`, `gadget_mapiter_<name>___<map>`, ... (gadget-sdk.md §1), so `ig-image`
//! and runtimes find tracers, params and iterators in the object's BTF the same way as in a C
//! gadget.
//!
//! What Rust can and cannot express (the details are in `docs/rust-gadgets.md`):
//! - markers are `static mut NAME: *const c_void = null()` (each in its own `.bss.NAME`
//!   section, which libbpf skips as it holds nothing a program uses): their BTF type is
//!   `PTR -> ENUM c_void`, not C's `PTR -> CONST -> VOID` (Rust raw pointers carry no `const`
//!   qualifier in debug info). `gadget-object` accepts both forms.
//! - params are plain immutable `static`s forced into `.rodata`; Rust has no `const volatile`, so
//!   read them with [`param`] (a volatile read), never directly, or the compiler folds the
//!   default value into the code and the load-time value is ignored.
//! - Rust type aliases do not reach BTF: there is no `gadget_timestamp`/`gadget_comm` typedef.
//!   Give fields their meaning in gadget.yaml (`template: timestamp`, `template: comm`).
//! - Rust has no C `char`: declare text fields as [`GadgetString<N>`](GadgetString), not
//!   `[u8; N]`; `ig-image build` turns them into `char` arrays in BTF, so runtimes show text.
//!
//! No dependencies besides the proc-macro half; `no_std`, builds for the host as well as for
//! `bpfel-unknown-none`. [`gadget_tracer_map!`] expands to `aya_ebpf` paths, so the crate using
//! it must depend on `aya-ebpf` (0.2.1).
//!
//! ```ignore
//! use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
//! use gadget_sdk::{GadgetString, gadget_param, gadget_tracer, gadget_tracer_map};
//!
//! #[repr(C)]
//! pub struct event { pub timestamp_raw: u64, pub pid: u32, pub comm: GadgetString<16> }
//!
//! gadget_tracer_map!(events, 256 * 1024);
//! gadget_tracer!(exec, events, event);
//! gadget_param!(targ_pid: u32 = 0);
//!
//! #[tracepoint(category = "sched", name = "sched_process_exec")]
//! pub fn ig_trace_exec(_ctx: TracePointContext) -> u32 {
//!     let wanted = gadget_sdk::param(&targ_pid);
//!     // ... reserve with events.reserve_untyped::<event>(0), fill, submit
//!     0
//! }
//! ```

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

#[doc(hidden)]
pub use gadget_sdk_macros::{
    marker as __marker, tracer_map as __tracer_map, typed_marker as __typed_marker,
};

/// Length of a task's command name (`comm`), as in the kernel and the C SDK.
pub const TASK_COMM_LEN: usize = 16;

/// A fixed-size, NUL-padded text field (a member of an event, map key or map value struct):
/// declare string fields with this type instead of `[u8; N]` so runtimes show them as text, not
/// as arrays of numbers.
///
/// Rust has no C `char`: a `[u8; 16]` reaches BTF as an array of the 1-byte unsigned integer
/// `u8`, which `ig` (and our runtime) rightly print as numbers, since a byte array is not always
/// text. `GadgetString<N>` is `#[repr(transparent)]` over `[u8; N]` (same size, alignment and
/// layout), so the program reads and writes the bytes as before; its BTF is a one-member struct
/// whose name starts with `GadgetString`. `ig-image build` rewrites the object's `.BTF` so that
/// every struct or union member of this type becomes a C `char[N]` array, which every runtime
/// decodes as a string (up to the first NUL). Only struct and union members are rewritten: a
/// `GadgetString` used directly as a map key, a global or an array element stays a struct. See
/// `docs/rust-gadgets.md`.
///
/// ```
/// use gadget_sdk::{GadgetString, TASK_COMM_LEN};
///
/// #[repr(C)]
/// #[allow(non_camel_case_types)]
/// pub struct event {
///     pub pid: u32,
///     pub comm: GadgetString<TASK_COMM_LEN>,
/// }
///
/// let mut e = event { pid: 1, comm: GadgetString::zeroed() };
/// e.comm = GadgetString::from_bytes(*b"true\0\0\0\0\0\0\0\0\0\0\0\0");
/// e.comm.as_mut_bytes()[0] = b'T';
/// assert_eq!(e.comm.as_bytes()[..4], *b"True");
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GadgetString<const N: usize>(pub [u8; N]);

impl<const N: usize> GadgetString<N> {
    /// All NUL bytes (the empty string).
    #[inline(always)]
    #[must_use]
    pub const fn zeroed() -> Self {
        GadgetString([0; N])
    }

    /// Wraps bytes as they are (NUL-padded text, for example what `bpf_get_current_comm`
    /// returns).
    #[inline(always)]
    #[must_use]
    pub const fn from_bytes(bytes: [u8; N]) -> Self {
        GadgetString(bytes)
    }

    /// The bytes.
    #[inline(always)]
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// The bytes, writable (for example as the destination of
    /// `bpf_probe_read_kernel_str_bytes`).
    #[inline(always)]
    pub fn as_mut_bytes(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> Default for GadgetString<N> {
    #[inline(always)]
    fn default() -> Self {
        Self::zeroed()
    }
}

impl<const N: usize> From<[u8; N]> for GadgetString<N> {
    #[inline(always)]
    fn from(bytes: [u8; N]) -> Self {
        GadgetString(bytes)
    }
}

/// Read a parameter declared with [`gadget_param!`].
///
/// The runtime rewrites the variable's `.rodata` bytes at load time; a volatile read keeps the
/// compiler from replacing the read with the default value (C gets the same from
/// `const volatile`).
#[inline(always)]
pub fn param<T: Copy>(var: &T) -> T {
    // SAFETY: `var` is a valid reference; a volatile read of a `Copy` value has no other effect.
    unsafe { core::ptr::read_volatile(var) }
}

/// `gadget_tracer!(name, map, event_struct)`: a stream data source `name` fed by ring buffer
/// `map`, each record an `event_struct` (`GADGET_TRACER` in C).
///
/// Declares `gadget_tracer_<name>___<map>___<event_struct>` and
/// `__gadget_tracer_type_<name>: *const <event_struct>` (which forces the struct into BTF).
/// The struct must be `#[repr(C)]` and named by a plain identifier.
#[macro_export]
macro_rules! gadget_tracer {
    ($name:ident, $map:ident, $event:ident $(,)?) => {
        $crate::__marker!("gadget_tracer_", $name, $map, $event);
        $crate::__typed_marker!("__gadget_tracer_type_", $name; $event);
    };
}

/// `gadget_tracer_map!(name, size)`: the ring buffer `name` of `size` bytes for a tracer, with
/// the marker `gadget_map_tracer_<name>` and the per-CPU array `<name>_lost_samples` (1 entry,
/// `u32` key, `u64` value) of `GADGET_TRACER_MAP` in C.
///
/// The ring buffer is aya-ebpf's BTF map `RingBuf<(), size>`: reserve records with
/// `reserve_untyped::<T>()` (a typed `RingBuf<T>` gets a value size that libbpf refuses).
/// Count drops with `<name>_lost_samples.get_ptr_mut(0)`.
#[macro_export]
macro_rules! gadget_tracer_map {
    ($name:ident, $size:expr $(,)?) => {
        $crate::__tracer_map!($name, $size);
    };
}

/// `gadget_param!(var: Type = default)`: the global `var` in `.rodata`, exposed as a user
/// parameter (key defaults to `var`; rename under `params.ebpf.<var>` in gadget.yaml).
///
/// Declares `#[no_mangle] static var: Type` in `.rodata` and the marker `gadget_param_<var>`.
/// Read it with [`param`]`(&var)`.
#[macro_export]
macro_rules! gadget_param {
    ($(#[$meta:meta])* $var:ident : $ty:ty = $init:expr $(,)?) => {
        $(#[$meta])*
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        #[cfg_attr(target_arch = "bpf", unsafe(link_section = ".rodata"))]
        static $var: $ty = $init;
        $crate::__marker!("gadget_param_", $var);
    };
}

/// `gadget_mapiter!(name, map)`: a periodic data source read from hash map `map`
/// (`GADGET_MAPITER` in C). Key and value must be `#[repr(C)]` structs.
#[macro_export]
macro_rules! gadget_mapiter {
    ($name:ident, $map:ident $(,)?) => {
        $crate::__marker!("gadget_mapiter_", $name, $map);
    };
}

/// `gadget_iter!(name, struct, prog1 [, prog2 [, prog3]])`: a snapshot data source filled by
/// `iter/...` programs (`GADGET_ITER` in C).
#[macro_export]
macro_rules! gadget_iter {
    ($name:ident, $entry:ident, $($prog:ident),+ $(,)?) => {
        $crate::__marker!("gadget_iter_", $name, $entry, $($prog),+);
        $crate::__typed_marker!("unusedevent_", $name, $entry; $entry);
    };
}

/// `gadget_iter_target_map!(prog, map)`: binds an `iter/bpf_map_elem` program to a map
/// (`GADGET_ITER_TARGET_MAP` in C).
#[macro_export]
macro_rules! gadget_iter_target_map {
    ($prog:ident, $map:ident $(,)?) => {
        $crate::__marker!("gadget_mapelem_iter_target_", $prog, $map);
    };
}

#[cfg(test)]
mod tests {
    #[repr(C)]
    pub struct event {
        pub timestamp_raw: u64,
        pub pid: u32,
    }

    crate::gadget_tracer!(exec, events, event);
    crate::gadget_param!(
        /// A documented param.
        targ_pid: u32 = 7
    );
    crate::gadget_mapiter!(counts, stats);
    crate::gadget_iter!(procs, event, prog_a, prog_b);
    crate::gadget_iter_target_map!(prog_a, stats);

    #[test]
    fn markers_have_the_discovery_names() {
        // The identifiers exist (this would not compile otherwise) and are null pointers.
        // SAFETY: reading a never-written `static mut` pointer.
        unsafe {
            assert!(
                (&raw const gadget_tracer_exec___events___event)
                    .read()
                    .is_null()
            );
            assert!((&raw const __gadget_tracer_type_exec).read().is_null());
            assert!((&raw const gadget_param_targ_pid).read().is_null());
            assert!((&raw const gadget_mapiter_counts___stats).read().is_null());
            assert!(
                (&raw const gadget_iter_procs___event___prog_a___prog_b)
                    .read()
                    .is_null()
            );
            assert!((&raw const unusedevent_procs___event).read().is_null());
            assert!(
                (&raw const gadget_mapelem_iter_target_prog_a___stats)
                    .read()
                    .is_null()
            );
        }
    }

    #[test]
    fn params_read_through_a_volatile_load() {
        assert_eq!(crate::param(&targ_pid), 7);
    }
}
