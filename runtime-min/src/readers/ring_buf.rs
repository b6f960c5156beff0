//! `BPF_MAP_TYPE_RINGBUF` tracers (kernel 5.8+): one shared buffer, records consumed in order.

use std::ops::ControlFlow;
use std::os::fd::RawFd;

use libbpf_rs::{Map, RingBuffer, RingBufferBuilder};

use super::ReaderError;
use super::queue::RecordQueue;

/// A ring buffer consumer. libbpf hands records to a callback; they are queued here and handed
/// out by [`RingReader::drain`], so a caller can stop in the middle and go on later.
pub struct RingReader {
    ring: RingBuffer<'static>,
    queue: RecordQueue,
}

impl RingReader {
    /// Opens the ring buffer (maps its pages).
    pub fn new(name: &str, map: &Map<'_>) -> Result<RingReader, ReaderError> {
        let queue = RecordQueue::default();
        let sink = queue.clone();
        let mut builder = RingBufferBuilder::new();
        let err = |e: libbpf_rs::Error| ReaderError::Libbpf {
            what: format!("cannot open ring buffer `{name}`"),
            source: Box::new(e),
        };
        builder
            .add(map, move |data: &[u8]| {
                sink.push(data);
                0
            })
            .map_err(err)?;
        let ring = builder.build().map_err(err)?;
        Ok(RingReader { ring, queue })
    }

    /// A descriptor that is readable when records are available (libbpf's epoll instance).
    pub fn fd(&self) -> RawFd {
        self.ring.epoll_fd()
    }

    /// Consumes available records.
    pub fn drain(&mut self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> u64 {
        if let Err(e) = self.ring.consume() {
            log::debug!("ring buffer consume: {e}");
        }
        self.queue.drain(f)
    }
}
