//! What `ask` and `chat` share: building the prompt from a question and
//! attached files, picking the language, streaming an answer to the terminal
//! behind a spinner, and the one-line summary printed after it.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use cerebrum::client::{Chunk, Client, ClientError};
use cerebrum::prompt::{detect_language, normalize_language};
use cerebrum_shared::cerebrum::{CompleteRequest, CompleteResponse, SamplingExtras};
use cerebrum_shared::limits::{DEFAULT_LANGUAGE, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE};
use cerebrum_shared::prepare::PrepareStats;

use super::CliError;
use super::style::{Spinner, Style, thousands};

/// A text attached to a question: a file's content or standard input.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// Shown to the person (`src/main.rs`, `standard input`).
    pub name: String,
    /// The content.
    pub text: String,
    /// The language its name implies (`.rs` → `rust`), if any.
    pub language: Option<&'static str>,
}

impl Attachment {
    /// Reads a file as UTF-8; the error message names the file.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let name = path.display().to_string();
        let bytes = fs::read(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            format!(
                "{name} is not valid UTF-8 (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            )
        })?;
        let language = path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(normalize_language);
        Ok(Self {
            name,
            text,
            language,
        })
    }

    /// One line about it: `src/main.rs (120 lines, 3,456 chars)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} lines, {} chars)",
            self.name,
            thousands(self.text.lines().count() as u64),
            thousands(self.text.chars().count() as u64)
        )
    }
}

/// A fence of backticks longer than any run inside `text`, so the content
/// cannot close it early.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// The prompt sent for a question with attachments: the question first (it
/// is the instruction), then each attachment in a fenced block tagged with
/// its language. Without attachments the question is sent as typed; without
/// a question a single attachment is sent as is (it may hold its own
/// instruction, as a file with a `# TODO:` line does).
pub fn compose(question: &str, attachments: &[Attachment]) -> String {
    let question = question.trim();
    match (question.is_empty(), attachments) {
        (_, []) => question.to_owned(),
        (true, [only]) => only.text.clone(),
        _ => {
            let mut out = String::from(question);
            for a in attachments {
                if !out.is_empty() {
                    out.push_str("\n\n");
                }
                let fence = fence_for(&a.text);
                let body = a.text.trim_end_matches('\n');
                let tag = a.language.unwrap_or("");
                out.push_str(&format!("{fence}{tag}\n{body}\n{fence}"));
            }
            out
        }
    }
}

/// The `language` to send: the one given, else the first attachment's, else
/// the one detected in the prompt, else the API's default.
pub fn pick_language(given: Option<&str>, attachments: &[Attachment], prompt: &str) -> String {
    if let Some(l) = given.map(str::trim).filter(|l| !l.is_empty()) {
        return l.to_owned();
    }
    attachments
        .iter()
        .find_map(|a| a.language)
        .or_else(|| detect_language(prompt))
        .unwrap_or(DEFAULT_LANGUAGE)
        .to_owned()
}

/// The knobs a question is sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Explicit model; routing by language when `None`.
    pub model: Option<String>,
    /// Explicit language; picked by [`pick_language`] when `None`.
    pub language: Option<String>,
    /// 1..=2048.
    pub max_tokens: u32,
    /// 0..=2.
    pub temperature: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            language: None,
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: DEFAULT_TEMPERATURE,
        }
    }
}

impl Settings {
    /// The request for a composed prompt.
    pub fn request(&self, prompt: String, language: String) -> CompleteRequest {
        CompleteRequest {
            prompt,
            language,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            model: self.model.clone(),
            stop: None,
            sampling: SamplingExtras::default(),
        }
    }
}

/// How an answer went, for the summary line.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Tokens generated.
    pub tokens: u64,
    /// Generation speed after the first token, when measurable.
    pub tokens_per_second: Option<f64>,
    /// From sending the question to the last token.
    pub elapsed: Duration,
    /// The model that answered.
    pub model: Option<String>,
    /// What preparation did to the prompt (see [`reduction_text`]), when known.
    pub reduction: Option<String>,
    /// How much of the model's context the conversation fills, when known (chat).
    pub context: Option<ContextUse>,
    /// Prompt tokens served from the node's cache, when reported (chat).
    pub cached_tokens: Option<u64>,
}

/// The share of a model's context a conversation fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextUse {
    /// Tokens of the conversation so far: the last prompt and its answer.
    pub used: u64,
    /// Tokens the model's context holds, when the server says.
    pub length: Option<u64>,
}

impl ContextUse {
    /// From this share on, the context is nearly full (80%).
    pub const NEARLY_FULL_PERCENT: u64 = 80;

    /// The share used, in whole percent (rounded down), when the length is known.
    pub fn percent(&self) -> Option<u64> {
        self.length
            .filter(|&length| length > 0)
            .map(|length| self.used.saturating_mul(100) / length)
    }

    /// Whether the conversation fills [`Self::NEARLY_FULL_PERCENT`] or more.
    pub fn nearly_full(&self) -> bool {
        self.percent()
            .is_some_and(|p| p >= Self::NEARLY_FULL_PERCENT)
    }

    /// `context 1,234/2,048`, or `context 1,234 tokens` when the length is unknown.
    pub fn text(&self) -> String {
        match self.length {
            Some(length) => format!("context {}/{}", thousands(self.used), thousands(length)),
            None => format!("context {} tokens", thousands(self.used)),
        }
    }
}

impl Summary {
    /// The summary of a whole (not streamed) answer.
    pub fn of_response(response: &CompleteResponse) -> Self {
        let tokens = response.tokens_generated;
        let seconds = response.inference_time_seconds.max(0.0);
        Self {
            tokens,
            tokens_per_second: (seconds > 0.0 && tokens > 0).then(|| tokens as f64 / seconds),
            elapsed: Duration::from_secs_f64(seconds),
            model: Some(response.model_used.clone()),
            reduction: Some(reduction_text(
                response
                    .preparation
                    .as_ref()
                    .filter(|p| p.applied)
                    .map(|p| &p.stats),
            )),
            context: None,
            cached_tokens: None,
        }
    }

    /// `12 tokens · 25.3 tok/s · 1.4 s · smollm2 · no reduction`; in a chat
    /// also `· context 1,234/2,048 · 1,180 cached`.
    pub fn line(&self) -> String {
        let mut parts = vec![format!(
            "{} token{}",
            thousands(self.tokens),
            if self.tokens == 1 { "" } else { "s" }
        )];
        if let Some(rate) = self.tokens_per_second {
            parts.push(format!("{rate:.1} tok/s"));
        }
        parts.push(format!("{:.1} s", self.elapsed.as_secs_f64()));
        if let Some(model) = &self.model {
            parts.push(model.clone());
        }
        if let Some(r) = &self.reduction {
            parts.push(r.clone());
        }
        if let Some(context) = &self.context {
            parts.push(context.text());
        }
        if let Some(cached) = self.cached_tokens {
            parts.push(format!("{} cached", thousands(cached)));
        }
        parts.join(" · ")
    }
}

/// `reduction 61% (8,123 → 3,170 chars)` for a prompt that preparation cut
/// down, or `no reduction` (`None`) when it was sent whole.
pub fn reduction_text(applied: Option<&PrepareStats>) -> String {
    match applied {
        Some(stats) => format!(
            "reduction {:.0}% ({} → {} chars)",
            stats.reduction_percent,
            thousands(stats.original_chars as u64),
            thousands(stats.final_chars as u64)
        ),
        None => "no reduction".to_owned(),
    }
}

/// Why streaming an answer failed: the server or link, or our own output.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing the answer failed (a closed pipe, a full disk).
    #[error("cannot write the answer: {0}")]
    Output(#[source] io::Error),
}

impl From<AnswerError> for CliError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::Client(e) => CliError::Client(e),
            AnswerError::Output(e) => CliError::Output(e),
        }
    }
}

/// Writes an answer as it streams: a spinner (on a terminal) until the first
/// token, each token's text at once, and a newline at the end when the
/// answer did not end its line. Times the tokens for the summary.
pub struct Printer<'a> {
    out: &'a mut dyn Write,
    spinner: Spinner,
    started: Instant,
    first_token: Option<Duration>,
    last_token: Instant,
    count: u64,
    ends_with_newline: bool,
}

impl<'a> Printer<'a> {
    /// Starts the clock and the spinner.
    pub fn start(out: &'a mut dyn Write) -> Self {
        let started = Instant::now();
        Self {
            out,
            spinner: Spinner::start("thinking…"),
            started,
            first_token: None,
            last_token: started,
            count: 0,
            ends_with_newline: true,
        }
    }

    /// One token's text (possibly empty), written and flushed at once.
    pub fn token(&mut self, text: &str) -> Result<(), AnswerError> {
        if self.first_token.is_none() {
            self.spinner.stop();
            self.first_token = Some(self.started.elapsed());
        }
        self.count += 1;
        self.last_token = Instant::now();
        if text.is_empty() {
            return Ok(());
        }
        self.ends_with_newline = text.ends_with('\n');
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(AnswerError::Output)
    }

    /// The answer failed part-way: the spinner goes, an open line is ended.
    pub fn abandon(&mut self) {
        self.spinner.stop();
        if !self.ends_with_newline {
            let _ = writeln!(self.out);
            self.ends_with_newline = true;
        }
    }

    /// The answer is complete: ends its line; the summary's first figures
    /// (`tokens` as the server counted them, when it did; `inference_time`,
    /// the server's seconds, for the rate when too few tokens were timed here).
    pub fn finish(
        mut self,
        tokens: Option<u64>,
        inference_time: Option<f64>,
    ) -> Result<Summary, AnswerError> {
        self.spinner.stop();
        if !self.ends_with_newline {
            self.out.write_all(b"\n").map_err(AnswerError::Output)?;
        }
        self.out.flush().map_err(AnswerError::Output)?;
        let count = self.count;
        let tokens = tokens.unwrap_or(0).max(count);
        let rate = match self.first_token {
            Some(first) if count >= 2 => {
                let span = self
                    .last_token
                    .duration_since(self.started)
                    .saturating_sub(first);
                (span.as_secs_f64() > 0.0).then(|| (count - 1) as f64 / span.as_secs_f64())
            }
            _ => None,
        }
        .or_else(|| {
            inference_time
                .filter(|&t| t > 0.0 && tokens > 0)
                .map(|t| tokens as f64 / t)
        });
        Ok(Summary {
            tokens,
            tokens_per_second: rate,
            elapsed: self.started.elapsed(),
            model: None,
            reduction: None,
            context: None,
            cached_tokens: None,
        })
    }
}

/// Streams the answer to `request` into `out`, a token at a time, behind a
/// spinner (on a terminal) until the first token; the reduction figures come
/// with the final event. The answer ends with a newline.
///
/// Dropping the returned future part-way drops the connection, and with it
/// the generation.
pub async fn stream_answer(
    client: &Client,
    request: &CompleteRequest,
    out: &mut dyn Write,
) -> Result<Summary, AnswerError> {
    let mut printer = Printer::start(out);
    let mut stream = client.complete_stream(request).await?;
    let done = loop {
        let chunk = match stream.next().await {
            Ok(Some(c)) => c,
            Ok(None) => {
                printer.abandon();
                return Err(ClientError::Protocol(
                    "the answer ended without its final event".into(),
                )
                .into());
            }
            Err(e) => {
                printer.abandon();
                return Err(e.into());
            }
        };
        match chunk {
            Chunk::Token(token) => printer.token(&token.token)?,
            Chunk::Done(done) => break *done,
        }
    };
    let summary = printer.finish(Some(done.total_tokens), Some(done.inference_time))?;
    Ok(Summary {
        model: done.model,
        reduction: done
            .preparation
            .as_ref()
            .map(|p| reduction_text(p.applied.then_some(&p.stats))),
        ..summary
    })
}

/// Prints a summary line on standard error, dim when it is a terminal.
pub fn print_summary_stderr(summary: &Summary) {
    let style = Style::stderr();
    eprintln!("{}", style.dim(&summary.line()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(name: &str, text: &str, language: Option<&'static str>) -> Attachment {
        Attachment {
            name: name.into(),
            text: text.into(),
            language,
        }
    }

    #[test]
    fn question_alone_is_sent_as_typed() {
        assert_eq!(compose("  What is 2+2?\n", &[]), "What is 2+2?");
    }

    #[test]
    fn attachments_are_fenced_after_the_question() {
        let a = attachment("a.rs", "fn main() {}\n", Some("rust"));
        assert_eq!(
            compose("Explain", &[a]),
            "Explain\n\n```rust\nfn main() {}\n```"
        );
    }

    #[test]
    fn a_lone_attachment_is_sent_as_is() {
        let a = attachment("a.py", "# TODO: speed up\nx = 1\n", Some("python"));
        assert_eq!(compose("", std::slice::from_ref(&a)), a.text);
    }

    #[test]
    fn fences_outgrow_backticks_inside() {
        let a = attachment("README.md", "```sh\nls\n```\n", None);
        assert_eq!(
            compose("Summarise", &[a]),
            "Summarise\n\n````\n```sh\nls\n```\n````"
        );
    }

    #[test]
    fn language_comes_from_flag_then_file_then_text() {
        let rs = attachment("a.rs", "fn main() {}", Some("rust"));
        assert_eq!(
            pick_language(Some("go"), std::slice::from_ref(&rs), ""),
            "go"
        );
        assert_eq!(pick_language(None, &[rs], ""), "rust");
        assert_eq!(
            pick_language(None, &[], "What is the capital of Japan?"),
            "python"
        );
    }

    #[test]
    fn summary_line_reads_well() {
        let s = Summary {
            tokens: 12,
            tokens_per_second: Some(25.26),
            elapsed: Duration::from_millis(1400),
            model: Some("smollm2".into()),
            reduction: None,
            context: None,
            cached_tokens: None,
        };
        assert_eq!(s.line(), "12 tokens · 25.3 tok/s · 1.4 s · smollm2");
        let s = Summary {
            reduction: Some("no reduction".into()),
            ..s
        };
        assert!(s.line().ends_with("smollm2 · no reduction"));
    }

    #[test]
    fn complete_response_summarises() {
        let r: cerebrum_shared::cerebrum::CompleteResponse = serde_json::from_value(
            serde_json::json!({"result": "Tokyo", "language": "python", "source": "vps",
            "model_used": "smollm2", "tokens_generated": 10, "inference_time_seconds": 0.5,
            "timestamp": 1.0}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = Summary::of_response(&r);
        assert_eq!(s.tokens, 10);
        assert_eq!(s.model.as_deref(), Some("smollm2"));
        assert_eq!(s.reduction.as_deref(), Some("no reduction"));
        assert_eq!(s.tokens_per_second, Some(20.0));
    }

    #[test]
    fn missing_file_names_it() {
        let e = Attachment::from_file(Path::new("/nonexistent/cerebrum/x.py")).unwrap_err();
        assert!(e.contains("/nonexistent/cerebrum/x.py"), "{e}");
    }
}
