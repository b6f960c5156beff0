//! `ig-image container-image` (hidden; run by `scripts/container-image`): writes ig-image's own
//! container image into the store.

use anyhow::Context as _;
use clap::Args;
use gadget_facts::platform::Platform;
use gadget_store::Reference;
use ig_image_build::image::assemble::created_timestamp;
use ig_image_build::image::container::{ContainerInputs, assemble_container};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Write ig-image's container image (static binaries, CA roots) into the store, for
/// `kubectl debug node/N --image=…`. Used by scripts/container-image; docs/proving.md.
#[derive(Debug, Args)]
pub struct ContainerImageArgs {
    /// The image name, e.g. `ghcr.io/me/ig-image:v0.1.0`
    #[arg(short = 't', long = "tag", value_name = "REF")]
    tag: String,
    /// A static ig-image binary for a platform (repeatable): `amd64=target/…/ig-image`
    #[arg(long = "binary", value_name = "PLATFORM=FILE", required = true)]
    binaries: Vec<String>,
    /// The CA roots bundle (PEM) to put at /etc/ssl/certs/ca-certificates.crt
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/ssl/certs/ca-certificates.crt"
    )]
    ca_roots: std::path::PathBuf,
    /// Output format: text, or json ({"reference", "digest", "platforms"})
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: ContainerImageArgs) -> anyhow::Result<ExitStatus> {
    let reference = Reference::parse(&args.tag)?;
    let mut binaries = Vec::new();
    for spec in &args.binaries {
        let (platform, path) = spec
            .split_once('=')
            .with_context(|| format!("--binary `{spec}`: expected PLATFORM=FILE"))?;
        let platform: Platform = platform
            .parse()
            .with_context(|| format!("--binary `{spec}`"))?;
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read the binary `{path}`"))?;
        anyhow::ensure!(
            bytes.starts_with(b"\x7fELF"),
            "--binary `{spec}`: `{path}` is not an ELF executable"
        );
        // Platforms a microVM can boot (amd64, arm64) are also checked for a static program.
        if let Ok(arch) = microvm::spec::Arch::parse(Some(platform.oci_arch())) {
            microvm::elf::check_static_program(&bytes, arch)
                .with_context(|| format!("--binary `{spec}`: `{path}`"))?;
        }
        binaries.push((platform, bytes));
    }
    let ca_roots = std::fs::read(&args.ca_roots).with_context(|| {
        format!(
            "cannot read the CA roots `{}` (Debian: the ca-certificates package)",
            args.ca_roots.display()
        )
    })?;
    let created = created_timestamp()?;
    let mtime =
        time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339)
            .context("the creation time")?
            .unix_timestamp()
            .max(0) as u64;
    let inputs = ContainerInputs {
        binaries,
        ca_roots,
        version: env!("CARGO_PKG_VERSION").to_string(),
        created,
        mtime,
    };
    let image = assemble_container(&inputs)?;
    let store = global.open_store()?;
    store
        .transaction(|tx| {
            for (_, bytes) in &image.blobs {
                tx.write_blob(bytes)?;
            }
            tx.tag(&reference, image.index.clone())
        })
        .with_context(|| format!("cannot store `{}`", args.tag))?;
    let platforms: Vec<&str> = inputs.binaries.iter().map(|(p, _)| p.oci_arch()).collect();
    if args.output != Format::Columns {
        output::print_data(
            &serde_json::json!({
                "reference": reference.full(),
                "digest": image.index.digest().to_string(),
                "platforms": platforms,
            }),
            args.output,
        )?;
    } else {
        outln!(
            "Built {}@{} ({})",
            reference.full(),
            image.index.digest(),
            platforms.join(", ")
        );
    }
    Ok(ExitStatus::Success)
}
