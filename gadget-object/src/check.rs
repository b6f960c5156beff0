//! The object checks of gadget-sdk.md §5, as [`Diagnostic`]s that name their culprit.
//!
//! Severity follows the spec, which names no object finding a warning: all are errors (DWARF
//! left in the object included). The one warning is an iterator that names no programs (the
//! old `GADGET_SNAPSHOTTER(name, struct)` spelling), which older runtimes accepted.

use serde::Serialize;

use crate::btf::TypeKind;
use crate::elf::EM_BPF;
use crate::program::ProgramKind;
use crate::{Endianness, GadgetObject};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The build (or `validate`) fails.
    Error,
    /// Reported; the build goes on.
    Warning,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding. Displays as `error: tracer `exec`: map `events` is BPF_MAP_TYPE_HASH, ...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The culprit: ``tracer `exec` ``, ``param `targ_pid` ``, ``section `.BTF` ``, `object`, or a
    /// YAML path such as `datasources.open.fields.fname.annotations.columns.width`.
    pub subject: String,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl Diagnostic {
    /// An error.
    pub fn error(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            subject: subject.into(),
            message: message.into(),
        }
    }

    /// A warning.
    pub fn warning(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            subject: subject.into(),
            message: message.into(),
        }
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.subject, self.message)
    }
}

fn machine_name(machine: u16) -> &'static str {
    match machine {
        0 => " (none)",
        3 => " (i386)",
        40 => " (ARM)",
        62 => " (x86-64)",
        183 => " (AArch64)",
        243 => " (RISC-V)",
        _ => "",
    }
}

pub(crate) fn run(obj: &GadgetObject, expected: Endianness) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_elf(obj, expected, &mut out);
    out.extend(obj.discovery_problems().iter().cloned());
    check_tracers(obj, &mut out);
    check_map_iters(obj, &mut out);
    check_iters(obj, &mut out);
    check_params(obj, &mut out);
    out
}

/// Whether the object's BTF has a struct named `name`.
fn has_struct(obj: &GadgetObject, name: &str) -> bool {
    obj.btf()
        .find(name, |k| matches!(k, TypeKind::Struct { .. }))
        .is_some()
}

/// The ELF file itself: class, machine, byte order, the BTF and license sections, no DWARF.
fn check_elf(obj: &GadgetObject, expected: Endianness, out: &mut Vec<Diagnostic>) {
    let elf = obj.elf();
    let object = "object";
    if !elf.is_64 {
        out.push(Diagnostic::error(object, "is ELF32, expected ELF64"));
    }
    if elf.machine != EM_BPF {
        out.push(Diagnostic::error(
            object,
            format!(
                "e_machine is {}{}, expected {EM_BPF} (EM_BPF): not an eBPF object",
                elf.machine,
                machine_name(elf.machine)
            ),
        ));
    }
    if elf.endianness != expected {
        out.push(Diagnostic::error(
            object,
            format!(
                "is {}, but the target architecture is {expected}",
                elf.endianness
            ),
        ));
    }
    if !elf.has_btf {
        out.push(Diagnostic::error(
            "section `.BTF`",
            "missing: compile with `-g`; without BTF the runtime cannot understand the gadget",
        ));
    }
    if !elf.has_btf_ext {
        out.push(Diagnostic::error(
            "section `.BTF.ext`",
            "missing: compile with `-g` and strip with `llvm-strip -g` only",
        ));
    }
    if !elf.has_license {
        out.push(Diagnostic::error(
            "section `license`",
            "missing: declare `char LICENSE[] SEC(\"license\") = \"GPL\";`",
        ));
    }
    if elf.has_dwarf {
        let list = elf
            .dwarf_sections
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Diagnostic::error(
            object,
            format!("DWARF left in the object ({list}): strip it with `llvm-strip -g`"),
        ));
    }
}

/// Each tracer: its map is a ring buffer or perf event array, its struct is in BTF.
fn check_tracers(obj: &GadgetObject, out: &mut Vec<Diagnostic>) {
    for t in obj.tracers() {
        let subject = format!("tracer `{}`", t.name);
        match obj.map(&t.map_name) {
            None => out.push(Diagnostic::error(
                &subject,
                format!("map `{}` not found in `.maps`", t.map_name),
            )),
            Some(m) if !m.is_event_stream() => out.push(Diagnostic::error(
                &subject,
                format!(
                    "map `{}` is {}, expected a ring buffer or perf event array",
                    m.name, m.map_type_name
                ),
            )),
            Some(_) => {}
        }
        if !has_struct(obj, &t.struct_name) {
            out.push(Diagnostic::error(
                &subject,
                format!("struct `{}` not found in BTF", t.struct_name),
            ));
        }
    }
}

/// Each map iterator: its map is a hash map whose key and value are structs of its sizes.
fn check_map_iters(obj: &GadgetObject, out: &mut Vec<Diagnostic>) {
    let btf = obj.btf();
    for mi in obj.map_iters() {
        let subject = format!("map iterator `{}`", mi.name);
        let Some(m) = obj.map(&mi.map_name) else {
            out.push(Diagnostic::error(
                &subject,
                format!("map `{}` not found in `.maps`", mi.map_name),
            ));
            continue;
        };
        if !m.is_hash() {
            out.push(Diagnostic::error(
                &subject,
                format!(
                    "map `{}` is {}, expected a hash map (HASH, LRU_HASH, PERCPU_HASH or LRU_PERCPU_HASH)",
                    m.name, m.map_type_name
                ),
            ));
        }
        for (what, type_id, size, size_name) in [
            ("key", m.key_type_id, m.key_size, "key_size"),
            ("value", m.value_type_id, m.value_size, "value_size"),
        ] {
            let Some(type_id) = type_id else {
                out.push(Diagnostic::error(
                    &subject,
                    format!(
                        "map `{}` declares no {what} type; use `__type({what}, struct ...)`",
                        m.name
                    ),
                ));
                continue;
            };
            let resolved = btf.resolve(type_id);
            if !matches!(
                btf.get(resolved).map(|t| &t.kind),
                Some(TypeKind::Struct { .. })
            ) {
                out.push(Diagnostic::error(
                    &subject,
                    format!(
                        "{what} of map `{}` is `{}`, expected a struct",
                        m.name,
                        btf.c_type(type_id)
                    ),
                ));
                continue;
            }
            let struct_size = btf.size_of(resolved).unwrap_or(0);
            if struct_size != size {
                out.push(Diagnostic::error(
                    &subject,
                    format!(
                        "{what} struct `{}` is {struct_size} bytes, but map `{}` has {size_name} {size}",
                        btf.name(resolved),
                        m.name
                    ),
                ));
            }
        }
    }
}

/// Each iterator: its struct is in BTF, and it names programs in `iter/...` sections.
fn check_iters(obj: &GadgetObject, out: &mut Vec<Diagnostic>) {
    for it in obj.iters() {
        let subject = format!("iterator `{}`", it.name);
        if !has_struct(obj, &it.struct_name) {
            out.push(Diagnostic::error(
                &subject,
                format!("struct `{}` not found in BTF", it.struct_name),
            ));
        }
        if it.programs.is_empty() {
            out.push(Diagnostic::warning(
                &subject,
                "names no programs (old `GADGET_SNAPSHOTTER(name, struct)` spelling)",
            ));
        }
        for p in &it.programs {
            match obj.program(p) {
                None => out.push(Diagnostic::error(
                    &subject,
                    format!("program `{p}` not found"),
                )),
                Some(prog) if !matches!(prog.kind, ProgramKind::Iter { .. }) => {
                    out.push(Diagnostic::error(
                        &subject,
                        format!(
                            "program `{p}` is in section `{}`, expected an `iter/...` section",
                            prog.section
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
}

/// Each parameter: a global `const volatile` variable in `.rodata`.
fn check_params(obj: &GadgetObject, out: &mut Vec<Diagnostic>) {
    for p in obj.params() {
        let subject = format!("param `{}`", p.name);
        if !p.exists {
            out.push(Diagnostic::error(
                &subject,
                format!("variable `{}` not found in BTF", p.name),
            ));
            continue;
        }
        if let Some(linkage) = p.linkage.filter(|l| *l != crate::btf::VarLinkage::Global) {
            out.push(Diagnostic::error(
                &subject,
                format!("variable is {linkage}, expected a global"),
            ));
        }
        // Rust cannot declare `const volatile`; its closest form (a global in `.rodata`,
        // checked below) is accepted for params declared through a Rust-form marker.
        if !p.is_const_volatile && !p.rust_form {
            out.push(Diagnostic::error(
                &subject,
                format!(
                    "variable is declared `{}`, expected `const volatile`",
                    p.c_type
                ),
            ));
        }
        match p.section.as_deref() {
            Some(".rodata") => {}
            Some(other) => out.push(Diagnostic::error(
                &subject,
                format!("variable lives in `{other}`, expected `.rodata`"),
            )),
            None => out.push(Diagnostic::error(
                &subject,
                "variable is in no data section, expected `.rodata`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_display() {
        let d = Diagnostic::error(
            "tracer `exec`",
            "map `events` is BPF_MAP_TYPE_HASH, expected a ring buffer or perf event array",
        );
        assert_eq!(
            d.to_string(),
            "error: tracer `exec`: map `events` is BPF_MAP_TYPE_HASH, expected a ring buffer or perf event array"
        );
        assert_eq!(Diagnostic::warning("x", "y").to_string(), "warning: x: y");
    }
}
