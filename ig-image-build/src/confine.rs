//! Keeping what a gadget directory names inside it: every path build.yaml gives (and the default
//! files, and `-I` in `cflags`) must resolve, after symlinks, to a place inside the directory.
//! Paths from the command line (`--sdk-dir`, `-I`, `-f`) are the user's own and are not confined.

use std::path::{Component, Path, PathBuf};

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escape {
    /// It resolves (after symlinks) to `resolved`, outside the directory.
    Outside {
        /// Where it leads.
        resolved: PathBuf,
    },
    /// A symlink on the way cannot be resolved (it dangles, loops or cannot be read).
    Unresolvable {
        /// The part that could not be resolved.
        at: PathBuf,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Escape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Escape::Outside { resolved } => write!(
                f,
                "resolves to `{}`, outside the gadget directory",
                resolved.display()
            ),
            Escape::Unresolvable { at, reason } => {
                write!(f, "cannot be resolved at `{}`: {reason}", at.display())
            }
        }
    }
}

/// The gadget directory, resolved once.
#[derive(Debug, Clone)]
pub struct GadgetRoot {
    root: PathBuf,
}

impl GadgetRoot {
    /// Resolves `dir` (which must exist).
    pub fn new(dir: &Path) -> std::io::Result<GadgetRoot> {
        Ok(GadgetRoot {
            root: std::fs::canonicalize(dir)?,
        })
    }

    /// The resolved directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves `path` (relative to the directory, or absolute) following every symlink of its
    /// existing part; the part that does not exist yet is taken as written (without `..`).
    /// Returns the resolved path when it is inside the directory.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf, Escape> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        };
        // Split into the longest existing prefix and the rest.
        let mut existing = full.clone();
        let mut rest: Vec<std::ffi::OsString> = Vec::new();
        let resolved_prefix = loop {
            match std::fs::canonicalize(&existing) {
                Ok(p) => break p,
                Err(e) => {
                    // Present but unresolvable: a dangling or looping symlink, or no permission.
                    if existing.symlink_metadata().is_ok() {
                        return Err(Escape::Unresolvable {
                            at: existing,
                            reason: e.to_string(),
                        });
                    }
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(Escape::Unresolvable {
                            at: existing,
                            reason: e.to_string(),
                        });
                    };
                    rest.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
            }
        };
        let mut resolved = resolved_prefix;
        for name in rest.iter().rev() {
            // `file_name` never yields `..` or `.`; a trailing `..` leaves `file_name` None
            // and is caught above, so only normal names are appended here.
            resolved.push(name);
        }
        if Path::new(&resolved)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
            || !resolved.starts_with(&self.root)
        {
            return Err(Escape::Outside { resolved });
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, GadgetRoot) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gadget");
        std::fs::create_dir_all(dir.join("include")).unwrap();
        std::fs::write(dir.join("program.bpf.c"), "").unwrap();
        std::fs::write(tmp.path().join("secret.json"), "{}").unwrap();
        let root = GadgetRoot::new(&dir).unwrap();
        (tmp, root)
    }

    #[test]
    fn paths_inside_resolve() {
        let (_tmp, root) = setup();
        assert_eq!(
            root.resolve(Path::new("program.bpf.c")).unwrap(),
            root.path().join("program.bpf.c")
        );
        assert_eq!(
            root.resolve(Path::new("include/../program.bpf.c")).unwrap(),
            root.path().join("program.bpf.c")
        );
        // Not there yet (gadget.yaml before --update-metadata).
        assert_eq!(
            root.resolve(Path::new("sub/new.yaml")).unwrap(),
            root.path().join("sub/new.yaml")
        );
        let abs = root.path().join("include");
        assert_eq!(root.resolve(&abs).unwrap(), abs);
    }

    #[test]
    fn dotdot_absolute_and_symlinks_out_are_refused() {
        let (tmp, root) = setup();
        let secret = std::fs::canonicalize(tmp.path().join("secret.json")).unwrap();
        for p in ["../secret.json", "include/../../secret.json"] {
            assert_eq!(
                root.resolve(Path::new(p)),
                Err(Escape::Outside {
                    resolved: secret.clone()
                }),
                "{p}"
            );
        }
        assert!(matches!(
            root.resolve(Path::new("/etc/passwd")),
            Err(Escape::Outside { .. })
        ));
        symlink(&secret, root.path().join("gadget.yaml")).unwrap();
        assert_eq!(
            root.resolve(Path::new("gadget.yaml")),
            Err(Escape::Outside {
                resolved: secret.clone()
            })
        );
        symlink(tmp.path(), root.path().join("up")).unwrap();
        assert!(matches!(
            root.resolve(Path::new("up/secret.json")),
            Err(Escape::Outside { .. })
        ));
        // A path through a missing directory cannot climb back out with `..`.
        assert!(
            root.resolve(Path::new("missing/../../secret.json"))
                .is_err()
        );
        symlink("/nonexistent/target", root.path().join("dangling")).unwrap();
        assert!(matches!(
            root.resolve(Path::new("dangling")),
            Err(Escape::Unresolvable { .. })
        ));
    }
}
