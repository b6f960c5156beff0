//! `ig-image export`.

use gadget_store::hint::Hinted;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use gadget_store::Reference;

use super::{ExitStatus, GlobalArgs};
use crate::outln;
use crate::output::{self, Format};

/// Write images (with their signatures) to a tar file: a plain, deterministic OCI image layout.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image export trace_open:v1 trace_exec:v1 gadgets.tar\n  \
ig-image export trace_open:v1 - | ssh host ig-image import -\n\n\
FILE `-` is standard output (refused on a terminal; the summary then goes to stderr).\n\
JSON (-o json): {\"file\", \"images\", \"entries\", \"blobs\", \"blobBytes\"}")]
pub struct ExportArgs {
    /// Images, then the tar file to write (`-`: standard output)
    #[arg(required = true, num_args = 2.., value_name = "IMAGE... FILE")]
    args: Vec<String>,
    /// Output format of the summary: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<ExitStatus> {
    let (file, images) = args
        .args
        .split_last()
        .expect("clap requires two or more values");
    let to_stdout = file == "-";
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Hinted::new(
            "refusing to write a tar archive to a terminal",
            "redirect it (`> gadgets.tar`) or name a file instead of `-`",
        )
        .into());
    }
    if to_stdout && args.output != Format::Columns {
        anyhow::bail!(
            "`-o` json/yaml cannot share standard output with the tar archive of `-`: name a file instead"
        );
    }
    let references = images
        .iter()
        .map(|i| Reference::parse(i))
        .collect::<Result<Vec<_>, _>>()?;
    let store = global.open_store()?;
    let report = if to_stdout {
        // The archive is written to a temporary file first (the store writes it atomically),
        // then copied out.
        let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
        let path = tmp.path().join("export.tar");
        let report = store
            .export(&references, &path)
            .context("cannot export to standard output")?;
        let mut tar = std::fs::File::open(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let mut out = output::Out;
        std::io::copy(&mut tar, &mut out).context("cannot write to standard output")?;
        out.flush().context("cannot write to standard output")?;
        report
    } else {
        let path = PathBuf::from(file);
        store
            .export(&references, &path)
            .with_context(|| format!("cannot export to `{}`", path.display()))?
    };
    if args.output != Format::Columns {
        let doc = serde_json::json!({
            "file": file,
            "images": report.images,
            "entries": report.entries,
            "blobs": report.blobs,
            "blobBytes": report.blob_bytes,
        });
        output::print_data(&doc, args.output)?;
    } else if to_stdout {
        for r in &report.images {
            output::status("Exported", r);
        }
    } else {
        for r in &report.images {
            outln!("Successfully exported {r}");
        }
    }
    Ok(ExitStatus::Success)
}
