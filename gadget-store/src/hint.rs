//! Hints as data: the suggestion an error carries is not part of its message but given by
//! [`Hint::hints`], found by walking the error chain, and printed once, after the whole chain,
//! by [`render_error`], the one error renderer of both binaries (`ig-image` and `runtime-min`).
//!
//! An error type with hints implements [`Hint`]; the crate that defines it offers a
//! [`HintLookup`] that tries its types ([`hints_if`]), and a binary passes the lookup of every
//! crate whose errors it may print. Errors made on the spot carry their hint in [`Hinted`],
//! which every lookup finds.

use std::error::Error;
use std::fmt;

use crate::archive::printable;

/// An error that may suggest what to do about it.
pub trait Hint {
    /// This error's own hints (not its sources'), in the order they are printed; each is one
    /// `hint:` line.
    fn hints(&self) -> Vec<String>;
}

/// Finds the hints of one error of a chain: tries the error types it knows ([`hints_if`]).
pub type HintLookup = fn(&(dyn Error + 'static)) -> Vec<String>;

/// The hints of `error` if it is an `E`, else none.
pub fn hints_if<E: Hint + Error + 'static>(error: &(dyn Error + 'static)) -> Vec<String> {
    error.downcast_ref::<E>().map(E::hints).unwrap_or_default()
}

/// An error made on the spot: a message, a hint, and optionally the error it wraps.
#[derive(Debug)]
pub struct Hinted {
    message: String,
    hint: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl Hinted {
    /// `message`, with `hint` printed after the chain.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Hinted {
        Hinted {
            message: message.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// `message` about `source` (the next error of the chain), with `hint`.
    pub fn wrap(
        message: impl Into<String>,
        hint: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Hinted {
        Hinted {
            source: Some(source.into()),
            ..Hinted::new(message, hint)
        }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Hinted {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl Hint for Hinted {
    fn hints(&self) -> Vec<String> {
        vec![self.hint.clone()]
    }
}

/// The text printed for `error`: `{error_word}: message`, a `caused by: message` line for each
/// source with a message, then a `hint: …` line for each hint found in the chain ([`Hinted`]'s
/// and those `lookup` finds), in chain order. Control characters are escaped ([`printable`]):
/// messages may quote bytes from hostile input. No trailing newline.
pub fn render_error(error: &(dyn Error + 'static), lookup: HintLookup, error_word: &str) -> String {
    let mut lines = Vec::new();
    let mut hints = Vec::new();
    let mut cause = Some(error);
    while let Some(e) = cause {
        let text = printable(&e.to_string());
        let body = text.lines().collect::<Vec<_>>().join("\n");
        if lines.is_empty() {
            lines.push(format!("{error_word}: {body}"));
        } else if !body.is_empty() {
            lines.push(format!("caused by: {body}"));
        }
        hints.extend(hints_if::<Hinted>(e));
        hints.extend(lookup(e));
        cause = e.source();
    }
    for h in hints {
        lines.push(format!("hint: {}", printable(&h)));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner\nsecond line\n")]
    struct Inner;

    impl Hint for Inner {
        fn hints(&self) -> Vec<String> {
            vec!["do this".into(), "or that".into()]
        }
    }

    #[test]
    fn hints_come_after_the_whole_chain() {
        let e = Hinted::wrap("top", "first hint", Outer(Inner));
        assert_eq!(
            render_error(&e, hints_if::<Inner>, "error"),
            "error: top\ncaused by: outer\ncaused by: inner\nsecond line\n\
             hint: first hint\nhint: do this\nhint: or that"
        );
    }

    /// A lookup that knows no types (only [`Hinted`], which [`render_error`] always finds).
    fn no_hints(_: &(dyn Error + 'static)) -> Vec<String> {
        Vec::new()
    }

    #[test]
    fn a_lookup_finds_only_the_types_it_knows() {
        let e = Outer(Inner);
        assert_eq!(
            render_error(&e, no_hints, "E"),
            "E: outer\ncaused by: inner\nsecond line"
        );
    }

    #[test]
    fn control_characters_are_escaped_in_hints_too() {
        let e = Hinted::new("bad \x1b[31m", "try \x07");
        let text = render_error(&e, no_hints, "error");
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
    }
}
