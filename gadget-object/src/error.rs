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
    /// A section, symbol or relocation lies outside the data it belongs to, or a program
    /// section is not a whole number of instructions: a loader would read out of bounds.
    #[error("malformed ELF: section `{section}`: {reason}")]
    Bounds {
        /// The section.
        section: String,
        /// What is out of bounds.
        reason: String,
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
    /// The parser panicked (a bug): caught, so that no object can abort the caller.
    #[error(
        "cannot read the object: the parser failed ({reason}); this is a bug, please report it"
    )]
    Internal {
        /// The panic message.
        reason: String,
    },
}
