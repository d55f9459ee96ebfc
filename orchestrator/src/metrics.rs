//! `GET /metrics`: the orchestrator's series in one `prometheus-client`
//! registry (prefix `cerebrum`, Prometheus text 0.0.4):
//! - its own counters ([`Metrics`]: requests, shed, rate-limited, how inference
//!   requests ended, preparation) and the in-flight gauge;
//! - one series per upstream (label `upstream`) for each upstream figure, read
//!   from the upstreams' own counters at scrape time ([`UpstreamSeries`]);
//! - the per-request histograms and token counters both tiers share
//!   ([`RequestMetrics`]: duration by route and status, time to first token,
//!   tokens per second, prompt, cached and generated tokens by model).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cerebrum_service::metrics::RequestMetrics;
use cerebrum_shared::cerebrum::VpsAuth;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::upstream::{BreakerState, Upstream, Upstreams};

/// The orchestrator's own counters (the upstreams keep theirs).
#[derive(Debug, Default)]
pub struct Metrics {
    /// HTTP requests received.
    pub requests: Counter,
    /// Refused by the in-flight limit.
    pub shed: Counter,
    /// Refused by the rate limit.
    pub rate_limited: Counter,
    /// Admitted inference requests answered well to the end (`layers::outcome`).
    pub succeeded: Counter,
    /// Admitted inference requests answered with an error status or error event.
    pub failed: Counter,
    /// Admitted inference requests whose client left before the end.
    pub cancelled: Counter,
    /// Prompts that preparation cut down.
    pub prepared: Counter,
    /// Characters preparation removed.
    pub chars_saved: Counter,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &Counter) {
        counter.inc();
    }
}

/// Every series of `/metrics`, registered once at start.
pub fn registry(
    metrics: &Metrics,
    upstreams: Arc<Upstreams>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    routes: &[&'static str],
) -> (Registry, RequestMetrics) {
    let mut r = Registry::with_prefix("cerebrum");
    for (name, help, counter) in [
        (
            "http_requests",
            "HTTP requests received.",
            &metrics.requests,
        ),
        (
            "load_shed",
            "Requests refused by the in-flight limit.",
            &metrics.shed,
        ),
        (
            "rate_limited",
            "Requests refused by the rate limit.",
            &metrics.rate_limited,
        ),
        (
            "inference_succeeded",
            "Inference requests answered well to the end.",
            &metrics.succeeded,
        ),
        (
            "inference_failed",
            "Inference requests answered with an error status or an error event.",
            &metrics.failed,
        ),
        (
            "inference_cancelled",
            "Inference requests whose client left before the end.",
            &metrics.cancelled,
        ),
        (
            "prompts_prepared",
            "Prompts cut down by preparation.",
            &metrics.prepared,
        ),
        (
            "prompt_chars_saved",
            "Characters removed by preparation.",
            &metrics.chars_saved,
        ),
    ] {
        r.register(name, help, counter.clone());
    }
    r.register_collector(Box::new(InFlight {
        permits: in_flight,
        max: max_in_flight,
    }));
    r.register_collector(Box::new(UpstreamSeries(upstreams)));
    let requests = RequestMetrics::register(&mut r, routes);
    (r, requests)
}

/// `cerebrum_in_flight`: inference requests holding a permit now.
#[derive(Debug)]
struct InFlight {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Collector for InFlight {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new((self.max - self.permits.available_permits()) as i64);
        let metric = encoder.encode_descriptor(
            "in_flight",
            "Inference requests in flight.",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

/// One series per upstream for each upstream figure, read at scrape time.
#[derive(Clone)]
pub struct UpstreamSeries(pub Arc<Upstreams>);

impl std::fmt::Debug for UpstreamSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamSeries")
    }
}

fn count(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

type Read = fn(&Upstream) -> u64;
type Level = fn(&Upstream) -> i64;

/// Counters: (name without `_total`, help, reading).
const COUNTERS: [(&str, &str, Read); 8] = [
    (
        "upstream_requests",
        "Generations asked of the upstream.",
        |u| count(&u.stats.requests_sent),
    ),
    ("upstream_success", "Generations that ended well.", |u| {
        count(&u.stats.successful)
    }),
    (
        "upstream_failures",
        "Generations failed by the upstream or the link.",
        |u| count(&u.stats.failed),
    ),
    (
        "upstream_refused",
        "Generations the upstream refused: 4xx, 503, 401/403 or a redirect.",
        |u| count(&u.stats.refused),
    ),
    (
        "upstream_queued_timeouts",
        "First-token timeouts while the upstream was busy (not counted against it).",
        |u| count(&u.stats.queued_timeouts),
    ),
    (
        "upstream_cancelled",
        "Generations whose client went away first.",
        |u| count(&u.stats.cancelled),
    ),
    (
        "tokens_relayed",
        "Tokens relayed to clients from the upstream.",
        |u| count(&u.stats.tokens),
    ),
    (
        "breaker_opens",
        "Times the upstream's breaker opened.",
        |u| u.breaker.opens(),
    ),
];

/// Gauges: (name, help, reading).
const GAUGES: [(&str, &str, Level); 4] = [
    (
        "upstream_auth_refused",
        "1 while the upstream refuses the orchestrator's key or address.",
        |u| flag(u.auth().0 == VpsAuth::Refused),
    ),
    (
        "upstream_ready",
        "1 while the upstream could take a request (reachable, available, breaker not open, key accepted).",
        |u| flag(u.is_ready()),
    ),
    (
        "upstream_in_flight",
        "Generations of this orchestrator in flight to the upstream.",
        |u| u.in_flight() as i64,
    ),
    (
        "breaker_open",
        "1 while the upstream's circuit breaker is open.",
        |u| flag(u.breaker.state() == BreakerState::Open),
    ),
];

impl Collector for UpstreamSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.0.all();
        for (name, help, read) in COUNTERS {
            let mut metric = encoder.encode_descriptor(
                name,
                help,
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for u in all {
                let labels = [("upstream", u.name())];
                ConstCounter::new(read(u)).encode(metric.encode_family(&labels)?)?;
            }
        }
        for (name, help, read) in GAUGES {
            let mut metric =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
            for u in all {
                let labels = [("upstream", u.name())];
                ConstGauge::new(read(u)).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
