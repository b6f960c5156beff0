//! One record per image × kernel, the table of a matrix (kernels as columns, images as rows),
//! and merging records from separate runs (`run --merge`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guest::ExecResult;

/// How the guest itself went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BootStats {
    /// Accelerator (`kvm` or `tcg`).
    pub accel: String,
    /// Wall time from starting QEMU to its exit, milliseconds.
    pub wall_ms: u64,
    /// QEMU's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu_exit: Option<i32>,
    /// Killed after `--timeout`.
    #[serde(default)]
    pub timed_out: bool,
    /// QEMU's peak resident memory, KiB.
    pub peak_rss_kib: u64,
    /// Set when KVM failed inside this guest and it was booted again under TCG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel_note: Option<String>,
}

/// One image on one kernel.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// The image.
    pub image: String,
    /// The kernel spec (`debian:bookworm`, a path).
    pub kernel: String,
    /// Guest architecture.
    pub arch: String,
    /// `uname -r` in the guest (else the package's release).
    #[serde(default)]
    pub kernel_release: String,
    /// Notes from preparing the kernel (e.g. a vmlinux that could not be extracted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_notes: Vec<String>,
    /// Everything loaded and attached (and, with `--exec`, the gadget ran with the workload).
    pub ok: bool,
    /// Why not, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The verification report (`run --verify-only --attach -o json` in the guest): each
    /// program's status, classified error, verifier log and attach result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Value>,
    /// With `--exec`: the records the gadget printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Value>>,
    /// With `--exec`: the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecResult>,
    /// The guest.
    pub boot: BootStats,
    /// The console's last lines, when something went wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console: Vec<String>,
    /// The guest's `ig-image run` messages, when something went wrong.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

/// The first failure in a verify report, in one line: `program: class: message`.
pub fn verify_reason(report: &Value) -> Option<String> {
    if let Some(f) = report.get("setup_failure").filter(|f| !f.is_null()) {
        return Some(format!(
            "setup: {}: {}",
            str_of(f, "class"),
            str_of(f, "message")
        ));
    }
    for p in report.get("programs")?.as_array()? {
        if p["status"] == "failed" {
            return Some(format!(
                "{}: {}: {}",
                str_of(p, "name"),
                str_of(p, "class"),
                str_of(p, "message")
            ));
        }
        if p["attach"]["attach"] == "failed" {
            let a = &p["attach"];
            return Some(format!(
                "{}: attach: {}: {}",
                str_of(p, "name"),
                str_of(a, "class"),
                str_of(a, "message")
            ));
        }
    }
    (report["ok"] != Value::Bool(true)).then(|| "not ok".to_string())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

/// Reads JSON-lines record files.
pub fn read_records(paths: &[impl AsRef<Path>]) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read `{}`", p.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let r: Record = serde_json::from_str(line).with_context(|| {
                format!(
                    "`{}` line {}: not a kernel-matrix record",
                    p.display(),
                    i + 1
                )
            })?;
            out.push(r);
        }
    }
    Ok(out)
}

/// The matrix as text: one row per image, one column per kernel, `✓ release` or `✗ reason`,
/// then the failures in full.
pub fn render_table(records: &[Record]) -> String {
    let mut kernels: Vec<String> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, String), &Record> = BTreeMap::new();
    for r in records {
        let k = if r.arch == "amd64" || r.arch.is_empty() {
            r.kernel.clone()
        } else {
            format!("{} ({})", r.kernel, r.arch)
        };
        if !kernels.contains(&k) {
            kernels.push(k.clone());
        }
        if !images.contains(&r.image) {
            images.push(r.image.clone());
        }
        cells.insert((r.image.clone(), k), r);
    }
    let cell_text = |r: Option<&&Record>| match r {
        None => "-".to_string(),
        Some(r) if r.ok => format!("✓ {}", r.kernel_release),
        Some(r) => format!("✗ {}", cell_reason(r)),
    };
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("IMAGE".to_string())
            .chain(kernels.iter().cloned())
            .collect(),
    ];
    for i in &images {
        let mut row = vec![i.clone()];
        for k in &kernels {
            row.push(cell_text(cells.get(&(i.clone(), k.clone()))));
        }
        rows.push(row);
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(t, w)| format!("{t}{}", " ".repeat(w - t.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let failed: Vec<&Record> = records.iter().filter(|r| !r.ok).collect();
    for r in failed {
        out.push_str(&format!(
            "\n✗ {} on {}: {}\n",
            r.image,
            r.kernel,
            r.reason.as_deref().unwrap_or("failed")
        ));
        for l in &r.console {
            out.push_str(&format!("  console: {l}\n"));
        }
    }
    out
}

/// A failed cell in a few words: the failure class and program, or what happened to the guest.
fn cell_reason(r: &Record) -> String {
    if let Some(programs) = r.verify.as_ref().and_then(|v| v["programs"].as_array()) {
        for p in programs {
            if p["status"] == "failed" {
                return format!("{} ({})", str_of(p, "class"), str_of(p, "name"));
            }
            if p["attach"]["attach"] == "failed" {
                return format!(
                    "attach: {} ({})",
                    str_of(&p["attach"], "class"),
                    str_of(p, "name")
                );
            }
        }
        if let Some(f) = r
            .verify
            .as_ref()
            .map(|v| &v["setup_failure"])
            .filter(|f| f.is_object())
        {
            return format!("setup: {}", str_of(f, "class"));
        }
    }
    if r.boot.timed_out {
        return "guest timed out".into();
    }
    match r.reason.as_deref() {
        Some(reason) if reason.starts_with("the guest stopped") => "guest failed".into(),
        Some(reason) => short(reason, 40),
        None => "failed".into(),
    }
}

fn short(text: &str, max: usize) -> String {
    let one = text.lines().next().unwrap_or("");
    if one.chars().count() <= max {
        return one.to_string();
    }
    let cut: String = one.chars().take(max - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(image: &str, kernel: &str, ok: bool, reason: Option<&str>) -> Record {
        Record {
            image: image.into(),
            kernel: kernel.into(),
            arch: "amd64".into(),
            kernel_release: "6.1.0-57-amd64".into(),
            ok,
            reason: reason.map(String::from),
            ..Record::default()
        }
    }

    #[test]
    fn table_has_kernels_as_columns() {
        let mut failed = rec(
            "trace_exec",
            "debian:bullseye",
            false,
            Some("prog: core-relocation: no field"),
        );
        failed.verify = Some(
            json!({"ok": false, "programs": [{"name": "prog", "status": "failed", "class": "core-relocation"}]}),
        );
        let t = render_table(&[
            rec("trace_exec", "debian:bookworm", true, None),
            failed,
            rec("top_file", "debian:bookworm", true, None),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("IMAGE")
                && lines[0].contains("debian:bookworm")
                && lines[0].contains("debian:bullseye"),
            "{t}"
        );
        assert!(
            lines[1].contains("✓ 6.1.0-57-amd64") && lines[1].contains("✗ core-relocation (prog)"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("top_file") && lines[2].trim_end().ends_with('-'),
            "{t}"
        );
        assert!(
            t.contains("✗ trace_exec on debian:bullseye: prog: core-relocation: no field"),
            "{t}"
        );
    }

    #[test]
    fn reasons_from_reports() {
        let r = json!({"ok": false, "programs": [
            {"name": "a", "status": "loaded", "attach": {"attach": "attached", "target": "x"}},
            {"name": "b", "status": "failed", "class": "core-relocation", "message": "field `f`"}]});
        assert_eq!(verify_reason(&r).unwrap(), "b: core-relocation: field `f`");
        let r = json!({"ok": false, "programs": [
            {"name": "k", "status": "loaded", "attach": {"attach": "failed", "class": "attach-point-missing", "message": "no kprobes"}}]});
        assert_eq!(
            verify_reason(&r).unwrap(),
            "k: attach: attach-point-missing: no kprobes"
        );
        assert_eq!(verify_reason(&json!({"ok": true, "programs": []})), None);
    }

    #[test]
    fn merges_json_lines_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(
            &a,
            serde_json::to_string(&rec("x", "debian:sid", true, None)).unwrap() + "\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            serde_json::to_string(&rec("x", "debian:trixie", true, None)).unwrap(),
        )
        .unwrap();
        let all = read_records(&[&a, &b]).unwrap();
        assert_eq!(all.len(), 2);
        std::fs::write(&b, "{\"not\": \"a record\"}\n").unwrap();
        let e = format!("{:#}", read_records(&[&b]).unwrap_err());
        assert!(e.contains("b.json` line 1"), "{e}");
    }
}
