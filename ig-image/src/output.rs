//! Printing: output formats, tables, JSON/YAML rendering, error chains with hints, colour on a
//! terminal, and a standard output that a closed pipe (`| head`) cannot turn into an error.

use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use yaml_rust2::Yaml;

/// `-o` values shared by the commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// Human-readable text or columns.
    #[default]
    #[value(alias = "text")]
    Columns,
    /// One JSON document (JSON lines for streams).
    Json,
    /// Indented JSON.
    Jsonpretty,
    /// YAML.
    Yaml,
}

/// Set once standard output turned out to be a closed pipe.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Standard output for everything the commands print. When the reader of a pipe goes away
/// (`ig-image list | head -1`), fd 1 is pointed at /dev/null and every later write, ours or a
/// plain `println!`, succeeds silently: the command finishes its work and exits as it would
/// have, with nothing on stderr.
pub struct Out;

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::io::stdout().write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                mark_stdout_closed();
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match std::io::stdout().flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                mark_stdout_closed();
                Ok(())
            }
            other => other,
        }
    }
}

/// Records a closed standard output and points fd 1 at /dev/null.
pub fn mark_stdout_closed() {
    if STDOUT_CLOSED.swap(true, Ordering::Relaxed) {
        return;
    }
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // fd 1 stays open, now on /dev/null.
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// Writes one formatted line to standard output ([`Out`]). A closed pipe is not an error;
/// another write error (a full disk behind a redirect) ends the process with status 2.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = Out;
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        print_error(&anyhow::Error::new(e).context("cannot write to standard output"));
        std::process::exit(2);
    }
}

/// `println!` through [`Out`]: quiet on a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}

/// Whether the process is allowed to colour `stream` (a terminal, and `NO_COLOR` unset or
/// empty).
fn colour_on(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stderr gets colour.
pub fn colour_stderr() -> bool {
    colour_on(std::io::stderr().is_terminal())
}

/// Whether stdout gets colour.
pub fn colour_stdout() -> bool {
    colour_on(std::io::stdout().is_terminal())
}

/// Colours of the words that carry a verdict.
#[derive(Debug, Clone, Copy)]
pub enum Paint {
    /// Errors, failures: bold red.
    Bad,
    /// Warnings: bold yellow.
    Warn,
    /// Success: green.
    Good,
}

/// `text` in `paint`'s colour when `on`, else as is.
pub fn paint(text: &str, paint: Paint, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match paint {
        Paint::Bad => "1;31",
        Paint::Warn => "1;33",
        Paint::Good => "32",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Print a serializable value as JSON (compact or pretty) or YAML on stdout.
pub fn print_data<T: serde::Serialize>(value: &T, format: Format) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(Out);
    match format {
        Format::Json | Format::Columns => {
            serde_json::to_writer(&mut out, value).context("cannot write JSON to stdout")?;
            writeln!(out)?;
        }
        Format::Jsonpretty => {
            serde_json::to_writer_pretty(&mut out, value).context("cannot write JSON to stdout")?;
            writeln!(out)?;
        }
        Format::Yaml => {
            let json = serde_json::to_value(value).context("cannot serialize")?;
            let mut text = String::new();
            yaml_rust2::YamlEmitter::new(&mut text)
                .dump(&json_to_yaml(&json))
                .context("cannot render YAML")?;
            writeln!(out, "{}", text.trim_start_matches("---\n"))?;
        }
    }
    out.flush()?;
    Ok(())
}

fn json_to_yaml(v: &serde_json::Value) -> Yaml {
    match v {
        serde_json::Value::Null => Yaml::Null,
        serde_json::Value::Bool(b) => Yaml::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        serde_json::Value::String(s) => Yaml::String(s.clone()),
        serde_json::Value::Array(items) => Yaml::Array(items.iter().map(json_to_yaml).collect()),
        serde_json::Value::Object(map) => Yaml::Hash(
            map.iter()
                .map(|(k, v)| (Yaml::String(k.clone()), json_to_yaml(v)))
                .collect(),
        ),
    }
}

/// Print rows as left-aligned columns with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::BufWriter::new(Out);
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    (*c).to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    out.flush()?;
    Ok(())
}

/// A status line on stderr, cargo-style (`   Building trace_open`).
pub fn status(verb: &str, message: impl std::fmt::Display) {
    // One write for the line: stderr is unbuffered, and `{:>12}` pads one space at a time.
    let line = format!("{verb:>12} {message}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

/// A one-line note on stderr (`note:`), for what a flag does not do here.
pub fn note(message: impl std::fmt::Display) {
    eprintln!("note: {}", gadget_store::printable(&message.to_string()));
}

/// A warning on stderr (`warning:` in yellow on a terminal; a message that already starts with
/// `warning: ` is not prefixed twice).
pub fn warning(message: impl std::fmt::Display) {
    let text = gadget_store::printable(&message.to_string());
    eprintln!(
        "{}: {}",
        paint("warning", Paint::Warn, colour_stderr()),
        text.strip_prefix("warning: ").unwrap_or(&text)
    );
}

/// Print an error chain: `error:`, then `caused by:` lines, then the hints the errors carry
/// ([`crate::hints::hints_of`]), through the renderer `runtime-min` uses too.
pub fn print_error(error: &anyhow::Error) {
    let error_word = paint("error", Paint::Bad, colour_stderr());
    eprintln!(
        "{}",
        gadget_store::hint::render_error(error.as_ref(), crate::hints::hints_of, &error_word)
    );
}

/// `created` (RFC 3339) as docker and upstream `ig` show it in columns: "2 hours ago". Empty
/// when it does not parse.
pub fn relative_time(created: &str) -> String {
    let Ok(then) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return String::new();
    };
    let seconds = (time::OffsetDateTime::now_utc() - then).whole_seconds();
    if seconds < 0 {
        return "in the future".to_string();
    }
    format!("{} ago", human_duration(seconds.unsigned_abs()))
}

/// Docker's `units.HumanDuration`, lower-cased as upstream `ig` prints it.
pub fn human_duration(seconds: u64) -> String {
    let minutes = seconds / 60;
    // Hours are rounded, as docker does.
    let hours = (seconds + 1800) / 3600;
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds < 1 {
        "less than a second".to_string()
    } else if seconds < 60 {
        plural(seconds, "second")
    } else if minutes == 1 {
        "about a minute".to_string()
    } else if minutes < 60 {
        plural(minutes, "minute")
    } else if hours == 1 {
        "about an hour".to_string()
    } else if hours < 48 {
        plural(hours, "hour")
    } else if hours < 24 * 7 * 2 {
        plural(hours / 24, "day")
    } else if hours < 24 * 30 * 2 {
        plural(hours / 24 / 7, "week")
    } else if hours < 24 * 365 * 2 {
        plural(hours / 24 / 30, "month")
    } else {
        plural(hours / 24 / 365, "year")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "about a minute");
        assert_eq!(human_duration(45 * 60), "45 minutes");
        assert_eq!(human_duration(3600), "about an hour");
        assert_eq!(human_duration(2 * 3600), "2 hours");
        assert_eq!(human_duration(3 * 24 * 3600), "3 days");
        assert_eq!(human_duration(20 * 24 * 3600), "2 weeks");
        assert_eq!(human_duration(90 * 24 * 3600), "3 months");
        assert_eq!(human_duration(3 * 365 * 24 * 3600), "3 years");
    }

    #[test]
    fn relative_time_of_bad_input_is_empty() {
        assert_eq!(relative_time("yesterday"), "");
        assert!(relative_time("2000-01-01T00:00:00Z").ends_with("years ago"));
    }

    #[test]
    fn paint_only_when_on() {
        assert_eq!(paint("FAIL", Paint::Bad, false), "FAIL");
        assert_eq!(paint("ok", Paint::Good, true), "\x1b[32mok\x1b[0m");
    }
}
