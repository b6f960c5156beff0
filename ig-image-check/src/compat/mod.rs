//! `ig-image check`: will a gadget load on a given kernel? Answered from the kernel's BTF,
//! without the kernel.
//!
//! For each target kernel BTF (a raw BTF file, or the running kernel's
//! `/sys/kernel/btf/vmlinux`), the gadget object built for that kernel's architecture is
//! checked:
//!
//! - every CO-RE relocation of `.BTF.ext` is resolved the way libbpf resolves it ([`relo`]):
//!   field existence and compatibility through the access string, type existence, enumerator
//!   existence, agreement between candidate types. A relocation that fails poisons its
//!   instruction in libbpf, which fails the load when the verifier reaches it; one that sits
//!   next to an existence check of the same field (`bpf_core_field_exists`) in the same program
//!   is reported as a warning ("guarded"), since the program probably skips it;
//! - every attach point: `tracepoint/<cat>/<name>` needs the kernel's `btf_trace_<name>` typedef
//!   (every `TRACE_EVENT`/`DEFINE_EVENT` has one) or a `trace_event_raw_<name>` struct; syscall
//!   tracepoints (`syscalls/sys_enter_<sc>`) need the syscall's function (`__x64_sys_<sc>`,
//!   `__arm64_sys_<sc>`, ...). This is exact for the tracepoint's name, not its category.
//!   `raw_tp`/`tp_btf` need `btf_trace_<name>`; kprobes, fentry and fexit need a `FUNC` of that
//!   name (for kprobes a missing `FUNC` is a warning: the function may be in kallsyms without
//!   BTF); `lsm/<hook>` needs `bpf_lsm_<hook>`; `iter/<target>` needs `struct bpf_iter__<target>`;
//! - program types (`enum bpf_prog_type`), the attach types tracing programs need
//!   (`enum bpf_attach_type`) and map types (`enum bpf_map_type`) must be known to the kernel;
//! - for the running kernel only: kprobe programs need `CONFIG_KPROBES` (read as `doctor` does).
//!
//! The target BTF is the kernel's plus the types the gadget runtime provides (the socket
//! enricher's), as `run` gives it to libbpf, so `check` and the loader resolve the same
//! relocations.
//!
//! Not checked: helpers and kfuncs, the verifier itself (`ig-image run --verify-only` loads for
//! real), and types that live only in kernel modules' BTF (`/sys/kernel/btf/<module>`).
//!
//! Pure apart from reading the BTF files and, for the running kernel, `/proc`.

pub mod relo;

use gadget_store::graph::Children;
use std::path::{Path, PathBuf};

use gadget_facts::platform::Platform;
use gadget_object::btf::TypeKind;
use gadget_object::{Btf, Endianness, GadgetObject, Program, ProgramKind};
use serde::Serialize;

/// The running kernel's BTF.
pub const RUNNING_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    /// A BTF file could not be read.
    #[error("cannot read the kernel BTF `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A BTF file is not BTF.
    #[error("`{path}` is not a raw BTF blob (as /sys/kernel/btf/vmlinux is)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: gadget_object::BtfError,
    },
    /// The architecture after `:` is unknown.
    #[error(
        "`{spec}`: unknown architecture `{arch}` (known: amd64, arm64, ppc64le, riscv64, s390x)"
    )]
    Arch {
        /// The argument.
        spec: String,
        /// The architecture given.
        arch: String,
    },
    /// The architecture could not be inferred.
    #[error("`{path}`: cannot tell which architecture this BTF is for")]
    UnknownArch {
        /// The file.
        path: PathBuf,
    },
    /// A gadget object is unreadable.
    #[error("the {platform} eBPF object is unreadable")]
    Object {
        /// Its platform.
        platform: String,
        /// Why.
        #[source]
        source: gadget_object::ObjectError,
    },
}

/// How the target's architecture was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchSource {
    /// `FILE:arch` on the command line.
    Given,
    /// From the BTF's byte order and its register structs.
    Inferred,
    /// The running kernel: the host's architecture.
    Host,
}

/// One kernel to check against.
pub struct TargetKernel {
    /// A short name for the table (`running 6.18.44`, the file name).
    pub label: String,
    /// The BTF file.
    pub path: PathBuf,
    /// Its architecture.
    pub arch: Platform,
    /// How the architecture was decided.
    pub arch_source: ArchSource,
    /// Whether this is the running kernel (enables the /proc checks).
    pub running: bool,
    btf: Btf,
    index: relo::NameIndex,
}

/// The target BTF as `run` gives it to libbpf: the kernel's types plus those the gadget runtime
/// provides itself (the socket enricher's `gadget_socket_value` and `gadget_socket_key`,
/// [`gadget_object::runtime_types`]), so that a relocation against them resolves here exactly when
/// it does at load time. Bytes that are not BTF are returned as they are (parsing them reports
/// the error).
fn with_runtime_types(data: &[u8]) -> Vec<u8> {
    match gadget_object::btf::raw::RawBtf::parse(data) {
        Ok(raw) => {
            let mut b = gadget_object::btf::raw::BtfBuilder::new(&raw);
            gadget_object::runtime_types::add_socket_types(&mut b);
            b.finish()
        }
        Err(_) => data.to_vec(),
    }
}

impl TargetKernel {
    /// Builds a target from BTF bytes.
    pub fn from_btf(
        label: String,
        path: PathBuf,
        data: &[u8],
        arch: Option<Platform>,
        running: bool,
    ) -> Result<TargetKernel, CompatError> {
        let data = with_runtime_types(data);
        let btf = Btf::parse(&data).map_err(|source| CompatError::Parse {
            path: path.clone(),
            source,
        })?;
        let (arch, arch_source) = match arch {
            Some(a) if running => (a, ArchSource::Host),
            Some(a) => (a, ArchSource::Given),
            None => match infer_arch(&btf) {
                Some(a) => (a, ArchSource::Inferred),
                None => return Err(CompatError::UnknownArch { path }),
            },
        };
        let index = relo::NameIndex::new(&btf);
        Ok(TargetKernel {
            label,
            path,
            arch,
            arch_source,
            running,
            btf,
            index,
        })
    }

    /// The target's BTF.
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// `FILE` or `FILE:arch`.
    pub fn load(spec: &str) -> Result<TargetKernel, CompatError> {
        let (file, arch) = match spec.rsplit_once(':') {
            Some((f, a)) if !a.contains('/') && !f.is_empty() => {
                let arch = a.parse::<Platform>().map_err(|_| CompatError::Arch {
                    spec: spec.to_string(),
                    arch: a.to_string(),
                })?;
                (f, Some(arch))
            }
            _ => (spec, None),
        };
        let path = PathBuf::from(file);
        let data = std::fs::read(&path).map_err(|source| CompatError::Read {
            path: path.clone(),
            source,
        })?;
        let label = path
            .file_name()
            .map_or_else(|| file.to_string(), |n| n.to_string_lossy().into_owned());
        TargetKernel::from_btf(label, path, &data, arch, false)
    }

    /// The running kernel (`/sys/kernel/btf/vmlinux`, the host's architecture).
    pub fn running() -> Result<TargetKernel, CompatError> {
        let path = PathBuf::from(RUNNING_BTF);
        let data = std::fs::read(&path).map_err(|source| CompatError::Read {
            path: path.clone(),
            source,
        })?;
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let label = format!("running {release}").trim().to_string();
        let host = Platform::host();
        TargetKernel::from_btf(label, path, &data, host, host.is_some())
    }
}

fn has_member(btf: &Btf, struct_name: &str, member: &str) -> bool {
    btf.ids_by_name(struct_name)
        .any(|id| match &btf.types()[id as usize].kind {
            TypeKind::Struct { members, .. } => {
                members.iter().any(|m| btf.member_name(m) == member)
            }
            _ => false,
        })
}

/// The architecture of a kernel BTF: big-endian is s390x; otherwise the register structs
/// tell: x86's `struct pt_regs` has `r15`, arm64's `struct user_pt_regs` has `pstate`,
/// powerpc's has `gpr`, riscv's `struct pt_regs` has `epc`.
pub fn infer_arch(btf: &Btf) -> Option<Platform> {
    if btf.endianness() == Endianness::Big {
        return Some(Platform::S390x);
    }
    if has_member(btf, "pt_regs", "r15") {
        Some(Platform::Amd64)
    } else if has_member(btf, "user_pt_regs", "pstate") {
        Some(Platform::Arm64)
    } else if has_member(btf, "user_pt_regs", "gpr") || has_member(btf, "pt_regs", "gpr") {
        Some(Platform::Ppc64le)
    } else if has_member(btf, "pt_regs", "epc") {
        Some(Platform::Riscv64)
    } else {
        None
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A CO-RE relocation.
    Relocation,
    /// A program's attach point.
    AttachPoint,
    /// A program type.
    ProgramType,
    /// An attach type a program needs.
    AttachType,
    /// A map type.
    MapType,
    /// A kernel feature (running kernel only).
    Kernel,
    /// The image lacks an object for the kernel's architecture.
    Platform,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The gadget will not load or attach.
    Error,
    /// It probably loads, but look.
    Warning,
}

/// One problem on one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What it is about.
    pub kind: FindingKind,
    /// The program (symbol name), when one is concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The relocation (`struct task_struct.real_parent`), attach point or type name.
    pub subject: String,
    /// Why it fails.
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            FindingKind::Relocation => "relocation",
            FindingKind::AttachPoint => "attach point",
            FindingKind::ProgramType => "program type",
            FindingKind::AttachType => "attach type",
            FindingKind::MapType => "map type",
            FindingKind::Kernel => "kernel",
            FindingKind::Platform => "platform",
        };
        write!(f, "{what} {}", self.subject)?;
        if let Some(p) = &self.program {
            write!(f, " in {p}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The result on one kernel.
#[derive(Debug, Clone, Serialize)]
pub struct KernelReport {
    /// The kernel's label.
    pub kernel: String,
    /// The BTF file.
    pub btf: PathBuf,
    /// The kernel's architecture (OCI name).
    pub arch: String,
    /// How the architecture was decided.
    pub arch_source: ArchSource,
    /// No error findings.
    pub ok: bool,
    /// CO-RE relocations checked.
    pub relocations: usize,
    /// Programs whose attach point was checked.
    pub programs: usize,
    /// Errors, then warnings.
    pub findings: Vec<Finding>,
}

/// One object of the gadget, per platform.
pub struct PlatformObject {
    /// The platform it was built for.
    pub platform: Platform,
    /// The parsed object.
    pub object: GadgetObject,
}

/// Checks the gadget's objects against one kernel.
pub fn check_kernel(objects: &[PlatformObject], target: &TargetKernel) -> KernelReport {
    let mut report = KernelReport {
        kernel: target.label.clone(),
        btf: target.path.clone(),
        arch: target.arch.oci_arch().to_string(),
        arch_source: target.arch_source,
        ok: true,
        relocations: 0,
        programs: 0,
        findings: Vec::new(),
    };
    let Some(po) = objects.iter().find(|o| o.platform == target.arch) else {
        let have: Vec<&str> = objects.iter().map(|o| o.platform.oci_arch()).collect();
        report.findings.push(Finding {
            severity: Severity::Error,
            kind: FindingKind::Platform,
            program: None,
            subject: target.arch.oci_arch().to_string(),
            reason: format!(
                "the gadget has no eBPF object for {} (it has: {})",
                target.arch.oci_arch(),
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ),
        });
        report.ok = false;
        return report;
    };
    let obj = &po.object;
    relocation_findings(obj, target, &mut report);
    program_findings(obj, target, &mut report);
    map_findings(obj, target, &mut report);
    report
        .findings
        .sort_by_key(|f| matches!(f.severity, Severity::Warning));
    report.ok = !report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error);
    report
}

fn program_of_section(obj: &GadgetObject, section: &str) -> Option<String> {
    let names: Vec<&str> = obj
        .programs()
        .iter()
        .filter(|p| p.section == section)
        .map(|p| p.name.as_str())
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

fn relocation_findings(obj: &GadgetObject, target: &TargetKernel, report: &mut KernelReport) {
    let Some(ext) = obj.btf_ext() else { return };
    let local = obj.btf();
    report.relocations = ext.core_relos.len();
    for r in &ext.core_relos {
        let (spec, outcome) = relo::resolve(local, r, &target.btf, &target.index);
        let section = r.section(local).to_string();
        let program = program_of_section(obj, &section).or(Some(section.clone()));
        let subject = match &spec {
            Ok(s) => format!("{} ({})", s.display, relo::kind_name(r.kind)),
            Err(_) => format!("`{}` ({})", r.access(local), relo::kind_name(r.kind)),
        };
        let (severity, reason) = match outcome {
            relo::Outcome::Resolved { .. } => continue,
            relo::Outcome::Missing { .. } if relo::is_existence_check(r.kind) => continue,
            relo::Outcome::Missing { reason } => {
                if guarded(obj, r, &section) {
                    (
                        Severity::Warning,
                        format!(
                            "{reason} (guarded: the program checks that it exists, so the read is probably skipped)"
                        ),
                    )
                } else {
                    (Severity::Error, reason)
                }
            }
            relo::Outcome::Ambiguous { reason } | relo::Outcome::Invalid { reason } => {
                (Severity::Error, reason)
            }
        };
        let finding = Finding {
            severity,
            kind: FindingKind::Relocation,
            program,
            subject,
            reason,
        };
        if !report.findings.contains(&finding) {
            report.findings.push(finding);
        }
    }
}

/// Whether the same program section has an existence check of this relocation's field (same
/// root type, access string a prefix of or equal to this one) or type.
fn guarded(obj: &GadgetObject, r: &gadget_object::btf::CoreRelo, section: &str) -> bool {
    let local = obj.btf();
    let Some(ext) = obj.btf_ext() else {
        return false;
    };
    let root_name = relo::essential_name(local.name(local.resolve(r.type_id))).to_string();
    ext.core_relos.iter().any(|o| {
        relo::is_existence_check(o.kind)
            && o.section(local) == section
            && relo::essential_name(local.name(local.resolve(o.type_id))) == root_name
            && (o.kind != relo::FIELD_EXISTS
                || relo::access_prefix(o.access(local), r.access(local))
                || relo::access_prefix(r.access(local), o.access(local)))
    })
}

fn enum_has(btf: &Btf, enum_name: &str, value: &str) -> Option<bool> {
    let mut seen = false;
    for id in btf.ids_by_name(enum_name) {
        if let TypeKind::Enum { values, .. } = &btf.types()[id as usize].kind {
            seen = true;
            if values.iter().any(|v| btf.enumerator_name(v) == value) {
                return Some(true);
            }
        }
    }
    seen.then_some(false)
}

fn has_kind(btf: &Btf, name: &str, want: fn(&TypeKind) -> bool) -> bool {
    btf.ids_by_name(name)
        .any(|id| want(&btf.types()[id as usize].kind))
}

fn is_func(k: &TypeKind) -> bool {
    matches!(k, TypeKind::Func { .. })
}

fn is_typedef(k: &TypeKind) -> bool {
    matches!(k, TypeKind::Typedef { .. })
}

fn is_struct(k: &TypeKind) -> bool {
    matches!(k, TypeKind::Struct { .. })
}

/// `(program type, attach type)` enumerators a program kind needs.
fn prog_types(kind: &ProgramKind) -> Option<(&'static str, Option<&'static str>)> {
    Some(match kind {
        ProgramKind::Tracepoint { .. } => ("BPF_PROG_TYPE_TRACEPOINT", None),
        ProgramKind::RawTracepoint => ("BPF_PROG_TYPE_RAW_TRACEPOINT", None),
        ProgramKind::TpBtf => ("BPF_PROG_TYPE_TRACING", Some("BPF_TRACE_RAW_TP")),
        ProgramKind::Kprobe
        | ProgramKind::Kretprobe
        | ProgramKind::Uprobe
        | ProgramKind::Uretprobe
        | ProgramKind::Usdt => ("BPF_PROG_TYPE_KPROBE", None),
        ProgramKind::Fentry => ("BPF_PROG_TYPE_TRACING", Some("BPF_TRACE_FENTRY")),
        ProgramKind::Fexit => ("BPF_PROG_TYPE_TRACING", Some("BPF_TRACE_FEXIT")),
        ProgramKind::Lsm => ("BPF_PROG_TYPE_LSM", Some("BPF_LSM_MAC")),
        ProgramKind::Iter { .. } => ("BPF_PROG_TYPE_TRACING", Some("BPF_TRACE_ITER")),
        ProgramKind::PerfEvent => ("BPF_PROG_TYPE_PERF_EVENT", None),
        ProgramKind::SocketFilter => ("BPF_PROG_TYPE_SOCKET_FILTER", None),
        ProgramKind::Classifier => ("BPF_PROG_TYPE_SCHED_CLS", None),
        ProgramKind::SkSkb => ("BPF_PROG_TYPE_SK_SKB", None),
        ProgramKind::SkMsg => ("BPF_PROG_TYPE_SK_MSG", None),
        ProgramKind::Sockops => ("BPF_PROG_TYPE_SOCK_OPS", None),
        ProgramKind::Disabled | ProgramKind::Other(_) => return None,
    })
}

fn program_findings(obj: &GadgetObject, target: &TargetKernel, report: &mut KernelReport) {
    let kprobes = if target.running {
        crate::doctor::kprobes_configured(Path::new("/"))
    } else {
        None
    };
    for p in obj.programs() {
        let mut push = |severity, kind, subject: String, reason: String| {
            report.findings.push(Finding {
                severity,
                kind,
                program: Some(p.name.clone()),
                subject,
                reason,
            });
        };
        for (kind, subject, reason) in type_problems(&target.btf, &p.kind) {
            push(Severity::Error, kind, subject, reason);
        }
        let attach = attach_point_problem(target, p, kprobes);
        if !matches!(p.kind, ProgramKind::Disabled | ProgramKind::Other(_)) {
            report.programs += 1;
        }
        if let Some((severity, reason)) = attach {
            push(
                severity,
                FindingKind::AttachPoint,
                p.section.clone(),
                reason,
            );
        }
    }
}

/// The program type and attach type a program kind needs that the kernel's enums lack, as
/// (finding kind, enumerator, reason).
fn type_problems(btf: &Btf, kind: &ProgramKind) -> Vec<(FindingKind, String, String)> {
    let mut problems = Vec::new();
    let Some((prog_type, attach_type)) = prog_types(kind) else {
        return problems;
    };
    if enum_has(btf, "bpf_prog_type", prog_type) == Some(false) {
        problems.push((
            FindingKind::ProgramType,
            prog_type.to_string(),
            "not in this kernel's enum bpf_prog_type".to_string(),
        ));
    }
    if let Some(at) = attach_type {
        if enum_has(btf, "bpf_attach_type", at) == Some(false) {
            problems.push((
                FindingKind::AttachType,
                at.to_string(),
                "not in this kernel's enum bpf_attach_type".to_string(),
            ));
        }
    }
    problems
}

/// Why a program's attach point is missing from the kernel, if it is: `kprobes` is whether the
/// running kernel has `CONFIG_KPROBES` (None when unknown or not the running kernel).
fn attach_point_problem(
    target: &TargetKernel,
    p: &Program,
    kprobes: Option<bool>,
) -> Option<(Severity, String)> {
    let btf = &target.btf;
    let target_name = p.target.as_str();
    let missing = |found: bool, reason: String| (!found).then_some((Severity::Error, reason));
    match &p.kind {
        ProgramKind::Tracepoint { category, name } if category == "syscalls" => {
            syscall_tracepoint_problem(target, name)
        }
        ProgramKind::Tracepoint { name, .. } => missing(
            has_kind(btf, &format!("btf_trace_{name}"), is_typedef)
                || has_kind(btf, &format!("trace_event_raw_{name}"), is_struct),
            format!(
                "no tracepoint `{name}` in this kernel (no btf_trace_{name} typedef, no struct trace_event_raw_{name})"
            ),
        ),
        ProgramKind::RawTracepoint | ProgramKind::TpBtf => missing(
            has_kind(btf, &format!("btf_trace_{target_name}"), is_typedef),
            format!("no tracepoint `{target_name}` (no btf_trace_{target_name} typedef)"),
        ),
        ProgramKind::Kprobe | ProgramKind::Kretprobe => kprobe_problem(btf, target_name, kprobes),
        ProgramKind::Fentry | ProgramKind::Fexit => missing(
            has_kind(btf, target_name, is_func),
            format!("no function `{target_name}` in this kernel's BTF"),
        ),
        ProgramKind::Lsm => missing(
            has_kind(btf, &format!("bpf_lsm_{target_name}"), is_func),
            format!("no LSM hook `{target_name}` (no bpf_lsm_{target_name})"),
        ),
        ProgramKind::Iter { target: it } => missing(
            has_kind(btf, &format!("bpf_iter__{it}"), is_struct),
            format!("no iterator `{it}` (no struct bpf_iter__{it})"),
        ),
        _ => None,
    }
}

/// Why a `syscalls/sys_enter_<sc>` or `sys_exit_<sc>` tracepoint is missing: the kernel has no
/// function for the syscall under any of the architecture's prefixes.
fn syscall_tracepoint_problem(target: &TargetKernel, name: &str) -> Option<(Severity, String)> {
    let Some(sc) = name
        .strip_prefix("sys_enter_")
        .or_else(|| name.strip_prefix("sys_exit_"))
    else {
        return Some((
            Severity::Error,
            format!("`{name}` is not a syscalls tracepoint"),
        ));
    };
    let found = target
        .arch
        .syscall_prefixes()
        .iter()
        .map(|pre| format!("{pre}{sc}"))
        .chain([format!("__se_sys_{sc}"), format!("__do_sys_{sc}")])
        .any(|f| has_kind(&target.btf, &f, is_func));
    (!found).then(|| {
        (
            Severity::Error,
            format!(
                "no syscall `{sc}` in this kernel (no {}{sc} function)",
                target.arch.syscall_prefixes()[0]
            ),
        )
    })
}

/// Why a kprobe on `target_name` (`func` or `func+offset`) may not attach: no kprobes at all
/// (an error), or no BTF `FUNC` of that name (a warning).
fn kprobe_problem(
    btf: &Btf,
    target_name: &str,
    kprobes: Option<bool>,
) -> Option<(Severity, String)> {
    let func = target_name.split('+').next().unwrap_or(target_name);
    if kprobes == Some(false) {
        Some((
            Severity::Error,
            "this kernel has no kprobes (CONFIG_KPROBES is not set)".to_string(),
        ))
    } else if !has_kind(btf, func, is_func) {
        Some((
            Severity::Warning,
            format!(
                "no function `{func}` in BTF (it may still exist in kallsyms without BTF, or be inlined)"
            ),
        ))
    } else {
        None
    }
}

fn map_findings(obj: &GadgetObject, target: &TargetKernel, report: &mut KernelReport) {
    for m in obj.maps() {
        if enum_has(&target.btf, "bpf_map_type", &m.map_type_name) == Some(false) {
            report.findings.push(Finding {
                severity: Severity::Error,
                kind: FindingKind::MapType,
                program: None,
                subject: format!("{} ({})", m.map_type_name, m.name),
                reason: "not in this kernel's enum bpf_map_type".to_string(),
            });
        }
    }
}

/// The eBPF object of every platform of an image in the store.
pub fn objects_from_store(
    store: &gadget_store::Store,
    reference: &gadget_store::reference::Reference,
) -> Result<Vec<(Platform, Vec<u8>)>, ig_image_build::inspect::InspectError> {
    use gadget_facts::media_types as mt;
    use ig_image_build::inspect::InspectError;
    let full = reference.full();
    let malformed = |message: String| InspectError::Malformed {
        reference: full.clone(),
        message,
    };
    let desc = store.resolve(reference)?;
    let digest = gadget_store::Digest::parse(desc.digest().as_ref())
        .map_err(|e| malformed(e.to_string()))?;
    let index: serde_json::Value = store.read_json(&digest)?;
    let mut out = Vec::new();
    for entry in Children::of(&index).manifests {
        let arch = entry
            .pointer("/platform/architecture")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let Ok(platform) = arch.parse::<Platform>() else {
            continue;
        };
        let md = entry
            .get("digest")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let md = gadget_store::Digest::parse(md).map_err(|e| malformed(e.to_string()))?;
        let manifest: serde_json::Value = store.read_json(&md)?;
        for layer in Children::of(&manifest).layers {
            if layer.get("mediaType").and_then(serde_json::Value::as_str) != Some(mt::EBPF_LAYER) {
                continue;
            }
            let ld = layer
                .get("digest")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let ld = gadget_store::Digest::parse(ld).map_err(|e| malformed(e.to_string()))?;
            out.push((platform, store.read_blob(&ld)?));
        }
    }
    Ok(out)
}

/// A bare object file, offered for every platform of its byte order.
pub fn objects_from_file(bytes: &[u8]) -> Result<Vec<(Platform, Vec<u8>)>, CompatError> {
    let obj = GadgetObject::parse(bytes).map_err(|source| CompatError::Object {
        platform: "file".to_string(),
        source,
    })?;
    let order = match obj.elf().endianness {
        Endianness::Little => gadget_facts::platform::ByteOrder::Little,
        Endianness::Big => gadget_facts::platform::ByteOrder::Big,
    };
    Ok(Platform::ALL
        .iter()
        .filter(|p| p.byte_order() == order)
        .map(|p| (*p, bytes.to_vec()))
        .collect())
}

/// Parses each platform's object.
pub fn parse_objects(
    objects: Vec<(Platform, Vec<u8>)>,
) -> Result<Vec<PlatformObject>, CompatError> {
    objects
        .into_iter()
        .map(|(platform, bytes)| {
            GadgetObject::parse(&bytes)
                .map(|object| PlatformObject { platform, object })
                .map_err(|source| CompatError::Object {
                    platform: platform.oci_arch().to_string(),
                    source,
                })
        })
        .collect()
}

impl gadget_store::hint::Hint for CompatError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            CompatError::UnknownArch { path } => format!(
                "say it: `--kernel-btf {path}:amd64` (or arm64, ppc64le, riscv64, s390x)",
                path = path.display()
            ),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essential_names() {
        assert_eq!(relo::essential_name("task_struct___new"), "task_struct");
        assert_eq!(relo::essential_name("task_struct"), "task_struct");
        assert!(relo::access_prefix("0:1", "0:1:3"));
        assert!(!relo::access_prefix("0:1", "0:13"));
    }

    #[test]
    fn running_kernel_has_the_fixture_attach_points_and_types() {
        let Ok(target) = TargetKernel::running() else {
            eprintln!("SKIPPED: no readable {RUNNING_BTF}");
            return;
        };
        let good = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../gadget-object/testdata/good.o"
        ))
        .unwrap();
        let objs = parse_objects(vec![(target.arch, good)]).unwrap();
        let report = check_kernel(&objs, &target);
        // good.o attaches to tracepoints, kprobes, fentry, lsm, iterators: all exist here, and
        // only kprobes may be missing from the kernel's configuration.
        assert!(report.programs > 10, "{report:?}");
        for f in &report.findings {
            assert!(
                f.kind == FindingKind::AttachPoint && f.reason.contains("CONFIG_KPROBES"),
                "{f}"
            );
        }
    }
}
