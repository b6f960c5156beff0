//! Tracepoints, raw tracepoints and kprobes (perf-event based attachments), and tracefs.

use std::path::Path;

use aya::programs::{KProbe, ProgramError, TracePoint};

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
    let cstr = |s: &str| std::ffi::CString::new(s).unwrap_or_default();
    let (src, target, fstype) = (cstr("tracefs"), cstr(TRACEFS), cstr("tracefs"));
    // SAFETY: the three pointers are valid NUL-terminated strings for the duration of the call;
    // `data` may be NULL for tracefs.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        log::info!("mounted tracefs at {TRACEFS}");
    } else {
        log::warn!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed: {}",
            std::io::Error::last_os_error()
        );
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

/// Functions kprobes can attach to (`available_filter_functions`, module suffixes dropped);
/// empty when the file cannot be read (then nothing is reported missing).
pub fn kprobe_functions() -> std::collections::HashSet<String> {
    let Some(fs) = tracefs_dir() else {
        return Default::default();
    };
    std::fs::read_to_string(fs.join("available_filter_functions"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Attaches a tracepoint program to `category/name`.
pub fn tracepoint(p: &mut TracePoint, category: &str, name: &str) -> Result<(), ProgramError> {
    p.attach(category, name).map(|_| ())
}

/// The kernel function implementing syscall `name` on this architecture.
pub fn syscall_fn(name: &str) -> String {
    let prefix = match std::env::consts::ARCH {
        "x86_64" => "__x64_sys_",
        "aarch64" => "__arm64_sys_",
        "riscv64" => "__riscv_sys_",
        "s390x" => "__s390x_sys_",
        "powerpc64" => "sys_",
        _ => "__se_sys_",
    };
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

/// Attaches a kprobe or kretprobe (the kind was fixed at load time): `kprobe/<fn>[+off]`, or
/// `ksyscall/<syscall>` / `kretsyscall/<syscall>` on the arch's syscall function.
pub fn kprobe(p: &mut KProbe, section: &str, target: &str) -> Result<(), ProgramError> {
    if section.starts_with("ksyscall/") || section.starts_with("kretsyscall/") {
        return p.attach(syscall_fn(target), 0).map(|_| ());
    }
    let (func, offset) = split_offset(target);
    p.attach(func, offset).map(|_| ())
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
