//! The `ig-image` binary: parse arguments, run one command, map the result to an exit status.
//!
//! A thin CLI over the crates that do the work: `ig-image-build`, `ig-image-sign`,
//! `ig-image-registry`, `ig-image-check`, `gadget-store`, `runtime-min` and `microvm`.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod hints;
mod output;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = cli::Cli::parse();
    cli::init_logging(cli.global.verbose);
    match cli::run(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            output::print_error(&error);
            ExitCode::from(2)
        }
    }
}

/// Whether the error is (caused by) a write to a closed pipe, directly or through serde_json.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The backstop for a `println!` (ours or a library's) that hits a closed standard output:
/// std panics there; this ends the process quietly with status 0 instead. Our own printing
/// goes through `output::Out`, which never gets that far.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
