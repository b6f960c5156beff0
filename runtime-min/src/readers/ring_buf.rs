//! `BPF_MAP_TYPE_RINGBUF` tracers (kernel 5.8+): one shared buffer, records consumed in order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::os::fd::RawFd;
use std::rc::Rc;

use libbpf_rs::{Map, RingBuffer, RingBufferBuilder};

use super::ReaderError;

/// A ring buffer consumer. libbpf hands records to a callback; they are queued here and handed
/// out by [`RingReader::drain`], so a caller can stop in the middle and go on later.
pub struct RingReader {
    ring: RingBuffer<'static>,
    queue: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl RingReader {
    /// Opens the ring buffer (maps its pages).
    pub fn new(name: &str, map: &Map<'_>) -> Result<RingReader, ReaderError> {
        let queue: Rc<RefCell<VecDeque<Vec<u8>>>> = Rc::default();
        let sink = Rc::clone(&queue);
        let mut builder = RingBufferBuilder::new();
        let err = |e: libbpf_rs::Error| ReaderError::Libbpf {
            what: format!("cannot open ring buffer `{name}`"),
            source: Box::new(e),
        };
        builder
            .add(map, move |data: &[u8]| {
                sink.borrow_mut().push_back(data.to_vec());
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
        let mut n = 0;
        loop {
            let Some(rec) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            n += 1;
            if f(&rec).is_break() {
                break;
            }
        }
        n
    }
}
