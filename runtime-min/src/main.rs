//! `runtime-min`: the minimal gadget runtime's own small binary, for measuring it.
//!
//! - `runtime-min bench-decode OBJECT`: decode throughput on a synthetic record stream.
//!
//! Gadgets run with `ig-image run`, which enforces the image policy (signatures,
//! `--allowed-gadgets`); runtime-min has no `run` of its own (docs/design.md says why).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use runtime_min::decode::{Clock, Decoder};
use runtime_min::source::Gadget;

/// The minimal gadget runtime's measurements (gadgets run with `ig-image run`).
#[derive(Debug, Parser)]
#[command(name = "runtime-min", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure decode throughput on synthetic records of an object's data source
    BenchDecode(BenchArgs),
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let result = match cli.command {
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
            eprintln!(
                "{}",
                gadget_store::hint::render_error(e.as_ref(), runtime_min::hints_of, "error")
            );
            ExitCode::from(2)
        }
    }
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
