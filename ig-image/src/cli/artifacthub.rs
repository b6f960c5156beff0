//! `ig-image artifacthub`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ig_image_build::artifacthub::{self, PkgOptions, ProblemKind};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Arguments of `ig-image artifacthub`.
#[derive(Debug, Args)]
#[command(
    after_help = "Fields ig-image owns: name, description, homeURL and the Documentation/Source \
links (from gadget.yaml); version (the tag without `v`), createdAt, digest, the `gadget` entry of \
containersImages with the image's platforms, and install (from the image). displayName is filled \
only when absent. Every other key is the author's and is kept, in the author's order. \
`generate` writes nothing when the result is invalid (exit 1, the problems on stderr).\n\n\
JSON (-o json): generate: {\"path\", \"changed\", \"problems\": [{\"kind\", \"field\", \"message\"}]}; \
check: {\"path\", \"ok\", \"problems\"}; push-repo-metadata: {\"repository\", \"digest\", \"pushed\", \"problems\"}.\n\
Docs: docs/publishing.md"
)]
pub struct ArtifactHubArgs {
    #[command(subcommand)]
    command: ArtifactHubCommand,
}

#[derive(Debug, Subcommand)]
enum ArtifactHubCommand {
    /// Write or refresh DIR/artifacthub-pkg.yml from DIR/gadget.yaml and the image
    ///
    /// Without `--image`, only the gadget.yaml fields are refreshed (an existing file is needed).
    Generate(PkgArgs),
    /// Fail (exit 1) when DIR/artifacthub-pkg.yml is invalid or stale, naming each field
    ///
    /// Validity follows Artifact Hub's rules for the gadget kind: required keys, name
    /// characters, SemVer 2 version, RFC 3339 createdAt, category list, a `gadget` entry in
    /// containersImages. Stale: a field ig-image owns differs from gadget.yaml, or, with
    /// `--image`, from the image. Unknown keys are warnings.
    Check(PkgArgs),
    /// Push artifacthub-repo.yml as REPO's repository metadata (the `artifacthub.io` tag)
    ///
    /// Artifact Hub reads the metadata of an OCI-hosted repository (repositoryID, owners,
    /// ignore) from an artifact tagged `artifacthub.io` in it: config media type
    /// `application/vnd.cncf.artifacthub.config.v1+yaml` (empty), one layer of media type
    /// `application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml`. The file is checked
    /// first (repositoryID a UUID, owners with an email); nothing is pushed when it is invalid.
    PushRepoMetadata(RepoMetadataArgs),
}

#[derive(Debug, Args)]
struct RepoMetadataArgs {
    /// The repository, without a tag (ghcr.io/me/gadgets/trace_demo)
    #[arg(value_name = "REPO")]
    repo: String,
    /// The repository metadata file
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    registry: super::common::RegistryArgs,
    /// Output format: text, or json (one object: `repository`, `digest`, `pushed`, `problems`)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

#[derive(Debug, Args)]
struct PkgArgs {
    /// The gadget directory (holds gadget.yaml)
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The image in the store (its tag is the version: v1.2.3 or 1.2.3)
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// The version to write, when the tag is not one (SemVer 2)
    #[arg(long = "pkg-version", value_name = "SEMVER")]
    version: Option<String>,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

impl PkgArgs {
    fn options(&self, global: &GlobalArgs) -> anyhow::Result<PkgOptions> {
        if let Some(v) = &self.version {
            anyhow::ensure!(
                artifacthub::is_semver(v),
                "`--pkg-version {v}` is not SemVer 2 (MAJOR.MINOR.PATCH[-pre][+build])"
            );
        }
        let image = match &self.image {
            Some(i) => Some(artifacthub::image_facts(&global.open_store()?, i)?),
            None => None,
        };
        Ok(PkgOptions {
            dir: self.dir.clone(),
            image,
            version: self.version.clone(),
        })
    }
}

pub fn exec(global: &GlobalArgs, args: ArtifactHubArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        ArtifactHubCommand::Generate(a) => {
            let opts = a.options(global)?;
            let g = artifacthub::generate(&opts).with_context(|| {
                format!(
                    "cannot generate `{}`",
                    opts.dir.join(artifacthub::PKG_FILE).display()
                )
            })?;
            for p in &g.problems {
                output::warning(p);
            }
            let invalid = g.problems.iter().any(|p| p.kind == ProblemKind::Invalid);
            if a.output == Format::Columns {
                let verb = match (invalid, g.changed) {
                    (true, _) => "Not written",
                    (false, true) => "Wrote",
                    (false, false) => "Unchanged",
                };
                output::status(verb, g.path.display());
            } else {
                output::print_data(&g, a.output)?;
            }
            Ok(if invalid {
                ExitStatus::Failure
            } else {
                ExitStatus::Success
            })
        }
        ArtifactHubCommand::PushRepoMetadata(a) => push_repo_metadata(&a),
        ArtifactHubCommand::Check(a) => {
            let opts = a.options(global)?;
            let problems = artifacthub::check(&opts).with_context(|| {
                format!(
                    "cannot check `{}`",
                    opts.dir.join(artifacthub::PKG_FILE).display()
                )
            })?;
            let failing = problems
                .iter()
                .filter(|p| p.kind != ProblemKind::Warning)
                .count();
            if a.output == Format::Columns {
                for p in &problems {
                    outln!("{p}");
                }
                let path = opts.dir.join(artifacthub::PKG_FILE);
                if failing == 0 {
                    outln!("{}: ok", path.display());
                } else {
                    outln!("{}: {failing} problem(s)", path.display());
                }
            } else {
                let doc = serde_json::json!({
                    "path": opts.dir.join(artifacthub::PKG_FILE),
                    "ok": failing == 0,
                    "problems": problems,
                });
                output::print_data(&doc, a.output)?;
            }
            Ok(if failing == 0 {
                ExitStatus::Success
            } else {
                ExitStatus::Failure
            })
        }
    }
}

fn push_repo_metadata(a: &RepoMetadataArgs) -> anyhow::Result<ExitStatus> {
    let (bytes, problems) = artifacthub::read_repo_metadata(&a.file)?;
    let invalid = problems.iter().any(|p| p.kind != ProblemKind::Warning);
    if a.output == Format::Columns {
        for p in &problems {
            outln!("{p}");
        }
        if invalid {
            outln!("{}: invalid, nothing pushed", a.file.display());
        }
    }
    if invalid {
        if a.output != Format::Columns {
            let doc = serde_json::json!({
                "repository": a.repo,
                "digest": null,
                "pushed": false,
                "problems": problems,
            });
            output::print_data(&doc, a.output)?;
        }
        return Ok(ExitStatus::Failure);
    }
    // The artifact is assembled in a throwaway store, then pushed like any image.
    let tmp = tempfile::tempdir().context("cannot create a temporary store")?;
    let store = gadget_store::Store::open(tmp.path().join("store"))?;
    let reference = artifacthub::store_repo_metadata(&store, &a.repo, &bytes)?;
    let client = a.registry.client()?;
    let credentials = a.registry.credentials(reference.registry())?;
    let report = ig_image_registry::push(
        &store,
        &client,
        &reference,
        &credentials,
        &ig_image_registry::NoProgress,
    )
    .with_context(|| {
        format!(
            "failed to push the repository metadata to `{}`",
            reference.display()
        )
    })?;
    if a.output != Format::Columns {
        let doc = serde_json::json!({
            "repository": reference.full(),
            "digest": report.digest.to_string(),
            "pushed": true,
            "problems": problems,
        });
        output::print_data(&doc, a.output)?;
    } else {
        output::status(
            "Pushed",
            format!("{}@{}", reference.display(), report.digest),
        );
    }
    Ok(ExitStatus::Success)
}
