//! What the chat prints: the banner, `/help`, the end of an answer (summary
//! line, or that it stopped), and the `/prepare` report. Pure: text in, text out.

use std::io::{self, Write};

use cerebrum::client::ClientError;
use cerebrum_shared::prepare::PreparedPrompt;

use super::super::answer::{Settings, Summary, reduction_text};
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

/// `/help`: every command from [`Command::ALL`], then the keys, then the settings now.
pub fn help(settings: &Settings, style: Style) -> String {
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
    format!(
        "Commands:\n{}\
         Multi-line input: paste it, or type \"\"\" on a line, then the text, then \"\"\" on a line of its own.\n\
         Ctrl-C stops an answer; Ctrl-D leaves. History: ~/{HISTORY_FILE}.\n{}",
        table(&rows),
        style.dim(&format!("Now: {}", settings_line(settings)))
    )
}

/// The line after a finished answer.
pub fn summary(summary: &Summary, style: Style) -> String {
    style.dim(&summary.line())
}

/// The line after an answer stopped by Ctrl-C.
pub fn stopped(style: Style) -> String {
    style.dim("(stopped)")
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
        let text = help(&Settings::default(), Style::plain());
        for command in Command::ALL {
            assert!(text.contains(command.help().name), "{text}");
        }
        assert!(text.contains("(1-2048)"), "{text}");
        assert!(
            text.ends_with("Now: model auto, language auto, max_tokens 512, temperature 0.2"),
            "{text}"
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
            uptime_seconds: 1,
            uptime_text: "0h 0m".into(),
            cpu_percent: 0.0,
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
