//! Attaching programs by their section, the way the Inspektor Gadget runtime does.
//!
//! | section | attached as |
//! |---|---|
//! | `tracepoint/<cat>/<name>`, `tp/...` | tracepoint ([`tracing`]) |
//! | `raw_tracepoint/<name>`, `raw_tp/<name>` | raw tracepoint ([`tracing`]) |
//! | `tp_btf/<name>` | BTF tracepoint ([`btf`]) |
//! | `kprobe/<fn>[+off]`, `kretprobe/<fn>`, `ksyscall/<name>`, `kretsyscall/<name>` | kprobe ([`tracing`]) |
//! | `fentry/<fn>`, `fexit/<fn>` | BPF trampoline ([`btf`]) |
//! | `iter/<target>` | bpf iterator link, created for each snapshot ([`crate::readers::iter`]) |
//!
//! Everything else (uprobes, USDT, LSM, perf events, sockets, tc, sockmaps, sockops) is loaded
//! and verified but reported as not attached, with the reason: each needs a target (a process,
//! an interface, a socket, a cgroup) that a minimal runtime does not pick, or changes what the
//! system does. `kprobe/gadget_program_disabled` is never attached.
//!
//! Links are kept in [`Loaded::links`]: dropping the [`Loaded`] detaches everything.

pub mod btf;
pub mod tracing;

use gadget_object::ProgramKind;
use libbpf_rs::{Link, ProgramMut};
use serde::Serialize;

use crate::classify::{self, Failure, FailureClass};
use crate::libbpf_log::{self, Capture};
use crate::load::Loaded;
use crate::source::Gadget;

/// What happened when attaching one program.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "attach", rename_all = "kebab-case")]
pub enum AttachStatus {
    /// Attached (`target` in words, e.g. `tracepoint sched/sched_process_exec`).
    Attached {
        /// What it is attached to.
        target: String,
    },
    /// The attach point exists; the program was not attached (`--verify-only` without
    /// `--attach`).
    Exists {
        /// What it would attach to.
        target: String,
    },
    /// Deliberately not attached.
    NotAttached {
        /// Why.
        reason: String,
    },
    /// Attaching failed.
    Failed {
        /// Why, classified.
        #[serde(flatten)]
        failure: Failure,
    },
}

/// One program's attach report.
#[derive(Debug, Clone, Serialize)]
pub struct AttachReport {
    /// Function name.
    pub name: String,
    /// Section.
    pub section: String,
    /// Outcome.
    #[serde(flatten)]
    pub status: AttachStatus,
}

/// The reason a kind of program is not attached by this runtime, if it is not.
pub fn not_attached_reason(kind: &ProgramKind, section: &str) -> Option<String> {
    Some(
        match kind {
            ProgramKind::Disabled => "disabled by the gadget (`kprobe/gadget_program_disabled`)",
            ProgramKind::Uprobe | ProgramKind::Uretprobe => {
                "user-space probes need a target binary and process"
            }
            ProgramKind::Usdt => "USDT probes need a target binary and process",
            ProgramKind::Lsm => "LSM programs change security decisions; verified only",
            ProgramKind::PerfEvent => "perf event programs need a sampling event to attach to",
            ProgramKind::SocketFilter => "socket filters need a socket",
            ProgramKind::Classifier => "tc classifiers need a network interface",
            ProgramKind::SkSkb | ProgramKind::SkMsg => {
                "sockmap programs need a sockmap or sockhash"
            }
            ProgramKind::Sockops => "sockops programs need a cgroup",
            ProgramKind::Iter { target } if target == "bpf_map_elem" => {
                "map element iterators need a map to iterate"
            }
            ProgramKind::Other(_) => {
                let prefix = section.split('/').next().unwrap_or(section);
                if matches!(prefix, "ksyscall" | "kretsyscall") {
                    return None;
                }
                "this section kind is not attached by runtime-min"
            }
            _ => return None,
        }
        .to_string(),
    )
}

/// Attaches every program of a loaded gadget. Failures are reported, not returned, so a caller
/// can show every program's outcome; see [`AttachReport`].
pub fn attach_all(loaded: &mut Loaded, gadget: &Gadget) -> Vec<AttachReport> {
    let mut out = Vec::new();
    let needs_tracefs = gadget.info.programs().iter().any(|p| {
        matches!(
            p.kind,
            ProgramKind::Tracepoint { .. } | ProgramKind::Kprobe | ProgramKind::Kretprobe
        ) || p.section.starts_with("ksyscall/")
            || p.section.starts_with("kretsyscall/")
    });
    if needs_tracefs {
        tracing::ensure_tracefs();
    }
    let mut links = Vec::new();
    for p in gadget.info.programs() {
        let status = match not_attached_reason(&p.kind, &p.section) {
            Some(reason) => AttachStatus::NotAttached { reason },
            None => match loaded.program(&p.name) {
                None => AttachStatus::Failed {
                    failure: Failure::new(FailureClass::Other, "program not found after loading"),
                },
                Some(prog) => match attach_one(&prog, &p.kind, &p.section, &p.target) {
                    Ok((status, link)) => {
                        links.extend(link.map(|l| (p.name.clone(), l)));
                        status
                    }
                    Err(status) => status,
                },
            },
        };
        out.push(AttachReport {
            name: p.name.clone(),
            section: p.section.clone(),
            status,
        });
    }
    loaded.links.extend(links);
    out
}

/// Checks, without attaching, that every program's attach point exists on this kernel:
/// tracepoints in tracefs, kprobe functions in `available_filter_functions`, raw tracepoints in
/// tracefs. BTF-attached programs (`fentry`, `fexit`, `tp_btf`, `lsm`, `iter`) had their target
/// resolved in the kernel BTF when they were loaded. Attaching for real and detaching again
/// costs the kernel an RCU grace period per program; this check does not.
pub fn check_all(gadget: &Gadget) -> Vec<AttachReport> {
    let programs = gadget.info.programs();
    let any =
        |f: &dyn Fn(&ProgramKind, &str) -> bool| programs.iter().any(|p| f(&p.kind, &p.section));
    if any(&|k, s| {
        matches!(
            k,
            ProgramKind::Tracepoint { .. }
                | ProgramKind::RawTracepoint
                | ProgramKind::Kprobe
                | ProgramKind::Kretprobe
        ) || s.starts_with("ksyscall/")
            || s.starts_with("kretsyscall/")
    }) {
        tracing::ensure_tracefs();
    }
    let kprobe_targets: Vec<String> = programs
        .iter()
        .filter(|p| {
            matches!(p.kind, ProgramKind::Kprobe | ProgramKind::Kretprobe)
                || p.section.starts_with("ksyscall/")
                || p.section.starts_with("kretsyscall/")
        })
        .filter_map(|p| {
            let what = describe(&p.kind, &p.section, &p.target);
            what.split_whitespace()
                .nth(1)
                .map(|f| tracing::split_offset(f).0.to_string())
        })
        .collect();
    let kprobe_functions = if kprobe_targets.is_empty() {
        None
    } else {
        tracing::kprobe_functions(&kprobe_targets)
    };
    programs
        .iter()
        .map(|p| {
            let what = describe(&p.kind, &p.section, &p.target);
            let missing = |detail: String| AttachStatus::Failed {
                failure: Failure::new(FailureClass::AttachPointMissing, format!("cannot attach {what}: {detail}")),
            };
            let status = match not_attached_reason(&p.kind, &p.section) {
                Some(reason) => AttachStatus::NotAttached { reason },
                None => match &p.kind {
                    ProgramKind::Tracepoint { category, name } => match tracing::tracefs_dir() {
                        Some(fs) if fs.join("events").join(category).join(name).is_dir() => AttachStatus::Exists { target: what.clone() },
                        Some(fs) => missing(format!("`{}` does not exist", fs.join("events").join(category).join(name).display())),
                        None => missing("tracefs is not mounted".into()),
                    },
                    ProgramKind::RawTracepoint => match tracing::tracefs_dir() {
                        Some(fs) if tracing::raw_tracepoint_exists(&fs, &p.target) => AttachStatus::Exists { target: what.clone() },
                        Some(_) => missing(format!("no tracepoint named `{}`", p.target)),
                        None => missing("tracefs is not mounted".into()),
                    },
                    ProgramKind::Kprobe | ProgramKind::Kretprobe | ProgramKind::Other(_) => {
                        let func = what.split_whitespace().nth(1).unwrap_or_default();
                        let func = tracing::split_offset(func).0;
                        match &kprobe_functions {
                            _ if tracing::kprobes_unsupported().is_some() => {
                                missing(tracing::kprobes_unsupported().unwrap_or_default().to_string())
                            }
                            Some(found) if !found.contains(func) => missing(format!(
                                "`{func}` is not a kernel function kprobes can attach to (not in available_filter_functions or /proc/kallsyms)"
                            )),
                            Some(_) => AttachStatus::Exists { target: what.clone() },
                            None => AttachStatus::Exists {
                                target: format!("{what} (not checked: no readable function list)"),
                            },
                        }
                    }
                    ProgramKind::TpBtf | ProgramKind::Fentry | ProgramKind::Fexit | ProgramKind::Iter { .. } => {
                        AttachStatus::Exists { target: format!("{what} (resolved in the kernel BTF at load)") }
                    }
                    _ => AttachStatus::NotAttached { reason: "runtime-min does not attach this kind".into() },
                },
            };
            AttachReport { name: p.name.clone(), section: p.section.clone(), status }
        })
        .collect()
}

/// Attaches one program; the link is kept by the caller (`None` for iterators, whose link is
/// made per snapshot).
fn attach_one(
    prog: &ProgramMut<'_>,
    kind: &ProgramKind,
    section: &str,
    target: &str,
) -> Result<(AttachStatus, Option<Link>), AttachStatus> {
    let what = describe(kind, section, target);
    let capture = Capture::start();
    let result = match kind {
        ProgramKind::Tracepoint { category, name } => prog
            .attach_tracepoint(
                libbpf_rs::TracepointCategory::Custom(category.clone()),
                name,
            )
            .map(Some),
        ProgramKind::RawTracepoint => prog.attach_raw_tracepoint(target).map(Some),
        // libbpf reads function, offset and the syscall prefix from the section.
        ProgramKind::Kprobe | ProgramKind::Kretprobe => prog.attach().map(Some),
        ProgramKind::Other(_)
            if section.starts_with("ksyscall/") || section.starts_with("kretsyscall/") =>
        {
            prog.attach().map(Some)
        }
        ProgramKind::TpBtf | ProgramKind::Fentry | ProgramKind::Fexit => {
            prog.attach_trace().map(Some)
        }
        // Iterators are run per snapshot; attaching here only checks the target once.
        ProgramKind::Iter { .. } => prog.attach().map(|_| None),
        _ => {
            return Err(AttachStatus::NotAttached {
                reason: format!(
                    "section `{section}` was loaded as {:?}, which runtime-min does not attach",
                    prog.prog_type()
                ),
            });
        }
    };
    let messages = capture.take();
    drop(capture);
    match result {
        Ok(link) => Ok((AttachStatus::Attached { target: what }, link)),
        Err(e) => {
            let said = messages.warnings(None);
            Err(AttachStatus::Failed {
                failure: classify_attach_error(&e, &what, &said),
            })
        }
    }
}

/// `tracepoint sched/sched_process_exec`, `kprobe do_sys_openat2`, ...
pub fn describe(kind: &ProgramKind, section: &str, target: &str) -> String {
    match kind {
        ProgramKind::Tracepoint { category, name } => format!("tracepoint {category}/{name}"),
        ProgramKind::Other(_)
            if section.starts_with("ksyscall/") || section.starts_with("kretsyscall/") =>
        {
            let kind = if section.starts_with("kretsyscall/") {
                "kretprobe"
            } else {
                "kprobe"
            };
            format!("{kind} {}", tracing::syscall_fn(target))
        }
        ProgramKind::Iter { target } => format!("iterator {target}"),
        other => format!("{} {target}", other.name()),
    }
}

fn classify_attach_error(e: &libbpf_rs::Error, what: &str, libbpf_said: &[String]) -> Failure {
    let errno = libbpf_log::errno(e);
    let io = errno.map(std::io::Error::from_raw_os_error);
    let class = match errno {
        _ if tracing::kprobes_unsupported().is_some() && what.starts_with("kprobe") => {
            FailureClass::AttachPointMissing
        }
        // perf_event_open on a kprobe for a missing or non-traceable function
        Some(libc::EINVAL) if what.starts_with("kprobe") || what.starts_with("kretprobe") => {
            FailureClass::AttachPointMissing
        }
        _ => io
            .as_ref()
            .and_then(classify::classify_errno)
            .unwrap_or(FailureClass::Other),
    };
    let mut detail = match tracing::kprobes_unsupported() {
        Some(why) if what.starts_with("kprobe") => why.to_string(),
        _ => format!("{e:#}"),
    };
    if let Some(said) = libbpf_said.last() {
        detail = format!("{detail} (libbpf: {said})");
    }
    Failure::new(class, format!("cannot attach {what}: {detail}"))
}
