//! The gadget's WASM module (build.yaml `wasm:`): taken as is (`*.wasm`), compiled from C
//! (`*.c`: clang `--target=wasm32-wasi -mexec-model=reactor` against Debian's wasi-libc), from Go
//! (`*.go`: `go build -buildmode=c-shared` for `wasip1`, see [`super::wasm_go`]), or from a Rust
//! crate (a `Cargo.toml`, a directory holding one, or a `*.rs` file inside one), and then
//! validated against the module API of gadget-image.md §9 before it goes into the image.
//!
//! Validation ([`validate`]) parses the module with wasmparser and checks, naming the culprit:
//! - it is a valid WebAssembly module;
//! - it is a WASI reactor: exports `_initialize: () -> ()` and no `_start`;
//! - it exports its `memory` (the host reads strings and buffers from it);
//! - it exports `gadgetAPIVersion: () -> i64`;
//! - the lifecycle exports it has are `() -> i32` (`gadgetInit`, `gadgetPreStart`, `gadgetStart`,
//!   `gadgetStop`, `gadgetPostStop`) and `dataSourceCallback` is `(i64, i32, i32) -> ()`;
//! - every import is a WASI preview1 function (`wasi_snapshot_preview1`) or one of the 41 `ig`
//!   host functions (`gadget_facts::wasm_api::HOST_FUNCTIONS`, the table the runtime uses too)
//!   with exactly its signature.
//!
//! [`ModuleInfo`] is public so a runtime can list which `ig` imports of a module it does not
//! implement. Nothing here runs the module.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType, Validator,
    WasmFeatures,
};

use super::cache::{BuildCache, KeyBuilder};
use super::reads::{self, AllowedRoots, ReadError};
use super::sandbox::Sandbox;

pub use gadget_facts::wasm_api::{API_VERSION, IG_MODULE, WASI_MODULE};
use gadget_facts::wasm_api::{HOST_FUNCTIONS, ValueType};

/// Value types of the exports' signatures.
const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// The WASM value types of an `ig` signature, as wasmparser spells them.
fn val_types(types: &[ValueType]) -> Vec<ValType> {
    types
        .iter()
        .map(|t| match t {
            ValueType::I32 => ValType::I32,
            ValueType::I64 => ValType::I64,
        })
        .collect()
}

/// The functions of WASI preview1 (`wasi_snapshot_preview1`).
pub const WASI_PREVIEW1: [&str; 46] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// Optional lifecycle exports, each `() -> i32` (non-zero = failure).
pub const LIFECYCLE_EXPORTS: [&str; 5] = [
    "gadgetInit",
    "gadgetPreStart",
    "gadgetStart",
    "gadgetStop",
    "gadgetPostStop",
];

/// What to build.
#[derive(Debug)]
pub struct WasmRequest<'a> {
    /// The `wasm:` value resolved against the gadget directory.
    pub source: &'a Path,
    /// The gadget directory (`-I` for C sources).
    pub gadget_dir: &'a Path,
    /// The build file that named it (for messages).
    pub build_file: Option<&'a Path>,
    /// The cache directory (C compiles are cached; Rust target directories live below it).
    pub cache_root: &'a Path,
    /// Whether the object cache may be used (`--no-cache` turns it off).
    pub use_cache: bool,
}

/// A built and validated module.
#[derive(Debug, Clone)]
pub struct WasmModule {
    /// The module bytes, as they go into the image's WASM layer.
    pub bytes: Vec<u8>,
    /// Compiler warnings and validation warnings.
    pub warnings: Vec<String>,
    /// What the module imports and exports.
    pub info: ModuleInfo,
}

/// The functions a module imports and exports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    /// `(module, name)` of every function import.
    pub imports: Vec<(String, String)>,
    /// Names of the exported functions.
    pub exports: Vec<String>,
}

impl ModuleInfo {
    /// The `ig` functions the module imports.
    pub fn ig_imports(&self) -> impl Iterator<Item = &str> {
        self.imports
            .iter()
            .filter(|(m, _)| m == IG_MODULE)
            .map(|(_, n)| n.as_str())
    }
}

/// Why a module could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The `wasm:` file does not exist.
    #[error("{}field `wasm`: `{path}` does not exist", in_file(.build_file.as_deref()))]
    Missing {
        /// The build file.
        build_file: Option<PathBuf>,
        /// The missing source.
        path: PathBuf,
    },
    /// A source kind we cannot build.
    #[error("{}field `wasm`: `{path}`: {message}", in_file(.build_file.as_deref()))]
    Unsupported {
        /// The build file.
        build_file: Option<PathBuf>,
        /// The source.
        path: PathBuf,
        /// Why, and what to do instead.
        message: String,
    },
    /// A tool for the WASM build is missing.
    #[error("WASM toolchain: {what}")]
    Toolchain {
        /// What is missing.
        what: String,
        /// How to install it.
        install: String,
    },
    /// The source reads a file outside the gadget directory and the compiler's own headers.
    #[error(transparent)]
    Reads(#[from] ReadError),
    /// The compiler failed.
    #[error("{tool} failed to build the WASM module `{source_path}`:\n{stderr}")]
    Compile {
        /// The source.
        source_path: PathBuf,
        /// clang or cargo.
        tool: String,
        /// Its messages.
        stderr: String,
    },
    /// The module does not fit the gadget module API.
    #[error("WASM module `{source_path}` failed {count} check(s):\n{details}")]
    Invalid {
        /// The module or its source.
        source_path: PathBuf,
        /// How many problems.
        count: usize,
        /// One line per problem, naming the import or export at fault.
        details: String,
    },
    /// A file could not be read or written, or a tool not started.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
}

fn in_file(file: Option<&Path>) -> String {
    file.map(|f| format!("`{}`: ", f.display()))
        .unwrap_or_default()
}

/// Build (if needed) and validate the module named by `wasm:`.
pub fn build_module(req: &WasmRequest<'_>) -> Result<WasmModule, WasmError> {
    let source = req.source;
    if !source.exists() {
        return Err(WasmError::Missing {
            build_file: req.build_file.map(Path::to_path_buf),
            path: source.to_path_buf(),
        });
    }
    let ext = source
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let (bytes, mut warnings) = if source.is_dir()
        || source.file_name().is_some_and(|n| n == "Cargo.toml")
        || ext == "rs"
    {
        compile_rust(req)?
    } else {
        match ext {
            "wasm" => (read(source)?, Vec::new()),
            "c" => compile_c(req)?,
            "go" => super::wasm_go::compile_go(req)?,
            _ => {
                return Err(WasmError::Unsupported {
                    build_file: req.build_file.map(Path::to_path_buf),
                    path: source.to_path_buf(),
                    message: "expected a `.wasm` module, a `.c` source, a `.go` file of a Go module, or a Rust crate (`Cargo.toml`, its directory, or a `.rs` file in it)".into(),
                });
            }
        }
    };
    let (info, problems, more_warnings) = validate(&bytes);
    warnings.extend(more_warnings);
    if !problems.is_empty() {
        return Err(WasmError::Invalid {
            source_path: source.to_path_buf(),
            count: problems.len(),
            details: problems.join("\n"),
        });
    }
    Ok(WasmModule {
        bytes,
        warnings,
        info,
    })
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, WasmError> {
    std::fs::read(path).map_err(|source| {
        WasmError::Io(crate::file_error::FileError {
            action: "read",
            path: path.to_path_buf(),
            source,
        })
    })
}

fn show(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(params), list(results))
}

/// Check `bytes` against the gadget module API. Returns what the module imports and exports,
/// the errors (each naming its import or export) and the warnings.
pub fn validate(bytes: &[u8]) -> (ModuleInfo, Vec<String>, Vec<String>) {
    let mut info = ModuleInfo::default();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if let Err(e) = Validator::new_with_features(WasmFeatures::default()).validate_all(bytes) {
        problems.push(format!("not a valid WebAssembly module: {e}"));
        return (info, problems, warnings);
    }
    let mut types: Vec<Option<FuncType>> = Vec::new();
    // Type index of every function, imported ones first (the function index space).
    let mut func_types: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("cannot parse the module: {e}"));
                return (info, problems, warnings);
            }
        };
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader.into_iter().flatten() {
                    for sub in group.into_types() {
                        types.push(match sub.composite_type.inner {
                            CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    let (module, name) = (import.module.to_string(), import.name.to_string());
                    let TypeRef::Func(index) = import.ty else {
                        problems.push(format!(
                            "import `{module}`.`{name}`: only functions may be imported (from `{WASI_MODULE}` or `{IG_MODULE}`); the module must define its own memory, tables and globals"
                        ));
                        continue;
                    };
                    func_types.push(index);
                    let ty = types.get(index as usize).cloned().flatten();
                    check_import(&module, &name, ty.as_ref(), &mut problems);
                    info.imports.push((module, name));
                }
            }
            Payload::FunctionSection(reader) => {
                func_types.extend(reader.into_iter().flatten());
            }
            Payload::ExportSection(reader) => {
                for export in reader.into_iter().flatten() {
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    let func_type = |index: u32| -> Option<&FuncType> {
        let ty = *func_types.get(index as usize)?;
        types.get(ty as usize)?.as_ref()
    };
    let export = |name: &str| exports.iter().find(|(n, _, _)| n == name);
    let mut expect =
        |name: &str, params: &[ValType], results: &[ValType], required: bool| match export(name) {
            None if required => problems.push(format!(
                "missing export `{name}`: expected a function {}",
                show(params, results)
            )),
            None => {}
            Some((_, kind, index)) => {
                if *kind != ExternalKind::Func {
                    problems.push(format!(
                        "export `{name}` is a {kind:?}, expected a function {}",
                        show(params, results)
                    ));
                } else if let Some(ty) = func_type(*index) {
                    if ty.params() != params || ty.results() != results {
                        problems.push(format!(
                            "export `{name}` has type {}, expected {}",
                            show(ty.params(), ty.results()),
                            show(params, results)
                        ));
                    }
                }
            }
        };
    expect("_initialize", &[], &[], true);
    expect("gadgetAPIVersion", &[], &[I64], true);
    for name in LIFECYCLE_EXPORTS {
        expect(name, &[], &[I32], false);
    }
    expect("dataSourceCallback", &[I64, I32, I32], &[], false);
    if export("_start").is_some() {
        problems.push(
            "export `_start`: a WASI command module; gadget modules are reactors (compile C with `-mexec-model=reactor`, Rust as a `cdylib`)".to_string(),
        );
    }
    match export("memory") {
        Some((_, ExternalKind::Memory, _)) => {}
        _ => problems.push(
            "missing export `memory`: the host passes strings and buffers through the module's memory".to_string(),
        ),
    }
    let subscribes = info.ig_imports().any(|n| n == "dataSourceSubscribe");
    if subscribes && export("dataSourceCallback").is_none() {
        warnings.push(
            "WASM module imports `ig`.`dataSourceSubscribe` but exports no `dataSourceCallback`: subscriptions will fail at run time".to_string(),
        );
    }
    info.exports = exports
        .iter()
        .filter(|(_, k, _)| *k == ExternalKind::Func)
        .map(|(n, _, _)| n.clone())
        .collect();
    (info, problems, warnings)
}

fn check_import(module: &str, name: &str, ty: Option<&FuncType>, problems: &mut Vec<String>) {
    match module {
        WASI_MODULE => {
            if !WASI_PREVIEW1.contains(&name) {
                problems.push(format!(
                    "import `{module}`.`{name}`: not a WASI preview1 function"
                ));
            }
        }
        IG_MODULE => {
            let Some(function) = HOST_FUNCTIONS.iter().find(|f| f.name == name) else {
                problems.push(format!(
                    "unknown `ig` import `{name}`: not one of the 41 functions of the gadget API (gadget-image.md §9)"
                ));
                return;
            };
            let (params, results) = (val_types(function.params), val_types(function.results));
            match ty {
                Some(ty) if ty.params() == params && ty.results() == results => {}
                Some(ty) => problems.push(format!(
                    "`ig` import `{name}` has type {}, expected {}",
                    show(ty.params(), ty.results()),
                    show(&params, &results)
                )),
                None => problems.push(format!("`ig` import `{name}`: its type is not a function type")),
            }
        }
        other => problems.push(format!(
            "import `{other}`.`{name}`: unknown import module `{other}` (only `{WASI_MODULE}` and `{IG_MODULE}` are provided)"
        )),
    }
}

/// A clang that can build WASI reactors: its `wasm-ld`, wasi-libc and the wasm32 builtins.
#[derive(Debug)]
struct WasmClang {
    clang: PathBuf,
    identity: String,
}

const WASM_APT: &str = "apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32";
const WASI_SYSROOT_LIB: &str = "/usr/lib/wasm32-wasi";
const WASI_SYSROOT_INCLUDE: &str = "/usr/include/wasm32-wasi";

/// The newest `clang-NN` (or `CLANG`) with `wasm-ld` and the wasm32 builtins beside it, and
/// Debian's wasi-libc.
fn find_wasm_clang() -> Result<WasmClang, WasmError> {
    let missing = |what: String| WasmError::Toolchain {
        what,
        install: WASM_APT.to_string(),
    };
    if !Path::new(WASI_SYSROOT_LIB).join("libc.a").exists()
        || !Path::new(WASI_SYSROOT_INCLUDE).join("stdlib.h").exists()
    {
        return Err(missing(format!(
            "wasi-libc not found (`{WASI_SYSROOT_LIB}/libc.a`, `{WASI_SYSROOT_INCLUDE}/stdlib.h`)"
        )));
    }
    let c = super::toolchain::CToolchain::discover().map_err(|e| missing(e.to_string()))?;
    let clang = std::fs::canonicalize(&c.clang.path).unwrap_or(c.clang.path.clone());
    // /usr/lib/llvm-NN/bin/clang: wasm-ld and the builtins live in the same LLVM tree.
    let llvm_root = clang.parent().and_then(Path::parent).map(Path::to_path_buf);
    if let Some(root) = &llvm_root {
        if !root.join("bin").join("wasm-ld").exists() {
            return Err(missing(format!(
                "`{}` has no `wasm-ld` beside it (`{}`)",
                c.clang.path.display(),
                root.join("bin/wasm-ld").display()
            )));
        }
        let builtins = std::fs::read_dir(root.join("lib").join("clang"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|v| {
                v.path()
                    .join("lib/wasi/libclang_rt.builtins-wasm32.a")
                    .exists()
            });
        if !builtins {
            return Err(missing(format!(
                "`{}` has no wasm32 builtins (`{}/lib/clang/NN/lib/wasi/libclang_rt.builtins-wasm32.a`)",
                c.clang.path.display(),
                root.display()
            )));
        }
    }
    Ok(WasmClang {
        clang: c.clang.path.clone(),
        identity: c.clang.identity.clone(),
    })
}

fn clang_args(req: &WasmRequest<'_>) -> Vec<String> {
    let dir = std::fs::canonicalize(req.gadget_dir).unwrap_or(req.gadget_dir.to_path_buf());
    vec![
        "--target=wasm32-wasi".into(),
        "-mexec-model=reactor".into(),
        "-O2".into(),
        "-Wall".into(),
        format!("-I{}", dir.display()),
        // No debug info and no producer paths: the module is the same wherever it is built.
        "-g0".into(),
        "-Wl,--strip-debug".into(),
    ]
}

/// `clang --target=wasm32-wasi -mexec-model=reactor`, through the build cache.
fn compile_c(req: &WasmRequest<'_>) -> Result<(Vec<u8>, Vec<String>), WasmError> {
    let clang = find_wasm_clang()?;
    let args = clang_args(req);
    let source = std::fs::canonicalize(req.source).unwrap_or(req.source.to_path_buf());
    let cache = req.use_cache.then(|| BuildCache::new(req.cache_root));
    let key = {
        let mut k = KeyBuilder::new();
        k.add("wasm-c-v1")
            .add(&clang.identity)
            .add(source.as_os_str().as_encoded_bytes());
        for a in &args {
            k.add(a);
        }
        k.finish()
    };
    // Nothing is immutable here: every header clang read is re-hashed on lookup.
    let no_immutable = Path::new("/nonexistent/ig-image/immutable");
    let gadget_dir = std::fs::canonicalize(req.gadget_dir).unwrap_or(req.gadget_dir.to_path_buf());
    let roots = AllowedRoots::new(
        [gadget_dir.clone()],
        &clang.clang,
        &["--target=wasm32-wasi".to_string()],
    );
    if let Some((bytes, deps)) = cache
        .as_ref()
        .and_then(|c| c.lookup_with_dependencies(&key, no_immutable))
    {
        reads::check_paths(&super::cache::Dependency::paths(&deps), req.source, &roots)?;
        return Ok((bytes, Vec::new()));
    }
    let work = scratch_dir("ig-image-wasm-")?;
    let out = work.path().join("module.wasm");
    let depfile = work.path().join("module.d");
    // Every file the source reads is checked before clang's messages can quote one
    // (reads::compile_checked). The preprocessor refuses the link-only flags.
    let scan_args: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("-mexec-model=") && !a.starts_with("-Wl,"))
        .cloned()
        .collect();
    let scan = reads::Scan {
        clang: &clang.clang,
        args: &scan_args,
        cwd: &gadget_dir,
        source_arg: &source,
        source_path: req.source,
        work: work.path(),
    };
    // What the scan cannot see (the assembler's `.incbin` in inline asm) the sandbox stops.
    let sandbox = Sandbox::new(&clang.clang, &roots.all(), &[work.path().to_path_buf()]);
    let mut cmd = Command::new(&clang.clang);
    cmd.current_dir(&gadget_dir)
        .args(&args)
        .arg("-MD")
        .args(["-MT", reads::DEPENDENCY_TARGET])
        .arg("-MF")
        .arg(&depfile)
        .arg(&source)
        .arg("-o")
        .arg(&out);
    sandbox.apply(&mut cmd, work.path());
    let compiler = Compiler {
        program: &clang.clang,
        tool: clang.clang.display().to_string(),
        source_path: req.source,
        stderr_lines: None,
    };
    let output = reads::compile_checked(&scan, &roots, sandbox.confines(), || {
        spawn_compiler(&mut cmd, &compiler)
    })?;
    let (_, stderr) = compiler_result(output, &compiler)?;
    // What the compile read is checked before its module or its warnings are used.
    let listed = read(&depfile)?;
    let deps = reads::check_listed(&listed, &gadget_dir, req.source, &roots, false)?;
    let bytes = read(&out)?;
    if let Some(cache) = &cache {
        cache.store(&key, &bytes, &deps, no_immutable);
    }
    Ok((bytes, compiler_warnings(&stderr)))
}

/// A scratch directory for one compile, removed when dropped.
pub(super) fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir, WasmError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| {
            WasmError::Io(crate::file_error::FileError {
                action: "create",
                path: std::env::temp_dir(),
                source,
            })
        })
}

/// A successful compile's stderr as warnings (none when it printed nothing).
pub(super) fn compiler_warnings(stderr: &str) -> Vec<String> {
    if stderr.trim().is_empty() {
        Vec::new()
    } else {
        vec![stderr.trim_end().to_string()]
    }
}

/// The Cargo.toml of a Rust `wasm:` source: the file itself, the directory's, or the nearest
/// one above a `.rs` file.
fn rust_manifest(source: &Path) -> Option<PathBuf> {
    if source.file_name().is_some_and(|n| n == "Cargo.toml") {
        return Some(source.to_path_buf());
    }
    let start = if source.is_dir() {
        source
    } else {
        source.parent()?
    };
    start
        .ancestors()
        .map(|d| d.join("Cargo.toml"))
        .find(|m| m.is_file())
}

/// How a module's compiler ran: the program, its name in errors, the source it compiled.
pub(crate) struct Compiler<'a> {
    /// The binary run.
    pub program: &'a Path,
    /// The tool as named in a compile error (`clang`, `cargo`, `go build`).
    pub tool: String,
    /// The source (file or crate manifest) a compile error names.
    pub source_path: &'a Path,
    /// Keep only the last lines of a failed run's stderr (`None`: all of it).
    pub stderr_lines: Option<usize>,
}

/// Runs a WASM module's compiler (never through a shell): its stdout and stderr when it
/// succeeded, else a compile error with its stderr.
pub(crate) fn run_compiler(
    cmd: &mut Command,
    compiler: &Compiler<'_>,
) -> Result<(Vec<u8>, String), WasmError> {
    compiler_result(spawn_compiler(cmd, compiler)?, compiler)
}

/// Runs the compiler and waits for its output.
fn spawn_compiler(
    cmd: &mut Command,
    compiler: &Compiler<'_>,
) -> Result<std::process::Output, WasmError> {
    cmd.output().map_err(|source| {
        WasmError::Io(crate::file_error::FileError {
            action: "run",
            path: compiler.program.to_path_buf(),
            source,
        })
    })
}

/// The compiler's stdout and stderr when it succeeded, else a compile error with its stderr.
fn compiler_result(
    output: std::process::Output,
    compiler: &Compiler<'_>,
) -> Result<(Vec<u8>, String), WasmError> {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(WasmError::Compile {
            source_path: compiler.source_path.to_path_buf(),
            tool: compiler.tool.clone(),
            stderr: match compiler.stderr_lines {
                Some(lines) => super::rust::tail(&stderr, lines),
                None => stderr,
            },
        });
    }
    Ok((output.stdout, stderr))
}

/// The tools of a Rust module build and the flags they build with.
struct RustWasmTools {
    rustc: super::toolchain::Tool,
    cargo: super::toolchain::Tool,
    /// The Rust standard library's sources (for `-Z build-std`).
    library_src: PathBuf,
    clang: WasmClang,
    /// `CARGO_ENCODED_RUSTFLAGS`: the LLVM tree's `wasm-ld`, Debian's wasi-libc and
    /// `crt1-reactor.o`, the path remapping.
    rustflags: Vec<String>,
}

impl RustWasmTools {
    const TARGET: &'static str = "wasm32-wasip1";

    fn find(manifest: &Path) -> Result<Self, WasmError> {
        let (rustc, cargo, library_src) =
            super::toolchain::RustToolchain::compiler().map_err(|e| WasmError::Toolchain {
                what: e.to_string(),
                install: format!("apt-get install {}", super::toolchain::RUST_APT_PACKAGES),
            })?;
        let clang = find_wasm_clang()?;
        let llvm_bin = std::fs::canonicalize(&clang.clang)
            .ok()
            .and_then(|c| c.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let mut rustflags = vec![
            format!("-Clinker={}", llvm_bin.join("wasm-ld").display()),
            "-Clink-self-contained=no".to_string(),
            format!("-L{WASI_SYSROOT_LIB}"),
            format!("-Clink-arg={WASI_SYSROOT_LIB}/crt1-reactor.o"),
        ];
        rustflags.extend(super::rust::remap_flags(manifest));
        Ok(Self {
            rustc,
            cargo,
            library_src,
            clang,
            rustflags,
        })
    }

    /// The build cache key of `manifest`'s module built with these tools.
    fn cache_key(&self, manifest: &Path) -> String {
        let mut k = KeyBuilder::new();
        k.add("wasm-rust-v1")
            .add(&self.rustc.identity)
            .add(&self.cargo.identity)
            .add(&self.clang.identity)
            .add(self.library_src.as_os_str().as_encoded_bytes())
            .add(manifest.as_os_str().as_encoded_bytes());
        for f in &self.rustflags {
            k.add(f);
        }
        k.finish()
    }
}

/// A Rust crate (`crate-type = ["cdylib"]`) for `wasm32-wasip1`: Debian's rustc-web with
/// `-Z build-std=std,panic_abort` (no prebuilt wasm32 standard library exists for it), linked by
/// the LLVM tree's `wasm-ld` against Debian's wasi-libc with `crt1-reactor.o` (which provides
/// `_initialize`). Through the build cache like the eBPF builds.
fn compile_rust(req: &WasmRequest<'_>) -> Result<(Vec<u8>, Vec<String>), WasmError> {
    use super::rust::{absolute, dep_info_sources, package_metadata, warnings_only};
    let manifest = rust_manifest(req.source).ok_or_else(|| WasmError::Unsupported {
        build_file: req.build_file.map(Path::to_path_buf),
        path: req.source.to_path_buf(),
        message: "no `Cargo.toml` here or above: a Rust module is built from its crate".into(),
    })?;
    let manifest = absolute(&manifest);
    let tools = RustWasmTools::find(&manifest)?;
    let cache = req.use_cache.then(|| BuildCache::new(req.cache_root));
    let key = tools.cache_key(&manifest);
    if let Some(bytes) = cache
        .as_ref()
        .and_then(|c| c.lookup(&key, &tools.library_src))
    {
        return Ok((bytes, Vec::new()));
    }
    let located =
        package_metadata(&tools.cargo.path, &tools.rustc.path, &manifest).map_err(|message| {
            WasmError::Compile {
                source_path: manifest.clone(),
                tool: "cargo metadata".into(),
                stderr: message,
            }
        })?;
    let lib = located
        .package
        .targets
        .iter()
        .find(|t| t.is_cdylib())
        .map(|t| t.name.to_string())
        .ok_or_else(|| WasmError::Unsupported {
            build_file: req.build_file.map(Path::to_path_buf),
            path: manifest.clone(),
            message:
                "the crate has no `cdylib` library target: add `[lib] crate-type = [\"cdylib\"]`"
                    .into(),
        })?;
    let (artifact, stderr) = cargo_build_module(req, &tools, &manifest, &lib)?;
    let bytes = read(&artifact)?;
    if let Some(cache) = &cache {
        let mut deps = dep_info_sources(&artifact);
        if !deps.is_empty() {
            deps.extend(located.local_manifests);
            deps.extend(Some(located.lock).filter(|l| l.exists()));
            deps.sort();
            deps.dedup();
            cache.store(&key, &bytes, &deps, &tools.library_src);
        }
    }
    Ok((bytes, compiler_warnings(&warnings_only(&stderr))))
}

/// `cargo build` of the crate's library `lib` for `wasm32-wasip1`, in a target directory of
/// its own in the cache: the `.wasm` artifact cargo reports, and cargo's stderr.
fn cargo_build_module(
    req: &WasmRequest<'_>,
    tools: &RustWasmTools,
    manifest: &Path,
    lib: &str,
) -> Result<(PathBuf, String), WasmError> {
    let hash = super::cache::sha256_hex(manifest.as_os_str().as_encoded_bytes());
    let target_dir = req
        .cache_root
        .join("rust-target")
        .join(&hash[..16])
        .join(RustWasmTools::TARGET);
    let mut cmd = Command::new(&tools.cargo.path);
    super::rust::scrub_env(&mut cmd);
    cmd.current_dir(manifest.parent().unwrap_or(Path::new(".")))
        .env("RUSTC", &tools.rustc.path)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", tools.rustflags.join("\u{1f}"))
        .env("CARGO_TERM_COLOR", "never")
        .args([
            "build",
            "--release",
            "--lib",
            "-Z",
            "build-std=std,panic_abort",
            "--target",
            RustWasmTools::TARGET,
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics");
    let (stdout, stderr) = run_compiler(
        &mut cmd,
        &Compiler {
            program: &tools.cargo.path,
            tool: "cargo".into(),
            source_path: manifest,
            stderr_lines: Some(60),
        },
    )?;
    let artifact = cargo_metadata::Message::parse_stream(stdout.as_slice())
        .filter_map(Result::ok)
        .find_map(|m| match m {
            cargo_metadata::Message::CompilerArtifact(a) if a.target.name == lib => a
                .filenames
                .into_iter()
                .find(|f| f.extension() == Some("wasm"))
                .map(PathBuf::from),
            _ => None,
        })
        .ok_or_else(|| WasmError::Compile {
            source_path: manifest.to_path_buf(),
            tool: "cargo".into(),
            stderr: format!("cargo reported no `.wasm` artifact for library `{lib}`"),
        })?;
    Ok((artifact, stderr))
}

impl gadget_store::hint::Hint for WasmError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            WasmError::Toolchain { install, .. } => install.clone(),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ig_signatures_show_as_wasm_types() {
        let sig = |name: &str| {
            let f = HOST_FUNCTIONS.iter().find(|f| f.name == name).unwrap();
            show(&val_types(f.params), &val_types(f.results))
        };
        assert_eq!(sig("gadgetLog"), "(i32, i64) -> ()");
        assert_eq!(sig("fieldGetScalar"), "(i32, i32, i32, i32) -> (i64)");
    }

    #[test]
    fn garbage_is_not_a_module() {
        let (_, problems, _) = validate(b"\0asm\x01\0\0\0garbage");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("not a valid WebAssembly module"),
            "{problems:?}"
        );
    }
}
