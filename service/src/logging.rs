//! How both servers log, decided once from the environment:
//!
//! - **what**: `RUST_LOG` (full `tracing` directives, e.g. `info,cerebrum::upstream=debug`)
//!   when set, else `LOG_LEVEL` (the same syntax; the env files set it), else the
//!   binary's default. A filter that does not parse is reported and the default used.
//! - **how**: `LOG_FORMAT=text` (default) or `json` (one JSON object a line, the
//!   request span's fields flattened in: for log shippers).
//! - **where**: stderr. Under systemd (`JOURNAL_STREAM` set) the journal stamps
//!   each line itself, so there is no second timestamp, and no colour codes; colour
//!   only on a terminal, and never with `NO_COLOR`.
//!
//! Every request logs one line at its end (see [`crate::layers::log_request`]):
//! `request` with its id, method, route, status, model, prompt and generated
//! tokens, time to the first byte of the body (`ttft_ms`), duration (`ms`) and
//! outcome (`ok`, `error`, `cancelled`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::settings::LOG_LEVEL;

/// The variable naming the standard `tracing` filter.
pub const RUST_LOG: &str = "RUST_LOG";
/// The variable choosing the line format.
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// Every variable logging reads (read before the settings, so not in their
/// tables; `--help` and the env-example check add them).
pub const VARIABLES: [&str; 3] = [RUST_LOG, LOG_LEVEL, LOG_FORMAT];

/// The line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What the environment asks for (pure: the caller passes the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The filter directives.
    pub filter: String,
    /// The format.
    pub format: Format,
    /// Colour codes.
    pub ansi: bool,
    /// A timestamp on each line (off under systemd: the journal has one).
    pub timestamps: bool,
    /// What was wrong in the environment, to log once logging works.
    pub warnings: Vec<String>,
}

/// Decides the [`Plan`] from `env` (a variable's value, if set and not blank).
pub fn plan(env: impl Fn(&str) -> Option<String>, stderr_is_terminal: bool, default: &str) -> Plan {
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut warnings = Vec::new();
    let filter = match [RUST_LOG, LOG_LEVEL]
        .into_iter()
        .find_map(|name| var(name).map(|v| (name, v)))
    {
        Some((name, value)) => match EnvFilter::try_new(&value) {
            Ok(_) => value,
            Err(e) => {
                warnings.push(format!(
                    "{name}='{value}' is not a log filter ({e}); using '{default}'"
                ));
                default.to_string()
            }
        },
        None => default.to_string(),
    };
    let format = match var(LOG_FORMAT).map(|f| f.to_ascii_lowercase()).as_deref() {
        None | Some("text") => Format::Text,
        Some("json") => Format::Json,
        Some(other) => {
            warnings.push(format!(
                "{LOG_FORMAT}='{other}' is not text or json; using text"
            ));
            Format::Text
        }
    };
    let journal = var("JOURNAL_STREAM").is_some();
    Plan {
        filter,
        format,
        ansi: stderr_is_terminal && !journal && var("NO_COLOR").is_none(),
        timestamps: !journal,
        warnings,
    }
}

/// Installs the subscriber the process environment asks for (see the module
/// docs); `default` is the filter when none is set. A second call does nothing.
pub fn init(default: &str) {
    use std::io::IsTerminal;
    let plan = plan(
        |name| std::env::var(name).ok(),
        std::io::stderr().is_terminal(),
        default,
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&plan.filter))
        .with_target(false)
        .with_ansi(plan.ansi)
        // stdout stays for the CLI's output.
        .with_writer(std::io::stderr);
    // Each combination is its own type; the first to install wins.
    let _ = match (plan.format, plan.timestamps) {
        (Format::Text, true) => builder.try_init(),
        (Format::Text, false) => builder.without_time().try_init(),
        (Format::Json, true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        (Format::Json, false) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init(),
    };
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
}

/// What one request's handlers learned, for its log line and its metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    /// The model that served it.
    pub model: Option<String>,
    /// Its prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Of those, reused from the KV cache.
    pub cached_tokens: Option<u64>,
    /// Tokens generated.
    pub tokens: Option<u64>,
    /// Time it waited for a slot.
    pub queue_wait: Option<Duration>,
}

/// The facts of the request being handled: `crate::layers::log_request` sets
/// them around the handler and around each poll of the answer's body.
pub type SharedFacts = Arc<Mutex<RequestFacts>>;

tokio::task_local! {
    static FACTS: SharedFacts;
}

/// Runs `f` with the request's facts at hand, if there is a request.
fn with_facts(f: impl FnOnce(&mut RequestFacts)) {
    let _ = FACTS.try_with(|facts| {
        if let Ok(mut facts) = facts.lock() {
            f(&mut facts);
        }
    });
}

/// `future` (a handler) with `facts` as the request's.
pub async fn scope<F: std::future::Future>(facts: SharedFacts, future: F) -> F::Output {
    FACTS.scope(facts, future).await
}

/// `poll` (a poll of the answer's body) with `facts` as the request's.
pub fn sync_scope<R>(facts: SharedFacts, poll: impl FnOnce() -> R) -> R {
    FACTS.sync_scope(facts, poll)
}

/// Notes the model a request is served by (its log line and metrics).
pub fn record_model(model: &str) {
    tracing::Span::current().record("model", model);
    with_facts(|f| f.model = Some(model.to_string()));
}

/// Notes a request's prompt tokens (and how many were reused from the cache),
/// unless [`record_prompt`] already did, and its generated tokens.
pub fn record_tokens(prompt: Option<u64>, cached: Option<u64>, generated: u64) {
    let span = tracing::Span::current();
    let mut known = false;
    with_facts(|f| {
        known = f.prompt_tokens.is_some();
        f.prompt_tokens = f.prompt_tokens.or(prompt);
        f.cached_tokens = f.cached_tokens.or(cached);
        f.tokens = Some(generated);
    });
    if let Some(prompt) = prompt.filter(|_| !known) {
        span.record("prompt_tokens", prompt);
    }
    span.record("tokens", generated);
}

/// Notes a request's prompt tokens and how many were reused from the cache,
/// as soon as they are known (a generation the client leaves still counts them).
pub fn record_prompt(prompt: u64, cached: u64) {
    tracing::Span::current().record("prompt_tokens", prompt);
    with_facts(|f| {
        f.prompt_tokens = Some(prompt);
        f.cached_tokens = Some(cached);
    });
}

/// Notes how long a generation waited for a slot.
pub fn record_queue_wait(wait: Duration) {
    with_facts(|f| f.queue_wait = Some(wait));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(vars: &[(&str, &str)], terminal: bool) -> Plan {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        plan(
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            terminal,
            "info",
        )
    }

    #[test]
    fn rust_log_wins_over_log_level_and_both_over_the_default() {
        assert_eq!(plan_of(&[], false).filter, "info");
        assert_eq!(plan_of(&[("LOG_LEVEL", "debug")], false).filter, "debug");
        let both = plan_of(
            &[("LOG_LEVEL", "debug"), ("RUST_LOG", "warn,cerebrum=trace")],
            false,
        );
        assert_eq!(both.filter, "warn,cerebrum=trace");
        assert!(both.warnings.is_empty());
        assert_eq!(
            plan_of(&[("RUST_LOG", "  "), ("LOG_LEVEL", "error")], false).filter,
            "error"
        );
    }

    #[test]
    fn a_bad_filter_or_format_is_reported_and_the_default_used() {
        let p = plan_of(&[("LOG_LEVEL", "info,=[bad"), ("LOG_FORMAT", "xml")], false);
        assert_eq!((p.filter.as_str(), p.format), ("info", Format::Text));
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(
            p.warnings[0].starts_with("LOG_LEVEL='info,=[bad' is not a log filter"),
            "{:?}",
            p.warnings
        );
        assert_eq!(
            p.warnings[1],
            "LOG_FORMAT='xml' is not text or json; using text"
        );
        assert_eq!(
            plan_of(&[("LOG_FORMAT", "JSON")], false).format,
            Format::Json
        );
    }

    #[test]
    fn the_journal_gets_no_colour_and_no_second_timestamp() {
        let journal = plan_of(&[("JOURNAL_STREAM", "8:12345")], true);
        assert_eq!((journal.ansi, journal.timestamps), (false, false));
        let terminal = plan_of(&[], true);
        assert_eq!((terminal.ansi, terminal.timestamps), (true, true));
        assert!(!plan_of(&[("NO_COLOR", "1")], true).ansi);
        assert!(
            !plan_of(&[], false).ansi,
            "a pipe or a file gets no colour codes"
        );
    }
}
