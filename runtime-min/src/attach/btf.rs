//! BTF-attached programs: `tp_btf`, `fentry`, `fexit` attach with no argument (their target was
//! given at load time, from the kernel BTF); iterators are checked when attached and run per
//! snapshot by [`crate::readers::iter`]. The attaching itself is in [`super`].
