//! `ig-image completions` and `ig-image man`: shell completion scripts and man pages, generated
//! from the same clap definitions as `--help` (clap_complete, clap_mangen).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _, ValueEnum};

use super::{Cli, ExitStatus, GlobalArgs};
use crate::output::{self, Format};

/// Shells with a completion script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (bash-completion)
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

/// Print a shell completion script for ig-image on standard output.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
ig-image completions bash > /etc/bash_completion.d/ig-image\n  \
ig-image completions zsh > \"${fpath[1]}/_ig-image\"\n  \
ig-image completions fish > ~/.config/fish/completions/ig-image.fish")]
pub struct CompletionsArgs {
    /// The shell
    shell: Shell,
}

pub fn exec_completions(_global: &GlobalArgs, args: CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    let mut out = std::io::BufWriter::new(output::Out);
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "ig-image", &mut out);
    out.flush().context("cannot write to standard output")?;
    Ok(ExitStatus::Success)
}

/// Write man pages (roff) for ig-image and each of its commands into a directory.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
ig-image man /usr/local/share/man/man1 && man ig-image-build\n\n\
JSON (-o json): {\"dir\", \"pages\": [file names]}")]
pub struct ManArgs {
    /// Directory to write `ig-image.1` and `ig-image-<command>.1` into (created if missing)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Output format: text, or json (one object)
    #[arg(short = 'o', long = "output", value_enum, default_value = "columns")]
    output: Format,
}

pub fn exec_man(_global: &GlobalArgs, args: ManArgs) -> anyhow::Result<ExitStatus> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create `{}`", args.dir.display()))?;
    let command = Cli::command();
    let mut pages = Vec::new();
    let mut write_page = |name: String, cmd: clap::Command| -> anyhow::Result<()> {
        let mut buf = Vec::new();
        // clap names are `&'static str` here (no `string` feature): this one-shot command
        // leaks a few page names.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        clap_mangen::Man::new(cmd.name(static_name))
            .render(&mut buf)
            .with_context(|| format!("cannot render the man page of `{name}`"))?;
        let file = format!("{name}.1");
        let path = args.dir.join(&file);
        std::fs::write(&path, buf).with_context(|| format!("cannot write `{}`", path.display()))?;
        pages.push(file);
        Ok(())
    };
    for sub in command.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        write_page(format!("ig-image-{}", sub.get_name()), sub.clone())?;
    }
    write_page("ig-image".to_string(), command.clone())?;
    pages.sort();
    if args.output != Format::Columns {
        output::print_data(
            &serde_json::json!({ "dir": args.dir, "pages": pages }),
            args.output,
        )?;
    } else {
        for p in &pages {
            crate::outln!("{}", args.dir.join(p).display());
        }
    }
    Ok(ExitStatus::Success)
}
