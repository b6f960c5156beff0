//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY` tracers: one buffer per online CPU. Used when the kernel has
//! no ring buffers (the loader converts the gadget's ring buffer map), or when a gadget declares
//! a perf event array itself.

use std::cell::Cell;
use std::ops::ControlFlow;
use std::os::fd::RawFd;
use std::rc::Rc;

use libbpf_rs::{Map, PerfBuffer, PerfBufferBuilder};

use super::ReaderError;
use super::queue::RecordQueue;

/// Pages per CPU buffer (64 × 4 KiB = 256 KiB, like upstream's default).
const PAGES: usize = 64;

/// Per-CPU perf buffer readers (libbpf's `perf_buffer`); samples are queued by its callback and
/// handed out by [`PerfReader::drain`].
pub struct PerfReader {
    buf: PerfBuffer<'static>,
    queue: RecordQueue,
    lost: Rc<Cell<u64>>,
}

impl PerfReader {
    /// Opens one buffer per online CPU.
    pub fn new(name: &str, map: &Map<'_>) -> Result<PerfReader, ReaderError> {
        let queue = RecordQueue::default();
        let lost: Rc<Cell<u64>> = Rc::default();
        let (sink, lost_sink) = (queue.clone(), Rc::clone(&lost));
        let buf = PerfBufferBuilder::new(map)
            .pages(PAGES)
            .sample_cb(move |_cpu: i32, data: &[u8]| sink.push(data))
            .lost_cb(move |_cpu: i32, count: u64| lost_sink.set(lost_sink.get() + count))
            .build()
            .map_err(|e| ReaderError::Libbpf {
                what: format!("cannot open the perf buffers of `{name}`"),
                source: Box::new(e),
            })?;
        Ok(PerfReader { buf, queue, lost })
    }

    /// A descriptor that is readable when any CPU buffer has data (libbpf's epoll instance).
    pub fn fds(&self) -> Vec<RawFd> {
        vec![self.buf.epoll_fd()]
    }

    /// Consumes available samples; counts lost-record notices.
    pub fn drain(&mut self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> u64 {
        if let Err(e) = self.buf.consume() {
            log::debug!("perf buffer consume: {e}");
        }
        self.queue.drain(f)
    }

    /// Samples the kernel dropped because a buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost.get()
    }
}
