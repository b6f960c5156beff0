//! Proving gadgets on other kernels in throwaway QEMU microVMs: kernel specs and the kernel
//! cache (Debian's archive, local packages, user-built kernels), the guest's initramfs, booting
//! and bounding a guest, the in-guest runner, and the records of a kernel matrix.
//!
//! The guest shares the host root read-only over 9p and runs the host's own `ig-image` binary
//! against its own kernel; a second, read-write 9p share carries the job and its result.

pub mod bzimage;
pub mod cache;
pub mod deb;
pub mod debian;
pub mod decompress;
pub mod elf;
pub mod guest;
pub mod initramfs;
pub mod matrix;
pub mod modinfo;
pub mod record;
pub mod spec;
pub mod vm;

pub use cache::{KernelCache, PreparedKernel};
pub use record::Record;
pub use spec::{Arch, KernelSpec};
