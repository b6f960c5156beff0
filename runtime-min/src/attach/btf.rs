//! BTF-attached programs: `tp_btf`, `fentry`, `fexit` attach with no argument (their target was
//! given at load time); iterators are checked here and run per snapshot by
//! [`crate::readers::iter`].

use aya::programs::{Iter, ProgramError};

/// Creates and drops an iterator link, proving the target exists and the program attaches.
pub fn check_iter(p: &mut Iter) -> Result<(), ProgramError> {
    let id = p.attach()?;
    p.detach(id)
}
