//! The registry client: [`Client`] (configuration, plain-HTTP exceptions, retries) and
//! [`Repository`] (one repository of one registry, authenticated for pull or push).
//!
//! Built on `oci-client` for what it does well: the auth handshake (bearer token from a
//! `WWW-Authenticate` challenge, or basic), blob uploads (upload session + monolithic `PUT`),
//! cross-repository mounts, manifest `PUT`s and digest-verified streaming blob downloads. A small
//! reqwest layer beside it does what oci-client 0.15 cannot:
//!
//! - `HEAD` of a blob (oci-client has no public "blob exists");
//! - `GET` of a manifest with an `Accept` list and the registry's answer kept raw (distribution
//!   2.8 answers 404 to an index unless `Accept` names the index type; oci-client's own
//!   `pull_manifest_raw` also re-runs its auth probe on every call for anonymous registries);
//! - the registry's own error message for every status (oci-client drops it on some paths);
//! - the `/v2/` ping that tells an open registry from a basic or bearer one, and `login`'s check.
//!
//! Every operation runs under [`Repository::retry`]: transient failures (connection reset,
//! timeout, 5xx, 429) are retried with exponential backoff and jitter; permanent ones (401, 403,
//! 404, digest mismatch, TLS) fail at once. Requests are described in messages by method and
//! path only; the `Authorization` header is marked sensitive.

use std::cell::Cell;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use gadget_facts::env::SSL_CERT_FILE;
use gadget_store::{Digest, IoFailure};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::auth::{Credentials, RegistryAuth, base64_encode};
use super::error::{
    Failure, RegistryError, Target, TooLong, body_message, from_oci, from_reqwest, from_status,
};
use super::progress::TransferReporter;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("ig-image/", env!("CARGO_PKG_VERSION"));

pub use gadget_store::media_types::{
    DOCKER_LIST as MEDIA_TYPE_DOCKER_LIST, DOCKER_MANIFEST as MEDIA_TYPE_DOCKER_MANIFEST,
    INDEX as MEDIA_TYPE_INDEX, MANIFEST as MEDIA_TYPE_MANIFEST,
};
/// Everything a manifest `GET` accepts.
pub const MANIFEST_TYPES: &[&str] = &[
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST,
];
/// Largest manifest accepted (what registries commonly allow).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// How transient failures are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Pause after the first failure; doubled after each further one.
    pub first_delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based), with ±25 % jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .first_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = 0.75 + f64::from(nanos % 1000) / 2000.0;
        base.mul_f64(jitter)
    }
}

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host[:port]`, exactly as written in references) reached over plain HTTP.
    /// Every other registry, loopback ones included, is reached over HTTPS.
    pub insecure_registries: Vec<String>,
    /// Blobs moved at once.
    pub concurrency: usize,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed between two reads of an answer.
    pub read_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            concurrency: 8,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Whether a repository is opened to read or to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read.
    Pull,
    /// Read and write.
    Push,
}

impl Access {
    fn name(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "push",
        }
    }

    fn oci(self) -> oci_client::RegistryOperation {
        match self {
            Access::Pull => oci_client::RegistryOperation::Pull,
            Access::Push => oci_client::RegistryOperation::Push,
        }
    }
}

/// A registry client. Cheap to share by reference; holds the connection pools.
pub struct Client {
    oci: oci_client::Client,
    http: reqwest::Client,
    config: ClientConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What `GET /v2/` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// Nothing: the registry is open.
    None,
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// Their digest (checked against what was asked for).
    pub digest: Digest,
    /// The media type (`Content-Type`, else the body's `mediaType`).
    pub media_type: String,
}

impl Client {
    /// A client with `config`. Trusts the built-in (Mozilla) roots plus the PEM bundle named by
    /// `SSL_CERT_FILE`, if set.
    pub fn new(config: ClientConfig) -> Result<Self, RegistryError> {
        let extra_roots = extra_roots()?;
        let protocol = if config.insecure_registries.is_empty() {
            oci_client::client::ClientProtocol::Https
        } else {
            oci_client::client::ClientProtocol::HttpsExcept(config.insecure_registries.clone())
        };
        let oci_config = oci_client::client::ClientConfig {
            protocol,
            // One POST and one PUT per blob instead of POST, PATCH..., PUT.
            use_monolithic_push: true,
            platform_resolver: None,
            max_concurrent_upload: config.concurrency.max(1),
            max_concurrent_download: config.concurrency.max(1),
            connect_timeout: Some(config.connect_timeout),
            read_timeout: Some(config.read_timeout),
            user_agent: USER_AGENT,
            extra_root_certificates: extra_roots
                .iter()
                .map(|pem| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            ..Default::default()
        };
        // `Client::new` would fall back to a default configuration on error; we want the error.
        let oci =
            oci_client::Client::try_from(oci_config).map_err(|e| RegistryError::ClientSetup {
                detail: e.to_string(),
            })?;
        let mut http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout);
        for pem in &extra_roots {
            let cert =
                reqwest::Certificate::from_pem(pem).map_err(|e| RegistryError::ClientSetup {
                    detail: format!("a certificate in ${SSL_CERT_FILE}: {e}"),
                })?;
            http = http.add_root_certificate(cert);
        }
        let http = http.build().map_err(|e| RegistryError::ClientSetup {
            detail: super::error::flatten(&e),
        })?;
        Ok(Client { oci, http, config })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `http` for the registries named in `insecure_registries`, `https` for every other.
    pub fn scheme(&self, registry: &str) -> &'static str {
        if self
            .config
            .insecure_registries
            .iter()
            .any(|r| r == registry)
        {
            "http"
        } else {
            "https"
        }
    }

    /// Opens `registry/repository` for `access` with `credentials`: pings `/v2/`, and runs the
    /// auth handshake the registry asks for (bearer token or basic).
    pub async fn open<'a>(
        &'a self,
        registry: &str,
        repository: &str,
        credentials: &Credentials,
        access: Access,
        reporter: &'a dyn TransferReporter,
    ) -> Result<Repository<'a>, RegistryError> {
        let oci_ref = oci_client::Reference::with_tag(
            registry.to_owned(),
            repository.to_owned(),
            "latest".to_owned(),
        );
        let host = oci_ref.resolve_registry().to_owned();
        let scheme = self.scheme(registry);
        let mut repo = Repository {
            client: self,
            reporter,
            target: Target {
                registry: registry.to_owned(),
                repository: repository.to_owned(),
                access: access.name(),
                unauthorized_hint: credentials.unauthorized_hint(registry),
            },
            root: format!("{scheme}://{host}/v2/"),
            base: format!("{scheme}://{host}/v2/{repository}"),
            oci_ref,
            auth_header: None,
            retries: Cell::new(0),
        };
        let (challenge, message) = repo
            .retry("contact the registry (GET /v2/)", || repo.ping())
            .await?;
        log::debug!("{registry}: /v2/ challenge {challenge:?}");
        if challenge == Challenge::Basic && credentials.auth.is_anonymous() {
            // Every request would be refused: say so now, with the registry's message.
            return Err(from_status(&repo.target, "GET /v2/", 401, message).error);
        }
        let oci_auth = credentials.auth.to_oci();
        let header = match (&challenge, &credentials.auth) {
            // An open registry: no handshake. (Telling oci-client about credentials here would
            // make it re-probe /v2/ before every request.)
            (Challenge::None, _) => None,
            (Challenge::Basic | Challenge::Bearer { .. }, _) => {
                let token = repo
                    .retry("authenticate", || async {
                        self.oci
                            .auth(&repo.oci_ref, &oci_auth, access.oci())
                            .await
                            .map_err(|e| from_oci(&repo.target, "authentication", e))
                    })
                    .await?;
                match (token, &credentials.auth) {
                    (Some(token), _) => Some(sensitive(&format!("Bearer {token}"))),
                    (None, RegistryAuth::Basic { username, password }) => {
                        Some(sensitive(&format!(
                            "Basic {}",
                            base64_encode(format!("{username}:{password}").as_bytes())
                        )))
                    }
                    (None, RegistryAuth::Bearer { token }) => {
                        Some(sensitive(&format!("Bearer {token}")))
                    }
                    (None, RegistryAuth::Anonymous) => None,
                }
            }
        };
        repo.auth_header = header;
        Ok(repo)
    }

    /// Checks `credentials` against `registry` as `docker login` does: basic auth on `/v2/`, or
    /// a token request to the bearer realm. Succeeds on an open registry.
    pub async fn check_login(
        &self,
        registry: &str,
        credentials: &Credentials,
        reporter: &dyn TransferReporter,
    ) -> Result<(), RegistryError> {
        let scheme = self.scheme(registry);
        let host = oci_client::Reference::with_tag(
            registry.to_owned(),
            "library/x".to_owned(),
            "latest".to_owned(),
        )
        .resolve_registry()
        .to_owned();
        let repo = Repository {
            client: self,
            reporter,
            target: Target {
                registry: registry.to_owned(),
                repository: String::new(),
                access: "login",
                unauthorized_hint: format!(
                    "check the user name and password for `{registry}` (nothing was written)"
                ),
            },
            root: format!("{scheme}://{host}/v2/"),
            base: format!("{scheme}://{host}/v2"),
            oci_ref: oci_client::Reference::with_tag(
                registry.to_owned(),
                "library/x".to_owned(),
                "latest".to_owned(),
            ),
            auth_header: None,
            retries: Cell::new(0),
        };
        let (challenge, _) = repo
            .retry("contact the registry (GET /v2/)", || repo.ping())
            .await?;
        let (username, password) = match &credentials.auth {
            RegistryAuth::Basic { username, password } => (username.as_str(), password.as_str()),
            _ => return Ok(()),
        };
        let basic = sensitive(&format!(
            "Basic {}",
            base64_encode(format!("{username}:{password}").as_bytes())
        ));
        let (url, request) = match &challenge {
            Challenge::None => return Ok(()),
            Challenge::Basic => (repo.root.clone(), "GET /v2/".to_owned()),
            Challenge::Bearer { realm, service } => {
                let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Invalid {
                    registry: registry.to_owned(),
                    what: "bearer realm".into(),
                    reason: e.to_string(),
                })?;
                if let Some(service) = service {
                    url.query_pairs_mut().append_pair("service", service);
                }
                (url.to_string(), "GET <token realm>".to_owned())
            }
        };
        repo.retry("check the credentials", || async {
            let resp = self
                .http
                .get(&url)
                .header(AUTHORIZATION, basic.clone())
                .send()
                .await
                .map_err(|e| from_reqwest(&repo.target, &request, &e))?;
            let status = resp.status().as_u16();
            if status == 200 {
                return Ok(());
            }
            let body = resp.bytes().await.unwrap_or_default();
            Err(from_status(
                &repo.target,
                &request,
                status,
                body_message(&body),
            ))
        })
        .await
    }
}

/// The certificates of the PEM bundle named by `SSL_CERT_FILE`, one PEM block each.
fn extra_roots() -> Result<Vec<Vec<u8>>, RegistryError> {
    let Some(path) = std::env::var_os(SSL_CERT_FILE).filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let path = std::path::PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        RegistryError::Io(IoFailure {
            action: "read the certificates of SSL_CERT_FILE",
            path: path.clone(),
            source: e,
        })
    })?;
    let blocks = split_pem(&text);
    if blocks.is_empty() {
        return Err(RegistryError::ClientSetup {
            detail: format!(
                "${SSL_CERT_FILE} (`{}`) holds no PEM certificate",
                path.display()
            ),
        });
    }
    Ok(blocks)
}

fn split_pem(text: &str) -> Vec<Vec<u8>> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        out.push(format!("{}\n", &rest[start..stop]).into_bytes());
        rest = &rest[stop..];
    }
    out
}

fn sensitive(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// Parses the first challenge of a `WWW-Authenticate` header.
fn parse_challenge(header: &str) -> Challenge {
    let trimmed = header.trim();
    let (scheme, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Basic;
    }
    let mut realm = String::new();
    let mut service = None;
    let mut s = rest;
    while !s.is_empty() {
        let Some((key, after)) = s.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = value.to_owned(),
            "service" => service = Some(value.to_owned()),
            _ => {}
        }
        s = remaining.trim_start_matches(',').trim_start();
    }
    Challenge::Bearer { realm, service }
}

/// One repository of one registry, authenticated.
pub struct Repository<'a> {
    client: &'a Client,
    reporter: &'a dyn TransferReporter,
    target: Target,
    /// `scheme://host/v2/`.
    root: String,
    /// `scheme://host/v2/<repository>`.
    base: String,
    oci_ref: oci_client::Reference,
    auth_header: Option<HeaderValue>,
    retries: Cell<usize>,
}

impl std::fmt::Debug for Repository<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("base", &self.base)
            .field("authenticated", &self.auth_header.is_some())
            .finish_non_exhaustive()
    }
}

/// Where downloaded bytes go: a file, with a size limit and a progress callback.
pub(crate) struct LimitedWriter<'w> {
    file: std::fs::File,
    written: u64,
    limit: u64,
    progress: &'w dyn Fn(u64),
}

impl<'w> LimitedWriter<'w> {
    pub(crate) fn new(file: std::fs::File, limit: u64, progress: &'w dyn Fn(u64)) -> Self {
        LimitedWriter {
            file,
            written: 0,
            limit,
            progress,
        }
    }
}

impl tokio::io::AsyncWrite for LimitedWriter<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let received = self.written + buf.len() as u64;
        if received > self.limit {
            return Poll::Ready(Err(std::io::Error::other(TooLong {
                limit: self.limit,
                received,
            })));
        }
        // Local file writes are fast and blobs are small: blocking here is fine on the
        // transfer's single thread.
        if let Err(e) = self.file.write_all(buf) {
            return Poll::Ready(Err(e));
        }
        self.written = received;
        (self.progress)(buf.len() as u64);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.file.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl<'a> Repository<'a> {
    /// The registry host as written in references.
    pub fn registry(&self) -> &str {
        &self.target.registry
    }

    /// The repository path.
    pub fn repository(&self) -> &str {
        &self.target.repository
    }

    /// Transient failures retried so far.
    pub fn retries(&self) -> usize {
        self.retries.get()
    }

    /// Where progress goes.
    pub fn reporter(&self) -> &'a dyn TransferReporter {
        self.reporter
    }

    /// The client.
    pub fn client(&self) -> &'a Client {
        self.client
    }

    /// Runs `op` until it succeeds, fails permanently, or runs out of attempts.
    pub(crate) async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = &self.client.config.retry;
        let attempts = policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(f) if f.transient && attempt < attempts => {
                    log::debug!("{what}: attempt {attempt} failed: {}", f.error);
                    self.reporter
                        .retrying(what, attempt, attempts, &f.error.to_string());
                    self.retries.set(self.retries.get() + 1);
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                }
                Err(f) if f.transient => {
                    return Err(RegistryError::RetriesExhausted {
                        what: what.to_owned(),
                        attempts,
                        last: Box::new(f.error),
                    });
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let mut b = self.client.http.request(method, url);
        if let Some(h) = &self.auth_header {
            b = b.header(AUTHORIZATION, h.clone());
        }
        b
    }

    fn path_of(&self, url: &str) -> String {
        url.find("/v2/")
            .map_or_else(|| url.to_owned(), |i| url[i..].to_owned())
    }

    /// `GET /v2/`: the challenge, and the registry's message when it answered 401.
    async fn ping(&self) -> Result<(Challenge, String), Failure> {
        let request = "GET /v2/";
        let resp = self
            .client
            .http
            .get(&self.root)
            .send()
            .await
            .map_err(|e| from_reqwest(&self.target, request, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok((Challenge::None, String::new()));
        }
        if status == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .map_or(Challenge::Basic, parse_challenge);
            let body = resp.bytes().await.unwrap_or_default();
            return Ok((challenge, body_message(&body)));
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(from_status(
            &self.target,
            request,
            status.as_u16(),
            body_message(&body),
        ))
    }

    /// Whether the repository has the blob (`HEAD`).
    pub(crate) async fn blob_exists(&self, digest: &Digest) -> Result<bool, Failure> {
        let url = format!("{}/blobs/{digest}", self.base);
        let request = format!("HEAD {}", self.path_of(&url));
        let resp = self
            .request(Method::HEAD, &url)
            .send()
            .await
            .map_err(|e| from_reqwest(&self.target, &request, &e))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => {
                let message = match resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                {
                    Some(challenge) => format!("authentication required ({challenge})"),
                    None => "(an answer to HEAD has no body)".into(),
                };
                Err(from_status(&self.target, &request, s, message))
            }
        }
    }

    /// `GET url` with `Accept: accept`: the 200 response and the request as messages name it,
    /// `None` when the status is one of `absent`, else the registry's error.
    async fn get_if_present(
        &self,
        url: &str,
        accept: &str,
        absent: &[u16],
    ) -> Result<Option<(reqwest::Response, String)>, Failure> {
        let request = format!("GET {}", self.path_of(url));
        let resp = self
            .request(Method::GET, url)
            .header(ACCEPT, accept)
            .send()
            .await
            .map_err(|e| from_reqwest(&self.target, &request, &e))?;
        let status = resp.status().as_u16();
        if absent.contains(&status) {
            return Ok(None);
        }
        if status != 200 {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(from_status(
                &self.target,
                &request,
                status,
                body_message(&body),
            ));
        }
        Ok(Some((resp, request)))
    }

    /// `GET` a manifest by tag or digest; `None` on 404. The bytes are checked against the
    /// digest asked for, or the `Docker-Content-Digest` header for a tag.
    pub(crate) async fn get_manifest(
        &self,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<FetchedManifest>, Failure> {
        let url = format!("{}/manifests/{reference}", self.base);
        let Some((resp, request)) = self
            .get_if_present(&url, &accept.join(", "), &[404])
            .await?
        else {
            return Ok(None);
        };
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let bytes = self.read_limited(resp, MAX_MANIFEST_SIZE, &request).await?;
        let digest = Digest::of(&bytes);
        let expected = Digest::parse(reference)
            .ok()
            .map(|d| d.to_string())
            .or(header_digest);
        if let Some(expected) = expected {
            if expected != digest.as_str() {
                return Err(Failure::permanent(RegistryError::DigestMismatch {
                    registry: self.target.registry.clone(),
                    what: format!("manifest `{reference}` of `{}`", self.target.repository),
                    expected,
                    actual: digest.to_string(),
                }));
            }
        }
        let body_type = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
            v.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let media_type = match (body_type, content_type) {
            (Some(t), _) => t,
            (None, Some(t)) if MANIFEST_TYPES.contains(&t.as_str()) => t,
            _ => {
                // Upstream's Go encoder omits `mediaType` in manifests; tell by the shape.
                let is_index = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .is_some_and(|v| gadget_store::graph::has_manifests(&v));
                if is_index {
                    MEDIA_TYPE_INDEX
                } else {
                    MEDIA_TYPE_MANIFEST
                }
                .to_owned()
            }
        };
        Ok(Some(FetchedManifest {
            bytes,
            digest,
            media_type,
        }))
    }

    async fn read_limited(
        &self,
        mut resp: reqwest::Response,
        limit: u64,
        request: &str,
    ) -> Result<Vec<u8>, Failure> {
        if let Some(len) = resp.content_length() {
            if len > limit {
                return Err(Failure::permanent(RegistryError::SizeMismatch {
                    registry: self.target.registry.clone(),
                    what: format!("answer to {request}"),
                    expected: limit,
                    actual: len,
                }));
            }
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| from_reqwest(&self.target, request, &e))?
        {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > limit {
                return Err(Failure::permanent(RegistryError::SizeMismatch {
                    registry: self.target.registry.clone(),
                    what: format!("answer to {request}"),
                    expected: limit,
                    actual: out.len() as u64,
                }));
            }
        }
        Ok(out)
    }

    fn oci_ref_for(&self, reference: &str) -> oci_client::Reference {
        if reference.starts_with("sha256:") {
            oci_client::Reference::with_digest(
                self.target.registry.clone(),
                self.target.repository.clone(),
                reference.to_owned(),
            )
        } else {
            oci_client::Reference::with_tag(
                self.target.registry.clone(),
                self.target.repository.clone(),
                reference.to_owned(),
            )
        }
    }

    /// `PUT` a manifest at a tag or its digest (through oci-client).
    pub(crate) async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let request = format!("PUT /v2/{}/manifests/{reference}", self.target.repository);
        let content_type = HeaderValue::from_str(media_type).map_err(|_| {
            Failure::permanent(RegistryError::Invalid {
                registry: self.target.registry.clone(),
                what: "media type".into(),
                reason: format!("`{media_type}` is not a valid header value"),
            })
        })?;
        self.client
            .oci
            .push_manifest_raw(&self.oci_ref_for(reference), bytes.to_vec(), content_type)
            .await
            .map(|_| ())
            .map_err(|e| from_oci(&self.target, &request, e))
    }

    /// Uploads a blob (a new upload session each time, so a retry restarts it cleanly).
    pub(crate) async fn push_blob(&self, digest: &Digest, data: &[u8]) -> Result<(), Failure> {
        let request = format!("upload of blob `{digest}`");
        if data.is_empty() {
            // oci-client refuses empty bodies; empty blobs are legal.
            return self.push_empty_blob(digest, &request).await;
        }
        self.client
            .oci
            .push_blob(&self.oci_ref, data, digest.as_str())
            .await
            .map(|_| ())
            .map_err(|e| from_oci(&self.target, &request, e))
    }

    async fn push_empty_blob(&self, digest: &Digest, request: &str) -> Result<(), Failure> {
        let url = format!("{}/blobs/uploads/", self.base);
        let resp = self
            .request(Method::POST, &url)
            .header(CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(|e| from_reqwest(&self.target, request, &e))?;
        let resp = self
            .expect_status(resp, StatusCode::ACCEPTED, request)
            .await?;
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Failure::permanent(RegistryError::Invalid {
                    registry: self.target.registry.clone(),
                    what: "upload session".into(),
                    reason: "no Location header".into(),
                })
            })?;
        let mut url = reqwest::Url::parse(&self.root)
            .and_then(|root| root.join(location))
            .map_err(|e| {
                Failure::permanent(RegistryError::Invalid {
                    registry: self.target.registry.clone(),
                    what: "upload location".into(),
                    reason: e.to_string(),
                })
            })?;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let resp = self
            .request(Method::PUT, url.as_str())
            .header(CONTENT_LENGTH, 0)
            .header(CONTENT_TYPE, "application/octet-stream")
            .send()
            .await
            .map_err(|e| from_reqwest(&self.target, request, &e))?;
        self.expect_status(resp, StatusCode::CREATED, request)
            .await
            .map(|_| ())
    }

    /// `resp` when its status is `expected`, else the registry's error (status and message).
    async fn expect_status(
        &self,
        resp: reqwest::Response,
        expected: StatusCode,
        request: &str,
    ) -> Result<reqwest::Response, Failure> {
        if resp.status() == expected {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        Err(from_status(
            &self.target,
            request,
            status,
            body_message(&body),
        ))
    }

    /// Mounts a blob from another repository of the same registry. `Ok(false)` when the
    /// registry declined (it answers 202 and opens an upload instead, e.g. when the token does
    /// not cover the source repository).
    pub(crate) async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, Failure> {
        let request = format!("mount of blob `{digest}` from `{from}`");
        let source = oci_client::Reference::with_tag(
            self.target.registry.clone(),
            from.to_owned(),
            "latest".to_owned(),
        );
        match self
            .client
            .oci
            .mount_blob(&self.oci_ref, &source, digest.as_str())
            .await
        {
            Ok(()) => Ok(true),
            // oci-client reports any 2xx other than 201 as a spec violation: not mounted.
            Err(oci_client::errors::OciDistributionError::SpecViolationError(_)) => Ok(false),
            Err(e) => {
                let f = from_oci(&self.target, &request, e);
                // A mount the registry refuses is not fatal: the blob is uploaded instead.
                if f.transient {
                    Err(f)
                } else {
                    log::debug!("{request}: {}", f.error);
                    Ok(false)
                }
            }
        }
    }

    /// Streams a blob into `out` (through oci-client, which checks its digest as it goes).
    pub(crate) async fn pull_blob(
        &self,
        digest: &Digest,
        out: LimitedWriter<'_>,
    ) -> Result<(), Failure> {
        let request = format!("download of blob `{digest}`");
        self.client
            .oci
            .pull_blob(&self.oci_ref, digest.as_str(), out)
            .await
            .map_err(|e| from_oci(&self.target, &request, e))
    }

    /// The referrers of `subject` through the OCI 1.1 referrers API, or `None` when the
    /// registry does not have the API (distribution 2.8 answers 404).
    pub(crate) async fn referrers_api(
        &self,
        subject: &Digest,
    ) -> Result<Option<Vec<Value>>, Failure> {
        let url = format!("{}/referrers/{subject}", self.base);
        let Some((resp, request)) = self
            .get_if_present(&url, MEDIA_TYPE_INDEX, &[404, 400, 405])
            .await?
        else {
            return Ok(None);
        };
        let is_index = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(MEDIA_TYPE_INDEX));
        let bytes = self.read_limited(resp, MAX_MANIFEST_SIZE, &request).await?;
        let doc: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            // Some registries answer unknown routes with 200 and an HTML page.
            Err(_) if !is_index => return Ok(None),
            Err(e) => {
                return Err(Failure::permanent(RegistryError::Invalid {
                    registry: self.target.registry.clone(),
                    what: "referrers index".into(),
                    reason: e.to_string(),
                }));
            }
        };
        match doc.get("manifests") {
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            _ if !is_index => Ok(None),
            _ => Ok(Some(Vec::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        assert_eq!(parse_challenge("Basic realm=\"test\""), Challenge::Basic);
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:a:pull\""
            ),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            }
        );
        assert_eq!(
            parse_challenge("bearer realm=https://t/x"),
            Challenge::Bearer {
                realm: "https://t/x".into(),
                service: None
            }
        );
    }

    #[test]
    fn pem_bundles_are_split() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        let text = format!("# a comment\n{one}\n\n{one}\ntrailing");
        let blocks = split_pem(&text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0], format!("{one}\n").into_bytes());
        assert!(split_pem("nothing").is_empty());
    }

    #[test]
    fn retry_delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(1) <= Duration::from_millis(125));
        assert!(p.delay(3) >= Duration::from_millis(300));
        assert!(p.delay(30) <= Duration::from_millis(2500));
    }

    #[test]
    fn only_listed_registries_are_plain_http() {
        let c = Client::new(ClientConfig {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.scheme("127.0.0.1:5000"), "http");
        // Loopback is not downgraded unless named.
        assert_eq!(c.scheme("127.0.0.1:5001"), "https");
        assert_eq!(c.scheme("localhost:5000"), "https");
    }
}
