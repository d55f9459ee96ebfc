//! `cerebrum chat`: a streaming REPL. Tokens appear as they arrive, history
//! persists in `~/.cerebrum_history`, `"""` blocks and pastes span lines,
//! slash commands change settings, attach files and show what would be sent,
//! and Ctrl-C stops an answer without leaving.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};

use super::CliError;
use super::answer::{self, Attachment, Settings};
use super::ask::parse_temperature;
use super::client::{Client, ClientError, PreparedPrompt, ServerArgs};
use super::health::HealthReport;
use super::models;
use super::style::{Style, table, thousands};
use cerebrum_shared::limits::MAX_TOKENS_ORCHESTRATOR as MAX_TOKENS;

/// The history file's name, in the home directory.
pub const HISTORY_FILE: &str = ".cerebrum_history";

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
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TOKENS)))]
    pub max_tokens: u32,
    /// Sampling temperature, 0 (greedy) to 2.
    #[arg(long, value_name = "T", default_value_t = 0.2, value_parser = parse_temperature)]
    pub temperature: f32,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

const FENCE: &str = "\"\"\"";

/// Whether an input is a `"""` block, and if so whether it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Not a block: a line as typed (or pasted).
    Line,
    /// A block still waiting for its closing `"""` line.
    Open,
    /// A closed block's content.
    Closed(String),
}

/// Reads `"""` blocks: `"""` (optionally followed by text) opens one; a line
/// holding only `"""` closes it, and so does `"""` at the end of a one-line
/// `"""text"""`. Indented `"""` (a Python docstring) does not close it.
pub fn block(input: &str) -> Block {
    let Some(rest) = input.trim_start().strip_prefix(FENCE) else {
        return Block::Line;
    };
    match rest.rsplit_once('\n') {
        None => match rest.trim_end().strip_suffix(FENCE) {
            Some(inner) => Block::Closed(inner.to_owned()),
            None => Block::Open,
        },
        Some((body, last)) if last.trim_end() == FENCE => {
            Block::Closed(body.strip_prefix('\n').unwrap_or(body).to_owned())
        }
        Some(_) => Block::Open,
    }
}

/// The slash commands with their arguments and meaning, for completion and help.
const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "/model",
        "[NAME|auto]",
        "show or set the model (auto: routed by language)",
    ),
    (
        "/language",
        "[L|auto]",
        "show or set the code language (auto: from files or detected)",
    ),
    (
        "/max_tokens",
        "[N]",
        "show or set the longest answer, in tokens (1-2048)",
    ),
    (
        "/temperature",
        "[T]",
        "show or set the sampling temperature (0-2; 0 is greedy)",
    ),
    (
        "/file",
        "PATH",
        "attach a file to the next question (alone: list attachments)",
    ),
    ("/clear", "", "drop the attached files"),
    (
        "/prepare",
        "[QUESTION]",
        "show what would be sent, and how much preparation cut",
    ),
    ("/health", "", "can the stack serve now?"),
    ("/models", "", "the models the node serves"),
    ("/help", "", "this list"),
    ("/quit", "", "leave (so does Ctrl-D)"),
];

/// Line-editor help: completion of commands and paths, `"""` blocks, a styled prompt.
struct ChatHelper {
    files: FilenameCompleter,
    color: bool,
}

impl Completer for ChatHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if line.starts_with("/file ") {
            return self.files.complete(line, pos, ctx);
        }
        let head = &line[..pos];
        if head.starts_with('/') && !head.contains(char::is_whitespace) {
            let found = COMMANDS
                .iter()
                .filter(|(name, _, _)| name.starts_with(head))
                .map(|(name, _, _)| Pair {
                    display: (*name).to_owned(),
                    replacement: format!("{name} "),
                })
                .collect();
            return Ok((0, found));
        }
        Ok((pos, Vec::new()))
    }
}

impl Hinter for ChatHelper {
    type Hint = String;
}

impl Highlighter for ChatHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        if self.color {
            Cow::Owned(format!("\x1b[1;36m{prompt}\x1b[0m"))
        } else {
            Cow::Borrowed(prompt)
        }
    }
}

impl Validator for ChatHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(match block(ctx.input()) {
            Block::Open => ValidationResult::Incomplete,
            Block::Line | Block::Closed(_) => ValidationResult::Valid(None),
        })
    }
}

impl Helper for ChatHelper {}

/// Standard output that remembers its last byte, to end a stopped answer
/// on a fresh line.
struct Tracked<W: Write> {
    inner: W,
    last: Option<u8>,
}

impl<W: Write> Write for Tracked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
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

/// `~/.cerebrum_history`, when there is a home directory.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(HISTORY_FILE))
}

/// `~/x` → `$HOME/x`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Runs the REPL until Ctrl-D or `/quit`.
pub fn run(args: &ChatArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    // A worker thread keeps driving connections while the prompt waits, so a
    // stream dropped by Ctrl-C is closed at once (and the node stops).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
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
    session.banner();
    loop {
        let input = match reader.read() {
            Ok(input) => input,
            Err(ReadlineError::Interrupted) => {
                println!("{}", session.out.dim("(Ctrl-D or /quit leaves)"));
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
        let text = match block(&input) {
            Block::Closed(content) => content,
            Block::Open | Block::Line => input,
        };
        if let Next::Quit = session.handle(&text) {
            break;
        }
    }
    Ok(())
}

/// Most history entries kept.
const HISTORY_SIZE: usize = 2000;

/// Reads one input at a time with a line editor that exists only while it
/// reads: the editor installs its own SIGINT handler, and dropping it gives
/// SIGINT back to the answer's Ctrl-C handler.
struct LineReader {
    config: Config,
    color: bool,
    path: Option<PathBuf>,
    entries: Vec<String>,
    warning: Option<String>,
    save_failed: bool,
}

impl LineReader {
    fn new(color: bool, path: Option<PathBuf>) -> Result<Self, CliError> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)
            .map_err(|e| CliError::Runtime(format!("line editor: {e}")))?
            .auto_add_history(false)
            .completion_type(rustyline::CompletionType::List)
            .build();
        Ok(Self {
            config,
            color,
            path,
            entries: Vec::new(),
            warning: None,
            save_failed: false,
        })
    }

    /// Loads the history file; a warning when it exists but cannot be read.
    fn load(&mut self) -> Option<String> {
        let path = self.path.clone()?;
        if !path.exists() {
            return None;
        }
        let mut editor = match Editor::<(), DefaultHistory>::with_config(self.config.clone()) {
            Ok(e) => e,
            Err(e) => return Some(format!("cannot read history {}: {e}", path.display())),
        };
        if let Err(e) = editor.load_history(&path) {
            return Some(format!("cannot read history {}: {e}", path.display()));
        }
        self.entries = editor.history().iter().cloned().collect();
        None
    }

    fn editor(&self) -> rustyline::Result<Editor<ChatHelper, DefaultHistory>> {
        let mut editor = Editor::with_config(self.config.clone())?;
        editor.set_helper(Some(ChatHelper {
            files: FilenameCompleter::new(),
            color: self.color,
        }));
        for entry in &self.entries {
            editor.add_history_entry(entry.as_str())?;
        }
        Ok(editor)
    }

    /// One input: a line, a paste, or a whole `"""` block; added to the
    /// history, which is saved at once.
    fn read(&mut self) -> rustyline::Result<String> {
        let mut editor = self.editor()?;
        let mut input = editor.readline(">>> ")?;
        // Without a terminal the editor does not validate: gather the block here.
        while block(&input) == Block::Open {
            match editor.readline("... ") {
                Ok(more) => {
                    input.push('\n');
                    input.push_str(&more);
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e),
            }
        }
        if input.trim().is_empty() {
            return Ok(input);
        }
        editor.add_history_entry(input.as_str())?;
        if self.entries.last() != Some(&input) {
            self.entries.push(input.clone());
            if self.entries.len() > HISTORY_SIZE {
                self.entries.remove(0);
            }
        }
        if let Some(path) = &self.path
            && let Err(e) = editor.save_history(path)
            && !self.save_failed
        {
            // Said once: the same cause would repeat at every line.
            self.save_failed = true;
            self.warning = Some(format!("cannot save history {}: {e}", path.display()));
        }
        Ok(input)
    }

    fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }
}

impl Session {
    fn banner(&self) {
        println!(
            "{} {}",
            self.out.bold("Cerebrum chat"),
            self.out.dim(&format!("· {}", self.client.url()))
        );
        match self.runtime.block_on(HealthReport::fetch(&self.client)) {
            Ok(report) => {
                let mut line = format!(
                    "server {}",
                    report.orchestrator["status"].as_str().unwrap_or("?")
                );
                if let Some(models) = report
                    .node
                    .as_ref()
                    .and_then(|n| n["models_in_cache"].as_array())
                    && !models.is_empty()
                {
                    let names: Vec<&str> = models.iter().filter_map(|m| m.as_str()).collect();
                    line.push_str(&format!(" · loaded: {}", names.join(", ")));
                }
                println!("{}", self.out.dim(&line));
                if let Some(problem) = report.problem() {
                    println!("{}", self.out.yellow(&format!("warning: {problem}")));
                }
            }
            Err(e) => println!("{}", self.out.yellow(&format!("warning: {e}"))),
        }
        println!(
            "{}",
            self.out.dim("Ask anything. \"\"\" starts a multi-line block; /help lists commands; Ctrl-C stops an answer; Ctrl-D leaves.")
        );
    }

    fn say(&self, text: &str) {
        println!("{text}");
    }

    fn warn(&self, text: &str) {
        eprintln!("{}", self.err.red(text));
    }

    fn handle(&mut self, text: &str) -> Next {
        let trimmed = text.trim();
        if trimmed.starts_with('/') && !trimmed.contains('\n') {
            let (command, arg) = match trimmed.split_once(char::is_whitespace) {
                Some((c, a)) => (c, a.trim()),
                None => (trimmed, ""),
            };
            return self.command(command, arg);
        }
        self.ask(text);
        Next::Continue
    }

    fn command(&mut self, command: &str, arg: &str) -> Next {
        match command {
            "/quit" | "/exit" | "/bye" => return Next::Quit,
            "/help" | "/?" => self.help(),
            "/model" => self.set_model(arg),
            "/language" => self.set_language(arg),
            "/max_tokens" => self.set_max_tokens(arg),
            "/temperature" => self.set_temperature(arg),
            "/file" => self.attach(arg),
            "/clear" => {
                let n = self.attachments.len();
                self.attachments.clear();
                self.say(&format!(
                    "dropped {n} attached file{}",
                    if n == 1 { "" } else { "s" }
                ));
            }
            "/prepare" => self.prepare(arg),
            "/health" => self.health(),
            "/models" => self.models(),
            other => self.warn(&format!(
                "unknown command {other}; /help lists the commands"
            )),
        }
        Next::Continue
    }

    fn help(&self) {
        let rows: Vec<Vec<String>> = COMMANDS
            .iter()
            .map(|(name, args, what)| {
                vec![
                    format!("  {}", self.out.cyan(name)),
                    (*args).to_owned(),
                    (*what).to_owned(),
                ]
            })
            .collect();
        let mut text = format!("Commands:\n{}", table(&rows));
        text.push_str(
            "Multi-line input: paste it, or type \"\"\" on a line, then the text, then \"\"\" on a line of its own.\n\
             Ctrl-C stops an answer; Ctrl-D leaves. History: ~/.cerebrum_history.\n",
        );
        text.push_str(&self.out.dim(&format!("Now: {}", self.settings_line())));
        self.say(&text);
    }

    fn settings_line(&self) -> String {
        format!(
            "model {}, language {}, max_tokens {}, temperature {}",
            self.settings.model.as_deref().unwrap_or("auto"),
            self.settings.language.as_deref().unwrap_or("auto"),
            self.settings.max_tokens,
            self.settings.temperature
        )
    }

    fn set_model(&mut self, arg: &str) {
        match arg {
            "" => {}
            "auto" | "-" => self.settings.model = None,
            name => self.settings.model = Some(name.to_owned()),
        }
        match &self.settings.model {
            Some(m) => self.say(&format!("model: {m}")),
            None => self.say("model: auto (routed by language)"),
        }
    }

    fn set_language(&mut self, arg: &str) {
        match arg {
            "" => {}
            "auto" | "-" => self.settings.language = None,
            l => self.settings.language = Some(l.to_owned()),
        }
        match &self.settings.language {
            Some(l) => self.say(&format!("language: {l}")),
            None => {
                self.say("language: auto (from attached files or detected; python when unknown)")
            }
        }
    }

    fn set_max_tokens(&mut self, arg: &str) {
        if !arg.is_empty() {
            match arg.parse::<u32>() {
                Ok(n) if (1..=MAX_TOKENS).contains(&n) => self.settings.max_tokens = n,
                _ => {
                    return self.warn(&format!(
                        "max_tokens must be a whole number from 1 to {MAX_TOKENS}"
                    ));
                }
            }
        }
        self.say(&format!("max_tokens: {}", self.settings.max_tokens));
    }

    fn set_temperature(&mut self, arg: &str) {
        if !arg.is_empty() {
            match parse_temperature(arg) {
                Ok(t) => self.settings.temperature = t,
                Err(e) => return self.warn(&format!("temperature: {e}")),
            }
        }
        self.say(&format!("temperature: {}", self.settings.temperature));
    }

    fn attach(&mut self, arg: &str) {
        if arg.is_empty() {
            if self.attachments.is_empty() {
                self.say("no files attached; /file PATH attaches one to the next question");
            }
            for a in &self.attachments {
                self.say(&format!("attached: {}", a.describe()));
            }
            return;
        }
        let path = expand_home(arg.trim_matches(|c| c == '"' || c == '\''));
        match Attachment::from_file(&path) {
            Ok(a) => {
                self.say(&format!(
                    "attached {}; it goes with your next question",
                    a.describe()
                ));
                self.attachments.push(a);
            }
            Err(e) => self.warn(&e),
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
            .block_on(self.client.prepare(&prompt, Some(&language)))
        {
            Ok(plan) => self.say(&render_plan(&plan, self.out)),
            Err(e) => self.error(&e),
        }
    }

    fn health(&self) {
        match self.runtime.block_on(HealthReport::fetch(&self.client)) {
            Ok(report) => print!("{}", report.render(self.client.url(), self.out)),
            Err(e) => self.error(&e),
        }
    }

    fn models(&self) {
        match self.runtime.block_on(self.client.models()) {
            Ok((_, list)) => print!("{}", models::render(&list, self.out)),
            Err(e) => self.error(&e),
        }
    }

    fn error(&self, e: &ClientError) {
        self.warn(&format!("error: {e}"));
    }

    fn ask(&mut self, question: &str) {
        let (prompt, language) = self.compose(question);
        if prompt.trim().is_empty() {
            return;
        }
        let request = self.settings.request(prompt, language);
        let mut out = Tracked {
            inner: io::stdout(),
            last: None,
        };
        let client = &self.client;
        let outcome = self.runtime.block_on(async {
            tokio::select! {
                result = answer::stream_answer(client, &request, &mut out) => Some(result),
                Ok(()) = tokio::signal::ctrl_c() => None,
            }
        });
        match outcome {
            None => {
                if out.last.is_some_and(|b| b != b'\n') {
                    println!();
                }
                println!("{}", self.out.dim("(stopped)"));
            }
            Some(Ok(summary)) => {
                println!("{}", self.out.dim(&summary.line()));
                self.attachments.clear();
            }
            Some(Err(answer::AnswerError::Client(e))) => self.error(&e),
            Some(Err(answer::AnswerError::Output(e))) => {
                self.warn(&format!("cannot write the answer: {e}"))
            }
        }
        let _ = io::stdout().flush();
    }
}

/// `/prepare`'s report: the prompt that would be sent, framed by what
/// preparation did.
fn render_plan(plan: &PreparedPrompt, style: Style) -> String {
    let mut head = vec![format!(
        "language {}",
        plan.language.as_deref().unwrap_or("unknown")
    )];
    if let Some(instruction) = &plan.instruction {
        let first: String = instruction
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        head.push(format!("instruction \"{first}\""));
    }
    let mut foot = vec![answer::reduction_text(plan.applied.then_some(&plan.stats))];
    if plan.applied {
        let ranges: Vec<String> = plan
            .stats
            .kept_ranges
            .iter()
            .map(|r| format!("{}-{}", r.start_line, r.end_line))
            .collect();
        if !ranges.is_empty() {
            foot.push(format!("kept lines {}", ranges.join(", ")));
        }
        foot.push(format!(
            "{} of {} chunks",
            plan.stats.chunks_kept, plan.stats.chunks_total
        ));
    } else {
        foot.push(format!(
            "{} chars",
            thousands(plan.stats.original_chars as u64)
        ));
        if let Some(reason) = &plan.stats.skipped_reason {
            foot.push(format!("sent whole: {reason}"));
        }
    }
    format!(
        "{}\n{}\n{}",
        style.dim(&format!("── would send ({}) ──", head.join(", "))),
        plan.prompt.trim_end(),
        style.bold(&format!("── {} ──", foot.join(" · ")))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerebrum_shared::prepare::{KeptRange as KeptLines, PrepareStats as PreparedStats};

    #[test]
    fn blocks_open_and_close() {
        assert_eq!(block("hello"), Block::Line);
        assert_eq!(block("\"\"\""), Block::Open);
        assert_eq!(block("\"\"\"\nfn main() {}"), Block::Open);
        assert_eq!(
            block("\"\"\"\nfn main() {}\n\"\"\""),
            Block::Closed("fn main() {}".into())
        );
        assert_eq!(
            block("\"\"\"Explain:\nx = 1\n\"\"\"  "),
            Block::Closed("Explain:\nx = 1".into())
        );
        assert_eq!(
            block("\"\"\"one line\"\"\""),
            Block::Closed("one line".into())
        );
    }

    #[test]
    fn indented_docstring_quotes_do_not_close_a_block() {
        let open = "\"\"\"\ndef f():\n    \"\"\"Doc.\n    \"\"\"";
        assert_eq!(block(open), Block::Open);
        assert_eq!(
            block(&format!("{open}\n    return 1\n\"\"\"")),
            Block::Closed("def f():\n    \"\"\"Doc.\n    \"\"\"\n    return 1".into())
        );
    }

    #[test]
    fn home_is_expanded() {
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(expand_home("~/x.py"), Path::new(&home).join("x.py"));
        }
        assert_eq!(expand_home("/a/b"), PathBuf::from("/a/b"));
    }

    #[test]
    fn plan_report_shows_the_reduction() {
        let plan = PreparedPrompt {
            prompt: "Explain f\n```python\ndef f(): pass\n```".into(),
            applied: true,
            language: Some("python".into()),
            instruction: Some("Explain f".into()),
            stats: PreparedStats {
                original_chars: 12_000,
                final_chars: 3_000,
                reduction_percent: 75.0,
                chunks_total: 20,
                chunks_unique: 10,
                chunks_kept: 4,
                elapsed_us: 300,
                kept_ranges: vec![KeptLines {
                    start: 0,
                    end: 900,
                    start_line: 1,
                    end_line: 30,
                }],
                skipped_reason: None,
            },
        };
        let text = render_plan(&plan, Style::plain());
        assert!(
            text.contains("── would send (language python, instruction \"Explain f\") ──"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "── reduction 75% (12,000 → 3,000 chars) · kept lines 1-30 · 4 of 20 chunks ──"
            ),
            "{text}"
        );
    }
}
