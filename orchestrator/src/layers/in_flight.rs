//! Load shedding for inference routes: at most N requests in flight, the rest
//! refused at once with 503 and `Retry-After` (no queue: a Pi has no room for one).
//!
//! tower's `ConcurrencyLimit` releases its permit when the response future
//! resolves, i.e. when the headers of a stream are sent, which is the original's
//! mistake (design §4). Here the permit travels inside the response body and is
//! released only when the body, the whole token stream, is finished or dropped,
//! or when the client stops reading it: a body handed a frame that is not asked
//! for the next one within `stalled_reader_timeout` is cut (the node's stream
//! dropped, so the node stops too) and its permit released. Waiting on the node
//! is not stalling: the clock runs only while a frame sits with the client.
//!
//! The request body was read before this layer (see `app.rs`): a slow sender
//! never holds a permit.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, ErrorCode};
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::api::HttpError;
use crate::layers::outcome::CountedElsewhere;
use crate::state::{AppState, Metrics};

/// The middleware; mounted with `from_fn_with_state` on inference routes only.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let sem: Arc<Semaphore> = state.in_flight.clone();
    let Ok(permit) = sem.try_acquire_owned() else {
        Metrics::inc(&state.metrics.shed);
        tracing::warn!(
            max = state.config.max_in_flight,
            "load shed: too many requests in flight"
        );
        let dialect = crate::api::dialect_of(request.uri().path());
        let mut response = HttpError(
            ApiError::unavailable(
                ErrorCode::Cm4Busy,
                "Too many concurrent requests, retry shortly",
                2,
            ),
            dialect,
        )
        .into_response();
        response.extensions_mut().insert(CountedElsewhere);
        return response;
    };
    let id = cerebrum_service::http::request_id(request.headers());
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let body = Guarded::new(body, permit, state.config.stalled_reader_timeout, id);
    Response::from_parts(parts, Body::from_stream(body))
}

/// A response body and the permit it holds, shared with its watchdog.
struct Slot {
    held: Option<(BodyDataStream, OwnedSemaphorePermit)>,
    /// When a chunk was handed to the client that has not asked for the next
    /// one since; `None` while the client waits on us.
    handed_at: Option<Instant>,
    /// The watchdog cut the stream.
    cut: bool,
}

/// The response body: passes chunks through, and gives the permit back at the
/// end, when dropped, or when the client leaves a chunk unread too long.
struct Guarded {
    slot: Arc<Mutex<Slot>>,
    watchdog: tokio::task::AbortHandle,
    cut_reported: bool,
}

impl Guarded {
    fn new(body: Body, permit: OwnedSemaphorePermit, bound: Duration, id: String) -> Self {
        let slot = Arc::new(Mutex::new(Slot {
            held: Some((body.into_data_stream(), permit)),
            // Headers are with the client: it must ask for the body in time too.
            handed_at: Some(Instant::now()),
            cut: false,
        }));
        let watchdog = tokio::spawn(watch(slot.clone(), bound, id)).abort_handle();
        Self {
            slot,
            watchdog,
            cut_reported: false,
        }
    }
}

/// Cuts the stream in `slot` once a chunk has sat unread for `bound`.
async fn watch(slot: Arc<Mutex<Slot>>, bound: Duration, id: String) {
    loop {
        let deadline = {
            let Ok(slot) = slot.lock() else { return };
            if slot.held.is_none() {
                return;
            }
            slot.handed_at.unwrap_or_else(Instant::now) + bound
        };
        tokio::time::sleep_until(deadline).await;
        let Ok(mut slot) = slot.lock() else { return };
        let stalled = slot.held.is_some() && slot.handed_at.is_some_and(|t| t.elapsed() >= bound);
        if stalled {
            // Drops the node's stream (it stops generating) and the permit.
            slot.held = None;
            slot.cut = true;
            tracing::warn!(
                id = %id,
                bound_s = bound.as_secs_f64(),
                "client stopped reading its stream; stream cut and in-flight slot released"
            );
            return;
        }
    }
}

impl Stream for Guarded {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Ok(mut slot) = self.slot.lock() else {
            return Poll::Ready(None);
        };
        let Some((body, _)) = slot.held.as_mut() else {
            let cut = slot.cut;
            drop(slot);
            return Poll::Ready(if cut { self.cut_once() } else { None });
        };
        let polled = body.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) => slot.handed_at = Some(Instant::now()),
            Poll::Pending => slot.handed_at = None,
            // The end (or a broken stream): the permit goes now.
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => slot.held = None,
        }
        polled
    }
}

impl Guarded {
    /// After a cut: one error (so the connection is closed, not ended as if
    /// the answer were complete), then the end.
    fn cut_once(&mut self) -> Option<Result<Bytes, axum::Error>> {
        if std::mem::replace(&mut self.cut_reported, true) {
            return None;
        }
        Some(Err(axum::Error::new(std::io::Error::other(
            "stream cut: the client stopped reading it",
        ))))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.watchdog.abort();
        if let Ok(mut slot) = self.slot.lock() {
            slot.held = None;
        }
    }
}
