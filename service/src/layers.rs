//! The layers both servers' stacks use: correlation id, access log, and
//! reading the body within a time bound.
//! Each tier composes them in its `app.rs`, in the order written there.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderName, Request};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::logging::{self, SharedFacts};
use crate::metrics::{Finished, RequestMetrics};

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

/// A span per request carrying its id (every log line of the request has it),
/// with room for what handlers learn (`model`, `prompt_tokens`, `tokens`; see
/// [`crate::logging::record_model`]). Its one line is [`log_request`]'s.
pub fn access_log()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), (), (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeSpan)
        .on_request(())
        .on_response(())
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

fn request_span(req: &Request<Body>) -> Span {
    let id = req
        .headers()
        .get(cerebrum_shared::headers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path(),
        model = tracing::field::Empty, prompt_tokens = tracing::field::Empty,
        tokens = tracing::field::Empty)
}

/// One line per request, when its answer has been sent to the end or the
/// client left: `request` with the status, the time to the first byte of the
/// body (`ttft_ms`: a stream's first token), the whole time (`ms`) and the
/// outcome (`ok`, `error` for a 4xx/5xx or a broken body, `cancelled`), inside
/// the request's span (id, method, path, model, tokens); and, from the same
/// facts, the request's [`RequestMetrics`]. The handler and every poll of the
/// body run with the request's facts at hand ([`crate::logging`]). Mount it
/// with `from_fn_with_state` just inside [`access_log`].
pub async fn log_request(
    axum::extract::State(metrics): axum::extract::State<RequestMetrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use futures::StreamExt;
    use std::task::{Poll, ready};

    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let facts = SharedFacts::default();
    let response = logging::scope(facts.clone(), next.run(request)).await;
    let (parts, body) = response.into_parts();
    let streamed = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mut line = Line {
        span: Span::current(),
        metrics,
        path,
        facts,
        started,
        status: parts.status.as_u16(),
        streamed,
        first_byte: None,
        done: false,
    };
    let mut inner = body.into_data_stream();
    let body = futures::stream::poll_fn(move |cx| {
        // What the body's producers record lands on the request's line.
        let span = line.span.clone();
        let _entered = span.enter();
        let item = ready!(logging::sync_scope(line.facts.clone(), || inner.poll_next_unpin(cx)));
        match &item {
            Some(Ok(_)) => {
                line.first_byte.get_or_insert_with(Instant::now);
            }
            Some(Err(_)) => line.end("error"),
            None => line.end(if line.status >= 400 { "error" } else { "ok" }),
        }
        Poll::Ready(item)
    });
    axum::response::Response::from_parts(parts, Body::from_stream(body))
}

/// Paths whose successful requests are logged at debug level, not info.
const QUIET: [&str; 3] = ["/health", "/health/ready", "/metrics"];

struct Line {
    span: Span,
    metrics: RequestMetrics,
    path: String,
    facts: SharedFacts,
    started: Instant,
    status: u16,
    streamed: bool,
    first_byte: Option<Instant>,
    done: bool,
}

impl Line {
    fn end(&mut self, outcome: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let duration = self.started.elapsed();
        let first_byte = self.first_byte.map(|t| t - self.started);
        let facts = self.facts.lock().map(|f| f.clone()).unwrap_or_default();
        self.metrics.observe(&Finished {
            path: &self.path,
            status: self.status,
            streamed: self.streamed,
            first_byte,
            duration,
            completed: outcome != "cancelled",
            facts: &facts,
        });
        let tenths = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        let (status, ms, ttft_ms) = (self.status, tenths(duration), first_byte.map(tenths));
        if status >= 500 {
            tracing::warn!(parent: &self.span, status, ttft_ms, ms, outcome, "request");
        } else if status < 300 && QUIET.contains(&self.path.as_str()) {
            // Probes and scrapes every few seconds would bury the requests.
            tracing::debug!(parent: &self.span, status, ttft_ms, ms, outcome, "request");
        } else {
            tracing::info!(parent: &self.span, status, ttft_ms, ms, outcome, "request");
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.end("cancelled");
    }
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
