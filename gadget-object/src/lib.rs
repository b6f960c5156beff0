//! Pure parsing of gadget eBPF objects: ELF, BTF, gadget feature discovery and build-time checks.
//!
//! This crate reads an eBPF ELF object as clang writes it for an Inspektor Gadget gadget and
//! answers what the gadget declares: its programs and how they attach, its maps, the data sources
//! (tracers, iterators, map iterators) and parameters it declares through the SDK's marker globals
//! (`docs/gadget-sdk.md` §1), and the flattened fields of every data source's struct, precise
//! enough to decode records at runtime. [`GadgetObject::check`] runs the object checks of §5.
//!
//! It makes no syscalls, starts no processes and touches no network or file: it works on a byte
//! slice. Loading and attaching belong to a runtime; compiling belongs to `ig-image`'s build.
//! Malformed input gives an [`ObjectError`] naming the section and offset, never a panic.
//!
//! [`yaml`] is the one hardened loader for gadget.yaml, build.yaml and artifacthub-pkg.yml,
//! shared by ig-image and the runtime (size, depth, node and alias-expansion limits).
//!
//! ```no_run
//! # fn demo(bytes: &[u8]) -> Result<(), gadget_object::ObjectError> {
//! use gadget_object::{Endianness, GadgetObject};
//! let obj = GadgetObject::parse(bytes)?;
//! for d in obj.check(Endianness::Little) {
//!     eprintln!("{d}");
//! }
//! for t in obj.tracers() {
//!     let id = obj.btf().struct_by_name(&t.struct_name).unwrap();
//!     for f in obj.btf().flatten_fields(id).unwrap() {
//!         println!("{} {} @{}", f.name, f.c_type, f.offset);
//!     }
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod btf;
mod check;
mod discovery;
mod elf;
pub mod elf_patch;
mod error;
mod map;
mod program;
pub mod runtime_types;
mod summary;
pub mod yaml;

use serde::Serialize;

pub use btf::{Bitfield, Btf, BtfError, BtfExt, EnumValue, Field, FieldKind, VarLinkage};
pub use check::{Diagnostic, Severity};
pub use discovery::{Iter, MapIter, Param, ProgramTarget, TargetKind, Tracer};
pub use elf::{EM_BPF, ElfInfo, Endianness};
pub use error::ObjectError;
pub use map::{Map, map_type_name};
pub use program::{Program, ProgramKind, classify_section};
pub use summary::{DataSourceSummary, MapSummary, ObjectSummary, ParamSummary, ProgramSummary};

/// A parsed gadget object. Owns everything it needs; the input slice can be dropped.
#[derive(Debug, Clone)]
pub struct GadgetObject {
    elf: ElfInfo,
    btf: Btf,
    btf_ext: Option<BtfExt>,
    programs: Vec<Program>,
    maps: Vec<Map>,
    tracers: Vec<Tracer>,
    iters: Vec<Iter>,
    map_iters: Vec<MapIter>,
    params: Vec<Param>,
    targets: Vec<ProgramTarget>,
    problems: Vec<Diagnostic>,
}

/// Which kind of data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSourceKind {
    /// `GADGET_TRACER`: a stream of events from a ring buffer / perf event array.
    Tracer,
    /// `GADGET_ITER` / `GADGET_SNAPSHOTTER`: snapshots from `iter/` programs.
    Iter,
    /// `GADGET_MAPITER`: periodic reads of a hash map.
    MapIter,
}

impl DataSourceKind {
    /// `tracer`, `iter` or `mapiter`.
    pub fn name(self) -> &'static str {
        match self {
            DataSourceKind::Tracer => "tracer",
            DataSourceKind::Iter => "iter",
            DataSourceKind::MapIter => "mapiter",
        }
    }
}

/// A data source of any kind, in one shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataSource {
    /// Name (the key under `datasources:` in gadget.yaml).
    pub name: String,
    /// Kind.
    pub kind: DataSourceKind,
    /// The map, for tracers and map iterators.
    pub map: Option<String>,
    /// Struct names: the event/entry struct, or key then value struct for map iterators (empty
    /// when the map declares no struct types).
    pub structs: Vec<String>,
    /// Programs, for iterators.
    pub programs: Vec<String>,
}

/// The key and value fields of a map iterator, each relative to its own buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapIterFields {
    /// The key struct's flattened fields.
    pub key: Vec<Field>,
    /// The value struct's flattened fields.
    pub value: Vec<Field>,
}

impl GadgetObject {
    /// Parses an eBPF object.
    ///
    /// Fails only when the object cannot be read at all (not ELF, malformed ELF, malformed BTF).
    /// Anything else, including a wrong `e_machine` or a missing `.BTF`, parses, and is reported
    /// by [`GadgetObject::check`].
    ///
    /// Every section, symbol and relocation bound a loader relies on is checked here
    /// ([`ObjectError::Bounds`]), so `inspect`, `check` and the runtime refuse the same objects.
    /// As a last guard a panic in the parser becomes [`ObjectError::Internal`] (except when
    /// fuzzing, where it must surface).
    pub fn parse(data: &[u8]) -> Result<GadgetObject, ObjectError> {
        #[cfg(not(fuzzing))]
        {
            std::panic::catch_unwind(|| Self::parse_unguarded(data)).unwrap_or_else(|panic| {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(ObjectError::Internal { reason })
            })
        }
        #[cfg(fuzzing)]
        Self::parse_unguarded(data)
    }

    fn parse_unguarded(data: &[u8]) -> Result<GadgetObject, ObjectError> {
        // The `object` crate reads headers in place and needs them aligned; a slice from
        // `include_bytes!` or from the middle of a buffer may not be.
        let copy;
        let data = if data.as_ptr().align_offset(8) == 0 {
            data
        } else {
            copy = elf::AlignedCopy::new(data);
            copy.as_slice()
        };
        let raw = elf::parse(data)?;
        let endianness = raw.info.endianness;
        let btf_err = |section: &str| {
            let section = section.to_string();
            move |source| ObjectError::Btf { section, source }
        };
        let btf = match raw.section(".BTF").and_then(|s| s.data) {
            Some(bytes) => {
                let btf = Btf::parse(bytes).map_err(btf_err(".BTF"))?;
                if btf.endianness() != endianness {
                    return Err(ObjectError::Btf {
                        section: ".BTF".to_string(),
                        source: BtfError::BadHeader {
                            reason: format!(
                                "BTF is {}, but the ELF file is {endianness}",
                                btf.endianness()
                            ),
                        },
                    });
                }
                btf
            }
            None => Btf::empty(endianness),
        };
        let btf_ext = match raw.section(".BTF.ext").and_then(|s| s.data) {
            Some(bytes) if !btf.is_empty() => {
                Some(BtfExt::parse(bytes, &btf).map_err(btf_err(".BTF.ext"))?)
            }
            _ => None,
        };

        let mut problems = Vec::new();
        let found = discovery::discover(&btf, &mut problems);
        let maps = map::parse_maps(&btf, &raw, endianness, &mut problems);

        let mut programs: Vec<(usize, u64, Program)> = raw
            .symbols
            .iter()
            .filter(|s| s.is_func)
            .filter_map(|s| {
                let section = raw.section_by_index(s.section?)?;
                if !section.executable || section.name == ".text" {
                    return None;
                }
                let (kind, target) = program::classify_section(&section.name);
                Some((
                    section.index,
                    s.value,
                    Program {
                        name: s.name.clone(),
                        section: section.name.clone(),
                        kind,
                        target,
                        insn_count: s.size / 8,
                        global: s.global,
                    },
                ))
            })
            .collect();
        programs.sort_by_key(|(section, value, _)| (*section, *value));
        let programs = programs.into_iter().map(|(_, _, p)| p).collect();

        let params = found
            .param_names
            .iter()
            .map(|name| {
                let rust_form = found.rust_params.contains(name);
                discovery::resolve_param(&btf, &raw, name, rust_form)
            })
            .collect();

        Ok(GadgetObject {
            elf: raw.info,
            btf,
            btf_ext,
            programs,
            maps,
            tracers: found.tracers,
            iters: found.iters,
            map_iters: found.map_iters,
            params,
            targets: found.targets,
            problems,
        })
    }

    /// ELF facts.
    pub fn elf(&self) -> &ElfInfo {
        &self.elf
    }

    /// The object's BTF (empty, holding only `void`, when there is no `.BTF`).
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// The parsed `.BTF.ext`, if present.
    pub fn btf_ext(&self) -> Option<&BtfExt> {
        self.btf_ext.as_ref()
    }

    /// Programs, in section order.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// A program by symbol name.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// Maps, in declaration order.
    pub fn maps(&self) -> &[Map] {
        &self.maps
    }

    /// A map by name.
    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// Tracers (`GADGET_TRACER`).
    pub fn tracers(&self) -> &[Tracer] {
        &self.tracers
    }

    /// Iterators (`GADGET_ITER`, `GADGET_SNAPSHOTTER`).
    pub fn iters(&self) -> &[Iter] {
        &self.iters
    }

    /// Map iterators (`GADGET_MAPITER`).
    pub fn map_iters(&self) -> &[MapIter] {
        &self.map_iters
    }

    /// Parameters (`GADGET_PARAM`), each resolved to its variable.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// A parameter by variable name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Program-to-map bindings (`GADGET_ITER_TARGET_MAP`, `GADGET_SK_TARGET_MAP`).
    pub fn program_targets(&self) -> &[ProgramTarget] {
        &self.targets
    }

    /// Problems found while discovering features (malformed marker names, map definitions that
    /// are not libbpf-style). Also included in [`GadgetObject::check`].
    pub fn discovery_problems(&self) -> &[Diagnostic] {
        &self.problems
    }

    /// Every data source: tracers, then iterators, then map iterators.
    pub fn data_sources(&self) -> Vec<DataSource> {
        let mut out = Vec::new();
        for t in &self.tracers {
            out.push(DataSource {
                name: t.name.clone(),
                kind: DataSourceKind::Tracer,
                map: Some(t.map_name.clone()),
                structs: vec![t.struct_name.clone()],
                programs: Vec::new(),
            });
        }
        for i in &self.iters {
            out.push(DataSource {
                name: i.name.clone(),
                kind: DataSourceKind::Iter,
                map: None,
                structs: vec![i.struct_name.clone()],
                programs: i.programs.clone(),
            });
        }
        for mi in &self.map_iters {
            let structs = self
                .map(&mi.map_name)
                .map(|m| {
                    [m.key_type_id, m.value_type_id]
                        .into_iter()
                        .flatten()
                        .map(|t| self.btf.name(self.btf.resolve(t)).to_string())
                        .collect()
                })
                .unwrap_or_default();
            out.push(DataSource {
                name: mi.name.clone(),
                kind: DataSourceKind::MapIter,
                map: Some(mi.map_name.clone()),
                structs,
                programs: Vec::new(),
            });
        }
        out
    }

    /// The flattened fields of a data source: the struct's fields for tracers and iterators, the
    /// key struct's then the value struct's for map iterators (unprefixed, as upstream names
    /// them; the value's offsets are relative to the value). `None` when there is no data source
    /// of that name; an error when its struct is missing or malformed.
    pub fn data_source_fields(&self, name: &str) -> Option<Result<Vec<Field>, BtfError>> {
        let struct_fields = |struct_name: &str| match self.btf.struct_by_name(struct_name) {
            Some(id) => self.btf.flatten_fields(id),
            None => Err(BtfError::NotComposite {
                type_id: 0,
                name: struct_name.to_string(),
                kind: "missing type",
            }),
        };
        if let Some(t) = self.tracers.iter().find(|t| t.name == name) {
            return Some(struct_fields(&t.struct_name));
        }
        if let Some(i) = self.iters.iter().find(|i| i.name == name) {
            return Some(struct_fields(&i.struct_name));
        }
        let map = match self.map_iter_map(name)? {
            Ok(map) => map,
            Err(e) => return Some(Err(e)),
        };
        let mut out = Vec::new();
        for t in [map.key_type_id, map.value_type_id].into_iter().flatten() {
            match self.btf.flatten_fields(t) {
                Ok(fields) => {
                    let base = out.len();
                    out.extend(fields.into_iter().map(|mut f| {
                        f.parent = f.parent.map(|p| p + base);
                        f
                    }));
                }
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(out))
    }

    /// For a map iterator: the key struct's fields and the value struct's fields, separately,
    /// each with offsets relative to its own buffer (what a runtime decoding map entries needs).
    /// `None` when there is no map iterator of that name.
    pub fn map_iter_fields(&self, name: &str) -> Option<Result<MapIterFields, BtfError>> {
        let map = match self.map_iter_map(name)? {
            Ok(map) => map,
            Err(e) => return Some(Err(e)),
        };
        let flatten = |t: Option<u32>, what: &'static str| match t {
            Some(t) => self.btf.flatten_fields(t),
            None => Err(BtfError::NotComposite {
                type_id: 0,
                name: format!("{} {what}", map.name),
                kind: "undeclared type",
            }),
        };
        Some(flatten(map.key_type_id, "key").and_then(|key| {
            Ok(MapIterFields {
                key,
                value: flatten(map.value_type_id, "value")?,
            })
        }))
    }

    /// The map that map iterator `name` walks: `None` when there is no map iterator of that
    /// name, an error when its map is missing.
    fn map_iter_map(&self, name: &str) -> Option<Result<&Map, BtfError>> {
        let mi = self.map_iters.iter().find(|m| m.name == name)?;
        Some(
            self.map(&mi.map_name)
                .ok_or_else(|| BtfError::NotComposite {
                    type_id: 0,
                    name: mi.map_name.clone(),
                    kind: "missing map",
                }),
        )
    }

    /// Runs the object checks of gadget-sdk.md §5 against the target's byte order.
    pub fn check(&self, expected: Endianness) -> Vec<Diagnostic> {
        check::run(self, expected)
    }

    /// A serializable overview for `ig-image inspect`.
    pub fn summary(&self) -> ObjectSummary {
        summary::summarize(self)
    }
}

#[cfg(test)]
mod tests;
