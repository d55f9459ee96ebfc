//! The layers both servers' stacks use: correlation id, access log, and
//! reading the body within a time bound.
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

/// Reads the whole request body, up to `limit` bytes, within `within`, before
/// the rest of the stack sees the request: a client that sends its headers and
/// then dribbles or withholds the body is answered 408 (`request_timeout`) and
/// disconnected, and holds nothing a later layer hands out (the orchestrator's
/// in-flight permits). Over `limit` → 413 (`body_too_large`). Both in the
/// path's dialect. Mount it with `from_fn` and a closure that passes the bounds.
pub async fn read_body_within(
    limit: usize,
    within: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use cerebrum_shared::error::{ApiError, ErrorCode};

    let path = request.uri().path().to_owned();
    let refuse = |code, message: String| {
        let mut response =
            crate::http::HttpError::for_path(ApiError::new(code, message), &path).into_response();
        // The rest of the body is not read: the connection cannot carry another request.
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        response
    };
    let too_large = || format!("the request body is over {limit} bytes");
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return refuse(ErrorCode::BodyTooLarge, too_large());
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(within, collect(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(Collect::TooLarge)) => refuse(ErrorCode::BodyTooLarge, too_large()),
        Ok(Err(Collect::Broken(e))) => refuse(
            ErrorCode::BadRequest,
            format!("cannot read the request body: {e}"),
        ),
        Err(_) => {
            tracing::warn!(
                within_s = within.as_secs_f64(),
                "request body not received in time; closing the connection"
            );
            refuse(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    within.as_secs_f64()
                ),
            )
        }
    }
}

enum Collect {
    TooLarge,
    Broken(axum::Error),
}

async fn collect(mut body: Body, limit: usize) -> Result<axum::body::Bytes, Collect> {
    use axum::body::HttpBody;
    let mut buf = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let Ok(data) = frame.map_err(Collect::Broken)?.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            return Err(Collect::TooLarge);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.into())
}
