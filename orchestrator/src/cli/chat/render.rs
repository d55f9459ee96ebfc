//! What the chat prints: the banner, `/help`, the end of an answer (summary
//! line, or that it stopped), and the `/prepare` report. Pure: text in, text out.

use std::io::{self, Write};

use cerebrum::client::ClientError;
use cerebrum_shared::error::ErrorCode;
use cerebrum_shared::prepare::PreparedPrompt;

use std::path::Path;

use super::super::answer::{ContextUse, Settings, Summary, reduction_text};
use super::super::exit::describe;
use super::super::health::HealthReport;
use super::super::style::{Style, table, thousands};
use super::commands::Command;
use super::input::HISTORY_FILE;

/// The banner's first line, shown before the server is asked how it is.
pub fn title(url: &str, style: Style) -> String {
    format!(
        "{} {}",
        style.bold("Cerebrum chat"),
        style.dim(&format!("· {url}"))
    )
}

/// The rest of the banner: the server's state and loaded models, and how to use the chat.
pub fn status(health: &Result<HealthReport, ClientError>, style: Style) -> String {
    let mut lines = Vec::new();
    match health {
        Ok(report) => {
            let mut line = format!("server {}", report.orchestrator.status);
            if let Some(node) = &report.node
                && !node.models_in_cache.is_empty()
            {
                line.push_str(&format!(" · loaded: {}", node.models_in_cache.join(", ")));
            }
            lines.push(style.dim(&line));
            if let Some(problem) = report.problem() {
                lines.push(style.yellow(&format!("warning: {problem}")));
            }
        }
        Err(e) => lines.push(style.yellow(&format!("warning: {}", describe(e)))),
    }
    lines.push(style.dim(
        "Ask anything. \"\"\" starts a multi-line block; /help lists commands; Ctrl-C stops an answer; Ctrl-D leaves.",
    ));
    lines.join("\n")
}

/// The settings a question goes with, on one line.
pub fn settings_line(settings: &Settings) -> String {
    format!(
        "model {}, language {}, max_tokens {}, temperature {}",
        settings.model.as_deref().unwrap_or("auto"),
        settings.language.as_deref().unwrap_or("auto"),
        settings.max_tokens,
        settings.temperature
    )
}

/// `/help`: every command from [`Command::ALL`], then the keys, where
/// conversations are kept, then the settings now.
pub fn help(settings: &Settings, kept_in: Option<&Path>, style: Style) -> String {
    let rows: Vec<Vec<String>> = Command::ALL
        .iter()
        .map(|command| {
            let help = command.help();
            vec![
                format!("  {}", style.cyan(help.name)),
                help.usage.to_owned(),
                help.text.into_owned(),
            ]
        })
        .collect();
    let kept = match kept_in {
        Some(dir) => format!(
            "Each conversation is kept in {}; cerebrum chat --continue resumes the last one.",
            dir.display()
        ),
        None => "Conversations are not kept: neither XDG_STATE_HOME nor HOME is set.".to_owned(),
    };
    format!(
        "Commands:\n{}\
         Multi-line input: paste it, or type \"\"\" on a line, then the text, then \"\"\" on a line of its own.\n\
         Ctrl-C stops an answer; Ctrl-D leaves. History: ~/{HISTORY_FILE}.\n{kept}\n{}",
        table(&rows),
        style.dim(&format!("Now: {}", settings_line(settings)))
    )
}

/// The line after a finished answer, and a warning under it when the
/// conversation nearly fills the model's context.
pub fn summary(summary: &Summary, style: Style) -> String {
    let line = style.dim(&summary.line());
    match summary.context.as_ref().and_then(nearly_full) {
        Some(warning) => format!("{line}\n{}", style.yellow(&warning)),
        None => line,
    }
}

/// What to say when the conversation fills most of the context.
fn nearly_full(context: &ContextUse) -> Option<String> {
    context.nearly_full().then(|| {
        format!(
            "context nearly full ({}%): the server drops the oldest turns when a question does not fit; /clear starts over",
            context.percent().unwrap_or(100)
        )
    })
}

/// Why a question was left out of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// Ctrl-C stopped its answer.
    Stopped,
    /// The answer failed.
    Failed,
    /// The conversation with it does not fit the model's context.
    TooLong,
}

impl LeftOut {
    /// Why after a failed answer: the conversation grew too long for the
    /// model (the node's or the orchestrator's size refusal with earlier
    /// turns to drop), or any other failure.
    pub fn after(e: &ClientError, conversation_empty: bool) -> Self {
        match e.api().map(|a| a.code) {
            Some(ErrorCode::PromptTooLong | ErrorCode::PromptTooLarge) if !conversation_empty => {
                LeftOut::TooLong
            }
            _ => LeftOut::Failed,
        }
    }
}

/// The line after an answer that did not join the conversation.
pub fn left_out(why: LeftOut, style: Style) -> String {
    style.dim(match why {
        LeftOut::Stopped => {
            "(stopped; the question and its partial answer are left out of the conversation)"
        }
        LeftOut::Failed => "(the question is left out of the conversation)",
        LeftOut::TooLong => {
            "(the question is left out: the conversation no longer fits the model's context; \
             /clear starts over, after /save FILE to keep a copy)"
        }
    })
}

/// The banner's line for `--continue`, with the last question's first line.
pub fn resumed(messages: usize, last_question: Option<&str>, from: &Path, style: Style) -> String {
    let mut line = format!(
        "resumed {messages} message{} from {}",
        if messages == 1 { "" } else { "s" },
        from.display()
    );
    if let Some(question) = last_question {
        let first = question
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let mut shown: String = first.trim().chars().take(60).collect();
        if shown.len() < first.trim().len() || question.trim() != first.trim() {
            shown.push('…');
        }
        line.push_str(&format!(" (last question: \"{shown}\")"));
    }
    style.dim(&line)
}

/// `/prepare`'s report: the prompt that would be sent, framed by what
/// preparation did.
pub fn plan(plan: &PreparedPrompt, style: Style) -> String {
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
    let mut foot = vec![reduction_text(plan.applied.then_some(&plan.stats))];
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

/// Standard output that remembers its last byte, to end a stopped answer
/// on a fresh line.
pub struct Tracked<W: Write> {
    inner: W,
    last: Option<u8>,
}

impl<W: Write> Tracked<W> {
    /// Wraps a writer.
    pub fn new(inner: W) -> Self {
        Self { inner, last: None }
    }

    /// Whether something was written and it did not end a line.
    pub fn mid_line(&self) -> bool {
        self.last.is_some_and(|b| b != b'\n')
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use cerebrum_shared::cerebrum::OrchestratorHealth;
    use cerebrum_shared::error::ApiError;
    use cerebrum_shared::prepare::{KeptRange, PrepareStats};

    #[test]
    fn plan_report_shows_the_reduction() {
        let plan = PreparedPrompt {
            prompt: "Explain f\n```python\ndef f(): pass\n```".into(),
            applied: true,
            language: Some("python".into()),
            instruction: Some("Explain f".into()),
            stats: PrepareStats {
                original_chars: 12_000,
                final_chars: 3_000,
                reduction_percent: 75.0,
                chunks_total: 20,
                chunks_unique: 10,
                chunks_kept: 4,
                elapsed_us: 300,
                kept_ranges: vec![KeptRange {
                    start: 0,
                    end: 900,
                    start_line: 1,
                    end_line: 30,
                }],
                skipped_reason: None,
            },
        };
        let text = plan_text(&plan);
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
        let whole = PreparedPrompt {
            applied: false,
            stats: PrepareStats {
                skipped_reason: Some("too little to cut".into()),
                ..plan.stats.clone()
            },
            ..plan
        };
        assert!(
            plan_text(&whole)
                .ends_with("── no reduction · 12,000 chars · sent whole: too little to cut ──"),
            "{}",
            plan_text(&whole)
        );
    }

    fn plan_text(p: &PreparedPrompt) -> String {
        plan(p, Style::plain())
    }

    #[test]
    fn help_lists_every_command_and_the_settings() {
        let text = help(
            &Settings::default(),
            Some(Path::new("/s/cerebrum/conversations")),
            Style::plain(),
        );
        for command in Command::ALL {
            assert!(text.contains(command.help().name), "{text}");
        }
        assert!(text.contains("(1-2048)"), "{text}");
        assert!(
            text.contains("Each conversation is kept in /s/cerebrum/conversations; cerebrum chat --continue resumes the last one."),
            "{text}"
        );
        assert!(
            text.ends_with("Now: model auto, language auto, max_tokens 512, temperature 0.2"),
            "{text}"
        );
    }

    fn summary_of(context: Option<ContextUse>, cached: Option<u64>) -> Summary {
        Summary {
            tokens: 42,
            tokens_per_second: Some(30.14),
            elapsed: std::time::Duration::from_millis(1400),
            model: Some("smollm2".into()),
            reduction: None,
            context,
            cached_tokens: cached,
        }
    }

    #[test]
    fn the_summary_shows_the_context_and_the_cache() {
        let used = |used, length| ContextUse { used, length };
        assert_eq!(
            summary(
                &summary_of(Some(used(1234, Some(2048))), Some(1180)),
                Style::plain()
            ),
            "42 tokens · 30.1 tok/s · 1.4 s · smollm2 · context 1,234/2,048 · 1,180 cached"
        );
        assert_eq!(
            summary(&summary_of(Some(used(1234, None)), Some(0)), Style::plain()),
            "42 tokens · 30.1 tok/s · 1.4 s · smollm2 · context 1,234 tokens · 0 cached"
        );
        // With the reduction the orchestrator reported, and without usage.
        let mut s = summary_of(None, None);
        s.reduction = Some("reduction 61% (8,123 → 3,170 chars)".into());
        assert_eq!(
            summary(&s, Style::plain()),
            "42 tokens · 30.1 tok/s · 1.4 s · smollm2 · reduction 61% (8,123 → 3,170 chars)"
        );
    }

    #[test]
    fn a_nearly_full_context_is_said_from_80_percent() {
        let at = |used| {
            summary(
                &summary_of(
                    Some(ContextUse {
                        used,
                        length: Some(2000),
                    }),
                    None,
                ),
                Style::plain(),
            )
        };
        assert!(!at(1599).contains('\n'), "79%: {}", at(1599));
        let full = at(1600);
        assert_eq!(
            full.lines().nth(1),
            Some(
                "context nearly full (80%): the server drops the oldest turns when a question does not fit; /clear starts over"
            ),
            "{full}"
        );
        assert!(at(2000).contains("(100%)"), "{}", at(2000));
        // Unknown length: no claim either way.
        let unknown = summary(
            &summary_of(
                Some(ContextUse {
                    used: 99_999,
                    length: None,
                }),
                None,
            ),
            Style::plain(),
        );
        assert!(!unknown.contains("nearly full"), "{unknown}");
    }

    #[test]
    fn a_conversation_too_long_for_the_model_says_how_to_go_on() {
        let refused = |code| ClientError::Api(ApiError::new(code, "prompt is 170 tokens"));
        let too_long = refused(ErrorCode::PromptTooLong);
        assert_eq!(LeftOut::after(&too_long, false), LeftOut::TooLong);
        assert_eq!(
            LeftOut::after(&refused(ErrorCode::PromptTooLarge), false),
            LeftOut::TooLong
        );
        // A first question too long on its own: clearing would not help.
        assert_eq!(LeftOut::after(&too_long, true), LeftOut::Failed);
        assert_eq!(
            LeftOut::after(&refused(ErrorCode::VpsTimeout), false),
            LeftOut::Failed
        );
        assert!(
            left_out(LeftOut::TooLong, Style::plain()).contains(
                "the conversation no longer fits the model's context; /clear starts over"
            )
        );
    }

    #[test]
    fn resuming_says_what_and_where() {
        let from = Path::new("/s/c.json");
        assert_eq!(
            resumed(4, Some("And of France?"), from, Style::plain()),
            "resumed 4 messages from /s/c.json (last question: \"And of France?\")"
        );
        let long = format!("{}\nfn main() {{}}", "x".repeat(70));
        assert_eq!(
            resumed(1, Some(&long), from, Style::plain()),
            format!(
                "resumed 1 message from /s/c.json (last question: \"{}…\")",
                "x".repeat(60)
            )
        );
        assert_eq!(
            resumed(0, None, from, Style::plain()),
            "resumed 0 messages from /s/c.json"
        );
    }

    #[test]
    fn banner_says_how_the_server_is() {
        let health = OrchestratorHealth {
            status: "degraded".into(),
            cm4_status: "healthy".into(),
            vps_status: "unreachable".into(),
            vps_available: false,
            vps_connected: false,
            active_count: 0,
            queue_count: 0,
            max_in_flight: 4,
            breaker: cerebrum_shared::cerebrum::BreakerState::Closed,
            breaker_retry_after_seconds: 0,
            vps_auth: Default::default(),
            vps_auth_problem: None,
            uptime_seconds: 1,
            uptime_text: "0h 0m".into(),
            cpu_percent: 0.0,
            upstreams: Vec::new(),
        };
        let report = HealthReport {
            body: serde_json::Value::Null,
            orchestrator: health,
            node: None,
        };
        assert_eq!(
            title("http://pi:7000", Style::plain()),
            "Cerebrum chat · http://pi:7000"
        );
        let text = status(&Ok(report), Style::plain());
        assert!(text.starts_with("server degraded\n"), "{text}");
        assert!(text.contains("warning: the orchestrator cannot reach the inference node"));
        let down = Err(ClientError::Unreachable {
            url: "http://pi:7000".into(),
            detail: "refused".into(),
        });
        let text = status(&down, Style::plain());
        assert!(
            text.contains("warning: cannot reach http://pi:7000"),
            "{text}"
        );
    }

    #[test]
    fn tracked_output_knows_when_a_line_is_open() {
        let mut out = Tracked::new(Vec::new());
        assert!(!out.mid_line());
        let _ = out.write_all(b"Tok");
        assert!(out.mid_line());
        let _ = out.write_all(b"yo\n");
        assert!(!out.mid_line());
    }
}
