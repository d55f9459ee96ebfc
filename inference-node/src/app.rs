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

/// Builds the node's HTTP application.
pub fn router(state: AppState) -> Router {
    let policy = AuthPolicy::new(
        &state.config.api_key,
        &state.config.allowed_peers,
        state.metrics.clone(),
    );

    let protected = Router::new()
        .route("/v1/inference", post(cerebrum::inference))
        .route("/v1/inference/stream", post(cerebrum::inference_stream))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/tokenize", post(tokenize::tokenize))
        .route("/v1/models", get(admin::models))
        .route("/v1/unload/{model}", post(admin::unload))
        .route("/v1/cleanup", post(admin::cleanup))
        .route("/v1/stats", get(admin::stats))
        .route("/metrics", get(admin::metrics))
        // Everything above needs an allowed peer and the API key.
        .route_layer(axum::middleware::from_fn_with_state(policy, require_key));

    let metrics = state.metrics.clone();
    Router::new()
        // Public and answered from cached figures: monitors must never wait on inference.
        .route("/health", get(admin::health))
        .merge(crate::openapi::routes())
        .merge(protected)
        // Unknown routes and wrong methods answer JSON in the path's dialect, not empty bodies.
        .fallback(service_http::route_not_found)
        .method_not_allowed_fallback(service_http::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                // Correlation: keep the caller's X-Request-ID (the orchestrator's) or make one.
                .layer(layers::set_request_id())
                // Log context and access log: a span with the id, one line per request.
                .layer(layers::access_log())
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
