//! In-process router tests (`tower::ServiceExt::oneshot`): building a request as
//! a real connection would deliver it, sending it, and reading an error body
//! the way clients read it.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use cerebrum_shared::error::{ApiError, CerebrumErrorBody, Dialect, OpenAiErrorBody, dialect_of};
use tower::ServiceExt;

/// A JSON request from `peer`, with the peer address a real connection would carry.
pub fn request(
    method: Method,
    path: &str,
    body: impl Into<Body>,
    peer: [u8; 4],
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(body.into()).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
    req
}

/// Sends one request through the router and reads the whole body.
pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, bytes)
}

/// The error a response carries, read as clients read it, after checking that
/// the body is JSON in the dialect of `path` (and keeps the original's title).
pub fn error_of(path: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
    match dialect_of(path) {
        Dialect::OpenAi => {
            serde_json::from_slice::<OpenAiErrorBody>(body)
                .unwrap_or_else(|e| panic!("{path}: not an OpenAI error body ({e}): {body:?}"));
        }
        Dialect::Cerebrum => {
            let b: CerebrumErrorBody = serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("{path}: not a Cerebrum error body ({e}): {body:?}"));
            assert_eq!(Some(b.error.as_str()), b.code.map(|c| c.title()), "{path}");
        }
    }
    assert_eq!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..]),
        "{path}"
    );
    ApiError::from_response(status.as_u16(), headers, body)
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_string))
        .collect()
}
