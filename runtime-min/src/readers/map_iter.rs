//! Map iterators: every entry of a hash map, as `key ++ value` records.
//!
//! Key and value sizes are only known at run time; this uses the `BPF_MAP_GET_NEXT_KEY` and
//! `BPF_MAP_LOOKUP_ELEM` commands directly on the map's descriptor, into buffers it reuses.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _, RawFd};

use libbpf_rs::{MapCore as _, MapType};

use crate::load::Loaded;

use super::ReaderError;

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// `union bpf_attr` for the map element commands.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value_or_next_key: u64,
    flags: u64,
}

fn bpf(cmd: libc::c_long, attr: &mut MapElemAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid, initialised `union bpf_attr` prefix of the size passed, and the
    // key/value pointers in it point at buffers of the map's key and value sizes that outlive
    // the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut MapElemAttr,
            std::mem::size_of::<MapElemAttr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads hash maps.
pub struct MapDumper {
    fd: RawFd,
    map: String,
    key_size: usize,
    value_size: usize,
}

impl MapDumper {
    /// Prepares to dump `map` (which stays owned by `loaded`; keep it alive while dumping).
    pub fn new(
        loaded: &Loaded,
        map: &str,
        key_size: usize,
        value_size: usize,
    ) -> Result<MapDumper, ReaderError> {
        let m = loaded.map(map).ok_or_else(|| ReaderError::NoMap {
            map: map.to_string(),
        })?;
        if !matches!(m.map_type(), MapType::Hash | MapType::LruHash) {
            return Err(ReaderError::WrongMapType {
                map: map.to_string(),
                found: format!("{:?}", m.map_type()),
                expected: "hash map (BPF_MAP_TYPE_HASH or LRU_HASH)",
            });
        }
        Ok(MapDumper {
            fd: m.as_fd().as_raw_fd(),
            map: map.to_string(),
            key_size,
            value_size,
        })
    }

    /// Every entry as `key ++ value` (at most `limit` entries).
    pub fn dump(&self, limit: usize) -> Result<Vec<Vec<u8>>, ReaderError> {
        let io_err = |source: io::Error| ReaderError::Io {
            what: format!("cannot read map `{}`", self.map),
            source,
        };
        let mut out = Vec::new();
        let mut key = vec![0u8; self.key_size];
        let mut next = vec![0u8; self.key_size];
        let mut first = true;
        while out.len() < limit {
            let mut attr = MapElemAttr {
                map_fd: self.fd as u32,
                key: if first { 0 } else { key.as_ptr() as u64 },
                value_or_next_key: next.as_mut_ptr() as u64,
                ..MapElemAttr::default()
            };
            match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
                Err(e) => return Err(io_err(e)),
            }
            first = false;
            std::mem::swap(&mut key, &mut next);
            let mut record = vec![0u8; self.key_size + self.value_size];
            record[..self.key_size].copy_from_slice(&key);
            let (_, value) = record.split_at_mut(self.key_size);
            let mut attr = MapElemAttr {
                map_fd: self.fd as u32,
                key: key.as_ptr() as u64,
                value_or_next_key: value.as_mut_ptr() as u64,
                ..MapElemAttr::default()
            };
            match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
                Ok(()) => out.push(record),
                // Deleted between the two calls.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        Ok(out)
    }
}
