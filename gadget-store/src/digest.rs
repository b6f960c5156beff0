//! SHA-256 content digests (`sha256:<64 lowercase hex>`), the only algorithm the store accepts.
//!
//! Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The digest algorithm prefix, including the colon.
const PREFIX: &str = "sha256:";

/// A validated `sha256:<64 lowercase hex>` digest.
///
/// ```
/// use gadget_store::Digest;
/// let d = Digest::of(b"{}");
/// assert_eq!(
///     d.as_str(),
///     "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
/// );
/// assert_eq!(d, d.as_str().parse().unwrap());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

/// Why a string is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The algorithm is not `sha256`.
    #[error("invalid digest `{input}`: only `sha256:<64 lowercase hex digits>` is supported")]
    Algorithm {
        /// The rejected input.
        input: String,
    },
    /// The encoded part is not 64 lowercase hex digits.
    #[error("invalid digest `{input}`: expected 64 lowercase hex digits after `sha256:`")]
    Encoded {
        /// The rejected input.
        input: String,
    },
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(data).into())
    }

    /// Wraps a raw SHA-256 hash.
    pub fn from_sha256(hash: [u8; 32]) -> Self {
        Self(format!("{PREFIX}{}", hex::encode(hash)))
    }

    /// Parses and validates `sha256:<64 lowercase hex>`.
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        let Some(encoded) = input.strip_prefix(PREFIX) else {
            return Err(DigestError::Algorithm {
                input: input.to_owned(),
            });
        };
        Self::from_hex(encoded).map_err(|_| DigestError::Encoded {
            input: input.to_owned(),
        })
    }

    /// Builds a digest from its 64 lowercase hex digits (no `sha256:` prefix).
    pub fn from_hex(encoded: &str) -> Result<Self, DigestError> {
        if is_sha256_hex(encoded) {
            Ok(Self(format!("{PREFIX}{encoded}")))
        } else {
            Err(DigestError::Encoded {
                input: encoded.to_owned(),
            })
        }
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits, without the algorithm (the blob's file name in a layout).
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The same digest as an [`oci_spec::image::Digest`].
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        match oci_spec::image::Digest::from_str(&self.0) {
            Ok(d) => d,
            // Invariant: `self` was validated with a stricter grammar than oci-spec's.
            Err(e) => unreachable!("oci-spec rejects the valid digest `{}`: {e}", self.0),
        }
    }
}

/// Whether `s` is exactly 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        Self::parse(d.as_ref())
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> Self {
        d.to_oci()
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(d: Digest) -> Self {
        d.to_oci()
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_JSON: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn of_matches_known_value() {
        assert_eq!(Digest::of(b"{}").as_str(), EMPTY_JSON);
        assert_eq!(
            Digest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_round_trips() {
        let d: Digest = EMPTY_JSON.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY_JSON);
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.to_oci().to_string(), EMPTY_JSON);
        assert_eq!(Digest::try_from(&d.to_oci()).unwrap(), d);
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256:",
            "sha512:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "SHA256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "sha256:44136FA355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8aa",
            "sha256:../../etc/passwd",
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ] {
            let err = Digest::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn serde_validates() {
        let d: Digest = serde_json::from_str(&format!("\"{EMPTY_JSON}\"")).unwrap();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{EMPTY_JSON}\"")
        );
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
