//! `cerebrum chat`: a streaming REPL that keeps the conversation. Each
//! question goes to the orchestrator's `POST /v1/chat/completions` with every
//! earlier turn, as sent and as answered, so follow-ups ("now add tests") have
//! their context; the node reuses its cache for the part it has seen. Tokens
//! appear as they arrive, history persists in `~/.cerebrum_history`, `"""`
//! blocks and pastes span lines, slash commands change settings, attach
//! files, save and load conversations and show what would be sent, and Ctrl-C
//! stops an answer without leaving.
//!
//! - [`input`]: the line editor, history, `"""` blocks and pastes.
//! - [`commands`]: the slash commands, their help and their parsing.
//! - [`conversation`]: the messages, and their JSON files.
//! - [`store`]: where conversations are kept between runs.
//! - [`reply`]: one streamed answer to the conversation.
//! - [`render`]: banner, `/help`, the end of an answer, the `/prepare` report.
//!
//! This file is the loop: read an input, run the command or ask the question.
//!
//! A question joins the conversation only with its whole answer: an answer
//! stopped by Ctrl-C or cut off by an error is left out, question and part
//! alike, so the next question is not read as a reply to half an answer.

mod commands;
mod conversation;
mod input;
mod render;
mod reply;
mod store;

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::SystemTime;

use cerebrum::client::{Client, ClientError};
use cerebrum_shared::limits::{
    DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, MAX_TOKENS_ORCHESTRATOR as MAX_TOKENS,
};
use clap::Args;
use rustyline::error::ReadlineError;

use super::CliError;
use super::answer::{self, AnswerError, Attachment, ContextUse, Settings};
use super::ask::parse_temperature;
use super::connect::{ServerArgs, runtime};
use super::exit::describe;
use super::health::HealthReport;
use super::models;
use super::style::Style;
use commands::{Choice, Command};
use conversation::Conversation;
use input::{LineReader, expand_home, history_path};
use render::{LeftOut, Tracked};
use reply::Reply;
use store::{Keeper, Store};

/// The long `--help` text (set on the subcommand, where clap reads it).
pub const LONG_ABOUT: &str = "Talk to the orchestrator: a REPL whose answers stream as they are generated, \
in one conversation: each question is sent with the earlier questions and answers, so \
follow-ups need no repeating.\n\n\
Type a question and press Enter. Paste code freely, or type \"\"\" on a line, then any number \
of lines, then \"\"\" on a line of its own. /file PATH attaches a file to the next question; \
/prepare shows what would be sent and how much of it preparation cut; /clear starts over; \
/save FILE and /load FILE write and read a conversation; /help lists every command.\n\n\
After each answer a summary line shows the tokens, speed, time, model, how much of the \
model's context the conversation fills and how many prompt tokens came from the node's cache.\n\n\
Each conversation is kept in $XDG_STATE_HOME/cerebrum/conversations (default \
~/.local/state/cerebrum/conversations), one file per conversation, written after every answer; \
--continue resumes the most recent one. An answer stopped with Ctrl-C or cut off by an error \
is not kept, and neither is its question.\n\n\
Ctrl-C stops an answer (the server stops generating) and keeps you in the REPL; Ctrl-D or \
/quit leaves. Line-editing history is kept in ~/.cerebrum_history.";

/// Arguments of `cerebrum chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Ask this model instead of the one routing picks.
    #[arg(long, short = 'm', value_name = "NAME")]
    pub model: Option<String>,
    /// Language of the code (tags attached files, which picks the model); by
    /// default from attached files or detected.
    #[arg(long, short = 'l', value_name = "L")]
    pub language: Option<String>,
    /// Most tokens per answer.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOKENS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TOKENS)))]
    pub max_tokens: u32,
    /// Sampling temperature, 0 (greedy) to 2.
    #[arg(long, value_name = "T", default_value_t = DEFAULT_TEMPERATURE, value_parser = parse_temperature)]
    pub temperature: f32,
    /// Resume the most recent conversation (kept in $XDG_STATE_HOME/cerebrum/conversations).
    #[arg(long = "continue", short = 'c')]
    pub resume: bool,
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
    conversation: Conversation,
    keeping: Keeper,
    /// Each model's context length, as `/v1/models` stated it (read once per
    /// model; `/model` forgets them).
    contexts: HashMap<String, Option<u64>>,
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
        conversation: Conversation::default(),
        keeping: Keeper::new(Store::from_env(), SystemTime::now()),
        contexts: HashMap::new(),
        out: Style::stdout(),
        err: Style::stderr(),
    };
    let mut reader = LineReader::new(session.out.is_color(), history_path())?;
    if let Some(warning) = reader.load() {
        session.caution(&warning);
    }
    session.say(&render::title(session.client.url(), session.out));
    let health = session
        .runtime
        .block_on(HealthReport::fetch(&session.client));
    session.say(&render::status(&health, session.out));
    if args.resume {
        session.resume();
    }
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
            session.caution(&warning);
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

    fn caution(&self, text: &str) {
        eprintln!("{}", self.err.yellow(text));
    }

    fn error(&self, e: &ClientError) {
        self.warn(&format!("error: {}", describe(e)));
    }

    /// `--continue`: the most recently kept conversation becomes this one
    /// (its later turns go to this session's own file, so the earlier file
    /// is never written by two chats at once).
    fn resume(&mut self) {
        let Some(store) = self.keeping.store() else {
            return self.caution(
                "nothing to continue: conversations are not kept (neither XDG_STATE_HOME nor HOME is set)",
            );
        };
        match store.latest() {
            Ok(Some(path)) => match Conversation::load(&path) {
                Ok(conversation) => {
                    self.say(&render::resumed(
                        conversation.len(),
                        conversation.last_question(),
                        &path,
                        self.out,
                    ));
                    self.conversation = conversation;
                }
                Err(e) => self.caution(&format!(
                    "cannot continue: {e}; starting a new conversation"
                )),
            },
            Ok(None) => self.say(&self.out.dim(&format!(
                "no earlier conversation in {}; starting a new one",
                store.dir().display()
            ))),
            Err(e) => self.caution(&format!(
                "cannot read {}: {e}; starting a new conversation",
                store.dir().display()
            )),
        }
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
                // Read the context lengths again: the server may have changed too.
                self.contexts.clear();
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
                let (messages, files) = (self.conversation.len(), self.attachments.len());
                self.conversation = Conversation::default();
                self.attachments.clear();
                self.keeping.next();
                self.say(&format!(
                    "new conversation: forgot {} and {}",
                    plural(messages, "message"),
                    plural(files, "attached file"),
                ));
            }
            Command::Save(None) => match self.keeping.file() {
                Some(file) if !self.conversation.is_empty() => self.say(&format!(
                    "this conversation is kept in {}; /save FILE writes a copy",
                    file.display()
                )),
                _ => self.say("/save FILE writes the conversation to FILE"),
            },
            Command::Save(Some(path)) => {
                let path = expand_home(&path);
                match self.conversation.save(&path) {
                    Ok(()) => self.say(&format!(
                        "saved {} to {}",
                        plural(self.conversation.len(), "message"),
                        path.display()
                    )),
                    Err(e) => self.warn(&format!("cannot save {}: {e}", path.display())),
                }
            }
            Command::Load(None) => self.warn("/load needs a file: /load FILE"),
            Command::Load(Some(path)) => match Conversation::load(&expand_home(&path)) {
                Ok(conversation) => {
                    self.say(&format!(
                        "loaded {} from {}; the next question continues it",
                        plural(conversation.len(), "message"),
                        path
                    ));
                    self.conversation = conversation;
                    self.keeping.next();
                }
                Err(e) => self.warn(&format!("{e}; the conversation is unchanged")),
            },
            Command::Prepare(question) => self.prepare(&question),
            Command::Health => match self.runtime.block_on(HealthReport::fetch(&self.client)) {
                Ok(report) => print!("{}", report.render(self.client.url(), self.out)),
                Err(e) => self.error(&e),
            },
            Command::Models => match self.runtime.block_on(self.client.models()) {
                Ok(list) => print!("{}", models::render(&list, self.out)),
                Err(e) => self.error(&e),
            },
            Command::Help => self.say(&render::help(
                &self.settings,
                self.keeping.store().map(Store::dir),
                self.out,
            )),
            Command::Quit => {}
        }
    }

    /// The prompt and language for a question with the current attachments.
    /// Attached files whose name tells no language are tagged with the one
    /// set (`/language`): the tag is what the server routes a chat by.
    fn compose(&self, question: &str) -> (String, String) {
        let set = self
            .settings
            .language
            .as_deref()
            .and_then(cerebrum::prompt::normalize_language);
        let attachments: Vec<Attachment> = self
            .attachments
            .iter()
            .cloned()
            .map(|a| Attachment {
                language: a.language.or(set),
                ..a
            })
            .collect();
        let prompt = answer::compose(question, &attachments);
        let language =
            answer::pick_language(self.settings.language.as_deref(), &attachments, &prompt);
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
        let (prompt, _) = self.compose(question);
        if prompt.trim().is_empty() {
            return;
        }
        let request = reply::request(&self.settings, self.conversation.request_messages(&prompt));
        let mut out = Tracked::new(io::stdout());
        let client = &self.client;
        let outcome = self.runtime.block_on(async {
            tokio::select! {
                result = reply::stream_reply(client, &request, &mut out) => Some(result),
                Ok(()) = tokio::signal::ctrl_c() => None,
            }
        });
        match outcome {
            None => {
                if out.mid_line() {
                    println!();
                }
                self.say(&render::left_out(LeftOut::Stopped, self.out));
            }
            Some(Ok(reply)) => self.answered(&prompt, reply),
            Some(Err(AnswerError::Client(e))) => {
                self.error(&e);
                let why = LeftOut::after(&e, self.conversation.is_empty());
                self.say(&render::left_out(why, self.out));
            }
            Some(Err(AnswerError::Output(e))) => {
                self.warn(&format!("cannot write the answer: {e}"));
                self.say(&render::left_out(LeftOut::Failed, self.out));
            }
        }
        let _ = io::stdout().flush();
    }

    /// A whole answer: the turn joins the conversation, which is kept, and
    /// the summary says how full the model's context now is.
    fn answered(&mut self, prompt: &str, reply: Reply) {
        self.attachments.clear();
        self.conversation.push_turn(prompt, &reply.text);
        if let Some(warning) = self.keeping.keep(&self.conversation) {
            self.caution(&warning);
        }
        if let Some(problem) = &reply.header_problem {
            self.caution(&format!("warning: {problem}"));
        }
        let mut summary = reply.summary;
        if let Some(usage) = reply.usage {
            let length = summary
                .model
                .as_deref()
                .and_then(|model| self.context_length(model));
            summary.context = Some(ContextUse {
                used: usage.prompt_tokens + usage.completion_tokens,
                length,
            });
            summary.cached_tokens = usage.prompt_tokens_details.map(|d| d.cached_tokens);
        }
        self.say(&render::summary(&summary, self.out));
    }

    /// `model`'s context length, from `/v1/models` the first time (then
    /// remembered; a failed read is tried again next time).
    fn context_length(&mut self, model: &str) -> Option<u64> {
        if let Some(known) = self.contexts.get(model) {
            return *known;
        }
        let list = self.runtime.block_on(self.client.models()).ok()?;
        for card in &list.data {
            self.contexts.insert(card.id.clone(), card.context_length);
        }
        // A model the list does not hold has no stated length.
        *self.contexts.entry(model.to_owned()).or_insert(None)
    }
}

/// `1 message`, `3 messages`.
fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Applies a [`Choice`] to an optional setting.
fn set(setting: &mut Option<String>, choice: Choice) {
    match choice {
        Choice::Show => {}
        Choice::Auto => *setting = None,
        Choice::Set(value) => *setting = Some(value),
    }
}
