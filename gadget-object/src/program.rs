//! Programs: `FUNC` symbols in executable sections other than `.text`, classified by section name
//! the way the Inspektor Gadget runtime attaches them (gadget-sdk.md §4).

use serde::Serialize;

/// How the runtime attaches a program, from its section name.
///
/// Serializes externally tagged: `"kprobe"`, `{"tracepoint": {"category": .., "name": ..}}`,
/// `{"other": "xdp"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramKind {
    /// `tracepoint/<category>/<name>` (also `tp/...`).
    Tracepoint {
        /// Tracepoint category (`syscalls`).
        category: String,
        /// Tracepoint name (`sys_enter_openat`).
        name: String,
    },
    /// `raw_tracepoint/<name>`, `raw_tp/<name>` (and the `.w` writable variants).
    RawTracepoint,
    /// `tp_btf/<name>`.
    TpBtf,
    /// `kprobe/<fn>`.
    Kprobe,
    /// `kretprobe/<fn>`.
    Kretprobe,
    /// `fentry/<fn>` (also `fentry.s/`).
    Fentry,
    /// `fexit/<fn>` (also `fexit.s/`).
    Fexit,
    /// `lsm/<hook>` (also `lsm.s/`).
    Lsm,
    /// `iter/<target>` (also `iter.s/`).
    Iter {
        /// Iterator target (`task`, `tcp`, `bpf_map_elem`).
        target: String,
    },
    /// `perf_event...`.
    PerfEvent,
    /// `uprobe/<binary>:<symbol>` (also `uprobe.s/`, bare `uprobe`).
    Uprobe,
    /// `uretprobe/...`.
    Uretprobe,
    /// `usdt/...`.
    Usdt,
    /// `socket...` (socket filter).
    SocketFilter,
    /// `classifier/<ingress|egress>/<name>` or `tc...` (traffic control).
    Classifier,
    /// `sk_skb...`.
    SkSkb,
    /// `sk_msg...`.
    SkMsg,
    /// `sockops...`.
    Sockops,
    /// `kprobe/gadget_program_disabled`: never attached.
    Disabled,
    /// Anything else; holds the section name.
    Other(String),
}

impl ProgramKind {
    /// Short lowercase name (`tracepoint`, `kprobe`, `other`).
    pub fn name(&self) -> &'static str {
        match self {
            ProgramKind::Tracepoint { .. } => "tracepoint",
            ProgramKind::RawTracepoint => "raw_tracepoint",
            ProgramKind::TpBtf => "tp_btf",
            ProgramKind::Kprobe => "kprobe",
            ProgramKind::Kretprobe => "kretprobe",
            ProgramKind::Fentry => "fentry",
            ProgramKind::Fexit => "fexit",
            ProgramKind::Lsm => "lsm",
            ProgramKind::Iter { .. } => "iter",
            ProgramKind::PerfEvent => "perf_event",
            ProgramKind::Uprobe => "uprobe",
            ProgramKind::Uretprobe => "uretprobe",
            ProgramKind::Usdt => "usdt",
            ProgramKind::SocketFilter => "socket_filter",
            ProgramKind::Classifier => "classifier",
            ProgramKind::SkSkb => "sk_skb",
            ProgramKind::SkMsg => "sk_msg",
            ProgramKind::Sockops => "sockops",
            ProgramKind::Disabled => "disabled",
            ProgramKind::Other(_) => "other",
        }
    }
}

/// One program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    /// Function symbol name.
    pub name: String,
    /// ELF section.
    pub section: String,
    /// How it attaches.
    pub kind: ProgramKind,
    /// The attach target: the section name after its prefix (`syscalls/sys_enter_openat`,
    /// `do_sys_openat2`, `/bin/bash:readline`, `ingress/drop`); empty when the section has none.
    pub target: String,
    /// Number of 8-byte instructions (from the symbol size).
    pub insn_count: u64,
    /// Global (not `static`) symbol.
    pub global: bool,
}

/// Classifies a section name. Returns the kind and the attach target.
pub fn classify_section(section: &str) -> (ProgramKind, String) {
    if section == "kprobe/gadget_program_disabled" {
        return (ProgramKind::Disabled, "gadget_program_disabled".to_string());
    }
    let (prefix, target) = section.split_once('/').unwrap_or((section, ""));
    let target_s = target.to_string();
    let kind = match prefix {
        "tracepoint" | "tp" => {
            let (category, name) = target.split_once('/').unwrap_or((target, ""));
            ProgramKind::Tracepoint {
                category: category.to_string(),
                name: name.to_string(),
            }
        }
        "raw_tracepoint" | "raw_tp" | "raw_tracepoint.w" | "raw_tp.w" => ProgramKind::RawTracepoint,
        "tp_btf" => ProgramKind::TpBtf,
        "kprobe" => ProgramKind::Kprobe,
        "kretprobe" => ProgramKind::Kretprobe,
        "fentry" | "fentry.s" => ProgramKind::Fentry,
        "fexit" | "fexit.s" => ProgramKind::Fexit,
        "lsm" | "lsm.s" => ProgramKind::Lsm,
        "iter" | "iter.s" => ProgramKind::Iter {
            target: target_s.clone(),
        },
        "uprobe" | "uprobe.s" => ProgramKind::Uprobe,
        "uretprobe" | "uretprobe.s" => ProgramKind::Uretprobe,
        "usdt" => ProgramKind::Usdt,
        "classifier" | "tc" => ProgramKind::Classifier,
        p if p.starts_with("perf_event") => ProgramKind::PerfEvent,
        p if p.starts_with("socket") => ProgramKind::SocketFilter,
        p if p.starts_with("sk_skb") => ProgramKind::SkSkb,
        p if p.starts_with("sk_msg") => ProgramKind::SkMsg,
        p if p.starts_with("sockops") => ProgramKind::Sockops,
        _ => ProgramKind::Other(section.to_string()),
    };
    (kind, target_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sections() {
        let cases = [
            (
                "tracepoint/syscalls/sys_enter_openat",
                "tracepoint",
                "syscalls/sys_enter_openat",
            ),
            ("tp/sched/sched_switch", "tracepoint", "sched/sched_switch"),
            ("raw_tp/sched_switch", "raw_tracepoint", "sched_switch"),
            ("raw_tracepoint/x", "raw_tracepoint", "x"),
            ("tp_btf/sched_process_fork", "tp_btf", "sched_process_fork"),
            ("kprobe/do_sys_openat2", "kprobe", "do_sys_openat2"),
            ("kretprobe/do_sys_openat2", "kretprobe", "do_sys_openat2"),
            (
                "kprobe/gadget_program_disabled",
                "disabled",
                "gadget_program_disabled",
            ),
            ("fentry/vfs_read", "fentry", "vfs_read"),
            ("fexit.s/vfs_read", "fexit", "vfs_read"),
            ("lsm/file_open", "lsm", "file_open"),
            ("iter/task", "iter", "task"),
            ("perf_event", "perf_event", ""),
            ("uprobe//bin/bash:readline", "uprobe", "/bin/bash:readline"),
            (
                "uretprobe//bin/bash:readline",
                "uretprobe",
                "/bin/bash:readline",
            ),
            ("usdt/libc:setjmp", "usdt", "libc:setjmp"),
            ("socket1", "socket_filter", ""),
            ("classifier/ingress/drop", "classifier", "ingress/drop"),
            ("sk_skb/stream_verdict", "sk_skb", "stream_verdict"),
            ("sk_msg", "sk_msg", ""),
            ("sockops", "sockops", ""),
            ("xdp", "other", ""),
        ];
        for (section, kind, target) in cases {
            let (k, t) = classify_section(section);
            assert_eq!((k.name(), t.as_str()), (kind, target), "{section}");
        }
        assert_eq!(
            classify_section("tracepoint/syscalls/sys_enter_openat").0,
            ProgramKind::Tracepoint {
                category: "syscalls".into(),
                name: "sys_enter_openat".into()
            }
        );
        assert_eq!(
            classify_section("iter/tcp").0,
            ProgramKind::Iter {
                target: "tcp".into()
            }
        );
        assert_eq!(classify_section("xdp").0, ProgramKind::Other("xdp".into()));
    }
}
