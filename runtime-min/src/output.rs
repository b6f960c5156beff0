//! Printing decoded records: JSON lines or columns.
//!
//! # JSON lines (wire format)
//!
//! One JSON object per record, one record per line, written as soon as it is read (stdout is
//! flushed after each batch). Members follow the struct's field order, flattened with dotted
//! names, with the values described in [`crate::decode`]. When the gadget has more than one data
//! source each object starts with `"datasource":"<name>"`. For map iterators (periodic dumps),
//! every record of one dump shares the member `"interval":<n>` (1, 2, ...), placed first.
//! Diagnostics (attach reports, lost samples, the summary) go to stderr, never to stdout.
//!
//! # Columns
//!
//! A header per data source, then one aligned row per record, driven by gadget.yaml field
//! annotations: `columns.hidden`, `columns.width`, `columns.minwidth`, `columns.maxwidth`,
//! `columns.alignment` (`left`/`right`), `columns.ellipsis` (`end`, `start`, `middle`, `none`),
//! `columns.alias` (header text) and `columns.hex`.

use std::collections::HashMap;
use std::io::{self, Write};

use serde_json::Value;

use crate::decode::{ColumnInfo, Decoder};

/// Receives records.
pub trait Sink {
    /// One record of data source `d`; `interval` is set for map iterator dumps. Returns whether
    /// it was written (`false`: a hook dropped it).
    fn record(&mut self, d: &Decoder, record: &[u8], interval: Option<u64>) -> io::Result<bool>;
    /// Called before each map iterator dump.
    fn dump_start(&mut self, _d: &Decoder, _interval: u64) -> io::Result<()> {
        Ok(())
    }
    /// Makes written records visible.
    fn flush(&mut self) -> io::Result<()>;
}

/// Sees each record before it is written (used by the WASM module): given the data source name
/// and the record's JSON object, returns `None` to drop the record, or the fields to add
/// (name, value) after its own.
pub type RecordHook<'a> = Box<dyn FnMut(&str, &[u8]) -> Option<Vec<(String, Value)>> + 'a>;

/// JSON lines.
pub struct JsonLines<'a, W: Write> {
    out: W,
    buf: Vec<u8>,
    tag_datasource: bool,
    hook: Option<RecordHook<'a>>,
}

impl<'a, W: Write> JsonLines<'a, W> {
    /// Writes to `out`; `tag_datasource` adds `"datasource"` to each object.
    pub fn new(out: W, tag_datasource: bool) -> Self {
        JsonLines {
            out,
            buf: Vec::with_capacity(64 << 10),
            tag_datasource,
            hook: None,
        }
    }

    /// Runs `hook` on every record (used by the WASM module).
    pub fn with_hook(mut self, hook: RecordHook<'a>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for JsonLines<'_, W> {
    fn record(&mut self, d: &Decoder, record: &[u8], interval: Option<u64>) -> io::Result<bool> {
        let mut extra = Vec::new();
        if self.tag_datasource {
            extra.extend_from_slice(b"\"datasource\":");
            crate::decode::push_json_str(&mut extra, d.name.as_bytes());
        }
        if let Some(i) = interval {
            if !extra.is_empty() {
                extra.push(b',');
            }
            extra.extend_from_slice(b"\"interval\":");
            crate::decode::push_u64(&mut extra, i);
        }
        match &mut self.hook {
            None => d.write_json(
                record,
                if extra.is_empty() { None } else { Some(&extra) },
                &mut self.buf,
            ),
            Some(hook) => {
                let mut obj = Vec::new();
                d.write_json(
                    record,
                    if extra.is_empty() { None } else { Some(&extra) },
                    &mut obj,
                );
                let Some(added) = hook(&d.name, &obj) else {
                    return Ok(false);
                };
                crate::wasm::append_fields(&mut obj, &added);
                self.buf.extend_from_slice(&obj);
            }
        }
        self.buf.push(b'\n');
        if self.buf.len() >= 60 << 10 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ellipsis {
    End,
    Start,
    Middle,
    None,
}

#[derive(Debug, Clone)]
struct Col {
    index: usize,
    header: String,
    width: usize,
    right: bool,
    ellipsis: Ellipsis,
}

fn layout(columns: &[ColumnInfo]) -> Vec<Col> {
    columns
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.annotations
                .get("columns.hidden")
                .is_none_or(|v| v != "true")
        })
        .map(|(index, c)| {
            let a = &c.annotations;
            let num = |k: &str| a.get(k).and_then(|v| v.parse::<usize>().ok());
            let header = a
                .get("columns.alias")
                .cloned()
                .unwrap_or_else(|| c.name.to_uppercase());
            let default = if c.numeric {
                8
            } else if c.name.contains("timestamp") {
                30
            } else {
                16
            };
            // An integer column is as wide as its widest value (a 64-bit id is 20 digits), so
            // numbers, which are never cut, cannot push the following columns out of line.
            let default = default.max(c.max_digits);
            let mut width = num("columns.width").unwrap_or_else(|| default.max(header.len()));
            if let Some(min) = num("columns.minwidth") {
                width = width.max(min);
            }
            if let Some(max) = num("columns.maxwidth") {
                width = width.min(max);
            }
            let right = match a.get("columns.alignment").map(String::as_str) {
                Some("right") => true,
                Some("left") => false,
                _ => c.numeric,
            };
            // Numbers are never cut short unless an annotation asks for it.
            let ellipsis = match a.get("columns.ellipsis").map(String::as_str) {
                Some("start") => Ellipsis::Start,
                Some("middle") => Ellipsis::Middle,
                Some("none") => Ellipsis::None,
                Some(_) => Ellipsis::End,
                None if c.numeric => Ellipsis::None,
                None => Ellipsis::End,
            };
            Col {
                index,
                header,
                width: width.max(1),
                right,
                ellipsis,
            }
        })
        .collect()
}

fn fit(text: &str, width: usize, ellipsis: Ellipsis) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width || ellipsis == Ellipsis::None {
        return text.to_string();
    }
    if width == 1 {
        return "…".to_string();
    }
    let keep = width - 1;
    match ellipsis {
        Ellipsis::Start => format!(
            "…{}",
            chars[chars.len() - keep..].iter().collect::<String>()
        ),
        Ellipsis::Middle => {
            let head = keep / 2;
            let tail = keep - head;
            format!(
                "{}…{}",
                chars[..head].iter().collect::<String>(),
                chars[chars.len() - tail..].iter().collect::<String>()
            )
        }
        _ => format!("{}…", chars[..keep].iter().collect::<String>()),
    }
}

fn row(cols: &[Col], cells: &[String]) -> String {
    let mut line = String::new();
    for (i, c) in cols.iter().enumerate() {
        let text = fit(
            cells.get(c.index).map_or("", String::as_str),
            c.width,
            c.ellipsis,
        );
        let pad = c.width.saturating_sub(text.chars().count());
        if i > 0 {
            line.push(' ');
        }
        if c.right {
            line.push_str(&" ".repeat(pad));
            line.push_str(&text);
        } else {
            line.push_str(&text);
            if i + 1 < cols.len() {
                line.push_str(&" ".repeat(pad));
            }
        }
    }
    line
}

/// Aligned columns.
pub struct Columns<'a, W: Write> {
    out: W,
    layouts: HashMap<String, Vec<Col>>,
    multi: bool,
    hook: Option<RecordHook<'a>>,
    /// Per data source, the names of the fields the hook adds (shown as the last columns).
    added: HashMap<String, Vec<String>>,
}

impl<'a, W: Write> Columns<'a, W> {
    /// Writes to `out`; `multi` prefixes each header with the data source name.
    pub fn new(out: W, multi: bool) -> Self {
        Columns {
            out,
            layouts: HashMap::new(),
            multi,
            hook: None,
            added: HashMap::new(),
        }
    }

    /// Runs `hook` on every record (used by the WASM module); `added` names, per data source,
    /// the fields it adds, which become the last columns.
    pub fn with_hook(mut self, hook: RecordHook<'a>, added: HashMap<String, Vec<String>>) -> Self {
        self.hook = Some(hook);
        self.added = added;
        self
    }

    fn header(&mut self, d: &Decoder) -> io::Result<()> {
        let mut columns = d.columns();
        for name in self.added.get(&d.name).into_iter().flatten() {
            columns.push(ColumnInfo {
                name: name.clone(),
                numeric: false,
                annotations: Default::default(),
                max_digits: 0,
            });
        }
        let cols = layout(&columns);
        let headers: Vec<String> = cols.iter().map(|c| c.header.clone()).collect();
        let mut h = cols.clone();
        for (i, c) in h.iter_mut().enumerate() {
            c.index = i;
            c.ellipsis = Ellipsis::End;
        }
        if self.multi {
            writeln!(self.out, "[{}]", d.name)?;
        }
        writeln!(self.out, "{}", row(&h, &headers))?;
        self.layouts.insert(d.name.clone(), cols);
        Ok(())
    }
}

impl<W: Write> Sink for Columns<'_, W> {
    fn record(&mut self, d: &Decoder, record: &[u8], _interval: Option<u64>) -> io::Result<bool> {
        let added = match &mut self.hook {
            None => Vec::new(),
            Some(hook) => {
                let mut obj = Vec::new();
                d.write_json(record, None, &mut obj);
                match hook(&d.name, &obj) {
                    None => return Ok(false),
                    Some(added) => added,
                }
            }
        };
        if !self.layouts.contains_key(&d.name) {
            self.header(d)?;
        }
        let mut cells = d.texts(record);
        cells.extend(added.into_iter().map(|(_, v)| match v {
            Value::String(s) => s,
            other => other.to_string(),
        }));
        let line = row(&self.layouts[&d.name], &cells);
        writeln!(self.out, "{line}")?;
        Ok(true)
    }

    fn dump_start(&mut self, d: &Decoder, interval: u64) -> io::Result<()> {
        if interval > 1 {
            writeln!(self.out)?;
        }
        self.header(d)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn col(name: &str, numeric: bool, ann: &[(&str, &str)]) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            numeric,
            annotations: ann
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            max_digits: 0,
        }
    }

    #[test]
    fn integer_columns_fit_their_widest_value() {
        let mut id = col("mntns_id", true, &[]);
        id.max_digits = 20;
        let cols = layout(&[id, col("comm", false, &[])]);
        assert_eq!(cols[0].width, 20);
        let line = row(&cols, &["4026531840".into(), "bash".into()]);
        assert_eq!(line, format!("{:>20} bash", "4026531840"));
        let huge = row(&cols, &[u64::MAX.to_string(), "bash".into()]);
        assert_eq!(
            huge.find(" bash"),
            line.find(" bash"),
            "no overflow: {huge}"
        );
    }

    #[test]
    fn layout_follows_annotations() {
        let cols = layout(&[
            col("proc.pid", true, &[]),
            col("timestamp_raw", true, &[("columns.hidden", "true")]),
            col(
                "fname",
                false,
                &[("columns.width", "6"), ("columns.ellipsis", "start")],
            ),
            col(
                "fd",
                true,
                &[
                    ("columns.width", "3"),
                    ("columns.alignment", "left"),
                    ("columns.alias", "FD#"),
                ],
            ),
        ]);
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[0].header, "PROC.PID");
        assert!(cols[0].right);
        assert_eq!(cols[1].width, 6);
        assert_eq!(cols[2].header, "FD#");
        let cells: Vec<String> = ["42", "123", "/tmp/a/long/path", "3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(row(&cols, &cells), "      42 …/path 3");
    }

    #[test]
    fn ellipsis_styles() {
        assert_eq!(fit("abcdef", 4, Ellipsis::End), "abc…");
        assert_eq!(fit("abcdef", 4, Ellipsis::Start), "…def");
        assert_eq!(fit("abcdef", 4, Ellipsis::Middle), "a…ef");
        assert_eq!(fit("abcdef", 4, Ellipsis::None), "abcdef");
        assert_eq!(fit("abc", 4, Ellipsis::End), "abc");
    }
}
