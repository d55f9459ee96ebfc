//! `cerebrum`: the orchestrator's command line. Parsing and dispatch only; each
//! subcommand lives in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cerebrum: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
