//! Loading a gadget through libbpf: parameters into `.rodata`, map sizes, the ring buffer
//! fallback, CO-RE against the target BTF, and every program through the verifier.
//!
//! libbpf (through libbpf-rs) opens the object, relocates it, creates the maps and loads the
//! programs. What is ours on top, before `bpf_object__load`:
//!
//! - the gadget conventions: `--param` values written into `.rodata`, `<map>_max_entries`
//!   constants and 0-sized maps, program types for sections libbpf does not know (`socket1`,
//!   `classifier/...`, `perf_event...`), ring buffers turned into perf event arrays on kernels
//!   without them;
//! - the target BTF for CO-RE (`btf_custom_path`): `--kernel-btf`, the image's btfgen layer, or
//!   the running kernel's BTF minimized to what the relocations can reach (cached per boot),
//!   plus the types upstream's runtime provides ([`gadget_object::runtime_types`]);
//! - pinned maps go to a bpffs instance mounted in a private mount namespace, never
//!   `/sys/fs/bpf`: the pins vanish when the load is done;
//! - a report per program: libbpf stops at the first program the kernel rejects, so the load is
//!   retried without it until every program's outcome is known; each failure is classified
//!   with its verifier log, captured per load ([`crate::libbpf_log`]).
//!
//! Everything loaded lives in the returned [`Loaded`]: dropping it closes every link, program
//! and map, so a failure at any step leaves nothing loaded in the kernel.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gadget_facts::btf::relo;
use gadget_object::ProgramKind;
use libbpf_rs::{MapCore as _, MapType, Object, ObjectBuilder, ProgramAttachType, ProgramType};
use serde::Serialize;

use crate::btfgen;
use crate::classify::{self, Failure, FailureClass};
use crate::core_cache;
use crate::core_relo;
use crate::libbpf_log::{self, Capture, Messages};
use crate::params::{self, ParamError};
use crate::source::Gadget;
use gadget_object::btf::raw::{BtfBuilder, CoreRoot as RawCoreRoot, RawBtf};
use gadget_object::elf_patch::{FixupError, STT_FUNC, STT_OBJECT};
use gadget_object::runtime_types;

/// Where the running kernel publishes its BTF.
pub const SYSFS_VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// `BPF_MAP_TYPE_RINGBUF`.
const MAP_TYPE_RINGBUF: u32 = 27;
/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
const MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
/// The object name given to libbpf (its internal maps are `gadget.rodata`, `gadget.bss`, ...).
const OBJECT_NAME: &str = "gadget";
/// The socket enricher map upstream's runtime provides.
const SOCKETS_MAP: &str = "gadget_sockets";

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Kernel BTF for CO-RE (default: /sys/kernel/btf/vmlinux, else the image's btfgen entry
    /// for this kernel).
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
    /// Sections libbpf does not know, with the program type given to them
    /// (`socket1` → `socket_filter`).
    pub program_types: Vec<(String, String)>,
    /// Parameters written into `.rodata` (variable, value as given).
    pub params: Vec<(String, String)>,
    /// Maps sized by a `<map>_max_entries` constant.
    pub max_entries: Vec<(String, u32)>,
    /// Maps pinned by the gadget (into a private bpffs, removed after loading).
    pub pinned_maps: Vec<String>,
    /// Every map as the kernel created it (name, max_entries): sizes from `_max_entries`
    /// parameters and 0-sized perf event arrays (one slot per possible CPU) show here.
    pub maps: Vec<(String, u32)>,
    /// Types the runtime added to the target BTF (socket enricher).
    pub runtime_types: Vec<String>,
    /// The kernel BTF used.
    pub kernel_btf: String,
    /// Wall time of the whole load, milliseconds.
    pub load_ms: f64,
}

/// A loaded gadget.
pub struct Loaded {
    /// Links made by [`crate::attach`] (program name, link); dropped before the object.
    pub links: Vec<(String, libbpf_rs::Link)>,
    /// Maps and programs (dropping it unloads everything).
    pub ebpf: Object,
    /// The report.
    pub report: LoadReport,
}

impl Loaded {
    /// Detaches every link, one thread per link, then closes programs and maps. Detaching makes
    /// the kernel wait for an RCU grace period (tens of milliseconds on a busy machine);
    /// detaches of other kinds (trampolines, iterators) overlap this way; perf-event
    /// attachments (tracepoints, kprobes) are serialized by the kernel's `event_mutex` whatever
    /// we do. Dropping a [`Loaded`] does the same work on one thread.
    pub fn unload(mut self) {
        let links = std::mem::take(&mut self.links);
        std::thread::scope(|scope| {
            for (_, link) in links {
                scope.spawn(move || drop(link));
            }
        });
        drop(self);
    }

    /// The loaded program called `name`.
    pub fn program(&self, name: &str) -> Option<libbpf_rs::ProgramMut<'_>> {
        self.ebpf.progs_mut().find(|p| p.name() == name)
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Option<libbpf_rs::Map<'_>> {
        self.ebpf.maps().find(|m| m.name() == name)
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // Links first: they hold the programs.
        self.links.clear();
    }
}

/// Why a gadget did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A parameter was wrong.
    #[error(transparent)]
    Param(Box<ParamError>),
    /// The object is malformed or has a program section no loader understands.
    #[error(transparent)]
    Fixup(#[from] FixupError),
    /// A step before the programs failed (kernel BTF, object, maps, relocations).
    #[error("{}", .failure.render_body(*.full_log))]
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

impl gadget_store::hint::Hint for LoadError {
    fn hints(&self) -> Vec<String> {
        let failures: Vec<&Failure> = match self {
            LoadError::Setup { failure, .. } => vec![failure],
            LoadError::Programs { report, .. } => report
                .programs
                .iter()
                .filter_map(|p| match &p.status {
                    ProgramStatus::Failed { failure } if !p.loaded() => Some(failure),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        failures
            .iter()
            .filter_map(|f| f.class.hint().map(str::to_owned))
            .collect()
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
                failure.render_body(full)
            ));
        }
    }
    out
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

/// The essential names of the types the object's CO-RE relocations are rooted at.
fn core_root_names(gadget: &Gadget) -> Vec<String> {
    let btf = gadget.info.btf();
    let mut names: Vec<String> = gadget
        .info
        .btf_ext()
        .map(|e| e.core_relos.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|r| core_relo::essential_name(btf.name(r.type_id)).to_string())
        .collect();
    names.sort();
    names.dedup();
    names
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
        if r.kind == relo::TYPE_ID_TARGET || r.kind == relo::TYPE_MATCHES {
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

/// The BTF libbpf relocates against (`btf_custom_path`), when not the running kernel's own.
struct TargetBtf {
    /// The file given to libbpf.
    path: Option<PathBuf>,
    /// Keeps a temporary target file alive until the load is done.
    _temp: Option<tempfile::NamedTempFile>,
    /// The target has the ring buffer helpers (`enum bpf_func_id`).
    has_ringbuf: bool,
    /// Runtime-provided types added to it.
    runtime_types: Vec<String>,
    /// On a cache miss: the thread writing this boot's minimized BTF into the cache while
    /// libbpf reads the kernel's own (joined by [`TargetBtf::finish`]).
    cache_filler: Option<std::thread::JoinHandle<()>>,
}

impl TargetBtf {
    /// Waits for the cache filler, if any, so that the next run finds the minimized BTF.
    fn finish(&mut self) {
        if let Some(filler) = self.cache_filler.take() {
            let t = Instant::now();
            if filler.join().is_err() {
                log::debug!("the kernel BTF cache filler panicked; the next run computes it");
            }
            log::debug!("waited {:?} for the kernel BTF cache filler", t.elapsed());
        }
    }
}

/// Reads and minimizes the running kernel's BTF for `roots` and stores it as the cache `entry`
/// (a failure only means the next run computes it again).
fn fill_core_cache(entry: &Path, roots: &[RawCoreRoot]) {
    let t = Instant::now();
    let Ok(bytes) = std::fs::read(SYSFS_VMLINUX) else {
        return;
    };
    let Ok(raw) = RawBtf::parse(&bytes) else {
        return;
    };
    let mini = raw.minimize_for_core(roots);
    core_cache::store(entry, &mini);
    log::debug!(
        "kernel BTF cache filled ({} bytes) in {:?}",
        mini.len(),
        t.elapsed()
    );
}

/// Chooses and, where needed, writes the target BTF for CO-RE:
///
/// - no CO-RE relocations: none (libbpf reads no kernel BTF for them);
/// - the running kernel: its BTF minimized to the types the relocations can reach (a few
///   hundred types instead of 130,000; cached per boot), or libbpf's own reading of the whole
///   one when the relocations need it whole;
/// - `--kernel-btf` or the btfgen layer: that file;
///
/// and, when the object relocates against the socket enricher's types, those types appended.
fn target_btf(
    gadget: &Gadget,
    kernel_btf: Option<&Path>,
    full_log: bool,
) -> Result<TargetBtf, LoadError> {
    let has_core = gadget
        .info
        .btf_ext()
        .is_some_and(|e| !e.core_relos.is_empty());
    let runtime: Vec<String> = if has_core {
        let names = core_root_names(gadget);
        runtime_types::SOCKET_TYPES
            .iter()
            .filter(|t| names.iter().any(|n| n == *t))
            .map(|t| t.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let source = KernelBtfFile {
        path: kernel_btf.unwrap_or(Path::new(SYSFS_VMLINUX)),
        full_log,
    };
    let done = |path: Option<PathBuf>, t: Option<tempfile::NamedTempFile>, has_ringbuf: bool| {
        Ok(TargetBtf {
            path: t.as_ref().map(|t| t.path().to_path_buf()).or(path),
            _temp: t,
            has_ringbuf,
            runtime_types: runtime.clone(),
            cache_filler: None,
        })
    };

    if kernel_btf.is_some() {
        // Another kernel's BTF: libbpf reads the whole file (also for the ring buffer check).
        let bytes = source.read()?;
        source.parse(&bytes)?;
        let has_ringbuf = RawBtf::parse(&bytes)
            .map(|r| r.enum_has_value("bpf_func_id", "BPF_FUNC_ringbuf_reserve"))
            .unwrap_or(true);
        if runtime.is_empty() {
            return done(Some(source.path.to_path_buf()), None, has_ringbuf);
        }
        let blob = source.with_runtime(&bytes)?;
        return done(None, Some(source.temp(&blob)?), has_ringbuf);
    }
    if !has_core {
        return done(None, None, true);
    }
    let Some(roots) = core_roots(gadget) else {
        if runtime.is_empty() {
            return done(None, None, true);
        }
        let blob = source.with_runtime(&source.read()?)?;
        return done(None, Some(source.temp(&blob)?), true);
    };
    // The running kernel's minimized BTF (with the runtime's types) may be cached from an
    // earlier run in this boot.
    let t = Instant::now();
    let entry = core_cache::entry(&roots);
    if let Some(path) = entry.as_deref().filter(|p| core_cache::lookup(p).is_some()) {
        log::debug!("target BTF from the cache in {:?}", t.elapsed());
        return done(Some(path.to_path_buf()), None, true);
    }
    // A cache miss without runtime types: libbpf reads the kernel's own BTF, as bpftool does,
    // while another thread minimizes it for the cache, so that a cold run costs what bpftool
    // does rather than that plus the minimizing.
    if let (true, Some(entry)) = (runtime.is_empty(), entry.clone()) {
        let filler = std::thread::Builder::new()
            .name("core-btf-cache".into())
            .spawn(move || fill_core_cache(&entry, &roots));
        let mut target = done(None, None, true)?;
        match filler {
            Ok(handle) => target.cache_filler = Some(handle),
            Err(e) => log::debug!("cannot start the kernel BTF cache filler: {e}"),
        }
        return Ok(target);
    }
    let mini = source.minimized(&roots, !runtime.is_empty(), t)?;
    if let Some(entry) = &entry {
        core_cache::store(entry, &mini);
        if core_cache::lookup(entry).is_some() {
            return done(Some(entry.clone()), None, true);
        }
    }
    done(None, Some(source.temp(&mini)?), true)
}

/// A kernel BTF file the target BTF is made from, and the errors reading it gives.
struct KernelBtfFile<'a> {
    path: &'a Path,
    full_log: bool,
}

impl KernelBtfFile<'_> {
    /// The file's bytes.
    fn read(&self) -> Result<Vec<u8>, LoadError> {
        std::fs::read(self.path).map_err(|e| {
            setup(
                FailureClass::MissingBtf,
                format!("cannot read kernel BTF `{}`: {e}", self.path.display()),
                self.full_log,
            )
        })
    }

    /// Checks that `bytes` are BTF.
    fn parse(&self, bytes: &[u8]) -> Result<(), LoadError> {
        RawBtf::parse(bytes).map(|_| ()).map_err(|e| {
            setup(
                FailureClass::MissingBtf,
                format!("`{}` is not BTF: {e}", self.path.display()),
                self.full_log,
            )
        })
    }

    /// `blob` with the socket enricher's types appended.
    fn with_runtime(&self, blob: &[u8]) -> Result<Vec<u8>, LoadError> {
        self.parse(blob)?;
        let raw = RawBtf::parse(blob).expect("parsed above");
        let mut b = BtfBuilder::new(&raw);
        runtime_types::add_socket_types(&mut b);
        Ok(b.finish())
    }

    /// The file minimized to the types `roots` can reach (with the socket enricher's types
    /// when `with_runtime`); `t` is when the work began, for the log.
    fn minimized(
        &self,
        roots: &[RawCoreRoot],
        with_runtime: bool,
        t: Instant,
    ) -> Result<Vec<u8>, LoadError> {
        let bytes = self.read()?;
        self.parse(&bytes)?;
        let raw = RawBtf::parse(&bytes).expect("parsed above");
        let mut mini = raw.minimize_for_core(roots);
        if with_runtime {
            mini = self.with_runtime(&mini)?;
        }
        log::debug!(
            "target BTF: {} bytes, read and minimized in {:?}",
            mini.len(),
            t.elapsed()
        );
        Ok(mini)
    }

    /// `blob` in a temporary file.
    fn temp(&self, blob: &[u8]) -> Result<tempfile::NamedTempFile, LoadError> {
        write_temp_btf("runtime-min-target-btf-", blob).map_err(|e| {
            setup(
                FailureClass::Other,
                format!("cannot write the target BTF: {e}"),
                self.full_log,
            )
        })
    }
}

/// The program type for a section spelling libbpf does not know, the way Inspektor Gadget's
/// runtime loads it.
fn program_type_for(
    section: &str,
) -> Option<(ProgramType, Option<ProgramAttachType>, &'static str)> {
    let prefix = section.split('/').next().unwrap_or(section);
    Some(match prefix {
        p if p.starts_with("socket") => (ProgramType::SocketFilter, None, "socket_filter"),
        p if p.starts_with("classifier") || p.starts_with("tc") => {
            (ProgramType::SchedCls, None, "sched_cls")
        }
        p if p.starts_with("perf_event") => (ProgramType::PerfEvent, None, "perf_event"),
        p if p.starts_with("sk_skb") => (
            ProgramType::SkSkb,
            Some(ProgramAttachType::SkSkbStreamVerdict),
            "sk_skb",
        ),
        p if p.starts_with("sk_msg") => (
            ProgramType::SkMsg,
            Some(ProgramAttachType::SkMsgVerdict),
            "sk_msg",
        ),
        p if p.starts_with("sockops") => (ProgramType::SockOps, None, "sock_ops"),
        _ => return None,
    })
}

/// libbpf's name for the internal map of data section `section` (`.rodata` →
/// `gadget.rodata`; `.rodata.foo` → `.rodata.foo`), at most 15 characters.
fn internal_map_name(section: &str) -> String {
    let sfx_len = section.len().max(7);
    let pfx_len = if section.get(1..).is_some_and(|s| s.contains('.')) {
        0
    } else {
        15usize.saturating_sub(sfx_len).min(OBJECT_NAME.len())
    };
    let mut name: String = OBJECT_NAME[..pfx_len].to_string();
    name.push_str(&section[..section.len().min(sfx_len)]);
    name.truncate(15);
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Everything decided before opening the object; the same for every attempt.
struct Plan<'a> {
    object: &'a [u8],
    btf_custom_path: Option<&'a Path>,
    /// Private bpffs mount point for pinned maps.
    pin_root: Option<&'a Path>,
    perf_maps: &'a [String],
    max_entries: &'a [(String, u32)],
    /// `(internal map, offset, bytes)` for each parameter.
    globals: Vec<(String, usize, Vec<u8>)>,
    /// The socket enricher map's value size, when the runtime provides its type.
    sockets_value_size: Option<u32>,
}

/// One failed `bpf_object__open`/`__load`.
struct AttemptFailure {
    /// The program whose load failed (`None`: the object, a map or a relocation).
    program: Option<String>,
    /// A program section neither libbpf nor this runtime knows.
    unsupported_section: Option<String>,
    errno: Option<i32>,
    /// libbpf's error.
    error: String,
    messages: Messages,
}

/// Opens `plan.object`, applies the plan, and loads every program not in `skip`.
fn attempt(
    plan: &Plan<'_>,
    skip: &[String],
    capture: &Capture,
    program_types: &mut Vec<(String, String)>,
) -> Result<Object, AttemptFailure> {
    let fail = |program: Option<String>, e: libbpf_rs::Error, messages: Messages| AttemptFailure {
        program,
        unsupported_section: None,
        errno: libbpf_log::errno(&e),
        error: format!("{e:#}"),
        messages,
    };
    let mut builder = ObjectBuilder::default();
    let configured = builder
        .name(OBJECT_NAME)
        .and_then(|b| match plan.btf_custom_path {
            Some(p) => b.btf_custom_path(p),
            None => Ok(b),
        });
    let configured = configured.and_then(|b| match plan.pin_root {
        Some(p) => b.pin_root_path(p),
        None => Ok(b),
    });
    if let Err(e) = configured {
        return Err(fail(None, e, capture.take()));
    }
    let mut open = builder
        .open_memory(plan.object)
        .map_err(|e| fail(None, e, capture.take()))?;
    program_types.clear();
    for mut p in open.progs_mut() {
        let name = p.name().to_string_lossy().into_owned();
        if skip.contains(&name) {
            p.set_autoload(false);
            continue;
        }
        if p.prog_type() == ProgramType::Unspec {
            let section = p.section().to_string_lossy().into_owned();
            if let Some((ty, attach, label)) = program_type_for(&section) {
                p.set_prog_type(ty);
                if let Some(a) = attach {
                    p.set_attach_type(a);
                }
                program_types.push((section, label.to_string()));
            } else {
                return Err(AttemptFailure {
                    program: Some(name),
                    unsupported_section: Some(section),
                    errno: None,
                    error: String::new(),
                    messages: capture.take(),
                });
            }
        }
    }
    for mut m in open.maps_mut() {
        let name = m.name().to_string_lossy().into_owned();
        let r = (|| -> libbpf_rs::Result<()> {
            if plan.perf_maps.contains(&name) {
                m.set_type(MapType::PerfEventArray)?;
                m.set_key_size(4)?;
                m.set_value_size(4)?;
                m.set_max_entries(0)?;
            }
            if let Some((_, n)) = plan.max_entries.iter().find(|(m, _)| *m == name) {
                m.set_max_entries(*n)?;
            }
            if name == SOCKETS_MAP {
                if let Some(size) = plan.sockets_value_size {
                    m.set_value_size(size)?;
                }
            }
            for (map, off, bytes) in &plan.globals {
                if *map != name {
                    continue;
                }
                let data = m.initial_value_mut().ok_or_else(|| {
                    libbpf_rs::Error::from(std::io::Error::other(format!(
                        "map `{name}` has no initial value"
                    )))
                })?;
                let slot = data.get_mut(*off..off + bytes.len()).ok_or_else(|| {
                    libbpf_rs::Error::from(std::io::Error::other(format!(
                        "a parameter lies outside map `{name}`"
                    )))
                })?;
                slot.copy_from_slice(bytes);
            }
            Ok(())
        })();
        if let Err(e) = r {
            return Err(fail(None, e, capture.take()));
        }
    }
    open.load().map_err(|e| {
        let messages = capture.take();
        fail(messages.failed_program(), e, messages)
    })
}

/// Runs `f` on a thread of its own in a private mount namespace where a fresh bpffs instance is
/// mounted at `dir` (nothing propagates back to the host). The namespace, the bpffs instance and
/// every pin in it disappear when the thread ends; maps stay alive through their descriptors.
fn in_private_bpffs<T: Send>(dir: &Path, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    use std::ffi::CString;
    let target = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let check = |rc: libc::c_int| {
                    if rc == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                };
                let (root, bpf) = (c"/", c"bpf");
                // SAFETY: plain syscalls with valid NUL-terminated strings that outlive the
                // calls; they change only this thread's mount namespace.
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
                        bpf.as_ptr(),
                        target.as_ptr(),
                        bpf.as_ptr(),
                        0,
                        std::ptr::null(),
                    ))?;
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the loader thread panicked")))
    })
}

/// The instructions the verifier processed for a loaded program (kernel 5.16+).
fn verified_insns(prog: &libbpf_rs::Program<'_>) -> Option<u32> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    let fd = prog.as_fd().as_raw_fd();
    // SAFETY: `bpf_prog_info` is plain data; all zeroes is a valid value.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is a valid, writable `bpf_prog_info` of `len` bytes for the call.
    let rc = unsafe {
        libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info as *mut _, &mut len as *mut u32)
    };
    (rc == 0 && info.verified_insns > 0).then_some(info.verified_insns)
}

/// Loads every map and program of `gadget` into the kernel. On a kernel without
/// `/sys/kernel/btf/vmlinux` and without `--kernel-btf`, the image's btfgen layer provides this
/// kernel's BTF (see [`crate::btfgen`]).
pub fn load(gadget: &Gadget, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let full_log = opts.full_log;
    let info = &gadget.info;

    // Parameters: the values given, checked against the object's `const volatile` globals.
    let specs = params::specs(info, gadget.metadata.as_ref());
    let values = params::resolve(&specs, &opts.params, info.elf().endianness)?;

    // Kernel BTF: the btfgen layer's on a kernel without its own (the file lives until the
    // load is done: libbpf and the error explanations read it), then the CO-RE target.
    let btfgen_entry = btfgen_kernel_btf(gadget, opts)?;
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
    let mut target = target_btf(gadget, opts.kernel_btf.as_deref(), full_log)?;
    log::debug!("target BTF ready after {:?}", started.elapsed());

    // Maps: ring buffer fallbacks, sizes, parameter slots, pins.
    let perf_maps = perf_event_fallbacks(gadget, &target);
    let max_entries = max_entries_of(gadget, &values, &perf_maps, full_log)?;
    let globals = parameter_slots(gadget, &values, full_log)?;
    let pinned_maps: Vec<String> = info
        .maps()
        .iter()
        .filter(|m| m.pinning != 0)
        .map(|m| m.name.clone())
        .collect();
    let pin_dir = private_pin_dir(&pinned_maps, full_log)?;
    let plan = Plan {
        object: &gadget.object,
        btf_custom_path: target.path.as_deref(),
        pin_root: pin_dir.as_ref().map(|d| d.path()),
        perf_maps: &perf_maps,
        max_entries: &max_entries,
        globals,
        sockets_value_size: target
            .runtime_types
            .iter()
            .any(|t| t == "gadget_socket_value")
            .then_some(runtime_types::SOCKET_VALUE_SIZE),
    };

    // Programs: through the verifier, until every program's outcome is known.
    let LoadedPrograms {
        object,
        failed,
        program_types,
    } = load_programs(&plan, gadget, opts)?;
    drop(pin_dir);
    target.finish();
    log::debug!("object loaded after {:?}", started.elapsed());

    // The report.
    let report = LoadReport {
        programs: program_reports(gadget, &failed, object.as_ref()),
        perf_maps: perf_maps.clone(),
        program_types,
        params: params_as_given(&specs, &values, opts),
        max_entries,
        pinned_maps,
        maps: map_sizes(object.as_ref()),
        runtime_types: target.runtime_types.clone(),
        kernel_btf: match &btfgen_entry {
            Some((entry, _)) => format!("btfgen layer: {entry}"),
            None => opts
                .kernel_btf
                .as_ref()
                .map_or_else(|| SYSFS_VMLINUX.to_string(), |p| p.display().to_string()),
        },
        load_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    match object {
        Some(ebpf) if failed.is_empty() => Ok(Loaded {
            links: Vec::new(),
            ebpf,
            report,
        }),
        _ => Err(LoadError::Programs {
            report: Box::new(report),
            full_log,
        }),
    }
}

/// On a kernel without `/sys/kernel/btf/vmlinux` and without `--kernel-btf`, when the gadget
/// needs kernel BTF: this kernel's BTF from the image's btfgen layer, written to a temporary
/// file, with the layer's entry name.
fn btfgen_kernel_btf(
    gadget: &Gadget,
    opts: &LoadOptions,
) -> Result<Option<(String, tempfile::NamedTempFile)>, LoadError> {
    let full_log = opts.full_log;
    let info = &gadget.info;
    let wants_kernel_btf = info.programs().iter().any(|p| {
        matches!(
            p.kind,
            ProgramKind::Fentry
                | ProgramKind::Fexit
                | ProgramKind::TpBtf
                | ProgramKind::Lsm
                | ProgramKind::Iter { .. }
        )
    });
    let has_core = info.btf_ext().is_some_and(|e| !e.core_relos.is_empty());
    let sysfs = Path::new(SYSFS_VMLINUX);
    if opts.kernel_btf.is_some() || sysfs.exists() || !(has_core || wants_kernel_btf) {
        return Ok(None);
    }
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
    Ok(Some((key.entry(), file)))
}

/// Ring buffer tracer maps that become perf event arrays: all of them when the kernel (or the
/// target BTF the program's CO-RE checks run against) has no ring buffers, else none.
fn perf_event_fallbacks(gadget: &Gadget, target: &TargetBtf) -> Vec<String> {
    let info = &gadget.info;
    let ringbuf_maps: Vec<String> = info
        .tracers()
        .iter()
        .filter(|t| {
            info.map(&t.map_name)
                .is_some_and(|m| m.map_type == MAP_TYPE_RINGBUF)
        })
        .map(|t| t.map_name.clone())
        .collect();
    if !ringbuf_maps.is_empty()
        && (!target.has_ringbuf || !MapType::RingBuf.is_supported().unwrap_or(true))
    {
        log::info!(
            "no ring buffers on this kernel: using perf event arrays for {}",
            ringbuf_maps.join(", ")
        );
        return ringbuf_maps;
    }
    Vec::new()
}

/// Map sizes from `<map>_max_entries` constants (a parameter of that name wins); refuses a map
/// left with max_entries 0.
fn max_entries_of(
    gadget: &Gadget,
    values: &[(String, Vec<u8>)],
    perf_maps: &[String],
    full_log: bool,
) -> Result<Vec<(String, u32)>, LoadError> {
    let mut max_entries: Vec<(String, u32)> = Vec::new();
    for m in gadget.info.maps() {
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
    for m in gadget.info.maps() {
        if m.max_entries == 0
            && !perf_maps.contains(&m.name)
            && m.map_type != MAP_TYPE_PERF_EVENT_ARRAY
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
    Ok(max_entries)
}

/// Where each parameter's variable sits: `(internal map, offset, bytes)`.
fn parameter_slots(
    gadget: &Gadget,
    values: &[(String, Vec<u8>)],
    full_log: bool,
) -> Result<Vec<(String, usize, Vec<u8>)>, LoadError> {
    let mut globals = Vec::new();
    for (var, bytes) in values {
        let sym = gadget
            .elf
            .symbols
            .iter()
            .find(|s| s.name == *var && s.kind == STT_OBJECT);
        let section = sym.and_then(|s| gadget.elf.sections.get(s.section));
        match (sym, section) {
            (Some(sym), Some(sec)) => globals.push((
                internal_map_name(&sec.name),
                sym.value as usize,
                bytes.clone(),
            )),
            _ => {
                return Err(setup(
                    FailureClass::Other,
                    format!("parameter variable `{var}` is not a global of the object"),
                    full_log,
                ));
            }
        }
    }
    Ok(globals)
}

/// A mount point for the private bpffs of pinned maps, when the gadget pins any.
fn private_pin_dir(
    pinned_maps: &[String],
    full_log: bool,
) -> Result<Option<tempfile::TempDir>, LoadError> {
    if pinned_maps.is_empty() {
        return Ok(None);
    }
    tempfile::Builder::new()
        .prefix("runtime-min-bpffs-")
        .tempdir()
        .map(Some)
        .map_err(|e| {
            setup(
                FailureClass::Other,
                format!("cannot create a private bpffs mount point: {e}"),
                full_log,
            )
        })
}

/// What the load attempts left: the object (`None` when every program failed), each failed
/// program with why, and the program types given to sections libbpf does not know.
struct LoadedPrograms {
    object: Option<Object>,
    failed: Vec<(String, Failure)>,
    program_types: Vec<(String, String)>,
}

/// Loads the planned object; when a program fails, notes why and loads again without it, until
/// every program's outcome is known. A failure of the object itself (a map, a relocation, an
/// unknown section) ends the load.
fn load_programs(
    plan: &Plan<'_>,
    gadget: &Gadget,
    opts: &LoadOptions,
) -> Result<LoadedPrograms, LoadError> {
    let info = &gadget.info;
    let capture = Capture::start();
    let mut failed: Vec<(String, Failure)> = Vec::new();
    let mut program_types = Vec::new();
    let object = loop {
        let skip: Vec<String> = failed.iter().map(|(n, _)| n.clone()).collect();
        let result = match plan.pin_root {
            None => attempt(plan, &skip, &capture, &mut program_types),
            Some(dir) => {
                let r = in_private_bpffs(dir, || {
                    let mut types = Vec::new();
                    let r = attempt(plan, &skip, &capture, &mut types);
                    (r, types)
                });
                match r {
                    Ok((r, types)) => {
                        program_types = types;
                        r
                    }
                    Err(e) => {
                        return Err(setup(
                            FailureClass::Permission,
                            format!(
                                "the gadget pins maps, and a private bpffs for them cannot be mounted: {e}"
                            ),
                            opts.full_log,
                        ));
                    }
                }
            }
        };
        match result {
            Ok(object) => break Some(object),
            Err(AttemptFailure {
                unsupported_section: Some(section),
                ..
            }) => return Err(FixupError::UnsupportedSection { section }.into()),
            Err(f) => match f.program.clone() {
                Some(name)
                    if !skip.contains(&name) && info.programs().iter().any(|p| p.name == name) =>
                {
                    let failure = classify_program_failure(&f, gadget, &name, opts);
                    failed.push((name, failure));
                    if failed.len() == info.programs().len() {
                        break None;
                    }
                }
                _ => return Err(classify_setup_failure(&f, opts.full_log)),
            },
        }
    };
    Ok(LoadedPrograms {
        object,
        failed,
        program_types,
    })
}

/// Each parameter written, with its value as given (or the metadata's default).
fn params_as_given(
    specs: &[params::ParamSpec],
    values: &[(String, Vec<u8>)],
    opts: &LoadOptions,
) -> Vec<(String, String)> {
    values
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
        .collect()
}

/// Each map of the loaded object with the size the kernel gave it.
fn map_sizes(object: Option<&Object>) -> Vec<(String, u32)> {
    object
        .iter()
        .flat_map(|o| o.maps())
        .filter_map(|m| {
            let info = m.info().ok()?;
            Some((
                m.name().to_string_lossy().into_owned(),
                info.info.max_entries,
            ))
        })
        .collect()
}

/// Each program's outcome, in section order.
fn program_reports(
    gadget: &Gadget,
    failed: &[(String, Failure)],
    object: Option<&Object>,
) -> Vec<ProgramReport> {
    gadget
        .info
        .programs()
        .iter()
        .map(|p| {
            let status = match failed.iter().find(|(n, _)| *n == p.name) {
                Some((_, failure)) => ProgramStatus::Failed {
                    failure: failure.clone(),
                },
                None => {
                    match object.and_then(|o| o.progs().find(|x| x.name() == p.name.as_str())) {
                        Some(prog) => ProgramStatus::Loaded {
                            verified_insns: verified_insns(&prog),
                        },
                        None => ProgramStatus::Failed {
                            failure: Failure::new(
                                FailureClass::Other,
                                "libbpf did not load this program",
                            ),
                        },
                    }
                }
            };
            ProgramReport {
                name: p.name.clone(),
                section: p.section.clone(),
                kind: p.kind.name().to_string(),
                status,
            }
        })
        .collect()
}

/// Why one program did not load, classified, with its verifier log.
fn classify_program_failure(
    f: &AttemptFailure,
    gadget: &Gadget,
    name: &str,
    opts: &LoadOptions,
) -> Failure {
    let log = f.messages.verifier_log(name);
    let warnings = f.messages.warnings(Some(name));
    let errno = f.errno.unwrap_or(libc::EINVAL);
    let io = std::io::Error::from_raw_os_error(errno);
    let libbpf_says = if warnings.is_empty() {
        f.error.clone()
    } else {
        warnings.join("; ")
    };
    if log.trim().is_empty()
        && warnings
            .iter()
            .any(|w| w.contains("CO-RE") || w.contains("relo #"))
    {
        let relos = explain_core_failure(gadget, name, "", opts);
        let mut message = format!("CO-RE relocation failed: {libbpf_says}");
        if !relos.is_empty() {
            message = format!("CO-RE relocation did not resolve: {}", relos.join("; "));
        }
        return Failure {
            class: FailureClass::CoreRelocation,
            message,
            verifier_log: warnings.join("\n"),
        };
    }
    let section = gadget
        .info
        .program(name)
        .map(|p| p.section.clone())
        .unwrap_or_default();
    let (class, mut message) = classify::classify_prog_load(&io, &log, || {
        program_type_for(&section).is_none_or(|(t, ..)| t.is_supported().unwrap_or(true))
    });
    if class == FailureClass::CoreRelocation {
        let relos = explain_core_failure(gadget, name, &log, opts);
        if !relos.is_empty() {
            message = format!("CO-RE relocation did not resolve: {}", relos.join("; "));
        } else if let Some(l) = log
            .lines()
            .find(|l| l.starts_with("failed to resolve CO-RE relocation"))
        {
            message = l.to_string();
        }
    } else if log.trim().is_empty() {
        message = format!("{message} (libbpf: {libbpf_says})");
    }
    Failure {
        class,
        message,
        verifier_log: log,
    }
}

/// Classifies a failure before any program was loaded: opening the object, creating a map,
/// loading the object's BTF, relocating.
fn classify_setup_failure(f: &AttemptFailure, full_log: bool) -> LoadError {
    let warnings = f.messages.warnings(None);
    let detail = if warnings.is_empty() {
        f.error.clone()
    } else {
        warnings.join("\n")
    };
    let io = f.errno.map(std::io::Error::from_raw_os_error);
    let map_failure = warnings
        .iter()
        .find(|w| w.starts_with("map '") && w.contains("fail"));
    let failure = if let Some(w) = map_failure {
        let errno_class = io.as_ref().and_then(classify::classify_errno);
        let class = match (errno_class, f.errno) {
            (Some(c), _) => c,
            (None, Some(libc::EINVAL)) => FailureClass::UnknownMapType,
            _ => FailureClass::Other,
        };
        let mut fl = Failure::new(class, format!("cannot create a map: {w}"));
        if class == FailureClass::UnknownMapType {
            fl.message.push_str(" (the kernel rejected the map definition: unknown map type, or a size it does not accept)");
        }
        fl.verifier_log = detail;
        fl
    } else if warnings
        .iter()
        .any(|w| w.contains("CO-RE") || w.contains("relo #"))
    {
        Failure {
            class: FailureClass::CoreRelocation,
            message: format!("CO-RE relocation failed: {}", f.error),
            verifier_log: detail,
        }
    } else {
        let class = io
            .as_ref()
            .and_then(classify::classify_errno)
            .unwrap_or(FailureClass::Other);
        Failure {
            class,
            message: format!("libbpf cannot load the object: {}", f.error),
            verifier_log: detail,
        }
    };
    LoadError::Setup { failure, full_log }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_map_names_match_libbpf() {
        assert_eq!(internal_map_name(".rodata"), "gadget.rodata");
        assert_eq!(internal_map_name(".data"), "gadget.data");
        assert_eq!(internal_map_name(".bss"), "gadget.bss");
        assert_eq!(internal_map_name(".rodata.str1.1"), ".rodata.str1.1");
        assert_eq!(
            internal_map_name(".data.a_very_long_name"),
            ".data.a_very_lo"
        );
    }

    #[test]
    fn section_spellings_libbpf_lacks() {
        assert_eq!(
            program_type_for("socket1").unwrap().0,
            ProgramType::SocketFilter
        );
        assert_eq!(
            program_type_for("classifier/ingress/drop").unwrap().0,
            ProgramType::SchedCls
        );
        assert_eq!(
            program_type_for("perf_event1").unwrap().0,
            ProgramType::PerfEvent
        );
        assert!(program_type_for("struct_ops/x").is_none());
    }
}
