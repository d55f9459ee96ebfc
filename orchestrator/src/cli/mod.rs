//! The `cerebrum` command line: one module per subcommand.
//!
//! Subcommands are variants of [`Command`], each with its arguments and `run`
//! in a sibling module (`prepare.rs` today; `serve`, `chat`, `ask`, `health`,
//! `models` are to come the same way). Errors carry their exit code so `main`
//! stays a dispatcher.

mod prepare;
mod serve;

use std::io;

use clap::{Parser, Subcommand};

/// Cerebrum orchestrator and command-line client.
#[derive(Debug, Parser)]
#[command(name = "cerebrum", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show exactly what would be sent to the model for a prompt: the
    /// instruction first, then only the code that matters to it.
    Prepare(prepare::PrepareArgs),
    /// Run the orchestrator server (the Pi tier) in front of the inference node.
    Serve(serve::ServeArgs),
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input from the person: unreadable file, invalid UTF-8 (exit 2).
    #[error("{0}")]
    Input(String),
    /// Writing the result failed (exit 1).
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// The server or a client call failed at run time (exit 1).
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    /// Process exit code: 2 for input problems (as clap uses for usage
    /// errors), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Output(_) | CliError::Runtime(_) => 1,
        }
    }

    /// True when the reader of our output went away (`cerebrum prepare | head`),
    /// which is not worth an error message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Prepare(args) => prepare::run(&args),
        Command::Serve(args) => serve::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::Input("x".into()).exit_code(), 2);
        let pipe = CliError::Output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 1);
        assert!(pipe.is_broken_pipe());
    }
}
