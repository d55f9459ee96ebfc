//! The node's `/metrics` (see [`Metrics`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cerebrum_service::metrics::RequestMetrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

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

/// The node's series: its own counters, the gauges read at scrape time
/// ([`LiveGauges`]) and the per-request series both tiers share
/// ([`RequestMetrics`]), in one `prometheus-client` registry (prefix
/// `cerebrum_node`, Prometheus text 0.0.4).
#[derive(Debug)]
pub struct Metrics {
    requests: Counter,
    inference_requests: Counter,
    rejections: Family<[(&'static str, &'static str); 1], Counter>,
    loads: Counter,
    load_failures: Counter,
    load_seconds: Counter<f64, AtomicU64>,
    retired_tokens: AtomicU64,
    live: Arc<Live>,
    registry: Registry,
    /// The per-request series (observed by the request-line layer).
    pub per_request: RequestMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cerebrum_node");
        let per_request = RequestMetrics::register(&mut registry, &crate::app::paths::ALL);
        let m = Self {
            requests: Counter::default(),
            inference_requests: Counter::default(),
            rejections: Family::default(),
            loads: Counter::default(),
            load_failures: Counter::default(),
            load_seconds: Counter::default(),
            retired_tokens: AtomicU64::default(),
            live: Arc::default(),
            registry,
            per_request,
        };
        m.registered()
    }
}

impl Metrics {
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "http_requests",
            "HTTP requests received.",
            self.requests.clone(),
        );
        r.register(
            "inference_requests",
            "Requests handed to an engine.",
            self.inference_requests.clone(),
        );
        r.register("model_loads", "Successful model loads.", self.loads.clone());
        r.register(
            "model_load_failures",
            "Failed model loads.",
            self.load_failures.clone(),
        );
        r.register_with_unit(
            "model_load",
            "Time spent loading models.",
            Unit::Seconds,
            self.load_seconds.clone(),
        );
        r.register(
            "rejections",
            "Requests refused, by reason.",
            self.rejections.clone(),
        );
        for why in Rejection::ALL {
            // Every reason shows from the start, at 0.
            let _ = self.rejections.get_or_create(&[("reason", why.label())]);
        }
        r.register_collector(Box::new(self.live.clone()));
        self
    }

    /// Counts one HTTP request.
    pub fn request(&self) {
        self.requests.inc();
    }

    /// Counts one request that reached an engine.
    pub fn inference(&self) {
        self.inference_requests.inc();
    }

    /// Counts a refusal.
    pub fn reject(&self, why: Rejection) {
        self.rejections
            .get_or_create(&[("reason", why.label())])
            .inc();
    }

    /// Records a model load.
    pub fn record_load(&self, seconds: f64, ok: bool) {
        if ok {
            self.loads.inc();
        } else {
            self.load_failures.inc();
        }
        self.load_seconds.inc_by(seconds);
    }

    /// Keeps an unloaded engine's token count, so the counter never goes down.
    pub fn retire_tokens(&self, tokens: u64) {
        self.retired_tokens.fetch_add(tokens, Ordering::Relaxed);
    }

    /// Prometheus text, with `live` as the gauges' values.
    pub fn render(&self, mut live: LiveGauges) -> String {
        live.tokens_generated += self.retired_tokens.load(Ordering::Relaxed);
        if let Ok(mut slot) = self.live.0.lock() {
            *slot = live;
        }
        cerebrum_service::metrics::encode(&self.registry)
    }
}

/// The gauges (and the live token count) as the last scrape read them.
#[derive(Debug, Default)]
struct Live(Mutex<LiveGauges>);

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = self.0.lock().map(|l| l.clone()).unwrap_or_default();
        let tokens = ConstCounter::new(live.tokens_generated);
        tokens.encode(encoder.encode_descriptor(
            "tokens_generated",
            "Tokens generated.",
            None,
            tokens.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "active_sequences",
                "Sequences decoding now.",
                live.active_sequences as f64,
            ),
            (
                "queued_requests",
                "Requests waiting for a sequence slot.",
                live.queued as f64,
            ),
            (
                "loaded_models",
                "Models in memory.",
                live.loaded_models as f64,
            ),
            (
                "cpu_other_percent",
                "CPU busy from other processes.",
                f64::from(live.cpu_other_percent),
            ),
            (
                "ram_available_bytes",
                "Available RAM.",
                live.ram_available_bytes as f64,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// Gauges read at scrape time.
#[derive(Debug, Default, Clone)]
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
        let text = m.render(LiveGauges {
            active_sequences: 3,
            ..Default::default()
        });
        assert!(
            text.contains("cerebrum_node_rejections_total{reason=\"cpu\"} 2"),
            "{text}"
        );
        assert!(text.contains("cerebrum_node_model_loads_total 1"), "{text}");
        assert!(text.contains("cerebrum_node_active_sequences 3"), "{text}");
        assert!(
            text.contains("cerebrum_node_rejections_total{reason=\"memory\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("cerebrum_node_model_load_seconds_total 1.5"),
            "{text}"
        );
    }
}
