//! The node's router and its whole middleware stack, in one place: reading this
//! file is reading the node's request path.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::{AuthPolicy, require_key};
use crate::http::{AppState, admin, cerebrum, openai};

/// Largest request body: a 16k-character prompt with JSON escaping fits many times over.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Builds the node's HTTP application.
pub fn router(state: AppState) -> Router {
    let policy = AuthPolicy::new(
        &state.config.api_key,
        &state.config.allowed_peers,
        state.metrics.clone(),
    );
    let request_id = HeaderName::from_static(cerebrum_shared::headers::REQUEST_ID);

    let protected = Router::new()
        .route("/v1/inference", post(cerebrum::inference))
        .route("/v1/inference/stream", post(cerebrum::inference_stream))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
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
        .merge(protected)
        .layer(
            ServiceBuilder::new()
                // Correlation: keep the caller's X-Request-ID (the orchestrator's) or make one.
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                // Log context: every log line of a request carries its id.
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(cerebrum_shared::headers::REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                // Access log: one line per request with status and time (streams: time to headers).
                .on_response(|res: &axum::http::Response<_>, latency: Duration, _: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), ms = latency.as_millis() as u64, "served");
                }))
                // Echo the id so clients can quote it.
                .layer(PropagateRequestIdLayer::new(request_id))
                // Count requests for /metrics.
                .layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
                    metrics.request();
                    next.run(req)
                }))
                // Bodies over 1 MiB are refused with 413 before they are read.
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}

/// How long the node waits for open streams on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
