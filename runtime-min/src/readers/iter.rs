//! Iterator snapshots: create a link for the `iter/...` program, open an iterator from it and
//! read until EOF. Each `bpf_seq_write()` of the program adds one fixed-size record.

use std::io::Read as _;

use crate::load::Loaded;

use super::ReaderError;

/// Runs iterator program `program` once and returns everything it wrote.
pub fn snapshot(loaded: &Loaded, program: &str) -> Result<Vec<u8>, ReaderError> {
    let Some(p) = loaded
        .program(program)
        .filter(|p| p.prog_type() == libbpf_rs::ProgramType::Tracing)
    else {
        return Err(ReaderError::NoIter {
            program: program.to_string(),
        });
    };
    let err = |what: &str, e: libbpf_rs::Error| ReaderError::Libbpf {
        what: format!("iterator `{program}`: {what}"),
        source: Box::new(e),
    };
    let link = p.attach().map_err(|e| err("cannot create the link", e))?;
    let mut iter = libbpf_rs::Iter::new(&link).map_err(|e| err("cannot open the iterator", e))?;
    let mut out = Vec::new();
    iter.read_to_end(&mut out)
        .map_err(|source| ReaderError::Io {
            what: format!("iterator `{program}`: read failed"),
            source,
        })?;
    Ok(out)
}
