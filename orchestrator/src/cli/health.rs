//! `cerebrum health [--json]`: can the stack serve now? A table for people,
//! JSON for scripts, and an exit code for monitors (0 only when healthy).

use std::io::{self, Write};

use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use super::client::{Client, ClientError, EXIT_CODES_HELP, ServerArgs};
use super::style::{Style, table, thousands};

/// Arguments of `cerebrum health`.
#[derive(Debug, Args)]
#[command(
    long_about = "Show whether the stack can serve a request now: the orchestrator, the \
inference node behind it, and the circuit breaker between them.\n\n\
Exits 0 only when a request could be served now, so cron jobs and monitors can call it: \
3 when the orchestrator cannot be reached, 4 when it answers but cannot serve (node down \
or overloaded, breaker open).",
    after_help = EXIT_CODES_HELP
)]
pub struct HealthArgs {
    /// Print the orchestrator's `/health` object as JSON (an object with
    /// `"status": "unreachable"` when it cannot be reached).
    #[arg(long)]
    pub json: bool,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The orchestrator's `/health`, and the node's own health when it could be had.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The orchestrator's `/health` body.
    pub orchestrator: Value,
    /// The node's `/health` through `/v1/vps/health`, when reachable.
    pub node: Option<Value>,
}

impl HealthReport {
    /// Fetches both (the node's view is best effort).
    pub async fn fetch(client: &Client) -> Result<Self, ClientError> {
        let (orchestrator, node) = tokio::join!(client.health(), client.node_health());
        Ok(Self {
            orchestrator: orchestrator?,
            node: node.ok(),
        })
    }

    /// Whether a request could be served now.
    pub fn is_healthy(&self) -> bool {
        self.orchestrator["status"].as_str() == Some("healthy")
    }

    /// Why a request could not be served now, in words; `None` when healthy.
    pub fn problem(&self) -> Option<String> {
        if self.is_healthy() {
            return None;
        }
        let h = &self.orchestrator;
        let retry = h["breaker_retry_after_seconds"].as_u64().filter(|s| *s > 0);
        Some(if h["vps_connected"].as_bool() == Some(false) {
            "the orchestrator cannot reach the inference node".to_owned()
        } else if h["breaker"].as_str() == Some("open") {
            match retry {
                Some(s) => format!(
                    "the circuit breaker is open (the node failed repeatedly); retry in {s} s"
                ),
                None => "the circuit breaker is open (the node failed repeatedly)".to_owned(),
            }
        } else if h["vps_available"].as_bool() == Some(false) {
            format!(
                "the inference node is {} and not accepting work",
                h["vps_status"].as_str().unwrap_or("unavailable")
            )
        } else {
            format!(
                "the stack reports {}",
                h["status"].as_str().unwrap_or("an unknown status")
            )
        })
    }

    /// The human-readable table.
    pub fn render(&self, url: &str, style: Style) -> String {
        let h = &self.orchestrator;
        let status = h["status"].as_str().unwrap_or("unknown");
        let painted = if self.is_healthy() {
            style.green(status)
        } else {
            style.yellow(status)
        };
        let mut out = format!("{} {url}: {painted}\n", style.bold("Cerebrum at"));
        let flag = |v: &Value, yes: &str, no: &str| match v.as_bool() {
            Some(true) => yes.to_owned(),
            Some(false) => no.to_owned(),
            None => "?".to_owned(),
        };
        let mut rows = vec![
            vec![
                "orchestrator".to_owned(),
                format!(
                    "up {}, {} of {} in flight, cpu {:.0}%",
                    h["uptime_text"].as_str().unwrap_or("?"),
                    h["active_count"].as_u64().unwrap_or(0),
                    h["max_in_flight"]
                        .as_u64()
                        .map_or("?".to_owned(), |n| n.to_string()),
                    h["cpu_percent"].as_f64().unwrap_or(0.0)
                ),
            ],
            vec![
                "node".to_owned(),
                format!(
                    "{}, {}, {}",
                    h["vps_status"].as_str().unwrap_or("?"),
                    flag(&h["vps_connected"], "connected", "not connected"),
                    flag(&h["vps_available"], "available", "not available")
                ),
            ],
            vec![
                "breaker".to_owned(),
                match (
                    h["breaker"].as_str(),
                    h["breaker_retry_after_seconds"].as_u64(),
                ) {
                    (Some("open"), Some(s)) if s > 0 => format!("open (retry in {s} s)"),
                    (Some(b), _) => b.to_owned(),
                    (None, _) => "?".to_owned(),
                },
            ],
        ];
        if let Some(n) = &self.node {
            let list = |v: &Value| {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|s| !s.is_empty())
            };
            let mut models = list(&n["models_in_cache"])
                .map_or("none loaded".to_owned(), |m| format!("{m} loaded"));
            if let Some(loading) = list(&n["models_loading"]) {
                models.push_str(&format!(", {loading} loading"));
            }
            rows.push(vec!["models".to_owned(), models]);
            rows.push(vec![
                "generating".to_owned(),
                format!(
                    "{} sequence{}",
                    n["active_sequences"].as_u64().unwrap_or(0),
                    if n["active_sequences"].as_u64() == Some(1) {
                        ""
                    } else {
                        "s"
                    }
                ),
            ]);
            rows.push(vec![
                "node host".to_owned(),
                format!(
                    "cpu {:.0}%, {:.1} GB RAM free, up {}",
                    n["cpu_usage_percent"].as_f64().unwrap_or(0.0),
                    n["ram_available_gb"].as_f64().unwrap_or(0.0),
                    uptime(n["uptime_seconds"].as_u64().unwrap_or(0))
                ),
            ]);
        }
        for line in table(&rows).lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        if let Some(problem) = self.problem() {
            out.push_str(&format!("  {}\n", style.yellow(&problem)));
        }
        out
    }
}

fn uptime(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}h {}m", thousands(secs / 3600), (secs % 3600) / 60)
    } else {
        format!("{}m {}s", secs / 60, secs % 60)
    }
}

/// Fetches and prints; an error when the stack cannot serve.
pub fn run(args: &HealthArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let report = match runtime.block_on(HealthReport::fetch(&client)) {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                let body =
                    json!({"status": "unreachable", "url": client.url(), "message": e.to_string()});
                print_out(&format!("{}\n", pretty(&body)?))?;
            }
            return Err(e.into());
        }
    };
    let text = if args.json {
        format!("{}\n", pretty(&report.orchestrator)?)
    } else {
        report.render(client.url(), Style::stdout())
    };
    print_out(&text)?;
    match report.problem() {
        None => Ok(()),
        Some(problem) => Err(CliError::Unavailable(format!(
            "the stack cannot serve now: {problem}"
        ))),
    }
}

fn pretty(v: &Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(v).map_err(|e| CliError::Output(io::Error::other(e)))
}

fn print_out(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(h: Value) -> HealthReport {
        HealthReport {
            orchestrator: h,
            node: None,
        }
    }

    #[test]
    fn healthy_has_no_problem() {
        let r = report(
            json!({"status": "healthy", "vps_connected": true, "vps_available": true,
            "breaker": "closed", "vps_status": "healthy"}),
        );
        assert!(r.is_healthy());
        assert_eq!(r.problem(), None);
        let text = r.render("http://x", Style::plain());
        assert!(
            text.starts_with("Cerebrum at http://x: healthy\n"),
            "{text}"
        );
        assert!(text.contains("breaker       closed"), "{text}");
    }

    #[test]
    fn degraded_says_why() {
        let down = report(
            json!({"status": "degraded", "vps_connected": false, "vps_available": false,
            "breaker": "closed", "vps_status": "unreachable"}),
        );
        assert!(
            down.problem()
                .is_some_and(|p| p.contains("cannot reach the inference node"))
        );
        let open = report(
            json!({"status": "degraded", "vps_connected": true, "vps_available": true,
            "breaker": "open", "breaker_retry_after_seconds": 12}),
        );
        assert!(
            open.problem()
                .is_some_and(|p| p.contains("circuit breaker is open") && p.contains("12 s"))
        );
        let busy = report(
            json!({"status": "degraded", "vps_connected": true, "vps_available": false,
            "breaker": "closed", "vps_status": "overloaded"}),
        );
        assert!(busy.problem().is_some_and(|p| p.contains("overloaded")));
    }
}
