//! Tracepoints, raw tracepoints and kprobes (perf-event based attachments), and tracefs.

use std::path::Path;

use gadget_facts::platform::Platform;

/// Where tracefs is normally mounted.
const TRACEFS: &str = "/sys/kernel/tracing";

fn has_entries(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some())
}

/// Mounts tracefs at /sys/kernel/tracing when neither it nor /sys/kernel/debug/tracing is
/// mounted (tracepoints and the legacy kprobe interface need it). Needs CAP_SYS_ADMIN in the
/// host's mount namespace; a failure is only logged: attaching then reports what is missing.
pub fn ensure_tracefs() {
    if has_entries(Path::new(TRACEFS)) || has_entries(Path::new("/sys/kernel/debug/tracing")) {
        return;
    }
    match crate::host_fs::mount_kernel_fs("tracefs", Path::new(TRACEFS)) {
        Ok(()) => log::info!("mounted tracefs at {TRACEFS}"),
        Err(e) => log::warn!("tracefs is not mounted and mounting it at {TRACEFS} failed: {e}"),
    }
}

/// The mounted tracefs, if any.
pub fn tracefs_dir() -> Option<std::path::PathBuf> {
    [TRACEFS, "/sys/kernel/debug/tracing"]
        .iter()
        .map(Path::new)
        .find(|p| has_entries(p))
        .map(Path::to_path_buf)
}

/// Whether a tracepoint called `name` exists in any category.
pub fn raw_tracepoint_exists(tracefs: &Path, name: &str) -> bool {
    std::fs::read_dir(tracefs.join("events"))
        .map(|d| d.flatten().any(|cat| cat.path().join(name).is_dir()))
        .unwrap_or(false)
}

/// Why kprobes cannot be attached on this kernel at all, if they cannot: libbpf attaches them
/// through the kprobe PMU (`/sys/bus/event_source/devices/kprobe`) or tracefs `kprobe_events`.
pub fn kprobes_unsupported() -> Option<&'static str> {
    let pmu = Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let events = tracefs_dir().is_some_and(|fs| fs.join("kprobe_events").exists());
    (!pmu && !events).then_some(
        "this kernel cannot attach kprobes: no kprobe PMU in /sys/bus/event_source/devices and no kprobe_events in tracefs (built without CONFIG_KPROBE_EVENTS)",
    )
}

/// Which of `wanted` are kernel functions a kprobe can attach to: names listed in tracefs'
/// `available_filter_functions`, or, where that file is not readable (lockdown), text symbols
/// of `/proc/kallsyms`. `None` when neither can be read.
pub fn kprobe_functions(wanted: &[String]) -> Option<std::collections::HashSet<String>> {
    use std::io::BufRead as _;
    let want: std::collections::HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut found = std::collections::HashSet::new();
    let filter = tracefs_dir().map(|fs| fs.join("available_filter_functions"));
    if let Some(f) = filter.and_then(|p| std::fs::File::open(p).ok()) {
        for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
            if let Some(name) = line.split_whitespace().next().filter(|n| want.contains(n)) {
                found.insert(name.to_string());
            }
        }
        return Some(found);
    }
    let f = std::fs::File::open("/proc/kallsyms").ok()?;
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        let mut parts = line.split_whitespace();
        let (Some(_), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if matches!(kind, "t" | "T") && want.contains(name) {
            found.insert(name.to_string());
        }
    }
    Some(found)
}

/// The kernel function implementing syscall `name` on this architecture.
pub fn syscall_fn(name: &str) -> String {
    let prefix = Platform::host().map_or("__se_sys_", |p| p.syscall_prefixes()[0]);
    format!("{prefix}{name}")
}

/// `do_sys_openat2+0x10` → (`do_sys_openat2`, 16).
pub fn split_offset(target: &str) -> (&str, u64) {
    match target.split_once('+') {
        Some((f, off)) => {
            let off = off.trim();
            let v = match off.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => off.parse().ok(),
            };
            (f, v.unwrap_or(0))
        }
        None => (target, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_syscalls() {
        assert_eq!(split_offset("vfs_read"), ("vfs_read", 0));
        assert_eq!(split_offset("vfs_read+0x10"), ("vfs_read", 16));
        assert_eq!(split_offset("vfs_read+8"), ("vfs_read", 8));
        assert!(syscall_fn("execve").ends_with("sys_execve"));
    }
}
