//! Printing: output formats, tables, JSON/YAML rendering, and error chains with hints.

use std::io::Write;

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

/// Print a serializable value as JSON (compact or pretty) or YAML on stdout.
pub fn print_data<T: serde::Serialize>(value: &T, format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
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
    let mut out = std::io::stdout().lock();
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
    Ok(())
}

/// A status line on stderr, cargo-style (`   Building trace_open`).
pub fn status(verb: &str, message: impl std::fmt::Display) {
    eprintln!("{verb:>12} {message}");
}

/// A warning on stderr (a message that already starts with `warning: ` is not prefixed twice).
pub fn warning(message: impl std::fmt::Display) {
    let text = gadget_store::printable(&message.to_string());
    eprintln!(
        "warning: {}",
        text.strip_prefix("warning: ").unwrap_or(&text)
    );
}

/// Print an error chain: `error:`, then `caused by:` lines; message lines starting with `hint:` are kept as hints.
pub fn print_error(error: &anyhow::Error) {
    let mut hints = Vec::new();
    let mut first = true;
    for cause in error.chain() {
        // Control characters escaped: messages may quote bytes from hostile input.
        let text = gadget_store::printable(&cause.to_string());
        let mut body = Vec::new();
        for line in text.lines() {
            match line.strip_prefix("hint: ") {
                Some(h) => hints.push(h.to_string()),
                None => body.push(line),
            }
        }
        let body = body.join("\n");
        if first {
            eprintln!("error: {body}");
            first = false;
        } else if !body.is_empty() {
            eprintln!("caused by: {body}");
        }
    }
    for h in hints {
        eprintln!("hint: {h}");
    }
}
