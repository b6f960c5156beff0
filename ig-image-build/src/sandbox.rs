//! Confining the C compiler with Landlock: while clang compiles a gadget's source it may read
//! only the allowed roots (gadget directory, include directories, SDK trees, system headers)
//! and the toolchain's own trees, and write only its scratch directory. This stops what the
//! preprocessor scan ([`super::reads`]) cannot see, such as the assembler's `.incbin` and
//! `.include` inside inline `asm("…")`. On a kernel without Landlock the compile runs
//! unconfined (logged once); the scan still applies.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError,
    path_beneath_rules,
};

/// The trees a toolchain needs besides the roots: its binaries, libraries and the dynamic
/// loader's cache. Nothing under `/etc` (but the loader cache), `/home`, `/root`, `/proc` or
/// `/tmp`.
const TOOLCHAIN_TREES: &[&str] = &[
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/dev/null",
];

/// The newest Landlock ABI whose rights are asked for (best effort: an older kernel enforces
/// what it knows).
const LANDLOCK_ABI: ABI = ABI::V5;

/// A Landlock ruleset ready to be applied to a child process.
#[derive(Debug)]
pub struct Sandbox {
    ruleset: Option<OwnedFd>,
}

impl Sandbox {
    /// A ruleset allowing reads (and execution) beneath `read`, the toolchain trees and the
    /// directory holding `compiler` (its install prefix), and everything beneath `write`.
    /// Paths that do not exist are skipped. Without Landlock support it confines nothing.
    pub fn new(compiler: &Path, read: &[PathBuf], write: &[PathBuf]) -> Sandbox {
        match build_ruleset(compiler, read, write) {
            Ok(ruleset) => {
                if ruleset.is_none() {
                    unconfined_once("the kernel does not support Landlock");
                }
                Sandbox { ruleset }
            }
            Err(e) => {
                unconfined_once(&e.to_string());
                Sandbox { ruleset: None }
            }
        }
    }

    /// Whether a ruleset will be applied.
    pub fn confines(&self) -> bool {
        self.ruleset.is_some()
    }

    /// Makes `cmd`'s process restrict itself before it executes (the ruleset must outlive the
    /// spawn). Temporary files go to `scratch`, which must be among the writable directories.
    pub fn apply(&self, cmd: &mut Command, scratch: &Path) {
        let Some(ruleset) = &self.ruleset else {
            return;
        };
        cmd.env("TMPDIR", scratch);
        let fd = ruleset.as_raw_fd();
        // SAFETY: between fork and exec the closure only makes two system calls (no allocation,
        // no locks), which is async-signal-safe; `fd` stays open until the spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

fn unconfined_once(why: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| log::info!("the C compiler runs without a Landlock sandbox: {why}"));
}

fn build_ruleset(
    compiler: &Path,
    read: &[PathBuf],
    write: &[PathBuf],
) -> Result<Option<OwnedFd>, RulesetError> {
    let existing = |paths: Vec<PathBuf>| -> Vec<PathBuf> {
        paths.into_iter().filter(|p| p.exists()).collect()
    };
    let mut readable: Vec<PathBuf> = read.to_vec();
    readable.extend(TOOLCHAIN_TREES.iter().map(PathBuf::from));
    // `/usr/lib/llvm-19/bin/clang` → `/usr/lib/llvm-19`; a toolchain under /opt works too.
    if let Ok(real) = std::fs::canonicalize(compiler)
        && let Some(prefix) = real.parent().and_then(Path::parent)
    {
        readable.push(prefix.to_path_buf());
    }
    let created = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))?
        .create()?
        .add_rules(path_beneath_rules(
            existing(readable),
            AccessFs::from_read(LANDLOCK_ABI),
        ))?
        .add_rules(path_beneath_rules(
            existing(write.to_vec()),
            AccessFs::from_all(LANDLOCK_ABI),
        ))?;
    Ok(created.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A confined `cat` reads inside the allowed tree and is refused outside it, through a
    /// symlink too (where the kernel has Landlock; otherwise there is nothing to test).
    #[test]
    fn a_confined_process_reads_only_the_allowed_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("allowed");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::write(allowed.join("in.txt"), "inside").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), allowed.join("link.txt"))
            .unwrap();
        let cat = Path::new("/bin/cat");
        let sandbox = Sandbox::new(
            cat,
            std::slice::from_ref(&allowed),
            std::slice::from_ref(&scratch),
        );
        if !sandbox.confines() {
            eprintln!("no Landlock on this kernel: nothing to test");
            return;
        }
        let run = |file: &Path| {
            let mut cmd = Command::new(cat);
            cmd.arg(file);
            sandbox.apply(&mut cmd, &scratch);
            cmd.output().unwrap()
        };
        let inside = run(&allowed.join("in.txt"));
        assert!(inside.status.success(), "{inside:?}");
        assert_eq!(inside.stdout, b"inside");
        for outside in [tmp.path().join("secret.txt"), allowed.join("link.txt")] {
            let out = run(&outside);
            assert!(!out.status.success(), "{}: {out:?}", outside.display());
            assert!(out.stdout.is_empty());
        }
        // /etc (but the loader cache) is not part of the toolchain trees.
        assert!(!run(Path::new("/etc/passwd")).status.success());
    }
}
