//! `cerebrum ask [PROMPT] [--file F] [--language L] [--no-stream] [--json]`:
//! one question, the answer streamed to standard output.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;

use cerebrum_shared::limits::{
    DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, MAX_TEMPERATURE, MAX_TOKENS_ORCHESTRATOR as MAX_TOKENS,
};
use clap::Args;

use super::CliError;
use super::answer::{self, Attachment, Settings, Summary};
use super::connect::{ServerArgs, runtime};
use super::exit::EXIT_CODES_HELP;
use super::style::Spinner;

/// The long `--help` text (set on the subcommand, where clap reads it).
pub const LONG_ABOUT: &str = "Ask the orchestrator one question and stream the answer to standard output.\n\n\
The question is the PROMPT argument (several words are joined with spaces). Files given \
with --file, and standard input when it is piped, are attached to it as fenced code; with \
no PROMPT, piped input is the whole prompt. Large code is cut down by the server to what \
matters to the question.\n\n\
A one-line summary (tokens, tok/s, time, model, prompt reduction) goes to standard error \
after the answer; --quiet leaves it out.\n\n\
Examples:\n  \
cerebrum ask \"What is the capital of Japan?\"\n  \
cerebrum ask --file src/lib.rs \"Where is the config parsed?\"\n  \
git diff | cerebrum ask \"Write a commit message for this diff\"\n  \
cerebrum ask --json \"Say hi\" | jq -r .result";

/// Arguments of `cerebrum ask`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct AskArgs {
    /// The question; several words are joined with spaces.
    #[arg(value_name = "PROMPT")]
    pub prompt: Vec<String>,
    /// Attach a file's content (repeatable).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Language of the code (picks the model); by default from the file
    /// extension or detected.
    #[arg(long, short = 'l', value_name = "L")]
    pub language: Option<String>,
    /// Ask this model instead of the one routing picks.
    #[arg(long, short = 'm', value_name = "NAME")]
    pub model: Option<String>,
    /// Most tokens to generate.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOKENS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TOKENS)))]
    pub max_tokens: u32,
    /// Sampling temperature, 0 (greedy) to 2.
    #[arg(long, value_name = "T", default_value_t = DEFAULT_TEMPERATURE, value_parser = parse_temperature)]
    pub temperature: f32,
    /// Wait for the whole answer and print it at once.
    #[arg(long)]
    pub no_stream: bool,
    /// Print the server's final response object as JSON (implies --no-stream).
    #[arg(long)]
    pub json: bool,
    /// No summary line on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Parses a temperature in 0..=2.
pub fn parse_temperature(s: &str) -> Result<f32, String> {
    let t: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=MAX_TEMPERATURE).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is outside 0..={MAX_TEMPERATURE}"))
    }
}

/// Reads piped standard input; `None` when it is a terminal or empty.
fn read_piped_stdin() -> Result<Option<Attachment>, CliError> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Input(format!("cannot read standard input: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        CliError::Input(format!(
            "standard input is not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(Attachment {
        name: "standard input".into(),
        language: None,
        text,
    }))
}

/// Asks, prints, summarises.
pub fn run(args: &AskArgs) -> Result<(), CliError> {
    let question = args.prompt.join(" ");
    let mut attachments = Vec::new();
    if let Some(stdin) = read_piped_stdin()? {
        attachments.push(stdin);
    }
    for path in &args.file {
        attachments.push(Attachment::from_file(path).map_err(CliError::Input)?);
    }
    let prompt = answer::compose(&question, &attachments);
    if prompt.trim().is_empty() {
        return Err(CliError::Input(
            "no prompt: give a question as an argument, attach a file with --file, or pipe text \
             into standard input (see `cerebrum ask --help`)"
                .into(),
        ));
    }
    let language = answer::pick_language(args.language.as_deref(), &attachments, &prompt);
    let settings = Settings {
        model: args.model.clone(),
        language: args.language.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
    };
    let request = settings.request(prompt, language);
    let client = args.server.client()?;
    let runtime = runtime(None)?;

    if args.json || args.no_stream {
        let mut spinner = Spinner::start("thinking…");
        let response = runtime.block_on(client.complete_with_body(&request));
        spinner.stop();
        let response = response?;
        let text = if args.json {
            // The server's object as it sent it, fields this build does not know included.
            let mut s = serde_json::to_string_pretty(&response.body)
                .map_err(|e| CliError::Output(io::Error::other(e)))?;
            s.push('\n');
            s
        } else {
            let mut s = response.value.result.clone();
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        };
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(CliError::Output)?;
        if !args.json && !args.quiet {
            answer::print_summary_stderr(&Summary::of_response(&response.value));
        }
        return Ok(());
    }

    let mut out = io::stdout().lock();
    let summary = runtime.block_on(answer::stream_answer(&client, &request, &mut out))?;
    if !args.quiet {
        answer::print_summary_stderr(&summary);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_are_checked() {
        assert_eq!(parse_temperature("0"), Ok(0.0));
        assert_eq!(parse_temperature("2"), Ok(2.0));
        assert!(parse_temperature("2.5").is_err());
        assert!(parse_temperature("warm").is_err());
    }
}
