//! Prometheus counters for `/metrics`: plain atomics rendered as text, no registry.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a request was refused, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Too little RAM.
    Memory,
    /// Other processes keep the CPU busy.
    Cpu,
    /// No model slot free.
    Busy,
    /// Missing or wrong key, or a peer not allowed.
    Auth,
    /// Malformed or out-of-range input.
    BadRequest,
}

impl Rejection {
    const ALL: [Rejection; 5] = [
        Rejection::Memory,
        Rejection::Cpu,
        Rejection::Busy,
        Rejection::Auth,
        Rejection::BadRequest,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::Memory => "memory",
            Rejection::Cpu => "cpu",
            Rejection::Busy => "busy",
            Rejection::Auth => "auth",
            Rejection::BadRequest => "bad_request",
        }
    }
}

/// The node's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    inference_requests: AtomicU64,
    rejections: [AtomicU64; 5],
    loads: AtomicU64,
    load_failures: AtomicU64,
    load_seconds_micros: AtomicU64,
    last_load_seconds: Mutex<f64>,
    retired_tokens: AtomicU64,
    prompt_tokens_processed: AtomicU64,
    prompt_tokens_cached: AtomicU64,
}

impl Metrics {
    /// Counts a started generation's prompt: tokens prefilled and tokens reused from the cache.
    pub fn prompt(&self, prompt_tokens: u32, cached_tokens: u32) {
        let processed = prompt_tokens.saturating_sub(cached_tokens);
        self.prompt_tokens_processed
            .fetch_add(u64::from(processed), Ordering::Relaxed);
        self.prompt_tokens_cached
            .fetch_add(u64::from(cached_tokens), Ordering::Relaxed);
    }

    /// Counts one HTTP request.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request that reached an engine.
    pub fn inference(&self) {
        self.inference_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refusal.
    pub fn reject(&self, why: Rejection) {
        let i = Rejection::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejections[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a model load.
    pub fn record_load(&self, seconds: f64, ok: bool) {
        if ok {
            self.loads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.load_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.load_seconds_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        if let Ok(mut l) = self.last_load_seconds.lock() {
            *l = seconds;
        }
    }

    /// Keeps an unloaded engine's token count, so the counter never goes down.
    pub fn retire_tokens(&self, tokens: u64) {
        self.retired_tokens.fetch_add(tokens, Ordering::Relaxed);
    }

    /// Prometheus text; `live` adds gauges read from the registry.
    pub fn render(&self, live: &LiveGauges) -> String {
        let mut s = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "cerebrum_node_http_requests_total",
            "HTTP requests received.",
            self.requests.load(Ordering::Relaxed),
        );
        counter(
            "cerebrum_node_inference_requests_total",
            "Requests handed to an engine.",
            self.inference_requests.load(Ordering::Relaxed),
        );
        counter(
            "cerebrum_node_tokens_generated_total",
            "Tokens generated.",
            live.tokens_generated + self.retired_tokens.load(Ordering::Relaxed),
        );
        counter(
            "cerebrum_node_model_loads_total",
            "Successful model loads.",
            self.loads.load(Ordering::Relaxed),
        );
        counter(
            "cerebrum_node_model_load_failures_total",
            "Failed model loads.",
            self.load_failures.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP cerebrum_node_model_load_seconds_total Seconds spent loading models.\n# TYPE cerebrum_node_model_load_seconds_total counter\ncerebrum_node_model_load_seconds_total {:.6}",
            self.load_seconds_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "# HELP cerebrum_node_rejections_total Requests refused, by reason.\n# TYPE cerebrum_node_rejections_total counter"
        );
        for (i, r) in Rejection::ALL.iter().enumerate() {
            let _ = writeln!(
                s,
                "cerebrum_node_rejections_total{{reason=\"{}\"}} {}",
                r.label(),
                self.rejections[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP cerebrum_node_prompt_tokens_total Prompt tokens of started generations, by source: prefilled (processed) or reused from the KV cache (cached).\n# TYPE cerebrum_node_prompt_tokens_total counter\ncerebrum_node_prompt_tokens_total{{source=\"processed\"}} {}\ncerebrum_node_prompt_tokens_total{{source=\"cached\"}} {}",
            self.prompt_tokens_processed.load(Ordering::Relaxed),
            self.prompt_tokens_cached.load(Ordering::Relaxed)
        );
        let mut gauge = |name: &str, help: &str, v: f64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "cerebrum_node_active_sequences",
            "Sequences decoding now.",
            live.active_sequences as f64,
        );
        gauge(
            "cerebrum_node_queued_requests",
            "Requests waiting for a sequence slot.",
            live.queued as f64,
        );
        gauge(
            "cerebrum_node_loaded_models",
            "Models in memory.",
            live.loaded_models as f64,
        );
        gauge(
            "cerebrum_node_cpu_other_percent",
            "CPU busy from other processes.",
            f64::from(live.cpu_other_percent),
        );
        gauge(
            "cerebrum_node_ram_available_bytes",
            "Available RAM.",
            live.ram_available_bytes as f64,
        );
        s
    }
}

/// Gauges read at scrape time.
#[derive(Debug, Default)]
pub struct LiveGauges {
    /// Sum over engines.
    pub active_sequences: u64,
    /// Sum over engines.
    pub queued: u64,
    /// Loaded models.
    pub loaded_models: u64,
    /// Sum over engines.
    pub tokens_generated: u64,
    /// From the guard's sampler.
    pub cpu_other_percent: f32,
    /// From the guard's sampler.
    pub ram_available_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.reject(Rejection::Cpu);
        m.reject(Rejection::Cpu);
        m.record_load(1.5, true);
        let text = m.render(&LiveGauges {
            active_sequences: 3,
            ..Default::default()
        });
        assert!(
            text.contains("cerebrum_node_rejections_total{reason=\"cpu\"} 2"),
            "{text}"
        );
        assert!(text.contains("cerebrum_node_model_loads_total 1"));
        assert!(text.contains("cerebrum_node_active_sequences 3"));
    }
}
