//! Go WASM modules (build.yaml `wasm: <file>.go`), built the way upstream's builder does:
//! `go build -C <dir of the file> -o program.wasm -buildmode=c-shared -ldflags "-w -s" <file>`
//! with `CGO_ENABLED=0 GOOS=wasip1 GOARCH=wasm` (a WASI reactor needs Go 1.24 or newer).
//!
//! The Go module is the one of the nearest `go.mod` at or above the file, and it must lie inside
//! the gadget directory. The build runs as an argument vector, never through a shell, and goes
//! through the build cache: the key holds the toolchain (its path and `go version`) and the
//! arguments, and every file of the module is a dependency re-hashed on lookup.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::cache::{BuildCache, KeyBuilder};
use super::rust::absolute;
use super::wasm::{Compiler, WasmError, WasmRequest, compiler_warnings, run_compiler, scratch_dir};

/// The oldest Go that builds `wasip1` reactors (`-buildmode=c-shared`, `//go:wasmexport`).
pub const MIN_GO_MINOR: u32 = 24;

/// How to get Go, for the error when it is missing or too old.
pub const GO_INSTALL: &str = "install Go 1.24 or newer (Debian: `apt-get install golang-1.24` or newer where your release has it, e.g. trixie; or a release from the Go project) and put its `go` on PATH, or set GO=/path/to/go";

/// Most files a Go module may have for its hashes to be kept as cache dependencies.
const MAX_MODULE_FILES: usize = 10_000;

/// A Go toolchain: where it is and what `go version` said.
#[derive(Debug, Clone)]
pub struct GoToolchain {
    /// The `go` binary.
    pub path: PathBuf,
    /// `go version` output, e.g. `go version go1.24.2 linux/amd64`.
    pub version: String,
}

/// Finds `go`: `$GO` when set, else the first `go` on `path` (the value of PATH).
pub fn find_go(env_go: Option<OsString>, path: Option<OsString>) -> Result<PathBuf, WasmError> {
    if let Some(go) = env_go.filter(|g| !g.is_empty()) {
        let go = PathBuf::from(go);
        return if go.is_file() {
            Ok(go)
        } else {
            Err(WasmError::Toolchain {
                what: format!("GO={} is not a file", go.display()),
                install: GO_INSTALL.into(),
            })
        };
    }
    path.as_ref()
        .map(std::env::split_paths)
        .into_iter()
        .flatten()
        .map(|dir| dir.join("go"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| WasmError::Toolchain {
            what: "the `wasm:` module is Go, and no `go` is on PATH".into(),
            install: GO_INSTALL.into(),
        })
}

/// The minor version of `go version` output (`go version go1.24.2 linux/amd64` -> 24).
pub fn go_minor(version_output: &str) -> Option<u32> {
    let word = version_output
        .split_whitespace()
        .find(|w| w.starts_with("go1."))?;
    word.strip_prefix("go1.")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Runs `go version` and checks it is new enough.
pub fn go_toolchain(go: &Path) -> Result<GoToolchain, WasmError> {
    let output = Command::new(go)
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|source| {
            WasmError::Io(crate::file_error::FileError {
                action: "run",
                path: go.to_path_buf(),
                source,
            })
        })?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match go_minor(&version) {
        Some(minor) if output.status.success() && minor >= MIN_GO_MINOR => Ok(GoToolchain {
            path: go.to_path_buf(),
            version,
        }),
        _ => Err(WasmError::Toolchain {
            what: format!(
                "`{} version` says `{}`: Go WASM modules need Go 1.{MIN_GO_MINOR} or newer (WASI reactors with -buildmode=c-shared)",
                go.display(),
                if version.is_empty() {
                    String::from_utf8_lossy(&output.stderr).trim().to_string()
                } else {
                    version
                }
            ),
            install: GO_INSTALL.into(),
        }),
    }
}

/// The directory of the nearest `go.mod` at or above `source`, which must be inside
/// `gadget_dir` (a build reads nothing outside the gadget).
pub fn module_root(source: &Path, gadget_dir: &Path) -> Option<PathBuf> {
    let gadget_dir = absolute(gadget_dir);
    let start = absolute(source.parent()?);
    start
        .ancestors()
        .take_while(|d| d.starts_with(&gadget_dir))
        .find(|d| d.join("go.mod").is_file())
        .map(Path::to_path_buf)
}

/// The regular files of the module (hidden directories skipped), sorted: the cache's
/// dependencies. `None` when there are more than [`MAX_MODULE_FILES`].
fn module_files(root: &Path) -> Option<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).ok()?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
                if out.len() > MAX_MODULE_FILES {
                    return None;
                }
            }
        }
    }
    out.sort();
    Some(out)
}

/// The `go build` arguments after `go`.
pub fn go_build_args(source: &Path, out: &Path) -> Vec<OsString> {
    let dir = source.parent().unwrap_or(Path::new("."));
    let file = source.file_name().unwrap_or(source.as_os_str());
    vec![
        "build".into(),
        "-C".into(),
        dir.as_os_str().to_os_string(),
        "-o".into(),
        out.as_os_str().to_os_string(),
        // A WASI reactor (exports `_initialize`), as the gadget module API wants.
        "-buildmode=c-shared".into(),
        "-ldflags".into(),
        "-w -s".into(),
        // The module does not depend on where it was built.
        "-trimpath".into(),
        "-buildvcs=false".into(),
        file.to_os_string(),
    ]
}

/// Build a Go `wasm:` source (see the module docs). Returns the module bytes and warnings.
pub fn compile_go(req: &WasmRequest<'_>) -> Result<(Vec<u8>, Vec<String>), WasmError> {
    let go = find_go(std::env::var_os("GO"), std::env::var_os("PATH"))?;
    let toolchain = go_toolchain(&go)?;
    let source = absolute(req.source);
    let root = module_root(&source, req.gadget_dir).ok_or_else(|| WasmError::Unsupported {
        build_file: req.build_file.map(Path::to_path_buf),
        path: req.source.to_path_buf(),
        message: format!(
            "no `go.mod` in its directory or above it inside the gadget directory `{}`: a Go module is built from its Go module",
            req.gadget_dir.display()
        ),
    })?;
    let cache = req.use_cache.then(|| BuildCache::new(req.cache_root));
    let placeholder_out = Path::new("program.wasm");
    let key = {
        let mut k = KeyBuilder::new();
        k.add("wasm-go-v1")
            .add(toolchain.path.as_os_str().as_encoded_bytes())
            .add(&toolchain.version)
            .add(source.as_os_str().as_encoded_bytes())
            .add(root.as_os_str().as_encoded_bytes());
        for a in go_build_args(&source, placeholder_out) {
            k.add(a.as_encoded_bytes());
        }
        k.finish()
    };
    // Nothing is immutable: every file of the module is re-hashed on lookup.
    let no_immutable = Path::new("/nonexistent/ig-image/immutable");
    if let Some(bytes) = cache.as_ref().and_then(|c| c.lookup(&key, no_immutable)) {
        return Ok((bytes, Vec::new()));
    }
    let work = scratch_dir("ig-image-wasm-go-")?;
    let out = work.path().join("program.wasm");
    let mut cmd = Command::new(&toolchain.path);
    cmd.args(go_build_args(&source, &out))
        .env("CGO_ENABLED", "0")
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env_remove("GOFLAGS");
    if std::env::var_os("GOTOOLCHAIN").is_none() {
        // Never fetch another toolchain behind the user's back.
        cmd.env("GOTOOLCHAIN", "local");
    }
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        cmd.env("GOCACHE", req.cache_root.join("go-build"));
    }
    let (_, stderr) = run_compiler(
        &mut cmd,
        &Compiler {
            program: &toolchain.path,
            tool: format!("{} build", toolchain.path.display()),
            source_path: req.source,
            stderr_lines: Some(60),
        },
    )?;
    let bytes = super::wasm::read(&out)?;
    if let (Some(cache), Some(deps)) = (&cache, module_files(&root)) {
        if !deps.is_empty() {
            cache.store(&key, &bytes, &deps, no_immutable);
        }
    }
    Ok((bytes, compiler_warnings(&stderr)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn no_go_on_path_names_the_tool_and_the_version_needed() {
        let empty = tempfile::tempdir().unwrap();
        let err = find_go(None, Some(empty.path().as_os_str().to_os_string())).unwrap_err();
        // As printed: the message, then the install hint.
        let text = gadget_store::hint::render_error(
            &err,
            gadget_store::hint::hints_if::<WasmError>,
            "error",
        );
        assert!(text.contains("no `go` is on PATH"), "{text}");
        assert!(text.contains("Go 1.24 or newer"), "{text}");
        let err = find_go(Some("/nonexistent/go".into()), None).unwrap_err();
        assert!(
            err.to_string().contains("GO=/nonexistent/go is not a file"),
            "{err}"
        );
    }

    #[test]
    fn go_is_found_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        std::fs::write(&go, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), dir.path()]).unwrap();
        assert_eq!(find_go(None, Some(path)).unwrap(), go);
    }

    #[test]
    fn versions_are_parsed() {
        assert_eq!(go_minor("go version go1.24.2 linux/amd64"), Some(24));
        assert_eq!(go_minor("go version go1.23.5 linux/amd64"), Some(23));
        assert_eq!(go_minor("go version go1.25rc1 linux/arm64"), Some(25));
        assert_eq!(go_minor("garbage"), None);
    }

    #[test]
    fn an_old_go_is_refused_with_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        std::fs::write(&go, "#!/bin/sh\necho 'go version go1.23.5 linux/amd64'\n").unwrap();
        std::fs::set_permissions(&go, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = go_toolchain(&go).unwrap_err().to_string();
        assert!(err.contains("go1.23.5"), "{err}");
        assert!(err.contains("Go 1.24 or newer"), "{err}");
    }

    #[test]
    fn the_module_root_is_the_nearest_go_mod_inside_the_gadget() {
        let gadget = tempfile::tempdir().unwrap();
        let go_dir = gadget.path().join("go");
        std::fs::create_dir_all(go_dir.join("sub")).unwrap();
        std::fs::write(go_dir.join("go.mod"), "module x\n").unwrap();
        let source = go_dir.join("sub").join("program.go");
        std::fs::write(&source, "package main\n").unwrap();
        assert_eq!(module_root(&source, gadget.path()), Some(absolute(&go_dir)));
        // A go.mod above the gadget directory is not used.
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("go.mod"), "module outer\n").unwrap();
        let inner = outer.path().join("gadget");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join("program.go"), "package main\n").unwrap();
        assert_eq!(module_root(&inner.join("program.go"), &inner), None);
    }

    #[test]
    fn build_arguments_are_upstreams() {
        let args: Vec<String> =
            go_build_args(Path::new("/g/go/program.go"), Path::new("/o/p.wasm"))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect();
        assert_eq!(
            args,
            [
                "build",
                "-C",
                "/g/go",
                "-o",
                "/o/p.wasm",
                "-buildmode=c-shared",
                "-ldflags",
                "-w -s",
                "-trimpath",
                "-buildvcs=false",
                "program.go"
            ]
        );
    }
}
