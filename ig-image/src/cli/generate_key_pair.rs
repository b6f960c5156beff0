//! `ig-image generate-key-pair`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use ig_image::sign::keys::{self, Password};

use super::{ExitStatus, GlobalArgs};

/// Write a cosign key pair: `<prefix>.key` (encrypted private key) and `<prefix>.pub`.
///
/// The files are in cosign's formats, so cosign reads ours and we read cosign's: an ECDSA P-256
/// key, `<prefix>.pub` a PKIX PEM public key, `<prefix>.key` an `ENCRYPTED SIGSTORE PRIVATE KEY`
/// PEM block (scrypt + NaCl secretbox around the PKCS#8 key, mode 0600). The password is read
/// from `COSIGN_PASSWORD` when set (it may be empty), else asked twice on the terminal.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  COSIGN_PASSWORD=... ig-image generate-key-pair --output-key-prefix ci/cosign\n\
Docs: docs/signing.md"
)]
pub struct GenerateKeyPairArgs {
    /// Path prefix of the two files
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    output_key_prefix: PathBuf,
    /// Overwrite existing key files
    #[arg(long)]
    force: bool,
}

pub fn exec(_global: &GlobalArgs, args: GenerateKeyPairArgs) -> anyhow::Result<ExitStatus> {
    let password = Password::from_env_or_prompt(true)?;
    let files = keys::generate_key_pair(&args.output_key_prefix, &password, args.force)
        .context("cannot generate a key pair")?;
    println!("Private key written to {}", files.private_key.display());
    println!("Public key written to {}", files.public_key.display());
    Ok(ExitStatus::Success)
}
