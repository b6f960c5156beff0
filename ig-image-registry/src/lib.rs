//! Registries: push and pull whole gadget images (index, every platform manifest, configs,
//! layers, signatures and referrers) between the local store and OCI registries, and the
//! credentials to do it.
//!
//! - [`client`]: [`Client`] / [`ClientConfig`] (plain HTTP only for the registries named,
//!   retries with backoff) and [`Repository`] (one authenticated repository), on `oci-client`
//!   with a small reqwest layer for what it lacks;
//! - [`auth`]: docker `config.json` (`auths`, `credHelpers`, `credsStore`), which auth file,
//!   `login`/`logout` writes; secrets never reach `Debug`, logs or errors;
//! - [`copy`]: [`push`] and [`pull`], the graph copy with the tag written last on both sides;
//! - [`referrers`]: legacy `.sig` tags, OCI 1.1 referrers, the `sha256-<hex>` tag schema;
//! - [`progress`]: the [`TransferReporter`] trait and the [`TransferReport`] summary;
//! - [`error`]: [`RegistryError`], with the registry's own message and a `hint:` line.
//!
//! The library never prints. Transfers run on a current-thread async runtime created per call,
//! so callers stay synchronous.
//!
//! ```no_run
//! use gadget_store::{Reference, Store};
//! use ig_image_registry::{self as registry, AuthFile, AuthFileChoice, Client, ClientConfig, NoProgress};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open_default()?;
//! let reference: Reference = "localhost:5000/gadgets/trace_open:v1".parse()?;
//! let client = Client::new(ClientConfig {
//!     insecure_registries: vec!["localhost:5000".into()],
//!     ..Default::default()
//! })?;
//! let auth_file = AuthFile::load(&AuthFileChoice::resolve(None).path)?;
//! let credentials = auth_file.credentials(reference.registry())?;
//! let report = registry::push(&store, &client, &reference, &credentials, &NoProgress)?;
//! println!("{} blobs uploaded", report.blobs_uploaded);
//! # Ok(()) }
//! ```

pub mod auth;
pub mod client;
pub mod copy;
pub mod error;
pub mod progress;
pub mod referrers;

pub use auth::{
    AuthFile, AuthFileChoice, CredentialSource, Credentials, DEFAULT_AUTH_FILE, RegistryAuth,
    StoredIn,
};
pub use client::{Access, Client, ClientConfig, Repository, RetryPolicy};
pub use copy::{pull, push};
pub use error::RegistryError;
pub use progress::{BlobOutcome, NoProgress, TransferReport, TransferReporter};

/// Logs in: checks `username`/`password` against `registry`, then records them in `file`
/// (or its credential helper) and saves it. Nothing is written when the registry refuses them.
pub fn login(
    client: &Client,
    file: &mut AuthFile,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<StoredIn, RegistryError> {
    let credentials = Credentials {
        auth: RegistryAuth::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        },
        source: CredentialSource::Explicit,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::ClientSetup {
            detail: format!("cannot start the async runtime: {e}"),
        })?;
    rt.block_on(client.check_login(registry, &credentials, &NoProgress))?;
    let stored = file.store(registry, username, password)?;
    file.save()?;
    Ok(stored)
}

/// Logs out: forgets `registry` in `file` (and its credential helper) and saves it. Returns
/// whether anything was removed.
pub fn logout(file: &mut AuthFile, registry: &str) -> Result<bool, RegistryError> {
    let removed = file.erase(registry)?;
    if removed {
        file.save()?;
    }
    Ok(removed)
}
