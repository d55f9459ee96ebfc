//! The `cerebrum` command line: one module per subcommand.
//!
//! Subcommands are variants of [`Command`], each with its arguments and `run`
//! in a sibling module (`prepare`, `serve`, `chat`, `ask`, `health`, `models`).
//! The client commands call the library's typed client (`cerebrum::client`)
//! and share `connect` (`--url`, `--key`), `answer` (prompt and streamed
//! answer), `style` (the terminal) and `exit` (what a failed call means:
//! message and exit code). Errors carry their exit code so `main` stays a
//! dispatcher.

mod answer;
mod ask;
mod chat;
mod connect;
mod exit;
mod health;
mod models;
mod prepare;
mod serve;
mod style;

use std::io;

use cerebrum::client::ClientError;
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
    /// Talk to the orchestrator in one conversation: a REPL whose answers stream as they arrive.
    #[command(long_about = chat::LONG_ABOUT)]
    Chat(chat::ChatArgs),
    /// Ask one question; the answer streams to standard output.
    #[command(long_about = ask::LONG_ABOUT)]
    Ask(ask::AskArgs),
    /// Show whether the stack can serve now (exits non-zero when it cannot).
    #[command(long_about = health::LONG_ABOUT)]
    Health(health::HealthArgs),
    /// List the models the inference node serves.
    Models(models::ModelsArgs),
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
    /// A call to the orchestrator failed; the message and exit code depend
    /// on how (see [`exit::EXIT_CODES_HELP`]).
    #[error("{}", exit::describe(.0))]
    Client(#[from] ClientError),
    /// The orchestrator answered but the stack cannot serve now (exit 4).
    #[error("{0}")]
    Unavailable(String),
}

impl CliError {
    /// Process exit code: 2 for input problems (as clap uses for usage
    /// errors), the client's codes for failed calls (3 unreachable, 4
    /// unavailable, 5 refused), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => exit::EXIT_USAGE,
            CliError::Output(_) | CliError::Runtime(_) => exit::EXIT_FAILED,
            CliError::Client(e) => exit::exit_code(e),
            CliError::Unavailable(_) => exit::EXIT_UNAVAILABLE,
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
        Command::Chat(args) => chat::run(&args),
        Command::Ask(args) => ask::run(&args),
        Command::Health(args) => health::run(&args),
        Command::Models(args) => models::run(&args),
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
    fn long_help_is_the_subcommands_own() {
        let mut cli = Cli::command();
        for (name, long) in [
            ("chat", chat::LONG_ABOUT),
            ("ask", ask::LONG_ABOUT),
            ("health", health::LONG_ABOUT),
        ] {
            let sub = cli
                .find_subcommand_mut(name)
                .unwrap_or_else(|| panic!("{name}"));
            let help = sub.render_long_help().to_string();
            let first = long.split("\n\n").next().unwrap_or_default();
            assert!(help.starts_with(first), "{name} --help:\n{help}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::Input("x".into()).exit_code(), 2);
        let pipe = CliError::Output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 1);
        assert!(pipe.is_broken_pipe());
        // A failed call says what `exit` makes of it, with its exit code.
        let busy = CliError::Client(ClientError::Api(cerebrum_shared::error::ApiError::new(
            cerebrum_shared::error::ErrorCode::Cm4Busy,
            "x",
        )));
        assert_eq!(busy.exit_code(), exit::EXIT_UNAVAILABLE);
        assert!(
            busy.to_string().starts_with("the orchestrator is busy"),
            "{busy}"
        );
    }
}
