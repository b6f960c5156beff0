//! The SLSA v1 provenance of a built image: an in-toto statement
//! (`https://in-toto.io/Statement/v1`) whose subject is the image index digest and whose
//! predicate (`https://slsa.dev/provenance/v1`) holds the build definition (build.yaml values,
//! platforms, flags), the resolved dependencies with their digests, and the run details (the
//! builder id: the GitHub Actions workflow that ran the build, else ig-image at its version;
//! the per-platform objects as byproducts).
//!
//! Deterministic: no wall-clock time unless `SOURCE_DATE_EPOCH` is unset (then `startedOn` is
//! the build's creation time, as in the image annotations).

use gadget_facts::media_types::SLSA_PROVENANCE_V1;
use serde_json::{Value, json};

use super::inventory::{Inventory, Origin};

/// Media type of a plain (unsigned) in-toto statement referrer: the DSSE payload type.
pub use ig_image_sign::cosign::IN_TOTO_PAYLOAD_TYPE as IN_TOTO_MEDIA_TYPE;

/// The build type this provenance describes (`buildDefinition.buildType`): a package URL naming
/// the document that defines it inside ig-image's own source package, `docs/build-type/v1.md`
/// (the meaning of `externalParameters`, `internalParameters`, `resolvedDependencies` and
/// `byproducts`). Versioned by that path: a change of their meaning is a new `v2.md` and a new
/// URI; ig-image versions that build the same way keep `v1`.
pub const BUILD_TYPE: &str = "pkg:generic/ig-image#docs/build-type/v1.md";

/// The builder id (`runDetails.builder.id`): who ran the build, from the environment.
///
/// - In GitHub Actions (`GITHUB_ACTIONS=true`): the workflow file at its ref,
///   `$GITHUB_SERVER_URL/$GITHUB_WORKFLOW_REF`, e.g.
///   `https://github.com/acme/gadgets/.github/workflows/release.yml@refs/tags/v1`. That is the
///   identity Fulcio certifies when the same workflow signs keylessly (what
///   `--certificate-identity` takes), so the provenance names the signer.
/// - Anywhere else: ig-image itself at its version, `pkg:generic/ig-image@<version>` (a package
///   URL): a build on a machine nothing attests.
pub fn builder_id() -> String {
    builder_id_from(|name| std::env::var(name).ok())
}

fn builder_id_from(env: impl Fn(&str) -> Option<String>) -> String {
    let usable = |v: &String| !v.is_empty() && !v.contains(char::is_whitespace);
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        let server = env("GITHUB_SERVER_URL").filter(|s| usable(s) && s.starts_with("https://"));
        let workflow = env("GITHUB_WORKFLOW_REF").filter(|w| usable(w) && w.contains('@'));
        if let (Some(server), Some(workflow)) = (server, workflow) {
            return format!("{}/{}", server.trim_end_matches('/'), workflow);
        }
    }
    format!("pkg:generic/ig-image@{}", env!("CARGO_PKG_VERSION"))
}

fn file_uri(origin: &Origin, name: &str) -> String {
    match origin {
        Origin::Gadget => format!("file:gadget/{}", name.trim_start_matches("./")),
        Origin::BundledSdk => format!("file:bundled-sdk/{}", name.trim_start_matches("./")),
        Origin::SdkDir => format!("file:sdk-dir/{}", name.trim_start_matches("./")),
        Origin::IncludeDir => format!("file:include/{}", name.trim_start_matches("./")),
        Origin::System => format!("file://{name}"),
    }
}

/// The SLSA v1 predicate.
pub fn predicate(inv: &Inventory) -> Value {
    let mut deps: Vec<Value> = Vec::new();
    if let Some(sdk) = &inv.sdk {
        deps.push(json!({
            "uri": format!("pkg:generic/ig-image-sdk@{}", sdk.version),
            "name": "bundled SDK",
            "digest": {"sha256": sdk.sha256},
            "annotations": {"libbpf": sdk.libbpf, "vmlinux": sdk.vmlinux},
        }));
    }
    for f in &inv.files {
        deps.push(json!({
            "uri": file_uri(&f.origin, &f.name),
            "digest": {"sha256": f.sha256},
            "annotations": {"origin": f.origin, "role": f.role},
        }));
    }
    for c in &inv.crates {
        let mut d = json!({
            "uri": format!("pkg:cargo/{}@{}", c.name, c.version),
            "name": c.name,
        });
        if !c.checksum.is_empty() {
            d["digest"] = json!({"sha256": c.checksum});
        }
        deps.push(d);
    }
    for t in &inv.tools {
        deps.push(json!({
            "uri": format!("file://{}", t.path),
            "name": t.name,
            "annotations": {"version": t.version},
        }));
    }
    let mut byproducts: Vec<Value> = inv
        .objects
        .iter()
        .map(|o| {
            json!({
                "name": format!("program.bpf.o ({})", o.platform),
                "digest": {"sha256": o.sha256},
                "mediaType": gadget_facts::media_types::EBPF_LAYER,
            })
        })
        .collect();
    if let Some((sha, _)) = &inv.wasm {
        byproducts.push(json!({
            "name": "program.wasm",
            "digest": {"sha256": sha},
            "mediaType": gadget_facts::media_types::WASM_LAYER,
        }));
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": inv.definition,
            "internalParameters": {
                "SOURCE_DATE_EPOCH": inv.source_date_epoch,
                "note": if inv.source_date_epoch.is_some() {
                    "times are SOURCE_DATE_EPOCH: builds of the same inputs give identical images and attestations"
                } else {
                    "SOURCE_DATE_EPOCH was not set: times are the build's wall-clock time"
                },
            },
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {
                "id": builder_id(),
                "version": {"ig-image": env!("CARGO_PKG_VERSION")},
            },
            "metadata": {
                "startedOn": inv.created,
                "finishedOn": inv.created,
            },
            "byproducts": byproducts,
        },
    })
}

/// The provenance statement as canonical JSON bytes.
pub fn render(inv: &Inventory) -> Vec<u8> {
    super::attach::statement(
        &inv.repository,
        &inv.index_digest,
        SLSA_PROVENANCE_V1,
        predicate(inv),
    )
}

#[cfg(test)]
mod tests {
    use super::{BUILD_TYPE, builder_id_from};

    #[test]
    fn the_build_type_names_its_versioned_definition_in_the_package() {
        // A package URL with a subpath: the definition ships with the source, at that path.
        let (package, subpath) = BUILD_TYPE.split_once('#').unwrap();
        assert_eq!(package, "pkg:generic/ig-image");
        assert_eq!(subpath, "docs/build-type/v1.md");
        let definition = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/build-type/v1.md");
        let text = std::fs::read_to_string(definition).expect("the definition is in docs/");
        assert!(text.contains(BUILD_TYPE), "{definition} names its URI");
        assert!(!BUILD_TYPE.contains("example.invalid"));
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_builder_is_the_github_workflow_at_its_ref_else_ig_image_at_its_version() {
        let github = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/gadgets/.github/workflows/release.yml@refs/tags/v1",
            ),
        ];
        assert_eq!(
            builder_id_from(env(&github)),
            "https://github.com/acme/gadgets/.github/workflows/release.yml@refs/tags/v1"
        );
        let local = format!("pkg:generic/ig-image@{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(builder_id_from(env(&[])), local);
        // Not in GitHub Actions, or its variables unusable: ig-image itself.
        assert_eq!(builder_id_from(env(&github[1..])), local);
        let broken = [github[0], github[1], ("GITHUB_WORKFLOW_REF", "no ref")];
        assert_eq!(builder_id_from(env(&broken)), local);
        let plain_http = [
            github[0],
            ("GITHUB_SERVER_URL", "http://ghe.local"),
            github[2],
        ];
        assert_eq!(builder_id_from(env(&plain_http)), local);
    }
}
