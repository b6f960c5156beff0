//! The argument groups and printers several commands share: registry options
//! ([`RegistryArgs`]), transfer progress ([`Progress`]) and summaries ([`print_report`]) for
//! `push`, `pull`, `login`, `verify --remote` and `artifacthub`; the image policy flags
//! ([`PolicyArgs`], with [`KeylessArgs`]) and its verdict lines for `run` and `pull`.

use gadget_store::hint::Hinted;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::Args;
use gadget_facts::platform::{self, Platform};
use gadget_store::{Digest, Reference, Store};
use ig_image_registry::{
    AuthFile, AuthFileChoice, BlobOutcome, Client, ClientConfig, Credentials, TransferReport,
    TransferReporter,
};
use ig_image_sign::keyless;
use ig_image_sign::keys;
use ig_image_sign::policy::{self, Accepted, Policy};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::Descriptor;

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

/// Options of `push` and `pull`: the summary's format, how many blobs move at once, the registry.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Output format of the summary: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    pub output: Format,
    /// Blobs transferred to or from the registry at once
    #[arg(short = 'j', long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl TransferArgs {
    /// The registry client and the credentials for `reference`'s registry.
    pub fn connect(&self, reference: &Reference) -> anyhow::Result<(Client, Credentials)> {
        let client = self.registry.client_with_jobs(self.jobs)?;
        let credentials = self.registry.credentials(reference.registry())?;
        Ok((client, credentials))
    }
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

/// The keyless flags of `verify`, `verify-blob`, `run` and `pull` (cosign's names).
#[derive(Debug, Clone, Default, Args)]
pub struct KeylessArgs {
    /// Keyless: the signer identity the Fulcio certificate must name (an email or a workflow URI)
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Keyless: a regular expression the whole certificate identity must match
    #[arg(long, value_name = "REGEX")]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless: the OIDC issuer of the certificate (GitHub Actions: https://token.actions.githubusercontent.com)
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// Keyless: a regular expression the whole OIDC issuer must match
    #[arg(long, value_name = "REGEX")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Keyless: a Sigstore trusted_root.json to verify against (default: the public-good production root built in); never fetched
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
}

impl KeylessArgs {
    /// Whether any identity flag was given.
    pub fn is_set(&self) -> bool {
        self.certificate_identity.is_some()
            || self.certificate_identity_regexp.is_some()
            || self.certificate_oidc_issuer.is_some()
            || self.certificate_oidc_issuer_regexp.is_some()
    }

    /// The identity policy and the trusted root.
    pub fn policy_and_root(
        &self,
    ) -> anyhow::Result<(keyless::IdentityPolicy, sigstore_trust_root::TrustedRoot)> {
        let policy = keyless::IdentityPolicy::new(
            self.certificate_identity.clone(),
            self.certificate_identity_regexp.clone(),
            self.certificate_oidc_issuer.clone(),
            self.certificate_oidc_issuer_regexp.clone(),
        )?;
        Ok((policy, keyless::trusted_root(self.trusted_root.as_deref())?))
    }
}

/// One line saying which signature the policy verified (`run` and `pull` print it when
/// --public-keys verified one).
pub fn verification_line(accepted: &Accepted, colour: bool) -> Option<String> {
    accepted.verified.as_ref().map(|v| {
        format!(
            "{} {}@{}: {} signature by `{}`",
            output::paint("Verified", output::Paint::Good, colour),
            accepted.reference,
            accepted.digest,
            v.format,
            v.key
        )
    })
}

/// The same as JSON: `{"verified": bool, "signature": {...} | null}`.
pub fn verification_json(accepted: &Accepted) -> serde_json::Value {
    serde_json::json!({
        "verified": accepted.verified.is_some(),
        "signature": accepted.verified,
    })
}

/// The image policy flags of `run` and `pull` (docs/signing.md): flatten into a command's
/// args and call [`PolicyArgs::check`] before using the image.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Verify the image's signature with --public-keys (default when keys are given; `--verify-image=false` to skip)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub verify_image: Option<bool>,
    /// PEM public keys an image's signature must verify with, comma separated (`upstream` = upstream's key)
    #[arg(long, value_delimiter = ',', value_name = "FILE|upstream")]
    pub public_keys: Vec<String>,
    /// Only these images may be used: exact `repo:tag` / `repo@sha256:<digest>`, or prefixes ending in `*`
    #[arg(long, value_delimiter = ',', value_name = "REF|PREFIX*")]
    pub allowed_gadgets: Vec<String>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
}

impl PolicyArgs {
    /// The policy these flags describe.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        if self.verify_image == Some(true) && self.public_keys.is_empty() && !self.keyless.is_set()
        {
            return Err(Hinted::new(
                "--verify-image needs --public-keys",
                "pass `--public-keys cosign.pub`, or `--public-keys upstream` for official gadgets",
            )
            .into());
        }
        Ok(Policy {
            verify_image: self.verify_image.unwrap_or(true),
            public_keys: keys::load_public_keys(&self.public_keys)?,
            allowed_gadgets: self.allowed_gadgets.clone(),
        })
    }

    /// Applies the policy to `reference` in `store`; an error refuses the image.
    pub fn check(&self, store: &Store, reference: &Reference) -> anyhow::Result<Accepted> {
        let policy = self.policy()?;
        if !policy.verify_image && (!policy.public_keys.is_empty() || self.keyless.is_set()) {
            output::warning(format!(
                "not verifying the signature of `{}` (--verify-image=false)",
                reference.display()
            ));
        }
        if self.keyless.is_set() && policy.verify_image {
            let (identity, root) = self.keyless.policy_and_root()?;
            keyless::verify_image(store, reference, &identity, &root, None).map_err(|e| {
                Hinted::wrap(
                    format!(
                        "refusing `{}`: keyless signature verification failed",
                        reference.display()
                    ),
                    "check `--certificate-identity` and `--certificate-oidc-issuer`, or pass \
                     `--verify-image=false` to use it knowingly",
                    e,
                )
            })?;
        }
        Ok(policy::check(store, reference, &policy)?)
    }

    /// For `pull`: what `reference` pointed at in `store` before pulling (to restore it when the
    /// pulled image is refused).
    pub fn before_pull(&self, store: &Store, reference: &Reference) -> Option<Descriptor> {
        reference.tag().and(store.resolve(reference).ok())
    }

    /// For `pull`: applies the policy to the image just pulled. When it is refused, the tag is
    /// put back to what it was before the pull (or removed, with the content only it reached),
    /// so a refused image is never left usable in the store; then the refusal is returned.
    pub fn check_pulled(
        &self,
        store: &Store,
        reference: &Reference,
        before: Option<Descriptor>,
    ) -> anyhow::Result<Accepted> {
        let refused = match self.check(store, reference) {
            Ok(accepted) => return Ok(accepted),
            Err(e) => e,
        };
        if reference.tag().is_some() {
            let undo = match before {
                Some(previous) => store.tag(reference, previous).map(drop),
                None => store.remove(reference).map(drop),
            };
            if let Err(e) = undo {
                output::warning(format!(
                    "the refused image is still tagged `{}`: {e}",
                    reference.display()
                ));
            }
        }
        Err(refused.context(format!(
            "pulled `{}` but refused it: its tag is back to what it was before the pull",
            reference.display()
        )))
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

/// A parsed `--platform` list of `build` and `pull` (a newtype so clap treats it as one value).
#[derive(Debug, Clone)]
pub struct PlatformList(pub Vec<Platform>);

/// Parses a comma-separated `--platform` list; an empty list is an error.
pub fn parse_platforms(s: &str) -> Result<PlatformList, String> {
    let list = platform::parse_list(s).map_err(|e| e.to_string())?;
    if list.is_empty() {
        return Err("the platform list is empty".into());
    }
    Ok(PlatformList(list))
}
