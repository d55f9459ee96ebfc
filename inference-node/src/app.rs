//! The node's router and its whole middleware stack, in one place: reading this
//! file is reading the node's request path.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use cerebrum_service::{http as service_http, layers};
use cerebrum_shared::limits::MAX_BODY_BYTES;
use tower::ServiceBuilder;

use crate::auth::{AuthPolicy, require_key};
use crate::http::{AppState, admin, cerebrum, openai, tokenize};

/// The node's paths, each written once (the router and the `route` label of its metrics).
pub mod paths {
    /// Cerebrum: one answer.
    pub const INFERENCE: &str = "/v1/inference";
    /// Cerebrum: a stream of tokens.
    pub const INFERENCE_STREAM: &str = "/v1/inference/stream";
    /// OpenAI: chat.
    pub const CHAT: &str = "/v1/chat/completions";
    /// OpenAI: text completion.
    pub const COMPLETIONS: &str = "/v1/completions";
    /// Token counts (llama-server's route, extended).
    pub const TOKENIZE: &str = "/tokenize";
    /// The models it serves.
    pub const MODELS: &str = "/v1/models";
    /// Unload one model.
    pub const UNLOAD: &str = "/v1/unload/{model}";
    /// Unload idle models.
    pub const CLEANUP: &str = "/v1/cleanup";
    /// Counters as JSON.
    pub const STATS: &str = "/v1/stats";
    /// Prometheus.
    pub const METRICS: &str = "/metrics";
    /// Liveness and admission.
    pub const HEALTH: &str = "/health";
    /// Every path.
    pub const ALL: [&str; 13] = [
        INFERENCE,
        INFERENCE_STREAM,
        CHAT,
        COMPLETIONS,
        TOKENIZE,
        MODELS,
        UNLOAD,
        CLEANUP,
        STATS,
        METRICS,
        HEALTH,
        cerebrum_service::docs::OPENAPI,
        cerebrum_service::docs::DOCS,
    ];
}

/// Builds the node's HTTP application.
pub fn router(state: AppState) -> Router {
    let policy = AuthPolicy::new(
        &state.config.api_key,
        &state.config.allowed_peers,
        state.metrics.clone(),
    );

    let protected = Router::new()
        .route(paths::INFERENCE, post(cerebrum::inference))
        .route(paths::INFERENCE_STREAM, post(cerebrum::inference_stream))
        .route(paths::CHAT, post(openai::chat))
        .route(paths::COMPLETIONS, post(openai::completions))
        .route(paths::TOKENIZE, post(tokenize::tokenize))
        .route(paths::MODELS, get(admin::models))
        .route(paths::UNLOAD, post(admin::unload))
        .route(paths::CLEANUP, post(admin::cleanup))
        .route(paths::STATS, get(admin::stats))
        .route(paths::METRICS, get(admin::metrics))
        // Everything above needs an allowed peer and the API key.
        .route_layer(axum::middleware::from_fn_with_state(policy, require_key));

    let metrics = state.metrics.clone();
    Router::new()
        // Public and answered from cached figures: monitors must never wait on inference.
        .route(paths::HEALTH, get(admin::health))
        .merge(crate::openapi::routes())
        .merge(protected)
        // Unknown routes and wrong methods answer JSON in the path's dialect, not empty bodies.
        .fallback(service_http::route_not_found)
        .method_not_allowed_fallback(service_http::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                // Correlation: keep the caller's X-Request-ID (the orchestrator's) or make one.
                .layer(layers::set_request_id())
                // Log context: a span with the id (and the model and tokens handlers learn).
                .layer(layers::access_log())
                // One line per request at its end: status, model, tokens, time to first byte, duration.
                .layer(axum::middleware::from_fn_with_state(
                    state.metrics.per_request.clone(),
                    layers::log_request,
                ))
                // Echo the id so clients can quote it.
                .layer(layers::propagate_request_id())
                // Count requests for /metrics.
                .layer(axum::middleware::from_fn(
                    move |req, next: axum::middleware::Next| {
                        metrics.request();
                        next.run(req)
                    },
                ))
                // Bodies over the limit are refused with 413 (JSON, by ApiJson) before they are read.
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}
