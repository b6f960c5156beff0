//! The one I/O error of ig-image-build: an action on a file or tool that failed, with its
//! path ("cannot read `gadget.yaml`"), wrapped by every error type that touches files.

use std::path::PathBuf;

/// A file or tool that could not be read, written, created or run.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{}`", path.display())]
pub struct FileError {
    /// What was being done: read, write, create, run.
    pub action: &'static str,
    /// The file or tool.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}
