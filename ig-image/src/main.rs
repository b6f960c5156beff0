//! The `ig-image` binary: parse arguments, run one command, map the result to an exit status.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod output;

fn main() -> ExitCode {
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

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
