//! Keeping what a gadget's C source reads inside the allowed roots: a dependency list of every
//! file it reads (`#include`, `#include_next`, `#embed`, and the existing files
//! `__has_include`/`__has_embed` probe) is checked before anything clang produced is used, and
//! each must resolve, after symlinks, inside the gadget directory, an include directory, an SDK
//! or the compiler's own system headers. The list is a preprocessing pass's (`-M -MG`, run
//! before an unconfined compile, or after a confined one that failed) or the compile's own
//! (`-MD`, always checked).
//!
//! clang's Make-format dependency list is not fully reversible (a file name ending in `\` or
//! holding a newline is written ambiguously), so it is read strictly: anything that could be
//! read two ways is refused rather than guessed at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// Why a source's reads are refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A file it reads resolves outside every allowed root.
    #[error(
        "`{source_path}` reads `{dependency}`, which resolves to `{resolved}`: outside the gadget directory, its include directories, the SDK and the compiler's own headers (a gadget's sources may read nothing else; clang's messages are withheld)"
    )]
    Outside {
        /// The source being compiled, as the user names it.
        source_path: PathBuf,
        /// The file as clang names it (an `#include`d name, a symlink, an absolute path).
        dependency: PathBuf,
        /// Where it leads after symlinks.
        resolved: PathBuf,
    },
    /// A file it reads cannot be resolved.
    #[error(
        "`{source_path}` reads `{dependency}`, which cannot be resolved ({reason}); clang's messages are withheld"
    )]
    Unresolvable {
        /// The source.
        source_path: PathBuf,
        /// The file as clang names it.
        dependency: PathBuf,
        /// Why.
        reason: String,
    },
    /// The list of files it reads cannot be obtained or read unambiguously.
    #[error(
        "cannot tell which files `{source_path}` reads: {reason}; clang's messages are withheld because they could quote a file outside the gadget directory"
    )]
    Unlisted {
        /// The source.
        source_path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The directories a compile may read from, resolved once.
#[derive(Debug)]
pub struct AllowedRoots {
    roots: Vec<PathBuf>,
    clang: PathBuf,
    target: Vec<String>,
    system: OnceLock<Vec<PathBuf>>,
}

impl AllowedRoots {
    /// `dirs` (the gadget directory, include directories, SDK trees; missing ones are skipped)
    /// plus the system include directories `clang` searches for `target` (asked only when a
    /// file is not inside `dirs`).
    pub fn new(
        dirs: impl IntoIterator<Item = PathBuf>,
        clang: &Path,
        target: &[String],
    ) -> AllowedRoots {
        AllowedRoots {
            roots: dirs
                .into_iter()
                .filter_map(|d| std::fs::canonicalize(d).ok())
                .collect(),
            clang: clang.to_path_buf(),
            target: target.to_vec(),
            system: OnceLock::new(),
        }
    }

    /// Every root, the compiler's system include directories included.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut all = self.roots.clone();
        all.extend(
            self.system
                .get_or_init(|| system_include_dirs(&self.clang, &self.target))
                .iter()
                .cloned(),
        );
        all
    }

    /// Whether the resolved path `path` lies inside a root.
    pub fn contains(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r))
            || self
                .system
                .get_or_init(|| system_include_dirs(&self.clang, &self.target))
                .iter()
                .any(|r| path.starts_with(r))
    }
}

/// The `#include <...>` directories clang searches by itself for a target (its resource
/// directory, `/usr/include`, ...), resolved; asked once per compiler and target, however many
/// platforms' compiles ask at the same time (the others wait for the one answer).
fn system_include_dirs(clang: &Path, target: &[String]) -> Vec<PathBuf> {
    type Known = Mutex<HashMap<(PathBuf, Vec<String>), Arc<OnceLock<Vec<PathBuf>>>>>;
    static KNOWN: OnceLock<Known> = OnceLock::new();
    let key = (clang.to_path_buf(), target.to_vec());
    let answer = Arc::clone(
        KNOWN
            .get_or_init(Known::default)
            .lock()
            .expect("not poisoned")
            .entry(key)
            .or_default(),
    );
    answer
        .get_or_init(|| ask_system_include_dirs(clang, target))
        .clone()
}

/// Asks `clang -E -v` for its system include directories.
fn ask_system_include_dirs(clang: &Path, target: &[String]) -> Vec<PathBuf> {
    let output = Command::new(clang)
        .args(target)
        .args(["-E", "-v", "-x", "c", "/dev/null", "-o", "/dev/null"])
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(out) => parse_search_list(&String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            log::warn!(
                "cannot ask `{}` for its include directories: {e}",
                clang.display()
            );
            Vec::new()
        }
    }
}

/// The directories between `#include <...> search starts here:` and `End of search list.` in
/// `clang -E -v` output, resolved (missing ones dropped).
fn parse_search_list(stderr: &str) -> Vec<PathBuf> {
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("#include <...> search starts here:"))
        .skip(1)
        .take_while(|l| !l.starts_with("End of search list."))
        .map(|l| l.trim().trim_end_matches(" (framework directory)"))
        .filter_map(|l| std::fs::canonicalize(l).ok())
        .collect()
}

/// The target name every dependency list is written for (`-MT`): a fixed name, so that the
/// first colon of the list ends it whatever the source is called.
pub const DEPENDENCY_TARGET: &str = "ig-image-target";

/// One compile to scan: the same arguments the compile gets, in the same directory.
#[derive(Debug)]
pub struct Scan<'a> {
    /// clang.
    pub clang: &'a Path,
    /// Every argument but the source, the output and the dependency flags.
    pub args: &'a [String],
    /// The directory clang runs in (relative dependency paths are relative to it).
    pub cwd: &'a Path,
    /// The source as passed to clang.
    pub source_arg: &'a Path,
    /// The source as the user names it (for messages).
    pub source_path: &'a Path,
    /// Where the dependency list may be written.
    pub work: &'a Path,
}

/// Runs the preprocessor over the source (`-M -MG`: missing headers do not stop it, errors do
/// not hide the list) and checks every file it read. Run before compiling: only then may the
/// compiler's messages be shown, as they can quote what it read.
pub fn scan_before_compile(scan: &Scan<'_>, roots: &AllowedRoots) -> Result<(), ReadError> {
    let depfile = scan.work.join("reads.d");
    let output = Command::new(scan.clang)
        .current_dir(scan.cwd)
        .args(scan.args)
        .args(["-M", "-MG", "-MT", DEPENDENCY_TARGET, "-MF"])
        .arg(&depfile)
        .arg(scan.source_arg)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ReadError::Unlisted {
            source_path: scan.source_path.to_path_buf(),
            reason: format!("cannot run `{}`: {e}", scan.clang.display()),
        })?;
    let text = std::fs::read(&depfile).map_err(|e| ReadError::Unlisted {
        source_path: scan.source_path.to_path_buf(),
        reason: format!(
            "the preprocessor ({}) wrote no dependency list: {e}",
            output.status
        ),
    })?;
    check_listed(&text, scan.cwd, scan.source_path, roots, true).map(|_| ())
}

/// Runs a compile (`compile`: spawn clang, give back its output) so that nothing it produces is
/// used before what it read has been checked. Unconfined, the scan comes first and nothing that
/// reads outside the roots is compiled. `confined` (clang under a Landlock sandbox that lets it
/// read only the roots and the toolchain's trees), the compile runs first and the scan only when
/// it failed, to decide whether its messages may be shown. Either way, the caller checks the
/// compile's own dependency list ([`check_listed`]) before using its object or warnings.
pub fn compile_checked<E: From<ReadError>>(
    scan: &Scan<'_>,
    roots: &AllowedRoots,
    confined: bool,
    compile: impl FnOnce() -> Result<std::process::Output, E>,
) -> Result<std::process::Output, E> {
    if !confined {
        scan_before_compile(scan, roots)?;
    }
    let output = compile()?;
    if confined && !output.status.success() {
        scan_before_compile(scan, roots)?;
    }
    Ok(output)
}

/// Checks a dependency list clang wrote (`text`; relative paths are relative to `cwd`) and
/// returns every file in it, resolved. With `allow_missing`, names that do not exist (headers
/// `-MG` listed as missing) are skipped; otherwise each must exist.
pub fn check_listed(
    text: &[u8],
    cwd: &Path,
    source_path: &Path,
    roots: &AllowedRoots,
    allow_missing: bool,
) -> Result<Vec<PathBuf>, ReadError> {
    let unlisted = |reason: String| ReadError::Unlisted {
        source_path: source_path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(text)
        .map_err(|_| unlisted("the dependency list is not UTF-8".into()))?;
    let names = parse_strict(text).map_err(unlisted)?;
    let mut resolved = Vec::with_capacity(names.len());
    for name in names {
        // A piece of a name that could also be read as a whole file name ending in `\`.
        for candidate in &name.ambiguous {
            if cwd.join(candidate).symlink_metadata().is_ok() {
                return Err(unlisted(format!(
                    "`{}` could also be read as the file `{}`",
                    name.path.display(),
                    candidate.display()
                )));
            }
        }
        let full = cwd.join(&name.path);
        match std::fs::canonicalize(&full) {
            Ok(real) => {
                if !roots.contains(&real) {
                    return Err(ReadError::Outside {
                        source_path: source_path.to_path_buf(),
                        dependency: name.path,
                        resolved: real,
                    });
                }
                resolved.push(real);
            }
            Err(e) => {
                let absent =
                    e.kind() == std::io::ErrorKind::NotFound && full.symlink_metadata().is_err();
                if !(allow_missing && absent) {
                    return Err(ReadError::Unresolvable {
                        source_path: source_path.to_path_buf(),
                        dependency: name.path,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(resolved)
}

/// Checks files a cache entry recorded (resolved when recorded; resolved again, as a symlink
/// may have changed since).
pub fn check_paths(
    paths: &[PathBuf],
    source_path: &Path,
    roots: &AllowedRoots,
) -> Result<(), ReadError> {
    for path in paths {
        let real = std::fs::canonicalize(path).map_err(|e| ReadError::Unresolvable {
            source_path: source_path.to_path_buf(),
            dependency: path.clone(),
            reason: e.to_string(),
        })?;
        if !roots.contains(&real) {
            return Err(ReadError::Outside {
                source_path: source_path.to_path_buf(),
                dependency: path.clone(),
                resolved: real,
            });
        }
    }
    Ok(())
}

/// One file name from a dependency list.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    /// The name, unescaped.
    path: PathBuf,
    /// Other file names the same text could stand for (an escaped space that may instead end a
    /// name with `\`): if one exists, the list is ambiguous.
    ambiguous: Vec<PathBuf>,
}

/// Reads clang's Make-format list (`target: dep dep \⏎ dep`) the way clang writes it: spaces
/// separate names, `\ ` is a space in a name, `\#` a `#`, `$$` a `$`, ` \⏎ ` continues the
/// line. Anything else with a backslash, a `$`, a newline or a control character is refused:
/// clang writes such names unescaped, so they could hide a file.
fn parse_strict(text: &str) -> Result<Vec<Listed>, String> {
    // The target is fixed (`-MT`), so the first colon ends it.
    let Some(colon) = text.find(':') else {
        return Err("the dependency list has no `target:`".into());
    };
    let body = &text[colon + 1..];
    let Some(body) = body.strip_suffix('\n') else {
        return Err("the dependency list does not end with a newline".into());
    };
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    // Where the escaped spaces of the current name are (byte offsets into `current`).
    let mut spaces: Vec<usize> = Vec::new();
    let finish = |current: &mut String, spaces: &mut Vec<usize>, out: &mut Vec<Listed>| {
        if current.is_empty() {
            return;
        }
        let name = std::mem::take(current);
        let mut ambiguous = Vec::new();
        // Each run of pieces between escaped spaces, ending at an escaped space, could be a
        // whole name that ends in `\` (clang does not double a backslash before a separator).
        let mut starts = vec![0];
        starts.extend(spaces.iter().map(|&s| s + 1));
        for (i, &start) in starts.iter().enumerate() {
            for &end in &spaces[i..] {
                ambiguous.push(PathBuf::from(format!("{}\\", &name[start..end])));
            }
        }
        spaces.clear();
        out.push(Listed {
            path: PathBuf::from(name),
            ambiguous,
        });
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => match chars.get(i + 1) {
                Some(' ') => {
                    spaces.push(current.len());
                    current.push(' ');
                    i += 1;
                }
                Some('#') => {
                    current.push('#');
                    i += 1;
                }
                Some('\n')
                    if current.is_empty()
                        && i > 0
                        && chars[i - 1] == ' '
                        && chars.get(i + 2) == Some(&' ') =>
                {
                    i += 1;
                }
                _ => return Err("a file name holds a backslash".into()),
            },
            '$' => {
                if chars.get(i + 1) == Some(&'$') {
                    current.push('$');
                    i += 1;
                } else {
                    return Err("a file name holds an unescaped `$`".into());
                }
            }
            ' ' => finish(&mut current, &mut spaces, &mut out),
            '\n' => return Err("a file name holds a newline".into()),
            c if c.is_control() => {
                return Err(format!(
                    "a file name holds the control character U+{:04X}",
                    c as u32
                ));
            }
            c => current.push(c),
        }
        i += 1;
    }
    finish(&mut current, &mut spaces, &mut out);
    if out.is_empty() {
        return Err("the dependency list names no file".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        parse_strict(text)
            .unwrap()
            .into_iter()
            .map(|l| l.path.display().to_string())
            .collect()
    }

    #[test]
    fn reads_clang_lists() {
        assert_eq!(
            names("x.o: x.c vmlinux.h \\\n  /sdk/include/bpf/bpf_helpers.h\n"),
            ["x.c", "vmlinux.h", "/sdk/include/bpf/bpf_helpers.h"]
        );
        // A long first name starts on a continuation line.
        assert_eq!(names("x.o: \\\n  /a/b.c \\\n  /c.h\n"), ["/a/b.c", "/c.h"]);
        assert_eq!(
            names("x.o: my\\ dir/x.c a\\#b.h c$$d.h\n"),
            ["my dir/x.c", "a#b.h", "c$d.h"]
        );
    }

    #[test]
    fn escaped_spaces_name_the_other_reading() {
        let listed = parse_strict("x.o: y\\ /etc/passwd\n").unwrap();
        assert_eq!(listed[0].path, Path::new("y /etc/passwd"));
        assert_eq!(listed[0].ambiguous, [PathBuf::from("y\\")]);
        let listed = parse_strict("x.o: a\\ b\\ c\n").unwrap();
        assert_eq!(
            listed[0].ambiguous,
            ["a\\", "a b\\", "b\\"].map(PathBuf::from)
        );
    }

    #[test]
    fn names_that_clang_writes_unescaped_are_refused() {
        for bad in [
            "x.o:\\\n a.h\n",
            "x.o: a\\\\ b\n",
            "x.o: a\\b.h\n",
            "x.o: a\nb.h\n",
            "x.o: a.h\\\nb.h\n",
            "x.o: a$b\n",
            "x.o: a\u{7}b\n",
            "x.o: a.h",
            "no colon\n",
            "x.o: \n",
        ] {
            assert!(parse_strict(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outside_and_ambiguous_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let gadget = tmp.path().join("gadget");
        std::fs::create_dir_all(&gadget).unwrap();
        std::fs::write(gadget.join("in.h"), "").unwrap();
        std::fs::write(tmp.path().join("secret.h"), "").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.h"), gadget.join("link.h")).unwrap();
        // No system directories: a clang that does not exist answers nothing.
        let roots = AllowedRoots::new([gadget.clone()], Path::new("/nonexistent/clang"), &[]);
        let src = Path::new("program.bpf.c");
        let check =
            |text: &str, missing| check_listed(text.as_bytes(), &gadget, src, &roots, missing);
        assert_eq!(check("x.o: in.h\n", false).unwrap().len(), 1);
        assert!(matches!(
            check("x.o: in.h link.h\n", false),
            Err(ReadError::Outside { dependency, .. }) if dependency == Path::new("link.h")
        ));
        assert!(matches!(
            check("x.o: in.h ../secret.h\n", false),
            Err(ReadError::Outside { .. })
        ));
        // A missing header: fine while scanning with -MG, not after a compile.
        assert_eq!(check("x.o: in.h gen.h\n", true).unwrap().len(), 1);
        assert!(matches!(
            check("x.o: in.h gen.h\n", false),
            Err(ReadError::Unresolvable { .. })
        ));
        // `y\` then `../secret.h`, or one file `y ../secret.h`: refused once `y\` exists.
        std::fs::create_dir_all(gadget.join("y ..")).unwrap();
        std::fs::write(gadget.join("y ../secret.h"), "").unwrap();
        assert!(check("x.o: y\\ ../secret.h\n", false).is_ok());
        std::fs::write(gadget.join("y\\"), "").unwrap();
        assert!(matches!(
            check("x.o: y\\ ../secret.h\n", false),
            Err(ReadError::Unlisted { .. })
        ));
    }

    #[test]
    fn the_search_list_is_read_from_clang_verbose_output() {
        let stderr = "clang -cc1 ...\n#include \"...\" search starts here:\n#include <...> search starts here:\n /usr/include\n /nonexistent/dir\n /usr/lib (framework directory)\nEnd of search list.\n";
        assert_eq!(
            parse_search_list(stderr),
            [PathBuf::from("/usr/include"), PathBuf::from("/usr/lib")]
        );
    }
}
