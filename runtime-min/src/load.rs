//! Loading a gadget: parameters into `.rodata`, map sizes, the ring buffer fallback, CO-RE
//! against the kernel BTF, and every program through the verifier.
//!
//! Everything loaded lives in the returned [`Loaded`] (an [`aya::Ebpf`]): dropping it closes
//! every map, program and link, so a failure at any step leaves nothing loaded in the kernel
//! (nothing is pinned).

use std::path::{Path, PathBuf};
use std::time::Instant;

use aya::programs::Program;
use aya::{Btf, EbpfLoader, Endianness};
use gadget_object::ProgramKind;
use serde::Serialize;

use crate::btf_raw::{CoreRoot as RawCoreRoot, RawBtf};
use crate::btfgen;
use crate::classify::{self, Failure, FailureClass};
use crate::core_cache;
use crate::core_relo;
use crate::fixup::{self, FixupError, FixupPlan, STT_FUNC};
use crate::params::{self, ParamError};
use crate::source::Gadget;

/// Where the running kernel publishes its BTF.
pub const SYSFS_VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// `BPF_MAP_TYPE_RINGBUF`.
const MAP_TYPE_RINGBUF: u32 = 27;

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Kernel BTF for CO-RE and BTF-attached programs (default: /sys/kernel/btf/vmlinux, else
    /// the image's btfgen entry for this kernel).
    pub kernel_btf: Option<PathBuf>,
    /// `--param key=value` pairs.
    pub params: Vec<(String, String)>,
    /// Show whole verifier logs in errors (else the last lines).
    pub full_log: bool,
}

/// What happened to one program.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ProgramStatus {
    /// Loaded: the verifier accepted it.
    Loaded {
        /// Instructions the verifier processed (kernel 5.16+).
        verified_insns: Option<u32>,
        /// Time spent in `BPF_PROG_LOAD`, microseconds.
        load_us: u64,
    },
    /// Not loaded.
    Failed {
        /// Why.
        #[serde(flatten)]
        failure: Failure,
    },
}

/// One program's load report.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramReport {
    /// Function name.
    pub name: String,
    /// ELF section as written by the author.
    pub section: String,
    /// How it attaches (`tracepoint`, `kprobe`, ...).
    pub kind: String,
    /// The outcome.
    #[serde(flatten)]
    pub status: ProgramStatus,
}

impl ProgramReport {
    /// Whether the verifier accepted it.
    pub fn loaded(&self) -> bool {
        matches!(self.status, ProgramStatus::Loaded { .. })
    }
}

/// What loading did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Per program, in section order (not serialized: reports that embed this one list the
    /// programs themselves).
    #[serde(skip_serializing)]
    pub programs: Vec<ProgramReport>,
    /// Ring buffers turned into perf event arrays (kernel without ring buffers).
    pub perf_maps: Vec<String>,
    /// Sections renamed for the loader (`socket1` → `socket/ig_3`).
    pub renamed_sections: Vec<(String, String)>,
    /// Parameters written into `.rodata` (variable, value as given).
    pub params: Vec<(String, String)>,
    /// Maps sized by a `<map>_max_entries` constant.
    pub max_entries: Vec<(String, u32)>,
    /// The kernel BTF used.
    pub kernel_btf: String,
    /// Wall time of the whole load, milliseconds.
    pub load_ms: f64,
}

/// A loaded gadget.
pub struct Loaded {
    /// Maps and programs (dropping it unloads everything).
    pub ebpf: aya::Ebpf,
    /// The report.
    pub report: LoadReport,
    /// Kernel BTF parsed for BTF-attached programs, if any were present.
    pub btf: Option<Btf>,
}

impl Loaded {
    /// Detaches and unloads every program, one thread per program, then closes the maps.
    /// Detaching makes the kernel wait for an RCU grace period (tens of milliseconds on a busy
    /// machine). Detaches of other kinds (trampolines, iterators) can overlap this way;
    /// perf-event attachments (tracepoints, kprobes) are serialized by the kernel's
    /// `event_mutex` whatever we do, so their cost adds up per program. Dropping a [`Loaded`]
    /// does the same work on one thread.
    pub fn unload(mut self) {
        let programs: Vec<&mut Program> = self.ebpf.programs_mut().map(|(_, p)| p).collect();
        std::thread::scope(|scope| {
            for p in programs {
                scope.spawn(move || unload_program(p));
            }
        });
        drop(self);
    }
}

fn unload_program(p: &mut Program) {
    let result = match p {
        Program::TracePoint(x) => x.unload(),
        Program::KProbe(x) => x.unload(),
        Program::RawTracePoint(x) => x.unload(),
        Program::BtfTracePoint(x) => x.unload(),
        Program::FEntry(x) => x.unload(),
        Program::FExit(x) => x.unload(),
        Program::Iter(x) => x.unload(),
        Program::Lsm(x) => x.unload(),
        // Never attached by this runtime: dropping them is quick.
        _ => Ok(()),
    };
    if let Err(e) = result {
        log::debug!("unloading a program: {e}");
    }
}

/// Why a gadget did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A parameter was wrong.
    #[error(transparent)]
    Param(Box<ParamError>),
    /// The object could not be prepared for the loader.
    #[error(transparent)]
    Fixup(#[from] FixupError),
    /// A step before the programs failed (kernel BTF, maps, object BTF, relocations).
    #[error("{}", .failure.render(*.full_log))]
    Setup {
        /// What failed, classified.
        failure: Failure,
        /// Render the whole log.
        full_log: bool,
    },
    /// One or more programs did not pass the verifier.
    #[error("{}", render_program_failures(.report, *.full_log))]
    Programs {
        /// Every program's outcome (the loaded ones were unloaded again).
        report: Box<LoadReport>,
        /// Render whole logs.
        full_log: bool,
    },
}

impl From<ParamError> for LoadError {
    fn from(e: ParamError) -> Self {
        LoadError::Param(Box::new(e))
    }
}

impl LoadError {
    /// The classes of the failures.
    pub fn classes(&self) -> Vec<FailureClass> {
        match self {
            LoadError::Setup { failure, .. } => vec![failure.class],
            LoadError::Programs { report, .. } => report
                .programs
                .iter()
                .filter_map(|p| match &p.status {
                    ProgramStatus::Failed { failure } => Some(failure.class),
                    ProgramStatus::Loaded { .. } => None,
                })
                .collect(),
            _ => vec![FailureClass::Other],
        }
    }
}

fn render_program_failures(report: &LoadReport, full: bool) -> String {
    let failed: Vec<&ProgramReport> = report.programs.iter().filter(|p| !p.loaded()).collect();
    let mut out = format!(
        "{} of {} programs failed to load",
        failed.len(),
        report.programs.len()
    );
    for p in failed {
        if let ProgramStatus::Failed { failure } = &p.status {
            out.push_str(&format!(
                "\nprogram `{}` (section `{}`): {}",
                p.name,
                p.section,
                failure.render(full)
            ));
        }
    }
    out
}

/// Programs that need the kernel BTF at load time (their attach target is a BTF id).
fn needs_btf_handle(kind: &ProgramKind) -> bool {
    matches!(
        kind,
        ProgramKind::Fentry
            | ProgramKind::Fexit
            | ProgramKind::TpBtf
            | ProgramKind::Lsm
            | ProgramKind::Iter { .. }
    )
}

fn setup(class: FailureClass, message: String, full_log: bool) -> LoadError {
    LoadError::Setup {
        failure: Failure::new(class, message),
        full_log,
    }
}

/// `BTF_KIND_*` of a type of the object's BTF.
fn btf_kind(kind: &gadget_object::btf::TypeKind) -> u32 {
    use gadget_object::btf::TypeKind as K;
    match kind {
        K::Void => 0,
        K::Int { .. } => 1,
        K::Ptr { .. } => 2,
        K::Array { .. } => 3,
        K::Struct { .. } => 4,
        K::Union { .. } => 5,
        K::Enum { is64: false, .. } => 6,
        K::Enum { is64: true, .. } => 19,
        K::Fwd { .. } => 7,
        K::Typedef { .. } => 8,
        K::Volatile { .. } => 9,
        K::Const { .. } => 10,
        K::Restrict { .. } => 11,
        K::Func { .. } => 12,
        K::FuncProto { .. } => 13,
        K::Var { .. } => 14,
        K::DataSec { .. } => 15,
        K::Float { .. } => 16,
        K::DeclTag { .. } => 17,
        K::TypeTag { .. } => 18,
    }
}

/// The roots of the object's CO-RE relocations, or `None` when a minimized kernel BTF cannot
/// stand in for the whole one (a relocation needs real kernel type ids or a deep type match, or
/// is rooted at an anonymous type).
fn core_roots(gadget: &Gadget) -> Option<Vec<RawCoreRoot>> {
    let relos = gadget
        .info
        .btf_ext()
        .map(|e| e.core_relos.as_slice())
        .unwrap_or(&[]);
    let btf = gadget.info.btf();
    let mut roots: Vec<RawCoreRoot> = Vec::new();
    for r in relos {
        if r.kind == 7 || r.kind == 12 {
            return None;
        }
        let t = btf.get(r.type_id)?;
        let name = core_relo::essential_name(btf.name(r.type_id));
        if name.is_empty() {
            return None;
        }
        let root = RawCoreRoot {
            kind: btf_kind(&t.kind),
            name: name.to_string(),
        };
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    Some(roots)
}

/// What the background thread prepares: aya's loader and the kernel BTF for CO-RE.
struct Prepared {
    /// The loader. When `shadowed`, its own BTF is already the minimized kernel BTF.
    loader: EbpfLoader<'static>,
    /// The minimized kernel BTF, parsed, when the loader could not be shown it directly.
    core: Option<Btf>,
    /// The loader parsed the minimized kernel BTF itself.
    shadowed: bool,
    /// The kernel BTF's `enum bpf_func_id` has the ring buffer helpers.
    has_ringbuf: bool,
}

/// Makes the calling thread, and only it, see `blob` at `/sys/kernel/btf/vmlinux`: a private
/// mount namespace for this thread (`unshare(CLONE_NEWNS)`, mounts made private so nothing
/// propagates back to the host) and a bind mount of `file` (holding the blob) over the path.
/// The namespace disappears with the thread.
///
/// Why: aya 0.14's `EbpfLoader::new()` always reads and parses the whole running kernel's BTF
/// (about 5 MB, 130,000 types: 15-25 ms and ~20 MB) before it can be told to use another one;
/// shown the minimized BTF instead, it parses a few hundred types. Needs CAP_SYS_ADMIN (which
/// loading needs anyway); on any failure the caller falls back to the normal path.
fn shadow_vmlinux_for_this_thread(file: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    let cstr =
        |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other);
    let (src, target, root) = (
        cstr(file)?,
        cstr(Path::new(SYSFS_VMLINUX))?,
        cstr(Path::new("/"))?,
    );
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls with valid NUL-terminated paths that outlive the calls; they only
    // change the mount namespace of this thread.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ))?;
    }
    Ok(())
}

/// Runs on a second thread while the main one reads the gadget: reads the kernel BTF, cuts it
/// down to what the CO-RE relocations (`roots`) can reach, and creates aya's loader.
fn prepare_loader(
    roots: Option<Vec<RawCoreRoot>>,
    path: PathBuf,
    custom: bool,
    full_log: bool,
) -> Result<Prepared, LoadError> {
    let _ = aya::features();
    if !custom && roots.is_none() {
        return Ok(Prepared {
            loader: EbpfLoader::new(),
            core: None,
            shadowed: false,
            has_ringbuf: true,
        });
    }
    let t = Instant::now();
    if !custom && roots.as_ref().is_some_and(Vec::is_empty) {
        // Nothing to relocate: show the loader an empty BTF (no need to read the kernel's).
        return shadowed_or_parsed(&RawBtf::empty_blob(), None, true, t, full_log);
    }
    // The running kernel's minimized BTF may be cached from an earlier run in this boot.
    let cache_entry = if custom {
        None
    } else {
        roots.as_deref().and_then(core_cache::entry)
    };
    let cached = cache_entry.as_deref().and_then(core_cache::lookup);
    let (mini, has_ringbuf) = match (cached, roots) {
        (Some(mini), _) => {
            log::debug!(
                "kernel BTF for CO-RE from the cache ({} bytes) in {:?}",
                mini.len(),
                t.elapsed()
            );
            (mini, true)
        }
        (None, roots) => {
            let bytes = std::fs::read(&path).map_err(|e| {
                setup(
                    FailureClass::MissingBtf,
                    format!("cannot read kernel BTF `{}`: {e}", path.display()),
                    full_log,
                )
            })?;
            let raw = RawBtf::parse(&bytes).map_err(|e| {
                setup(
                    FailureClass::MissingBtf,
                    format!("`{}` is not BTF: {e}", path.display()),
                    full_log,
                )
            })?;
            let has_ringbuf =
                !custom || raw.enum_has_value("bpf_func_id", "BPF_FUNC_ringbuf_reserve");
            let Some(roots) = roots else {
                return Ok(Prepared {
                    loader: EbpfLoader::new(),
                    core: None,
                    shadowed: false,
                    has_ringbuf,
                });
            };
            let mini = raw.minimize_for_core(&roots);
            log::debug!(
                "kernel BTF for CO-RE: {} bytes, read and minimized in {:?}",
                mini.len(),
                t.elapsed()
            );
            if let Some(entry) = &cache_entry {
                core_cache::store(entry, &mini);
            }
            (mini, has_ringbuf)
        }
    };
    shadowed_or_parsed(
        &mini,
        cache_entry.as_deref().filter(|p| p.is_file()),
        has_ringbuf,
        t,
        full_log,
    )
}

/// Creates aya's loader on `mini` (through [`shadow_vmlinux_for_this_thread`]), or, when the
/// thread cannot have its own mount namespace, on the whole kernel BTF with `mini` parsed for
/// the caller to hand over.
fn shadowed_or_parsed(
    mini: &[u8],
    file: Option<&Path>,
    has_ringbuf: bool,
    t: Instant,
    full_log: bool,
) -> Result<Prepared, LoadError> {
    // The cached file itself, or a temporary copy (kept until the loader has read it).
    let mut temp: Option<tempfile::NamedTempFile> = None;
    let file = match file {
        Some(p) => Ok(p.to_path_buf()),
        None => write_temp_btf("runtime-min-core-btf-", mini).map(|f| {
            let p = f.path().to_path_buf();
            temp = Some(f);
            p
        }),
    };
    match file.and_then(|f| shadow_vmlinux_for_this_thread(&f)) {
        Ok(()) => {
            let loader = EbpfLoader::new();
            drop(temp);
            log::debug!(
                "loader created on the minimized kernel BTF after {:?}",
                t.elapsed()
            );
            Ok(Prepared {
                loader,
                core: None,
                shadowed: true,
                has_ringbuf,
            })
        }
        Err(e) => {
            log::debug!(
                "cannot show the loader a minimized kernel BTF ({e}); it parses the whole one"
            );
            let core = Btf::parse(mini, Endianness::default()).map_err(|e| {
                setup(
                    FailureClass::MissingBtf,
                    format!("cannot parse the minimized kernel BTF: {e}"),
                    full_log,
                )
            })?;
            Ok(Prepared {
                loader: EbpfLoader::new(),
                core: Some(core),
                shadowed: false,
                has_ringbuf,
            })
        }
    }
}

/// Writes `btf` to a temporary file (in /dev/shm when there is one).
fn write_temp_btf(prefix: &str, btf: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let mut f = tempfile::Builder::new().prefix(prefix).tempfile_in(dir)?;
    std::io::Write::write_all(&mut f, btf)?;
    Ok(f)
}

/// Loads every map and program of `gadget` into the kernel. On a kernel without
/// `/sys/kernel/btf/vmlinux` and without `--kernel-btf`, the image's btfgen layer provides this
/// kernel's BTF (see [`crate::btfgen`]).
pub fn load(gadget: &Gadget, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let full_log = opts.full_log;
    let info = &gadget.info;
    let endianness = info.elf().endianness;

    let specs = params::specs(info, gadget.metadata.as_ref());
    let values = params::resolve(&specs, &opts.params, endianness)?;

    let has_core = info.btf_ext().is_some_and(|e| !e.core_relos.is_empty());
    let wants_handle = info.programs().iter().any(|p| needs_btf_handle(&p.kind));
    let sysfs = Path::new(SYSFS_VMLINUX);
    // A kernel without its own BTF: the image's btfgen layer may have this kernel's. The file
    // lives until the load is done (the loader and the error explanations read it).
    let mut btfgen_entry: Option<(String, tempfile::NamedTempFile)> = None;
    if opts.kernel_btf.is_none() && !sysfs.exists() && (has_core || wants_handle) {
        let Some(layer) = &gadget.btfgen else {
            return Err(setup(
                FailureClass::MissingBtf,
                format!(
                    "`{SYSFS_VMLINUX}` does not exist, the gadget needs kernel BTF and the image has no btfgen layer (build it with `--btfgen`, or pass `--kernel-btf FILE`)"
                ),
                full_log,
            ));
        };
        let missing = |reason: String| {
            setup(
                FailureClass::MissingBtf,
                format!("`{SYSFS_VMLINUX}` does not exist and {reason}"),
                full_log,
            )
        };
        let key = btfgen::HostKey::of_this_host().map_err(|e| missing(e.to_string()))?;
        let btf = btfgen::lookup(layer, &key).map_err(|e| missing(e.to_string()))?;
        let file = write_temp_btf("runtime-min-btfgen-", &btf)
            .map_err(|e| missing(format!("the btfgen BTF cannot be written: {e}")))?;
        log::info!(
            "no {SYSFS_VMLINUX}: using the btfgen layer's `{}`",
            key.entry()
        );
        btfgen_entry = Some((key.entry(), file));
    }
    let with_btfgen;
    let opts = match &btfgen_entry {
        Some((_, file)) => {
            with_btfgen = LoadOptions {
                kernel_btf: Some(file.path().to_path_buf()),
                ..opts.clone()
            };
            &with_btfgen
        }
        None => opts,
    };

    // aya's loader parses /sys/kernel/btf/vmlinux when created; do that on another core while
    // this thread reads the object, probes the kernel and prepares the bytes.
    let custom = opts.kernel_btf.is_some();
    let kernel_path = opts
        .kernel_btf
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSFS_VMLINUX));
    // No CO-RE relocations: the loader needs no kernel types at all (an empty root set).
    let roots = if has_core {
        core_roots(gadget)
    } else {
        Some(Vec::new())
    };
    // The thread sends its result rather than returning it: when it made itself a mount
    // namespace, tearing that down at thread exit takes the kernel a moment, which then overlaps
    // with the rest of the load instead of delaying it.
    let background = {
        let (roots, path) = (roots.clone(), kernel_path.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(prepare_loader(roots, path, custom, full_log));
        });
        rx
    };
    // The whole kernel BTF, for programs whose attach target is a BTF id, and for CO-RE when
    // another kernel's BTF was given and cannot be minimized.
    let handle = if wants_handle || (custom && has_core && roots.is_none()) {
        let what = kernel_path.display().to_string();
        Some(
            Btf::parse_file(&kernel_path, Endianness::default()).map_err(|e| {
                setup(
                    FailureClass::MissingBtf,
                    format!("cannot parse kernel BTF `{what}`: {e}"),
                    full_log,
                )
            })?,
        )
    } else {
        None
    };

    let kernel_has_ringbuf =
        aya::sys::is_map_supported(aya::maps::MapType::RingBuf).unwrap_or(true);
    let ready = background.recv().map_err(|_| {
        setup(
            FailureClass::Other,
            "the loader thread panicked".into(),
            full_log,
        )
    })??;
    log::debug!("loader ready after {:?}", started.elapsed());
    let core_btf = ready.core;
    let mut loader: EbpfLoader<'_> = ready.loader;
    if let Some(b) = &core_btf {
        loader.btf(Some(b));
    } else if custom && !ready.shadowed {
        if let Some(h) = &handle {
            loader.btf(Some(h));
        }
    }
    // Ring buffer tracer maps become perf event arrays when the kernel (or the target BTF the
    // program's CO-RE checks run against) has no ring buffers.
    let ringbuf_maps: Vec<String> = info
        .tracers()
        .iter()
        .filter(|t| {
            info.map(&t.map_name)
                .is_some_and(|m| m.map_type == MAP_TYPE_RINGBUF)
        })
        .map(|t| t.map_name.clone())
        .collect();
    let mut plan = FixupPlan::default();
    if !ringbuf_maps.is_empty() && (!kernel_has_ringbuf || !ready.has_ringbuf) {
        log::info!(
            "no ring buffers on this kernel: using perf event arrays for {}",
            ringbuf_maps.join(", ")
        );
        plan.perf_maps = ringbuf_maps;
    }
    let prepared = fixup::prepare(&gadget.object, &plan)?;
    log::debug!("object prepared after {:?}", started.elapsed());

    // `<map>_max_entries` constants (a parameter of that name wins).
    let mut max_entries: Vec<(String, u32)> = Vec::new();
    for m in info.maps() {
        let Some(var) = &m.max_entries_var else {
            continue;
        };
        let bytes = values
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, b)| b.as_slice())
            .or_else(|| gadget.elf.var_bytes(&gadget.object, var));
        if let Some(b) = bytes.filter(|b| b.len() == 4) {
            let a = [b[0], b[1], b[2], b[3]];
            let v = if gadget.elf.is_big_endian() {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            };
            if v > 0 {
                max_entries.push((m.name.clone(), v));
            }
        }
    }
    for m in info.maps() {
        if m.max_entries == 0
            && !plan.perf_maps.contains(&m.name)
            && m.map_type != 4
            && !max_entries.iter().any(|(n, _)| n == &m.name)
        {
            return Err(setup(
                FailureClass::Other,
                format!(
                    "map `{}` declares max_entries 0 and no non-zero `{}_max_entries` constant sets it",
                    m.name, m.name
                ),
                full_log,
            ));
        }
    }

    loader.allow_unsupported_maps();
    for (var, bytes) in &values {
        loader.override_global(var.as_str(), bytes.as_slice(), true);
    }
    for (map, n) in &max_entries {
        loader.map_max_entries(map.as_str(), *n);
    }
    let mut ebpf = loader
        .load(&prepared.bytes)
        .map_err(|e| classify_loader_error(e, full_log))?;
    log::debug!(
        "maps created, BTF loaded, CO-RE applied after {:?}",
        started.elapsed()
    );

    let mut report = LoadReport {
        programs: Vec::new(),
        perf_maps: prepared.perf_maps.clone(),
        renamed_sections: prepared.renamed.clone(),
        params: values
            .iter()
            .map(|(var, _)| {
                let spec = specs.iter().find(|s| &s.var == var);
                let given = spec.and_then(|s| {
                    opts.params
                        .iter()
                        .rev()
                        .find(|(k, _)| k == &s.key || k == &s.var)
                        .map(|(_, v)| v.clone())
                });
                (
                    var.clone(),
                    given
                        .or_else(|| spec.and_then(|s| s.metadata_default.clone()))
                        .unwrap_or_default(),
                )
            })
            .collect(),
        max_entries,
        kernel_btf: match &btfgen_entry {
            Some((entry, _)) => format!("btfgen layer: {entry}"),
            None => opts
                .kernel_btf
                .as_ref()
                .map_or_else(|| SYSFS_VMLINUX.to_string(), |p| p.display().to_string()),
        },
        load_ms: 0.0,
    };

    for p in info.programs() {
        let t = Instant::now();
        let status = match ebpf.program_mut(&p.name) {
            None => ProgramStatus::Failed {
                failure: Failure::new(
                    FailureClass::Other,
                    "the loader did not find this program in the object",
                ),
            },
            Some(prog) => match load_program(prog, &p.kind, &p.target, handle.as_ref()) {
                Ok(()) => ProgramStatus::Loaded {
                    verified_insns: prog
                        .info()
                        .ok()
                        .and_then(|i| i.verified_instruction_count()),
                    load_us: t.elapsed().as_micros() as u64,
                },
                Err(e) => {
                    let prog_type = prog.prog_type();
                    ProgramStatus::Failed {
                        failure: classify_program_error(e, prog_type, gadget, &p.name, opts),
                    }
                }
            },
        };
        report.programs.push(ProgramReport {
            name: p.name.clone(),
            section: p.section.clone(),
            kind: p.kind.name().to_string(),
            status,
        });
    }
    report.load_ms = started.elapsed().as_secs_f64() * 1000.0;
    log::debug!("programs loaded after {:?}", started.elapsed());
    if report.programs.iter().any(|p| !p.loaded()) {
        drop(ebpf);
        return Err(LoadError::Programs {
            report: Box::new(report),
            full_log,
        });
    }
    Ok(Loaded {
        ebpf,
        report,
        btf: handle,
    })
}

/// Runs `BPF_PROG_LOAD` for one program, with the attach target BTF-attached kinds need.
fn load_program(
    prog: &mut Program,
    kind: &ProgramKind,
    target: &str,
    btf: Option<&Btf>,
) -> Result<(), LoadProgramError> {
    let need = || btf.ok_or(LoadProgramError::NoBtf);
    let r = match prog {
        Program::TracePoint(p) => p.load(),
        Program::KProbe(p) => p.load(),
        Program::UProbe(p) => p.load(),
        Program::RawTracePoint(p) => p.load(),
        Program::SocketFilter(p) => p.load(),
        Program::SchedClassifier(p) => p.load(),
        Program::SkSkb(p) => p.load(),
        Program::SkMsg(p) => p.load(),
        Program::SockOps(p) => p.load(),
        Program::PerfEvent(p) => p.load(),
        Program::Xdp(p) => p.load(),
        Program::CgroupSkb(p) => p.load(),
        Program::CgroupSock(p) => p.load(),
        Program::CgroupSockAddr(p) => p.load(),
        Program::CgroupSockopt(p) => p.load(),
        Program::CgroupSysctl(p) => p.load(),
        Program::CgroupDevice(p) => p.load(),
        Program::SkLookup(p) => p.load(),
        Program::SkReuseport(p) => p.load(),
        Program::FlowDissector(p) => p.load(),
        Program::LircMode2(p) => p.load(),
        Program::FEntry(p) => p.load(target, need()?),
        Program::FExit(p) => p.load(target, need()?),
        Program::BtfTracePoint(p) => p.load(target, need()?),
        Program::Lsm(p) => p.load(target, need()?),
        Program::LsmCgroup(p) => p.load(target, need()?),
        Program::Iter(p) => {
            let iter_target = match kind {
                ProgramKind::Iter { target } => target.as_str(),
                _ => target,
            };
            p.load(iter_target, need()?)
        }
        Program::Extension(_) | Program::ReusePortSocketFilter(_) => {
            return Err(LoadProgramError::Unsupported(
                "extension programs need a target program to replace",
            ));
        }
    };
    r.map_err(LoadProgramError::Aya)
}

#[derive(Debug)]
enum LoadProgramError {
    NoBtf,
    Unsupported(&'static str),
    Aya(aya::programs::ProgramError),
}

fn classify_program_error(
    e: LoadProgramError,
    prog_type: aya::programs::ProgramType,
    gadget: &Gadget,
    name: &str,
    opts: &LoadOptions,
) -> Failure {
    use aya::programs::ProgramError as PE;
    let e = match e {
        LoadProgramError::NoBtf => {
            return Failure::new(
                FailureClass::MissingBtf,
                "this program's attach target is found through kernel BTF, and there is none",
            );
        }
        LoadProgramError::Unsupported(why) => {
            return Failure::new(
                FailureClass::Other,
                format!("not supported by this runtime: {why}"),
            );
        }
        LoadProgramError::Aya(e) => e,
    };
    match e {
        PE::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let (class, mut message) = classify::classify_prog_load(&io_error, &log, || {
                aya::sys::is_program_supported(prog_type).unwrap_or(true)
            });
            if class == FailureClass::CoreRelocation {
                let relos = explain_core_failure(gadget, name, &log, opts);
                if !relos.is_empty() {
                    message = format!("CO-RE relocation did not resolve: {}", relos.join("; "));
                }
            }
            Failure {
                class,
                message,
                verifier_log: log,
            }
        }
        PE::Btf(aya::BtfError::UnknownBtfTypeName { type_name }) => Failure::new(
            FailureClass::AttachPointMissing,
            format!("attach target `{type_name}` is not in the kernel BTF"),
        ),
        PE::SyscallError(s) => Failure::new(
            classify::classify_errno(&s.io_error).unwrap_or(FailureClass::Other),
            format!("{} failed: {}", s.call, s.io_error),
        ),
        other => Failure::new(FailureClass::Other, other.to_string()),
    }
}

/// Names the relocations behind a poisoned instruction (or, when the instruction cannot be
/// mapped, every relocation of the program's section that the kernel BTF cannot satisfy).
fn explain_core_failure(gadget: &Gadget, name: &str, log: &str, opts: &LoadOptions) -> Vec<String> {
    let info = &gadget.info;
    let (Some(ext), Some(prog)) = (info.btf_ext(), info.program(name)) else {
        return Vec::new();
    };
    let btf = info.btf();
    let start_insn = gadget
        .elf
        .symbols
        .iter()
        .find(|s| s.name == name && s.kind == STT_FUNC)
        .map_or(0, |s| s.value as usize / 8);
    let kernel_bytes = std::fs::read(
        opts.kernel_btf
            .as_deref()
            .unwrap_or(Path::new(SYSFS_VMLINUX)),
    )
    .ok();
    let kernel = kernel_bytes.as_deref().and_then(|b| RawBtf::parse(b).ok());
    let section: Vec<_> = ext
        .core_relos
        .iter()
        .filter(|r| r.section(btf) == prog.section)
        .collect();
    let at = classify::poisoned_insn(log).map(|i| i + start_insn);
    let exact: Vec<_> = section
        .iter()
        .filter(|r| Some(r.insn_off as usize / 8) == at)
        .collect();
    let mut out = Vec::new();
    for r in if exact.is_empty() {
        section.iter().collect()
    } else {
        exact.clone()
    } {
        let mut d = core_relo::describe(btf, r);
        if let Some(k) = &kernel {
            core_relo::check_against_kernel(&mut d, k);
        }
        // Without an exact instruction match, keep only what the kernel cannot satisfy.
        if !exact.is_empty() || d.kernel.is_some() {
            out.push(d.to_string());
        }
    }
    out.dedup();
    out
}

/// Classifies a failure of `EbpfLoader::load` (object parse, BTF load, CO-RE, map creation).
fn classify_loader_error(e: aya::EbpfError, full_log: bool) -> LoadError {
    use aya::EbpfError as E;
    use aya::maps::MapError;
    let failure = match e {
        E::MapError(MapError::CreateError { name, io_error }) => {
            let class = classify::classify_errno(&io_error).unwrap_or(FailureClass::Other);
            let class =
                if class == FailureClass::Other && io_error.raw_os_error() == Some(libc::EINVAL) {
                    FailureClass::UnknownMapType
                } else {
                    class
                };
            let mut f = Failure::new(class, format!("cannot create map `{name}`: {io_error}"));
            if class == FailureClass::UnknownMapType {
                f.message.push_str(" (the kernel rejected the map definition: unknown map type, or a size it does not accept)");
            }
            f
        }
        E::MapError(MapError::Unsupported { name, map_type }) => Failure::new(
            FailureClass::UnknownMapType,
            format!("map `{name}` has map type {map_type:?}, unknown to the loader"),
        ),
        E::BtfError(aya::BtfError::LoadError {
            io_error,
            verifier_log,
        }) => Failure {
            class: classify::classify_errno(&io_error).unwrap_or(FailureClass::Other),
            message: format!("the kernel rejected the object's BTF: {io_error}"),
            verifier_log: verifier_log.to_string(),
        },
        E::BtfRelocationError(err) => {
            let mut chain = err.to_string();
            let mut src = std::error::Error::source(&err);
            while let Some(s) = src {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                src = s.source();
            }
            Failure::new(FailureClass::CoreRelocation, chain)
        }
        E::BtfError(e) => Failure::new(FailureClass::MissingBtf, format!("BTF: {e}")),
        E::NoBTF => Failure::new(FailureClass::MissingBtf, "the object has no BTF"),
        other => {
            let mut chain = other.to_string();
            let mut src = std::error::Error::source(&other);
            while let Some(s) = src {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                src = s.source();
            }
            Failure::new(FailureClass::Other, chain)
        }
    };
    LoadError::Setup { failure, full_log }
}
