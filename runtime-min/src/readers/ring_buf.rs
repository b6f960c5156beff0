//! `BPF_MAP_TYPE_RINGBUF` tracers (kernel 5.8+): one shared buffer, records consumed in order.

use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, RawFd};

use aya::maps::{Map, MapData, RingBuf};

use super::ReaderError;

/// A ring buffer consumer.
pub struct RingReader {
    ring: RingBuf<MapData>,
}

impl RingReader {
    /// Opens the ring buffer (maps its pages).
    pub fn new(name: &str, map: Map) -> Result<RingReader, ReaderError> {
        let ring = RingBuf::try_from(map).map_err(|e| ReaderError::Aya {
            what: format!("cannot open ring buffer `{name}`"),
            source: Box::new(e),
        })?;
        Ok(RingReader { ring })
    }

    /// The map's descriptor (readable when records are available).
    pub fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Consumes available records.
    pub fn drain(&mut self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> u64 {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            n += 1;
            if f(&item).is_break() {
                break;
            }
        }
        n
    }
}
