//! `AppState`: everything a handler needs, in one place.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::OrchestratorConfig;
use crate::prompt::PrepareConfig;
use cerebrum_shared::cerebrum::VpsAuth;

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

/// What the node said recently, kept fresh by a background task (the node
/// guard's pattern): `/health`, readiness and routing read it and never wait
/// on the node, and no lock is held across a lookup.
#[derive(Default)]
pub struct NodeCache {
    health: RwLock<Option<NodeStatus>>,
    models: RwLock<Vec<String>>,
    contexts: RwLock<std::collections::HashMap<String, u64>>,
}

/// The node's state as the orchestrator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStatus {
    /// It answered its health check.
    Up {
        /// Its own status word (`healthy`, `overloaded`, …).
        status: String,
        /// Whether it would admit a request now.
        available: bool,
    },
    /// It could not be asked, and why.
    Unreachable(String),
}

/// How often the node's `/health` is asked.
pub const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// How often its model list is asked once known.
pub const MODELS_EVERY: Duration = Duration::from_secs(30);
/// How often it is asked again when the last ask failed but a list is known.
pub const MODELS_RETRY: Duration = Duration::from_secs(5);
/// Time allowed for one lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

impl NodeCache {
    /// The last health reading; `None` before the first one finished.
    pub fn health(&self) -> Option<NodeStatus> {
        self.health.read().map(|h| h.clone()).unwrap_or(None)
    }

    /// Model names the node serves, as last read (empty when never known).
    pub fn models(&self) -> Vec<String> {
        self.models.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Tokens one request may hold on `model`, when the node stated it.
    pub fn context_length(&self, model: &str) -> Option<u64> {
        self.contexts.read().ok()?.get(model).copied()
    }

    /// Asks the node's `/health` once and stores the answer.
    pub async fn refresh_health(&self, upstream: &Upstream) {
        let status = match upstream
            .get_json("/health", "health-probe", LOOKUP_TIMEOUT)
            .await
        {
            Ok(h) => {
                let status = h["status"].as_str().unwrap_or("healthy").to_string();
                let healthy = matches!(status.as_str(), "healthy" | "ok");
                // Engines without our fields (llama-server's {"status":"ok"}) are available when they answer.
                let available = h["available"].as_bool().unwrap_or(healthy);
                let loading = h["models_loading"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty());
                upstream.set_node_busy(!available || !healthy || loading);
                NodeStatus::Up { status, available }
            }
            Err(e) => {
                upstream.set_node_busy(false);
                NodeStatus::Unreachable(e.to_string())
            }
        };
        if let Ok(mut slot) = self.health.write() {
            *slot = Some(status);
        }
    }

    /// Asks the node's model list once; keeps the last known list when it
    /// cannot be had. Returns whether a list was read.
    pub async fn refresh_models(&self, upstream: &Upstream) -> bool {
        match upstream
            .get_json("/v1/models", "models-probe", LOOKUP_TIMEOUT)
            .await
        {
            Ok(body) => {
                let cards = body["data"].as_array().cloned().unwrap_or_default();
                let names: Vec<String> = cards
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect();
                let contexts = cards
                    .iter()
                    .filter_map(|m| {
                        Some((m["id"].as_str()?.to_string(), m["context_length"].as_u64()?))
                    })
                    .collect();
                if let Ok(mut slot) = self.models.write() {
                    *slot = names;
                }
                if let Ok(mut slot) = self.contexts.write() {
                    *slot = contexts;
                }
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "model list unavailable; keeping the last known one");
                false
            }
        }
    }

    /// Keeps both readings fresh until the process ends: health every
    /// [`HEALTH_EVERY`], models every [`MODELS_EVERY`] ([`MODELS_RETRY`] while
    /// unknown). The model list is the authenticated probe: while the node has
    /// not accepted the orchestrator's key (unknown or refused) it is asked on
    /// every tick too, so `/health` shows a fix within [`HEALTH_EVERY`].
    /// Spawn it once on the server's runtime.
    pub async fn run(self: Arc<Self>, upstream: Arc<Upstream>) {
        let mut next_models = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            // While the list is unknown it is asked on every tick, so a node
            // that comes up after us is routable as soon as it is healthy.
            let auth_ok = upstream.auth().0 == VpsAuth::Ok;
            if now >= next_models || self.models().is_empty() || !auth_ok {
                let (_, known) = tokio::join!(
                    self.refresh_health(&upstream),
                    self.refresh_models(&upstream)
                );
                let known = known && !self.models().is_empty();
                next_models = now + if known { MODELS_EVERY } else { MODELS_RETRY };
            } else {
                self.refresh_health(&upstream).await;
            }
        }
    }
}
