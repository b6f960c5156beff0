//! Compiling one C eBPF source for one platform: clang, then llvm-strip, through the build cache.
//! Argument vectors only, never a shell.

use std::path::{Path, PathBuf};
use std::process::Command;

use gadget_facts::platform::Platform;

use super::cache::{BuildCache, KeyBuilder};
use super::reads::{self, AllowedRoots, ReadError};
use super::rust::absolute;
use super::sandbox::Sandbox;
use super::toolchain::CToolchain;

/// What to compile.
#[derive(Debug)]
pub struct CompileRequest<'a> {
    /// The `.bpf.c` file, as the user names it (used in messages).
    pub source: &'a Path,
    /// The gadget directory: clang runs there, so debug info holds paths relative to it.
    pub gadget_dir: &'a Path,
    /// Target platform.
    pub platform: Platform,
    /// Include directories searched first (gadget dir, `-I`, build.yaml `includeDirs`).
    pub include_dirs: &'a [PathBuf],
    /// SDK include roots in priority order (an external `--sdk-dir` first, then the bundled one).
    pub sdk_dirs: &'a [PathBuf],
    /// Extra compiler arguments from build.yaml.
    pub cflags: &'a [String],
    /// The tools.
    pub toolchain: &'a CToolchain,
    /// The cache, unless `--no-cache`.
    pub cache: Option<&'a BuildCache>,
    /// The unpacked bundled SDK: content-addressed, so its files need no re-hashing.
    pub immutable_root: &'a Path,
}

/// A stripped object.
#[derive(Debug, Clone)]
pub struct CompiledObject {
    /// Its platform.
    pub platform: Platform,
    /// The ELF bytes (DWARF stripped, BTF kept).
    pub bytes: Vec<u8>,
    /// Whether it came from the cache.
    pub cached: bool,
    /// Compiler warnings (stderr of a successful compile).
    pub warnings: String,
    /// Every file the compiler read (absolute): the source and each included header as
    /// clang's dependency output lists them (for Rust: the crate sources, manifests and
    /// Cargo.lock). Empty when the compiler did not report them.
    pub dependencies: Vec<PathBuf>,
    /// Dependencies whose content this build has just checked against a cache entry, with that
    /// digest (the SBOM takes it instead of reading them again). Empty after a fresh compile.
    pub checked: Vec<super::cache::Dependency>,
}

/// A compile that failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// clang reported errors.
    #[error("clang failed to compile `{source_path}` for {platform}:\n{stderr}")]
    Compiler {
        /// The source.
        source_path: PathBuf,
        /// The platform.
        platform: Platform,
        /// clang's messages.
        stderr: String,
        /// What to do about it, when the failure looks like one we know.
        hint: Option<String>,
    },
    /// llvm-strip failed.
    #[error("llvm-strip failed on the {platform} object of `{source_path}`:\n{stderr}")]
    Strip {
        /// The source.
        source_path: PathBuf,
        /// The platform.
        platform: Platform,
        /// llvm-strip's messages.
        stderr: String,
    },
    /// The source reads a file outside the gadget directory, the include directories, the SDK
    /// and the compiler's own headers.
    #[error(transparent)]
    Reads(#[from] ReadError),
    /// A tool could not be started or its output read.
    #[error("cannot run `{tool}`")]
    Run {
        /// The tool path.
        tool: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The host's multiarch include directory (for `<asm/types.h>`), as upstream passes it.
fn multiarch_include() -> Option<PathBuf> {
    let triple = Platform::host()?.multiarch_tuple();
    let dir = PathBuf::from("/usr/include").join(triple);
    dir.is_dir().then_some(dir)
}

/// The clang arguments before the output-specific ones (also the cache key's flags).
fn clang_args(req: &CompileRequest<'_>) -> Vec<String> {
    let p = req.platform;
    let mut args = vec![
        "-target".to_string(),
        p.clang_target().to_string(),
        "-Wall".into(),
        "-g".into(),
        "-O2".into(),
        format!("-D__TARGET_ARCH_{}", p.target_arch_define()),
    ];
    // Paths recorded in BTF line info must not depend on where the gadget or the cache live,
    // or two builds of the same sources would differ: map them to fixed names.
    args.push("-fdebug-compilation-dir=.".into());
    let gadget_dir = absolute(req.gadget_dir);
    args.push(format!("-fdebug-prefix-map={}=.", gadget_dir.display()));
    for dir in req.include_dirs {
        args.push(format!("-I{}", absolute(dir).display()));
    }
    for (i, sdk) in req.sdk_dirs.iter().enumerate() {
        let sdk = absolute(sdk);
        let fixed = if i + 1 == req.sdk_dirs.len() {
            "/ig-image/sdk".to_string()
        } else {
            format!("/ig-image/sdk-{i}")
        };
        args.push(format!("-fdebug-prefix-map={}={fixed}", sdk.display()));
        args.push(format!("-I{}", sdk.display()));
        args.push(format!(
            "-I{}",
            sdk.join("gadget").join(p.oci_arch()).display()
        ));
    }
    if let Some(dir) = multiarch_include() {
        args.push(format!("-I{}", dir.display()));
    }
    args.extend(req.cflags.iter().cloned());
    args
}

/// Where a compile may read: the gadget directory, the include directories, the SDK trees,
/// the host's multiarch headers and the compiler's own system headers.
fn allowed_roots(req: &CompileRequest<'_>) -> AllowedRoots {
    let dirs = std::iter::once(req.gadget_dir.to_path_buf())
        .chain(req.include_dirs.iter().cloned())
        .chain(req.sdk_dirs.iter().cloned())
        .chain(multiarch_include());
    AllowedRoots::new(
        dirs,
        &req.toolchain.clang.path,
        &[
            "-target".to_string(),
            req.platform.clang_target().to_string(),
        ],
    )
}

/// Compile and strip, or reuse the cached object.
pub fn compile(req: &CompileRequest<'_>) -> Result<CompiledObject, CompileError> {
    let args = clang_args(req);
    let roots = allowed_roots(req);
    let source_abs = std::fs::canonicalize(req.source).unwrap_or_else(|_| req.source.to_path_buf());
    let key = {
        let mut k = KeyBuilder::new();
        k.add(req.toolchain.identity())
            .add(crate::sdk::HASH)
            .add(source_abs.as_os_str().as_encoded_bytes());
        for a in &args {
            k.add(a);
        }
        k.finish()
    };
    if let Some((bytes, checked)) = req
        .cache
        .and_then(|c| c.lookup_with_dependencies(&key, req.immutable_root))
    {
        let dependencies = super::cache::Dependency::paths(&checked);
        // An entry written before reads were checked (or by another tool) is checked too.
        reads::check_paths(&dependencies, req.source, &roots)?;
        return Ok(CompiledObject {
            platform: req.platform,
            bytes,
            cached: true,
            warnings: String::new(),
            dependencies,
            checked: super::cache::Dependency::checked(checked),
        });
    }

    let work = tempfile::Builder::new()
        .prefix("ig-image-build-")
        .tempdir()
        .map_err(|source| CompileError::Run {
            tool: req.toolchain.clang.path.clone(),
            source,
        })?;
    let object = work.path().join("program.o");
    let stripped = work.path().join("program.stripped.o");
    let depfile = work.path().join("program.d");

    let gadget_dir = absolute(req.gadget_dir);
    let relative_source = source_abs
        .strip_prefix(&gadget_dir)
        .map_or(source_abs.clone(), Path::to_path_buf);
    // Every file the source reads is checked before clang's messages can quote one.
    let scan = reads::Scan {
        clang: &req.toolchain.clang.path,
        args: &args,
        cwd: &gadget_dir,
        source_arg: &relative_source,
        source_path: req.source,
        work: work.path(),
    };
    // What the scan cannot see (the assembler's `.incbin` in inline asm) the sandbox stops.
    let sandbox = Sandbox::new(
        &req.toolchain.clang.path,
        &roots.all(),
        &[work.path().to_path_buf()],
    );
    let mut clang = Command::new(&req.toolchain.clang.path);
    clang
        .current_dir(&gadget_dir)
        .args(&args)
        .arg("-MD")
        .args(["-MT", reads::DEPENDENCY_TARGET])
        .arg("-MF")
        .arg(&depfile)
        .arg("-c")
        .arg(&relative_source)
        .arg("-o")
        .arg(&object);
    sandbox.apply(&mut clang, work.path());
    let output = reads::compile_checked(&scan, &roots, sandbox.confines(), || {
        clang.output().map_err(|source| CompileError::Run {
            tool: req.toolchain.clang.path.clone(),
            source,
        })
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        let hint = compiler_hint(req, sandbox.confines(), &stderr);
        return Err(CompileError::Compiler {
            source_path: req.source.to_path_buf(),
            platform: req.platform,
            stderr,
            hint,
        });
    }
    // What the compile read (after the scan, or instead of it when confined) is checked
    // before its object or its warnings are used.
    let listed = std::fs::read(&depfile).map_err(|e| ReadError::Unlisted {
        source_path: req.source.to_path_buf(),
        reason: format!("clang wrote no dependency list: {e}"),
    })?;
    let deps = reads::check_listed(&listed, &gadget_dir, req.source, &roots, false)?;
    let bytes = strip_object(req, &object, &stripped)?;
    if let Some(cache) = req.cache {
        cache.store(&key, &bytes, &deps, req.immutable_root);
    }
    Ok(CompiledObject {
        platform: req.platform,
        bytes,
        cached: false,
        warnings: stderr,
        dependencies: deps,
        checked: Vec::new(),
    })
}

impl gadget_store::hint::Hint for CompileError {
    fn hints(&self) -> Vec<String> {
        match self {
            CompileError::Compiler { hint, .. } => hint.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// The hint under a failed compile's messages: the sandbox when it may have refused a read
/// (`confined`), a missing `vmlinux.h` for the platform, or none.
fn compiler_hint(req: &CompileRequest<'_>, confined: bool, stderr: &str) -> Option<String> {
    let missing_vmlinux = !req.sdk_dirs.iter().any(|d| {
        d.join("gadget")
            .join(req.platform.oci_arch())
            .join("vmlinux.h")
            .exists()
    });
    if confined && (stderr.contains("Could not find") || stderr.contains("Permission denied")) {
        Some("clang may read only the gadget directory, its include directories, the SDK and the toolchain's own trees (docs/security.md)".to_string())
    } else if missing_vmlinux {
        Some(format!(
            "no SDK has `gadget/{arch}/vmlinux.h`; pass `--sdk-dir DIR` with `DIR/gadget/{arch}/vmlinux.h` to build for {arch}",
            arch = req.platform.oci_arch()
        ))
    } else {
        None
    }
}

/// Strips debug info from `object` into `stripped` with llvm-strip; the stripped bytes.
fn strip_object(
    req: &CompileRequest<'_>,
    object: &Path,
    stripped: &Path,
) -> Result<Vec<u8>, CompileError> {
    let strip = Command::new(&req.toolchain.strip.path)
        .arg("-g")
        .arg(object)
        .arg("-o")
        .arg(stripped)
        .output()
        .map_err(|source| CompileError::Run {
            tool: req.toolchain.strip.path.clone(),
            source,
        })?;
    if !strip.status.success() {
        return Err(CompileError::Strip {
            source_path: req.source.to_path_buf(),
            platform: req.platform,
            stderr: String::from_utf8_lossy(&strip.stderr).into_owned(),
        });
    }
    std::fs::read(stripped).map_err(|source| CompileError::Run {
        tool: req.toolchain.strip.path.clone(),
        source,
    })
}
