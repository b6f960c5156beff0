//! `ig-image login`.

use std::io::{self, BufRead as _, IsTerminal as _, Read as _, Write as _};

use anyhow::{Context as _, bail};
use clap::Args;
use ig_image_registry::{self as registry, AuthFile, AuthFileChoice, StoredIn};

use super::common::RegistryArgs;
use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Log in to a registry: check the credentials against it, then store them in the auth file.
///
/// The file is docker's config.json format, written atomically with mode 0600 (or the
/// credential helper it names through `credHelpers`/`credsStore` stores the secret). Nothing is
/// written when the registry refuses the credentials. The password is never printed or logged.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
echo \"$TOKEN\" | ig-image login ghcr.io -u me --password-stdin\n  \
ig-image login localhost:5000 -u ci --password-stdin --insecure-registries localhost:5000 < pw.txt\n\n\
JSON (-o json): {\"registry\", \"username\", \"storedIn\"}\n\
Docs: docs/registries.md")]
pub struct LoginArgs {
    /// The registry (`host[:port]`)
    registry: String,
    /// User name (asked on the terminal when missing)
    #[arg(short, long, value_name = "USER")]
    username: Option<String>,
    /// Password (visible to other users and kept in shell history: prefer --password-stdin)
    #[arg(
        short,
        long,
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    password: Option<String>,
    /// Read the password (or token) from standard input
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry_args: RegistryArgs,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

/// `https://host:port/v2/` → `host:port`; rejects what is not a registry host.
pub fn normalize_registry(input: &str) -> anyhow::Result<String> {
    let s = input.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    if host.is_empty()
        || host.starts_with('-')
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | '\\'))
    {
        bail!("`{input}` is not a registry host (expected `host[:port]`, e.g. `ghcr.io`)");
    }
    Ok(host.to_owned())
}

pub fn exec(_global: &GlobalArgs, args: LoginArgs) -> anyhow::Result<ExitStatus> {
    let registry = normalize_registry(&args.registry)?;
    let username = match args.username {
        Some(u) => u,
        None if io::stdin().is_terminal() && !args.password_stdin => prompt("Username: ", true)?,
        None => bail!("no user name: pass `-u USER`"),
    };
    if username.is_empty() {
        bail!("the user name is empty");
    }
    let password = if args.password_stdin {
        let mut text = String::new();
        io::stdin()
            .take(1 << 20)
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    } else if let Some(p) = args.password {
        output::warning(
            "a password on the command line is visible to other users: use --password-stdin",
        );
        p
    } else if io::stdin().is_terminal() {
        prompt("Password: ", false)?
    } else {
        bail!("no password: pass it on standard input with `--password-stdin`");
    };
    if password.is_empty() {
        bail!("the password is empty");
    }

    let client = args.registry_args.client()?;
    let choice = AuthFileChoice::resolve_for_writing(args.registry_args.authfile.as_deref());
    let mut file = AuthFile::load(&choice.path)?;
    let stored = registry::login(&client, &mut file, &registry, &username, &password)
        .with_context(|| format!("failed to log in to {registry}"))?;
    if let StoredIn::File(path) = &stored {
        output::warning(format!(
            "the password is stored unencrypted (base64) in `{}`; a credential helper \
             (`credsStore` in that file) avoids that",
            path.display()
        ));
    }
    if args.output != Format::Columns {
        let doc = serde_json::json!({
            "registry": registry,
            "username": username,
            "storedIn": stored.to_string(),
        });
        output::print_data(&doc, args.output)?;
        return Ok(ExitStatus::Success);
    }
    outln!("Login succeeded: credentials for {registry} stored in {stored}");
    Ok(ExitStatus::Success)
}

/// Reads a line from the terminal; with echo off (through `rpassword`) when `echo` is false.
fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    if !echo {
        return rpassword::prompt_password(label).context("cannot read from the terminal");
    }
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("cannot open the terminal to ask for credentials")?;
    tty.write_all(label.as_bytes())?;
    tty.flush()?;
    let mut line = String::new();
    io::BufReader::new(&tty)
        .read_line(&mut line)
        .context("cannot read from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_normalized() {
        assert_eq!(
            normalize_registry("localhost:5000").unwrap(),
            "localhost:5000"
        );
        assert_eq!(normalize_registry("https://ghcr.io/").unwrap(), "ghcr.io");
        assert_eq!(
            normalize_registry("http://127.0.0.1:5000/v2/").unwrap(),
            "127.0.0.1:5000"
        );
        for bad in ["", "-x", "a b", "user@host"] {
            assert!(normalize_registry(bad).is_err(), "{bad}");
        }
    }
}
