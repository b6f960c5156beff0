//! `ig-image logout`.

use std::path::PathBuf;

use clap::Args;
use ig_image_registry::{self as registry, AuthFile, AuthFileChoice};

use super::login::normalize_registry;
use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Forget the credentials of a registry (in the auth file and its credential helper).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  ig-image logout localhost:5000\n\n\
JSON (-o json): {\"registry\", \"authfile\", \"removed\"}\nDocs: docs/registries.md")]
pub struct LogoutArgs {
    /// The registry (`host[:port]`)
    registry: String,
    /// Auth file in docker's config.json format [default: $REGISTRY_AUTH_FILE, else
    /// /var/lib/ig/config.json as root or when it exists, else ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(_global: &GlobalArgs, args: LogoutArgs) -> anyhow::Result<ExitStatus> {
    let registry = normalize_registry(&args.registry)?;
    let choice = AuthFileChoice::resolve_for_writing(args.authfile.as_deref());
    let mut file = AuthFile::load(&choice.path)?;
    let removed = registry::logout(&mut file, &registry)?;
    if args.output != Format::Columns {
        let doc = serde_json::json!({
            "registry": registry,
            "authfile": choice.path,
            "removed": removed,
        });
        output::print_data(&doc, args.output)?;
        return Ok(ExitStatus::Success);
    }
    if removed {
        outln!(
            "Removed login credentials for {registry} from {}",
            choice.path.display()
        );
    } else {
        outln!("Not logged in to {registry} (in {})", choice.path.display());
    }
    Ok(ExitStatus::Success)
}
