//! `ig-image inspect`.

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;
use ig_image::platform::Platform;

use super::{ExitStatus, GlobalArgs};
use crate::output::{self, Format};

/// Arguments of `ig-image inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image (e.g. `trace_open`, `localhost:5000/gadgets/trace_open:v1`)
    image: String,
    /// Only this platform's manifest (default: all)
    #[arg(long, value_name = "ARCH")]
    platform: Option<Platform>,
    /// Output format (json, jsonpretty, yaml; default jsonpretty)
    #[arg(short = 'o', long = "output", value_enum, default_value = "jsonpretty")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: InspectArgs) -> anyhow::Result<ExitStatus> {
    let store = global.open_store()?;
    let reference = Reference::parse(&args.image)?;
    let report = ig_image::inspect::inspect(&store, &reference, args.platform)
        .with_context(|| format!("cannot inspect `{}`", args.image))?;
    let format = if args.output == Format::Columns {
        Format::Jsonpretty
    } else {
        args.output
    };
    output::print_data(&report, format)?;
    Ok(ExitStatus::Success)
}
