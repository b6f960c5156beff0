//! Tests against the compiled fixtures in `testdata/` (rebuilt by `testdata/build.sh`).

use super::*;

const GOOD: &[u8] = include_bytes!("../testdata/good.o");
const MINIMAL: &[u8] = include_bytes!("../testdata/minimal.o");
const MINIMAL_BE: &[u8] = include_bytes!("../testdata/minimal_be.o");
const MINIMAL_DWARF: &[u8] = include_bytes!("../testdata/minimal_dwarf.o");
const MINIMAL_NOBTF: &[u8] = include_bytes!("../testdata/minimal_nobtf.o");
const NO_LICENSE: &[u8] = include_bytes!("../testdata/no_license.o");
const BAD_TRACER: &[u8] = include_bytes!("../testdata/bad_tracer.o");
const BAD_PARAMS: &[u8] = include_bytes!("../testdata/bad_params.o");
const BAD_MAPITER: &[u8] = include_bytes!("../testdata/bad_mapiter.o");
const BAD_ITER: &[u8] = include_bytes!("../testdata/bad_iter.o");

fn parse(data: &[u8]) -> GadgetObject {
    GadgetObject::parse(data).unwrap()
}

fn messages(obj: &GadgetObject) -> Vec<String> {
    obj.check(Endianness::Little)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn assert_has(all: &[String], wanted: &str) {
    assert!(
        all.iter().any(|m| m == wanted),
        "missing {wanted:?} in:\n{}",
        all.join("\n")
    );
}

#[test]
fn good_object_passes_every_check() {
    let obj = parse(GOOD);
    assert_eq!(obj.check(Endianness::Little), vec![]);
    let elf = obj.elf();
    assert!(elf.is_64 && elf.has_btf && elf.has_btf_ext && elf.has_license && !elf.has_dwarf);
    assert_eq!(elf.machine, EM_BPF);
    assert_eq!(elf.endianness, Endianness::Little);
    assert_eq!(elf.license.as_deref(), Some("GPL"));
    assert!(obj.btf_ext().is_some_and(|e| e.func_info_count > 0));
}

#[test]
fn good_object_programs() {
    let obj = parse(GOOD);
    let progs: Vec<(&str, &str, &str)> = obj
        .programs()
        .iter()
        .map(|p| (p.name.as_str(), p.kind.name(), p.target.as_str()))
        .collect();
    assert_eq!(
        progs[0],
        ("trace_exec", "tracepoint", "syscalls/sys_enter_execve")
    );
    assert_eq!(
        obj.program("trace_exec").unwrap().kind,
        ProgramKind::Tracepoint {
            category: "syscalls".into(),
            name: "sys_enter_execve".into()
        }
    );
    assert!(obj.program("trace_exec").unwrap().insn_count > 2);
    assert_eq!(
        obj.program("disabled_prog").unwrap().kind,
        ProgramKind::Disabled
    );
    assert_eq!(
        obj.program("dump_tasks").unwrap().kind,
        ProgramKind::Iter {
            target: "task".into()
        }
    );
    assert_eq!(
        obj.program("uprobe_prog").unwrap().target,
        "/bin/bash:readline"
    );
    assert_eq!(
        obj.program("tc_prog").unwrap().kind,
        ProgramKind::Classifier
    );
    assert_eq!(
        obj.program("xdp_prog").unwrap().kind,
        ProgramKind::Other("xdp".into())
    );
    assert_eq!(obj.programs().len(), 22);
}

#[test]
fn good_object_maps() {
    let obj = parse(GOOD);
    let events = obj.map("events").unwrap();
    assert_eq!(
        (events.map_type, events.map_type_name.as_str()),
        (27, "BPF_MAP_TYPE_RINGBUF")
    );
    assert_eq!(events.max_entries, 256 * 1024);
    assert_eq!(
        events.max_entries_var.as_deref(),
        Some("events_max_entries")
    );
    let lost = obj.map("events_lost_samples").unwrap();
    assert_eq!(
        (
            lost.map_type,
            lost.key_size,
            lost.value_size,
            lost.max_entries
        ),
        (6, 4, 8, 1)
    );
    assert_eq!(obj.btf().type_name(lost.key_type_id.unwrap()), "__u32");
    let counts = obj.map("counts").unwrap();
    assert!(counts.is_hash());
    assert_eq!((counts.key_size, counts.value_size), (8, 16));
    assert_eq!(
        obj.btf().c_type(counts.key_type_id.unwrap()),
        "struct counts_key"
    );
}

#[test]
fn good_object_discovery() {
    let obj = parse(GOOD);
    assert_eq!(
        obj.tracers(),
        [Tracer {
            name: "exec".into(),
            map_name: "events".into(),
            struct_name: "event".into()
        }]
    );
    assert_eq!(
        obj.map_iters(),
        [MapIter {
            name: "counters".into(),
            map_name: "counts".into()
        }]
    );
    assert_eq!(
        obj.iters(),
        [
            Iter {
                name: "procs".into(),
                struct_name: "proc_entry".into(),
                programs: vec!["dump_tasks".into(), "dump_files".into()],
                snapshotter: false
            },
            Iter {
                name: "socks".into(),
                struct_name: "proc_entry".into(),
                programs: vec!["dump_socks".into()],
                snapshotter: true
            },
        ]
    );
    let names: Vec<_> = obj
        .data_sources()
        .into_iter()
        .map(|d| (d.name, d.kind.name(), d.structs))
        .collect();
    assert_eq!(
        names,
        [
            ("exec".to_string(), "tracer", vec!["event".to_string()]),
            ("procs".to_string(), "iter", vec!["proc_entry".to_string()]),
            ("socks".to_string(), "iter", vec!["proc_entry".to_string()]),
            (
                "counters".to_string(),
                "mapiter",
                vec!["counts_key".to_string(), "counts_value".to_string()]
            ),
        ]
    );
}

#[test]
fn good_object_params_and_defaults() {
    let obj = parse(GOOD);
    let names: Vec<_> = obj.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["targ_pid", "targ_comm", "targ_flag", "cfg"]);
    let pid = obj.param("targ_pid").unwrap();
    assert!(pid.exists && pid.is_const_volatile);
    assert_eq!(pid.section.as_deref(), Some(".rodata"));
    assert_eq!(pid.linkage, Some(VarLinkage::Global));
    assert_eq!(
        (pid.type_name.as_str(), pid.c_type.as_str(), pid.size),
        ("gadget_pid", "const volatile gadget_pid", 4)
    );
    assert_eq!(pid.default.as_deref(), Some(&42u32.to_le_bytes()[..]));
    assert_eq!(
        pid.default_string(Endianness::Little).as_deref(),
        Some("42")
    );
    let comm = obj.param("targ_comm").unwrap();
    assert!(comm.is_const_volatile, "array of const volatile counts");
    assert_eq!(comm.kind, FieldKind::String { len: 16 });
    assert_eq!(
        comm.default_string(Endianness::Little).as_deref(),
        Some("bash")
    );
    assert_eq!(
        obj.param("targ_flag")
            .unwrap()
            .default_string(Endianness::Little)
            .as_deref(),
        Some("false")
    );
}

#[test]
fn bitfields_decode_exactly_from_rodata_defaults() {
    // `const volatile struct cfg cfg = { .a = 5, .b = 17, .c = -3, .port = 0x1234, .neg = -7 }`
    let obj = parse(GOOD);
    let cfg = obj.param("cfg").unwrap();
    let record = cfg.default.clone().unwrap();
    let fields = obj
        .btf()
        .flatten_fields(obj.btf().struct_by_name("cfg").unwrap())
        .unwrap();
    let get = |n: &str| fields.iter().find(|f| f.name == n).unwrap();
    assert_eq!(
        get("a").bitfield,
        Some(Bitfield {
            bit_offset: 0,
            bits: 3
        })
    );
    assert_eq!(get("a").read_u64(&record, Endianness::Little), Some(5));
    assert_eq!(get("b").read_u64(&record, Endianness::Little), Some(17));
    assert_eq!(get("c").read_i64(&record, Endianness::Little), Some(-3));
    assert_eq!(
        get("port").read_u64(&record, Endianness::Little),
        Some(0x1234)
    );
    assert_eq!(get("neg").read_i64(&record, Endianness::Little), Some(-7));
    assert_eq!(get("neg").type_name, "__s8");
}

#[test]
fn big_endian_object_decodes_the_same_values() {
    let obj = parse(MINIMAL_BE);
    assert_eq!(obj.elf().endianness, Endianness::Big);
    assert_eq!(obj.btf().endianness(), Endianness::Big);
    assert!(
        obj.check(Endianness::Big).is_empty(),
        "{:?}",
        obj.check(Endianness::Big)
    );
    let msgs: Vec<String> = obj
        .check(Endianness::Little)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        msgs,
        ["error: object: is big-endian, but the target architecture is little-endian"]
    );

    let p = obj.param("defaults").unwrap();
    let record = p.default.clone().unwrap();
    let fields = obj.data_source_fields("exec").unwrap().unwrap();
    let get = |n: &str| fields.iter().find(|f| f.name == n).unwrap();
    for (endianness, obj) in [
        (Endianness::Big, &obj),
        (Endianness::Little, &parse(MINIMAL)),
    ] {
        let record = if endianness == Endianness::Big {
            record.clone()
        } else {
            obj.param("defaults").unwrap().default.clone().unwrap()
        };
        let fields = obj.data_source_fields("exec").unwrap().unwrap();
        let get = |n: &str| fields.iter().find(|f| f.name == n).unwrap();
        assert_eq!(
            get("pid").read_u64(&record, endianness),
            Some(0x0102_0304),
            "{endianness}"
        );
        assert_eq!(get("comm").read_string(&record).as_deref(), Some("hi"));
        assert_eq!(
            get("a").read_u64(&record, endianness),
            Some(5),
            "{endianness}"
        );
        assert_eq!(
            get("b").read_u64(&record, endianness),
            Some(17),
            "{endianness}"
        );
        assert_eq!(
            get("c").read_i64(&record, endianness),
            Some(-3),
            "{endianness}"
        );
    }
    assert_eq!(get("pid").type_name, "gadget_pid");
}

#[test]
fn flattened_event_fields_are_precise() {
    let obj = parse(GOOD);
    let fields = obj.data_source_fields("exec").unwrap().unwrap();
    let get = |n: &str| {
        fields
            .iter()
            .find(|f| f.name == n)
            .unwrap_or_else(|| panic!("no field {n}"))
    };
    let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "timestamp_raw",
            "proc",
            "proc.comm",
            "proc.pid",
            "proc.tid",
            "proc.mntns_id",
            "proc.creds",
            "proc.creds.uid",
            "proc.creds.gid",
            "proc.parent",
            "proc.parent.comm",
            "proc.parent.pid",
            "flags_raw",
            "error",
            "op",
            "a",
            "b",
            "c",
            "addr_raw",
            "addr_raw.v6",
            "addr_raw.v4",
            "anon_u32",
            "anon_u16",
            "fname",
            "__pad",
            "matrix",
            "flag",
            "ratio",
            "cv",
            "ptr",
            "big",
        ]
    );
    let ts = get("timestamp_raw");
    assert_eq!(
        (ts.offset, ts.size, ts.type_name.as_str()),
        (0, 8, "gadget_timestamp")
    );
    assert_eq!(
        ts.kind,
        FieldKind::Int {
            signed: false,
            bits: 64
        }
    );
    let proc_ = get("proc");
    assert_eq!(
        (proc_.offset, proc_.size, proc_.kind.clone()),
        (8, 64, FieldKind::Struct)
    );
    let parent_comm = get("proc.parent.comm");
    assert_eq!((parent_comm.offset, parent_comm.size), (8 + 40, 16));
    assert_eq!(
        (parent_comm.type_name.as_str(), parent_comm.c_type.as_str()),
        ("gadget_pcomm", "gadget_pcomm[16]")
    );
    assert_eq!(parent_comm.kind, FieldKind::String { len: 16 });
    assert_eq!(parent_comm.depth, 2);
    assert_eq!(fields[parent_comm.parent.unwrap()].name, "proc.parent");
    assert_eq!(get("proc.mntns_id").type_name, "gadget_mntns_id");
    let op = get("op");
    let FieldKind::Enum {
        signed: true,
        bits: 32,
        values,
    } = &op.kind
    else {
        panic!("{:?}", op.kind)
    };
    assert_eq!(
        values
            .iter()
            .map(|v| (v.name.as_str(), v.value))
            .collect::<Vec<_>>(),
        [("OP_READ", 0), ("OP_WRITE", 1), ("OP_NEG", -1)]
    );
    let FieldKind::Enum {
        signed: false,
        bits: 64,
        values,
    } = &get("big").kind
    else {
        panic!()
    };
    assert_eq!(values[1].value, 0xff_ffff_fff0);
    assert_eq!(
        get("b").bitfield,
        Some(Bitfield {
            bit_offset: 675,
            bits: 5
        })
    );
    assert_eq!((get("b").offset, get("b").size), (84, 1));
    assert_eq!(
        get("c").bitfield,
        Some(Bitfield {
            bit_offset: 680,
            bits: 4
        })
    );
    assert_eq!(
        get("addr_raw.v6").kind,
        FieldKind::Array {
            len: 16,
            elem_size: 1,
            elem: Box::new(FieldKind::Int {
                signed: false,
                bits: 8
            })
        }
    );
    assert_eq!(get("addr_raw").kind, FieldKind::Union);
    assert_eq!(
        (get("anon_u16").offset, get("anon_u16").parent),
        (104, None)
    );
    assert_eq!(get("fname").kind, FieldKind::String { len: 64 });
    assert!(get("__pad").hidden && !get("fname").hidden);
    assert_eq!(get("matrix").c_type, "__u32[2][3]");
    assert_eq!(get("matrix").size, 24);
    let FieldKind::Array {
        len: 2,
        elem_size: 12,
        elem,
    } = &get("matrix").kind
    else {
        panic!()
    };
    assert!(matches!(
        **elem,
        FieldKind::Array {
            len: 3,
            elem_size: 4,
            ..
        }
    ));
    assert_eq!(get("flag").kind, FieldKind::Bool);
    assert_eq!(get("ratio").kind, FieldKind::Float { bits: 64 });
    assert_eq!(get("cv").c_type, "const volatile __u64");
    assert_eq!(get("cv").type_name, "__u64");
    assert_eq!(get("ptr").kind, FieldKind::Pointer);
    assert_eq!(get("ptr").c_type, "void *");
}

#[test]
fn map_iterator_fields_are_key_then_value() {
    let obj = parse(GOOD);
    let fields = obj.data_source_fields("counters").unwrap().unwrap();
    let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["pid", "cpu", "count", "bytes"]);
    assert_eq!(
        fields[2].offset, 0,
        "value offsets are relative to the value"
    );
    assert!(obj.data_source_fields("nope").is_none());
    let MapIterFields { key, value } = obj.map_iter_fields("counters").unwrap().unwrap();
    assert_eq!(
        key.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["pid", "cpu"]
    );
    assert_eq!(key[0].type_name, "gadget_pid");
    assert_eq!(
        (value[1].name.as_str(), value[1].offset, value[1].size),
        ("bytes", 8, 8)
    );
    assert!(obj.map_iter_fields("exec").is_none());
    let bad = parse(BAD_MAPITER);
    assert!(bad.map_iter_fields("nomap").unwrap().is_err());
    assert!(bad.map_iter_fields("scalarvalue").unwrap().is_err());
}

#[test]
fn summary_serializes() {
    let obj = parse(GOOD);
    let json = serde_json::to_value(obj.summary()).unwrap();
    assert_eq!(json["programs"][0]["kind"], "tracepoint");
    assert_eq!(json["maps"][0]["type"], "BPF_MAP_TYPE_RINGBUF");
    assert_eq!(json["params"][0]["default"], "42");
    assert_eq!(json["params"][0]["type"], "const volatile gadget_pid");
    assert_eq!(json["datasources"][0]["name"], "exec");
    assert_eq!(json["datasources"][0]["fields"][2]["name"], "proc.comm");
    assert_eq!(
        json["datasources"][0]["fields"][2]["kind"]["kind"],
        "string"
    );
    assert_eq!(json["license"], "GPL");
    let programs = serde_json::to_value(obj.programs()).unwrap();
    assert_eq!(programs[0]["kind"]["tracepoint"]["category"], "syscalls");
    assert_eq!(programs[3]["kind"], "kprobe");
    assert_eq!(programs[21]["kind"]["other"], "xdp");
    serde_json::to_string(&obj.data_sources()).unwrap();
    serde_json::to_string(obj.params()).unwrap();
    serde_json::to_string(obj.maps()).unwrap();
    serde_json::to_string(&obj.check(Endianness::Big)).unwrap();
}

#[test]
fn missing_license_is_an_error() {
    let obj = parse(NO_LICENSE);
    assert_eq!(
        messages(&obj),
        ["error: section `license`: missing: declare `char LICENSE[] SEC(\"license\") = \"GPL\";`"]
    );
}

#[test]
fn dwarf_and_missing_btf_are_errors() {
    let msgs = messages(&parse(MINIMAL_DWARF));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].starts_with("error: object: DWARF left in the object (`.debug_"),
        "{msgs:?}"
    );
    let obj = parse(MINIMAL_NOBTF);
    assert!(obj.btf().is_empty());
    let msgs = messages(&obj);
    assert_has(
        &msgs,
        "error: section `.BTF`: missing: compile with `-g`; without BTF the runtime cannot understand the gadget",
    );
    assert_has(
        &msgs,
        "error: section `.BTF.ext`: missing: compile with `-g` and strip with `llvm-strip -g` only",
    );
}

#[test]
fn tracer_checks_name_the_culprit() {
    let msgs = messages(&parse(BAD_TRACER));
    assert_has(
        &msgs,
        "error: tracer `exec`: map `events` is BPF_MAP_TYPE_HASH, expected a ring buffer or perf event array",
    );
    assert_has(
        &msgs,
        "error: tracer `ghostly`: struct `ghost` not found in BTF",
    );
    assert_has(
        &msgs,
        "error: tracer `nomap`: map `missing` not found in `.maps`",
    );
    assert_has(
        &msgs,
        "error: marker `gadget_tracer_broken`: malformed name, expected `gadget_tracer_<name>___<map>___<struct>`",
    );
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
}

#[test]
fn param_checks_name_the_culprit() {
    let obj = parse(BAD_PARAMS);
    let msgs = messages(&obj);
    assert_has(
        &msgs,
        "error: param `nonconst`: variable is declared `volatile __u32`, expected `const volatile`",
    );
    assert_has(
        &msgs,
        "error: param `nonconst`: variable lives in `.data`, expected `.rodata`",
    );
    assert_has(
        &msgs,
        "error: param `in_data`: variable lives in `.data`, expected `.rodata`",
    );
    assert_has(
        &msgs,
        "error: param `only_const`: variable is declared `const __u32`, expected `const volatile`",
    );
    assert_has(
        &msgs,
        "error: param `hidden_static`: variable is static, expected a global",
    );
    assert_has(
        &msgs,
        "error: param `missing`: variable `missing` not found in BTF",
    );
    assert_eq!(msgs.len(), 6, "{msgs:#?}");
    assert_eq!(
        obj.param("in_data")
            .unwrap()
            .default_string(Endianness::Little)
            .as_deref(),
        Some("5")
    );
    assert_eq!(
        obj.param("hidden_static")
            .unwrap()
            .default_string(Endianness::Little)
            .as_deref(),
        Some("9")
    );
}

#[test]
fn map_iterator_checks_name_the_culprit() {
    let msgs = messages(&parse(BAD_MAPITER));
    assert_has(
        &msgs,
        "error: map iterator `mismatch`: key struct `k4` is 4 bytes, but map `sizes` has key_size 8",
    );
    assert_has(
        &msgs,
        "error: map iterator `notahash`: map `arr` is BPF_MAP_TYPE_ARRAY, expected a hash map (HASH, LRU_HASH, PERCPU_HASH or LRU_PERCPU_HASH)",
    );
    assert_has(
        &msgs,
        "error: map iterator `notahash`: key of map `arr` is `__u32`, expected a struct",
    );
    assert_has(
        &msgs,
        "error: map iterator `scalarvalue`: value of map `scalar` is `__u64`, expected a struct",
    );
    assert_has(
        &msgs,
        "error: map iterator `nomap`: map `nowhere` not found in `.maps`",
    );
    assert_eq!(msgs.len(), 5, "{msgs:#?}");
}

#[test]
fn iterator_checks_name_the_culprit() {
    let msgs = messages(&parse(BAD_ITER));
    assert_has(
        &msgs,
        "error: iterator `tasks`: program `not_an_iter` is in section `kprobe/vfs_read`, expected an `iter/...` section",
    );
    assert_has(
        &msgs,
        "error: iterator `files`: program `no_such_prog` not found",
    );
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
}

#[test]
fn not_elf_and_wrong_machine() {
    let err = GadgetObject::parse(b"\x7fELX....").unwrap_err();
    assert!(matches!(err, ObjectError::NotElf { .. }), "{err}");
    let mut bytes = MINIMAL.to_vec();
    bytes[18] = 62; // e_machine = EM_X86_64 (little-endian u16 at offset 18)
    bytes[19] = 0;
    let msgs = messages(&parse(&bytes));
    assert_eq!(
        msgs,
        ["error: object: e_machine is 62 (x86-64), expected 247 (EM_BPF): not an eBPF object"]
    );
}

#[test]
fn corrupted_btf_is_an_error_naming_the_section() {
    let aligned = elf::AlignedCopy::new(GOOD);
    let obj_bytes = aligned.as_slice();
    let raw = elf::parse(obj_bytes).unwrap();
    let btf = raw.section(".BTF").unwrap();
    let start = btf.data.unwrap().as_ptr() as usize - obj_bytes.as_ptr() as usize;
    let mut bytes = obj_bytes.to_vec();
    // type_len = huge
    bytes[start + 12..start + 16].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let err = GadgetObject::parse(&bytes).unwrap_err();
    assert_eq!(err.to_string(), "malformed `.BTF` section");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.starts_with("bad header: type section"), "{source}");
}

/// Flips and truncates bytes all over real objects: parsing may fail, but must never panic, and
/// whatever parses must survive every accessor. `GADGET_OBJECT_FUZZ_ROUNDS` raises the number of
/// rounds per base object (default 1500) for a longer local run.
#[test]
fn hostile_mutations_never_panic() {
    let rounds: u32 = std::env::var("GADGET_OBJECT_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1500);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for base in [GOOD, MINIMAL_BE, BAD_MAPITER] {
        let aligned = elf::AlignedCopy::new(base);
        let base = aligned.as_slice();
        let raw = elf::parse(base).unwrap();
        let btf = raw.section(".BTF").unwrap().data.unwrap();
        let btf_start = btf.as_ptr() as usize - base.as_ptr() as usize;
        let btf_len = btf.len();
        for round in 0..rounds {
            let mut bytes = base.to_vec();
            let flips = 1 + next() % 8;
            for _ in 0..flips {
                // Mostly inside .BTF, sometimes anywhere.
                let at = if round % 4 == 0 {
                    next() as usize % bytes.len()
                } else {
                    btf_start + next() as usize % btf_len
                };
                bytes[at] = next() as u8;
            }
            if round % 10 == 0 {
                bytes.truncate(next() as usize % bytes.len());
            }
            if let Ok(obj) = GadgetObject::parse(&bytes) {
                let _ = obj.check(Endianness::Little);
                let _ = obj.summary();
                for ds in obj.data_sources() {
                    let _ = obj.data_source_fields(&ds.name);
                }
                for id in 0..obj.btf().len() as u32 {
                    let _ = obj.btf().c_type(id);
                    let _ = obj.btf().field_kind(id);
                    let _ = obj.btf().flatten_fields(id);
                    let _ = obj.btf().size_of(id);
                }
            }
        }
    }
}

/// Section headers of a little-endian ELF64 object: (offset of the header, type, flags).
fn section_headers(o: &[u8]) -> Vec<(usize, u32, u64)> {
    let u16_at = |at: usize| u16::from_le_bytes(o[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(o[at..at + 8].try_into().unwrap());
    let (shoff, shentsize, shnum) = (u64_at(0x28) as usize, u16_at(0x3a), u16_at(0x3c));
    (1..shnum)
        .map(|i| {
            let h = shoff + i * shentsize;
            let ty = u32::from_le_bytes(o[h + 4..h + 8].try_into().unwrap());
            (h, ty, u64_at(h + 8))
        })
        .collect()
}

fn u64_field(o: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(o[at..at + 8].try_into().unwrap())
}

fn set_u64(o: &mut [u8], at: usize, v: u64) {
    o[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn bounds_error(o: &[u8]) -> String {
    match GadgetObject::parse(o) {
        Err(e @ ObjectError::Bounds { .. }) => e.to_string(),
        other => panic!("expected a bounds error, got {other:?}"),
    }
}

/// Issue 12 row 3: a program section that is not whole instructions (aya-obj panicked
/// slicing it) is refused, naming the section.
#[test]
fn program_section_not_a_multiple_of_8_is_refused() {
    let mut o = GOOD.to_vec();
    let (h, _, _) = *section_headers(&o)
        .iter()
        .find(|(h, _, flags)| flags & 4 != 0 && u64_field(&o, h + 32) >= 16)
        .expect("a program section");
    let size = u64_field(&o, h + 32);
    set_u64(&mut o, h + 32, size - 3);
    let e = bounds_error(&o);
    assert!(
        e.contains(&format!(
            "a program section of {} bytes, not a whole number of 8-byte instructions",
            size - 3
        )),
        "{e}"
    );
    assert!(e.starts_with("malformed ELF: section `"), "{e}");
}

#[test]
fn relocation_past_its_section_is_refused() {
    let mut o = GOOD.to_vec();
    let (h, _, _) = *section_headers(&o)
        .iter()
        .find(|(_, ty, _)| *ty == 9) // SHT_REL
        .expect("a relocation section");
    let entries = u64_field(&o, h + 24) as usize;
    set_u64(&mut o, entries, 0x7fff_fff8); // r_offset of the first relocation
    let e = bounds_error(&o);
    assert!(
        e.contains("a relocation at offset 0x7ffffff8 lies past"),
        "{e}"
    );
}

#[test]
fn symbol_past_its_section_is_refused() {
    let mut o = GOOD.to_vec();
    let (h, _, _) = *section_headers(&o)
        .iter()
        .find(|(_, ty, _)| *ty == 2) // SHT_SYMTAB
        .expect("a symbol table");
    let (table, size) = (
        u64_field(&o, h + 24) as usize,
        u64_field(&o, h + 32) as usize,
    );
    // The first function symbol (STT_FUNC = 2): its st_size becomes huge.
    let sym = (table..table + size)
        .step_by(24)
        .find(|s| o[s + 4] & 0xf == 2)
        .expect("a function symbol");
    set_u64(&mut o, sym + 16, u64::MAX - 4);
    let e = bounds_error(&o);
    assert!(e.contains("ends past the section's"), "{e}");
}

#[test]
fn every_fixture_passes_the_bounds_checks() {
    for o in [
        GOOD,
        MINIMAL,
        MINIMAL_BE,
        MINIMAL_DWARF,
        MINIMAL_NOBTF,
        NO_LICENSE,
        BAD_TRACER,
    ] {
        GadgetObject::parse(o).unwrap();
    }
    GadgetObject::parse(include_bytes!("../testdata/rust_trace_exec.o")).unwrap();
}
