//! The in-process stack of the router tests (`router.rs`, `ingress.rs`,
//! `faults.rs`): the orchestrator's state and router in front of a fake node on
//! loopback, its health and model list read once before the test starts.

#![allow(dead_code)] // Each test file uses a part.

use std::collections::BTreeMap;

use axum::Router;
use cerebrum::config::OrchestratorConfig;
use cerebrum::serve::build_state;
use cerebrum::state::AppState;
use cerebrum::upstream::BreakerState;
use cerebrum_testkit::fake::FakeUpstream;

pub struct Stack {
    pub app: Router,
    pub state: AppState,
    pub fake: FakeUpstream,
    /// Whether the model list was read (a fake told to fail may refuse it).
    pub models_read: bool,
}

impl Stack {
    /// The breaker of the (only) upstream.
    pub fn breaker(&self) -> BreakerState {
        self.state.upstreams.first().breaker.state()
    }
}

/// The settings for a node at `endpoint`: the fake's model as the fallback,
/// then `env` (a later pair wins); `VPS_ENDPOINT` is always `endpoint`.
pub fn config(endpoint: &str, env: &[(&str, &str)]) -> OrchestratorConfig {
    let mut env: BTreeMap<String, String> = [("CEREBRUM_FALLBACK_MODEL", "fake-model")]
        .iter()
        .chain(env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("VPS_ENDPOINT".into(), endpoint.into());
    OrchestratorConfig::resolve(Default::default(), &env, &Default::default()).unwrap()
}

/// A stack over `fake` with `config`, its router made by `app` (`router`, or
/// `router_with_hosts` for the host checks).
pub async fn stack_on(
    fake: FakeUpstream,
    config: OrchestratorConfig,
    app: impl FnOnce(AppState) -> Router,
) -> Stack {
    let state = build_state(config).unwrap();
    state.upstreams.first().refresh_health().await;
    let models_read = state.upstreams.first().refresh_models().await;
    Stack {
        app: app(state.clone()),
        state,
        fake,
        models_read,
    }
}

/// A stack over a new, well-behaved fake with [`config`]`(env)`.
pub async fn stack(env: &[(&str, &str)], app: impl FnOnce(AppState) -> Router) -> Stack {
    let fake = FakeUpstream::start().await;
    let config = config(&fake.url, env);
    let s = stack_on(fake, config, app).await;
    assert!(s.models_read, "the fake's model list was not read");
    s
}
