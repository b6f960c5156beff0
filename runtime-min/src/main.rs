//! `runtime-min`: the minimal gadget runtime as a small binary.
//!
//! - `runtime-min run IMAGE|OBJECT ...`: the same as `ig-image run` (see docs/proving.md).
//! - `runtime-min bench-decode OBJECT`: decode throughput on a synthetic record stream.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use runtime_min::decode::{Clock, Decoder};
use runtime_min::load::LoadOptions;
use runtime_min::params;
use runtime_min::prove::{self, Format, Target};
use runtime_min::session::{self, RunOptions};
use runtime_min::source::Gadget;

/// Load gadget images and objects into the real kernel, attach them and print their records.
#[derive(Debug, Parser)]
#[command(name = "runtime-min", version, max_term_width = 100)]
struct Cli {
    /// More output: whole verifier logs (-v)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load, attach and print records (like `ig-image run`)
    Run(RunArgs),
    /// Measure decode throughput on synthetic records of an object's data source
    BenchDecode(BenchArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// An image in the store, or an eBPF object file
    target: String,
    /// Image store (default: /var/lib/ig/oci-store as root)
    #[arg(long, env = "IG_IMAGE_STORE", value_name = "DIR")]
    store: Option<PathBuf>,
    /// gadget.yaml for an object file
    #[arg(long, value_name = "FILE")]
    metadata: Option<PathBuf>,
    /// Set a parameter (repeatable)
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Stop after this long (500ms, 5s, 2m)
    #[arg(long, value_parser = prove::parse_duration)]
    timeout: Option<Duration>,
    /// Stop after this many records
    #[arg(long)]
    max_events: Option<u64>,
    /// Map iterator dump interval
    #[arg(long, value_parser = prove::parse_duration, default_value = "1s")]
    interval: Duration,
    /// json or columns (default: columns on a terminal, else json)
    #[arg(short = 'o', long)]
    output: Option<String>,
    /// Load through the verifier, check attach points, report per program, unload
    #[arg(long)]
    verify_only: bool,
    /// With --verify-only: really attach and detach every program
    #[arg(long, requires = "verify_only")]
    attach: bool,
    /// Kernel BTF for CO-RE (default: /sys/kernel/btf/vmlinux, else the btfgen layer's)
    #[arg(long, value_name = "FILE")]
    kernel_btf: Option<PathBuf>,
    /// The image manifest to use (default: this machine's)
    #[arg(long, value_name = "ARCH")]
    platform: Option<String>,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// The eBPF object
    object: PathBuf,
    /// The data source (default: the first)
    #[arg(long)]
    datasource: Option<String>,
    /// gadget.yaml
    #[arg(long, value_name = "FILE")]
    metadata: Option<PathBuf>,
    /// Records to decode
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let full_log = cli.verbose > 0;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let result = match cli.command {
        Command::Run(a) => run(a, full_log),
        Command::BenchDecode(a) => bench(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

fn run(a: RunArgs, full_log: bool) -> anyhow::Result<ExitCode> {
    let target = Target::from_arg(&a.target, a.metadata.clone(), a.platform.clone());
    let store_path = a
        .store
        .clone()
        .unwrap_or_else(gadget_store::default_store_path);
    let gadget = target.open(|| {
        gadget_store::Store::open(&store_path).map_err(|source| prove::ProveError::Store {
            path: store_path.clone(),
            source,
        })
    })?;
    let params = a
        .params
        .iter()
        .map(|p| params::split_arg(p))
        .collect::<Result<Vec<_>, _>>()?;
    let load = LoadOptions {
        kernel_btf: a.kernel_btf.clone(),
        params,
        full_log,
    };
    let json = match a.output.as_deref() {
        Some("json") => true,
        Some("columns") => false,
        Some(other) => anyhow::bail!("unknown output format `{other}` (json, columns)"),
        None => !std::io::stdout().is_terminal(),
    };
    if a.verify_only {
        let report = prove::verify(&gadget, &load, a.attach)?;
        if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", prove::render_verify(&report, full_log));
        }
        return Ok(if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let stop = session::stop_on_signals();
    let opts = RunOptions {
        timeout: a.timeout,
        max_events: a.max_events,
        interval: a.interval,
        ..RunOptions::default()
    };
    let mut stdout = std::io::stdout().lock();
    let format = if json { Format::Json } else { Format::Columns };
    let summary = prove::run_gadget(
        &gadget,
        &load,
        &opts,
        format,
        &mut stdout,
        stop,
        &mut |line| eprintln!("{line}"),
    )?;
    stdout.flush()?;
    eprintln!("{}", prove::render_summary(&summary));
    Ok(ExitCode::SUCCESS)
}

/// Synthetic records: deterministic pseudo-random bytes, with every `char` array holding a
/// short printable string (as real records do) instead of noise.
fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let gadget = Gadget::from_object_file(&a.object, a.metadata.as_deref())?;
    let decoders = Decoder::for_object(&gadget.info, gadget.metadata.as_ref(), Clock::now())?;
    let d = match &a.datasource {
        Some(n) => decoders
            .iter()
            .find(|d| &d.name == n)
            .with_context(|| format!("no data source `{n}`"))?,
        None => decoders.first().context("the object has no data source")?,
    };
    let fields = gadget
        .info
        .data_source_fields(&d.name)
        .context("fields")??;
    const DISTINCT: usize = 1024;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut records = vec![0u8; d.record_size * DISTINCT];
    for b in records.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    for r in records.chunks_exact_mut(d.record_size) {
        for f in fields
            .iter()
            .filter(|f| matches!(f.kind, gadget_object::FieldKind::String { .. }))
        {
            let s = &mut r[f.offset as usize..(f.offset + f.size) as usize];
            let text = b"/usr/bin/some-command-name";
            let n = (s.len() - 1).min(text.len());
            s[..n].copy_from_slice(&text[..n]);
            s[n] = 0;
        }
    }
    let mut out = Vec::with_capacity(1 << 20);
    let mut bytes = 0u64;
    let started = Instant::now();
    for i in 0..a.records {
        let r = &records[(i as usize % DISTINCT) * d.record_size..][..d.record_size];
        d.write_json(r, None, &mut out);
        out.push(b'\n');
        if out.len() > (1 << 20) - 8192 {
            bytes += out.len() as u64;
            std::hint::black_box(&out);
            out.clear();
        }
    }
    bytes += out.len() as u64;
    let secs = started.elapsed().as_secs_f64();
    let rate = a.records as f64 / secs;
    println!(
        "{}",
        serde_json::json!({
            "datasource": d.name,
            "record_size": d.record_size,
            "records": a.records,
            "seconds": secs,
            "records_per_second": rate.round(),
            "json_bytes_per_record": (bytes as f64 / a.records as f64).round(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
