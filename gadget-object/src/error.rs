//! The one error type of this crate.

use crate::btf::BtfError;

/// Why an object could not be parsed at all. Problems that still leave a readable object (a
/// missing license, a tracer naming a missing map) are [`crate::Diagnostic`]s instead.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The data is not an ELF file.
    #[error("not an ELF file (first bytes {magic:02x?})")]
    NotElf {
        /// Up to the first four bytes.
        magic: Vec<u8>,
    },
    /// The ELF structure is malformed.
    #[error("malformed ELF: {what}")]
    Elf {
        /// What could not be read (`section headers`, `section 5 name`, ...).
        what: String,
        /// The `object` crate's reason.
        #[source]
        source: object::read::Error,
    },
    /// `.BTF` or `.BTF.ext` is malformed.
    #[error("malformed `{section}` section")]
    Btf {
        /// `.BTF` or `.BTF.ext`.
        section: String,
        /// Where and why.
        #[source]
        source: BtfError,
    },
}
