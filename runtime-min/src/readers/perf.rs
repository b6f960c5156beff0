//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY` tracers: one buffer per online CPU. Used when the kernel has
//! no ring buffers (the loader converts the gadget's ring buffer map), or when a gadget declares
//! a perf event array itself.

use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, RawFd};

use aya::maps::perf::{PerfEvent, PerfEventArrayBuffer};
use aya::maps::{Map, MapData, PerfEventArray};

use super::ReaderError;

/// Pages per CPU buffer (64 × 4 KiB = 256 KiB, like upstream's default).
const PAGES: usize = 64;

/// Per-CPU perf buffer readers.
pub struct PerfReader {
    bufs: Vec<PerfEventArrayBuffer<MapData>>,
    lost: u64,
    scratch: Vec<u8>,
}

impl PerfReader {
    /// Opens one buffer per online CPU.
    pub fn new(name: &str, map: Map) -> Result<PerfReader, ReaderError> {
        let aya_err = |what: String| {
            move |e: Box<dyn std::error::Error + Send + Sync>| ReaderError::Aya { what, source: e }
        };
        let mut array = PerfEventArray::try_from(map)
            .map_err(|e| aya_err(format!("cannot open perf event array `{name}`"))(Box::new(e)))?;
        let cpus = aya::util::online_cpus().map_err(|(path, e)| ReaderError::Io {
            what: format!("cannot read `{path}`"),
            source: e,
        })?;
        let mut bufs = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            let b = array.open(cpu, Some(PAGES)).map_err(|e| {
                aya_err(format!(
                    "cannot open the perf buffer of `{name}` on CPU {cpu}"
                ))(Box::new(e))
            })?;
            bufs.push(b);
        }
        Ok(PerfReader {
            bufs,
            lost: 0,
            scratch: Vec::new(),
        })
    }

    /// One descriptor per CPU buffer.
    pub fn fds(&self) -> Vec<RawFd> {
        self.bufs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Consumes available samples; counts lost-record notices.
    pub fn drain(&mut self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> u64 {
        let mut n = 0;
        let PerfReader {
            bufs,
            lost,
            scratch,
        } = self;
        for b in bufs.iter_mut() {
            if !b.readable() {
                continue;
            }
            let flow = b.try_fold((), |(), ev| match ev {
                PerfEvent::Sample { head, tail } => {
                    n += 1;
                    if tail.is_empty() {
                        f(head)
                    } else {
                        scratch.clear();
                        scratch.extend_from_slice(head);
                        scratch.extend_from_slice(tail);
                        f(scratch)
                    }
                }
                PerfEvent::Lost { count } => {
                    *lost += count;
                    ControlFlow::Continue(())
                }
            });
            if flow.is_break() {
                break;
            }
        }
        n
    }

    /// Samples the kernel dropped because a buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}
