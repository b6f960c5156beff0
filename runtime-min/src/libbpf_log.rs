//! libbpf's messages, captured per load and per attach.
//!
//! libbpf has one print callback for the whole process. A [`Capture`] holds a process-wide lock
//! for as long as it lives, so the messages it collects (warnings, the verifier logs libbpf
//! prints between `-- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG --`) are those of its own
//! load, even when several loads run on different threads (tests do). Outside a capture libbpf's
//! messages go to the `log` crate at debug level.

use std::sync::{Mutex, MutexGuard};

use libbpf_rs::PrintLevel;

/// Serializes captures.
static CAPTURE_LOCK: Mutex<()> = Mutex::new(());
/// The current capture's messages (`None`: no capture running).
static LINES: Mutex<Option<Vec<String>>> = Mutex::new(None);

fn on_print(level: PrintLevel, msg: String) {
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    match lines.as_mut() {
        Some(l) => l.push(msg),
        None => log::debug!("libbpf ({level:?}): {}", msg.trim_end()),
    }
}

/// Collects libbpf's messages until dropped.
pub struct Capture {
    _exclusive: MutexGuard<'static, ()>,
}

impl Capture {
    /// Starts collecting (waits for another thread's capture to end).
    pub fn start() -> Capture {
        let guard = CAPTURE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        *LINES.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
        let level = if log::log_enabled!(log::Level::Debug) {
            PrintLevel::Debug
        } else {
            PrintLevel::Info
        };
        libbpf_rs::set_print(Some((level, on_print)));
        Capture { _exclusive: guard }
    }

    /// The messages so far (and forgets them).
    pub fn take(&self) -> Messages {
        let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
        Messages(lines.as_mut().map(std::mem::take).unwrap_or_default())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(left) = lines.take() {
            for l in left {
                log::debug!("libbpf: {}", l.trim_end());
            }
        }
    }
}

/// What libbpf printed during one step.
#[derive(Debug, Default, Clone)]
pub struct Messages(pub Vec<String>);

const BEGIN_LOG: &str = "-- BEGIN PROG LOAD LOG --";
const END_LOG: &str = "-- END PROG LOAD LOG --";

/// `libbpf: prog 'NAME': ...` → `NAME`.
fn program_of(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("libbpf: ").unwrap_or(line);
    let rest = rest.strip_prefix("prog '")?;
    rest.split_once('\'').map(|(name, _)| name)
}

impl Messages {
    /// The program whose failure stopped the load: the last program named in a message that
    /// reports a failure.
    pub fn failed_program(&self) -> Option<String> {
        self.0
            .iter()
            .rev()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("fail")
                    || l.contains("error")
                    || l.contains(BEGIN_LOG.to_ascii_lowercase().as_str())
            })
            .find_map(|l| program_of(l).map(str::to_string))
    }

    /// The verifier log libbpf printed for `program`, if any.
    pub fn verifier_log(&self, program: &str) -> String {
        for l in self.0.iter().rev() {
            if program_of(l) != Some(program) {
                continue;
            }
            if let Some((_, rest)) = l.split_once(BEGIN_LOG) {
                let body = rest.split(END_LOG).next().unwrap_or(rest);
                return body.trim_start_matches('\n').to_string();
            }
        }
        String::new()
    }

    /// libbpf's warnings, one per line, without the verifier logs and the `libbpf: ` prefix;
    /// only those about `program` when given (plus those about no program at all).
    pub fn warnings(&self, program: Option<&str>) -> Vec<String> {
        self.0
            .iter()
            .filter(|l| !l.contains(BEGIN_LOG))
            .filter(|l| match (program, program_of(l)) {
                (Some(want), Some(p)) => p == want,
                _ => true,
            })
            .map(|l| {
                l.trim()
                    .strip_prefix("libbpf: ")
                    .unwrap_or(l.trim())
                    .to_string()
            })
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// The errno inside a libbpf-rs error (its chain ends in an `io::Error`, shown as
/// `... (os error N)`).
pub fn errno(e: &libbpf_rs::Error) -> Option<i32> {
    let text = format!("{e:#}");
    let at = text.rfind("(os error ")?;
    text[at + "(os error ".len()..]
        .split(')')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_failed_program_and_its_log() {
        let m = Messages(vec![
            "libbpf: prog 'ok_one': some note\n".into(),
            "libbpf: prog 'bad': BPF program load failed: Permission denied\n".into(),
            "libbpf: prog 'bad': -- BEGIN PROG LOAD LOG --\n0: (b7) r0 = 0\nR0 invalid mem access\n-- END PROG LOAD LOG --\n".into(),
            "libbpf: prog 'bad': failed to load: -13\n".into(),
            "libbpf: failed to load object 'gadget'\n".into(),
        ]);
        assert_eq!(m.failed_program().as_deref(), Some("bad"));
        assert_eq!(
            m.verifier_log("bad"),
            "0: (b7) r0 = 0\nR0 invalid mem access\n"
        );
        assert_eq!(m.verifier_log("ok_one"), "");
        let w = m.warnings(Some("bad"));
        assert_eq!(
            w,
            [
                "prog 'bad': BPF program load failed: Permission denied",
                "prog 'bad': failed to load: -13",
                "failed to load object 'gadget'"
            ]
        );
    }

    #[test]
    fn errno_from_error_chain() {
        let e = libbpf_rs::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(errno(&e), Some(libc::EACCES));
    }
}
