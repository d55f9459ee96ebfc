//! Every configured upstream, and the choice among them for one generation
//! (the rules are the pure [`choose::order`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::choose::{self, NoUpstream, View};
use super::{BreakerState, NodeStatus, Upstream};
use crate::config::OrchestratorConfig;

/// The upstreams, in the configured order (never empty).
pub struct Upstreams {
    list: Vec<Arc<Upstream>>,
    /// Rotates ties among equally loaded upstreams.
    turn: AtomicUsize,
}

impl Upstreams {
    /// A client per configured upstream.
    pub fn new(cfg: &OrchestratorConfig) -> Result<Self, String> {
        let http = Upstream::client(cfg)?;
        let list: Vec<_> = cfg
            .upstreams
            .iter()
            .map(|u| Arc::new(Upstream::new(cfg, u, http.clone())))
            .collect();
        if list.is_empty() {
            return Err("no upstream is configured".into());
        }
        Ok(Self {
            list,
            turn: AtomicUsize::new(0),
        })
    }

    /// All of them, in the configured order.
    pub fn all(&self) -> &[Arc<Upstream>] {
        &self.list
    }

    /// The first configured (the only one with the `VPS_ENDPOINT` shorthand).
    pub fn first(&self) -> &Arc<Upstream> {
        &self.list[0]
    }

    /// The one named `name`.
    pub fn named(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.list.iter().find(|u| u.name() == name)
    }

    /// Every model some upstream serves (first-seen order, no repeats), and
    /// whether some upstream's list is still unknown.
    pub fn served(&self) -> (Vec<String>, bool) {
        let mut all: Vec<String> = Vec::new();
        let mut incomplete = false;
        for u in &self.list {
            match u.models() {
                Some(models) => {
                    for m in models {
                        if !all.contains(&m) {
                            all.push(m);
                        }
                    }
                }
                None => incomplete = true,
            }
        }
        (all, incomplete)
    }

    /// Reads the model list of every upstream whose list is unknown, at once.
    pub async fn refresh_unknown_models(&self) {
        let unknown = self.list.iter().filter(|u| u.models().is_none());
        futures::future::join_all(unknown.map(|u| u.refresh_models())).await;
    }

    /// Reads every upstream's health and model list once, at once; whether
    /// every list was read (tests and start-up use it).
    pub async fn refresh(&self) -> bool {
        let all = self.list.iter().map(|u| async {
            let (_, read) = tokio::join!(u.refresh_health(), u.refresh_models());
            read
        });
        futures::future::join_all(all)
            .await
            .into_iter()
            .all(|read| read)
    }

    /// The upstreams to try for a generation of `model`, in order; each call
    /// moves the rotation among equals on.
    pub fn plan(&self, model: &str) -> Result<Vec<Arc<Upstream>>, NoUpstream> {
        self.order(model, self.turn.fetch_add(1, Ordering::Relaxed))
    }

    /// The upstream the next [`plan`](Self::plan) would try first, without
    /// moving the rotation on (to count tokens where the request will go).
    pub fn likely(&self, model: &str) -> Result<Arc<Upstream>, NoUpstream> {
        let plan = self.order(model, self.turn.load(Ordering::Relaxed))?;
        Ok(plan[0].clone())
    }

    fn order(&self, model: &str, turn: usize) -> Result<Vec<Arc<Upstream>>, NoUpstream> {
        let views: Vec<View> = self
            .list
            .iter()
            .map(|u| View {
                serves: u.serves(model),
                open: (u.breaker.state() == BreakerState::Open)
                    .then(|| u.breaker.retry_after_secs().max(1)),
                reachable: !matches!(u.health(), Some(NodeStatus::Unreachable(_))),
                in_flight: u.in_flight(),
                slots: u.config().slots,
                weight: u.config().weight,
                fallback: u.config().fallback,
            })
            .collect();
        Ok(choose::order(&views, turn)?
            .into_iter()
            .map(|i| self.list[i].clone())
            .collect())
    }

    /// Where `model` was looked for, for a "not served" error: each upstream
    /// with what it serves (`?` while unknown).
    pub fn describe(&self) -> String {
        self.list
            .iter()
            .map(|u| {
                let models = u
                    .models()
                    .map(|m| {
                        if m.is_empty() {
                            "nothing".into()
                        } else {
                            m.join(", ")
                        }
                    })
                    .unwrap_or_else(|| "? (its list could not be read)".into());
                format!("{} ({}) serves {models}", u.name(), u.endpoint())
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps every upstream's readings fresh (one task each) until the
    /// process ends. Spawn it once on the server's runtime.
    pub async fn run(self: Arc<Self>) {
        let tasks = self
            .list
            .iter()
            .cloned()
            .map(|u| async move { u.run().await });
        futures::future::join_all(tasks).await;
    }
}
