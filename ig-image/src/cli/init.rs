//! `ig-image init`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use ig_image_build::scaffold::{self, InitOptions, Kind, Lang, Wasm};

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Arguments of `ig-image init`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image init trace_demo\n  \
ig-image init top_demo --kind top --dir gadgets --image ghcr.io/me/gadgets/top_demo\n\n\
The new directory builds and loads with no edits:\n  \
cd trace_demo && ig-image build . -t trace_demo:dev && sudo ig-image run trace_demo:dev --oci-store-user --verify-only\n\
JSON (-o json): {\"dir\", \"files\"}\n\
Docs: docs/starting-a-gadget.md")]
pub struct InitArgs {
    /// Gadget name: the directory, the data source and the image name (lowercase letters, digits, single `_` or `-` between them)
    name: String,
    /// Language of the eBPF program
    #[arg(long, value_enum, default_value = "c")]
    lang: Lang,
    /// Add a WASM module in this language
    #[arg(long, value_enum, default_value = "none")]
    wasm: Wasm,
    /// tracer: a stream of events (exec); snapshot: the running processes (iter/task); top: system calls per process (a hash map read periodically)
    #[arg(long, value_enum, default_value = "tracer")]
    kind: Kind,
    /// Create the gadget directory in PARENT (default: the current directory)
    #[arg(long = "dir", value_name = "PARENT", default_value = ".")]
    dir: PathBuf,
    /// Image repository the gadget is published as, used in artifacthub-pkg.yml and README.md (default: localhost:5000/gadgets/NAME)
    #[arg(long, value_name = "REPO")]
    image: Option<String>,
    /// One-line description for gadget.yaml and artifacthub-pkg.yml
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// The git repository the generated CI workflow installs ig-image from (the default of its IG_IMAGE_GIT variable; without one the workflow stops and names the variable)
    #[arg(long, value_name = "GIT_URL")]
    install_from: Option<String>,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(_global: &GlobalArgs, args: InitArgs) -> anyhow::Result<ExitStatus> {
    let made = scaffold::init(&InitOptions {
        name: args.name.clone(),
        lang: args.lang,
        wasm: args.wasm,
        kind: args.kind,
        parent: args.dir.clone(),
        image: args.image.clone(),
        description: args.description.clone(),
        install_from: args.install_from.clone(),
    })
    .with_context(|| format!("cannot create the gadget `{}`", args.name))?;
    if args.output != Format::Columns {
        let doc = serde_json::json!({ "dir": made.dir, "files": made.files });
        output::print_data(&doc, args.output)?;
        return Ok(ExitStatus::Success);
    }
    output::status("Created", made.dir.display());
    for f in &made.files {
        outln!("{}", made.dir.join(f).display());
    }
    eprintln!(
        "\nNext:\n  cd {dir}\n  ig-image build . -t {name}:dev\n  sudo ig-image run {name}:dev --oci-store-user --verify-only",
        dir = made.dir.display(),
        name = args.name
    );
    Ok(ExitStatus::Success)
}
