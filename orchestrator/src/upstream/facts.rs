//! What each upstream said recently, kept fresh by a background task per
//! upstream: `/health`, readiness and routing read it and never wait on an
//! upstream, and no lock is held across a lookup.
//!
//! How health is read depends on the upstream's kind:
//! - `cerebrum-node`: its `/health` (`status`, `available`, models loading);
//! - `openai` (llama-server, vLLM, Ollama, a hosted API): `GET /v1/models` with
//!   the key answering 200 is ready (llama-server's `/health` says `ok`, vLLM's
//!   is an empty 200, Ollama has none: none of them says more than that), and
//!   the same answer refreshes the model list;
//! - `auto`: a `/health` whose JSON has our node's `available` makes it a
//!   Cerebrum node, anything else an `openai` one (asked on every reading, so
//!   an endpoint that changes engine is followed).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use cerebrum_shared::cerebrum::{UpstreamHealth, VpsAuth};
use serde_json::Value;

use super::choose::Serves;
use super::{BreakerState, Upstream, UpstreamError};
use crate::config::upstreams::UpstreamKind;

/// An upstream's state as the orchestrator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStatus {
    /// It answered its health check.
    Up {
        /// Its own status word (`healthy`, `overloaded`, `ok`, …).
        status: String,
        /// Whether it would admit a request now.
        available: bool,
    },
    /// It could not be asked, and why.
    Unreachable(String),
}

/// How often each upstream's health is read.
pub const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// How often its model list is read once known.
pub const MODELS_EVERY: Duration = Duration::from_secs(30);
/// How often it is read again when the last read failed but a list is known.
pub const MODELS_RETRY: Duration = Duration::from_secs(5);
/// Time allowed for one lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The readings (see the module docs).
#[derive(Default)]
pub struct Facts {
    health: RwLock<Option<NodeStatus>>,
    /// `None` until a list is read.
    models: RwLock<Option<Vec<String>>>,
    contexts: RwLock<HashMap<String, u64>>,
    /// For `auto`: 0 not known yet, 1 a Cerebrum node, 2 an OpenAI engine.
    detected: AtomicU8,
}

impl Upstream {
    /// How its health is read: the configured kind, or for `auto` what it
    /// turned out to be (`auto` until it answered).
    pub fn kind(&self) -> UpstreamKind {
        match self.config.kind {
            UpstreamKind::Auto => match self.facts.detected.load(Ordering::Relaxed) {
                1 => UpstreamKind::CerebrumNode,
                2 => UpstreamKind::OpenAi,
                _ => UpstreamKind::Auto,
            },
            kind => kind,
        }
    }

    /// The last health reading; `None` before the first one finished.
    pub fn health(&self) -> Option<NodeStatus> {
        self.facts.health.read().map(|h| h.clone()).unwrap_or(None)
    }

    /// The models it serves: configured, else as last read; `None` while unknown.
    pub fn models(&self) -> Option<Vec<String>> {
        if let Some(pinned) = &self.config.models {
            return Some(pinned.clone());
        }
        self.facts.models.read().ok()?.clone()
    }

    /// Whether it serves `model`.
    pub fn serves(&self, model: &str) -> Serves {
        match self.models() {
            Some(list) if list.iter().any(|m| m == model) => Serves::Yes,
            Some(_) => Serves::No,
            None => Serves::Unknown,
        }
    }

    /// Tokens one request may hold on `model`, when it stated it.
    pub fn context_length(&self, model: &str) -> Option<u64> {
        self.facts.contexts.read().ok()?.get(model).copied()
    }

    /// Whether it could take a request now: it answered its health check, it
    /// would admit work, its breaker is not open and it accepts our key.
    pub fn is_ready(&self) -> bool {
        matches!(
            self.health(),
            Some(NodeStatus::Up {
                available: true,
                ..
            })
        ) && self.breaker.state() != BreakerState::Open
            && self.auth().0 != VpsAuth::Refused
    }

    /// Its entry in the orchestrator's `/health`.
    pub fn report(&self) -> UpstreamHealth {
        let (status, connected, available) = match self.health() {
            Some(NodeStatus::Up { status, available }) => (status, true, available),
            Some(NodeStatus::Unreachable(_)) => ("unreachable".into(), false, false),
            None => ("unknown".into(), false, false),
        };
        let (auth, auth_problem) = self.auth();
        UpstreamHealth {
            name: self.config.name.clone(),
            endpoint: self.config.endpoint.clone(),
            kind: self.kind(),
            fallback: self.config.fallback,
            ready: self.is_ready(),
            status,
            connected,
            available,
            breaker: self.breaker.state(),
            breaker_retry_after_seconds: self.breaker.retry_after_secs(),
            auth,
            auth_problem,
            models: self.models().unwrap_or_default(),
            in_flight: self.in_flight() as u64,
            slots: u64::from(self.config.slots),
        }
    }

    /// Reads its health once (see the module docs for how, by kind) and stores it.
    pub async fn refresh_health(&self) {
        let status = match self.config.kind {
            UpstreamKind::CerebrumNode => self.node_health().await,
            UpstreamKind::OpenAi => self.openai_health().await,
            UpstreamKind::Auto => match self
                .get_json("/health", "health-probe", LOOKUP_TIMEOUT)
                .await
            {
                Ok(h) if h["available"].is_boolean() => {
                    self.facts.detected.store(1, Ordering::Relaxed);
                    self.node_status(&h)
                }
                Err(e @ (UpstreamError::Unreachable { .. } | UpstreamError::Timeout(_))) => {
                    self.unreachable(e)
                }
                _ => {
                    self.facts.detected.store(2, Ordering::Relaxed);
                    self.openai_health().await
                }
            },
        };
        if let Ok(mut slot) = self.facts.health.write() {
            *slot = Some(status);
        }
    }

    async fn node_health(&self) -> NodeStatus {
        match self
            .get_json("/health", "health-probe", LOOKUP_TIMEOUT)
            .await
        {
            Ok(h) => self.node_status(&h),
            Err(e) => self.unreachable(e),
        }
    }

    /// It could not be asked: not busy, unreachable.
    fn unreachable(&self, e: UpstreamError) -> NodeStatus {
        self.set_node_busy(false);
        NodeStatus::Unreachable(e.to_string())
    }

    /// A Cerebrum node's `/health` body as a status; notes whether it is busy.
    fn node_status(&self, h: &Value) -> NodeStatus {
        let status = h["status"].as_str().unwrap_or("healthy").to_string();
        let healthy = matches!(status.as_str(), "healthy" | "ok");
        let available = h["available"].as_bool().unwrap_or(healthy);
        let loading = h["models_loading"]
            .as_array()
            .is_some_and(|m| !m.is_empty());
        self.set_node_busy(!available || !healthy || loading);
        NodeStatus::Up { status, available }
    }

    /// An OpenAI engine's health: its model list answering with our key.
    async fn openai_health(&self) -> NodeStatus {
        self.set_node_busy(false);
        match self
            .get_json("/v1/models", "health-probe", LOOKUP_TIMEOUT)
            .await
        {
            Ok(body) => {
                self.store_models(&body);
                NodeStatus::Up {
                    status: "ok".into(),
                    available: true,
                }
            }
            // It answered: reachable, but not taking work from us.
            Err(UpstreamError::Auth(_)) => NodeStatus::Up {
                status: "refusing our key".into(),
                available: false,
            },
            // llama-server answers 503 "Loading model" on every path while it loads.
            Err(UpstreamError::Status(e)) => NodeStatus::Up {
                status: if e.message.is_empty() {
                    format!("answered {}", e.status)
                } else {
                    format!(
                        "answered {}: {}",
                        e.status,
                        e.message.chars().take(80).collect::<String>()
                    )
                },
                available: false,
            },
            Err(e) => NodeStatus::Unreachable(e.to_string()),
        }
    }

    /// Reads its model list once; keeps the last known one when it cannot be
    /// had. Returns whether a list was read.
    pub async fn refresh_models(&self) -> bool {
        match self
            .get_json("/v1/models", "models-probe", LOOKUP_TIMEOUT)
            .await
        {
            Ok(body) => {
                self.store_models(&body);
                true
            }
            Err(e) => {
                tracing::debug!(upstream = self.name(), error = %e,
                    "model list unavailable; keeping the last known one");
                false
            }
        }
    }

    /// Stores an OpenAI `/v1/models` answer (with our node's `context_length`s).
    fn store_models(&self, body: &Value) {
        let cards = body["data"].as_array().cloned().unwrap_or_default();
        let names: Vec<String> = cards
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect();
        let contexts = cards
            .iter()
            .filter_map(|m| Some((m["id"].as_str()?.to_string(), m["context_length"].as_u64()?)))
            .collect();
        if let Ok(mut slot) = self.facts.models.write() {
            *slot = Some(names);
        }
        if let Ok(mut slot) = self.facts.contexts.write() {
            *slot = contexts;
        }
    }

    /// Keeps its readings fresh until the process ends: health every
    /// [`HEALTH_EVERY`], models every [`MODELS_EVERY`] ([`MODELS_RETRY`] after
    /// a failed read of a known list). While the list is unknown, or the
    /// upstream has not accepted our key (unknown or refused), the list — the
    /// authenticated probe — is asked on every tick too, so a node that comes
    /// up after us is routable as soon as it is healthy and `/health` shows a
    /// fixed key within [`HEALTH_EVERY`]. An `openai` upstream's health reading
    /// is its model list, so it is not asked twice.
    pub async fn run(&self) {
        let mut next_models = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            let unknown = self
                .facts
                .models
                .read()
                .map(|m| m.is_none())
                .unwrap_or(true);
            let auth_ok = self.auth().0 == VpsAuth::Ok;
            let due = now >= next_models || unknown || !auth_ok;
            if due && self.kind() != UpstreamKind::OpenAi {
                let (_, read) = tokio::join!(self.refresh_health(), self.refresh_models());
                next_models = now + if read { MODELS_EVERY } else { MODELS_RETRY };
            } else {
                self.refresh_health().await;
            }
        }
    }
}
