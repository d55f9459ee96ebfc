//! Optional client keys: when configured, every route but the health checks
//! and the API documents needs one of them as `X-API-Key` or `Authorization: Bearer`
//! (401 missing, 403 wrong).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, ErrorCode};
use subtle::ConstantTimeEq;

use crate::api::HttpError;
use crate::state::AppState;

pub use cerebrum_shared::headers::presented_key;

/// Whether `key` is one of `keys`, compared in constant time.
pub fn key_matches(keys: &[String], key: &str) -> bool {
    keys.iter().fold(false, |found, k| {
        found | bool::from(k.as_bytes().ct_eq(key.as_bytes()))
    })
}

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
    let dialect = crate::api::dialect_of(path);
    match presented_key(request.headers()) {
        None => HttpError(
            ApiError::new(
                ErrorCode::MissingApiKey,
                "send your key as X-API-Key or Authorization: Bearer",
            ),
            dialect,
        )
        .into_response(),
        Some(k) if key_matches(keys, k) => next.run(request).await,
        Some(_) => HttpError(
            ApiError::new(ErrorCode::InvalidApiKey, "the API key does not match"),
            dialect,
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_any_configured_key() {
        let keys = vec!["alpha-key".to_string(), "beta-key".to_string()];
        assert!(key_matches(&keys, "beta-key"));
        assert!(!key_matches(&keys, "beta-ke"));
        assert!(!key_matches(&[], "x"));
    }
}
