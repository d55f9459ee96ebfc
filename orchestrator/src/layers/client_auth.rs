//! Optional client keys: when configured, every route but the health checks
//! and the API documents needs one of them as `X-API-Key` or `Authorization: Bearer`
//! (401 missing, 403 wrong).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::HttpError;
use crate::state::AppState;

pub use cerebrum_shared::headers::presented_key;

/// The middleware.
pub async fn require_client_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let keys = &state.config.client_keys;
    let path = request.uri().path();
    // Health checks and the API documents (`/openapi.json`, `/docs`) stay open.
    if keys.is_empty()
        || matches!(
            path,
            "/health" | "/health/ready" | "/openapi.json" | "/docs"
        )
    {
        return next.run(request).await;
    }
    match cerebrum_service::keys::check(keys, request.headers(), "your key") {
        Ok(()) => next.run(request).await,
        Err(e) => HttpError::for_path(e, path).into_response(),
    }
}
