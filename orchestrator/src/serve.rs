//! `cerebrum serve`: wires state and router together, serves until SIGTERM, then
//! stops accepting and gives open streams a grace period to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::OrchestratorConfig;
use crate::prompt::PrepareConfig;
use crate::state::{AppState, Metrics};
use crate::upstream::Upstreams;

/// Builds the state (starts the CPU sampler).
pub fn build_state(config: OrchestratorConfig) -> Result<AppState, String> {
    let upstreams = Arc::new(Upstreams::new(&config)?);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let metrics = Arc::new(Metrics::default());
    let (registry, requests) = crate::metrics::registry(
        &metrics,
        upstreams.clone(),
        in_flight.clone(),
        config.max_in_flight,
        &crate::app::paths::ALL,
    );
    Ok(AppState {
        in_flight,
        config: Arc::new(config),
        prepare: Arc::new(PrepareConfig::default()),
        upstreams,
        metrics,
        registry: Arc::new(registry),
        requests,
        cpu: crate::cpu::CpuGauge::start(Duration::from_secs(2)),
        started: Instant::now(),
    })
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(config: OrchestratorConfig) -> Result<(), String> {
    let addr = SocketAddr::new(config.host, config.port);
    let serving = cerebrum_service::shutdown::Serving {
        grace: config.shutdown_grace,
        header_read_timeout: config.header_read_timeout,
    };
    let state = build_state(config)?;
    // Each upstream's health and model list, refreshed in the background: requests never wait on them.
    tokio::spawn(state.upstreams.clone().run());
    for u in state.upstreams.all() {
        let c = u.config();
        tracing::info!(upstream = %c.name, endpoint = %c.endpoint, kind = c.kind.as_str(),
            slots = c.slots, weight = c.weight, fallback = c.fallback,
            models = ?c.models, "upstream");
    }
    tracing::info!(%addr, upstreams = state.upstreams.all().len(),
        fallback_model = ?state.config.fallback_model, max_in_flight = state.config.max_in_flight,
        breaker_threshold = state.config.breaker_threshold,
        breaker_cooldown_s = state.config.breaker_cooldown.as_secs(), "cerebrum serve starting");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    tracing::info!(%addr, "listening");
    cerebrum_service::notify::ready(&format!("serving on {addr}"));
    tokio::spawn(cerebrum_service::notify::run_watchdog());
    let app = crate::app::router(state);
    cerebrum_service::shutdown::serve_until(
        listener,
        app,
        serving,
        cerebrum_service::shutdown::shutdown_signal(),
    )
    .await
    .map_err(|e| e.to_string())
}
