//! Load shedding for inference routes: at most N requests in flight, the rest
//! refused at once with 503 and `Retry-After` (no queue: a Pi has no room for one).
//!
//! tower's `ConcurrencyLimit` releases its permit when the response future
//! resolves, i.e. when the headers of a stream are sent, which is the original's
//! mistake (design §4). Here the permit travels inside the response body and is
//! released only when the body, the whole token stream, is finished or dropped.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, ErrorCode};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::api::HttpError;
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
        return HttpError(
            ApiError::unavailable(
                ErrorCode::Cm4Busy,
                "Too many concurrent requests, retry shortly",
                2,
            ),
            dialect,
        )
        .into_response();
    };
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    // The permit is dropped with the stream: at its end, or when the client leaves.
    let body = body.into_data_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}
