//! Registry credentials: docker's `config.json` format (`auths`, `credHelpers`, `credsStore`
//! through `docker-credential-<name>` helpers), which file to use, and writing it for
//! `login`/`logout`.
//!
//! Which file is read ([`AuthFileChoice::resolve`]), as upstream `ig` does: `--authfile`, else
//! `REGISTRY_AUTH_FILE`, else `/var/lib/ig/config.json` when it exists, else docker's
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). `login` writes the explicit
//! file, else `/var/lib/ig/config.json` as root (or when it exists), else docker's.
//!
//! Helpers are run with an argument vector (never a shell), found on `PATH` by name. Secrets
//! never reach `Debug`, logs or error messages: [`RegistryAuth`] prints `<redacted>`, and a
//! helper's output is only quoted in errors when it failed (a failing helper prints no secret).
//!
//! No network here: checking credentials against a registry is [`super::Client::check_login`].

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gadget_facts::env::{DOCKER_CONFIG, REGISTRY_AUTH_FILE};
use gadget_store::IoFailure;
use serde_json::{Map, Value};

use super::error::RegistryError;

/// Upstream `ig`'s default auth file.
pub const DEFAULT_AUTH_FILE: &str = "/var/lib/ig/config.json";

/// The key docker writes for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];
/// What helpers print when they have nothing for a server.
const HELPER_NOT_FOUND: &str = "credentials not found";
/// Largest auth file or helper answer we read.
const MAX_AUTH_FILE: u64 = 4 << 20;

/// How to authenticate to a registry. `Debug` never shows the password or token.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum RegistryAuth {
    /// No credentials.
    #[default]
    Anonymous,
    /// HTTP basic credentials (also used to obtain bearer tokens).
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
    /// A registry token used as is (`registrytoken` in config.json).
    Bearer {
        /// The token.
        token: String,
    },
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryAuth::Anonymous => f.write_str("Anonymous"),
            RegistryAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            RegistryAuth::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

impl RegistryAuth {
    /// The same credentials in oci-client's type (whose `Debug` is not redacted: never log it).
    pub(crate) fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            RegistryAuth::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            RegistryAuth::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone())
            }
            RegistryAuth::Bearer { token } => {
                oci_client::secrets::RegistryAuth::Bearer(token.clone())
            }
        }
    }

    /// Whether there are credentials at all.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, RegistryAuth::Anonymous)
    }
}

/// Where credentials came from, for messages and hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// None were found; the file that was searched, if any.
    None {
        /// The auth file read (it may not exist).
        file: Option<PathBuf>,
    },
    /// An `auths` entry of this file.
    AuthFile(PathBuf),
    /// A `docker-credential-<helper>` program.
    Helper(String),
    /// Given directly (e.g. by `login`).
    Explicit,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::None { file: Some(p) } => {
                write!(f, "none found in `{}`", p.display())
            }
            CredentialSource::None { file: None } => f.write_str("none found"),
            CredentialSource::AuthFile(p) => write!(f, "`{}`", p.display()),
            CredentialSource::Helper(h) => write!(f, "credential helper `docker-credential-{h}`"),
            CredentialSource::Explicit => f.write_str("the command line"),
        }
    }
}

/// Credentials for one registry and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// What to send.
    pub auth: RegistryAuth,
    /// Where it came from.
    pub source: CredentialSource,
}

impl Credentials {
    /// No credentials, with the file that was searched.
    pub fn anonymous(file: Option<PathBuf>) -> Self {
        Credentials {
            auth: RegistryAuth::Anonymous,
            source: CredentialSource::None { file },
        }
    }

    /// The `hint:` for a 401 from `registry`.
    pub(crate) fn unauthorized_hint(&self, registry: &str) -> String {
        match &self.source {
            CredentialSource::None { file } => {
                let place = file
                    .as_ref()
                    .map(|p| format!(" in `{}`", p.display()))
                    .unwrap_or_default();
                format!(
                    "no credentials for `{registry}` were found{place}: run `ig-image login \
                     {registry}`, or pass `--authfile FILE`"
                )
            }
            other => format!(
                "the credentials for `{registry}` from {other} were rejected: run `ig-image \
                 login {registry}` again"
            ),
        }
    }
}

/// Which auth file to use, and whether the user chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFileChoice {
    /// The file.
    pub path: PathBuf,
    /// Set by `--authfile` or `REGISTRY_AUTH_FILE`.
    pub explicit: bool,
}

impl AuthFileChoice {
    /// The file to read credentials from: `flag`, `REGISTRY_AUTH_FILE`, upstream's default when
    /// it exists, else docker's config.
    pub fn resolve(flag: Option<&Path>) -> Self {
        Self::choose(flag, false)
    }

    /// The file `login`/`logout` write: `flag`, `REGISTRY_AUTH_FILE`, upstream's default as root
    /// or when it exists, else docker's config.
    pub fn resolve_for_writing(flag: Option<&Path>) -> Self {
        Self::choose(flag, rustix::process::geteuid().is_root())
    }

    /// `flag` or `REGISTRY_AUTH_FILE`; else upstream's default when `prefer_default` or when it
    /// exists; else docker's config.
    fn choose(flag: Option<&Path>, prefer_default: bool) -> Self {
        if let Some(path) = explicit_auth_file(flag) {
            return AuthFileChoice {
                path,
                explicit: true,
            };
        }
        let default = PathBuf::from(DEFAULT_AUTH_FILE);
        let path = if prefer_default || default.exists() {
            default
        } else {
            docker_config_file()
        };
        AuthFileChoice {
            path,
            explicit: false,
        }
    }
}

fn explicit_auth_file(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(REGISTRY_AUTH_FILE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_file() -> PathBuf {
    if let Some(dir) = std::env::var_os(DOCKER_CONFIG).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("config.json");
    }
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("/"))
        .join(".docker")
        .join("config.json")
}

/// A docker `config.json`, with every key it holds kept (only `auths` entries we touch change).
#[derive(Debug, Clone)]
pub struct AuthFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// Where `login` put the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    /// In the file's `auths`.
    File(PathBuf),
    /// In a credential helper (the file records the registry under `auths` with no secret).
    Helper(String),
}

impl fmt::Display for StoredIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredIn::File(p) => write!(f, "{}", p.display()),
            StoredIn::Helper(h) => write!(f, "credential helper docker-credential-{h}"),
        }
    }
}

impl AuthFile {
    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let data = match fs::File::open(path) {
            Ok(f) => {
                let mut data = Vec::new();
                f.take(MAX_AUTH_FILE).read_to_end(&mut data).map_err(|e| {
                    RegistryError::Io(IoFailure {
                        action: "read the auth file",
                        path: path.to_owned(),
                        source: e,
                    })
                })?;
                data
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(RegistryError::Io(IoFailure {
                    action: "open the auth file",
                    path: path.to_owned(),
                    source: e,
                }));
            }
        };
        let doc = if data.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&data) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(RegistryError::AuthFile {
                        path: path.to_owned(),
                        reason: "the top level is not a JSON object".into(),
                    });
                }
                // serde_json's message names a line and column, never the content.
                Err(e) => {
                    return Err(RegistryError::AuthFile {
                        path: path.to_owned(),
                        reason: format!("not valid JSON ({e})"),
                    });
                }
            }
        };
        Ok(AuthFile {
            path: path.to_owned(),
            doc,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn helper_for(&self, registry: &str) -> Option<String> {
        if let Some(Value::Object(helpers)) = self.doc.get("credHelpers") {
            for (key, value) in helpers {
                if key_matches(key, registry) {
                    if let Some(name) = value.as_str().filter(|s| !s.is_empty()) {
                        return Some(name.to_owned());
                    }
                }
            }
        }
        None
    }

    fn creds_store(&self) -> Option<String> {
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    fn auth_entry(&self, registry: &str) -> Option<(&String, &Map<String, Value>)> {
        let Some(Value::Object(auths)) = self.doc.get("auths") else {
            return None;
        };
        // An exact key wins over a normalized match.
        auths
            .iter()
            .filter_map(|(k, v)| v.as_object().map(|o| (k, o)))
            .find(|(k, _)| k.as_str() == registry)
            .or_else(|| {
                auths
                    .iter()
                    .filter_map(|(k, v)| v.as_object().map(|o| (k, o)))
                    .find(|(k, _)| key_matches(k, registry))
            })
    }

    /// The credentials for `registry` (a host with optional port, as in references):
    /// `credHelpers`, then `auths`, then `credsStore`.
    pub fn credentials(&self, registry: &str) -> Result<Credentials, RegistryError> {
        if let Some(helper) = self.helper_for(registry) {
            return match helper_get(&helper, registry)? {
                Some(auth) => Ok(Credentials {
                    auth,
                    source: CredentialSource::Helper(helper),
                }),
                None => Ok(Credentials::anonymous(Some(self.path.clone()))),
            };
        }
        if let Some((key, entry)) = self.auth_entry(registry) {
            if let Some(auth) = decode_entry(entry).map_err(|reason| RegistryError::AuthFile {
                path: self.path.clone(),
                reason: format!("entry `auths.\"{key}\"`: {reason}"),
            })? {
                return Ok(Credentials {
                    auth,
                    source: CredentialSource::AuthFile(self.path.clone()),
                });
            }
        }
        if let Some(store) = self.creds_store() {
            if let Some(auth) = helper_get(&store, registry)? {
                return Ok(Credentials {
                    auth,
                    source: CredentialSource::Helper(store),
                });
            }
        }
        Ok(Credentials::anonymous(Some(self.path.clone())))
    }

    /// Records credentials for `registry`: in its helper when the file names one, else as
    /// `auths.<registry>.auth`. Call [`AuthFile::save`] afterwards.
    pub fn store(
        &mut self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<StoredIn, RegistryError> {
        let key = auth_key(registry);
        let helper = self.helper_for(registry).or_else(|| self.creds_store());
        let auths = self.auths_mut();
        // Drop other spellings of the same registry so the new entry is the one found.
        let stale: Vec<String> = auths
            .keys()
            .filter(|k| k.as_str() != key && key_matches(k, registry))
            .cloned()
            .collect();
        for k in stale {
            auths.remove(&k);
        }
        if let Some(helper) = helper {
            helper_store(&helper, &key, username, password)?;
            auths.insert(key, Value::Object(Map::new()));
            return Ok(StoredIn::Helper(helper));
        }
        let mut entry = Map::new();
        entry.insert(
            "auth".into(),
            Value::from(base64_encode(format!("{username}:{password}").as_bytes())),
        );
        auths.insert(key, Value::Object(entry));
        Ok(StoredIn::File(self.path.clone()))
    }

    /// Forgets `registry` (every spelling of it, and in its helper). Returns whether anything
    /// was removed. Call [`AuthFile::save`] afterwards.
    pub fn erase(&mut self, registry: &str) -> Result<bool, RegistryError> {
        let mut removed = false;
        if let Some(helper) = self.helper_for(registry).or_else(|| self.creds_store()) {
            removed |= helper_erase(&helper, &auth_key(registry))?;
        }
        if let Some(Value::Object(auths)) = self.doc.get_mut("auths") {
            let keys: Vec<String> = auths
                .keys()
                .filter(|k| key_matches(k, registry))
                .cloned()
                .collect();
            for k in keys {
                auths.remove(&k);
                removed = true;
            }
        }
        Ok(removed)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        match auths {
            Value::Object(m) => m,
            _ => unreachable!("set to an object above"),
        }
    }

    /// Writes the file atomically (temporary file, fsync, rename) with mode 0600, creating its
    /// directory (mode 0700) if needed.
    pub fn save(&self) -> Result<(), RegistryError> {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        let write_err = |source| RegistryError::AuthFileWrite {
            path: self.path.clone(),
            source,
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(write_err)?;
        }
        let mut text = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| write_err(io::Error::other(e)))?;
        text.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&dir)
            .map_err(write_err)?;
        tmp.write_all(&text)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(write_err)?;
        tmp.persist(&self.path).map_err(|e| write_err(e.error))?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// The `auths` key written for a registry (docker's spelling for Docker Hub).
fn auth_key(registry: &str) -> String {
    if DOCKER_HUB_HOSTS.contains(&registry) {
        DOCKER_HUB_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// Whether an `auths`/`credHelpers` key names `registry`: `host[:port]`, optionally with a
/// scheme and a path (`https://host/v1/`), Docker Hub's aliases being one registry.
fn key_matches(key: &str, registry: &str) -> bool {
    let host = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = host.split('/').next().unwrap_or(host);
    if host.eq_ignore_ascii_case(registry) {
        return true;
    }
    DOCKER_HUB_HOSTS.contains(&registry)
        && DOCKER_HUB_HOSTS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
}

/// The credentials in one `auths` entry, if it holds any.
fn decode_entry(entry: &Map<String, Value>) -> Result<Option<RegistryAuth>, String> {
    let field = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(token) = field("registrytoken") {
        return Ok(Some(RegistryAuth::Bearer {
            token: token.to_owned(),
        }));
    }
    if let Some(auth) = field("auth") {
        let raw = base64_decode(auth).ok_or("`auth` is not valid base64")?;
        let text = String::from_utf8(raw).map_err(|_| "`auth` is not UTF-8")?;
        let (username, password) = text
            .split_once(':')
            .ok_or("`auth` does not hold `user:password`")?;
        if field("identitytoken").is_some() {
            log::debug!(
                "auth file: `identitytoken` (OAuth refresh token) is not supported; using `auth`"
            );
        }
        return Ok(Some(RegistryAuth::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    if let (Some(username), Some(password)) = (field("username"), field("password")) {
        return Ok(Some(RegistryAuth::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    Ok(None)
}

fn helper_program(
    helper: &str,
    registry: &str,
    action: &'static str,
) -> Result<String, RegistryError> {
    let ok = !helper.is_empty()
        && helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !helper.starts_with('.');
    if !ok {
        return Err(RegistryError::CredentialHelper {
            helper: helper.to_owned(),
            action,
            registry: registry.to_owned(),
            reason: "not a valid helper name (letters, digits, `-`, `_`, `.`)".into(),
        });
    }
    Ok(format!("docker-credential-{helper}"))
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns (success, stdout,
/// stderr).
fn run_helper(
    helper: &str,
    registry: &str,
    action: &'static str,
    input: &[u8],
) -> Result<(bool, Vec<u8>, String), RegistryError> {
    let program = helper_program(helper, registry, action)?;
    let fail = |reason: String| RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        action,
        registry: registry.to_owned(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                fail(format!("`{program}` is not on PATH"))
            } else {
                fail(format!("cannot run `{program}`: {e}"))
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is not an error by itself.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot wait for `{program}`: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Ok((out.status.success(), out.stdout, stderr))
}

fn failure_text(stdout: &[u8], stderr: &str) -> String {
    // On failure helpers print their error to stdout (docker's convention), never a secret.
    let out = String::from_utf8_lossy(stdout);
    let text = [out.trim(), stderr]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    if text.is_empty() {
        "it exited with a failure and printed nothing".into()
    } else {
        text.chars().take(300).collect()
    }
}

fn helper_get(helper: &str, registry: &str) -> Result<Option<RegistryAuth>, RegistryError> {
    let server = auth_key(registry);
    let (ok, stdout, stderr) = run_helper(helper, registry, "get", server.as_bytes())?;
    if !ok {
        let text = failure_text(&stdout, &stderr);
        if text.to_ascii_lowercase().contains(HELPER_NOT_FOUND) {
            return Ok(None);
        }
        return Err(RegistryError::CredentialHelper {
            helper: helper.to_owned(),
            action: "get",
            registry: registry.to_owned(),
            reason: text,
        });
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    // The answer holds the secret: its content never goes into the error.
    let answer: Answer =
        serde_json::from_slice(&stdout).map_err(|e| RegistryError::CredentialHelper {
            helper: helper.to_owned(),
            action: "get",
            registry: registry.to_owned(),
            reason: format!(
                "its answer is not the expected JSON object (at line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    if answer.username == "<token>" {
        // An identity token: registries that accept it take it as a bearer token.
        return Ok(Some(RegistryAuth::Bearer {
            token: answer.secret,
        }));
    }
    Ok(Some(RegistryAuth::Basic {
        username: answer.username,
        password: answer.secret,
    }))
}

fn helper_store(
    helper: &str,
    server: &str,
    username: &str,
    password: &str,
) -> Result<(), RegistryError> {
    let mut body = BTreeMap::new();
    body.insert("ServerURL", server);
    body.insert("Username", username);
    body.insert("Secret", password);
    let input = serde_json::to_vec(&body).map_err(|e| RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        action: "store",
        registry: server.to_owned(),
        reason: e.to_string(),
    })?;
    let (ok, stdout, stderr) = run_helper(helper, server, "store", &input)?;
    if !ok {
        return Err(RegistryError::CredentialHelper {
            helper: helper.to_owned(),
            action: "store",
            registry: server.to_owned(),
            reason: failure_text(&stdout, &stderr),
        });
    }
    Ok(())
}

fn helper_erase(helper: &str, server: &str) -> Result<bool, RegistryError> {
    let (ok, stdout, stderr) = run_helper(helper, server, "erase", server.as_bytes())?;
    if ok {
        return Ok(true);
    }
    let text = failure_text(&stdout, &stderr);
    if text.to_ascii_lowercase().contains(HELPER_NOT_FOUND) {
        return Ok(false);
    }
    Err(RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        action: "erase",
        registry: server.to_owned(),
        reason: text,
    })
}

/// Standard base64 with padding (the `auth` field's encoding).
pub(crate) fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes standard or URL-safe base64, padding optional (docker and podman write it padded,
/// hand-written files sometimes do not); `None` when invalid.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    // The URL-safe characters are read as their standard counterparts, even mixed.
    let standard: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(standard).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "alice:s3cr3t", "ü:p@ss:word"] {
            let enc = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&enc).unwrap(), s.as_bytes(), "{s} -> {enc}");
        }
        assert_eq!(base64_encode(b"alice:pw"), "YWxpY2U6cHc=");
        assert_eq!(base64_decode("YWxpY2U6cHc").unwrap(), b"alice:pw");
        assert!(base64_decode("a*b").is_none());
        assert!(base64_decode("A").is_none());
        // URL-safe, unpadded and over-padded forms are read too.
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode(" YWJj== ").unwrap(), b"abc");
        assert_eq!(base64_decode("-/8").unwrap(), [0xfb, 0xff]);
        assert!(base64_decode("YW Jj").is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let basic = RegistryAuth::Basic {
            username: "alice".into(),
            password: "hunter2".into(),
        };
        let text = format!(
            "{basic:?} {:?}",
            Credentials {
                auth: basic.clone(),
                source: CredentialSource::Explicit,
            }
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("alice") && text.contains("<redacted>"),
            "{text}"
        );
        let bearer = RegistryAuth::Bearer {
            token: "tok-123".into(),
        };
        assert!(!format!("{bearer:?}").contains("tok-123"));
    }

    #[test]
    fn keys_match_registry_spellings() {
        assert!(key_matches("localhost:5000", "localhost:5000"));
        assert!(key_matches("https://localhost:5000", "localhost:5000"));
        assert!(key_matches("http://localhost:5000/v2/", "localhost:5000"));
        assert!(!key_matches("localhost:5001", "localhost:5000"));
        assert!(!key_matches("localhost", "localhost:5000"));
        // Upstream #2299: docker's Docker Hub key must be found for docker.io references.
        assert!(key_matches("https://index.docker.io/v1/", "docker.io"));
        assert!(key_matches("docker.io", "index.docker.io"));
        assert!(!key_matches("https://index.docker.io/v1/", "ghcr.io"));
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config.json");
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn auths_entries_are_decoded() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"{"auths": {
                "https://r1:5000": {"auth": "YWxpY2U6cHc="},
                "r2": {"username": "bob", "password": "x"},
                "r3": {"registrytoken": "tok"},
                "r4": {}
            }, "psFormat": "keep"}"#,
        );
        let f = AuthFile::load(&p).unwrap();
        assert_eq!(
            f.credentials("r1:5000").unwrap().auth,
            RegistryAuth::Basic {
                username: "alice".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            f.credentials("r1:5000").unwrap().source,
            CredentialSource::AuthFile(p.clone())
        );
        assert!(matches!(
            f.credentials("r2").unwrap().auth,
            RegistryAuth::Basic { .. }
        ));
        assert!(matches!(
            f.credentials("r3").unwrap().auth,
            RegistryAuth::Bearer { .. }
        ));
        assert!(f.credentials("r4").unwrap().auth.is_anonymous());
        assert!(f.credentials("other").unwrap().auth.is_anonymous());
    }

    #[test]
    fn bad_files_are_reported_without_content() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), r#"{"auths": {"r": {"auth": "sec ret!"}}}"#);
        let err = AuthFile::load(&p)
            .unwrap()
            .credentials("r")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not valid base64") && !err.contains("sec ret"),
            "{err}"
        );
        let p = write(d.path(), "{\"auths\": {\"r\": {\"auth\": \"hunter2");
        let err = AuthFile::load(&p).unwrap_err().to_string();
        assert!(
            err.contains("not valid JSON") && !err.contains("hunter2"),
            "{err}"
        );
        // A missing file is an empty configuration.
        let f = AuthFile::load(&d.path().join("missing.json")).unwrap();
        assert!(f.credentials("r").unwrap().auth.is_anonymous());
    }

    #[test]
    fn store_and_erase_keep_other_keys_and_write_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            r#"{"auths": {"https://r:5000/v1/": {"auth": "b2xkOm9sZA=="}, "other": {"auth": "eDp5"}}, "x-keep": [1]}"#,
        );
        let mut f = AuthFile::load(&p).unwrap();
        assert_eq!(
            f.store("r:5000", "alice", "pw").unwrap(),
            StoredIn::File(p.clone())
        );
        f.save().unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["x-keep"], serde_json::json!([1]));
        assert_eq!(v["auths"]["r:5000"]["auth"], "YWxpY2U6cHc=");
        assert!(v["auths"].get("https://r:5000/v1/").is_none());
        assert_eq!(v["auths"]["other"]["auth"], "eDp5");

        let mut f = AuthFile::load(&p).unwrap();
        assert!(f.erase("r:5000").unwrap());
        assert!(!f.erase("r:5000").unwrap());
        f.save().unwrap();
        let f = AuthFile::load(&p).unwrap();
        assert!(f.credentials("r:5000").unwrap().auth.is_anonymous());
        assert!(!f.credentials("other").unwrap().auth.is_anonymous());
    }

    #[test]
    fn save_creates_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new/dir/config.json");
        let mut f = AuthFile::load(&p).unwrap();
        f.store("docker.io", "u", "p").unwrap();
        f.save().unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert!(v["auths"][DOCKER_HUB_KEY]["auth"].is_string());
    }

    #[test]
    fn helper_names_are_validated() {
        assert!(helper_program("pass", "r", "get").is_ok());
        assert!(helper_program("ecr-login", "r", "get").is_ok());
        for bad in ["", "../x", "a b", "a;b", ".hidden", "x/y"] {
            assert!(helper_program(bad, "r", "get").is_err(), "{bad}");
        }
    }
}
