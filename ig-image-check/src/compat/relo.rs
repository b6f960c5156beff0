//! CO-RE relocations resolved against a target BTF the way libbpf does (`relo_core.c`):
//! parse the local access spec, find candidate types by essential name and kind, match the
//! spec on each candidate, and compare what the candidates resolve to.
//!
//! What is checked: field existence through every step of the access string (by name, through
//! anonymous structs and unions, array bounds), field type compatibility at each step, type
//! existence and compatibility, enumerator existence, and that several candidates agree on the
//! offset. Not checked: the instruction itself (libbpf also validates the load or store width
//! against the target field's size).

use std::collections::HashMap;

use gadget_facts::btf::relo::{is_enumval as is_enumval_kind, is_field as is_field_kind};
use gadget_object::Btf;
use gadget_object::btf::{CoreRelo, TypeKind};

/// `enum bpf_core_relo_kind` (defined in `gadget_facts::btf::relo`), and libbpf's name of a
/// relocation kind.
pub use gadget_facts::btf::relo::{
    ENUMVAL_EXISTS, ENUMVAL_VALUE, FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_EXISTS,
    FIELD_LSHIFT_U64, FIELD_RSHIFT_U64, FIELD_SIGNED, TYPE_EXISTS, TYPE_ID_LOCAL, TYPE_ID_TARGET,
    TYPE_MATCHES, TYPE_SIZE, libbpf_name as kind_name,
};

/// Whether a failed relocation of this kind just yields 0 (the program asks whether something
/// exists) rather than poisoning the instruction.
pub fn is_existence_check(kind: u32) -> bool {
    matches!(
        kind,
        FIELD_EXISTS | TYPE_EXISTS | ENUMVAL_EXISTS | TYPE_MATCHES
    )
}

/// A name without its `___flavor` suffix (libbpf's "essential name").
pub fn essential_name(name: &str) -> &str {
    match name.find("___") {
        Some(i) => &name[..i],
        None => name,
    }
}

/// Type ids of a BTF indexed by essential name.
pub struct NameIndex {
    by_name: HashMap<String, Vec<u32>>,
}

impl NameIndex {
    /// Indexes every named type.
    pub fn new(btf: &Btf) -> NameIndex {
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (id, t) in btf.types().iter().enumerate().skip(1) {
            let name = btf.name_of(t);
            if !name.is_empty() {
                by_name
                    .entry(essential_name(name).to_string())
                    .or_default()
                    .push(id as u32);
            }
        }
        NameIndex { by_name }
    }

    /// Ids with this essential name.
    pub fn get(&self, name: &str) -> &[u32] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
}

/// How a relocation resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Resolved (for field relocations: the target byte offset of the field).
    Resolved {
        /// The target value libbpf would patch in, when it is an offset.
        bit_offset: Option<u64>,
    },
    /// Nothing matches: the relocation fails (an existence check yields 0 instead).
    Missing {
        /// Which step failed, for people (`field \`foo\` is not in struct task_struct`).
        reason: String,
    },
    /// Several candidates match but disagree: libbpf refuses the relocation.
    Ambiguous {
        /// The disagreeing values.
        reason: String,
    },
    /// The local spec itself is malformed (bad access string, bad type).
    Invalid {
        /// Why.
        reason: String,
    },
}

/// One access step of a local spec.
#[derive(Debug, Clone)]
struct Access {
    /// The local type the access is made in (a composite or an array), or the root.
    type_id: u32,
    /// Member or array index.
    idx: u32,
    /// Member name (None for array indexing and anonymous members).
    name: Option<String>,
}

/// A parsed local relocation spec.
#[derive(Debug, Clone)]
pub struct LocalSpec {
    /// The relocation kind.
    pub kind: u32,
    /// Root type id in the local BTF.
    pub root: u32,
    accesses: Vec<Access>,
    /// For enumval relocations: the enumerator's name.
    enumerator: Option<String>,
    /// A readable rendering: `task_struct.real_parent->tgid` style (`struct task_struct.real_parent`).
    pub display: String,
}

fn skip_mods_typedefs(btf: &Btf, id: u32) -> u32 {
    btf.resolve(id)
}

fn kind_of(btf: &Btf, id: u32) -> Option<&TypeKind> {
    btf.get(id).map(|t| &t.kind)
}

fn is_composite(k: &TypeKind) -> bool {
    matches!(k, TypeKind::Struct { .. } | TypeKind::Union { .. })
}

fn type_label(btf: &Btf, id: u32) -> String {
    let t = skip_mods_typedefs(btf, id);
    match kind_of(btf, t) {
        Some(TypeKind::Struct { .. }) => format!("struct {}", btf.name(t)),
        Some(TypeKind::Union { .. }) => format!("union {}", btf.name(t)),
        Some(TypeKind::Enum { .. }) => format!("enum {}", btf.name(t)),
        _ => btf.c_type(id),
    }
}

/// Parses a relocation's access string against the local (object) BTF.
pub fn parse_local(btf: &Btf, relo: &CoreRelo) -> Result<LocalSpec, String> {
    let access = relo.access(btf);
    let raw: Vec<u32> = access
        .split(':')
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("access string `{access}` is not `n:n:...`"))?;
    if raw.is_empty() {
        return Err("empty access string".to_string());
    }
    let root = relo.type_id;
    if btf.get(root).is_none() {
        return Err(format!("type id {root} is not in the object's BTF"));
    }
    let mut spec = LocalSpec {
        kind: relo.kind,
        root,
        accesses: Vec::new(),
        enumerator: None,
        display: type_label(btf, root),
    };
    if !is_field_kind(relo.kind) && !is_enumval_kind(relo.kind) {
        if raw != [0] {
            return Err(format!("type relocation with access string `{access}`"));
        }
        return Ok(spec);
    }
    let t = skip_mods_typedefs(btf, root);
    if is_enumval_kind(relo.kind) {
        let Some(TypeKind::Enum { values, .. }) = kind_of(btf, t) else {
            return Err(format!(
                "enumerator relocation on {}",
                type_label(btf, root)
            ));
        };
        let v = values
            .get(raw[0] as usize)
            .ok_or_else(|| format!("enumerator #{} out of range", raw[0]))?;
        let name = btf.enumerator_name(v).to_string();
        spec.display = format!("{}::{name}", type_label(btf, root));
        spec.enumerator = Some(name);
        return Ok(spec);
    }
    // Field relocation: the first index is an array index on the root.
    spec.accesses.push(Access {
        type_id: root,
        idx: raw[0],
        name: None,
    });
    let mut display = type_label(btf, root);
    if raw[0] != 0 {
        display = format!("({display})[{}]", raw[0]);
    }
    let mut id = root;
    for &idx in &raw[1..] {
        let t = skip_mods_typedefs(btf, id);
        match kind_of(btf, t) {
            Some(TypeKind::Struct { members, .. } | TypeKind::Union { members, .. }) => {
                let m = members.get(idx as usize).ok_or_else(|| {
                    format!("member #{idx} out of range in {}", type_label(btf, t))
                })?;
                let name = btf.member_name(m);
                // Anonymous members are not part of the spec: the target side finds the
                // next named member through anonymous structs and unions (libbpf does the same).
                if !name.is_empty() {
                    display.push('.');
                    display.push_str(name);
                    spec.accesses.push(Access {
                        type_id: t,
                        idx,
                        name: Some(name.to_string()),
                    });
                }
                id = m.type_id;
            }
            Some(TypeKind::Array { elem, .. }) => {
                display.push_str(&format!("[{idx}]"));
                spec.accesses.push(Access {
                    type_id: t,
                    idx,
                    name: None,
                });
                id = *elem;
            }
            _ => {
                return Err(format!(
                    "access `{access}` steps into {}, which has no members",
                    btf.c_type(t)
                ));
            }
        }
    }
    spec.display = display;
    Ok(spec)
}

fn local_kind_matches(local: &TypeKind, target: &TypeKind) -> bool {
    // Same BTF kind; ENUM and ENUM64 are one variant here, as libbpf treats them alike.
    std::mem::discriminant(local) == std::mem::discriminant(target)
}

/// A local and a target type as (id, kind), after modifiers and typedefs.
type ComparedKinds<'a> = ((u32, &'a TypeKind), (u32, &'a TypeKind));

/// The local and target types a comparison looks at; None past the recursion limit or for an
/// id the BTF does not have.
fn compared_kinds<'a>(
    local: &'a Btf,
    lid: u32,
    target: &'a Btf,
    tid: u32,
    depth: u32,
) -> Option<ComparedKinds<'a>> {
    if depth > 32 {
        return None;
    }
    let lid = skip_mods_typedefs(local, lid);
    let tid = skip_mods_typedefs(target, tid);
    Some(((lid, kind_of(local, lid)?), (tid, kind_of(target, tid)?)))
}

/// Whether the local type is anonymous or has the target's essential name.
fn names_compat(local: &Btf, lid: u32, target: &Btf, tid: u32) -> bool {
    let ln = essential_name(local.name(lid));
    ln.is_empty() || ln == essential_name(target.name(tid))
}

/// `bpf_core_fields_are_compat`.
fn fields_compat(local: &Btf, lid: u32, target: &Btf, tid: u32, depth: u32) -> bool {
    let Some(((lid, lk), (tid, tk))) = compared_kinds(local, lid, target, tid, depth) else {
        return false;
    };
    if is_composite(lk) && is_composite(tk) {
        return true;
    }
    match (lk, tk) {
        (TypeKind::Ptr { .. }, TypeKind::Ptr { .. })
        | (TypeKind::Float { .. }, TypeKind::Float { .. }) => true,
        (
            TypeKind::Fwd { .. } | TypeKind::Enum { .. },
            TypeKind::Fwd { .. } | TypeKind::Enum { .. },
        ) if std::mem::discriminant(lk) == std::mem::discriminant(tk) => {
            names_compat(local, lid, target, tid)
        }
        (TypeKind::Int { offset: lo, .. }, TypeKind::Int { offset: to, .. }) => {
            *lo == 0 && *to == 0
        }
        (TypeKind::Array { elem: le, .. }, TypeKind::Array { elem: te, .. }) => {
            fields_compat(local, *le, target, *te, depth + 1)
        }
        _ => false,
    }
}

/// `bpf_core_types_are_compat`, simplified: same kind after modifiers and typedefs, recursively
/// through pointers, arrays and function prototypes; names are compared for named types.
fn types_compat(local: &Btf, lid: u32, target: &Btf, tid: u32, depth: u32) -> bool {
    let Some(((lid, lk), (tid, tk))) = compared_kinds(local, lid, target, tid, depth) else {
        return false;
    };
    match (lk, tk) {
        (TypeKind::Void, TypeKind::Void) => true,
        (TypeKind::Ptr { target: lt }, TypeKind::Ptr { target: tt }) => {
            types_compat(local, *lt, target, *tt, depth + 1)
        }
        (TypeKind::Array { elem: le, .. }, TypeKind::Array { elem: te, .. }) => {
            types_compat(local, *le, target, *te, depth + 1)
        }
        (
            TypeKind::FuncProto {
                ret: lr,
                params: lp,
            },
            TypeKind::FuncProto {
                ret: tr,
                params: tp,
            },
        ) => {
            lp.len() == tp.len()
                && types_compat(local, *lr, target, *tr, depth + 1)
                && lp
                    .iter()
                    .zip(tp)
                    .all(|(a, b)| types_compat(local, a.type_id, target, b.type_id, depth + 1))
        }
        (TypeKind::Int { .. }, TypeKind::Int { .. })
        | (TypeKind::Float { .. }, TypeKind::Float { .. }) => true,
        _ if local_kind_matches(lk, tk) => names_compat(local, lid, target, tid),
        // A forward declaration matches a definition of the same name.
        (TypeKind::Fwd { .. }, TypeKind::Struct { .. } | TypeKind::Union { .. })
        | (TypeKind::Struct { .. } | TypeKind::Union { .. }, TypeKind::Fwd { .. }) => {
            essential_name(local.name(lid)) == essential_name(target.name(tid))
        }
        _ => false,
    }
}

/// `BPF_CORE_TYPE_MATCHES`, approximated: compatible, and for structs and unions every named
/// local member exists in the target with a compatible type.
fn types_match(local: &Btf, lid: u32, target: &Btf, tid: u32) -> bool {
    if !types_compat(local, lid, target, tid, 0) {
        return false;
    }
    let lid = skip_mods_typedefs(local, lid);
    let tid = skip_mods_typedefs(target, tid);
    match (kind_of(local, lid), kind_of(target, tid)) {
        (
            Some(TypeKind::Struct { members: lm, .. } | TypeKind::Union { members: lm, .. }),
            Some(TypeKind::Struct { members: tm, .. } | TypeKind::Union { members: tm, .. }),
        ) => lm.iter().all(|m| {
            let name = local.member_name(m);
            name.is_empty()
                || tm.iter().any(|t| {
                    target.member_name(t) == name
                        && types_compat(local, m.type_id, target, t.type_id, 0)
                })
        }),
        (Some(TypeKind::Enum { values: lv, .. }), Some(TypeKind::Enum { values: tv, .. })) => {
            lv.iter().all(|v| {
                let n = local.enumerator_name(v);
                tv.iter().any(|t| target.enumerator_name(t) == n)
            })
        }
        _ => true,
    }
}

/// Finds member `name` in the target composite `tid`, looking into anonymous struct and union
/// members like libbpf's `bpf_core_match_member`. Returns (member type id, bit offset).
fn find_member(target: &Btf, tid: u32, name: &str, depth: u32) -> Option<(u32, u64)> {
    if depth > 32 {
        return None;
    }
    let t = skip_mods_typedefs(target, tid);
    let (TypeKind::Struct { members, .. } | TypeKind::Union { members, .. }) = kind_of(target, t)?
    else {
        return None;
    };
    for m in members {
        let mname = target.member_name(m);
        if mname == name {
            return Some((m.type_id, u64::from(m.bit_offset)));
        }
        if mname.is_empty() {
            let inner = skip_mods_typedefs(target, m.type_id);
            if kind_of(target, inner).is_some_and(is_composite) {
                if let Some((id, off)) = find_member(target, inner, name, depth + 1) {
                    return Some((id, off + u64::from(m.bit_offset)));
                }
            }
        }
    }
    None
}

/// Matches a field spec on one candidate root; Ok(bit offset) or Err(why not).
fn match_field(local: &Btf, spec: &LocalSpec, target: &Btf, cand: u32) -> Result<u64, String> {
    let mut tid = cand;
    let mut bit_off: u64 = 0;
    for (i, acc) in spec.accesses.iter().enumerate() {
        let tt = skip_mods_typedefs(target, tid);
        if i == 0 {
            let size = target.size_of(tt).unwrap_or(0);
            bit_off = u64::from(acc.idx) * u64::from(size) * 8;
            continue;
        }
        let lt = skip_mods_typedefs(local, acc.type_id);
        match (&acc.name, kind_of(local, lt)) {
            (Some(name), _) => {
                let Some((mid, off)) = find_member(target, tt, name, 0) else {
                    return Err(format!(
                        "field `{name}` is not in {}",
                        type_label(target, tt)
                    ));
                };
                let local_member = match kind_of(local, lt) {
                    Some(TypeKind::Struct { members, .. } | TypeKind::Union { members, .. }) => {
                        members.get(acc.idx as usize).map(|m| m.type_id)
                    }
                    _ => None,
                };
                let Some(lm) = local_member else {
                    return Err("local member out of range".to_string());
                };
                if !fields_compat(local, lm, target, mid, 0) {
                    return Err(format!(
                        "field `{name}` of {} is `{}` here, `{}` in the object",
                        type_label(target, tt),
                        target.c_type(mid),
                        local.c_type(lm)
                    ));
                }
                bit_off += off;
                tid = mid;
            }
            (None, Some(TypeKind::Array { .. })) => {
                let Some(TypeKind::Array {
                    elem: telem,
                    len: tlen,
                    ..
                }) = kind_of(target, tt)
                else {
                    return Err(format!("{} is not an array here", target.c_type(tt)));
                };
                // A zero-length (flexible) array accepts any index.
                if *tlen != 0 && acc.idx >= *tlen {
                    return Err(format!(
                        "index {} is out of the target array's {} elements",
                        acc.idx, tlen
                    ));
                }
                let size = target.size_of(*telem).unwrap_or(0);
                bit_off += u64::from(acc.idx) * u64::from(size) * 8;
                tid = *telem;
            }
            _ => return Err("malformed local spec".to_string()),
        }
    }
    Ok(bit_off)
}

/// Resolves one relocation of `local` (the object's BTF) against `target`.
pub fn resolve(
    local: &Btf,
    relo: &CoreRelo,
    target: &Btf,
    index: &NameIndex,
) -> (Result<LocalSpec, String>, Outcome) {
    match parse_local(local, relo) {
        Ok(spec) => {
            let outcome = resolve_spec(local, &spec, target, index);
            (Ok(spec), outcome)
        }
        Err(reason) => (Err(reason.clone()), Outcome::Invalid { reason }),
    }
}

/// Resolves a parsed local spec: find the root's candidates in the target by name and kind,
/// match the spec on each, and check that the matches agree.
fn resolve_spec(local: &Btf, spec: &LocalSpec, target: &Btf, index: &NameIndex) -> Outcome {
    if spec.kind == TYPE_ID_LOCAL {
        return Outcome::Resolved { bit_offset: None };
    }
    let root = match LocalRoot::of(local, spec) {
        Ok(root) => root,
        Err(outcome) => return outcome,
    };
    let cands = candidates(index, target, &root);
    if cands.is_empty() {
        return Outcome::Missing {
            reason: format!(
                "{} `{}` does not exist in this kernel",
                kind_word(root.kind),
                root.name
            ),
        };
    }
    let mut reasons = Vec::new();
    let mut results: Vec<Option<u64>> = Vec::new();
    for &c in &cands {
        match match_candidate(local, spec, &root, target, c) {
            Ok(value) => results.push(value),
            Err(reason) => reasons.push(reason),
        }
    }
    if results.is_empty() {
        reasons.dedup();
        return Outcome::Missing {
            reason: reasons.join("; "),
        };
    }
    agreement(spec.kind, &root.name, &results)
}

/// The local root type of a relocation, as the target's candidates are looked up.
struct LocalRoot<'a> {
    /// The root after modifiers and typedefs (what `TYPE_MATCHES` compares).
    resolved: u32,
    /// The root the name and kind come from: libbpf looks candidates up by the name of the
    /// relocation's own root type (not through typedefs for type relocations, which can target
    /// a typedef).
    named: u32,
    /// Its essential name.
    name: String,
    /// Its kind.
    kind: &'a TypeKind,
}

impl<'a> LocalRoot<'a> {
    /// The spec's root, or the outcome when there is nothing to look up: a bad root type, or
    /// an anonymous one.
    fn of(local: &'a Btf, spec: &LocalSpec) -> Result<LocalRoot<'a>, Outcome> {
        let named = if is_field_kind(spec.kind) || is_enumval_kind(spec.kind) {
            spec.root
        } else {
            local.skip_qualifiers(spec.root)
        };
        let name = essential_name(local.name(named)).to_string();
        let Some(kind) = kind_of(local, named) else {
            return Err(Outcome::Invalid {
                reason: "bad root type".to_string(),
            });
        };
        if name.is_empty() {
            // Anonymous root types (`int`, `void *`) are not relocated by name; libbpf resolves
            // them locally.
            return Err(Outcome::Resolved { bit_offset: None });
        }
        Ok(LocalRoot {
            resolved: skip_mods_typedefs(local, spec.root),
            named,
            name,
            kind,
        })
    }
}

/// Target types with the root's essential name and a kind it can match (a forward declaration
/// also matches a struct or union).
fn candidates(index: &NameIndex, target: &Btf, root: &LocalRoot) -> Vec<u32> {
    index
        .get(&root.name)
        .iter()
        .copied()
        .filter(|&c| {
            kind_of(target, c).is_some_and(|tk| {
                local_kind_matches(root.kind, tk)
                    || matches!(
                        (root.kind, tk),
                        (
                            TypeKind::Fwd { .. },
                            TypeKind::Struct { .. } | TypeKind::Union { .. }
                        )
                    )
            })
        })
        .collect()
}

/// How a type's kind is named in messages.
fn kind_word(kind: &TypeKind) -> &'static str {
    match kind {
        TypeKind::Struct { .. } => "struct",
        TypeKind::Union { .. } => "union",
        TypeKind::Enum { .. } => "enum",
        TypeKind::Typedef { .. } => "typedef",
        _ => "type",
    }
}

/// Matches the spec on one candidate: Ok(what it resolves to: a field's bit offset, an
/// enumerator's value, a type's size) or Err(why it does not match).
fn match_candidate(
    local: &Btf,
    spec: &LocalSpec,
    root: &LocalRoot,
    target: &Btf,
    cand: u32,
) -> Result<Option<u64>, String> {
    if is_field_kind(spec.kind) {
        match_field(local, spec, target, cand).map(Some)
    } else if is_enumval_kind(spec.kind) {
        match_enumerator(spec, root, target, cand).map(Some)
    } else {
        match_type(local, spec.kind, root, target, cand)
    }
}

/// Matches an enumerator spec on one candidate enum; Ok(its value) or Err(why not).
fn match_enumerator(
    spec: &LocalSpec,
    root: &LocalRoot,
    target: &Btf,
    cand: u32,
) -> Result<u64, String> {
    let want = spec.enumerator.as_deref().unwrap_or("");
    let found = match kind_of(target, skip_mods_typedefs(target, cand)) {
        Some(TypeKind::Enum { values, .. }) => values
            .iter()
            .find(|v| essential_name(target.enumerator_name(v)) == essential_name(want))
            .map(|v| v.value),
        _ => None,
    };
    found.ok_or_else(|| format!("enumerator `{want}` is not in enum `{}`", root.name))
}

/// Matches a type relocation on one candidate; Ok(its size) or Err(why not).
fn match_type(
    local: &Btf,
    kind: u32,
    root: &LocalRoot,
    target: &Btf,
    cand: u32,
) -> Result<Option<u64>, String> {
    let ok = if kind == TYPE_MATCHES {
        types_match(local, root.resolved, target, cand)
    } else {
        types_compat(local, root.named, target, cand, 0)
    };
    if ok {
        Ok(target.size_of(cand).map(u64::from))
    } else {
        Err(format!(
            "{} `{}` differs in kind or shape",
            kind_word(root.kind),
            root.name
        ))
    }
}

/// The outcome of the candidates that matched (at least one): ambiguous when the value the
/// relocation patches in differs between them, resolved otherwise.
fn agreement(kind: u32, name: &str, results: &[Option<u64>]) -> Outcome {
    let first = results[0];
    let value_matters = matches!(
        kind,
        FIELD_BYTE_OFFSET | ENUMVAL_VALUE | TYPE_SIZE | FIELD_BYTE_SIZE
    );
    if value_matters && results.iter().any(|r| *r != first) {
        let mut vals: Vec<String> = results
            .iter()
            .map(|r| r.map_or("?".to_string(), |v| v.to_string()))
            .collect();
        vals.dedup();
        return Outcome::Ambiguous {
            reason: format!(
                "{} candidate types named `{name}` resolve to different values ({})",
                results.len(),
                vals.join(", ")
            ),
        };
    }
    let bit_offset = if is_field_kind(kind) { first } else { None };
    Outcome::Resolved { bit_offset }
}

/// Whether `prefix` is a prefix of the access string `access` (`0:1` of `0:1:3`).
pub fn access_prefix(prefix: &str, access: &str) -> bool {
    access == prefix
        || access
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(':'))
}
