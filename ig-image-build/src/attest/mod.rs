//! Supply-chain attestations of gadget images: what went into a build and who built it.
//!
//! - [`inventory`]: collects, once per build, every file the compilers read (clang's own
//!   dependency output), their digests and origins, the tools and versions, Cargo.lock crates,
//!   the objects and the WASM module.
//! - [`sbom`]: the SPDX 2.3 JSON document made from it (`build --sbom`).
//! - [`provenance`]: the SLSA v1 provenance statement (`build --provenance`).
//! - [`attach`]: stores them as OCI 1.1 referrers of the image index, plain and, with a key,
//!   as signed DSSE envelopes in sigstore bundles (as `cosign attest` does); also `attest`.
//! - Verifying them (`verify --attestation TYPE`) is signing's work:
//!   `ig_image_sign::attestation`.
//! - [`memo`]: remembers in the build cache which referrers a build's documents became, so a
//!   rebuild with unchanged inputs renders and writes nothing when the store holds them.
//!
//! Every document is a function of the build's inputs: two builds with one
//! `SOURCE_DATE_EPOCH` give byte-identical SBOMs and provenance.

pub mod attach;
pub mod inventory;
pub mod memo;
pub mod provenance;
pub mod sbom;

use std::sync::Arc;

use gadget_facts::media_types::{SLSA_PROVENANCE_V1, SPDX_JSON, SPDX_PREDICATE};
use ig_image_sign::keys::PrivateKey;

/// What `build` attaches to each image.
#[derive(Clone, Default)]
pub struct AttestOptions {
    /// `--sbom`.
    pub sbom: bool,
    /// `--provenance`.
    pub provenance: bool,
    /// `--key`: also sign both as DSSE envelopes in sigstore bundles.
    pub key: Option<Arc<PrivateKey>>,
}

impl std::fmt::Debug for AttestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestOptions")
            .field("sbom", &self.sbom)
            .field("provenance", &self.provenance)
            .field("key", &self.key.as_ref().map(|k| format!("{k:?}")))
            .finish()
    }
}

impl AttestOptions {
    /// Whether anything is to be attached.
    pub fn any(&self) -> bool {
        self.sbom || self.provenance
    }
}

/// The documents `opts` asks for, made from `inv`.
pub fn documents(inv: &inventory::Inventory, opts: &AttestOptions) -> Vec<attach::Document> {
    let mut docs = Vec::new();
    if opts.sbom {
        let spdx = sbom::render(inv);
        let predicate: serde_json::Value =
            serde_json::from_slice(&spdx).unwrap_or(serde_json::Value::Null);
        docs.push(attach::Document {
            kind: "sbom".into(),
            predicate_type: SPDX_PREDICATE.into(),
            statement: attach::statement(
                &inv.repository,
                &inv.index_digest,
                SPDX_PREDICATE,
                predicate,
            ),
            plain: Some((SPDX_JSON.into(), spdx)),
        });
    }
    if opts.provenance {
        let statement = provenance::render(inv);
        docs.push(attach::Document {
            kind: "provenance".into(),
            predicate_type: SLSA_PROVENANCE_V1.into(),
            plain: Some((provenance::IN_TOTO_MEDIA_TYPE.into(), statement.clone())),
            statement,
        });
    }
    docs
}
