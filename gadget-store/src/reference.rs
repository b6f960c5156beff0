//! Gadget image references: parsing, normalization and display (spec §6).
//!
//! Pure: no I/O. The grammar follows the distribution reference grammar:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port ]
//! host             := domain-name | IPv4 address | "[" IPv6 address "]"
//! domain-name      := domain-component ( "." domain-component )*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port             := /[0-9]+/
//! path             := path-component ( "/" path-component )*
//! path-component   := alpha-numeric ( separator alpha-numeric )*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := "sha256:" /[0-9a-f]{64}/
//! ```
//!
//! Normalization (upstream `ig`): the first path component is a registry only when it contains
//! `.` or `:`, is `localhost`, or has an uppercase letter; otherwise the registry is `ghcr.io`.
//! On `ghcr.io` a single-component name gets the `inspektor-gadget/gadget/` prefix. A reference
//! with neither tag nor digest gets the tag `latest`.
//!
//! ```
//! use gadget_store::Reference;
//! let r: Reference = "trace_exec".parse().unwrap();
//! assert_eq!(r.full(), "ghcr.io/inspektor-gadget/gadget/trace_exec:latest");
//! assert_eq!(r.display(), "trace_exec:latest");
//! ```

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "ghcr.io";
/// The repository prefix added on [`DEFAULT_REGISTRY`] to single-component names.
pub const DEFAULT_REPOSITORY_PREFIX: &str = "inspektor-gadget/gadget/";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// What [`Reference::display`] drops from the front of a full reference.
pub const DISPLAY_PREFIX: &str = "ghcr.io/inspektor-gadget/gadget/";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A normalized gadget image reference.
///
/// Always has a registry and a repository, and at least one of a tag and a digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input is empty.
    #[error("invalid reference: the reference is empty")]
    Empty,
    /// The input does not follow the grammar.
    #[error("invalid reference `{input}`: {reason}")]
    Invalid {
        /// The rejected input.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(input: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

impl Reference {
    /// Parses and normalizes a reference such as `trace_exec`, `trace_exec:v0.42.0`,
    /// `localhost:5000/trace_exec` or `name@sha256:<hex>`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.contains("://") {
            return Err(invalid(
                input,
                "a scheme is not allowed; write `registry/repository[:tag]`",
            ));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(input, format!("contains the character {c:?}")));
        }

        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                let digest = Digest::parse(d).map_err(|e| {
                    invalid(
                        input,
                        format!("the digest `{d}` is not `sha256:<64 lowercase hex digits>` ({e})"),
                    )
                })?;
                (n, Some(digest))
            }
            None => (input, None),
        };
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|s| colon > s) => {
                (&name_tag[..colon], Some(&name_tag[colon + 1..]))
            }
            _ => (name_tag, None),
        };
        if let Some(tag) = tag {
            validate_tag(input, tag)?;
        }
        if name.is_empty() {
            return Err(invalid(input, "the repository name is empty"));
        }

        let (registry, mut repository) = split_registry(name);
        validate_registry(input, registry)?;
        let registry = registry.to_owned();
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository = format!("{DEFAULT_REPOSITORY_PREFIX}{repository}");
        }
        validate_path(input, &repository)?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(invalid(
                input,
                format!("the name is longer than {MAX_NAME_LEN} characters"),
            ));
        }

        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Builds a reference from parts, validating each (the repository is not prefixed).
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Self, ReferenceError> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        validate_registry(&s, registry)?;
        validate_path(&s, repository)?;
        if let Some(t) = tag {
            validate_tag(&s, t)?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(invalid(&s, "a tag or a digest is required"));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry host, with its port if any (e.g. `ghcr.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (e.g. `inspektor-gadget/gadget/trace_exec`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any. A parsed reference without a digest always has one (`latest` by
    /// default).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        Self::from_parts(&self.registry, &self.repository, Some(tag), None)
    }

    /// The same reference without its digest (`latest` when it had no tag either).
    pub fn without_digest(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(self.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_owned())),
            digest: None,
        }
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as users see it: [`Reference::name`] without `ghcr.io/inspektor-gadget/gadget/`.
    pub fn display_name(&self) -> String {
        strip_display_prefix(&self.name()).to_owned()
    }

    /// The full normalized reference, `registry/repository[:tag][@digest]`.
    ///
    /// For a reference with a tag and no digest this is the name the store tags images with
    /// (`org.opencontainers.image.ref.name`).
    pub fn full(&self) -> String {
        let mut s = self.name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }

    /// The full reference without `ghcr.io/inspektor-gadget/gadget/` (e.g. `trace_exec:latest`).
    pub fn display(&self) -> String {
        strip_display_prefix(&self.full()).to_owned()
    }
}

/// Drops [`DISPLAY_PREFIX`] from a full reference string, if present.
pub fn strip_display_prefix(full: &str) -> &str {
    full.strip_prefix(DISPLAY_PREFIX).unwrap_or(full)
}

/// Splits `name` into (registry, repository) as docker and upstream `ig` do.
fn split_registry(name: &str) -> (&str, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest.to_owned())
        }
        _ => (DEFAULT_REGISTRY, name.to_owned()),
    }
}

fn validate_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let ok = match chars.next() {
        None => false,
        Some(first) => word(first) && chars.all(|c| word(c) || c == '.' || c == '-'),
    };
    if !ok {
        return Err(invalid(
            input,
            format!(
                "the tag `{tag}` must match `[A-Za-z0-9_][A-Za-z0-9_.-]*` (at most {MAX_TAG_LEN} characters)"
            ),
        ));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(invalid(
            input,
            format!("the tag is longer than {MAX_TAG_LEN} characters"),
        ));
    }
    Ok(())
}

fn validate_registry(input: &str, registry: &str) -> Result<(), ReferenceError> {
    let bad = |why: &str| invalid(input, format!("the registry `{registry}` {why}"));
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(bad("has an unclosed `[`"));
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(bad("is not a valid IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("has text after the IPv6 address"))?,
            ),
        };
        (None, port)
    } else {
        match registry.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("has an invalid port"));
        }
    }
    if let Some(host) = host {
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        };
        if !host.split('.').all(component_ok) {
            return Err(bad("is not a valid host name"));
        }
    }
    Ok(())
}

fn validate_path(input: &str, path: &str) -> Result<(), ReferenceError> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(invalid(input, "the repository has an empty path component"));
        }
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid(
                input,
                format!("the repository component `{component}` must be lowercase"),
            ));
        }
        if !path_component_ok(component) {
            return Err(invalid(
                input,
                format!(
                    "the repository component `{component}` must be lowercase letters and digits \
                     separated by `.`, `_`, `__` or dashes"
                ),
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ( ( [_.] | __ | -+ ) [a-z0-9]+ )*`
fn path_component_ok(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({})", self.full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn full(s: &str) -> String {
        Reference::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .full()
    }

    #[test]
    fn spec_examples() {
        assert_eq!(
            full("trace_exec"),
            "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"
        );
        assert_eq!(
            full("trace_exec:v0.42.0"),
            "ghcr.io/inspektor-gadget/gadget/trace_exec:v0.42.0"
        );
        assert_eq!(
            full("xyz/gadget/trace_exec"),
            "ghcr.io/xyz/gadget/trace_exec:latest"
        );
        assert_eq!(
            full("localhost:5000/trace_exec"),
            "localhost:5000/trace_exec:latest"
        );
        assert_eq!(full("foo.bar:443/a/b"), "foo.bar:443/a/b:latest");
        assert_eq!(
            Reference::parse("https://ghcr.io/inspektor-gadget/gadget/trace_exec"),
            Err(ReferenceError::Invalid {
                input: "https://ghcr.io/inspektor-gadget/gadget/trace_exec".into(),
                reason: "a scheme is not allowed; write `registry/repository[:tag]`".into(),
            })
        );
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
    }

    #[test]
    fn parts() {
        let r = Reference::parse("localhost:5000/a/b:v1").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.name(), "localhost:5000/a/b");

        let r = Reference::parse("trace_exec").unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "inspektor-gadget/gadget/trace_exec");
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn more_normalization() {
        // Explicit ghcr.io with one component also gets the gadget prefix.
        assert_eq!(
            full("ghcr.io/trace_exec"),
            "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"
        );
        assert_eq!(
            full("ghcr.io/inspektor-gadget/gadget/trace_exec:latest"),
            "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"
        );
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(full("docker.io/library/x"), "docker.io/library/x:latest");
        assert_eq!(full("127.0.0.1:5000/x:1"), "127.0.0.1:5000/x:1");
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        // A single `localhost` component is a repository, not a registry.
        assert_eq!(
            full("localhost"),
            "ghcr.io/inspektor-gadget/gadget/localhost:latest"
        );
        // Separators.
        assert_eq!(full("x/a.b_c__d--e/f"), "ghcr.io/x/a.b_c__d--e/f:latest");
        assert_eq!(
            full("my-gadget_x.y__z---w"),
            "ghcr.io/inspektor-gadget/gadget/my-gadget_x.y__z---w:latest"
        );
        // Tags.
        assert_eq!(full("x:_A-z.9"), "ghcr.io/inspektor-gadget/gadget/x:_A-z.9");
        let long_tag = "t".repeat(128);
        assert_eq!(
            full(&format!("x:{long_tag}")),
            format!("ghcr.io/inspektor-gadget/gadget/x:{long_tag}")
        );
    }

    #[test]
    fn digests() {
        let r = Reference::parse(&format!("trace_exec@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(
            r.full(),
            format!("ghcr.io/inspektor-gadget/gadget/trace_exec@sha256:{HEX}")
        );
        assert_eq!(r.display(), format!("trace_exec@sha256:{HEX}"));
        assert_eq!(
            r.without_digest().full(),
            "ghcr.io/inspektor-gadget/gadget/trace_exec:latest"
        );

        let r = Reference::parse(&format!("localhost:5000/x:v1@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.full(), format!("localhost:5000/x:v1@sha256:{HEX}"));
    }

    #[test]
    fn display_drops_default_prefix() {
        let r = Reference::parse("trace_exec:v1").unwrap();
        assert_eq!(r.display(), "trace_exec:v1");
        assert_eq!(r.display_name(), "trace_exec");
        assert_eq!(
            r.to_string(),
            "ghcr.io/inspektor-gadget/gadget/trace_exec:v1"
        );
        let r = Reference::parse("xyz/gadget/trace_exec").unwrap();
        assert_eq!(r.display(), "ghcr.io/xyz/gadget/trace_exec:latest");
        let r = Reference::parse("localhost:5000/trace_exec").unwrap();
        assert_eq!(r.display(), "localhost:5000/trace_exec:latest");
        assert_eq!(
            strip_display_prefix("ghcr.io/inspektor-gadget/gadget/a:b"),
            "a:b"
        );
    }

    #[test]
    fn round_trip_through_full() {
        for s in [
            "trace_exec",
            "trace_exec:v0.42.0",
            "xyz/gadget/trace_exec",
            "localhost:5000/trace_exec",
            "foo.bar:443/a/b",
        ] {
            let r = Reference::parse(s).unwrap();
            assert_eq!(Reference::parse(&r.full()).unwrap(), r);
            assert_eq!(Reference::parse(&r.display()).unwrap(), r);
        }
    }

    #[test]
    fn with_tag_and_from_parts() {
        let r = Reference::parse(&format!("trace_exec@sha256:{HEX}")).unwrap();
        assert_eq!(
            r.with_tag("v2").unwrap().full(),
            "ghcr.io/inspektor-gadget/gadget/trace_exec:v2"
        );
        assert!(r.with_tag("-bad").is_err());
        assert!(Reference::from_parts("ghcr.io", "a/b", None, None).is_err());
        assert!(Reference::from_parts("ghcr.io", "A/b", Some("x"), None).is_err());
        assert_eq!(
            Reference::from_parts("localhost:5000", "a/b", Some("x"), None)
                .unwrap()
                .full(),
            "localhost:5000/a/b:x"
        );
    }

    #[test]
    fn rejections() {
        let long_tag = format!("x:{}", "t".repeat(129));
        let long_name = format!("localhost/{}", "a".repeat(250));
        let cases: &[(&str, &str)] = &[
            ("https://ghcr.io/x", "scheme"),
            ("http://localhost:5000/x", "scheme"),
            ("oci://x", "scheme"),
            ("Trace_exec", "lowercase"),
            ("foo.bar/Trace", "lowercase"),
            ("x:", "tag"),
            ("x:-v1", "tag"),
            ("x:.v1", "tag"),
            ("x:v1+build", "tag"),
            (&long_tag, "longer than 128"),
            (&long_name, "longer than 255"),
            ("x@sha256:abc", "digest"),
            ("x@sha512:abc", "digest"),
            (":v1", "empty"),
            ("/x", "empty path component"),
            ("x/", "empty path component"),
            ("a//b", "empty path component"),
            ("localhost:5000/", "empty path component"),
            ("_x", "must be lowercase letters"),
            ("x_", "must be lowercase letters"),
            ("x..y", "must be lowercase letters"),
            ("x___y", "must be lowercase letters"),
            ("x-", "must be lowercase letters"),
            ("a/b$c", "must be lowercase letters"),
            ("foo.bar:port/x", "invalid port"),
            ("foo.bar:/x", "invalid port"),
            ("-foo.bar/x", "host name"),
            ("foo..bar/x", "host name"),
            ("foo_bar.com/x", "host name"),
            ("[::1/x", "unclosed"),
            ("trace exec", "character"),
            ("trace_exec\n", "character"),
        ];
        for (input, needle) in cases {
            let err = Reference::parse(input).expect_err(input);
            let msg = err.to_string();
            assert!(
                msg.contains(needle),
                "`{input}`: `{msg}` does not mention `{needle}`"
            );
            if let ReferenceError::Invalid { input: named, .. } = &err {
                assert_eq!(named, input);
                assert!(
                    msg.starts_with(&format!("invalid reference `{input}`")),
                    "{msg}"
                );
            }
        }
    }
}
