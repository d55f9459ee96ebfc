//! `AppState`: everything a handler needs, in one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::config::OrchestratorConfig;
use crate::prompt::PrepareConfig;

use crate::upstream::Upstreams;

/// Shared state of the orchestrator server.
#[derive(Clone)]
pub struct AppState {
    /// Validated settings.
    pub config: Arc<OrchestratorConfig>,
    /// Prompt preparation tunables.
    pub prepare: Arc<PrepareConfig>,
    /// The upstreams (per upstream: client, breaker, counters, facts).
    pub upstreams: Arc<Upstreams>,
    /// Permits for inference requests in flight (held until a stream ends).
    pub in_flight: Arc<Semaphore>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The Pi's own CPU figure, sampled in the background.
    pub cpu: Arc<crate::cpu::CpuGauge>,
    /// Start time.
    pub started: Instant,
}

impl AppState {
    /// Inference requests running now.
    pub fn active(&self) -> usize {
        self.config.max_in_flight - self.in_flight.available_permits()
    }
}

/// Orchestrator counters (upstream counters live in `UpstreamStats`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// HTTP requests received.
    pub requests: AtomicU64,
    /// Refused by the in-flight limit.
    pub shed: AtomicU64,
    /// Refused by the rate limit.
    pub rate_limited: AtomicU64,
    /// Admitted inference requests answered well to the end (`layers::outcome`).
    pub succeeded: AtomicU64,
    /// Admitted inference requests answered with an error status or error event.
    pub failed: AtomicU64,
    /// Admitted inference requests whose client left before the end.
    pub cancelled: AtomicU64,
    /// Prompts that preparation cut down.
    pub prepared: AtomicU64,
    /// Characters preparation removed.
    pub chars_saved: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
