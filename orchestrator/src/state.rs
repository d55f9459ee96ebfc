//! `AppState`: everything a handler needs, in one place.

use std::sync::Arc;
use std::time::Instant;

use cerebrum_service::metrics::RequestMetrics;
use prometheus_client::registry::Registry;

use tokio::sync::Semaphore;

use crate::config::OrchestratorConfig;
use crate::prompt::PrepareConfig;

pub use crate::metrics::Metrics;
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
    /// The orchestrator's own counters.
    pub metrics: Arc<Metrics>,
    /// Every series `/metrics` shows.
    pub registry: Arc<Registry>,
    /// The per-request series (observed by the request-line layer).
    pub requests: RequestMetrics,
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
