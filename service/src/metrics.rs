//! What both servers measure of every finished request, with the Prometheus
//! library (`prometheus-client`), under each tier's prefix (`cerebrum`,
//! `cerebrum_node`):
//!
//! | series | labels | what |
//! |---|---|---|
//! | `…_http_request_duration_seconds` | `route`, `status` | request to the body's end (a stream's last event) |
//! | `…_time_to_first_token_seconds` | `model` | request to the first event of a streamed answer |
//! | `…_generation_tokens_per_second` | `model` | tokens after the first ÷ the time from the first to the end, streamed answers |
//! | `…_queue_wait_seconds` | `model` | submitted until a slot took it (the node; the orchestrator sheds instead) |
//! | `…_prompt_tokens_total` | `model`, `source` | prompt tokens, `processed` or `cached` (reused from the KV cache) |
//! | `…_generated_tokens_total` | `model` | tokens generated |
//!
//! `route` is one of the tier's own paths, else `other`, so a client probing
//! random paths cannot grow the series. The handlers say what they learn
//! ([`crate::logging::record_model`] and the like); the request's log line and
//! these series are written from the same facts, at the same moment.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::logging::RequestFacts;

/// A label set: (name, value) pairs.
pub type Labels = Vec<(&'static str, String)>;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The `Content-Type` of `/metrics` (Prometheus text 0.0.4).
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A request as it ended, for the series above.
#[derive(Debug)]
pub struct Finished<'a> {
    /// Its path.
    pub path: &'a str,
    /// The status sent.
    pub status: u16,
    /// Whether the answer was a stream (`text/event-stream`).
    pub streamed: bool,
    /// Request to the body's first byte.
    pub first_byte: Option<Duration>,
    /// Request to the body's end (or to the client leaving).
    pub duration: Duration,
    /// Whether the body was sent to its end.
    pub completed: bool,
    /// What the handlers learned.
    pub facts: &'a RequestFacts,
}

/// The per-request series; cheap to clone.
#[derive(Clone, Debug)]
pub struct RequestMetrics {
    routes: Arc<[&'static str]>,
    duration: Histograms,
    ttft: Histograms,
    tokens_per_second: Histograms,
    queue_wait: Histograms,
    prompt_tokens: Family<Labels, Counter>,
    generated_tokens: Family<Labels, Counter>,
}

fn seconds() -> Histogram {
    // 5 ms to ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

fn rates() -> Histogram {
    // 0.5 to ~8,000 tokens per second.
    Histogram::new(exponential_buckets(0.5, 2.0, 15))
}

impl RequestMetrics {
    /// Registers the series in `registry` (which carries the tier's prefix);
    /// `routes` are the paths that get their own `route` label.
    pub fn register(registry: &mut Registry, routes: &[&'static str]) -> Self {
        let m = Self {
            routes: routes.into(),
            duration: Family::new_with_constructor(seconds),
            ttft: Family::new_with_constructor(seconds),
            tokens_per_second: Family::new_with_constructor(rates),
            queue_wait: Family::new_with_constructor(seconds),
            prompt_tokens: Family::default(),
            generated_tokens: Family::default(),
        };
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request to the end of its answer (a stream's last event), by route and status",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register_with_unit(
            "time_to_first_token",
            "Time from a request to the first event of its streamed answer, by model",
            Unit::Seconds,
            m.ttft.clone(),
        );
        registry.register(
            "generation_tokens_per_second",
            "Tokens per second of a streamed answer after its first token, by model",
            m.tokens_per_second.clone(),
        );
        registry.register_with_unit(
            "queue_wait",
            "Time a generation waited for a slot, by model",
            Unit::Seconds,
            m.queue_wait.clone(),
        );
        registry.register(
            "prompt_tokens",
            "Prompt tokens of generations, by model and source: processed (prefilled) or cached (reused from the KV cache)",
            m.prompt_tokens.clone(),
        );
        registry.register(
            "generated_tokens",
            "Tokens generated, by model",
            m.generated_tokens.clone(),
        );
        m
    }

    /// The `route` label of `path`: the route it matches (a `{name}` segment
    /// matches any one segment), else `other`.
    fn route(&self, path: &str) -> String {
        let matches = |route: &str| {
            let (mut r, mut p) = (route.split('/'), path.split('/'));
            loop {
                match (r.next(), p.next()) {
                    (None, None) => return true,
                    (Some(r), Some(p)) if r == p || (r.starts_with('{') && !p.is_empty()) => {}
                    _ => return false,
                }
            }
        };
        self.routes
            .iter()
            .find(|r| matches(r))
            .map_or("other", |r| r)
            .to_string()
    }

    /// Records one finished request.
    pub fn observe(&self, f: &Finished<'_>) {
        self.duration
            .get_or_create(&vec![
                ("route", self.route(f.path)),
                ("status", f.status.to_string()),
            ])
            .observe(f.duration.as_secs_f64());
        let facts = f.facts;
        let Some(model) = facts.model.as_deref() else {
            return;
        };
        let by_model = || vec![("model", model.to_string())];
        if let Some(wait) = facts.queue_wait {
            self.queue_wait
                .get_or_create(&by_model())
                .observe(wait.as_secs_f64());
        }
        if let Some(prompt) = facts.prompt_tokens {
            let cached = facts.cached_tokens.unwrap_or(0).min(prompt);
            for (source, n) in [("processed", prompt - cached), ("cached", cached)] {
                self.prompt_tokens
                    .get_or_create(&vec![
                        ("model", model.to_string()),
                        ("source", source.to_string()),
                    ])
                    .inc_by(n);
            }
        }
        if let Some(tokens) = facts.tokens {
            self.generated_tokens
                .get_or_create(&by_model())
                .inc_by(tokens);
        }
        if !(f.streamed && f.completed && (200..300).contains(&f.status)) {
            return;
        }
        if let Some(first) = f.first_byte {
            self.ttft
                .get_or_create(&by_model())
                .observe(first.as_secs_f64());
            let after = f.duration.saturating_sub(first).as_secs_f64();
            if let Some(tokens) = facts.tokens.filter(|&t| t >= 2 && after > 0.0) {
                self.tokens_per_second
                    .get_or_create(&by_model())
                    .observe((tokens - 1) as f64 / after);
            }
        }
    }
}

/// `registry` in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::with_capacity(8192);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished<'a>(facts: &'a RequestFacts, path: &'a str, streamed: bool) -> Finished<'a> {
        Finished {
            path,
            status: 200,
            streamed,
            first_byte: Some(Duration::from_millis(100)),
            duration: Duration::from_millis(1100),
            completed: true,
            facts,
        }
    }

    #[test]
    fn a_streamed_generation_fills_every_series_and_unknown_routes_are_other() {
        let mut registry = Registry::with_prefix("t");
        let m = RequestMetrics::register(&mut registry, &["/v1/chat/completions"]);
        let facts = RequestFacts {
            model: Some("smollm2".into()),
            prompt_tokens: Some(30),
            cached_tokens: Some(20),
            tokens: Some(11),
            queue_wait: Some(Duration::from_millis(3)),
        };
        m.observe(&finished(&facts, "/v1/chat/completions", true));
        m.observe(&finished(&RequestFacts::default(), "/wp-admin", false));
        let m2 = RequestMetrics::register(&mut Registry::default(), &["/v1/unload/{model}"]);
        assert_eq!(m2.route("/v1/unload/smollm2"), "/v1/unload/{model}");
        assert_eq!(m2.route("/v1/unload/"), "other");
        assert_eq!(m2.route("/v1/unload/a/b"), "other");
        let text = encode(&registry);
        for line in [
            r#"t_http_request_duration_seconds_count{route="/v1/chat/completions",status="200"} 1"#,
            r#"t_http_request_duration_seconds_count{route="other",status="200"} 1"#,
            r#"t_time_to_first_token_seconds_sum{model="smollm2"} 0.1"#,
            // 10 tokens after the first, in 1 s.
            r#"t_generation_tokens_per_second_sum{model="smollm2"} 10.0"#,
            r#"t_queue_wait_seconds_count{model="smollm2"} 1"#,
            r#"t_prompt_tokens_total{model="smollm2",source="processed"} 10"#,
            r#"t_prompt_tokens_total{model="smollm2",source="cached"} 20"#,
            r#"t_generated_tokens_total{model="smollm2"} 11"#,
        ] {
            assert!(text.contains(line), "{line} not in:\n{text}");
        }
    }

    #[test]
    fn a_whole_answer_has_no_first_token_time_and_a_failed_one_no_rate() {
        let mut registry = Registry::with_prefix("t");
        let m = RequestMetrics::register(&mut registry, &[]);
        let facts = RequestFacts {
            model: Some("m".into()),
            tokens: Some(5),
            ..RequestFacts::default()
        };
        m.observe(&finished(&facts, "/x", false));
        let mut cut = finished(&facts, "/x", true);
        cut.completed = false;
        m.observe(&cut);
        let text = encode(&registry);
        assert!(
            !text.contains("t_time_to_first_token_seconds_count{"),
            "{text}"
        );
        assert!(
            !text.contains("t_generation_tokens_per_second_count{"),
            "{text}"
        );
        assert!(
            text.contains(r#"t_generated_tokens_total{model="m"} 10"#),
            "{text}"
        );
    }
}
