//! Wires config, guard, registry and router together and serves until SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::NodeConfig;
use crate::engine::EngineOptions;
use crate::guard::{AdmissionGuard, Limits};
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::registry::{ModelRegistry, build_catalog};
use crate::shutdown::Shutdown;

/// After the grace, how long cut streams have to send their last event before the server stops.
pub const CUT_FLUSH: Duration = Duration::from_secs(2);

/// Builds the application state (starts the resource sampler).
pub fn build_state(config: NodeConfig) -> AppState {
    let metrics = Arc::new(Metrics::default());
    let guard = AdmissionGuard::start(
        Limits {
            max_cpu_percent: config.max_cpu_percent,
            ram_floor: config.ram_floor_bytes,
        },
        Duration::from_secs(1),
    );
    let catalog = build_catalog(&config.models_dir, &config.models);
    if catalog.is_empty() {
        tracing::warn!(dir = %config.models_dir.display(),
            "no models found: put *.gguf files there (scripts/fetch-model) or list them under [models]");
    }
    let opts = EngineOptions {
        parallel: config.parallel,
        context_size: config.context_size,
        n_threads: config.n_threads,
        n_batch: crate::engine::n_batch(config.parallel),
        prompt_cache: config.prompt_cache,
    };
    let registry = ModelRegistry::new(
        catalog,
        config.default_model.clone(),
        opts,
        config.max_loaded_models,
        config.ram_floor_bytes,
        Arc::new(guard.clone()),
        metrics.clone(),
    );
    AppState {
        shutdown: Shutdown::new(config.shutdown_grace),
        config: Arc::new(config),
        registry,
        guard,
        metrics,
        started: Instant::now(),
    }
}

/// Binds and serves until SIGTERM or Ctrl-C; then refuses new work, gives open
/// streams the configured grace to finish, ends the rest with an error event,
/// and returns at most [`CUT_FLUSH`] later.
pub async fn serve(config: NodeConfig) -> std::io::Result<()> {
    let addr = SocketAddr::new(config.bind_ip, config.port);
    let idle = config.idle_unload;
    let state = build_state(config);
    tracing::info!(models = ?state.registry.available(), default = ?state.config.default_model,
        parallel = state.config.parallel, threads = state.config.n_threads, "cerebrum-node starting");
    tokio::spawn(state.registry.clone().idle_unloader(idle));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    tracing::info!(%addr, "listening");
    cerebrum_service::notify::ready(&format!("serving on {addr}"));
    tokio::spawn(cerebrum_service::notify::run_watchdog());
    let shutdown = state.shutdown.clone();
    let bound = shutdown.grace() + CUT_FLUSH;
    let stop = shutdown.run_on(cerebrum_service::shutdown::shutdown_signal());
    let app = crate::app::router(state);
    cerebrum_service::shutdown::serve_until(
        listener,
        app,
        cerebrum_service::shutdown::Serving::with_grace(bound),
        stop,
    )
    .await
}
