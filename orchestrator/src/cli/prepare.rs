//! `cerebrum prepare [FILE|-] [--language L] [--json]`: print the prompt that
//! would be sent, or with `--json` the prompt and its stats.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use clap::Args;

use cerebrum::prompt::{PrepareConfig, PromptInput, prepare};

use super::CliError;

/// Arguments of `cerebrum prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// File holding the prompt; `-` (the default) reads standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    pub file: PathBuf,
    /// Language of the code (`python`, `rs`, `c++`…); by default the fence's or
    /// the detected one.
    #[arg(long, short = 'l', value_name = "L")]
    pub language: Option<String>,
    /// An instruction given separately (like an OpenAI system message); it is
    /// put first.
    #[arg(long, value_name = "TEXT")]
    pub instruction: Option<String>,
    /// How many chunks to keep.
    #[arg(long, value_name = "N", default_value_t = PrepareConfig::default().top_k)]
    pub top_k: usize,
    /// Print a JSON object with the prompt and the stats instead of the prompt.
    #[arg(long)]
    pub json: bool,
    /// Also print a one-line summary of the stats on standard error.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Reads the prompt, prepares it, prints the result.
pub fn run(args: &PrepareArgs) -> Result<(), CliError> {
    let text = read_input(&args.file)?;
    let cfg = PrepareConfig {
        top_k: args.top_k,
        ..PrepareConfig::default()
    };
    let plan = prepare(
        &PromptInput {
            text: &text,
            instruction: args.instruction.as_deref(),
            language: args.language.as_deref(),
        },
        &cfg,
    );
    let mut out = if args.json {
        serde_json::to_string_pretty(&plan).map_err(|e| CliError::Output(io::Error::other(e)))?
    } else {
        plan.prompt
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    lock.write_all(out.as_bytes())
        .and_then(|()| lock.flush())
        .map_err(CliError::Output)?;
    if args.verbose {
        eprintln!("cerebrum prepare: {}", plan.stats);
    }
    Ok(())
}

/// The prompt text from `file` (`-` = standard input), as UTF-8.
fn read_input(file: &PathBuf) -> Result<String, CliError> {
    let stdin = file.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    let bytes = if stdin {
        let mut buf = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?;
        buf
    } else {
        fs::read(file).map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?
    };
    String::from_utf8(bytes).map_err(|e| {
        CliError::Input(format!(
            "{name} is not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_an_input_error() {
        let err = read_input(&PathBuf::from("/nonexistent/cerebrum/prompt.txt"));
        match err {
            Err(e @ CliError::Input(_)) => {
                assert_eq!(e.exit_code(), 2);
                assert!(e.to_string().contains("/nonexistent/cerebrum/prompt.txt"));
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
}
