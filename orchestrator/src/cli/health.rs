//! `cerebrum health [--json]`: can the stack serve now? A table for people,
//! JSON for scripts, and an exit code for monitors (0 only when healthy).

use std::io::{self, Write};

use cerebrum::client::{Client, ClientError};
use cerebrum_shared::cerebrum::{
    BreakerState, NodeHealth, OrchestratorHealth, UpstreamHealth, VpsAuth,
};
use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use super::connect::{ServerArgs, runtime};
use super::exit::{EXIT_CODES_HELP, describe};
use super::style::{Style, table, thousands};

/// The long `--help` text (set on the subcommand, where clap reads it).
pub const LONG_ABOUT: &str = "Show whether the stack can serve a request now: the orchestrator, the \
inference node behind it, and the circuit breaker between them.\n\n\
Exits 0 only when a request could be served now, so cron jobs and monitors can call it: \
3 when the orchestrator cannot be reached, 4 when it answers but cannot serve (node down \
or overloaded, breaker open).";

/// Arguments of `cerebrum health`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
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
    /// The orchestrator's `/health`.
    pub orchestrator: OrchestratorHealth,
    /// Its body as the server sent it (for `--json`).
    pub body: Value,
    /// The node's `/health` through `/v1/vps/health`, when reachable.
    pub node: Option<NodeHealth>,
}

impl HealthReport {
    /// Fetches both (the node's view is best effort).
    pub async fn fetch(client: &Client) -> Result<Self, ClientError> {
        let (orchestrator, node) = tokio::join!(client.health_with_body(), client.node_health());
        let orchestrator = orchestrator?;
        Ok(Self {
            orchestrator: orchestrator.value,
            body: orchestrator.body,
            node: node.ok(),
        })
    }

    /// Whether a request could be served now.
    pub fn is_healthy(&self) -> bool {
        self.orchestrator.is_healthy()
    }

    /// Why a request could not be served now, in words; `None` when healthy.
    pub fn problem(&self) -> Option<String> {
        if self.is_healthy() {
            return None;
        }
        let h = &self.orchestrator;
        if h.upstreams.len() > 1 {
            let why: Vec<String> = h
                .upstreams
                .iter()
                .filter(|u| !u.ready && !u.fallback)
                .map(|u| format!("upstream '{}' {}", u.name, not_ready(u)))
                .collect();
            if !why.is_empty() {
                return Some(why.join("; "));
            }
        }
        Some(if !h.vps_connected {
            "the orchestrator cannot reach the inference node".to_owned()
        } else if h.vps_auth == VpsAuth::Refused {
            format!(
                "the inference node refuses the orchestrator: {}",
                h.vps_auth_problem.as_deref().unwrap_or("fix VPS_API_KEY")
            )
        } else if h.breaker == BreakerState::Open {
            match h.breaker_retry_after_seconds {
                0 => "the circuit breaker is open (the node failed repeatedly)".to_owned(),
                s => format!(
                    "the circuit breaker is open (the node failed repeatedly); retry in {s} s"
                ),
            }
        } else if !h.vps_available {
            format!(
                "the inference node is {} and not accepting work",
                h.vps_status
            )
        } else {
            format!("the stack reports {}", h.status)
        })
    }

    /// The human-readable table.
    pub fn render(&self, url: &str, style: Style) -> String {
        let h = &self.orchestrator;
        let painted = if self.is_healthy() {
            style.green(&h.status)
        } else {
            style.yellow(&h.status)
        };
        let mut out = format!("{} {url}: {painted}\n", style.bold("Cerebrum at"));
        let flag = |v: bool, yes: &str, no: &str| if v { yes } else { no }.to_owned();
        let orchestrator = vec![
            "orchestrator".to_owned(),
            format!(
                "up {}, {} of {} in flight, cpu {:.0}%",
                h.uptime_text, h.active_count, h.max_in_flight, h.cpu_percent
            ),
        ];
        if h.upstreams.len() > 1 {
            let mut rows = vec![orchestrator];
            rows.extend(h.upstreams.iter().map(|u| {
                vec![
                    format!(
                        "{} {}",
                        if u.fallback { "fallback" } else { "upstream" },
                        u.name
                    ),
                    upstream_line(u),
                ]
            }));
            for line in table(&rows).lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
            if let Some(problem) = self.problem() {
                out.push_str(&format!("  {}\n", style.yellow(&problem)));
            }
            return out;
        }
        let mut rows = vec![
            orchestrator,
            vec![
                "node".to_owned(),
                format!(
                    "{}, {}, {}",
                    h.vps_status,
                    flag(h.vps_connected, "connected", "not connected"),
                    flag(h.vps_available, "available", "not available")
                ),
            ],
            vec![
                "node auth".to_owned(),
                match h.vps_auth {
                    VpsAuth::Ok => "accepted".to_owned(),
                    VpsAuth::Refused => "refused".to_owned(),
                    VpsAuth::Unknown => "not checked yet".to_owned(),
                },
            ],
            vec![
                "breaker".to_owned(),
                match (h.breaker.as_str(), h.breaker_retry_after_seconds) {
                    ("open", s) if s > 0 => format!("open (retry in {s} s)"),
                    ("", _) => "?".to_owned(),
                    (b, _) => b.to_owned(),
                },
            ],
        ];
        if let Some(n) = &self.node {
            let mut models = match n.models_in_cache.as_slice() {
                [] => "none loaded".to_owned(),
                loaded => format!("{} loaded", loaded.join(", ")),
            };
            if !n.models_loading.is_empty() {
                models.push_str(&format!(", {} loading", n.models_loading.join(", ")));
            }
            rows.push(vec!["models".to_owned(), models]);
            rows.push(vec![
                "generating".to_owned(),
                format!(
                    "{} sequence{}",
                    n.active_sequences,
                    if n.active_sequences == 1 { "" } else { "s" }
                ),
            ]);
            rows.push(vec![
                "node host".to_owned(),
                format!(
                    "cpu {:.0}%, {:.1} GB RAM free, up {}",
                    n.cpu_usage_percent,
                    n.ram_available_gb,
                    uptime(n.uptime_seconds)
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

/// One upstream in a line: state, kind, load, breaker, models.
fn upstream_line(u: &UpstreamHealth) -> String {
    let state = if u.ready {
        "ready".to_owned()
    } else {
        format!("not ready: {}", not_ready(u))
    };
    let models = if u.models.is_empty() {
        "models unknown".to_owned()
    } else {
        u.models.join(", ")
    };
    format!(
        "{state}; {}, {} of {} in flight, breaker {}; {models}",
        u.kind.as_str(),
        u.in_flight,
        u.slots,
        u.breaker.as_str()
    )
}

/// Why one upstream cannot take a request now.
fn not_ready(u: &UpstreamHealth) -> String {
    if !u.connected {
        format!("{} ({})", u.status, u.endpoint)
    } else if u.auth == VpsAuth::Refused {
        u.auth_problem
            .clone()
            .unwrap_or_else(|| "it refuses the orchestrator's key".into())
    } else if u.breaker == BreakerState::Open {
        format!("breaker open, retry in {} s", u.breaker_retry_after_seconds)
    } else if !u.available {
        format!("{}, not accepting work", u.status)
    } else {
        u.status.clone()
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
    let client = args.server.client()?;
    let runtime = runtime(None)?;
    let report = match runtime.block_on(HealthReport::fetch(&client)) {
        Ok(r) => r,
        Err(e) => {
            if args.json {
                let body =
                    json!({"status": "unreachable", "url": client.url(), "message": describe(&e)});
                print_out(&format!("{}\n", pretty(&body)?))?;
            }
            return Err(e.into());
        }
    };
    let text = if args.json {
        format!("{}\n", pretty(&report.body)?)
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

    fn health(
        status: &str,
        connected: bool,
        available: bool,
        breaker: BreakerState,
    ) -> OrchestratorHealth {
        OrchestratorHealth {
            status: status.into(),
            cm4_status: "healthy".into(),
            vps_status: if connected { "healthy" } else { "unreachable" }.into(),
            vps_available: available,
            vps_connected: connected,
            active_count: 0,
            queue_count: 0,
            max_in_flight: 4,
            breaker,
            breaker_retry_after_seconds: 0,
            vps_auth: VpsAuth::Ok,
            vps_auth_problem: None,
            uptime_seconds: 60,
            uptime_text: "0h 1m".into(),
            cpu_percent: 3.0,
            upstreams: Vec::new(),
        }
    }

    fn report(h: OrchestratorHealth) -> HealthReport {
        HealthReport {
            body: serde_json::to_value(&h).unwrap_or_default(),
            orchestrator: h,
            node: None,
        }
    }

    #[test]
    fn healthy_has_no_problem() {
        let mut r = report(health("healthy", true, true, BreakerState::Closed));
        assert!(r.is_healthy());
        assert_eq!(r.problem(), None);
        let text = r.render("http://x", Style::plain());
        assert!(
            text.starts_with("Cerebrum at http://x: healthy\n"),
            "{text}"
        );
        assert!(text.contains("breaker       closed"), "{text}");
        assert!(
            text.contains("up 0h 1m, 0 of 4 in flight, cpu 3%"),
            "{text}"
        );
        r.node = Some(NodeHealth {
            status: "healthy".into(),
            available: true,
            reason: None,
            cpu_usage_percent: 12.0,
            cpu_other_percent: 1.0,
            ram_available_gb: 3.31,
            ram_used_gb: 1.0,
            models_in_cache: vec!["smollm2".into()],
            models_loading: vec!["qwen".into()],
            active_sequences: 1,
            context_length: Some(2048),
            uptime_seconds: 7260,
        });
        let text = r.render("http://x", Style::plain());
        assert!(text.contains("smollm2 loaded, qwen loading"), "{text}");
        assert!(text.contains("1 sequence\n"), "{text}");
        assert!(
            text.contains("cpu 12%, 3.3 GB RAM free, up 2h 1m"),
            "{text}"
        );
    }

    #[test]
    fn degraded_says_why() {
        let down = report(health("degraded", false, false, BreakerState::Closed));
        assert!(
            down.problem()
                .is_some_and(|p| p.contains("cannot reach the inference node"))
        );
        let mut open = health("degraded", true, true, BreakerState::Open);
        open.breaker_retry_after_seconds = 12;
        assert!(
            report(open)
                .problem()
                .is_some_and(|p| p.contains("circuit breaker is open") && p.contains("12 s"))
        );
        let mut refused = health("degraded", true, true, BreakerState::Closed);
        refused.vps_auth = VpsAuth::Refused;
        refused.vps_auth_problem = Some("set VPS_API_KEY on the Pi".into());
        let refused = report(refused);
        assert_eq!(
            refused.problem().as_deref(),
            Some("the inference node refuses the orchestrator: set VPS_API_KEY on the Pi")
        );
        assert!(
            refused
                .render("http://x", Style::plain())
                .contains("node auth     refused"),
            "{}",
            refused.render("http://x", Style::plain())
        );
        let mut two = health("degraded", true, true, BreakerState::Closed);
        let upstream = |name: &str, ready: bool| UpstreamHealth {
            name: name.into(),
            endpoint: format!("http://{name}:9000"),
            kind: cerebrum_shared::cerebrum::UpstreamKind::CerebrumNode,
            fallback: false,
            ready,
            status: if ready { "healthy" } else { "unreachable" }.into(),
            connected: ready,
            available: ready,
            breaker: if ready {
                BreakerState::Closed
            } else {
                BreakerState::Open
            },
            breaker_retry_after_seconds: if ready { 0 } else { 7 },
            auth: VpsAuth::Ok,
            auth_problem: None,
            models: vec![format!("{name}-model")],
            in_flight: 1,
            slots: 4,
        };
        two.upstreams = vec![upstream("a", true), upstream("b", false)];
        let two = report(two);
        assert_eq!(
            two.problem().as_deref(),
            Some("upstream 'b' unreachable (http://b:9000)")
        );
        let text = two.render("http://x", Style::plain());
        assert!(
            text.contains(
                "upstream a    ready; cerebrum-node, 1 of 4 in flight, breaker closed; a-model"
            ),
            "{text}"
        );
        assert!(
            text.contains("upstream b    not ready: unreachable (http://b:9000); cerebrum-node, 1 of 4 in flight, breaker open; b-model"),
            "{text}"
        );
        let mut busy = health("degraded", true, false, BreakerState::Closed);
        busy.vps_status = "overloaded".into();
        assert!(
            report(busy)
                .problem()
                .is_some_and(|p| p.contains("overloaded"))
        );
    }
}
