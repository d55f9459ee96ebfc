//! The layers both servers' stacks begin with: correlation id and access log.
//! Each tier composes them in its `app.rs`, in the order written there.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

fn request_id_header() -> HeaderName {
    HeaderName::from_static(cerebrum_shared::headers::REQUEST_ID)
}

/// Keeps the caller's `X-Request-ID` or makes a UUID v4.
pub fn set_request_id() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::new(request_id_header(), MakeRequestUuid)
}

/// Echoes the id on the response so clients can quote it.
pub fn propagate_request_id() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(request_id_header())
}

type MakeSpan = fn(&Request<Body>) -> Span;
type OnResponse = fn(&Response<Body>, Duration, &Span);

/// A span per request carrying its id (every log line of the request has it),
/// and one access-log line with status and time (streams: time to headers).
pub fn access_log() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse>
{
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeSpan)
        .on_request(())
        .on_response(log_response as OnResponse)
}

fn request_span(req: &Request<Body>) -> Span {
    let id = req
        .headers()
        .get(cerebrum_shared::headers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
}

fn log_response(res: &Response<Body>, latency: Duration, _: &Span) {
    tracing::info!(
        status = res.status().as_u16(),
        ms = latency.as_millis() as u64,
        "served"
    );
}
