//! `ig-image import`.

use gadget_store::hint::Hinted;
use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Arguments of `ig-image import`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image import gadgets.tar\n  \
ig-image import - < gadgets.tar\n\n\
FILE `-` is standard input (refused on a terminal).\n\
JSON (-o json): {\"file\", \"imported\": [tags]}")]
pub struct ImportArgs {
    /// The tar file (`-`: standard input)
    file: PathBuf,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: ImportArgs) -> anyhow::Result<ExitStatus> {
    let store = global.open_store()?;
    let from_stdin = args.file.as_os_str() == "-";
    let tags = if from_stdin {
        if std::io::stdin().is_terminal() {
            return Err(Hinted::new(
                "`import -` reads a tar archive from standard input, which is a terminal",
                "`ig-image import - < gadgets.tar`",
            )
            .into());
        }
        // Spooled to a private temporary file: the archive is read twice (checked, then
        // installed), and a refused one leaves the store untouched as with a file.
        let mut tmp = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
        std::io::copy(&mut std::io::stdin().lock(), tmp.as_file_mut())
            .context("cannot read the archive from standard input")?;
        store
            .import(tmp.path())
            .context("cannot import the archive from standard input")?
    } else {
        store
            .import(&args.file)
            .with_context(|| format!("cannot import `{}`", args.file.display()))?
    };
    if args.output != Format::Columns {
        let doc = serde_json::json!({ "file": args.file, "imported": tags });
        output::print_data(&doc, args.output)?;
        return Ok(ExitStatus::Success);
    }
    for t in tags {
        outln!("Successfully imported {t}");
    }
    Ok(ExitStatus::Success)
}
