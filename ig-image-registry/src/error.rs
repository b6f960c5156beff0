//! Errors of registry operations: each names the registry and the object at fault, keeps the
//! registry's own message, and ends with a `hint:` line when there is something to do about it.
//!
//! Also the classification of failures into transient (retried with backoff: connection
//! resets, timeouts, 5xx, 429) and permanent (401, 403, 404, digest mismatch, TLS, protocol
//! errors: reported at once). No secret ever reaches a message: requests are described by method
//! and path, never by headers.

use std::io;
use std::path::PathBuf;

use gadget_store::{IoFailure, StoreError};
use oci_client::errors::{OciDistributionError, OciErrorCode};

/// Everything that can go wrong talking to a registry, reading credentials, or storing what was
/// pulled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// 401: no credentials, or credentials the registry refused.
    #[error("{registry} refused access to `{repository}` (401 Unauthorized): {message}")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// The registry's own message.
        message: String,
        /// What to do (depends on where credentials came from).
        hint: String,
    },
    /// 403: authenticated, but not allowed.
    #[error("{registry} denied {access} access to `{repository}` (403 Forbidden): {message}")]
    Denied {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// `pull` or `push`.
        access: &'static str,
        /// The registry's own message.
        message: String,
    },
    /// 404 for something that must exist.
    #[error("{what} not found in {registry}/{repository}: {message}")]
    NotFound {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// What was looked up (e.g. ``manifest `v1` ``).
        what: String,
        /// The registry's own message.
        message: String,
    },
    /// Any other HTTP status.
    #[error("{registry} answered {status} to {request}: {message}")]
    Http {
        /// The registry host.
        registry: String,
        /// Method and path, e.g. `PUT /v2/a/manifests/v1`.
        request: String,
        /// The status code.
        status: u16,
        /// The registry's own message.
        message: String,
    },
    /// The connection failed or broke (after retries, when wrapped in
    /// [`RegistryError::RetriesExhausted`]).
    #[error("connection to {registry} failed during {request}: {detail}")]
    Connection {
        /// The registry host.
        registry: String,
        /// What was being done.
        request: String,
        /// The cause, flattened.
        detail: String,
    },
    /// TLS failed: typically a plain-HTTP registry reached over HTTPS.
    #[error("TLS with {registry} failed: {detail}")]
    Tls {
        /// The registry host.
        registry: String,
        /// The cause, flattened.
        detail: String,
    },
    /// Content does not hash to the digest it was asked for.
    #[error(
        "{what} from {registry} does not match its digest: expected `{expected}`, got `{actual}`"
    )]
    DigestMismatch {
        /// The registry host.
        registry: String,
        /// What was fetched.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// Content of the wrong size.
    #[error("{what} from {registry} has {actual} bytes where its descriptor says {expected}")]
    SizeMismatch {
        /// The registry host.
        registry: String,
        /// What was fetched.
        what: String,
        /// The size in the descriptor (or the limit).
        expected: u64,
        /// The size received (at least).
        actual: u64,
    },
    /// The registry sent something that is not what the protocol says.
    #[error("{registry} sent an invalid {what}: {reason}")]
    Invalid {
        /// The registry host.
        registry: String,
        /// What was invalid.
        what: String,
        /// Why.
        reason: String,
    },
    /// A transient failure kept happening.
    #[error("gave up on {what} after {attempts} attempts")]
    RetriesExhausted {
        /// What was being done.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<RegistryError>,
    },
    /// The auth file could not be read or parsed.
    #[error("cannot use the auth file `{path}`: {reason}")]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The auth file could not be written.
    #[error("cannot write the auth file `{path}`")]
    AuthFileWrite {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A `docker-credential-*` helper failed.
    #[error(
        "credential helper `docker-credential-{helper}` failed to {action} for `{registry}`: {reason}"
    )]
    CredentialHelper {
        /// The helper's name (after `docker-credential-`).
        helper: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// The registry.
        registry: String,
        /// What went wrong (its stderr, never its stdout, which may hold the secret).
        reason: String,
    },
    /// A local store operation failed.
    #[error("cannot {action}")]
    Store {
        /// What we were doing.
        action: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// A local file operation failed.
    #[error(transparent)]
    Io(IoFailure),
    /// The request cannot be done as asked (e.g. a platform the image does not have).
    #[error("{reason}")]
    Unsupported {
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {detail}")]
    ClientSetup {
        /// The cause, flattened.
        detail: String,
    },
}

impl RegistryError {
    /// Wraps a store error with what we were doing.
    pub fn store(action: impl Into<String>, source: StoreError) -> Self {
        RegistryError::Store {
            action: action.into(),
            source,
        }
    }
}

impl From<StoreError> for RegistryError {
    fn from(source: StoreError) -> Self {
        RegistryError::store("use the local store", source)
    }
}

/// A failed attempt: the error and whether trying again may help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: RegistryError,
    pub(crate) transient: bool,
}

impl Failure {
    pub(crate) fn permanent(error: RegistryError) -> Self {
        Failure {
            error,
            transient: false,
        }
    }

    pub(crate) fn transient(error: RegistryError) -> Self {
        Failure {
            error,
            transient: true,
        }
    }
}

impl From<RegistryError> for Failure {
    fn from(error: RegistryError) -> Self {
        Failure::permanent(error)
    }
}

/// Where a request went, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) registry: String,
    pub(crate) repository: String,
    /// `pull` or `push`.
    pub(crate) access: &'static str,
    /// The `hint:` for a 401.
    pub(crate) unauthorized_hint: String,
}

/// Statuses worth retrying.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// The registry's message from an error body: the `errors` envelope's `CODE: message` lines,
/// else the text itself (shortened).
pub(crate) fn body_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        if !env.errors.is_empty() {
            return env
                .errors
                .iter()
                .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{}: {}", e.code, e.message),
                    (false, true) => e.code.clone(),
                    _ => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short.replace('\n', " ")
}

/// A failure from an HTTP status and the registry's message.
pub(crate) fn from_status(target: &Target, request: &str, status: u16, message: String) -> Failure {
    let error = match status {
        401 => RegistryError::Unauthorized {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            message,
            hint: target.unauthorized_hint.clone(),
        },
        403 => RegistryError::Denied {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            access: target.access,
            message,
        },
        404 => RegistryError::NotFound {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            what: request.to_owned(),
            message,
        },
        _ => RegistryError::Http {
            registry: target.registry.clone(),
            request: request.to_owned(),
            status,
            message,
        },
    };
    Failure {
        error,
        transient: is_transient_status(status),
    }
}

/// The causes of an error, joined (reqwest's own message is short; the cause says what broke).
pub(crate) fn flatten(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut cur = error.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Whether a transport error is a TLS failure (never worth retrying). reqwest does not expose
/// rustls' error type, so the causes are read as text.
fn is_tls_failure(error: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cur {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("invalid peer certificate")
            || text.contains("invalidcontenttype")
            || text.contains("received corrupt message")
            || text.contains("tls handshake")
            || text.contains("unknownissuer")
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A failure from a transport-level reqwest error.
pub(crate) fn from_reqwest(target: &Target, request: &str, error: &reqwest::Error) -> Failure {
    if let Some(status) = error.status() {
        return from_status(target, request, status.as_u16(), "(no message)".into());
    }
    let detail = flatten(error);
    if is_tls_failure(error) {
        return Failure::permanent(RegistryError::Tls {
            registry: target.registry.clone(),
            detail,
        });
    }
    if error.is_builder() {
        return Failure::permanent(RegistryError::ClientSetup { detail });
    }
    Failure::transient(RegistryError::Connection {
        registry: target.registry.clone(),
        request: request.to_owned(),
        detail,
    })
}

/// Marks our own size-limit failure inside an `io::Error` that goes through oci-client.
#[derive(Debug)]
pub(crate) struct TooLong {
    pub(crate) limit: u64,
    pub(crate) received: u64,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {} bytes, more than the {} expected",
            self.received, self.limit
        )
    }
}

impl std::error::Error for TooLong {}

/// A failure from an oci-client error.
pub(crate) fn from_oci(target: &Target, request: &str, error: OciDistributionError) -> Failure {
    match error {
        OciDistributionError::RequestError(e) => from_reqwest(target, request, &e),
        OciDistributionError::ServerError { code, message, .. } => {
            from_status(target, request, code, body_message(message.as_bytes()))
        }
        OciDistributionError::UnauthorizedError { .. } => {
            from_status(target, request, 401, "authentication required".into())
        }
        OciDistributionError::AuthenticationFailure(reason) => {
            Failure::permanent(RegistryError::Unauthorized {
                registry: target.registry.clone(),
                repository: target.repository.clone(),
                message: format!(
                    "the token service refused the credentials: {}",
                    body_message(reason.as_bytes())
                ),
                hint: target.unauthorized_hint.clone(),
            })
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let message = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let status = envelope.errors.first().map_or(400, |e| match e.code {
                OciErrorCode::Unauthorized => 401,
                OciErrorCode::Denied => 403,
                OciErrorCode::Toomanyrequests => 429,
                OciErrorCode::BlobUnknown
                | OciErrorCode::ManifestUnknown
                | OciErrorCode::NameUnknown
                | OciErrorCode::NotFound => 404,
                _ => 400,
            });
            from_status(target, request, status, message)
        }
        OciDistributionError::DigestError(e) => {
            let (expected, actual) = match &e {
                oci_client::errors::DigestError::VerificationError { expected, actual } => {
                    (expected.clone(), actual.clone())
                }
                other => (String::new(), other.to_string()),
            };
            Failure::permanent(RegistryError::DigestMismatch {
                registry: target.registry.clone(),
                what: request.to_owned(),
                expected,
                actual,
            })
        }
        OciDistributionError::IoError(e) => {
            if let Some(too_long) = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<TooLong>())
            {
                return Failure::permanent(RegistryError::SizeMismatch {
                    registry: target.registry.clone(),
                    what: request.to_owned(),
                    expected: too_long.limit,
                    actual: too_long.received,
                });
            }
            Failure::permanent(RegistryError::Io(IoFailure {
                action: "write what the registry sent to",
                path: PathBuf::from("the staging file"),
                source: e,
            }))
        }
        other => Failure::permanent(RegistryError::Invalid {
            registry: target.registry.clone(),
            what: format!("answer to {request}"),
            reason: other.to_string(),
        }),
    }
}

impl gadget_store::hint::Hint for RegistryError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            RegistryError::Unauthorized { hint, .. } => hint.clone(),
            RegistryError::Denied {
                access, repository, ..
            } => format!("the account needs {access} permission on `{repository}`"),
            RegistryError::Tls { registry, .. } => format!(
                "if {registry} serves plain HTTP, pass `--insecure-registries {registry}` \
                 (loopback registries are not downgraded automatically)"
            ),
            RegistryError::AuthFileWrite { .. } => "pass `--authfile FILE` or set \
                REGISTRY_AUTH_FILE to a writable path"
                .to_string(),
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            registry: "r:5000".into(),
            repository: "a/b".into(),
            access: "push",
            unauthorized_hint: "run `ig-image login r:5000`".into(),
        }
    }

    #[test]
    fn statuses_are_classified() {
        for (status, transient) in [
            (500, true),
            (502, true),
            (503, true),
            (429, true),
            (408, true),
            (401, false),
            (403, false),
            (404, false),
            (400, false),
        ] {
            let f = from_status(&target(), "GET /v2/", status, "m".into());
            assert_eq!(f.transient, transient, "{status}");
        }
        let f = from_status(&target(), "PUT x", 401, "authentication required".into());
        let text = f.error.to_string();
        assert!(
            text.contains("(401 Unauthorized): authentication required"),
            "{text}"
        );
        assert!(
            !text.contains("hint"),
            "the hint is data, not message: {text}"
        );
        assert_eq!(
            gadget_store::hint::Hint::hints(&f.error),
            ["run `ig-image login r:5000`"]
        );
    }

    #[test]
    fn registry_messages_are_extracted() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[]}]}"#;
        assert_eq!(body_message(body), "UNAUTHORIZED: authentication required");
        assert_eq!(body_message(b"404 page not found\n"), "404 page not found");
        assert_eq!(body_message(b""), "(no message)");
        let long = vec![b'x'; 1000];
        assert!(body_message(&long).chars().count() <= 301);
    }

    #[test]
    fn oci_client_errors_map_to_named_failures() {
        let f = from_oci(
            &target(),
            "POST /v2/a/b/blobs/uploads/",
            OciDistributionError::ServerError {
                code: 503,
                url: "http://r:5000/v2/a/b/blobs/uploads/".into(),
                message: "busy".into(),
            },
        );
        assert!(f.transient);
        let f = from_oci(
            &target(),
            "GET blob",
            OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
                expected: "sha256:aa".into(),
                actual: "sha256:bb".into(),
            }),
        );
        assert!(!f.transient);
        assert!(matches!(f.error, RegistryError::DigestMismatch { .. }));
        let io = io::Error::other(TooLong {
            limit: 2,
            received: 5,
        });
        let f = from_oci(&target(), "GET blob", OciDistributionError::IoError(io));
        assert!(matches!(
            f.error,
            RegistryError::SizeMismatch {
                expected: 2,
                actual: 5,
                ..
            }
        ));
    }
}
