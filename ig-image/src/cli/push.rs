//! `ig-image push`, plus what the registry commands share: `--authfile` and
//! `--insecure-registries`, and the progress reporter (indicatif bars on a terminal, one line
//! per finished image otherwise).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use gadget_store::{Digest, Reference};
use ig_image::registry::{
    self, AuthFile, AuthFileChoice, BlobOutcome, Client, ClientConfig, Credentials, TransferReport,
    TransferReporter,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Options of the commands that talk to registries.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Auth file in docker's config.json format [default: $REGISTRY_AUTH_FILE, else
    /// /var/lib/ig/config.json when it exists, else ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Registries reached over plain HTTP, comma-separated `host:port` as written in image names
    /// (every other registry, loopback included, is reached over HTTPS)
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    /// The registry client these options describe (default concurrency).
    pub fn client(&self) -> anyhow::Result<Client> {
        self.client_with_jobs(ClientConfig::default().concurrency)
    }

    /// The registry client these options describe, moving `jobs` blobs at once.
    pub fn client_with_jobs(&self, jobs: usize) -> anyhow::Result<Client> {
        let insecure_registries = self
            .insecure_registries
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();
        Ok(Client::new(ClientConfig {
            insecure_registries,
            concurrency: jobs.max(1),
            ..Default::default()
        })?)
    }

    /// Credentials for `registry` from the auth file.
    pub fn credentials(&self, registry: &str) -> anyhow::Result<Credentials> {
        let choice = AuthFileChoice::resolve(self.authfile.as_deref());
        log::debug!("auth file: {}", choice.path.display());
        let file = AuthFile::load(&choice.path)?;
        let credentials = file.credentials(registry)?;
        log::debug!("credentials for {registry}: {}", credentials.source);
        Ok(credentials)
    }
}

/// Push an image, with its signatures and referrers, to its registry.
///
/// The whole graph is copied: the index, every platform manifest, configs and layers, the
/// legacy cosign signature tag (`sha256-<hex>.sig`) and OCI 1.1 referrers stored with the image.
/// Blobs the registry already has are skipped (HEAD), blobs held by another repository of the
/// same registry are mounted, the others are uploaded several at once. The tag is written last:
/// a failed push never leaves it pointing at missing content. Transient failures (connection
/// resets, 5xx, 429) are retried with backoff.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image push localhost:5000/gadgets/trace_open:v1 --insecure-registries localhost:5000\n  \
ig-image push ghcr.io/me/gadgets/trace_open:v1 --authfile ci-auth.json -o json\n\n\
Credentials come from the auth file (see `ig-image login`). Docs: docs/registries.md\n\n\
JSON (-o json): {\"reference\", \"digest\", \"platforms\", \"bytes_sent\", \"blobs_uploaded\",\n\
\"blobs_mounted\", \"blobs_skipped\", \"manifests\", \"signatures\", \"referrers\", \"retries\", \"millis\", ...}")]
pub struct PushArgs {
    /// The image (its name says which registry and repository it goes to)
    image: String,
    /// Output format of the summary: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
    /// Blobs uploaded at once
    #[arg(short = 'j', long, value_name = "N", default_value_t = 8)]
    jobs: usize,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn exec(global: &GlobalArgs, args: PushArgs) -> anyhow::Result<ExitStatus> {
    let reference = Reference::parse(&args.image)?;
    let store = global.open_store()?;
    let client = args.registry.client_with_jobs(args.jobs)?;
    let credentials = args.registry.credentials(reference.registry())?;
    let progress = Progress::new("Pushing");
    let report = registry::push(&store, &client, &reference, &credentials, &progress);
    progress.finish();
    let report = report.with_context(|| {
        format!(
            "failed to push `{}` to {}",
            reference.display(),
            reference.registry()
        )
    })?;
    print_report("pushed", &report, args.output)?;
    Ok(ExitStatus::Success)
}

/// Prints the summary of a finished transfer.
pub fn print_report(verb: &str, report: &TransferReport, format: Format) -> anyhow::Result<()> {
    if format != Format::Columns {
        return output::print_data(report, format);
    }
    let mut parts = Vec::new();
    if verb == "pushed" {
        parts.push(format!("{} blobs uploaded", report.blobs_uploaded));
        if report.blobs_mounted > 0 {
            parts.push(format!("{} mounted", report.blobs_mounted));
        }
        parts.push(format!("{} skipped", report.blobs_skipped));
        parts.push(format!("{} sent", human_bytes(report.bytes_sent)));
    } else {
        parts.push(format!("{} blobs downloaded", report.blobs_downloaded));
        parts.push(format!("{} already present", report.blobs_skipped));
        parts.push(format!("{} received", human_bytes(report.bytes_received)));
    }
    if report.signatures > 0 {
        parts.push(format!("{} signature tag(s)", report.signatures));
    }
    if report.referrers > 0 {
        parts.push(format!("{} referrer(s)", report.referrers));
    }
    if report.retries > 0 {
        parts.push(format!("{} retries", report.retries));
    }
    outln!(
        "Successfully {verb} {}@{} ({}, {} ms)",
        report.reference,
        report.digest,
        parts.join(", "),
        report.millis
    );
    if let Some(source) = &report.source_digest {
        outln!(
            "Stored the platforms {} only: the registry's index is {source}",
            report.platforms.join(", ")
        );
    }
    Ok(())
}

/// Sizes as the progress bars show them (indicatif's binary units, `107.40 KiB`).
fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Progress on stderr: a bar per blob and a total on a terminal; otherwise only warnings
/// (retries), the summary line being printed by the command.
pub struct Progress {
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    blobs: RefCell<HashMap<Digest, ProgressBar>>,
    verb: &'static str,
}

impl Progress {
    /// Bars when stderr is a terminal (and `RUST_LOG`/`-v` logging is not interleaving).
    pub fn new(verb: &'static str) -> Self {
        let terminal = std::io::stderr().is_terminal() && log::max_level() < log::Level::Debug;
        if !terminal {
            return Progress { bars: None };
        }
        Self::with_bars(verb, ProgressDrawTarget::stderr())
    }

    /// Bars drawn to `target`.
    fn with_bars(verb: &'static str, target: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        total.set_prefix(verb);
        Progress {
            bars: Some(Bars {
                multi,
                total,
                blobs: RefCell::new(HashMap::new()),
                verb,
            }),
        }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            for (_, bar) in b.blobs.borrow_mut().drain() {
                bar.finish_and_clear();
            }
            b.total.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

impl TransferReporter for Progress {
    fn started(&self, reference: &str, blobs: usize, bytes: u64) {
        if let Some(b) = &self.bars {
            // Called again when signatures bring more blobs.
            b.total.inc_length(bytes);
            b.total.set_message(format!(
                "{} ({blobs} blobs)",
                gadget_store::reference::strip_display_prefix(reference)
            ));
        }
    }

    fn blob_started(&self, digest: &Digest, size: u64) {
        if let Some(b) = &self.bars {
            let mut blobs = b.blobs.borrow_mut();
            if let Some(old) = blobs.remove(digest) {
                b.total.dec(old.position());
                old.finish_and_clear();
            }
            let bar = ProgressBar::new(size)
                .with_style(
                    ProgressStyle::with_template(
                        "{prefix:>12} {msg} [{bar:20}] {bytes}/{total_bytes}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                )
                .with_prefix(b.verb)
                .with_message(digest.hex()[..12].to_owned());
            let bar = b.multi.add(bar);
            blobs.insert(digest.clone(), bar);
        }
    }

    fn blob_progress(&self, digest: &Digest, bytes: u64) {
        if let Some(b) = &self.bars {
            if let Some(bar) = b.blobs.borrow().get(digest) {
                bar.inc(bytes);
            }
            b.total.inc(bytes);
        }
    }

    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome) {
        if let Some(b) = &self.bars {
            if let Some(bar) = b.blobs.borrow_mut().remove(digest) {
                if outcome != BlobOutcome::Uploaded && outcome != BlobOutcome::Downloaded {
                    // Nothing moved: the blob leaves the total instead of filling the bar, so
                    // the bar measures only bytes that really crossed the network.
                    let unmoved = bar.length().unwrap_or(0).saturating_sub(bar.position());
                    b.total
                        .set_length(b.total.length().unwrap_or(0).saturating_sub(unmoved));
                }
                bar.finish_and_clear();
            }
        }
    }

    fn retrying(&self, what: &str, attempt: u32, of: u32, error: &str) {
        let line = format!(
            "{}: retrying: {what} (attempt {attempt} of {of} failed: {error})",
            output::paint("warning", output::Paint::Warn, output::colour_stderr())
        );
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn note(&self, message: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(format!("note: {message}"));
            }
            None => eprintln!("note: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_blobs_leave_the_total_instead_of_filling_the_bar() {
        let p = Progress::with_bars("Pushing", ProgressDrawTarget::hidden());
        let a = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let b = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
        p.started("localhost:5000/x:v1", 2, 1000 + 24);
        // A re-push: the registry has the big blob; only 24 bytes move.
        p.blob_started(&a, 1000);
        p.blob_finished(&a, BlobOutcome::Skipped);
        p.blob_started(&b, 24);
        p.blob_progress(&b, 24);
        p.blob_finished(&b, BlobOutcome::Uploaded);
        let total = &p.bars.as_ref().unwrap().total;
        assert_eq!(total.position(), 24, "only moved bytes fill the bar");
        assert_eq!(total.length(), Some(24), "skipped bytes left the total");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(2048), "2.00 KiB");
        assert_eq!(human_bytes(3 << 20), "3.00 MiB");
        assert_eq!(human_bytes(5 << 30), "5.00 GiB");
    }
}
