//! The two things a command line does with a gadget, built from the other modules:
//! [`verify`] (load through the verifier, attach, report per program, detach) and
//! [`run_gadget`] (load, attach, print records until a stop condition, detach).
//!
//! Both `ig-image run` and the `runtime-min` binary are thin layers over these.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gadget_store::{Reference, Store};
use serde::Serialize;

use crate::attach::{self, AttachReport, AttachStatus};
use crate::classify::{Failure, FailureClass};
use crate::decode::{Clock, DecodeError, Decoder};
use crate::load::{self, LoadError, LoadOptions, LoadReport, ProgramStatus};
use crate::output::{Columns, JsonLines, RecordHook, Sink};
use crate::session::{self, RunError, RunOptions, RunSummary};
use crate::source::{Gadget, SourceError};
use crate::wasm::{self, Interrupt, Verdict, WasmError, WasmModule};

/// What to run: an object file or an image in the store.
#[derive(Debug, Clone)]
pub enum Target {
    /// An eBPF object file, with an optional gadget.yaml.
    Object {
        /// The object.
        path: PathBuf,
        /// gadget.yaml.
        metadata: Option<PathBuf>,
    },
    /// An image reference.
    Image {
        /// The reference as given.
        reference: String,
        /// The platform's manifest to use (default: this machine's).
        platform: Option<String>,
    },
}

impl Target {
    /// An existing file whose first bytes are the ELF magic is an object; anything else is an
    /// image reference.
    pub fn from_arg(arg: &str, metadata: Option<PathBuf>, platform: Option<String>) -> Target {
        let p = Path::new(arg);
        let is_elf = p.is_file()
            && std::fs::File::open(p)
                .and_then(|mut f| {
                    let mut magic = [0u8; 4];
                    std::io::Read::read_exact(&mut f, &mut magic).map(|()| magic)
                })
                .is_ok_and(|m| &m == b"\x7fELF");
        if is_elf {
            Target::Object {
                path: p.to_path_buf(),
                metadata,
            }
        } else {
            Target::Image {
                reference: arg.to_string(),
                platform,
            }
        }
    }

    /// Reads the gadget (`store` is opened only for images).
    pub fn open(
        &self,
        store: impl FnOnce() -> Result<Store, ProveError>,
    ) -> Result<Gadget, ProveError> {
        match self {
            Target::Object { path, metadata } => {
                Ok(Gadget::from_object_file(path, metadata.as_deref())?)
            }
            Target::Image {
                reference,
                platform,
            } => {
                let r = Reference::parse(reference).map_err(|e| ProveError::Reference {
                    reference: reference.clone(),
                    reason: e.to_string(),
                })?;
                let store = store()?;
                Ok(Gadget::from_store(&store, &r, platform.as_deref())?)
            }
        }
    }
}

/// Anything that stops a gadget from being proven.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The reference did not parse.
    #[error("invalid image reference `{reference}`: {reason}")]
    Reference {
        /// As given.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The store could not be opened.
    #[error("cannot open the image store at `{}`", path.display())]
    Store {
        /// The store.
        path: PathBuf,
        /// The cause.
        #[source]
        source: gadget_store::StoreError,
    },
    /// The gadget could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The gadget did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The gadget's data sources cannot be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Attaching or reading failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The WASM module cannot run.
    #[error(transparent)]
    Wasm(#[from] WasmError),
}

/// The hints of the errors this one is transparently (the chain skips them).
impl gadget_store::hint::Hint for ProveError {
    fn hints(&self) -> Vec<String> {
        match self {
            ProveError::Load(e) => e.hints(),
            ProveError::Run(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}

impl ProveError {
    /// The failure classes, when the error is a classified kernel failure.
    pub fn classes(&self) -> Vec<FailureClass> {
        match self {
            ProveError::Load(e) => e.classes(),
            ProveError::Run(RunError::Attach { reports, .. }) => reports
                .iter()
                .filter_map(|r| match &r.status {
                    AttachStatus::Failed { failure } => Some(failure.class),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One program in a verification report.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedProgram {
    /// Function name.
    pub name: String,
    /// Section.
    pub section: String,
    /// Kind.
    pub kind: String,
    /// Load outcome.
    #[serde(flatten)]
    pub load: ProgramStatus,
    /// Attach outcome (absent when loading failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<AttachStatus>,
}

/// What `--verify-only` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The gadget (reference or path, and platform).
    pub gadget: String,
    /// Every program loaded and attached.
    pub ok: bool,
    /// Per program.
    pub programs: Vec<VerifiedProgram>,
    /// A failure before any program was loaded (kernel BTF, maps, object BTF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_failure: Option<Failure>,
    /// Details of the load.
    pub load: LoadReport,
}

/// Loads every program through the verifier, checks that every attach point exists (or, with
/// `attach`, really attaches what the runtime attaches), then detaches and unloads everything.
/// Setup failures and program failures are reported in the [`VerifyReport`], not as errors;
/// errors are for bad input (parameters, malformed objects).
pub fn verify(
    gadget: &Gadget,
    opts: &LoadOptions,
    attach: bool,
) -> Result<VerifyReport, ProveError> {
    // The WASM module is validated and instantiated (not run) before anything is loaded.
    if let Some(bytes) = &gadget.wasm {
        wasm::validate(bytes)?;
    }
    let mut report = VerifyReport {
        gadget: gadget.origin.clone(),
        ok: false,
        programs: Vec::new(),
        setup_failure: None,
        load: LoadReport::default(),
    };
    match load::load(gadget, opts) {
        Ok(mut loaded) => {
            let attached = if attach {
                attach::attach_all(&mut loaded, gadget)
            } else {
                attach::check_all(gadget)
            };
            report.programs = loaded
                .report
                .programs
                .iter()
                .map(|p| VerifiedProgram {
                    name: p.name.clone(),
                    section: p.section.clone(),
                    kind: p.kind.clone(),
                    load: p.status.clone(),
                    attach: attached
                        .iter()
                        .find(|a| a.name == p.name)
                        .map(|a| a.status.clone()),
                })
                .collect();
            report.ok = !attached
                .iter()
                .any(|a| matches!(a.status, AttachStatus::Failed { .. }));
            report.load = loaded.report.clone();
            loaded.unload();
        }
        Err(LoadError::Programs { report: r, .. }) => {
            // The programs that did load still get their attach points checked.
            let checked = attach::check_all(gadget);
            report.programs = r
                .programs
                .iter()
                .map(|p| VerifiedProgram {
                    name: p.name.clone(),
                    section: p.section.clone(),
                    kind: p.kind.clone(),
                    load: p.status.clone(),
                    attach: p
                        .loaded()
                        .then(|| {
                            checked
                                .iter()
                                .find(|a| a.name == p.name)
                                .map(|a| a.status.clone())
                        })
                        .flatten(),
                })
                .collect();
            report.load = *r;
        }
        Err(LoadError::Setup { failure, .. }) => report.setup_failure = Some(failure),
        Err(other) => return Err(other.into()),
    }
    Ok(report)
}

/// The report as text (what `--verify-only` prints).
pub fn render_verify(report: &VerifyReport, full_log: bool) -> String {
    let mut out = String::new();
    let loaded = report
        .programs
        .iter()
        .filter(|p| matches!(p.load, ProgramStatus::Loaded { .. }))
        .count();
    let total = report.programs.len();
    if let Some(f) = &report.setup_failure {
        out.push_str(&format!(
            "{}: FAILED before loading programs\n{}\n",
            report.gadget,
            f.render(full_log)
        ));
        return out;
    }
    out.push_str(&format!(
        "{}: {loaded} of {total} programs passed the verifier ({:.1} ms, kernel BTF {}){}\n",
        report.gadget,
        report.load.load_ms,
        report.load.kernel_btf,
        if report.ok { "" } else { ": FAILED" }
    ));
    if !report.load.perf_maps.is_empty() {
        out.push_str(&format!(
            "  perf event arrays instead of ring buffers: {}\n",
            report.load.perf_maps.join(", ")
        ));
    }
    for p in &report.programs {
        let (mark, insns) = match &p.load {
            ProgramStatus::Loaded { verified_insns, .. } => (
                "ok    ",
                verified_insns.map_or(String::new(), |n| format!(" ({n} insns verified)")),
            ),
            ProgramStatus::Failed { .. } => ("FAILED", String::new()),
        };
        out.push_str(&format!("  {mark} {} [{}]{insns}", p.name, p.section));
        match &p.attach {
            Some(AttachStatus::Attached { target }) => {
                out.push_str(&format!(": attached to {target}, detached\n"))
            }
            Some(AttachStatus::Exists { target }) => {
                out.push_str(&format!(": attach point exists: {target}\n"))
            }
            Some(AttachStatus::NotAttached { reason }) => {
                out.push_str(&format!(": not attached ({reason})\n"))
            }
            Some(AttachStatus::Failed { failure }) => {
                out.push_str(": attach FAILED\n");
                out.push_str(&indent(&failure.render(full_log)));
            }
            None => out.push('\n'),
        }
        if let ProgramStatus::Failed { failure } = &p.load {
            out.push_str(&indent(&failure.render(full_log)));
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}\n")).collect()
}

/// Output format of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON lines.
    Json,
    /// Aligned columns.
    Columns,
}

/// Loads, attaches, prints records to `out` until a stop condition, and detaches. `status`
/// receives one line when the gadget is attached and reading (before the first record).
pub fn run_gadget(
    gadget: &Gadget,
    load_opts: &LoadOptions,
    run_opts: &RunOptions,
    format: Format,
    out: &mut dyn Write,
    stop: &AtomicBool,
    status: &mut dyn FnMut(&str),
) -> Result<RunSummary, ProveError> {
    let decoders = Decoder::for_object(&gadget.info, gadget.metadata.as_ref(), Clock::now())?;
    // The WASM module runs before anything is loaded: unsupported imports or a failing
    // gadgetInit stop the run with nothing in the kernel.
    // Every call into it stops at the first SIGINT/SIGTERM or at the --timeout.
    let all_params = &load_opts.params;
    let interrupt = Interrupt {
        stop: Some(stop),
        deadline: run_opts.timeout.map(|t| std::time::Instant::now() + t),
    };
    let (load_opts, module) = match &gadget.wasm {
        None => (load_opts.clone(), None),
        Some(bytes) => {
            let (opts, params) = split_wasm_params(gadget, load_opts);
            let names: Vec<String> = decoders.iter().map(|d| d.name.clone()).collect();
            let log = Box::new(|l: &str| log::info!("{l}"));
            let mut m = WasmModule::new(bytes, &names, params, log, interrupt)?;
            for call in ["gadgetInit", "gadgetPreStart", "gadgetStart"] {
                m.lifecycle(call)?;
            }
            (opts, Some(std::cell::RefCell::new(m)))
        }
    };
    let load_opts = &load_opts;
    let mut loaded = load::load(gadget, load_opts)?;
    let multi = decoders.len() > 1;
    let hook = || -> Option<RecordHook<'_>> {
        let m = module.as_ref()?;
        Some(Box::new(move |ds: &str, obj: &[u8]| {
            let mut m = m.borrow_mut();
            match m.on_event(ds, obj) {
                Verdict::Keep(added) => Some(added),
                Verdict::Drop => {
                    if m.has_fault() {
                        // A callback was interrupted or looped: end the run (the error is
                        // reported below).
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    None
                }
            }
        }))
    };
    let mut sink: Box<dyn Sink + '_> = match (format, hook()) {
        (Format::Json, Some(h)) => Box::new(JsonLines::new(&mut *out, multi).with_hook(h)),
        (Format::Json, None) => Box::new(JsonLines::new(&mut *out, multi)),
        (Format::Columns, Some(h)) => {
            let added = module.as_ref().map(|m| {
                let m = m.borrow();
                decoders
                    .iter()
                    .map(|d| (d.name.clone(), m.added_fields(&d.name)))
                    .collect()
            });
            Box::new(Columns::new(&mut *out, multi).with_hook(h, added.unwrap_or_default()))
        }
        (Format::Columns, None) => Box::new(Columns::new(&mut *out, multi)),
    };
    let mut ready = |reports: &[AttachReport]| {
        status(&ready_line(
            gadget,
            &decoders,
            reports,
            &load_opts.params,
            all_params,
        ));
    };
    let result = session::run(
        gadget,
        &mut loaded,
        &decoders,
        sink.as_mut(),
        run_opts,
        stop,
        &mut ready,
    );
    drop(sink);
    loaded.unload();
    let summary = result?;
    if let Some(m) = module {
        stop_wasm(m.into_inner())?;
    }
    Ok(summary)
}

/// The line `run_gadget` reports once the gadget is attached: what attached, the data sources,
/// what did not attach and why, and the parameters (`given` minus `ebpf_params` went to the
/// WASM module).
fn ready_line(
    gadget: &Gadget,
    decoders: &[Decoder],
    reports: &[AttachReport],
    ebpf_params: &[(String, String)],
    given: &[(String, String)],
) -> String {
    let attached = reports
        .iter()
        .filter(|r| matches!(r.status, AttachStatus::Attached { .. }))
        .count();
    let names: Vec<&str> = decoders.iter().map(|d| d.name.as_str()).collect();
    let mut line = format!(
        "Running {}: {attached} of {} programs attached; data sources: {}",
        gadget.origin,
        reports.len(),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    );
    for r in reports {
        if let AttachStatus::NotAttached { reason } = &r.status {
            line.push_str(&format!(
                "\n  {} [{}] not attached: {reason}",
                r.name, r.section
            ));
        }
    }
    line.push_str(&params_note("params", ebpf_params));
    // The --params the WASM module took.
    let wasm_params: Vec<(String, String)> = given
        .iter()
        .filter(|p| !ebpf_params.contains(p))
        .cloned()
        .collect();
    line.push_str(&params_note("wasm params", &wasm_params));
    line
}

/// Ends the WASM module after the run: a fault of one of its callbacks, else its stop calls.
fn stop_wasm(mut m: WasmModule) -> Result<(), ProveError> {
    if let Some(fault) = m.take_fault() {
        return Err(fault.into());
    }
    // Stopping gets a second of its own, even after a signal or the timeout.
    m.set_interrupt(Interrupt {
        stop: None,
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(1)),
    });
    for call in ["gadgetStop", "gadgetPostStop"] {
        m.lifecycle(call)?;
    }
    Ok(())
}

/// Splits `--param`s: those naming a `params.wasm` entry (by key or name) go to the module,
/// with the defaults of the others; the rest stay for the eBPF program.
fn split_wasm_params(
    gadget: &Gadget,
    opts: &LoadOptions,
) -> (LoadOptions, std::collections::HashMap<String, String>) {
    let wasm_params = gadget
        .metadata
        .as_ref()
        .map(|m| m.wasm_params.clone())
        .unwrap_or_default();
    let key = |p: &crate::metadata::ParamMeta| {
        if p.key.is_empty() {
            p.var.clone()
        } else {
            p.key.clone()
        }
    };
    let mut values: std::collections::HashMap<String, String> = wasm_params
        .iter()
        .filter_map(|p| p.default.clone().map(|d| (key(p), d)))
        .collect();
    let mut rest = opts.clone();
    rest.params.clear();
    for (k, v) in &opts.params {
        match wasm_params.iter().find(|p| p.key == *k || p.var == *k) {
            Some(p) => {
                values.insert(key(p), v.clone());
            }
            None => rest.params.push((k.clone(), v.clone())),
        }
    }
    (rest, values)
}

fn params_note(label: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("\n  {label}: {}", p.join(" "))
}

/// The run summary for stderr: records per data source, lost records, why it stopped.
pub fn render_summary(s: &RunSummary) -> String {
    let events: Vec<String> = s.events.iter().map(|(n, c)| format!("{n}: {c}")).collect();
    let mut out = format!(
        "Stopped ({}): {} records ({})",
        serde_json::to_value(s.stop)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        s.events.iter().map(|(_, c)| c).sum::<u64>(),
        events.join(", ")
    );
    if !s.dropped.is_empty() {
        let dropped: Vec<String> = s.dropped.iter().map(|(n, c)| format!("{n}: {c}")).collect();
        out.push_str(&format!(
            "; dropped by the WASM module: {}",
            dropped.join(", ")
        ));
    }
    for (n, lost) in &s.lost {
        if *lost > 0 {
            out.push_str(&format!(
                "\nwarning: data source `{n}` lost {lost} records (buffer full)"
            ));
        }
    }
    out
}

/// Parses `500ms`, `5s`, `2m`, `1h` or a plain number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration `{text}` (examples: 500ms, 5s, 2m)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("invalid duration `{text}`"));
    }
    Ok(std::time::Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn targets() {
        assert!(matches!(
            Target::from_arg("trace_exec", None, None),
            Target::Image { .. }
        ));
        assert!(matches!(
            Target::from_arg("/bin/true", None, None),
            Target::Object { .. }
        ));
        assert!(matches!(
            Target::from_arg("/etc/hostname", None, None),
            Target::Image { .. }
        ));
    }
}
