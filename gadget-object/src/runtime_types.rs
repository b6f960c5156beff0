//! Types the gadget runtime provides to CO-RE, not the kernel: the socket enricher's
//! `struct gadget_socket_key` and `struct gadget_socket_value`.
//!
//! Upstream's gadgets declare the socket enricher map (`gadget_sockets`, from
//! `<gadget/sockets-map.h>`) and read its values with CO-RE (`preserve_access_index`). In
//! upstream's runtime those types come from the socket enricher's own BTF; no kernel has them.
//! The loader appends these definitions to the target BTF it gives libbpf (`btf_custom_path`), so
//! the relocations resolve, and sizes the map by them.
//!
//! Layout (offsets in bytes), the SDK's (`<gadget/types.h>`, `GADGET_SOCKET_PATH_MAX` 512):
//! `gadget_socket_value { u64 mntns @0; u64 pid_tgid @8; u64 uid_gid @16; char task[16] @24;
//! char ptask[16] @40; u64 sock @56; u64 deletion_timestamp @64; char cwd[512] @72; char
//! exepath[512] @584; u32 ppid @1096; u32 ptid @1100; char ipv6only @1104 }` (1112 bytes);
//! `gadget_socket_key { u32 netns @0; u16 family @4; u8 proto @6; u16 port @8 }` (12 bytes). This runtime runs no socket enricher, so
//! the map stays empty: lookups miss and gadgets take their "no socket" path.

use crate::btf::raw::{BtfBuilder, kind};

/// The struct names this module provides.
pub const SOCKET_TYPES: [&str; 2] = ["gadget_socket_value", "gadget_socket_key"];

/// Size of `struct gadget_socket_value`.
pub const SOCKET_VALUE_SIZE: u32 = 1112;

/// Length of the `cwd` and `exepath` members.
const PATH_MAX: u32 = 512;

/// `BTF_INT_SIGNED`.
const INT_SIGNED: u32 = 1;

fn int(b: &mut BtfBuilder, name: &str, bytes: u32, signed: bool) -> u32 {
    let n = b.add_string(name);
    let encoding = if signed { INT_SIGNED } else { 0 };
    b.add_type(n, kind::INT, 0, bytes, &[(encoding << 24) | (bytes * 8)])
}

fn structure(b: &mut BtfBuilder, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
    let n = b.add_string(name);
    let mut words = Vec::new();
    for (field, ty, byte_off) in members {
        let f = b.add_string(field);
        words.extend_from_slice(&[f, *ty, byte_off * 8]);
    }
    b.add_type(n, kind::STRUCT, members.len() as u32, size, &words)
}

/// Appends the socket enricher's types to `b`.
pub fn add_socket_types(b: &mut BtfBuilder) {
    let u8_ = int(b, "unsigned char", 1, false);
    let u16_ = int(b, "unsigned short", 2, false);
    let u32_ = int(b, "unsigned int", 4, false);
    let u64_ = int(b, "unsigned long long", 8, false);
    let char_ = int(b, "char", 1, true);
    let comm = b.add_type(0, kind::ARRAY, 0, 0, &[char_, u32_, 16]);
    let path = b.add_type(0, kind::ARRAY, 0, 0, &[char_, u32_, PATH_MAX]);
    structure(
        b,
        "gadget_socket_value",
        SOCKET_VALUE_SIZE,
        &[
            ("mntns", u64_, 0),
            ("pid_tgid", u64_, 8),
            ("uid_gid", u64_, 16),
            ("task", comm, 24),
            ("ptask", comm, 40),
            ("sock", u64_, 56),
            ("deletion_timestamp", u64_, 64),
            ("cwd", path, 72),
            ("exepath", path, 72 + PATH_MAX),
            ("ppid", u32_, 72 + 2 * PATH_MAX),
            ("ptid", u32_, 76 + 2 * PATH_MAX),
            ("ipv6only", char_, 80 + 2 * PATH_MAX),
        ],
    );
    structure(
        b,
        "gadget_socket_key",
        12,
        &[
            ("netns", u32_, 0),
            ("family", u16_, 4),
            ("proto", u8_, 6),
            ("port", u16_, 8),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::raw::RawBtf;

    #[test]
    fn appended_types_parse_and_have_the_documented_layout() {
        let empty = RawBtf::empty_blob();
        let raw = RawBtf::parse(&empty).unwrap();
        let mut b = BtfBuilder::new(&raw);
        add_socket_types(&mut b);
        let blob = b.finish();
        let out = RawBtf::parse(&blob).unwrap();
        let v = out.find("gadget_socket_value", kind::STRUCT).unwrap();
        assert_eq!(out.get(v).unwrap().size_or_type, SOCKET_VALUE_SIZE);
        let names: Vec<&str> = out
            .members(v)
            .iter()
            .map(|m| out.str_at(m.name_off))
            .collect();
        assert_eq!(names[0], "mntns");
        assert_eq!(names.last(), Some(&"ipv6only"));
        assert!(out.find("gadget_socket_key", kind::STRUCT).is_some());
    }
}
