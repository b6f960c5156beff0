//! Copying an image's whole graph between the local store and a registry: [`push`] and
//! [`pull`].
//!
//! The graph is the index, every platform manifest, their configs and layers, and the
//! signatures and referrers stored with the image (see [`super::referrers`]). Both directions
//! keep one rule: **the tag is written last**, so a transfer that fails part-way never leaves a
//! tag pointing at missing content, on either side.
//!
//! Push: blobs first, several at once — skipped when the registry has them (`HEAD`), mounted
//! from another repository of the same registry when a local image there holds them, else
//! uploaded — then platform manifests by digest, then signatures and referrers (keeping the
//! registry's `sha256-<hex>` referrers tag index when it has no referrers API), then the tag.
//!
//! Pull: the index and manifests are fetched and checked against their digests; blobs missing
//! locally are streamed to a staging directory inside the store, each checked against its digest
//! and size; then one store transaction writes every blob through
//! [`gadget_store::Transaction::write_blob_from_reader`] (which verifies the digest again before
//! the blob becomes visible), records referrers, tags signatures, and tags the image last. Blobs
//! are staged outside the store lock so `ig` is never blocked by a slow network.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::stream;
use gadget_facts::platform::Platform;
use gadget_store::graph::{self, Children};
use gadget_store::{Digest, IoFailure, Reference, Store, Transaction};
use oci_spec::image::{Descriptor, MediaType};
use serde_json::Value;

use super::auth::Credentials;
use super::client::{
    Access, Client, LimitedWriter, MANIFEST_TYPES, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
    Repository,
};
use super::error::{Failure, RegistryError};
use super::progress::{BlobOutcome, TransferReport, TransferReporter};
use super::referrers::{self, LocalArtifacts};
use gadget_store::signatures::{referrer_descriptor, referrers_tag, signature_tag};

/// A manifest or index, with its exact bytes.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub(crate) digest: Digest,
    pub(crate) media_type: String,
    pub(crate) bytes: Vec<u8>,
}

impl Doc {
    fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            MediaType::from(self.media_type.as_str()),
            self.bytes.len() as u64,
            self.digest.to_oci(),
        )
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// A config or layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobRef {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
}

/// A document and everything below it. `docs` lists children before parents; the root last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    pub(crate) docs: Vec<Doc>,
    pub(crate) blobs: Vec<BlobRef>,
}

impl Graph {
    fn root(&self) -> &Doc {
        self.docs.last().expect("a graph has a root")
    }
}

/// A media type `pull` and `push` treat as a document (what the registry client accepts as a
/// manifest).
fn is_document_type(media_type: &str) -> bool {
    MANIFEST_TYPES.contains(&media_type)
}

/// The media type of a document: the descriptor's, else the body's, else by shape.
fn doc_media_type(descriptor_type: Option<&str>, doc: &Value) -> String {
    if let Some(t) = descriptor_type.filter(|t| is_document_type(t)) {
        return t.to_owned();
    }
    if let Some(t) = doc.get("mediaType").and_then(Value::as_str) {
        return t.to_owned();
    }
    if graph::has_manifests(doc) {
        MEDIA_TYPE_INDEX.to_owned()
    } else {
        MEDIA_TYPE_MANIFEST.to_owned()
    }
}

/// A descriptor's digest, size and media type.
fn parse_descriptor(d: &Value, what: &str) -> Result<(Digest, u64, Option<String>), RegistryError> {
    let unusable = |problem: String| RegistryError::Unsupported {
        reason: format!("{what}: {problem}"),
    };
    let digest = d
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|s| Digest::parse(s).ok())
        .ok_or_else(|| unusable("a descriptor has no usable sha256 digest".into()))?;
    let size = d
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| unusable(format!("the descriptor of `{digest}` has no size")))?;
    let media_type = d
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((digest, size, media_type))
}

/// Reads the graph under a stored document.
fn local_graph(
    tx: &Transaction<'_>,
    root: &Digest,
    media_type: Option<&str>,
    what: &str,
) -> Result<Graph, RegistryError> {
    let mut graph = Graph::default();
    let mut seen_blobs = BTreeSet::new();
    let mut seen_docs = BTreeSet::new();
    local_walk(
        tx,
        root,
        media_type,
        what,
        &mut graph,
        &mut seen_docs,
        &mut seen_blobs,
        0,
    )?;
    Ok(graph)
}

#[allow(clippy::too_many_arguments, reason = "a private recursive walk")]
fn local_walk(
    tx: &Transaction<'_>,
    digest: &Digest,
    media_type: Option<&str>,
    what: &str,
    graph: &mut Graph,
    seen_docs: &mut BTreeSet<Digest>,
    seen_blobs: &mut BTreeSet<Digest>,
    depth: usize,
) -> Result<(), RegistryError> {
    if depth > 8 {
        return Err(RegistryError::Unsupported {
            reason: format!("{what}: documents nested deeper than 8 levels"),
        });
    }
    if !seen_docs.insert(digest.clone()) {
        return Ok(());
    }
    let bytes = tx
        .read_blob(digest)
        .map_err(|e| RegistryError::store(format!("read {what}"), e))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Unsupported {
        reason: format!("{what}: document `{digest}` is not JSON ({e})"),
    })?;
    let children = Children::of(&doc);
    for d in children.manifests.iter().copied() {
        let (child, _, mt) = parse_descriptor(d, what)?;
        local_walk(
            tx,
            &child,
            mt.as_deref(),
            what,
            graph,
            seen_docs,
            seen_blobs,
            depth + 1,
        )?;
    }
    for b in children.content() {
        let (d, size, _) = parse_descriptor(b, what)?;
        if seen_blobs.insert(d.clone()) {
            graph.blobs.push(BlobRef { digest: d, size });
        }
    }
    graph.docs.push(Doc {
        digest: digest.clone(),
        media_type: doc_media_type(media_type, &doc),
        bytes,
    });
    Ok(())
}

/// Counters shared by the futures of one transfer (one thread).
#[derive(Debug, Default)]
struct Stats {
    bytes_sent: Cell<u64>,
    bytes_received: Cell<u64>,
    uploaded: Cell<usize>,
    mounted: Cell<usize>,
    downloaded: Cell<usize>,
    skipped: Cell<usize>,
    manifests: Cell<usize>,
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get() + n);
}

fn inc(cell: &Cell<usize>) {
    cell.set(cell.get() + 1);
}

fn runtime() -> Result<tokio::runtime::Runtime, RegistryError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::ClientSetup {
            detail: format!("cannot start the async runtime: {e}"),
        })
}

fn platforms_of(index: &Value) -> Vec<String> {
    Children::of(index)
        .manifests
        .into_iter()
        .filter_map(|m| {
            let p = m.get("platform")?;
            Some(format!(
                "{}/{}",
                p.get("os").and_then(Value::as_str).unwrap_or("linux"),
                p.get("architecture").and_then(Value::as_str)?
            ))
        })
        .collect()
}

/// What a push sends.
#[derive(Debug)]
struct PushPlan {
    image: Graph,
    /// (tag, graph) of legacy signatures.
    signatures: Vec<(String, Graph)>,
    /// (subject, graph) of referrers.
    referrers: Vec<(Digest, Graph)>,
    /// Blob → other repositories of the same registry (from local tags) that hold it.
    mount_sources: HashMap<Digest, Vec<String>>,
}

fn plan_push(store: &Store, reference: &Reference) -> Result<PushPlan, RegistryError> {
    store.transaction(|tx| {
        let descriptor = tx.resolve(reference).map_err(|e| {
            RegistryError::store(format!("find `{}` in the store", reference.full()), e)
        })?;
        let root =
            Digest::try_from(descriptor.digest()).map_err(|e| RegistryError::Unsupported {
                reason: format!("`{}`: {e}", reference.full()),
            })?;
        let media_type = descriptor.media_type().to_string();
        let image = local_graph(tx, &root, Some(&media_type), &reference.full())?;
        let subjects: Vec<Digest> = image.docs.iter().rev().map(|d| d.digest.clone()).collect();
        let LocalArtifacts {
            signatures,
            referrers,
        } = referrers::find_local(tx, &reference.name(), &subjects)?;
        let mut sig_graphs = Vec::new();
        for (subject, digest, mt) in signatures {
            let what = format!("signature of `{subject}`");
            sig_graphs.push((
                signature_tag(&subject),
                local_graph(tx, &digest, Some(&mt), &what)?,
            ));
        }
        let mut ref_graphs = Vec::new();
        for (subject, digest, mt) in referrers {
            let what = format!("referrer `{digest}` of `{subject}`");
            ref_graphs.push((subject, local_graph(tx, &digest, Some(&mt), &what)?));
        }

        // Mount sources: other local images of the same registry.
        let mut mount_sources: HashMap<Digest, Vec<String>> = HashMap::new();
        let wanted: BTreeSet<&Digest> = image.blobs.iter().map(|b| &b.digest).collect();
        for t in tx.list() {
            if t.is_referrers_tag() {
                continue;
            }
            let Some(other) = t.parsed() else { continue };
            if other.registry() != reference.registry()
                || other.repository() == reference.repository()
            {
                continue;
            }
            let Ok(d) = Digest::try_from(t.descriptor.digest()) else {
                continue;
            };
            let mt = t.descriptor.media_type().to_string();
            let Ok(g) = local_graph(tx, &d, Some(&mt), &t.reference) else {
                continue;
            };
            for b in g.blobs.iter().filter(|b| wanted.contains(&b.digest)) {
                let repos = mount_sources.entry(b.digest.clone()).or_default();
                if !repos.iter().any(|r| r == other.repository()) {
                    repos.push(other.repository().to_owned());
                }
            }
        }
        Ok::<_, RegistryError>(PushPlan {
            image,
            signatures: sig_graphs,
            referrers: ref_graphs,
            mount_sources,
        })
    })
}

/// Pushes the image `reference` (tag in the store) to its registry, with its signatures and
/// referrers. See the module docs for the order of writes.
pub fn push(
    store: &Store,
    client: &Client,
    reference: &Reference,
    credentials: &Credentials,
    reporter: &dyn TransferReporter,
) -> Result<TransferReport, RegistryError> {
    let start = Instant::now();
    let Some(tag) = reference.tag().map(str::to_owned) else {
        return Err(RegistryError::Unsupported {
            reason: format!(
                "cannot push `{}`: a push needs a tag (the registry tag to write)",
                reference.full()
            ),
        });
    };
    let plan = plan_push(store, reference)?;
    let rt = runtime()?;
    rt.block_on(async {
        let repo = client
            .open(
                reference.registry(),
                reference.repository(),
                credentials,
                Access::Push,
                reporter,
            )
            .await?;
        let stats = Stats::default();

        // 1. Blobs (image, signatures, referrers), several at once.
        let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
        for g in std::iter::once(&plan.image)
            .chain(plan.signatures.iter().map(|(_, g)| g))
            .chain(plan.referrers.iter().map(|(_, g)| g))
        {
            for b in &g.blobs {
                blobs.insert(b.digest.clone(), b.size);
            }
        }
        reporter.started(&reference.full(), blobs.len(), blobs.values().sum());
        let results: Vec<Result<(), RegistryError>> = stream::iter(blobs.iter())
            .map(|(digest, size)| push_blob(&repo, store, digest, *size, &plan, &stats))
            .buffer_unordered(client.config().concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;

        // 2. Platform manifests (and nested indexes) by digest.
        let (root, children) = plan.image.docs.split_last().expect("a graph has a root");
        put_docs_by_digest(&repo, children, &stats).await?;

        // 3. Signatures and referrers, with the index in place (by digest) for their subjects.
        let has_artifacts = !plan.signatures.is_empty() || !plan.referrers.is_empty();
        if has_artifacts {
            put_doc(&repo, root, root.digest.as_str(), &stats).await?;
        }
        for (sig_tag, g) in &plan.signatures {
            let (sig_root, sig_children) = g.docs.split_last().expect("a graph has a root");
            put_docs_by_digest(&repo, sig_children, &stats).await?;
            put_doc(&repo, sig_root, sig_tag, &stats).await?;
        }
        let mut by_subject: BTreeMap<Digest, Vec<Value>> = BTreeMap::new();
        for (subject, g) in &plan.referrers {
            put_docs_by_digest(&repo, &g.docs, &stats).await?;
            let r = g.root();
            by_subject
                .entry(subject.clone())
                .or_default()
                .push(referrer_descriptor(&r.media_type, &r.bytes));
        }
        for (subject, descriptors) in &by_subject {
            if referrers::update_remote_tag_index(&repo, subject, descriptors).await? {
                inc(&stats.manifests);
                reporter.note(&format!(
                    "{} has no referrers API: updated its referrers tag `{}`",
                    reference.registry(),
                    referrers_tag(subject)
                ));
            }
        }

        // 4. The tag, last.
        put_doc(&repo, root, &tag, &stats).await?;

        Ok(TransferReport {
            reference: reference.full(),
            digest: root.digest.to_string(),
            source_digest: None,
            platforms: platforms_of(&root.json()),
            bytes_sent: stats.bytes_sent.get(),
            bytes_received: stats.bytes_received.get(),
            blobs_uploaded: stats.uploaded.get(),
            blobs_mounted: stats.mounted.get(),
            blobs_downloaded: 0,
            blobs_skipped: stats.skipped.get(),
            manifests: stats.manifests.get(),
            signatures: plan.signatures.len(),
            referrers: plan.referrers.len(),
            retries: repo.retries(),
            millis: start.elapsed().as_millis(),
        })
    })
}

async fn push_blob(
    repo: &Repository<'_>,
    store: &Store,
    digest: &Digest,
    size: u64,
    plan: &PushPlan,
    stats: &Stats,
) -> Result<(), RegistryError> {
    let reporter = repo.reporter();
    reporter.blob_started(digest, size);
    let exists = repo
        .retry(&format!("check blob `{digest}`"), || {
            repo.blob_exists(digest)
        })
        .await?;
    if exists {
        inc(&stats.skipped);
        reporter.blob_finished(digest, BlobOutcome::Skipped);
        return Ok(());
    }
    for from in plan.mount_sources.get(digest).into_iter().flatten() {
        let mounted = repo
            .retry(&format!("mount blob `{digest}` from `{from}`"), || {
                repo.mount_blob(digest, from)
            })
            .await?;
        if mounted {
            inc(&stats.mounted);
            reporter.blob_finished(digest, BlobOutcome::Mounted);
            return Ok(());
        }
    }
    // Read (and verify) the local copy only now: blobs the registry has are never read.
    let data = store
        .read_blob(digest)
        .map_err(|e| RegistryError::store(format!("read blob `{digest}`"), e))?;
    repo.retry(&format!("upload blob `{digest}`"), || {
        repo.push_blob(digest, &data)
    })
    .await?;
    add(&stats.bytes_sent, data.len() as u64);
    inc(&stats.uploaded);
    reporter.blob_progress(digest, data.len() as u64);
    reporter.blob_finished(digest, BlobOutcome::Uploaded);
    Ok(())
}

async fn put_doc(
    repo: &Repository<'_>,
    doc: &Doc,
    reference: &str,
    stats: &Stats,
) -> Result<(), RegistryError> {
    repo.retry(&format!("write manifest `{reference}`"), || {
        repo.put_manifest(reference, &doc.media_type, &doc.bytes)
    })
    .await?;
    add(&stats.bytes_sent, doc.bytes.len() as u64);
    inc(&stats.manifests);
    Ok(())
}

async fn put_docs_by_digest(
    repo: &Repository<'_>,
    docs: &[Doc],
    stats: &Stats,
) -> Result<(), RegistryError> {
    // Children come before parents in `docs`; documents at the same depth could go together,
    // but gadget images have one level, so the manifests of one index go at once.
    let leaves: Vec<&Doc> = docs
        .iter()
        .filter(|d| !graph::is_index_type(&d.media_type))
        .collect();
    let results: Vec<Result<(), RegistryError>> = stream::iter(leaves)
        .map(|d| put_doc(repo, d, d.digest.as_str(), stats))
        .buffer_unordered(repo.client().config().concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    for d in docs.iter().filter(|d| graph::is_index_type(&d.media_type)) {
        put_doc(repo, d, d.digest.as_str(), stats).await?;
    }
    Ok(())
}

/// Signatures and referrers found in a registry.
#[derive(Debug, Default)]
struct PulledArtifacts {
    /// (bare local tag, graph) of legacy signatures.
    signatures: Vec<(String, Graph)>,
    /// (subject, graph) of referrers (stored as untagged entries and in the subject's bare
    /// referrers index).
    referrers: Vec<(Digest, Graph)>,
}

impl PulledArtifacts {
    fn graphs(&self) -> impl Iterator<Item = &Graph> {
        self.signatures
            .iter()
            .map(|(_, g)| g)
            .chain(self.referrers.iter().map(|(_, g)| g))
    }
}

/// The index entries to pull: all, or those of `platforms`. Errors when none is left.
fn select_entries(root: &Doc, platforms: Option<&[Platform]>) -> Result<Vec<Value>, RegistryError> {
    let root_json = root.json();
    let entries: Vec<Value> = Children::of(&root_json)
        .manifests
        .into_iter()
        .cloned()
        .collect();
    let Some(list) = platforms else {
        return Ok(entries);
    };
    let kept: Vec<Value> = entries
        .into_iter()
        .filter(|e| {
            let p = e.get("platform");
            let arch = p
                .and_then(|p| p.get("architecture"))
                .and_then(Value::as_str);
            let os = p.and_then(|p| p.get("os")).and_then(Value::as_str);
            os.is_none_or(|o| o == "linux")
                && arch.is_some_and(|a| list.iter().any(|pl| pl.oci_arch() == a))
        })
        .collect();
    if kept.is_empty() {
        let have = platforms_of(&root_json).join(", ");
        return Err(RegistryError::Unsupported {
            reason: format!(
                "the image has none of the platforms asked for (it has: {})",
                if have.is_empty() {
                    "none listed"
                } else {
                    &have
                }
            ),
        });
    }
    Ok(kept)
}

/// Pulls `reference` from its registry into the store, with its signatures and referrers.
/// With `platforms`, only those platforms' manifests and blobs are fetched (the stored index
/// then lists only them, so its digest differs from the registry's; the report gives both).
///
/// Stages: fetch everything into a staging directory ([`fetch_for_pull`]), then store it in one
/// transaction ([`store_pulled`]), then report.
pub fn pull(
    store: &Store,
    client: &Client,
    reference: &Reference,
    credentials: &Credentials,
    platforms: Option<&[Platform]>,
    reporter: &dyn TransferReporter,
) -> Result<TransferReport, RegistryError> {
    let start = Instant::now();
    let staging = staging_dir(store)?;
    let stats = Stats::default();
    let pulled = runtime()?.block_on(fetch_for_pull(
        &PullTarget {
            store,
            client,
            reference,
            credentials,
            platforms,
            reporter,
            staging: staging.path(),
        },
        &stats,
    ))?;
    store_pulled(store, staging.path(), reference, &pulled)?;
    let root = pulled.image.root();
    Ok(TransferReport {
        reference: reference.without_digest().full(),
        digest: root.digest.to_string(),
        source_digest: pulled.source_digest.map(|d| d.to_string()),
        platforms: platforms_of(&root.json()),
        bytes_sent: 0,
        bytes_received: stats.bytes_received.get(),
        blobs_uploaded: 0,
        blobs_mounted: 0,
        blobs_downloaded: stats.downloaded.get(),
        blobs_skipped: stats.skipped.get(),
        manifests: stats.manifests.get(),
        signatures: pulled.artifacts.signatures.len(),
        referrers: pulled.artifacts.referrers.len(),
        retries: pulled.retries,
        millis: start.elapsed().as_millis(),
    })
}

/// What one pull reads from and writes to, for its fetch stage.
struct PullTarget<'a> {
    store: &'a Store,
    client: &'a Client,
    reference: &'a Reference,
    credentials: &'a Credentials,
    platforms: Option<&'a [Platform]>,
    reporter: &'a dyn TransferReporter,
    /// Where downloaded blobs wait, verified, for the store transaction.
    staging: &'a Path,
}

/// Everything a pull fetched, before it is stored.
struct Pulled {
    /// The image's documents (its index or manifest first) and blobs.
    image: Graph,
    /// Its signatures and referrers.
    artifacts: PulledArtifacts,
    /// The registry's index digest when a narrowed index is stored instead.
    source_digest: Option<Digest>,
    retries: usize,
    /// Every blob of the image and its artifacts.
    blobs: Vec<BlobRef>,
    /// The blobs downloaded into the staging directory (the others were in the store).
    fetched: Vec<Digest>,
}

/// The fetch stage of [`pull`]: the root document, the platforms kept, then the image and its
/// signatures side by side, then the blobs of the signatures and referrers.
async fn fetch_for_pull(target: &PullTarget<'_>, stats: &Stats) -> Result<Pulled, RegistryError> {
    let (reference, reporter, staging) = (target.reference, target.reporter, target.staging);
    let repo = target
        .client
        .open(
            reference.registry(),
            reference.repository(),
            target.credentials,
            Access::Pull,
            reporter,
        )
        .await?;
    let root = fetch_root(&repo, reference, stats).await?;

    // What to fetch, and the subjects whose signatures come along: every document of the
    // image as the registry has it (the index only when it is kept as is).
    let is_index = graph::is_index_type(&root.media_type);
    let entries = if is_index {
        select_entries(&root, target.platforms)?
    } else {
        Vec::new()
    };
    let narrowed = is_index && entries.len() != select_entries(&root, None)?.len();
    // Signatures are looked up for what they sign and `ig` verifies: the image's index (or
    // its manifest). A narrowed index is not the registry's, so none applies to it.
    let mut subjects = Vec::new();
    if narrowed {
        reporter.note(
            "only some platforms were pulled: the index's signatures and referrers were not \
             (they sign the registry's index, not the one stored)",
        );
    } else {
        subjects.push(root.digest.clone());
    }

    // The image (manifests, then blobs) and the signature lookups run side by side.
    let image_part = async {
        let (image, source_digest) = fetch_image(&repo, root, entries, narrowed, stats).await?;
        reporter.started(
            &reference.full(),
            image.blobs.len(),
            image.blobs.iter().map(|b| b.size).sum(),
        );
        let fetched = download_all(&repo, target.store, staging, &image.blobs, stats).await?;
        Ok::<_, RegistryError>((image, source_digest, fetched))
    };
    let (image_part, artifacts) =
        futures_util::join!(image_part, fetch_artifacts(&repo, &subjects, stats));
    let (image, source_digest, mut fetched) = image_part?;
    let artifacts = artifacts?;

    // Blobs of signatures and referrers (few, small).
    let mut extra: Vec<BlobRef> = Vec::new();
    for g in artifacts.graphs() {
        for b in &g.blobs {
            if !image.blobs.contains(b) && !extra.contains(b) {
                extra.push(b.clone());
            }
        }
    }
    if !extra.is_empty() {
        reporter.started(
            &reference.full(),
            extra.len(),
            extra.iter().map(|b| b.size).sum(),
        );
        fetched.extend(download_all(&repo, target.store, staging, &extra, stats).await?);
    }
    let blobs: Vec<BlobRef> = image.blobs.iter().chain(extra.iter()).cloned().collect();
    Ok(Pulled {
        image,
        artifacts,
        source_digest,
        retries: repo.retries(),
        blobs,
        fetched,
    })
}

/// The document `reference` names (its digest, else its tag, else `latest`).
async fn fetch_root(
    repo: &Repository<'_>,
    reference: &Reference,
    stats: &Stats,
) -> Result<Doc, RegistryError> {
    let wanted = reference.digest().map_or_else(
        || reference.tag().unwrap_or("latest").to_owned(),
        ToString::to_string,
    );
    fetch_doc(repo, &wanted, None, None, stats)
        .await?
        .ok_or_else(|| RegistryError::NotFound {
            registry: reference.registry().to_owned(),
            repository: reference.repository().to_owned(),
            what: format!("manifest `{wanted}`"),
            message: "the registry has no such tag or digest (check the name; `ig-image \
                      list` shows local images)"
                .into(),
        })
}

/// The store stage of [`pull`], in one transaction: blobs (verified again), documents,
/// referrers, signature tags, then the tag.
fn store_pulled(
    store: &Store,
    staging: &Path,
    reference: &Reference,
    pulled: &Pulled,
) -> Result<(), RegistryError> {
    let root = pulled.image.root();
    store.transaction(|tx| {
        let fetched: BTreeSet<&Digest> = pulled.fetched.iter().collect();
        for b in &pulled.blobs {
            store_pulled_blob(tx, staging, reference, b, fetched.contains(&b.digest))?;
        }
        for g in std::iter::once(&pulled.image).chain(pulled.artifacts.graphs()) {
            for d in &g.docs {
                write_doc(tx, d)?;
            }
        }
        for (subject, g) in &pulled.artifacts.referrers {
            tx.add_referrer(subject, &g.root().descriptor())
                .map_err(|e| RegistryError::store("record a referrer", e))?;
        }
        for (tag, g) in &pulled.artifacts.signatures {
            tx.tag_bare(tag, g.root().descriptor())
                .map_err(|e| RegistryError::store(format!("tag `{tag}`"), e))?;
        }
        match reference.tag() {
            Some(tag) => tag_local(tx, reference, tag, root)?,
            None => {
                tx.add_untagged(&root.descriptor())
                    .map_err(|e| RegistryError::store("record the image", e))?;
            }
        }
        Ok::<_, RegistryError>(())
    })
}

/// Stores one blob of a pull from the staging directory (`downloaded`), or checks that the
/// store still has it.
fn store_pulled_blob(
    tx: &Transaction<'_>,
    staging: &Path,
    reference: &Reference,
    blob: &BlobRef,
    downloaded: bool,
) -> Result<(), RegistryError> {
    let digest = &blob.digest;
    if !downloaded {
        if tx.has_blob(digest) {
            return Ok(());
        }
        return Err(RegistryError::Unsupported {
            reason: format!(
                "blob `{digest}` was in the store when the pull started and was removed \
                 since (by a concurrent `remove`?): run the pull again"
            ),
        });
    }
    let path = staging.join(digest.hex());
    let file = fs::File::open(&path).map_err(|e| {
        RegistryError::Io(IoFailure {
            action: "open the staged blob",
            path: path.clone(),
            source: e,
        })
    })?;
    let (_, written) = tx
        .write_blob_from_reader(file, Some(digest))
        .map_err(|e| RegistryError::store(format!("store blob `{digest}`"), e))?;
    if written != blob.size {
        return Err(RegistryError::SizeMismatch {
            registry: reference.registry().to_owned(),
            what: format!("blob `{digest}`"),
            expected: blob.size,
            actual: written,
        });
    }
    Ok(())
}

/// Downloads `blobs` (those the store lacks) to the staging directory, several at once.
/// Returns the digests downloaded.
async fn download_all(
    repo: &Repository<'_>,
    store: &Store,
    staging: &Path,
    blobs: &[BlobRef],
    stats: &Stats,
) -> Result<Vec<Digest>, RegistryError> {
    let results: Vec<Result<Option<Digest>, RegistryError>> = stream::iter(blobs.iter())
        .map(|b| async move {
            download_blob(repo, store, staging, &b.digest, b.size, stats)
                .await
                .map(|fetched| fetched.then(|| b.digest.clone()))
        })
        .buffer_unordered(repo.client().config().concurrency.max(1))
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

fn write_doc(tx: &Transaction<'_>, d: &Doc) -> Result<(), RegistryError> {
    let written = tx
        .write_blob(&d.bytes)
        .map_err(|e| RegistryError::store(format!("store manifest `{}`", d.digest), e))?;
    debug_assert_eq!(written, d.digest);
    Ok(())
}

fn tag_local(
    tx: &mut Transaction<'_>,
    reference: &Reference,
    tag: &str,
    doc: &Doc,
) -> Result<(), RegistryError> {
    let name = reference
        .with_tag(tag)
        .map_err(|e| RegistryError::Unsupported {
            reason: e.to_string(),
        })?;
    tx.tag(&name, doc.descriptor())
        .map_err(|e| RegistryError::store(format!("tag `{}`", name.full()), e))?;
    Ok(())
}

/// A staging directory for downloads, inside the store (same filesystem), removed on drop.
fn staging_dir(store: &Store) -> Result<tempfile::TempDir, RegistryError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let ingest = store.path().join("ingest");
    if !ingest.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&ingest)
            .map_err(|e| {
                RegistryError::Io(IoFailure {
                    action: "create",
                    path: ingest.clone(),
                    source: e,
                })
            })?;
    }
    tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(&ingest)
        .map_err(|e| {
            RegistryError::Io(IoFailure {
                action: "create a staging directory in",
                path: ingest,
                source: e,
            })
        })
}

/// Fetches a document by tag or digest; `expected_size` is checked when known.
async fn fetch_doc(
    repo: &Repository<'_>,
    reference: &str,
    media_type: Option<&str>,
    expected_size: Option<u64>,
    stats: &Stats,
) -> Result<Option<Doc>, RegistryError> {
    let accept: Vec<&str> = match media_type {
        Some(t) if !MANIFEST_TYPES.contains(&t) => {
            let mut v = vec![t];
            v.extend_from_slice(MANIFEST_TYPES);
            v
        }
        _ => MANIFEST_TYPES.to_vec(),
    };
    let Some(m) = repo
        .retry(&format!("read manifest `{reference}`"), || {
            repo.get_manifest(reference, &accept)
        })
        .await?
    else {
        return Ok(None);
    };
    if let Some(size) = expected_size {
        if size != m.bytes.len() as u64 {
            return Err(RegistryError::SizeMismatch {
                registry: repo.registry().to_owned(),
                what: format!("manifest `{reference}`"),
                expected: size,
                actual: m.bytes.len() as u64,
            });
        }
    }
    add(&stats.bytes_received, m.bytes.len() as u64);
    inc(&stats.manifests);
    let media_type = match media_type.filter(|t| is_document_type(t)) {
        Some(t) => t.to_owned(),
        None => m.media_type,
    };
    Ok(Some(Doc {
        digest: m.digest,
        media_type,
        bytes: m.bytes,
    }))
}

/// Fetches a document that must exist (a child of something already fetched).
async fn fetch_required(
    repo: &Repository<'_>,
    digest: &Digest,
    media_type: Option<&str>,
    size: u64,
    parent: &str,
    stats: &Stats,
) -> Result<Doc, RegistryError> {
    fetch_doc(repo, digest.as_str(), media_type, Some(size), stats)
        .await?
        .ok_or_else(|| RegistryError::NotFound {
            registry: repo.registry().to_owned(),
            repository: repo.repository().to_owned(),
            what: format!("manifest `{digest}` (listed by {parent})"),
            message: "the registry is missing part of the image".into(),
        })
}

/// Fetches the image under `root`: the manifests of `entries` (all of an index's entries, or
/// those kept), and lists their blobs. When `narrowed`, the stored index lists only `entries`
/// and the registry's index digest is returned too.
async fn fetch_image(
    repo: &Repository<'_>,
    root: Doc,
    entries: Vec<Value>,
    narrowed: bool,
    stats: &Stats,
) -> Result<(Graph, Option<Digest>), RegistryError> {
    let root_json = root.json();
    let mut graph = Graph::default();
    if !graph::is_index_type(&root.media_type) {
        add_manifest_blobs(&mut graph, &root_json, "the image")?;
        graph.docs.push(root);
        return Ok((graph, None));
    }
    let parent = format!("index `{}`", root.digest);
    let fetched: Vec<Result<Doc, RegistryError>> = stream::iter(entries.iter())
        .map(|e| {
            let parent = &parent;
            async move {
                let (d, size, mt) = parse_descriptor(e, parent)?;
                fetch_required(repo, &d, mt.as_deref(), size, parent, stats).await
            }
        })
        .buffered(repo.client().config().concurrency.max(1))
        .collect()
        .await;
    for doc in fetched {
        let doc = doc?;
        if graph::is_index_type(&doc.media_type) {
            return Err(RegistryError::Unsupported {
                reason: format!(
                    "index `{}` lists another index (`{}`): nested indexes are not gadget images",
                    root.digest, doc.digest
                ),
            });
        }
        add_manifest_blobs(
            &mut graph,
            &doc.json(),
            &format!("manifest `{}`", doc.digest),
        )?;
        graph.docs.push(doc);
    }
    if !narrowed {
        graph.docs.push(root);
        return Ok((graph, None));
    }
    let mut narrowed_index = root_json.clone();
    narrowed_index["manifests"] = Value::Array(entries);
    let bytes =
        gadget_store::to_canonical_json(&narrowed_index).map_err(|e| RegistryError::Invalid {
            registry: repo.registry().to_owned(),
            what: "index".into(),
            reason: e.to_string(),
        })?;
    let source = root.digest.clone();
    graph.docs.push(Doc {
        digest: Digest::of(&bytes),
        media_type: root.media_type,
        bytes,
    });
    Ok((graph, Some(source)))
}

fn add_manifest_blobs(
    graph: &mut Graph,
    manifest: &Value,
    what: &str,
) -> Result<(), RegistryError> {
    for b in Children::of(manifest).content() {
        let (d, size, _) = parse_descriptor(b, what)?;
        if !graph.blobs.iter().any(|x| x.digest == d) {
            graph.blobs.push(BlobRef { digest: d, size });
        }
    }
    Ok(())
}

/// Signatures (`sha256-<hex>.sig`) and referrers (API or tag schema) of `subjects`. The first
/// subject's lookup learns whether the registry has the referrers API; the others then ask
/// only the way that works.
async fn fetch_artifacts(
    repo: &Repository<'_>,
    subjects: &[Digest],
    stats: &Stats,
) -> Result<PulledArtifacts, RegistryError> {
    let mut out = PulledArtifacts::default();
    let Some((first, rest)) = subjects.split_first() else {
        return Ok(out);
    };
    let (first_found, api) = fetch_subject_artifacts(repo, first, None, stats).await?;
    let others: Vec<Result<(PulledArtifacts, bool), RegistryError>> = stream::iter(rest.iter())
        .map(|subject| fetch_subject_artifacts(repo, subject, Some(api), stats))
        .buffered(repo.client().config().concurrency.max(1))
        .collect()
        .await;
    let mut seen = BTreeSet::new();
    for found in std::iter::once(Ok((first_found, api))).chain(others) {
        let (found, _) = found?;
        out.signatures.extend(found.signatures);
        for (subject, g) in found.referrers {
            if seen.insert(g.root().digest.clone()) {
                out.referrers.push((subject, g));
            }
        }
    }
    Ok(out)
}

/// The artifacts of one subject, and whether the registry has the referrers API (`api`, when
/// already known, says which way to ask).
async fn fetch_subject_artifacts(
    repo: &Repository<'_>,
    subject: &Digest,
    api: Option<bool>,
    stats: &Stats,
) -> Result<(PulledArtifacts, bool), RegistryError> {
    let mut out = PulledArtifacts::default();
    let sig_tag = signature_tag(subject);
    let (sig, found) = futures_util::join!(
        fetch_doc(repo, &sig_tag, None, None, stats),
        referrers::find_remote(repo, subject, api)
    );
    if let Some(sig) = sig? {
        let mut g = Graph::default();
        add_manifest_blobs(&mut g, &sig.json(), &format!("signature `{sig_tag}`"))?;
        g.docs.push(sig);
        out.signatures.push((sig_tag, g));
    }
    // A registry's referrers tag index is not stored as it is: the store's own bare index is
    // built from the referrers fetched.
    let (listed, api) = found?;
    for d in listed {
        let what = format!("referrers of `{subject}`");
        let (digest, size, mt) = parse_descriptor(&d, &what)?;
        let doc = fetch_required(repo, &digest, mt.as_deref(), size, &what, stats).await?;
        if let Err(f) = referrers::check_subject(&doc.json(), subject) {
            repo.reporter().note(&format!("skipped: {}", f.error));
            continue;
        }
        let mut g = Graph::default();
        add_manifest_blobs(&mut g, &doc.json(), &format!("referrer `{digest}`"))?;
        g.docs.push(doc);
        out.referrers.push((subject.clone(), g));
    }
    Ok((out, api))
}

/// Downloads a blob to `staging/<hex>` unless the store has it. Returns whether it downloaded.
async fn download_blob(
    repo: &Repository<'_>,
    store: &Store,
    staging: &Path,
    digest: &Digest,
    size: u64,
    stats: &Stats,
) -> Result<bool, RegistryError> {
    let reporter = repo.reporter();
    if store.has_blob(digest) {
        reporter.blob_started(digest, size);
        inc(&stats.skipped);
        reporter.blob_finished(digest, BlobOutcome::Skipped);
        return Ok(false);
    }
    let path = staging.join(digest.hex());
    repo.retry(&format!("download blob `{digest}`"), || async {
        // Each attempt starts over (the bar too).
        reporter.blob_started(digest, size);
        let file = fs::File::create(&path).map_err(|e| {
            Failure::permanent(RegistryError::Io(IoFailure {
                action: "create",
                path: path.clone(),
                source: e,
            }))
        })?;
        let progress = |n: u64| reporter.blob_progress(digest, n);
        let writer = LimitedWriter::new(file, size, &progress);
        repo.pull_blob(digest, writer).await
    })
    .await?;
    let got = fs::metadata(&path)
        .map_err(|e| {
            RegistryError::Io(IoFailure {
                action: "inspect",
                path: path.clone(),
                source: e,
            })
        })?
        .len();
    if got != size {
        return Err(RegistryError::SizeMismatch {
            registry: repo.registry().to_owned(),
            what: format!("blob `{digest}`"),
            expected: size,
            actual: got,
        });
    }
    add(&stats.bytes_received, size);
    inc(&stats.downloaded);
    reporter.blob_finished(digest, BlobOutcome::Downloaded);
    Ok(true)
}
