//! `cerebrum chat`: a streaming REPL. Tokens appear as they arrive, history
//! persists in `~/.cerebrum_history`, `"""` blocks and pastes span lines,
//! slash commands change settings, attach files and show what would be sent,
//! and Ctrl-C stops an answer without leaving.
//!
//! - [`input`]: the line editor, history, `"""` blocks and pastes.
//! - [`commands`]: the slash commands, their help and their parsing.
//! - [`render`]: banner, `/help`, the end of an answer, the `/prepare` report.
//!
//! This file is the loop: read an input, run the command or ask the question.

mod commands;
mod input;
mod render;

use std::io::{self, Write};

use cerebrum::client::{Client, ClientError};
use cerebrum_shared::limits::{
    DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, MAX_TOKENS_ORCHESTRATOR as MAX_TOKENS,
};
use clap::Args;
use rustyline::error::ReadlineError;

use super::CliError;
use super::answer::{self, AnswerError, Attachment, Settings};
use super::ask::parse_temperature;
use super::connect::{ServerArgs, runtime};
use super::exit::describe;
use super::health::HealthReport;
use super::models;
use super::style::Style;
use commands::{Choice, Command};
use input::{LineReader, expand_home, history_path};
use render::Tracked;

/// Arguments of `cerebrum chat`.
#[derive(Debug, Args)]
#[command(
    long_about = "Talk to the orchestrator: a REPL whose answers stream as they are generated.\n\n\
Type a question and press Enter. Paste code freely, or type \"\"\" on a line, then any number \
of lines, then \"\"\" on a line of its own. /file PATH attaches a file to the next question; \
/prepare shows what would be sent and how much of it preparation cut; /help lists every command.\n\n\
Ctrl-C stops an answer (the server stops generating) and keeps you in the REPL; Ctrl-D or \
/quit leaves. History is kept in ~/.cerebrum_history."
)]
pub struct ChatArgs {
    /// Ask this model instead of the one routing picks.
    #[arg(long, short = 'm', value_name = "NAME")]
    pub model: Option<String>,
    /// Language of the code (picks the model); by default from attached files or detected.
    #[arg(long, short = 'l', value_name = "L")]
    pub language: Option<String>,
    /// Most tokens per answer.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOKENS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TOKENS)))]
    pub max_tokens: u32,
    /// Sampling temperature, 0 (greedy) to 2.
    #[arg(long, value_name = "T", default_value_t = DEFAULT_TEMPERATURE, value_parser = parse_temperature)]
    pub temperature: f32,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// What the loop should do after a line.
enum Next {
    Continue,
    Quit,
}

/// One chat session.
struct Session {
    client: Client,
    runtime: tokio::runtime::Runtime,
    settings: Settings,
    attachments: Vec<Attachment>,
    out: Style,
    err: Style,
}

/// Runs the REPL until Ctrl-D or `/quit`.
pub fn run(args: &ChatArgs) -> Result<(), CliError> {
    let client = args.server.client()?;
    // A worker thread keeps driving connections while the prompt waits, so a
    // stream dropped by Ctrl-C is closed at once (and the node stops).
    let runtime = runtime(Some(1))?;
    // From here on SIGINT is ours: during an answer it stops the answer, and it
    // never kills the REPL (at the prompt the line editor reads Ctrl-C as a key).
    // Installed before any line editor, which saves it and puts it back on drop.
    let _sigint = runtime
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })
        .map_err(|e| CliError::Runtime(format!("cannot handle Ctrl-C: {e}")))?;
    let mut session = Session {
        client,
        runtime,
        settings: Settings {
            model: args.model.clone(),
            language: args.language.clone(),
            max_tokens: args.max_tokens,
            temperature: args.temperature,
        },
        attachments: Vec::new(),
        out: Style::stdout(),
        err: Style::stderr(),
    };
    let mut reader = LineReader::new(session.out.is_color(), history_path())?;
    if let Some(warning) = reader.load() {
        eprintln!("{}", session.err.yellow(&warning));
    }
    session.say(&render::title(session.client.url(), session.out));
    let health = session
        .runtime
        .block_on(HealthReport::fetch(&session.client));
    session.say(&render::status(&health, session.out));
    loop {
        let input = match reader.read() {
            Ok(input) => input,
            Err(ReadlineError::Interrupted) => {
                session.say(&session.out.dim("(Ctrl-D or /quit leaves)"));
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::Runtime(format!("cannot read input: {e}"))),
        };
        if let Some(warning) = reader.take_warning() {
            eprintln!("{}", session.err.yellow(&warning));
        }
        if input.trim().is_empty() {
            continue;
        }
        if let Next::Quit = session.handle(&input::text_of(input)) {
            break;
        }
    }
    Ok(())
}

impl Session {
    fn say(&self, text: &str) {
        println!("{text}");
    }

    fn warn(&self, text: &str) {
        eprintln!("{}", self.err.red(text));
    }

    fn error(&self, e: &ClientError) {
        self.warn(&format!("error: {}", describe(e)));
    }

    fn handle(&mut self, text: &str) -> Next {
        match Command::parse(text) {
            None => self.ask(text),
            Some(Err(problem)) => self.warn(&problem),
            Some(Ok(Command::Quit)) => return Next::Quit,
            Some(Ok(command)) => self.run(command),
        }
        Next::Continue
    }

    fn run(&mut self, command: Command) {
        match command {
            Command::Model(choice) => {
                set(&mut self.settings.model, choice);
                match &self.settings.model {
                    Some(m) => self.say(&format!("model: {m}")),
                    None => self.say("model: auto (routed by language)"),
                }
            }
            Command::Language(choice) => {
                set(&mut self.settings.language, choice);
                match &self.settings.language {
                    Some(l) => self.say(&format!("language: {l}")),
                    None => self.say(
                        "language: auto (from attached files or detected; python when unknown)",
                    ),
                }
            }
            Command::MaxTokens(n) => {
                if let Some(n) = n {
                    self.settings.max_tokens = n;
                }
                self.say(&format!("max_tokens: {}", self.settings.max_tokens));
            }
            Command::Temperature(t) => {
                if let Some(t) = t {
                    self.settings.temperature = t;
                }
                self.say(&format!("temperature: {}", self.settings.temperature));
            }
            Command::File(None) => {
                if self.attachments.is_empty() {
                    self.say("no files attached; /file PATH attaches one to the next question");
                }
                for a in &self.attachments {
                    self.say(&format!("attached: {}", a.describe()));
                }
            }
            Command::File(Some(path)) => match Attachment::from_file(&expand_home(&path)) {
                Ok(a) => {
                    self.say(&format!(
                        "attached {}; it goes with your next question",
                        a.describe()
                    ));
                    self.attachments.push(a);
                }
                Err(e) => self.warn(&e),
            },
            Command::Clear => {
                let n = self.attachments.len();
                self.attachments.clear();
                self.say(&format!(
                    "dropped {n} attached file{}",
                    if n == 1 { "" } else { "s" }
                ));
            }
            Command::Prepare(question) => self.prepare(&question),
            Command::Health => match self.runtime.block_on(HealthReport::fetch(&self.client)) {
                Ok(report) => print!("{}", report.render(self.client.url(), self.out)),
                Err(e) => self.error(&e),
            },
            Command::Models => match self.runtime.block_on(self.client.models()) {
                Ok(list) => print!("{}", models::render(&list, self.out)),
                Err(e) => self.error(&e),
            },
            Command::Help => self.say(&render::help(&self.settings, self.out)),
            Command::Quit => {}
        }
    }

    /// The prompt and language for a question with the current attachments.
    fn compose(&self, question: &str) -> (String, String) {
        let prompt = answer::compose(question, &self.attachments);
        let language = answer::pick_language(
            self.settings.language.as_deref(),
            &self.attachments,
            &prompt,
        );
        (prompt, language)
    }

    fn prepare(&self, question: &str) {
        let (prompt, language) = self.compose(question);
        if prompt.trim().is_empty() {
            return self.warn("nothing to prepare: attach a file with /file PATH, or give a question: /prepare QUESTION");
        }
        match self
            .runtime
            .block_on(self.client.prepare(&prompt, Some(&language), None))
        {
            Ok(plan) => self.say(&render::plan(&plan, self.out)),
            Err(e) => self.error(&e),
        }
    }

    fn ask(&mut self, question: &str) {
        let (prompt, language) = self.compose(question);
        if prompt.trim().is_empty() {
            return;
        }
        let request = self.settings.request(prompt, language);
        let mut out = Tracked::new(io::stdout());
        let client = &self.client;
        let outcome = self.runtime.block_on(async {
            tokio::select! {
                result = answer::stream_answer(client, &request, &mut out) => Some(result),
                Ok(()) = tokio::signal::ctrl_c() => None,
            }
        });
        match outcome {
            None => {
                if out.mid_line() {
                    println!();
                }
                self.say(&render::stopped(self.out));
            }
            Some(Ok(summary)) => {
                self.say(&render::summary(&summary, self.out));
                self.attachments.clear();
            }
            Some(Err(AnswerError::Client(e))) => self.error(&e),
            Some(Err(AnswerError::Output(e))) => {
                self.warn(&format!("cannot write the answer: {e}"))
            }
        }
        let _ = io::stdout().flush();
    }
}

/// Applies a [`Choice`] to an optional setting.
fn set(setting: &mut Option<String>, choice: Choice) {
    match choice {
        Choice::Show => {}
        Choice::Auto => *setting = None,
        Choice::Set(value) => *setting = Some(value),
    }
}
