//! Running a loaded gadget: attach, take snapshots, stream tracer records and dump map
//! iterators until a timeout, an event limit, Ctrl-C or the end of a snapshot-only gadget.
//!
//! Detaching is dropping: the links live in the [`Loaded`] the caller owns, so when the
//! caller drops its [`Loaded`] (also on error and after Ctrl-C) every link, program and map is
//! released.

use std::io;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gadget_object::DataSourceKind;
use serde::Serialize;

use crate::attach::{self, AttachReport, AttachStatus};
use crate::decode::{DecodeError, Decoder};
use crate::load::Loaded;
use crate::output::Sink;
use crate::readers::map_iter::MapDumper;
use crate::readers::{self, ReaderError, TracerReader};
use crate::source::Gadget;

/// When to stop.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop after this long.
    pub timeout: Option<Duration>,
    /// Stop after this many records (all data sources together).
    pub max_events: Option<u64>,
    /// Map iterator dump interval.
    pub interval: Duration,
    /// Most entries read from one map per dump.
    pub map_limit: usize,
    /// Show whole verifier logs in attach errors.
    pub full_log: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: None,
            max_events: None,
            interval: Duration::from_secs(1),
            map_limit: 100_000,
            full_log: false,
        }
    }
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// `--timeout` passed.
    Timeout,
    /// `--max-events` reached.
    MaxEvents,
    /// SIGINT or SIGTERM.
    Interrupted,
    /// A gadget with only iterators produced its snapshot.
    SnapshotDone,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Records printed per data source.
    pub events: Vec<(String, u64)>,
    /// Records read but dropped before printing (by the WASM module), per data source that had
    /// any.
    pub dropped: Vec<(String, u64)>,
    /// Lost records per tracer (`<map>_lost_samples` plus perf buffer losses).
    pub lost: Vec<(String, u64)>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Attach outcome per program.
    pub attach: Vec<AttachReport>,
}

/// A run that could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Some program could not be attached.
    #[error("{}", render_attach_failures(.reports, *.full_log))]
    Attach {
        /// Every program's outcome.
        reports: Vec<AttachReport>,
        /// Render whole logs.
        full_log: bool,
    },
    /// A data source could not be read.
    #[error(transparent)]
    Reader(#[from] ReaderError),
    /// A data source could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Writing records failed (a closed pipe, a full disk).
    #[error("cannot write records")]
    Output(#[source] io::Error),
}

impl gadget_store::hint::Hint for RunError {
    fn hints(&self) -> Vec<String> {
        let RunError::Attach { reports, .. } = self else {
            return Vec::new();
        };
        reports
            .iter()
            .filter_map(|r| match &r.status {
                AttachStatus::Failed { failure } => failure.class.hint().map(str::to_owned),
                _ => None,
            })
            .collect()
    }
}

fn render_attach_failures(reports: &[AttachReport], full: bool) -> String {
    let failed: Vec<&AttachReport> = reports
        .iter()
        .filter(|r| matches!(r.status, AttachStatus::Failed { .. }))
        .collect();
    let mut out = format!(
        "{} of {} programs failed to attach",
        failed.len(),
        reports.len()
    );
    for r in failed {
        if let AttachStatus::Failed { failure } = &r.status {
            out.push_str(&format!(
                "\nprogram `{}` (section `{}`): {}",
                r.name,
                r.section,
                failure.render_body(full)
            ));
        }
    }
    out
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // A second Ctrl-C while stopping: leave now. Nothing is pinned, so the kernel still frees
        // every program, map and link when the process ends.
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Makes SIGINT and SIGTERM set the returned flag (instead of killing the process), so the run
/// loop can stop and everything is detached before exiting; the loop checks the flag at least
/// every 200 ms. A second signal exits at once (status 130).
pub fn stop_on_signals() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic (async-signal-safe); `sigaction` gets a
    // zeroed, then filled, struct that lives for the call. No SA_RESTART, so a blocking poll()
    // returns EINTR and the loop sees the flag at once.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    &STOP
}

/// Per data source (by decoder index), the records printed and those a sink's hook dropped (a
/// WASM module's filter), and the printed total `--max-events` counts against.
struct Tally {
    printed: Vec<u64>,
    dropped: Vec<u64>,
    total: u64,
}

impl Tally {
    fn new(data_sources: usize) -> Tally {
        Tally {
            printed: vec![0; data_sources],
            dropped: vec![0; data_sources],
            total: 0,
        }
    }

    /// Hands one record of data source `i` to `sink` and counts what became of it.
    fn record(
        &mut self,
        sink: &mut dyn Sink,
        d: &Decoder,
        i: usize,
        rec: &[u8],
        interval: Option<u64>,
    ) -> io::Result<()> {
        if sink.record(d, rec, interval)? {
            self.printed[i] += 1;
            self.total += 1;
        } else {
            self.dropped[i] += 1;
        }
        Ok(())
    }
}

/// Reads every record the tracers hold into `sink`, until `limit` records are printed in all.
fn drain_tracers(
    tracers: &mut [(usize, TracerReader)],
    decoders: &[Decoder],
    sink: &mut dyn Sink,
    tally: &mut Tally,
    limit: u64,
) -> Result<(), RunError> {
    let mut write_error: Option<io::Error> = None;
    for (i, t) in tracers.iter_mut() {
        let d = &decoders[*i];
        t.drain(&mut |rec| {
            if tally.total >= limit {
                return ControlFlow::Break(());
            }
            match tally.record(sink, d, *i, rec, None) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    write_error = Some(e);
                    ControlFlow::Break(())
                }
            }
        });
        if let Some(e) = write_error.take() {
            return Err(RunError::Output(e));
        }
    }
    Ok(())
}

/// Attaches every program, then reads and prints until a stop condition. `on_ready` runs once
/// everything is attached and before the first record is read.
pub fn run(
    gadget: &Gadget,
    loaded: &mut Loaded,
    decoders: &[Decoder],
    sink: &mut dyn Sink,
    opts: &RunOptions,
    stop: &AtomicBool,
    on_ready: &mut dyn FnMut(&[AttachReport]),
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let deadline = opts.timeout.map(|t| started + t);
    let reports = attach::attach_all(loaded, gadget);
    if reports
        .iter()
        .any(|r| matches!(r.status, AttachStatus::Failed { .. }))
    {
        return Err(RunError::Attach {
            reports,
            full_log: opts.full_log,
        });
    }
    let mut readers = Readers::open(loaded, decoders)?;
    on_ready(&reports);

    let mut tally = Tally::new(decoders.len());
    let limit = opts.max_events.unwrap_or(u64::MAX);
    print_snapshots(loaded, decoders, sink, &mut tally, limit)?;
    let stop_reason = if readers.tracers.is_empty() && readers.dumpers.is_empty() {
        StopReason::SnapshotDone
    } else if tally.total >= limit {
        StopReason::MaxEvents
    } else {
        follow(
            &mut readers,
            decoders,
            sink,
            &mut tally,
            opts,
            stop,
            deadline,
        )?
    };
    Ok(summarize(
        decoders,
        &reports,
        stop_reason,
        &tally,
        &readers.tracers,
        loaded,
    ))
}

/// The readers of a run's streaming data sources (tracers and map iterators), each with the
/// index of its decoder.
struct Readers {
    tracers: Vec<(usize, TracerReader)>,
    dumpers: Vec<(usize, MapDumper)>,
}

impl Readers {
    /// Opens a reader for each tracer and map iterator of `decoders`.
    fn open(loaded: &Loaded, decoders: &[Decoder]) -> Result<Readers, RunError> {
        let mut tracers: Vec<(usize, TracerReader)> = Vec::new();
        let mut dumpers: Vec<(usize, MapDumper)> = Vec::new();
        for (i, d) in decoders.iter().enumerate() {
            match d.kind {
                DataSourceKind::Tracer => {
                    let map = d.map.as_deref().unwrap_or_default();
                    tracers.push((i, TracerReader::open(loaded, map)?));
                }
                DataSourceKind::MapIter => {
                    let map = d.map.as_deref().unwrap_or_default();
                    let value_size = d.record_size - d.key_size;
                    dumpers.push((i, MapDumper::new(loaded, map, d.key_size, value_size)?));
                }
                DataSourceKind::Iter => {}
            }
        }
        Ok(Readers { tracers, dumpers })
    }
}

/// Runs each iterator program once and prints its records (snapshots come first).
fn print_snapshots(
    loaded: &Loaded,
    decoders: &[Decoder],
    sink: &mut dyn Sink,
    tally: &mut Tally,
    limit: u64,
) -> Result<(), RunError> {
    for (i, d) in decoders
        .iter()
        .enumerate()
        .filter(|(_, d)| d.kind == DataSourceKind::Iter)
    {
        for prog in &d.programs {
            let bytes = readers::iter::snapshot(loaded, prog)?;
            if d.record_size == 0 {
                continue;
            }
            for rec in bytes.chunks_exact(d.record_size) {
                if tally.total >= limit {
                    break;
                }
                tally
                    .record(sink, d, i, rec, None)
                    .map_err(RunError::Output)?;
            }
        }
    }
    sink.flush().map_err(RunError::Output)
}

/// Streams tracer records and dumps the map iterators every interval until Ctrl-C, the
/// deadline or the event limit; then (unless the limit ended it) prints whatever arrived until
/// then and a last dump.
fn follow(
    readers: &mut Readers,
    decoders: &[Decoder],
    sink: &mut dyn Sink,
    tally: &mut Tally,
    opts: &RunOptions,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> Result<StopReason, RunError> {
    let limit = opts.max_events.unwrap_or(u64::MAX);
    let Readers { tracers, dumpers } = readers;
    let mut pollfds: Vec<libc::pollfd> = tracers
        .iter()
        .flat_map(|(_, t)| t.fds())
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut next_dump = Instant::now() + opts.interval;
    let mut interval_no = 0u64;
    let stop_reason = loop {
        if stop.load(Ordering::SeqCst) {
            break StopReason::Interrupted;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break StopReason::Timeout;
        }
        let mut wait = Duration::from_millis(200);
        if !dumpers.is_empty() {
            wait = wait.min(next_dump.saturating_duration_since(now));
        }
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        wait_for_records(&mut pollfds, wait);
        // Drain every tracer, readable or not (cheap, and perf buffers are checked per CPU).
        drain_tracers(tracers, decoders, sink, tally, limit)?;
        sink.flush().map_err(RunError::Output)?;
        if tally.total >= limit {
            break StopReason::MaxEvents;
        }
        if !dumpers.is_empty() && Instant::now() >= next_dump {
            interval_no += 1;
            next_dump += opts.interval;
            if dump_maps(dumpers, decoders, interval_no, sink, tally, opts)? {
                break StopReason::MaxEvents;
            }
        }
    };
    if stop_reason != StopReason::MaxEvents {
        // Whatever arrived until now, and a last dump of the map iterators.
        drain_tracers(tracers, decoders, sink, tally, limit)?;
        if !dumpers.is_empty() && tally.total < limit {
            interval_no += 1;
            dump_maps(dumpers, decoders, interval_no, sink, tally, opts)?;
        }
        sink.flush().map_err(RunError::Output)?;
    }
    Ok(stop_reason)
}

/// Waits up to `wait` for a tracer's descriptor to become readable (without tracers: sleeps,
/// at most 50 ms).
fn wait_for_records(pollfds: &mut [libc::pollfd], wait: Duration) {
    if !pollfds.is_empty() {
        // SAFETY: `pollfds` is a valid array of `len` pollfd structs for the call.
        unsafe {
            libc::poll(
                pollfds.as_mut_ptr(),
                pollfds.len() as libc::nfds_t,
                wait.as_millis() as libc::c_int,
            )
        };
    } else {
        std::thread::sleep(wait.min(Duration::from_millis(50)));
    }
}

/// Dumps every map iterator as interval `interval_no`; true when the event limit is reached.
fn dump_maps(
    dumpers: &[(usize, MapDumper)],
    decoders: &[Decoder],
    interval_no: u64,
    sink: &mut dyn Sink,
    tally: &mut Tally,
    opts: &RunOptions,
) -> Result<bool, RunError> {
    let limit = opts.max_events.unwrap_or(u64::MAX);
    for (i, dumper) in dumpers {
        let d = &decoders[*i];
        sink.dump_start(d, interval_no).map_err(RunError::Output)?;
        for rec in dumper.dump(opts.map_limit)? {
            if tally.total >= limit {
                return Ok(true);
            }
            tally
                .record(sink, d, *i, &rec, Some(interval_no))
                .map_err(RunError::Output)?;
        }
    }
    sink.flush().map_err(RunError::Output)?;
    Ok(tally.total >= limit)
}

/// What the run printed, dropped and lost per data source, and why it stopped.
fn summarize(
    decoders: &[Decoder],
    reports: &[AttachReport],
    stop: StopReason,
    tally: &Tally,
    tracers: &[(usize, TracerReader)],
    loaded: &Loaded,
) -> RunSummary {
    RunSummary {
        events: decoders
            .iter()
            .zip(&tally.printed)
            .map(|(d, c)| (d.name.clone(), *c))
            .collect(),
        dropped: decoders
            .iter()
            .zip(&tally.dropped)
            .filter(|(_, c)| **c > 0)
            .map(|(d, c)| (d.name.clone(), *c))
            .collect(),
        lost: tracers
            .iter()
            .map(|(i, t)| {
                let map = decoders[*i].map.as_deref().unwrap_or_default();
                (
                    decoders[*i].name.clone(),
                    t.lost() + readers::lost_samples(loaded, map).unwrap_or(0),
                )
            })
            .collect(),
        stop,
        attach: reports.to_vec(),
    }
}
