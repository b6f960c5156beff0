//! `ig-image generate-key-pair`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use ig_image_sign::keys::{self, Password};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Write a cosign key pair: `<prefix>.key` (encrypted private key) and `<prefix>.pub`.
///
/// The files are in cosign's formats, so cosign reads ours and we read cosign's: an ECDSA P-256
/// key, `<prefix>.pub` a PKIX PEM public key, `<prefix>.key` an `ENCRYPTED SIGSTORE PRIVATE KEY`
/// PEM block (scrypt + NaCl secretbox around the PKCS#8 key, mode 0600). The password is read
/// from `COSIGN_PASSWORD` when set (it may be empty), else asked twice on the terminal.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  COSIGN_PASSWORD=... ig-image generate-key-pair --output-key-prefix ci/cosign\n\
JSON (-o json): {\"privateKey\", \"publicKey\"}\n\
Docs: docs/signing.md"
)]
pub struct GenerateKeyPairArgs {
    /// Path prefix of the two files
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    output_key_prefix: PathBuf,
    /// Overwrite existing key files
    #[arg(long)]
    force: bool,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(_global: &GlobalArgs, args: GenerateKeyPairArgs) -> anyhow::Result<ExitStatus> {
    let password = Password::from_env_or_prompt(true)?;
    let files = keys::generate_key_pair(&args.output_key_prefix, &password, args.force)
        .context("cannot generate a key pair")?;
    if args.output != Format::Columns {
        let doc = serde_json::json!({
            "privateKey": files.private_key,
            "publicKey": files.public_key,
        });
        output::print_data(&doc, args.output)?;
        return Ok(ExitStatus::Success);
    }
    outln!("Private key written to {}", files.private_key.display());
    outln!("Public key written to {}", files.public_key.display());
    Ok(ExitStatus::Success)
}
