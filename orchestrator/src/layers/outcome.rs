//! How each inference request ended, for `/metrics`: succeeded (a 2xx answer
//! sent to its end, a stream that ended with its final event), failed (an error
//! status, the ingress refusals included — 401, 403, 408, 413, 415 — or a stream
//! whose final event is an error), or cancelled (the client left before the
//! answer was sent). Requests the in-flight limit sheds and the rate limit
//! refuses carry [`CountedElsewhere`] and have their own counters, so every
//! inference request lands in exactly one of succeeded, failed, cancelled, shed
//! and rate-limited. Mounted outside every ingress check, on the paths in
//! [`crate::app::paths::INFERENCE`].

use std::task::{Poll, ready};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;

use crate::state::{AppState, Metrics};

/// Both dialects' error events are a JSON object whose first key is `error`
/// (`StreamError` and the OpenAI error body); a token or chunk never is.
const ERROR_EVENT: &[u8] = b"data: {\"error\"";

/// Marks a refusal that another counter (shed, rate-limited) already counted.
#[derive(Debug, Clone, Copy)]
pub struct CountedElsewhere;

/// The middleware; mounted with `from_fn_with_state` outside the ingress checks.
pub async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !crate::app::paths::INFERENCE.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if response.extensions().get::<CountedElsewhere>().is_some() {
        return response;
    }
    if !response.status().is_success() {
        Metrics::inc(&state.metrics.failed);
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut tally = Tally {
        state,
        error_event: false,
        ended: false,
    };
    let mut inner = body.into_data_stream();
    let body = futures::stream::poll_fn(move |cx| {
        let item = ready!(inner.poll_next_unpin(cx));
        match &item {
            Some(Ok(frame)) => tally.saw(frame),
            Some(Err(_)) => tally.end(true),
            None => tally.end(false),
        }
        Poll::Ready(item)
    });
    Response::from_parts(parts, Body::from_stream(body))
}

/// One answer's outcome, counted once: at its end, or when it is dropped unfinished.
struct Tally {
    state: AppState,
    error_event: bool,
    ended: bool,
}

impl Tally {
    fn saw(&mut self, frame: &Bytes) {
        self.error_event |= frame.starts_with(ERROR_EVENT);
    }

    fn end(&mut self, broken: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        let m = &self.state.metrics;
        Metrics::inc(if broken || self.error_event {
            &m.failed
        } else {
            &m.succeeded
        });
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if !self.ended {
            self.ended = true;
            Metrics::inc(&self.state.metrics.cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use cerebrum_shared::cerebrum::StreamError;
    use cerebrum_shared::error::{ApiError, Dialect, ErrorCode, to_json};
    use cerebrum_shared::sse::data_line;

    use super::ERROR_EVENT;

    #[test]
    fn error_events_of_both_dialects_are_recognised() {
        let e = ApiError::new(ErrorCode::StreamingFailed, "broke off");
        let cerebrum = data_line(&to_json(&StreamError::from(&e)));
        let openai = data_line(&e.body(Dialect::OpenAi).to_string());
        assert!(cerebrum.as_bytes().starts_with(ERROR_EVENT), "{cerebrum}");
        assert!(openai.as_bytes().starts_with(ERROR_EVENT), "{openai}");
        let token = data_line(r#"{"token":"{\"error\"","total_tokens":1}"#);
        assert!(!token.as_bytes().starts_with(ERROR_EVENT));
    }
}
