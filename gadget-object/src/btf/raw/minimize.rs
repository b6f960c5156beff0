//! Minimized BTF for CO-RE: the kernel types that relocations rooted at some names can look
//! at, in stages: find the roots, mark what they reach, then copy the marked records with new
//! ids and only the names they use.

use std::collections::HashMap;

use super::{BtfBuilder, CoreRoot, RawBtf, TypeRec, essential, kind, trailing_len};

/// How much of a type the minimized BTF keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// Not kept.
    No,
    /// Kept, reached only through struct or union members: its pointers point at `void`.
    PointersCut,
    /// Kept, pointers followed.
    Full,
}

impl RawBtf<'_> {
    /// A much smaller BTF with every type a CO-RE relocation rooted at `roots` can look at: each
    /// kernel type matching a root (same kind, same essential name; `ENUM` and `ENUM64` both
    /// match an enum), and everything reachable from it through members, arrays, typedefs and
    /// qualifiers. Pointers reached through a struct or union member point at `void` instead of
    /// their target: CO-RE access paths never go through a pointer, and a pointer member is
    /// compatible with any pointer. Type ids change.
    ///
    /// Relocating against it gives the same result as against the whole BTF for every
    /// relocation kind except `TYPE_ID_TARGET` and `TYPE_MATCHES` (kinds 7 and 12), which callers
    /// must resolve against the whole BTF. Only the names the kept types use are kept.
    pub fn minimize_for_core(&self, roots: &[CoreRoot]) -> Vec<u8> {
        let reach = self.reach_from(&self.core_root_ids(roots));
        let mut renumbering = Renumbering::new(&reach);
        let mut types = Vec::new();
        for (i, t) in self.types.iter().enumerate() {
            let id = i + 1;
            if reach[id] != Reach::No {
                self.copy_kept_record(t, reach[id], &mut renumbering, &mut types);
            }
        }
        BtfBuilder {
            big: self.big,
            header: self.data[..self.hdr_len].to_vec(),
            types,
            strings: renumbering.strings,
            next_id: renumbering.next_id,
        }
        .finish()
    }

    /// Ids of the types matching a root: same kind (an enum matches `ENUM` and `ENUM64`), same
    /// essential name.
    fn core_root_ids(&self, roots: &[CoreRoot]) -> Vec<u32> {
        let is_enum = |k: u32| matches!(k, kind::ENUM | kind::ENUM64);
        let same_kind = |a: u32, b: u32| a == b || (is_enum(a) && is_enum(b));
        self.types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.name_off != 0 && roots.iter().any(|r| same_kind(r.kind, t.kind)))
            .filter(|(_, t)| {
                let name = essential(self.str_at(t.name_off));
                roots
                    .iter()
                    .any(|r| same_kind(r.kind, t.kind) && r.name == name)
            })
            .map(|(i, _)| i as u32 + 1)
            .collect()
    }

    /// How much of each type (indexed by id) is kept to serve relocations rooted at `roots`.
    fn reach_from(&self, roots: &[u32]) -> Vec<Reach> {
        let mut reach = vec![Reach::No; self.types.len() + 1];
        // (type id, reached through a struct or union member)
        let mut stack: Vec<(u32, bool)> = roots.iter().map(|&id| (id, false)).collect();
        while let Some((id, via_member)) = stack.pop() {
            let Some(t) = self.get(id) else { continue };
            let want = if via_member {
                Reach::PointersCut
            } else {
                Reach::Full
            };
            if reach[id as usize] >= want {
                continue;
            }
            reach[id as usize] = want;
            self.push_referenced(id, t, via_member, &mut stack);
        }
        reach
    }

    /// Pushes the types that CO-RE can reach from type `id` (`t`), reached `via_member` or not.
    fn push_referenced(
        &self,
        id: u32,
        t: &TypeRec,
        via_member: bool,
        stack: &mut Vec<(u32, bool)>,
    ) {
        let r = self.rd();
        match t.kind {
            kind::PTR if !via_member => stack.push((t.size_or_type, false)),
            kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                stack.push((t.size_or_type, via_member));
            }
            kind::ARRAY => {
                if let (Ok(elem), Ok(index)) = (r.u32(t.offset + 12), r.u32(t.offset + 16)) {
                    stack.push((elem, via_member));
                    stack.push((index, via_member));
                }
            }
            kind::STRUCT | kind::UNION => {
                for m in self.members(id) {
                    stack.push((m.type_id, true));
                }
            }
            kind::FUNC_PROTO => {
                stack.push((t.size_or_type, via_member));
                for i in 0..t.vlen as usize {
                    if let Ok(p) = r.u32(t.offset + 12 + i * 8 + 4) {
                        stack.push((p, via_member));
                    }
                }
            }
            _ => {}
        }
    }

    /// Appends kept record `t` to `types`, its type ids and names rewritten.
    fn copy_kept_record(
        &self,
        t: &TypeRec,
        reach: Reach,
        renumbering: &mut Renumbering,
        types: &mut Vec<u8>,
    ) {
        let len = 12 + trailing_len(t.kind, t.vlen).unwrap_or(0);
        let start = types.len();
        types.extend_from_slice(&self.data[t.offset..t.offset + len]);
        let mut record = KeptRecord {
            btf: self,
            old: t,
            bytes: &mut types[start..],
            renumbering,
        };
        record.name(0);
        let vlen = t.vlen as usize;
        match t.kind {
            kind::PTR if reach == Reach::Full => record.id(8),
            kind::PTR => record.put(8, 0),
            kind::TYPEDEF
            | kind::VOLATILE
            | kind::CONST
            | kind::RESTRICT
            | kind::TYPE_TAG
            | kind::FUNC
            | kind::VAR => record.id(8),
            kind::ARRAY => {
                record.id(12);
                record.id(16);
            }
            kind::STRUCT | kind::UNION => record.named_entries(vlen, 12, true),
            kind::ENUM => record.named_entries(vlen, 8, false),
            kind::ENUM64 => record.named_entries(vlen, 12, false),
            kind::FUNC_PROTO => {
                record.id(8);
                record.named_entries(vlen, 8, true);
            }
            _ => {}
        }
    }
}

/// The kept types' new ids (in the old order) and the names they use, each once.
struct Renumbering {
    /// `new_id[old id]`, 0 for a type not kept.
    new_id: Vec<u32>,
    /// The id after the last kept type.
    next_id: u32,
    /// The new string section.
    strings: Vec<u8>,
    /// New offset of each old name offset copied so far.
    string_offsets: HashMap<u32, u32>,
}

impl Renumbering {
    fn new(reach: &[Reach]) -> Renumbering {
        let mut new_id = vec![0u32; reach.len()];
        let mut next_id = 1;
        for (id, reach) in reach.iter().enumerate().skip(1) {
            if *reach != Reach::No {
                new_id[id] = next_id;
                next_id += 1;
            }
        }
        Renumbering {
            new_id,
            next_id,
            strings: vec![0],
            string_offsets: HashMap::new(),
        }
    }

    fn id(&self, old: u32) -> u32 {
        self.new_id.get(old as usize).copied().unwrap_or(0)
    }

    /// The new offset of the name at old offset `old`, copying it on first use.
    fn name(&mut self, btf: &RawBtf<'_>, old: u32) -> u32 {
        if old == 0 {
            return 0;
        }
        let strings = &mut self.strings;
        *self.string_offsets.entry(old).or_insert_with(|| {
            let at = strings.len() as u32;
            strings.extend_from_slice(btf.str_at(old).as_bytes());
            strings.push(0);
            at
        })
    }
}

/// A kept record's copy, whose u32 fields are rewritten in place.
struct KeptRecord<'r, 'a> {
    btf: &'r RawBtf<'a>,
    old: &'r TypeRec,
    bytes: &'r mut [u8],
    renumbering: &'r mut Renumbering,
}

impl KeptRecord<'_, '_> {
    /// The original value of the field `at` bytes into the record.
    fn old(&self, at: usize) -> u32 {
        self.btf.rd().u32(self.old.offset + at).unwrap_or(0)
    }

    fn put(&mut self, at: usize, value: u32) {
        self.bytes[at..at + 4].copy_from_slice(&super::encode(self.btf.big, value));
    }

    /// Rewrites the type id `at` bytes into the record.
    fn id(&mut self, at: usize) {
        let new = self.renumbering.id(self.old(at));
        self.put(at, new);
    }

    /// Rewrites the name offset `at` bytes into the record.
    fn name(&mut self, at: usize) {
        let new = self.renumbering.name(self.btf, self.old(at));
        self.put(at, new);
    }

    /// Rewrites the `vlen` trailing entries of `size` bytes that start with a name offset,
    /// followed by a type id when `typed`.
    fn named_entries(&mut self, vlen: usize, size: usize, typed: bool) {
        for i in 0..vlen {
            let at = 12 + i * size;
            self.name(at);
            if typed {
                self.id(at + 4);
            }
        }
    }
}
