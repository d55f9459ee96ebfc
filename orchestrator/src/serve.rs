//! `cerebrum serve`: wires state and router together, serves until SIGTERM, then
//! stops accepting and gives open streams a grace period to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::OrchestratorConfig;
use crate::prompt::PrepareConfig;
use crate::state::{AppState, Metrics, NodeCache};
use crate::upstream::Upstream;

/// Builds the state (starts the CPU sampler).
pub fn build_state(config: OrchestratorConfig) -> Result<AppState, String> {
    let upstream = Upstream::new(&config)?;
    Ok(AppState {
        in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        config: Arc::new(config),
        prepare: Arc::new(PrepareConfig::default()),
        upstream: Arc::new(upstream),
        metrics: Arc::new(Metrics::default()),
        node: Arc::new(NodeCache::default()),
        cpu: crate::cpu::CpuGauge::start(Duration::from_secs(2)),
        started: Instant::now(),
    })
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(config: OrchestratorConfig) -> Result<(), String> {
    let addr = SocketAddr::new(config.host, config.port);
    let grace = config.shutdown_grace;
    let state = build_state(config)?;
    tracing::info!(%addr, node = %state.upstream.endpoint(), max_in_flight = state.config.max_in_flight,
        breaker_threshold = state.config.breaker_threshold,
        breaker_cooldown_s = state.config.breaker_cooldown.as_secs(), "cerebrum serve starting");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    tracing::info!(%addr, "listening");
    cerebrum_shared::service::ready(&format!("serving on {addr}"));
    tokio::spawn(cerebrum_shared::service::run_watchdog());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let app = crate::app::router(state);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => return r.map_err(|e| e.to_string()),
        () = cerebrum_shared::service::shutdown_signal() => {}
    }
    tracing::info!(
        grace_s = grace.as_secs(),
        "shutting down: no new connections; open streams may finish"
    );
    cerebrum_shared::service::stopping();
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => {
            tracing::warn!("grace period over; closing the remaining streams");
            Ok(())
        }
    }
}
