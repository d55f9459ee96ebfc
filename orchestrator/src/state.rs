//! `AppState`: everything a handler needs, in one place.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use crate::config::OrchestratorConfig;
use crate::prompt::PrepareConfig;
use crate::upstream::Upstream;

/// Shared state of the orchestrator server.
#[derive(Clone)]
pub struct AppState {
    /// Validated settings.
    pub config: Arc<OrchestratorConfig>,
    /// Prompt preparation tunables.
    pub prepare: Arc<PrepareConfig>,
    /// The node client (pool, breaker, counters).
    pub upstream: Arc<Upstream>,
    /// Permits for inference requests in flight (held until a stream ends).
    pub in_flight: Arc<Semaphore>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Cached node facts (health, served models).
    pub node: Arc<NodeCache>,
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

/// What the node said recently, so `/health` and routing do not ask it every time.
#[derive(Default)]
pub struct NodeCache {
    health: Mutex<Option<(Instant, Result<Value, String>)>>,
    models: Mutex<Option<(Instant, Vec<String>)>>,
}

const HEALTH_TTL: Duration = Duration::from_secs(2);
const MODELS_TTL: Duration = Duration::from_secs(30);
const MODELS_RETRY: Duration = Duration::from_secs(5);

impl NodeCache {
    /// The node's `/health` body, or why it could not be had (cached 2 s).
    pub async fn health(&self, upstream: &Upstream) -> Result<Value, String> {
        let mut slot = self.health.lock().await;
        if let Some((at, v)) = slot.as_ref()
            && at.elapsed() < HEALTH_TTL
        {
            return v.clone();
        }
        let v = upstream
            .get_json("/health", "health-probe", Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string());
        *slot = Some((Instant::now(), v.clone()));
        v
    }

    /// Model names the node serves (cached 30 s; empty when never known). When the
    /// node cannot be asked, the last known list is kept and the next try waits
    /// 5 s, so a dead node costs no lookup per request.
    pub async fn models(&self, upstream: &Upstream, request_id: &str) -> Vec<String> {
        let mut slot = self.models.lock().await;
        if let Some((at, v)) = slot.as_ref() {
            let ttl = if v.is_empty() {
                MODELS_RETRY
            } else {
                MODELS_TTL
            };
            if at.elapsed() < ttl {
                return v.clone();
            }
        }
        let names: Vec<String> = match upstream
            .get_json("/v1/models", request_id, Duration::from_secs(2))
            .await
        {
            Ok(body) => body["data"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            Err(e) => {
                tracing::debug!(error = %e, "model list unavailable; keeping the last known one");
                let stale = slot.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
                // Try again in MODELS_RETRY, not on every request.
                let at = Instant::now() - MODELS_TTL.saturating_sub(MODELS_RETRY);
                *slot = Some((at, stale.clone()));
                return stale;
            }
        };
        *slot = Some((Instant::now(), names.clone()));
        names
    }
}
