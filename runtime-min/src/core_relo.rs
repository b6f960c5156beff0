//! Explains a failed CO-RE relocation: which type and field the program wanted, and what the
//! kernel's BTF lacks.
//!
//! When a relocation does not resolve, aya (like libbpf) replaces the instruction with a call to
//! the invalid helper `0xbad2310`, and the verifier rejects the program at that call. The
//! verifier log gives the instruction index; `.BTF.ext` says which relocation sits there, in
//! terms of the object's own BTF (root type + access string such as `0:1:0`). This module turns
//! that into `struct task_struct: field real_parent.tgid` and checks the kernel BTF for it.

use gadget_facts::btf::relo;
use gadget_object::btf::{Btf, CoreRelo, TypeKind};

use gadget_object::btf::raw::{RawBtf, kind};

/// `bpf_core_relo_kind` names in words (defined in `gadget_facts::btf::relo`).
pub use gadget_facts::btf::relo::description as relo_kind_name;

/// A relocation in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloDescription {
    /// `struct task_struct`, `enum bpf_func_id`.
    pub type_name: String,
    /// `real_parent.tgid`, an enumerator name, or empty for type relocations.
    pub path: String,
    /// The relocation kind.
    pub kind: &'static str,
    /// What the kernel BTF lacks, when it was checked.
    pub kernel: Option<String>,
}

impl std::fmt::Display for ReloDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.type_name)?;
        if !self.path.is_empty() {
            write!(f, " field `{}`", self.path)?;
        }
        write!(f, " ({})", self.kind)?;
        if let Some(k) = &self.kernel {
            write!(f, ": {k}")?;
        }
        Ok(())
    }
}

fn kw(btf: &Btf, id: u32) -> &'static str {
    match btf.get(btf.skip_qualifiers(id)).map(|t| &t.kind) {
        Some(TypeKind::Struct { .. }) => "struct ",
        Some(TypeKind::Union { .. }) => "union ",
        Some(TypeKind::Enum { .. }) => "enum ",
        _ => "",
    }
}

/// The name without libbpf's `___flavor` suffix.
pub fn essential_name(name: &str) -> &str {
    match name.find("___") {
        Some(i) => &name[..i],
        None => name,
    }
}

/// Describes a relocation in terms of the object's BTF.
pub fn describe(btf: &Btf, relo: &CoreRelo) -> ReloDescription {
    let root = btf.skip_qualifiers(relo.type_id);
    let type_name = format!("{}{}", kw(btf, root), essential_name(btf.name(root)));
    let access = relo.access(btf);
    let mut path = String::new();
    if relo::is_enumval(relo.kind) {
        if let (Some(TypeKind::Enum { values, .. }), Ok(i)) =
            (btf.get(root).map(|t| &t.kind), access.parse::<usize>())
        {
            if let Some(v) = values.get(i) {
                path = btf.enumerator_name(v).to_string();
            }
        }
    } else if relo::is_field(relo.kind) {
        let mut cur = root;
        for (n, part) in access.split(':').enumerate() {
            let Ok(i) = part.parse::<usize>() else { break };
            if n == 0 {
                continue; // index into the root pointer, normally 0
            }
            let resolved = btf.resolve(cur);
            match btf.get(resolved).map(|t| &t.kind) {
                Some(TypeKind::Struct { members, .. } | TypeKind::Union { members, .. }) => {
                    let Some(m) = members.get(i) else { break };
                    let name = btf.member_name(m);
                    if !name.is_empty() {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(name);
                    }
                    cur = m.type_id;
                }
                Some(TypeKind::Array { elem, .. }) => {
                    path.push_str(&format!("[{i}]"));
                    cur = *elem;
                }
                _ => break,
            }
        }
    }
    ReloDescription {
        type_name,
        path,
        kind: relo_kind_name(relo.kind),
        kernel: None,
    }
}

/// Finds a member by name in a kernel struct/union, looking through anonymous members.
fn find_member(k: &RawBtf<'_>, id: u32, name: &str, depth: usize) -> Option<u32> {
    if depth > 16 {
        return None;
    }
    let id = k.skip_mods(id);
    for m in k.members(id) {
        let n = k.str_at(m.name_off);
        if n == name {
            return Some(m.type_id);
        }
        if n.is_empty() {
            if let Some(t) = find_member(k, m.type_id, name, depth + 1) {
                return Some(t);
            }
        }
    }
    None
}

/// Checks a described relocation against the kernel's BTF and says what is missing.
pub fn check_against_kernel(desc: &mut ReloDescription, kernel: &RawBtf<'_>) {
    let (kw, name) = desc
        .type_name
        .split_once(' ')
        .unwrap_or(("", desc.type_name.as_str()));
    let want = match kw {
        "struct" => kind::STRUCT,
        "union" => kind::UNION,
        "enum" => kind::ENUM,
        _ => 0,
    };
    let candidates: Vec<u32> = (1..=kernel.len() as u32)
        .filter(|&id| {
            let t = kernel.get(id).map_or(0, |t| t.kind);
            let kind_ok = want == 0 || t == want || (want == kind::ENUM && t == kind::ENUM64);
            kind_ok && essential_name(kernel.name(id)) == name
        })
        .collect();
    if candidates.is_empty() {
        desc.kernel = Some(format!("the kernel BTF has no `{}`", desc.type_name));
        return;
    }
    if desc.path.is_empty() {
        return;
    }
    if want == kind::ENUM {
        if !candidates
            .iter()
            .any(|&id| kernel.enumerators(id).contains(&desc.path.as_str()))
        {
            desc.kernel = Some(format!(
                "the kernel's `{}` has no value `{}`",
                desc.type_name, desc.path
            ));
        }
        return;
    }
    let mut best_missing: Option<String> = None;
    for &id in &candidates {
        let mut cur = id;
        let mut walked = String::new();
        let mut ok = true;
        for part in desc.path.split('.') {
            let field = part.split('[').next().unwrap_or(part);
            match find_member(kernel, cur, field, 0) {
                Some(t) => {
                    cur = t;
                    // Step through arrays for `a[0].b`.
                    while let Some((elem, _, _)) = kernel.array(kernel.skip_mods(cur)) {
                        cur = elem;
                    }
                    if !walked.is_empty() {
                        walked.push('.');
                    }
                    walked.push_str(field);
                }
                None => {
                    let at = if walked.is_empty() {
                        desc.type_name.clone()
                    } else {
                        format!("{}.{walked}", desc.type_name)
                    };
                    best_missing = Some(format!("the kernel's `{at}` has no field `{field}`"));
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return;
        }
    }
    desc.kernel = best_missing;
}

#[cfg(test)]
mod tests {
    use super::*;
    use gadget_object::btf::raw::BtfBuilder;

    /// [1] int, [2] enum e { A, B }, [3] struct s { int x; }.
    fn tiny() -> Vec<u8> {
        let empty = RawBtf::empty_blob();
        let mut b = BtfBuilder::new(&RawBtf::parse(&empty).unwrap());
        let name = b.add_string("int");
        let int = b.add_type(name, kind::INT, 0, 4, &[(1 << 24) | 32]);
        let (e, a, bv) = (b.add_string("e"), b.add_string("A"), b.add_string("B"));
        b.add_type(e, kind::ENUM, 2, 4, &[a, 0, bv, 1]);
        let (s, x) = (b.add_string("s"), b.add_string("x"));
        b.add_type(s, kind::STRUCT, 1, 4, &[x, int, 0]);
        b.finish()
    }

    #[test]
    fn flavor_suffix_is_dropped() {
        assert_eq!(essential_name("task_struct___old"), "task_struct");
        assert_eq!(essential_name("task_struct"), "task_struct");
    }

    #[test]
    fn kernel_check_names_missing_type_and_field() {
        let blob = tiny();
        let k = RawBtf::parse(&blob).unwrap();
        let mut d = ReloDescription {
            type_name: "struct s".into(),
            path: "x".into(),
            kind: "field offset",
            kernel: None,
        };
        check_against_kernel(&mut d, &k);
        assert_eq!(d.kernel, None);
        d.path = "y".into();
        check_against_kernel(&mut d, &k);
        assert_eq!(
            d.kernel.as_deref(),
            Some("the kernel's `struct s` has no field `y`")
        );
        let mut d = ReloDescription {
            type_name: "struct nope".into(),
            path: String::new(),
            kind: "type exists",
            kernel: None,
        };
        check_against_kernel(&mut d, &k);
        assert_eq!(
            d.kernel.as_deref(),
            Some("the kernel BTF has no `struct nope`")
        );
        let mut d = ReloDescription {
            type_name: "enum e".into(),
            path: "C".into(),
            kind: "enum value",
            kernel: None,
        };
        check_against_kernel(&mut d, &k);
        assert_eq!(
            d.kernel.as_deref(),
            Some("the kernel's `enum e` has no value `C`")
        );
    }
}
