//! Reading what the person types: a line editor with history, completion of
//! commands and paths, `"""` blocks and bracketed pastes that span lines.
//!
//! The history file is shared by every chat running at once: each new line is
//! appended to it under the file's lock (rustyline's `append_history`), never
//! written over the whole file from one session's memory, so no session drops
//! another's lines.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{FileHistory, History};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};

use super::super::CliError;
use super::commands::Command;

/// The history file's name, in the home directory.
pub const HISTORY_FILE: &str = ".cerebrum_history";

/// Most history entries kept.
const HISTORY_SIZE: usize = 2000;

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

/// The text an input stands for: a closed block's content, else the input.
pub fn text_of(input: String) -> String {
    match block(&input) {
        Block::Closed(content) => content,
        Block::Open | Block::Line => input,
    }
}

/// `~/.cerebrum_history`, when there is a home directory.
pub fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(HISTORY_FILE))
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

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
        if ["/file ", "/save ", "/load "]
            .iter()
            .any(|c| line.starts_with(c))
        {
            return self.files.complete(line, pos, ctx);
        }
        let head = &line[..pos];
        if head.starts_with('/') && !head.contains(char::is_whitespace) {
            let found = Command::ALL
                .iter()
                .map(|c| c.help().name)
                .filter(|name| name.starts_with(head))
                .map(|name| Pair {
                    display: name.to_owned(),
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

/// Reads one input at a time with a line editor that exists only while it
/// reads: the editor installs its own SIGINT handler, and dropping it gives
/// SIGINT back to the answer's Ctrl-C handler. The history outlives the
/// editors.
pub struct LineReader {
    config: Config,
    color: bool,
    path: Option<PathBuf>,
    history: FileHistory,
    warning: Option<String>,
    save_failed: bool,
}

impl LineReader {
    /// A reader with a coloured prompt or not, and its history file, if any.
    pub fn new(color: bool, path: Option<PathBuf>) -> Result<Self, CliError> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)
            .map_err(|e| CliError::Runtime(format!("line editor: {e}")))?
            .auto_add_history(false)
            .completion_type(rustyline::CompletionType::List)
            .build();
        Ok(Self {
            history: FileHistory::with_config(&config),
            config,
            color,
            path,
            warning: None,
            save_failed: false,
        })
    }

    /// Loads the history file; a warning when it exists but cannot be read.
    /// A missing file is created empty (owner only), so that sessions
    /// starting together all append to one file under its lock.
    pub fn load(&mut self) -> Option<String> {
        let path = self.path.clone()?;
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            // Not truncated if another session created it meanwhile; a
            // failure shows when the first line is saved.
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&path);
            return None;
        }
        self.history
            .load(&path)
            .err()
            .map(|e| format!("cannot read history {}: {e}", path.display()))
    }

    /// One input: a line, a paste, or a whole `"""` block; added to the
    /// history and appended to its file at once.
    pub fn read(&mut self) -> rustyline::Result<String> {
        let history = std::mem::replace(&mut self.history, FileHistory::with_config(&self.config));
        let mut editor = Editor::with_history(self.config.clone(), history)?;
        editor.set_helper(Some(ChatHelper {
            files: FilenameCompleter::new(),
            color: self.color,
        }));
        let input = read_input(&mut editor);
        // Back before anything else: the history outlives this editor.
        self.history =
            std::mem::replace(editor.history_mut(), FileHistory::with_config(&self.config));
        let input = input?;
        self.record(&input)?;
        Ok(input)
    }

    /// Adds an input to the history and appends it to the file at once, under
    /// the file's lock: lines other sessions appended meanwhile are kept.
    fn record(&mut self, input: &str) -> rustyline::Result<()> {
        if input.trim().is_empty() {
            return Ok(());
        }
        // False for a repeat of the line before: nothing new to append.
        if self.history.add(input)?
            && let Some(path) = &self.path
            && let Err(e) = self.history.append(path)
            && !self.save_failed
        {
            // Said once: the same cause would repeat at every line.
            self.save_failed = true;
            self.warning = Some(format!("cannot save history {}: {e}", path.display()));
        }
        Ok(())
    }

    /// A warning from the last read (history not saved), once.
    pub fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }
}

/// Reads a line, or a whole `"""` block.
fn read_input(editor: &mut Editor<ChatHelper, FileHistory>) -> rustyline::Result<String> {
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
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(text_of("\"\"\"a\nb\n\"\"\"".into()), "a\nb");
        assert_eq!(text_of("plain".into()), "plain");
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
    fn sessions_writing_at_once_keep_every_line() {
        let dir = std::env::temp_dir().join(format!("cerebrum-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(HISTORY_FILE);
        let _ = std::fs::remove_file(&path);
        // Two sessions start together (each loads the file), then type at once.
        const LINES: usize = 150;
        let sessions: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let mut reader = LineReader::new(false, Some(path.clone())).unwrap();
                assert_eq!(reader.load(), None);
                std::thread::spawn(move || {
                    for i in 0..LINES {
                        reader.record(&format!("{name} {i}")).unwrap();
                    }
                    reader.take_warning()
                })
            })
            .collect();
        for s in sessions {
            assert_eq!(s.join().unwrap(), None, "every line was saved");
        }
        let file = std::fs::read_to_string(&path).unwrap();
        let kept: std::collections::BTreeSet<&str> = file.lines().collect();
        for name in ["a", "b", "c"] {
            for i in 0..LINES {
                assert!(
                    kept.contains(format!("{name} {i}").as_str()),
                    "{name} {i} lost"
                );
            }
        }
        // A session started after them sees them all.
        let mut later = LineReader::new(false, Some(path.clone())).unwrap();
        assert_eq!(later.load(), None);
        assert_eq!(later.history.len(), 3 * LINES);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn home_is_expanded() {
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(expand_home("~/x.py"), Path::new(&home).join("x.py"));
        }
        assert_eq!(expand_home("/a/b"), PathBuf::from("/a/b"));
    }
}
