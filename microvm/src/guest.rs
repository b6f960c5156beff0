//! Inside the guest: `ig-image microvm-guest JOB.json` runs the job the host wrote — the same
//! `ig-image run` as on the host, against the guest's kernel — and writes `result.json` beside
//! it. It spawns `ig-image run` (argument vectors) rather than calling the loader, so the guest
//! proves exactly what the command proves.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the host asks the guest to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestJob {
    /// The ig-image binary.
    pub exe: PathBuf,
    /// The store copy (in the read-write share).
    pub store: PathBuf,
    /// The image reference (or object path).
    pub image: String,
    /// More `ig-image run` arguments (`--param`, `--kernel-btf`, `--platform`, `--metadata`).
    pub run_args: Vec<String>,
    /// A workload to run while the gadget is attached.
    pub exec: Option<Vec<String>>,
    /// Only verify (load, attach, detach).
    pub verify_only: bool,
    /// How long the gadget reads after the workload ended.
    pub drain_ms: u64,
    /// How long to wait for the workload.
    pub exec_timeout_ms: u64,
}

/// The workload's outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecResult {
    /// The command.
    pub command: Vec<String>,
    /// Its pid in the guest.
    pub pid: u32,
    /// Its parent's pid (the guest runner).
    pub parent_pid: u32,
    /// Exit code (`None`: killed or not started).
    pub exit: Option<i32>,
    /// Why it did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the guest writes back (`result.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuestResult {
    /// `uname -r`.
    pub kernel_release: String,
    /// The `--verify-only --attach -o json` report.
    pub verify: Option<Value>,
    /// Its exit code.
    pub verify_exit: Option<i32>,
    /// Its stderr (errors that are not a report: bad input).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verify_stderr: String,
    /// Records the gadget printed while the workload ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Value>,
    /// The run's status lines (`Running …`, summary) and errors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_stderr: String,
    /// The run's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_exit: Option<i32>,
    /// The workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecResult>,
}

/// Runs the job at `job_path` and writes `result.json` beside it; the exit code is 0 when the
/// result was written.
pub fn main(job_path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(job_path)
        .with_context(|| format!("cannot read `{}`", job_path.display()))?;
    let job: GuestJob = serde_json::from_str(&text).context("malformed job")?;
    let dir = job_path.parent().context("job path has no directory")?;
    let mut result = GuestResult {
        kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        ..GuestResult::default()
    };
    let base = |c: &mut Command| {
        c.env("IG_IMAGE_CACHE_DIR", dir.join("cache"))
            .env("TMPDIR", dir)
            .env_remove("IG_IMAGE_STORE")
            .arg("--store")
            .arg(&job.store)
            .arg("run")
            .arg(&job.image)
            .args(&job.run_args);
    };
    let mut verify = Command::new(&job.exe);
    base(&mut verify);
    verify.args(["--verify-only", "--attach", "-o", "json"]);
    let out = verify
        .stdin(Stdio::null())
        .output()
        .context("cannot run ig-image run --verify-only")?;
    result.verify_exit = out.status.code();
    result.verify_stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    result.verify = serde_json::from_slice(&out.stdout).ok();
    let verified = result
        .verify
        .as_ref()
        .is_some_and(|v| v["ok"] == Value::Bool(true));
    if verified && !job.verify_only {
        if let Some(command) = &job.exec {
            run_with_workload(&job, command, &base, &mut result)?;
        }
    }
    let tmp = dir.join("result.json.part");
    std::fs::write(&tmp, serde_json::to_vec(&result)?)?;
    std::fs::rename(&tmp, dir.join("result.json"))?;
    Ok(())
}

fn run_with_workload(
    job: &GuestJob,
    command: &[String],
    base: &dyn Fn(&mut Command),
    result: &mut GuestResult,
) -> anyhow::Result<()> {
    let events_path = job.store.with_file_name("events.json");
    let mut run = Command::new(&job.exe);
    base(&mut run);
    run.args(["-o", "json"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_path)?)
        .stderr(Stdio::piped());
    let mut child = run.spawn().context("cannot run ig-image run")?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("Running ") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut exec = ExecResult {
        command: command.to_vec(),
        parent_pid: std::process::id(),
        ..ExecResult::default()
    };
    if rx
        .recv_timeout(Duration::from_millis(job.exec_timeout_ms))
        .is_ok()
    {
        match Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(mut w) => {
                exec.pid = w.id();
                exec.exit = wait_bounded(&mut w, Duration::from_millis(job.exec_timeout_ms));
            }
            Err(e) => exec.error = Some(format!("cannot run `{}`: {e}", command[0])),
        }
        std::thread::sleep(Duration::from_millis(job.drain_ms));
    } else {
        exec.error = Some("the gadget never reported that it was attached".into());
    }
    // SIGINT: the run detaches everything, prints its summary and exits 0.
    // SAFETY: kill by the pid of our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = match wait_bounded(&mut child, Duration::from_secs(20)) {
        Some(c) => Some(c),
        None => {
            let _ = child.kill();
            child.wait().ok().and_then(|s| s.code())
        }
    };
    result.run_exit = status;
    result.run_stderr = reader.join().unwrap_or_default();
    result.events = std::fs::read_to_string(&events_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    result.exec = Some(exec);
    Ok(())
}

fn wait_bounded(child: &mut std::process::Child, bound: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return s.code(),
            Ok(None) if start.elapsed() < bound => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}
