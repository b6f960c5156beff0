//! Gadget features declared through marker globals (gadget-sdk.md §1): tracers, iterators, map
//! iterators, parameters and program-to-map bindings. Names are split on `___`.
//!
//! Besides the name-encoded markers (`gadget_param_<var>`, `gadget_mapiter_<name>___<map>`),
//! the decl-tag spellings of newer upstream SDKs are read too (`btf_decl_tag("ig:param:<var>")`,
//! `"ig:mapiter:<name>___<map>"`, `"ig:tracer:<name>___<map>___<struct>"`,
//! `"ig:iter_type:<name>___<struct>"` with `"ig:iter:<name>"` on each program), so objects built
//! with either SDK are understood.
//!
//! Rust gadgets (gadget-sdk-rs, rustc + bpf-linker) cannot produce C's marker type: a Rust
//! `*const c_void` reaches BTF as `PTR -> ENUM c_void` (no `const` qualifier, and `c_void` is an
//! enum in Rust's debug info), so that form is accepted too. Rust has no `const volatile`
//! either: a param whose marker has the Rust form may be a plain global in `.rodata`
//! ([`Param::rust_form`]).

use serde::Serialize;

use crate::Endianness;
use crate::btf::{Btf, FieldKind, TypeKind, VarLinkage, c_string, read_uint};
use crate::check::Diagnostic;
use crate::elf::RawElf;

/// A stream data source: `GADGET_TRACER(name, map, struct)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tracer {
    /// Data source name.
    pub name: String,
    /// Ring buffer or perf event array feeding it.
    pub map_name: String,
    /// Event struct name.
    pub struct_name: String,
}

/// A snapshot data source: `GADGET_ITER(name, struct, prog...)` or `GADGET_SNAPSHOTTER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Iter {
    /// Data source name.
    pub name: String,
    /// Entry struct name.
    pub struct_name: String,
    /// The `iter/...` programs producing the entries.
    pub programs: Vec<String>,
    /// Declared with the deprecated `GADGET_SNAPSHOTTER` spelling.
    pub snapshotter: bool,
}

/// A periodic data source read from a hash map: `GADGET_MAPITER(name, map)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapIter {
    /// Data source name.
    pub name: String,
    /// The hash map.
    pub map_name: String,
}

/// What a program is bound to a map for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// `GADGET_ITER_TARGET_MAP`: an `iter/bpf_map_elem` program iterating the map.
    IterMapElem,
    /// `GADGET_SK_TARGET_MAP`: an sk_skb / sk_msg program attached to a sockmap or sockhash.
    SockMap,
}

/// `GADGET_ITER_TARGET_MAP(prog, map)` or `GADGET_SK_TARGET_MAP(prog, map)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramTarget {
    /// The program.
    pub program: String,
    /// The map.
    pub map: String,
    /// Which binding.
    pub kind: TargetKind,
}

/// A user parameter: `GADGET_PARAM(var)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    /// The variable's name (also the default key).
    pub name: String,
    /// A `VAR` of that name exists in BTF. When false, the other fields are empty.
    pub exists: bool,
    /// The variable's type id (0 if missing).
    pub type_id: u32,
    /// Outermost type name, qualifiers skipped (`gadget_pid`; `char` for `char x[16]`).
    pub type_name: String,
    /// C spelling (`const volatile gadget_pid`).
    pub c_type: String,
    /// BTF kind of the underlying type (`INT`, `ARRAY`, `STRUCT`, ...).
    pub btf_kind: String,
    /// How to interpret the value.
    pub kind: FieldKind,
    /// Size in bytes (0 if unknown).
    pub size: u32,
    /// Declared `const volatile` (or an array of `const volatile`).
    pub is_const_volatile: bool,
    /// Its `gadget_param_<var>` marker has the Rust form (`*const c_void`): the gadget was built
    /// from Rust, which cannot qualify a static `const volatile`; a plain global in `.rodata`
    /// is the closest form and is accepted in its place.
    pub rust_form: bool,
    /// The data section holding it (`.rodata`), from the BTF `DATASEC`s.
    pub section: Option<String>,
    /// BTF linkage.
    pub linkage: Option<VarLinkage>,
    /// The initial value's bytes, when the section has data (zeros for `.bss`).
    pub default: Option<Vec<u8>>,
}

impl Param {
    /// The default value as text: decimal for integers, `true`/`false`, the enumerator name, the
    /// string for `char` arrays, hex bytes otherwise.
    pub fn default_string(&self, endianness: Endianness) -> Option<String> {
        let bytes = self.default.as_deref()?;
        Some(match &self.kind {
            FieldKind::Int { signed, .. } => {
                let raw = read_uint(bytes, endianness)?;
                if *signed {
                    let shift = 64 - bytes.len() as u32 * 8;
                    (((raw << shift) as i64) >> shift).to_string()
                } else {
                    raw.to_string()
                }
            }
            FieldKind::Bool => (bytes.iter().any(|&b| b != 0)).to_string(),
            FieldKind::Enum { signed, values, .. } => {
                let raw = read_uint(bytes, endianness)?;
                let value = if *signed {
                    let shift = 64 - bytes.len() as u32 * 8;
                    i128::from(((raw << shift) as i64) >> shift)
                } else {
                    i128::from(raw)
                };
                values
                    .iter()
                    .find(|v| v.value == value)
                    .map_or_else(|| value.to_string(), |v| v.name.clone())
            }
            FieldKind::String { .. } => c_string(bytes),
            FieldKind::Float { bits: 32 } => {
                let raw = read_uint(bytes, endianness)? as u32;
                f32::from_bits(raw).to_string()
            }
            FieldKind::Float { bits: 64 } => {
                f64::from_bits(read_uint(bytes, endianness)?).to_string()
            }
            _ => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

/// Everything discovered from marker globals.
#[derive(Debug, Default)]
pub(crate) struct Discovered {
    pub tracers: Vec<Tracer>,
    pub iters: Vec<Iter>,
    pub map_iters: Vec<MapIter>,
    pub param_names: Vec<String>,
    /// Params whose marker has the Rust form.
    pub rust_params: Vec<String>,
    pub targets: Vec<ProgramTarget>,
}

/// Largest zero-initialised default synthesised for a `.bss` variable.
const MAX_ZERO_DEFAULT: u64 = 1 << 20;

const TRACER: &str = "gadget_tracer_";
const ITER: &str = "gadget_iter_";
const SNAPSHOTTER: &str = "gadget_snapshotter_";
const MAPITER: &str = "gadget_mapiter_";
const PARAM: &str = "gadget_param_";
const ITER_TARGET: &str = "gadget_mapelem_iter_target_";
const SK_TARGET: &str = "gadget_sk_prog_target_";

/// How a marker's type is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerForm {
    /// `const void *` (`PTR -> CONST -> VOID`), as the C SDK declares it.
    C,
    /// Rust's `*const c_void` as rustc and bpf-linker emit it: `PTR -> ENUM c_void` (possibly
    /// qualified). The closest form Rust can produce.
    Rust,
}

/// The form of a marker's type, or `None` if it is neither.
fn marker_form(btf: &Btf, type_id: u32) -> Option<MarkerForm> {
    let Some(TypeKind::Ptr { target }) = btf.get(type_id).map(|t| &t.kind) else {
        return None;
    };
    if matches!(
        btf.get(*target).map(|t| &t.kind),
        Some(TypeKind::Const { target: 0 })
    ) {
        return Some(MarkerForm::C);
    }
    let pointee = btf.resolve(*target);
    match btf.get(pointee) {
        Some(ty) if matches!(ty.kind, TypeKind::Enum { .. }) && btf.name_of(ty) == "c_void" => {
            Some(MarkerForm::Rust)
        }
        _ => None,
    }
}

pub(crate) fn discover(btf: &Btf, problems: &mut Vec<Diagnostic>) -> Discovered {
    let mut d = Discovered::default();
    from_marker_vars(btf, &mut d, problems);
    from_decl_tags(btf, &mut d);
    dedup(&mut d.param_names);
    check_unique_names(&d, problems);
    d
}

/// Reports a marker whose name does not follow its pattern.
fn malformed(problems: &mut Vec<Diagnostic>, var: &str, expected: &str) {
    problems.push(Diagnostic::error(
        format!("marker `{var}`"),
        format!("malformed name, expected `{expected}`"),
    ));
}

/// The data sources, parameters and program targets declared by marker variables
/// (`gadget_tracer_...`), each checked for its declaration and its name's pattern.
fn from_marker_vars(btf: &Btf, d: &mut Discovered, problems: &mut Vec<Diagnostic>) {
    for (id, var, linkage) in btf.vars() {
        let known = [
            TRACER,
            ITER,
            SNAPSHOTTER,
            MAPITER,
            PARAM,
            ITER_TARGET,
            SK_TARGET,
        ];
        if !known.iter().any(|p| var.starts_with(p)) {
            continue;
        }
        let mut form = None;
        if let Some(TypeKind::Var { target, .. }) = btf.get(id).map(|t| &t.kind) {
            form = marker_form(btf, *target);
            if form.is_none() {
                problems.push(Diagnostic::error(
                    format!("marker `{var}`"),
                    format!(
                        "declared as `{}`, expected `const void *` (from Rust: `*const c_void`)",
                        btf.c_type(*target)
                    ),
                ));
            }
        }
        if linkage != VarLinkage::Global {
            problems.push(Diagnostic::error(
                format!("marker `{var}`"),
                format!("is {linkage}, expected a global"),
            ));
        }
        add_marker(d, var, form, problems);
    }
}

/// Adds what marker `var` (of `form`) declares to `d`.
fn add_marker(
    d: &mut Discovered,
    var: &str,
    form: Option<MarkerForm>,
    problems: &mut Vec<Diagnostic>,
) {
    if let Some(rest) = var.strip_prefix(TRACER) {
        match rest.split("___").collect::<Vec<_>>()[..] {
            [name, map, st] if !name.is_empty() && !map.is_empty() && !st.is_empty() => {
                d.tracers.push(Tracer {
                    name: name.into(),
                    map_name: map.into(),
                    struct_name: st.into(),
                });
            }
            _ => malformed(problems, var, "gadget_tracer_<name>___<map>___<struct>"),
        }
    } else if let Some((rest, snapshotter)) = var
        .strip_prefix(ITER)
        .map(|r| (r, false))
        .or_else(|| var.strip_prefix(SNAPSHOTTER).map(|r| (r, true)))
    {
        let parts: Vec<&str> = rest.split("___").collect();
        if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
            malformed(
                problems,
                var,
                if snapshotter {
                    "gadget_snapshotter_<name>___<struct>___<prog>..."
                } else {
                    "gadget_iter_<name>___<struct>___<prog>..."
                },
            );
            return;
        }
        d.iters.push(Iter {
            name: parts[0].into(),
            struct_name: parts[1].into(),
            programs: parts[2..].iter().map(|s| (*s).to_string()).collect(),
            snapshotter,
        });
    } else if let Some(rest) = var.strip_prefix(MAPITER) {
        match rest.split("___").collect::<Vec<_>>()[..] {
            [name, map] if !name.is_empty() && !map.is_empty() => {
                d.map_iters.push(MapIter {
                    name: name.into(),
                    map_name: map.into(),
                });
            }
            _ => malformed(problems, var, "gadget_mapiter_<name>___<map>"),
        }
    } else if let Some(rest) = var.strip_prefix(PARAM) {
        if rest.is_empty() {
            malformed(problems, var, "gadget_param_<var>");
        } else {
            d.param_names.push(rest.to_string());
            if form == Some(MarkerForm::Rust) {
                d.rust_params.push(rest.to_string());
            }
        }
    } else if let Some((rest, kind)) = var
        .strip_prefix(ITER_TARGET)
        .map(|r| (r, TargetKind::IterMapElem))
        .or_else(|| {
            var.strip_prefix(SK_TARGET)
                .map(|r| (r, TargetKind::SockMap))
        })
    {
        match rest.split("___").collect::<Vec<_>>()[..] {
            [program, map] if !program.is_empty() && !map.is_empty() => {
                d.targets.push(ProgramTarget {
                    program: program.into(),
                    map: map.into(),
                    kind,
                });
            }
            _ => malformed(problems, var, "<prefix><prog>___<map>"),
        }
    }
}

/// The data sources, parameters and program targets declared by the decl-tag spellings of
/// newer SDKs (`ig:tracer:...`); markers win over tags of the same name.
fn from_decl_tags(btf: &Btf, d: &mut Discovered) {
    let mut tagged_iter_programs: Vec<(String, String)> = Vec::new();
    for ty in btf.types() {
        let TypeKind::DeclTag { target, .. } = ty.kind else {
            continue;
        };
        let tag = btf.name_of(ty);
        if let Some(rest) = tag.strip_prefix("ig:tracer:") {
            if let [name, map, st] = rest.split("___").collect::<Vec<_>>()[..] {
                if !d.tracers.iter().any(|t| t.name == name) {
                    d.tracers.push(Tracer {
                        name: name.into(),
                        map_name: map.into(),
                        struct_name: st.into(),
                    });
                }
            }
        } else if let Some(rest) = tag.strip_prefix("ig:iter_type:") {
            if let Some((name, st)) = rest.split_once("___") {
                if !d.iters.iter().any(|i| i.name == name) {
                    d.iters.push(Iter {
                        name: name.into(),
                        struct_name: st.into(),
                        programs: Vec::new(),
                        snapshotter: false,
                    });
                }
            }
        } else if let Some(iter) = tag.strip_prefix("ig:iter:") {
            // GADGET_ITER_MEMBER(iter) on a program: the tag's target is the FUNC.
            if let Some(func) = btf.get(target) {
                if matches!(func.kind, TypeKind::Func { .. }) {
                    tagged_iter_programs.push((iter.to_string(), btf.name_of(func).to_string()));
                }
            }
        } else if let Some(var) = tag.strip_prefix("ig:param:") {
            d.param_names.push(var.to_string());
        } else if let Some(rest) = tag.strip_prefix("ig:mapiter:") {
            if let Some((name, map)) = rest.split_once("___") {
                d.map_iters.push(MapIter {
                    name: name.into(),
                    map_name: map.into(),
                });
            }
        } else if let Some(rest) = tag.strip_prefix("ig:iter_target_map:") {
            if let Some((program, map)) = rest.split_once("___") {
                d.targets.push(ProgramTarget {
                    program: program.into(),
                    map: map.into(),
                    kind: TargetKind::IterMapElem,
                });
            }
        }
    }
    for (iter, program) in tagged_iter_programs {
        if let Some(it) = d.iters.iter_mut().find(|i| i.name == iter) {
            if !it.programs.contains(&program) {
                it.programs.push(program);
            }
        }
    }
}

/// Reports a data source name declared more than once.
fn check_unique_names(d: &Discovered, problems: &mut Vec<Diagnostic>) {
    let mut seen = Vec::new();
    for name in d
        .tracers
        .iter()
        .map(|t| &t.name)
        .chain(d.iters.iter().map(|i| &i.name))
        .chain(d.map_iters.iter().map(|m| &m.name))
    {
        if seen.contains(name) {
            problems.push(Diagnostic::error(
                format!("data source `{name}`"),
                "declared more than once",
            ));
        } else {
            seen.push(name.clone());
        }
    }
}

fn dedup(names: &mut Vec<String>) {
    let mut seen = Vec::new();
    names.retain(|n| {
        if seen.contains(n) {
            false
        } else {
            seen.push(n.clone());
            true
        }
    });
}

pub(crate) fn resolve_param(btf: &Btf, elf: &RawElf<'_>, name: &str, rust_form: bool) -> Param {
    let mut p = Param {
        name: name.to_string(),
        exists: false,
        type_id: 0,
        type_name: String::new(),
        c_type: String::new(),
        btf_kind: String::new(),
        kind: FieldKind::Unknown {
            btf_kind: "VOID".to_string(),
        },
        size: 0,
        is_const_volatile: false,
        rust_form,
        section: None,
        linkage: None,
        default: None,
    };
    let Some(var_id) = btf.var_by_name(name) else {
        return p;
    };
    let Some(TypeKind::Var { target, linkage }) = btf.get(var_id).map(|t| &t.kind) else {
        return p;
    };
    let target = *target;
    p.exists = true;
    p.type_id = target;
    p.linkage = Some(*linkage);
    p.type_name = btf.type_name(target).to_string();
    p.c_type = btf.c_type(target);
    p.btf_kind = btf
        .get(btf.resolve(target))
        .map_or("", |t| t.kind.name())
        .to_string();
    p.kind = btf.field_kind(target);
    p.size = btf.size_of(target).unwrap_or(0);
    p.is_const_volatile = btf.is_const_volatile(target);
    if let Some((section, secvar)) = btf.section_of_var(var_id) {
        p.section = Some(section.to_string());
        if secvar.size != 0 {
            p.size = secvar.size;
        }
        // Clang leaves DATASEC offsets at 0; the symbol table has the real one (libbpf does the
        // same fix-up).
        // Several ELF sections may share a name (clang emits a second `.data` for a `const`
        // variable placed there with SEC()), so find the symbol first, then its section.
        let sym = elf.symbols.iter().find(|s| {
            s.name == name
                && s.section
                    .and_then(|i| elf.section_by_index(i))
                    .is_some_and(|sec| sec.name == section)
        });
        let sec = sym
            .and_then(|s| elf.section_by_index(s.section?))
            .or_else(|| elf.section(section));
        if let Some(sec) = sec {
            let offset = sym.map_or(u64::from(secvar.offset), |s| s.value);
            let len = u64::from(p.size);
            p.default = match sec.data {
                // `.bss` has no bytes in the file: its values start as zeros. The size cap keeps a
                // hostile section header from making us allocate gigabytes.
                None => (len <= MAX_ZERO_DEFAULT
                    && offset.checked_add(len).is_some_and(|end| end <= sec.size))
                .then(|| vec![0; p.size as usize]),
                Some(data) => usize::try_from(offset)
                    .ok()
                    .and_then(|start| data.get(start..start.checked_add(p.size as usize)?))
                    .map(<[u8]>::to_vec),
            };
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use crate::{Endianness, GadgetObject};

    /// `sample-gadgets/trace_exec_rs` built by `ig-image build` (rustc-web 1.96, bpf-linker 0.13
    /// `--btf`, stripped): markers are `PTR -> ENUM c_void`, the param a plain `u32` in `.rodata`.
    const RUST: &[u8] = include_bytes!("../testdata/rust_trace_exec.o");
    const C_GOOD: &[u8] = include_bytes!("../testdata/good.o");

    #[test]
    fn rust_form_markers_are_discovered_and_pass_the_checks() {
        let obj = GadgetObject::parse(RUST).unwrap();
        let problems: Vec<String> = obj
            .check(Endianness::Little)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(problems.is_empty(), "{problems:#?}");
        let tracers: Vec<(&str, &str, &str)> = obj
            .tracers()
            .iter()
            .map(|t| (t.name.as_str(), t.map_name.as_str(), t.struct_name.as_str()))
            .collect();
        assert_eq!(tracers, [("exec", "events", "event")]);
        let p = &obj.params()[0];
        assert_eq!(p.name, "targ_pid");
        assert!(p.exists && p.rust_form && !p.is_const_volatile);
        assert_eq!(p.section.as_deref(), Some(".rodata"));
        assert_eq!(p.default_string(Endianness::Little).as_deref(), Some("0"));
    }

    #[test]
    fn rust_gadget_string_fields_are_strings_and_byte_arrays_are_not() {
        use crate::btf::FieldKind;
        let obj = GadgetObject::parse(RUST).unwrap();
        let btf = obj.btf();
        let event = btf.struct_by_name("event").unwrap();
        let kinds: Vec<(String, FieldKind)> = btf
            .flatten_fields(event)
            .unwrap()
            .into_iter()
            .map(|f| (f.name.clone(), f.kind))
            .collect();
        let kind = |name: &str| kinds.iter().find(|(n, _)| n == name).map(|(_, k)| k);
        assert_eq!(kind("comm"), Some(&FieldKind::String { len: 16 }));
        assert_eq!(kind("filename"), Some(&FieldKind::String { len: 512 }));
        assert_eq!(
            kind("pid"),
            Some(&FieldKind::Int {
                signed: false,
                bits: 32
            })
        );
        // The license is a genuine `[u8; 4]`: still an array of numbers.
        let license = btf.var_by_name("LICENSE").unwrap();
        let license_type = match &btf.get(license).unwrap().kind {
            crate::btf::TypeKind::Var { target, .. } => *target,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            btf.field_kind(license_type),
            FieldKind::Array { len: 4, .. }
        ));
    }

    #[test]
    fn c_markers_are_not_rust_form() {
        let obj = GadgetObject::parse(C_GOOD).unwrap();
        assert!(!obj.params().is_empty());
        assert!(obj.params().iter().all(|p| !p.rust_form));
    }
}
