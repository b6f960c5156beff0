//! Decoder tests: synthetic records against the BTF of `testdata/decode_fixture.o`.

use gadget_object::GadgetObject;
use serde_json::json;

use super::*;

const FIXTURE: &[u8] = include_bytes!("../../testdata/decode_fixture.o");

const METADATA: &str = r#"
datasources:
  ev:
    fields:
      skipme:
        annotations:
          json.skip: true
      name:
        annotations:
          columns.width: 8
      u.a:
        annotations:
          template: signal
"#;

fn setup() -> (GadgetObject, Vec<Decoder>) {
    let obj = GadgetObject::parse(FIXTURE).expect("fixture parses");
    let md = Metadata::parse(METADATA).unwrap();
    let decoders = Decoder::for_object(
        &obj,
        Some(&md),
        Clock::with_offset(1_700_000_000_000_000_000),
    )
    .unwrap();
    (obj, decoders)
}

/// Byte offset of a flattened field of `struct event`.
fn off(obj: &GadgetObject, name: &str) -> usize {
    let fields = obj.data_source_fields("ev").unwrap().unwrap();
    fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .offset as usize
}

fn put(rec: &mut [u8], at: usize, bytes: &[u8]) {
    rec[at..at + bytes.len()].copy_from_slice(bytes);
}

#[test]
fn decodes_every_kind_of_field() {
    let (obj, decoders) = setup();
    let ev = decoders.iter().find(|d| d.name == "ev").unwrap();
    assert_eq!(ev.record_size, 224);
    let mut r = vec![0u8; ev.record_size];
    put(
        &mut r,
        off(&obj, "timestamp_raw"),
        &1_500_000_000u64.to_le_bytes(),
    );
    put(&mut r, off(&obj, "proc.comm"), b"cat\0");
    put(&mut r, off(&obj, "proc.pid"), &4242u32.to_le_bytes());
    put(&mut r, off(&obj, "proc.tid"), &4243u32.to_le_bytes());
    put(
        &mut r,
        off(&obj, "proc.mntns_id"),
        &4026531841u64.to_le_bytes(),
    );
    put(&mut r, off(&obj, "proc.creds.uid"), &1000u32.to_le_bytes());
    put(&mut r, off(&obj, "proc.parent.comm"), b"bash\0");
    put(&mut r, off(&obj, "proc.parent.pid"), &1u32.to_le_bytes());
    put(&mut r, off(&obj, "error_raw"), &2u32.to_le_bytes());
    put(&mut r, off(&obj, "err"), &13u32.to_le_bytes());
    put(
        &mut r,
        off(&obj, "flags_raw"),
        &((libc::O_WRONLY | libc::O_CREAT) as u32).to_le_bytes(),
    );
    put(&mut r, off(&obj, "mode_raw"), &0o100_644u32.to_le_bytes());
    put(&mut r, off(&obj, "sig"), &9u32.to_le_bytes());
    put(&mut r, off(&obj, "syscall_raw"), &0u64.to_le_bytes());
    put(&mut r, off(&obj, "dst"), &[192, 168, 1, 2]);
    put(&mut r, off(&obj, "dst.port"), &8080u16.to_le_bytes());
    put(&mut r, off(&obj, "dst.proto_raw"), &6u16.to_le_bytes());
    put(&mut r, off(&obj, "dst.version"), &[4]);
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    put(&mut r, off(&obj, "src"), &v6);
    put(&mut r, off(&obj, "src.version"), &[6]);
    put(&mut r, off(&obj, "op"), &2u32.to_le_bytes());
    put(&mut r, off(&obj, "ok"), &[1]);
    put(&mut r, off(&obj, "name"), b"ab\"c\n");
    put(&mut r, off(&obj, "bytes"), &[1, 2, 3]);
    put(&mut r, off(&obj, "neg"), &(-5i16).to_le_bytes());
    // bf1 = 5 (3 bits), bf2 = 17 (5 bits) share one byte; sbf = -3 (4 bits) in the next.
    let bf = off(&obj, "bf1");
    r[bf] = 5 | (17 << 3);
    r[bf + 1] = 0b1101;
    put(&mut r, off(&obj, "__secret"), &7u32.to_le_bytes());
    put(&mut r, off(&obj, "u.a"), &15u32.to_le_bytes());
    put(&mut r, off(&obj, "skipme"), &99u64.to_le_bytes());

    let v = ev.to_json_value(&r);
    let expected = json!({
        "timestamp_raw": 1_500_000_000u64,
        "timestamp": "2023-11-14T22:13:21.500000000Z",
        "proc.comm": "cat",
        "proc.pid": 4242,
        "proc.tid": 4243,
        "proc.mntns_id": 4026531841u64,
        "proc.creds.uid": 1000,
        "proc.creds.gid": 0,
        "proc.parent.comm": "bash",
        "proc.parent.pid": 1,
        "proc.parent.tid": 0,
        "error_raw": 2,
        "error": "ENOENT",
        "err": "EACCES",
        "flags_raw": libc::O_WRONLY | libc::O_CREAT,
        "flags": "O_WRONLY|O_CREAT",
        "mode_raw": 0o100_644,
        "mode": "-rw-r--r--",
        "sig": "SIGKILL",
        "syscall_raw": 0,
        "syscall": if cfg!(target_arch = "x86_64") { "read" } else { "io_setup" },
        "dst": "192.168.1.2:8080",
        "dst.proto": "TCP",
        "src": "::1",
        "op": "FIX_WRITE",
        "ok": true,
        "name": "ab\"c\n",
        "bytes": [1, 2, 3],
        "neg": -5,
        "bf1": 5,
        "bf2": 17,
        "sbf": -3,
        "u.a": "SIGTERM",
        "u.b": 15,
    });
    assert_eq!(v, expected, "got {v:#}");
    // Key order follows the struct.
    let mut out = Vec::new();
    ev.write_json(&r, None, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("{\"timestamp_raw\":1500000000,\"timestamp\":\"2023-11-14T22:13:21.500000000Z\",\"proc.comm\":\"cat\""));
    assert!(!text.contains("__secret") && !text.contains("__private") && !text.contains("skipme"));
}

#[test]
fn unknown_enum_values_and_short_records() {
    let (obj, decoders) = setup();
    let ev = decoders.iter().find(|d| d.name == "ev").unwrap();
    let mut r = vec![0u8; ev.record_size];
    put(&mut r, off(&obj, "op"), &7u32.to_le_bytes());
    put(&mut r, off(&obj, "name"), &[0xff, 0xfe, b'x', 0]);
    let v = ev.to_json_value(&r);
    assert_eq!(v["op"], json!(7));
    assert_eq!(v["name"], json!("\u{fffd}\u{fffd}x"));
    assert_eq!(v["dst"], json!(":0"), "version 0: no address");
    // A truncated record gives nulls for what is missing, never a panic.
    let v = ev.to_json_value(&r[..16]);
    assert_eq!(v["timestamp_raw"], json!(0));
    assert_eq!(v["proc.pid"], json!(null));
    assert_eq!(v["bytes"], json!(null));
}

#[test]
fn map_iterator_key_then_value() {
    let (_, decoders) = setup();
    let st = decoders.iter().find(|d| d.name == "stats").unwrap();
    assert_eq!(st.kind, DataSourceKind::MapIter);
    assert_eq!(st.key_size, 4);
    assert_eq!(st.record_size, 4 + 24);
    let mut r = vec![0u8; st.record_size];
    put(&mut r, 0, &77u32.to_le_bytes());
    put(&mut r, 4, &1234u64.to_le_bytes());
    put(&mut r, 12, b"dd\0");
    assert_eq!(
        st.to_json_value(&r),
        json!({"pid": 77, "bytes": 1234, "comm": "dd"})
    );
}

#[test]
fn column_texts_and_extra_members() {
    let (obj, decoders) = setup();
    let ev = decoders.iter().find(|d| d.name == "ev").unwrap();
    let mut r = vec![0u8; ev.record_size];
    put(&mut r, off(&obj, "proc.comm"), b"sh\0");
    let cols = ev.columns();
    let texts = ev.texts(&r);
    assert_eq!(cols.len(), texts.len());
    let i = cols.iter().position(|c| c.name == "proc.comm").unwrap();
    assert_eq!(texts[i], "sh");
    assert!(cols.iter().find(|c| c.name == "proc.pid").unwrap().numeric);
    // Integer columns know their widest value, so numbers cannot overflow them.
    let digits = |n: &str| cols.iter().find(|c| c.name == n).unwrap().max_digits;
    assert_eq!(digits("proc.pid"), 11);
    assert_eq!(digits("proc.mntns_id"), 20);
    assert_eq!(digits("proc.comm"), 0);
    assert_eq!(
        cols.iter().find(|c| c.name == "name").unwrap().annotations["columns.width"],
        "8"
    );
    let mut out = Vec::new();
    ev.write_json(&r, Some(b"\"datasource\":\"ev\""), &mut out);
    assert!(out.starts_with(b"{\"datasource\":\"ev\",\"timestamp_raw\":0,"));
}

#[test]
fn json_strings_are_escaped() {
    let mut out = Vec::new();
    push_json_str(&mut out, b"a\"b\\c\x01\td");
    assert_eq!(out, b"\"a\\\"b\\\\c\\u0001\\td\"");
    let mut out = Vec::new();
    push_u64(&mut out, 0);
    push_u64(&mut out, u64::MAX);
    assert_eq!(out, b"018446744073709551615");
}
