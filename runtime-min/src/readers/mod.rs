//! Reading a gadget's data sources: tracers ([`ring_buf`], [`perf`]), iterators ([`iter`]) and
//! map iterators ([`map_iter`]), plus the `<map>_lost_samples` counters ([`lost_samples`]).
//!
//! Readers hand out raw record bytes; decoding is [`crate::decode`]'s job.

pub mod iter;
pub mod map_iter;
pub mod perf;
mod queue;
pub mod ring_buf;

use std::ops::ControlFlow;
use std::os::fd::RawFd;

use libbpf_rs::{MapCore as _, MapFlags, MapType};

use crate::load::Loaded;

/// A data source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The map is missing from the loaded object.
    #[error("map `{map}` is not in the loaded object")]
    NoMap {
        /// The map.
        map: String,
    },
    /// The map is not of a kind this reader handles.
    #[error("map `{map}` is a {found}, expected {expected}")]
    WrongMapType {
        /// The map.
        map: String,
        /// What it is.
        found: String,
        /// What the reader needs.
        expected: &'static str,
    },
    /// A program is missing or not an iterator.
    #[error("program `{program}` is not a loaded iterator")]
    NoIter {
        /// The program.
        program: String,
    },
    /// libbpf failed.
    #[error("{what}")]
    Libbpf {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A syscall failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The records of one tracer: a ring buffer, or per-CPU perf buffers.
pub enum TracerReader {
    /// `BPF_MAP_TYPE_RINGBUF`.
    Ring(ring_buf::RingReader),
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
    Perf(perf::PerfReader),
}

impl TracerReader {
    /// Opens the tracer's map (which stays owned by `loaded`; keep it alive while reading).
    pub fn open(loaded: &Loaded, map: &str) -> Result<TracerReader, ReaderError> {
        let m = loaded.map(map).ok_or_else(|| ReaderError::NoMap {
            map: map.to_string(),
        })?;
        match m.map_type() {
            MapType::RingBuf => ring_buf::RingReader::new(map, &m).map(TracerReader::Ring),
            MapType::PerfEventArray => perf::PerfReader::new(map, &m).map(TracerReader::Perf),
            other => Err(ReaderError::WrongMapType {
                map: map.to_string(),
                found: format!("{other:?}"),
                expected: "ring buffer or perf event array",
            }),
        }
    }

    /// Descriptors to poll for readability.
    pub fn fds(&self) -> Vec<RawFd> {
        match self {
            TracerReader::Ring(r) => vec![r.fd()],
            TracerReader::Perf(p) => p.fds(),
        }
    }

    /// Hands every available record to `f` until it breaks. Returns how many were handed out.
    pub fn drain(&mut self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> u64 {
        match self {
            TracerReader::Ring(r) => r.drain(f),
            TracerReader::Perf(p) => p.drain(f),
        }
    }

    /// Records the kernel reported as lost (perf buffers only; ring buffer drops are counted by
    /// the program in `<map>_lost_samples`).
    pub fn lost(&self) -> u64 {
        match self {
            TracerReader::Ring(_) => 0,
            TracerReader::Perf(p) => p.lost(),
        }
    }
}

/// Sum over CPUs of `<map>_lost_samples[0]`, when the gadget has that counter.
pub fn lost_samples(loaded: &Loaded, map: &str) -> Option<u64> {
    let m = loaded.map(&format!("{map}_lost_samples"))?;
    if m.map_type() != MapType::PercpuArray || m.value_size() != 8 {
        return None;
    }
    let values = m.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY).ok()??;
    Some(
        values
            .iter()
            .filter_map(|v| {
                v.get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
            })
            .sum(),
    )
}
