//! `ig-image attest`.

use crate::outln;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;
use ig_image_build::attest::attach;
use ig_image_sign::attestation::predicate_types;
use ig_image_sign::keys::{self, Password};

use super::{ExitStatus, GlobalArgs};
use crate::output::{self, Format};

/// Sign a predicate about an image and attach it as an attestation (offline).
///
/// The predicate (a JSON file) becomes an in-toto statement whose subject is the image's index
/// digest, signed with a cosign key as a DSSE envelope in a sigstore bundle and stored as an
/// OCI 1.1 referrer of the image, as `cosign attest --new-bundle-format` does. `push`, `pull`,
/// `export` and `import` carry it; `verify --attestation TYPE` checks it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image attest trace_open:v1 --predicate vuln-scan.json --type vuln --key cosign.key\n  \
ig-image attest trace_open:v1 --predicate policy.json --type https://example.com/policy/v1 --key cosign.key\n  \
ig-image verify trace_open:v1 --attestation vuln --public-keys cosign.pub -o json\n\
Types: slsaprovenance (SLSA v1), slsaprovenance1, slsaprovenance02, spdx, spdxjson, cyclonedx,\n\
link, vuln, openvex, custom, or any predicate type URI. Docs: docs/supply-chain.md")]
pub struct AttestArgs {
    /// The image the predicate is about
    image: String,
    /// The predicate: a JSON file
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    /// Predicate type: a cosign type name or a URI
    #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
    kind: String,
    /// The private key (cosign.key)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: AttestArgs) -> anyhow::Result<ExitStatus> {
    let reference = Reference::parse(&args.image)?;
    let predicate_type = predicate_types(&args.kind)
        .map_err(anyhow::Error::msg)?
        .remove(0);
    let data = std::fs::read(&args.predicate)
        .with_context(|| format!("cannot read the predicate `{}`", args.predicate.display()))?;
    let password = Password::from_env_or_prompt(false)?;
    let key = keys::load_private_key(&args.key, &password)?;
    let store = global.open_store()?;
    let attached = attach::attest_image(
        &store,
        &reference,
        &args.predicate.display().to_string(),
        &data,
        &predicate_type,
        &key,
    )
    .with_context(|| format!("cannot attest `{}`", args.image))?;
    if args.output != Format::Columns {
        output::print_data(&attached, args.output)?;
    } else if attached.added {
        outln!(
            "Attested {} ({predicate_type}): referrer {}",
            reference.display(),
            attached.manifest
        );
    } else {
        outln!(
            "{} already carries this attestation ({predicate_type}): referrer {}",
            reference.display(),
            attached.manifest
        );
    }
    Ok(ExitStatus::Success)
}
