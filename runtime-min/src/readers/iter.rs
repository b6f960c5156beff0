//! Iterator snapshots: create a link for the `iter/...` program, open an iterator from it and
//! read until EOF. Each `bpf_seq_write()` of the program adds one fixed-size record.

use std::io::Read as _;

use aya::Ebpf;
use aya::programs::Program;

use super::ReaderError;

/// Runs iterator program `program` once and returns everything it wrote.
pub fn snapshot(ebpf: &mut Ebpf, program: &str) -> Result<Vec<u8>, ReaderError> {
    let Some(Program::Iter(p)) = ebpf.program_mut(program) else {
        return Err(ReaderError::NoIter {
            program: program.to_string(),
        });
    };
    let aya_err = |what: &str, e: Box<dyn std::error::Error + Send + Sync>| ReaderError::Aya {
        what: format!("iterator `{program}`: {what}"),
        source: e,
    };
    let id = p
        .attach()
        .map_err(|e| aya_err("cannot create the link", Box::new(e)))?;
    let link = p
        .take_link(id)
        .map_err(|e| aya_err("cannot take the link", Box::new(e)))?;
    let mut file = link
        .into_file()
        .map_err(|e| aya_err("cannot open the iterator", Box::new(e)))?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)
        .map_err(|source| ReaderError::Io {
            what: format!("iterator `{program}`: read failed"),
            source,
        })?;
    Ok(out)
}
