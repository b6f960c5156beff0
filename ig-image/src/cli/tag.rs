//! `ig-image tag`.

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Give an existing image another name (both names then point at the same content).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  ig-image tag trace_open:dev localhost:5000/gadgets/trace_open:v1\n\n\
JSON (-o json): {\"source\", \"reference\", \"digest\"}"
)]
pub struct TagArgs {
    /// The existing image
    source: String,
    /// The new name
    target: String,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: TagArgs) -> anyhow::Result<ExitStatus> {
    let store = global.open_store()?;
    let source = Reference::parse(&args.source)?;
    let target = Reference::parse(&args.target)?;
    let descriptor = store
        .resolve(&source)
        .with_context(|| format!("cannot tag `{}`", args.source))?;
    store
        .tag(&target, descriptor.clone())
        .with_context(|| format!("cannot tag `{}` as `{}`", args.source, args.target))?;
    if args.output != Format::Columns {
        let doc = serde_json::json!({
            "source": source.full(),
            "reference": target.full(),
            "digest": descriptor.digest().to_string(),
        });
        output::print_data(&doc, args.output)?;
        return Ok(ExitStatus::Success);
    }
    outln!(
        "Successfully tagged with {}@{}",
        target.full(),
        descriptor.digest()
    );
    Ok(ExitStatus::Success)
}
