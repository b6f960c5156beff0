//! ig-image's checks of where a gadget can run: [`compat`] reads an image's objects and says,
//! per target kernel (this host, a BTF file, a Debian kernel), which programs, maps and CO-RE
//! relocations would fail and why (`ig-image check`); [`doctor`] reports what this host can do
//! (toolchain, kernel features, microVMs).

pub mod compat;
pub mod doctor;
