//! The image policy `run` and `pull` enforce before using an image: `--allowed-gadgets`, then
//! `--verify-image` with `--public-keys`.
//!
//! - Allowed gadgets (spec §1): an image is allowed when its normalized `repo:tag` or
//!   `repo@sha256:<index digest>` equals an entry, or starts with an entry that ends in `*` (the
//!   `*` dropped). An empty list allows everything. Entries without `*` are normalized like image
//!   references (`trace_open:v1` means `ghcr.io/inspektor-gadget/gadget/trace_open:v1`); prefix
//!   entries are compared as written, so write them in full (`ghcr.io/inspektor-gadget/gadget/*`).
//! - Verification: when public keys are configured and verification is not disabled, the image
//!   must carry a signature that verifies ([`super::verify`]); an unsigned image is refused.
//!   With no keys nothing is verified.
//!
//! No network: the image and its signatures must already be in the store.

use gadget_store::{Digest, Reference, Store, StoreError};
use serde::Serialize;

use super::keys::NamedKey;
use super::verify::{self, Verified, VerifyError};

/// What to enforce.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Verify signatures (when keys are configured). `--verify-image=false` turns it off.
    pub verify_image: bool,
    /// The keys a signature must verify with; none means no verification.
    pub public_keys: Vec<NamedKey>,
    /// Allowed-gadgets rules; empty allows every image.
    pub allowed_gadgets: Vec<String>,
}

/// An image the policy accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// The image, normalized.
    pub reference: String,
    /// Its index digest.
    pub digest: String,
    /// The signature that verified, when verification ran.
    pub verified: Option<Verified>,
}

/// Why the policy refused an image.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The image is not in the store.
    #[error("cannot read `{reference}` from the store")]
    Store {
        /// The image.
        reference: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Not matched by `--allowed-gadgets`.
    #[error("`{reference}` ({digest}) is not allowed by --allowed-gadgets ({rules})")]
    NotAllowed {
        /// The image, normalized.
        reference: String,
        /// Its index digest.
        digest: String,
        /// The rules, comma separated.
        rules: String,
    },
    /// Signature verification failed.
    #[error("refusing `{reference}`: signature verification failed")]
    Verification {
        /// The image.
        reference: String,
        /// Why.
        #[source]
        source: Box<VerifyError>,
    },
}

/// Whether `reference` (with index digest `digest`) matches the allowed-gadgets `rules`.
pub fn is_allowed(reference: &Reference, digest: &Digest, rules: &[String]) -> bool {
    if rules.is_empty() {
        return true;
    }
    let by_tag = reference.without_digest().full();
    let by_digest = format!("{}@{}", reference.name(), digest);
    let forms = [by_tag.as_str(), by_digest.as_str()];
    rules.iter().any(|rule| match rule.strip_suffix('*') {
        Some(prefix) => forms.iter().any(|f| f.starts_with(prefix)),
        None => {
            let normalized = Reference::parse(rule).map(|r| r.full()).ok();
            forms
                .iter()
                .any(|f| *f == rule || normalized.as_deref() == Some(*f))
        }
    })
}

/// Applies `policy` to `reference` in `store`.
pub fn check(
    store: &Store,
    reference: &Reference,
    policy: &Policy,
) -> Result<Accepted, PolicyError> {
    let store_err = |source| PolicyError::Store {
        reference: reference.display(),
        source,
    };
    let descriptor = store.resolve(reference).map_err(store_err)?;
    let digest = Digest::try_from(descriptor.digest()).map_err(|e| {
        store_err(StoreError::InvalidEntry {
            name: reference.full(),
            path: store.path().join("index.json"),
            reason: e.to_string(),
        })
    })?;
    if !is_allowed(reference, &digest, &policy.allowed_gadgets) {
        return Err(PolicyError::NotAllowed {
            reference: reference.display(),
            digest: digest.to_string(),
            rules: policy.allowed_gadgets.join(", "),
        });
    }
    let verified = if policy.verify_image && !policy.public_keys.is_empty() {
        let v = verify::verify(store, reference, &policy.public_keys).map_err(|source| {
            PolicyError::Verification {
                reference: reference.display(),
                source: Box::new(source),
            }
        })?;
        Some(v)
    } else {
        None
    };
    Ok(Accepted {
        reference: reference.full(),
        digest: digest.to_string(),
        verified,
    })
}

impl gadget_store::hint::Hint for PolicyError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            PolicyError::Verification { .. } => "check `--public-keys`, or pass `--verify-image=false` to use an unsigned image knowingly".to_string(),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(image: &str, rules: &[&str]) -> bool {
        let r = Reference::parse(image).unwrap();
        let d = Digest::of(b"index");
        let rules: Vec<String> = rules.iter().map(|s| s.to_string()).collect();
        is_allowed(&r, &d, &rules)
    }

    #[test]
    fn empty_rules_allow_everything() {
        assert!(allowed("trace_open:v1", &[]));
    }

    #[test]
    fn exact_rules_match_the_normalized_tag_or_digest() {
        let d = Digest::of(b"index");
        assert!(allowed(
            "trace_open:v1",
            &["ghcr.io/inspektor-gadget/gadget/trace_open:v1"]
        ));
        assert!(
            allowed("trace_open:v1", &["trace_open:v1"]),
            "entries are normalized"
        );
        assert!(!allowed("trace_open:v2", &["trace_open:v1"]));
        assert!(
            !allowed("trace_open", &["trace_open:v1"]),
            "`trace_open` means `:latest`"
        );
        assert!(allowed("trace_open", &["trace_open"]));
        assert!(allowed(
            "trace_open:v9",
            &[&format!("ghcr.io/inspektor-gadget/gadget/trace_open@{d}")]
        ));
        assert!(allowed("trace_open:v9", &[&format!("trace_open@{d}")]));
        assert!(!allowed(
            "trace_open:v9",
            &[&format!("ghcr.io/inspektor-gadget/gadget/trace_exec@{d}")]
        ));
        assert!(!allowed(
            "trace_open:v1",
            &["ghcr.io/inspektor-gadget/gadget/trace_open:v1x"]
        ));
    }

    #[test]
    fn star_rules_are_prefixes_of_the_full_forms() {
        assert!(allowed(
            "trace_open:v1",
            &["ghcr.io/inspektor-gadget/gadget/*"]
        ));
        assert!(allowed(
            "trace_open:v1",
            &["ghcr.io/inspektor-gadget/gadget/trace_*"]
        ));
        assert!(!allowed(
            "localhost:5000/g/trace_open:v1",
            &["ghcr.io/inspektor-gadget/gadget/*"]
        ));
        assert!(allowed(
            "localhost:5000/g/trace_open:v1",
            &["localhost:5000/*"]
        ));
        assert!(allowed("localhost:5000/g/trace_open:v1", &["*"]));
        assert!(allowed(
            "localhost:5000/g/trace_open:v1",
            &["localhost:5000/g/trace_open@sha256:*"]
        ));
        assert!(!allowed(
            "localhost:5000/g/trace_open:v1",
            &["localhost:5000/g/trace_exec*"]
        ));
        // A prefix is not normalized: a short one matches nothing under ghcr.io.
        assert!(!allowed("trace_open:v1", &["trace_*"]));
        assert!(
            allowed("trace_open:v1", &["nothing", "ghcr.io/*"]),
            "any rule may match"
        );
    }
}
