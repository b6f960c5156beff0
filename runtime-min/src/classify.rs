//! Turns what the kernel and aya report into a classified failure a gadget author can act on.
//!
//! The classes are the reasons a gadget that builds still fails on a kernel: no kernel BTF, a
//! CO-RE relocation that does not resolve (naming the type and field), a helper, program type
//! or map type this kernel does not have, an attach point that does not exist, missing
//! privileges, and the verifier rejecting unsafe code. Each failure keeps the whole verifier log;
//! [`Failure::render`] shows its last lines, or all of it.

use std::fmt;
use std::io;

use serde::Serialize;

/// Why something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// No usable kernel BTF (needed for CO-RE and for BTF-attached programs).
    MissingBtf,
    /// A CO-RE relocation found no matching type or field in the kernel's BTF.
    CoreRelocation,
    /// A helper or kfunc the program calls does not exist on this kernel (or not for this
    /// program type).
    UnknownHelper,
    /// The kernel does not know this program type.
    UnknownProgramType,
    /// The kernel does not know this map type.
    UnknownMapType,
    /// The tracepoint, function, hook or iterator target does not exist on this kernel.
    AttachPointMissing,
    /// Not enough privileges (root, or CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN).
    Permission,
    /// The verifier rejected the program as unsafe.
    Verifier,
    /// Anything else.
    Other,
}

impl FailureClass {
    /// A short label (`verifier`, `core-relocation`, ...).
    pub fn label(self) -> &'static str {
        match self {
            FailureClass::MissingBtf => "missing-btf",
            FailureClass::CoreRelocation => "core-relocation",
            FailureClass::UnknownHelper => "unknown-helper",
            FailureClass::UnknownProgramType => "unknown-program-type",
            FailureClass::UnknownMapType => "unknown-map-type",
            FailureClass::AttachPointMissing => "attach-point-missing",
            FailureClass::Permission => "permission",
            FailureClass::Verifier => "verifier",
            FailureClass::Other => "other",
        }
    }

    /// What to do about it.
    pub fn hint(self) -> Option<&'static str> {
        Some(match self {
            FailureClass::MissingBtf => {
                "no usable kernel BTF: on a kernel without /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), pass `--kernel-btf FILE` (e.g. from btfhub) or build the image with `--btfgen` for this kernel; check that the file is BTF"
            }
            FailureClass::CoreRelocation => {
                "the kernel's types differ from the vmlinux.h the gadget was built with: guard the access with bpf_core_field_exists() or use a ___flavor struct"
            }
            FailureClass::UnknownHelper => {
                "this kernel is too old for the helper, or the program type may not call it"
            }
            FailureClass::UnknownProgramType | FailureClass::UnknownMapType => {
                "this kernel is too old for the gadget"
            }
            FailureClass::AttachPointMissing => {
                "the tracepoint, function or hook does not exist or cannot be traced on this kernel (inlined, renamed, or a tracing feature the kernel lacks): check /sys/kernel/tracing/events, /proc/kallsyms or the kernel BTF"
            }
            FailureClass::Permission => {
                "run as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); in Kubernetes use `kubectl debug --profile=sysadmin`"
            }
            FailureClass::Verifier => {
                "read the verifier log bottom-up: the last lines name the instruction and register at fault"
            }
            FailureClass::Other => return None,
        })
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A classified failure of one step (creating a map, loading or attaching a program).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The class.
    pub class: FailureClass,
    /// One line saying what went wrong.
    pub message: String,
    /// The verifier log, whole (empty when there is none).
    pub verifier_log: String,
}

/// Lines of verifier log shown without `-v`.
pub const LOG_TAIL_LINES: usize = 20;

impl Failure {
    /// A failure without a verifier log.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            verifier_log: String::new(),
        }
    }

    /// Multi-line text: [`Failure::render_body`], then the hint (as reports print it).
    pub fn render(&self, full: bool) -> String {
        let mut out = self.render_body(full);
        if let Some(h) = self.class.hint() {
            out.push_str("\nhint: ");
            out.push_str(h);
        }
        out
    }

    /// `[class] message`, then the verifier log (its last [`LOG_TAIL_LINES`] lines unless
    /// `full`): the text of an error, whose hint is data ([`FailureClass::hint`]).
    pub fn render_body(&self, full: bool) -> String {
        let mut out = format!("[{}] {}", self.class, self.message);
        let lines: Vec<&str> = self.verifier_log.lines().collect();
        if !lines.is_empty() {
            let skip = if full {
                0
            } else {
                lines.len().saturating_sub(LOG_TAIL_LINES)
            };
            if skip > 0 {
                out.push_str(&format!(
                    "\nverifier log (last {} of {} lines; -v shows all):",
                    lines.len() - skip,
                    lines.len()
                ));
            } else {
                out.push_str("\nverifier log:");
            }
            for l in &lines[skip..] {
                out.push_str("\n  ");
                out.push_str(l);
            }
        }
        out
    }
}

/// `0xbad2310`: the call aya and libbpf put in place of an instruction whose CO-RE relocation
/// did not resolve.
pub const POISON_CALL: &str = "unknown#195896080";

/// What libbpf writes in place of the poisoned call when it explains the failure in the log.
pub const LIBBPF_POISON_LINE: &str = "<invalid CO-RE relocation>";

/// The instruction index of the poisoned call in a verifier log (`12: (85) call
/// unknown#195896080`, or libbpf's `12: <invalid CO-RE relocation>`).
pub fn poisoned_insn(log: &str) -> Option<usize> {
    log.lines()
        .find(|l| (l.contains(POISON_CALL) && l.contains("call")) || l.contains(LIBBPF_POISON_LINE))
        .and_then(|l| {
            let (idx, _) = l.split_once(':')?;
            idx.trim().parse().ok()
        })
}

fn is_stats_line(l: &str) -> bool {
    let l = l.trim();
    l.is_empty()
        || l.starts_with("processed ")
        || l.starts_with("verification time")
        || l.starts_with("stack depth")
        || l.starts_with("-- END")
        || l.starts_with("mark_precise")
}

/// The verifier's own verdict: the last line of the log that is not a statistic.
pub fn verdict(log: &str) -> Option<&str> {
    log.lines().rev().find(|l| !is_stats_line(l)).map(str::trim)
}

/// Classifies a failed `BPF_PROG_LOAD` from its errno and verifier log. `type_known` is asked
/// only when the kernel gave no log (an unknown program type is rejected before the verifier).
pub fn classify_prog_load(
    error: &io::Error,
    log: &str,
    type_known: impl FnOnce() -> bool,
) -> (FailureClass, String) {
    let errno = error.raw_os_error().unwrap_or(0);
    if log.contains(POISON_CALL) || log.contains(LIBBPF_POISON_LINE) {
        return (
            FailureClass::CoreRelocation,
            "a CO-RE relocation did not resolve against the kernel BTF".to_string(),
        );
    }
    for l in log.lines() {
        let l = l.trim();
        if l.starts_with("invalid func unknown#")
            || l.starts_with("unknown func")
            || l.contains("cannot use helper")
        {
            return (FailureClass::UnknownHelper, l.to_string());
        }
        if l.contains("is not defined") && l.contains("kernel function")
            || l.starts_with("calling kernel function")
        {
            return (FailureClass::UnknownHelper, l.to_string());
        }
    }
    if log.trim().is_empty() {
        if errno == libc::EPERM || errno == libc::EACCES {
            return (
                FailureClass::Permission,
                format!("the kernel refused to load the program: {error}"),
            );
        }
        if errno == libc::EINVAL && !type_known() {
            return (
                FailureClass::UnknownProgramType,
                "this kernel does not support the program type".to_string(),
            );
        }
        if errno == libc::ENOENT || errno == libc::ESRCH {
            return (
                FailureClass::AttachPointMissing,
                format!("the attach target does not exist: {error}"),
            );
        }
        return (
            FailureClass::Other,
            format!("BPF_PROG_LOAD failed: {error} (no verifier log)"),
        );
    }
    let verdict = verdict(log).unwrap_or("rejected");
    (
        FailureClass::Verifier,
        format!("the verifier rejected the program: {verdict}"),
    )
}

/// Classifies a failed syscall outside the verifier (map creation, attach).
pub fn classify_errno(error: &io::Error) -> Option<FailureClass> {
    match error.raw_os_error()? {
        libc::EPERM | libc::EACCES => Some(FailureClass::Permission),
        libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL => Some(FailureClass::AttachPointMissing),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NULL_LOG: &str = "0: R1=ctx() R10=fp0\n; int x(void *ctx) @ a.c:10\n0: (b7) r1 = 0\n\
        5: (85) call bpf_map_lookup_elem#1\n6: (61) r0 = *(u32 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\n\
        processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";

    #[test]
    fn classifies_verifier_rejection() {
        let (c, m) = classify_prog_load(
            &io::Error::from_raw_os_error(libc::EACCES),
            NULL_LOG,
            || true,
        );
        assert_eq!(c, FailureClass::Verifier);
        assert_eq!(
            m,
            "the verifier rejected the program: R0 invalid mem access 'map_value_or_null'"
        );
    }

    #[test]
    fn classifies_core_and_helpers() {
        let log = "12: (85) call unknown#195896080\ninvalid func unknown#195896080\n";
        assert_eq!(
            classify_prog_load(&io::Error::from_raw_os_error(libc::EINVAL), log, || true).0,
            FailureClass::CoreRelocation
        );
        assert_eq!(poisoned_insn(log), Some(12));
        let libbpf = "12: <invalid CO-RE relocation>\nfailed to resolve CO-RE relocation <byte_off> [7] struct task_struct.no_such_field_ig (0:98 @ offset 0)\nprocessed 13 insns\n";
        assert_eq!(poisoned_insn(libbpf), Some(12));
        assert_eq!(
            classify_prog_load(&io::Error::from_raw_os_error(libc::EINVAL), libbpf, || true).0,
            FailureClass::CoreRelocation
        );
        let log = "3: (85) call unknown#999\ninvalid func unknown#999\n";
        assert_eq!(
            classify_prog_load(&io::Error::from_raw_os_error(libc::EINVAL), log, || true).0,
            FailureClass::UnknownHelper
        );
        let log = "program of this type cannot use helper bpf_probe_write_user#36\n";
        assert_eq!(
            classify_prog_load(&io::Error::from_raw_os_error(libc::EINVAL), log, || true).0,
            FailureClass::UnknownHelper
        );
    }

    #[test]
    fn classifies_without_log() {
        let e = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(
            classify_prog_load(&e, "", || true).0,
            FailureClass::Permission
        );
        let e = io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(
            classify_prog_load(&e, "", || false).0,
            FailureClass::UnknownProgramType
        );
        assert_eq!(classify_prog_load(&e, "", || true).0, FailureClass::Other);
    }

    #[test]
    fn renders_tail_or_all() {
        let f = Failure {
            class: FailureClass::Verifier,
            message: "m".into(),
            verifier_log: (0..30).map(|i| format!("line {i}\n")).collect(),
        };
        let short = f.render(false);
        assert!(
            short.starts_with("[verifier] m\nverifier log (last 20 of 30 lines; -v shows all):")
        );
        assert!(!short.contains("line 9\n") && short.contains("line 29"));
        assert!(f.render(true).contains("line 0\n"));
        assert!(short.contains("\nhint: "));
    }
}
