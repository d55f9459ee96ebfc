//! `GET /openapi.json` and `GET /docs`, the same on both tiers: the tier's
//! document (generated from the wire types at test time, committed, embedded)
//! and a page that lists its operations from the JSON itself (and adds Swagger
//! UI when its CDN is reachable). Public, like `/health`.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

/// The page behind `/docs`.
pub const PAGE: &str = include_str!("docs.html");
/// The document's path.
pub const OPENAPI: &str = "/openapi.json";
/// The page's path.
pub const DOCS: &str = "/docs";

/// The two routes, serving `document` (a tier's OpenAPI JSON).
pub fn routes<S: Clone + Send + Sync + 'static>(document: &'static str) -> Router<S> {
    Router::new()
        .route(
            OPENAPI,
            get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], document).into_response()
            }),
        )
        .route(DOCS, get(|| async { Html(PAGE) }))
}
