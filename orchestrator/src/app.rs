//! The orchestrator's router and its whole middleware stack, in one place:
//! reading this file is reading the Pi tier's request path.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{self, from_fn_with_state};
use axum::routing::{get, post};
use cerebrum_service::{http as service_http, layers};
use cerebrum_shared::limits::MAX_BODY_BYTES;
use tower::ServiceBuilder;

use crate::api::{cerebrum, openai, ops};
use crate::layers::host::AllowedHosts;
use crate::layers::rate_limit::ClientRateLimit;
use crate::layers::{client_auth, host, in_flight, outcome, rate_limit};
use crate::state::{AppState, Metrics};

/// The inference routes' paths (each written once; the outcome counter reads the list).
pub mod paths {
    /// Cerebrum: one answer.
    pub const COMPLETE: &str = "/v1/complete";
    /// Cerebrum: a stream of tokens.
    pub const COMPLETE_STREAM: &str = "/v1/complete/stream";
    /// OpenAI: chat.
    pub const CHAT: &str = "/v1/chat/completions";
    /// OpenAI: text completion.
    pub const COMPLETIONS: &str = "/v1/completions";
    /// All of them: load shed, rate limited and counted by outcome.
    pub const INFERENCE: [&str; 4] = [COMPLETE, COMPLETE_STREAM, CHAT, COMPLETIONS];
    /// Liveness and what the stack could serve.
    pub const HEALTH: &str = "/health";
    /// Readiness (200 or 503).
    pub const READY: &str = "/health/ready";
    /// Prometheus.
    pub const METRICS: &str = "/metrics";
    /// The models the upstreams serve.
    pub const MODELS: &str = "/v1/models";
    /// Counters as JSON.
    pub const STATS: &str = "/v1/stats";
    /// The first upstream's own health.
    pub const VPS_HEALTH: &str = "/v1/vps/health";
    /// Dry-run preparation.
    pub const PREPARE: &str = "/v1/prepare";
    /// Every path of this tier (the `route` label of its metrics; others are `other`).
    pub const ALL: [&str; 13] = [
        COMPLETE,
        COMPLETE_STREAM,
        CHAT,
        COMPLETIONS,
        HEALTH,
        READY,
        METRICS,
        MODELS,
        STATS,
        VPS_HEALTH,
        PREPARE,
        cerebrum_service::docs::OPENAPI,
        cerebrum_service::docs::DOCS,
    ];
}

/// Builds the orchestrator's HTTP application, allowing this machine's names as `Host`.
pub fn router(state: AppState) -> Router {
    let hosts = AllowedHosts::here(&state.config.allowed_hosts);
    router_with_hosts(state, hosts)
}

/// [`router`] with the `Host` allow-list given (tests name the machine).
pub fn router_with_hosts(state: AppState, hosts: AllowedHosts) -> Router {
    let mut inference = Router::new()
        .route(paths::COMPLETE, post(cerebrum::complete))
        .route(paths::COMPLETE_STREAM, post(cerebrum::complete_stream))
        .route(paths::CHAT, post(openai::chat))
        .route(paths::COMPLETIONS, post(openai::completions))
        // Load shed: at most N in flight, counted until the stream ends; 503 at once otherwise.
        .route_layer(from_fn_with_state(state.clone(), in_flight::limit));
    if let Some(limiter) = ClientRateLimit::new(
        state.config.rate_limit_per_second,
        state.config.rate_limit_burst,
        &state.config.client_keys,
    ) {
        // Per-client rate limit (off by default; a client is its configured key, else its
        // address): 429 before a request takes an in-flight slot.
        inference = inference.route_layer(from_fn_with_state(
            (state.clone(), limiter),
            rate_limit::limit,
        ));
    }

    let counted = state.metrics.clone();
    let body_read_timeout = state.config.body_read_timeout;
    Router::new()
        .route(paths::HEALTH, get(ops::health))
        .route(paths::READY, get(ops::ready))
        .route(paths::METRICS, get(ops::metrics))
        .route(paths::MODELS, get(ops::models))
        .route(paths::STATS, get(ops::stats))
        .route(
            paths::VPS_HEALTH,
            get(ops::vps_health).post(ops::vps_health),
        )
        .route(paths::PREPARE, post(ops::prepare_dry_run))
        .merge(crate::openapi::routes())
        .merge(inference)
        // Unknown routes and wrong methods answer JSON in the path's dialect, not empty bodies.
        .fallback(service_http::route_not_found)
        .method_not_allowed_fallback(service_http::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                // Correlation: keep the client's X-Request-ID or make a UUID v4 (forwarded to the node).
                .layer(layers::set_request_id())
                // Log context: a span with the id (and the model and tokens handlers learn).
                .layer(layers::access_log())
                // One line per request at its end: status, model, tokens, time to first byte, duration.
                .layer(from_fn_with_state(
                    state.requests.clone(),
                    layers::log_request,
                ))
                // Echo the id so clients can quote it.
                .layer(layers::propagate_request_id())
                // Count requests for /metrics.
                .layer(middleware::from_fn(move |req, next: middleware::Next| {
                    Metrics::inc(&counted.requests);
                    next.run(req)
                }))
                // How each inference request ended (succeeded, failed, cancelled), for /metrics:
                // outside every ingress check, so their refusals count as failed.
                .layer(from_fn_with_state(state.clone(), outcome::count))
                // DNS rebinding: 403 unless Host is an address or one of this machine's names.
                .layer(from_fn_with_state(
                    Arc::new(hosts),
                    host::require_allowed_host,
                ))
                // Optional client keys (health checks stay open).
                .layer(from_fn_with_state(
                    state.clone(),
                    client_auth::require_client_key,
                ))
                // The whole body within a bound (408) and a size (413), before any
                // in-flight slot is taken: a slow sender holds none.
                .layer(middleware::from_fn(move |req, next| {
                    layers::read_body_within(MAX_BODY_BYTES, body_read_timeout, req, next)
                }))
                // Bodies over the limit are refused with 413 (JSON, by ApiJson) before they are read.
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}
