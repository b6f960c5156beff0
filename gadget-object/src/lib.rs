//! Pure parsing of gadget eBPF objects: ELF, BTF, gadget feature discovery and build-time checks.
