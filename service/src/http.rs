//! The one place an `ApiError` becomes a response, the JSON extractor that
//! routes every rejection into it, and JSON answers for unknown routes and
//! wrong methods: a client never sees a plain-text or empty error body.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, Dialect, ErrorCode, dialect_of, parse_json};
use cerebrum_shared::limits::MAX_BODY_BYTES;
use serde::de::DeserializeOwned;

/// An [`ApiError`] on its way out, in the dialect of its route.
#[derive(Debug)]
pub struct HttpError(pub ApiError, pub Dialect);

impl HttpError {
    /// The error in the dialect `path` belongs to.
    pub fn for_path(err: ApiError, path: &str) -> Self {
        Self(err, dialect_of(path))
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let HttpError(err, dialect) = self;
        let mut response = (err.status_code(), axum::Json(err.body(dialect))).into_response();
        if let Some(secs) = err.retry_after_header() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON body parsed with [`parse_json`]: not sent as `application/json` →
/// 415, malformed → 400, a wrong or missing field → 422 naming it, over the
/// body limit → 413, each in the route's dialect.
///
/// The media type is required so that a web page cannot post to either server
/// from a visitor's browser: a cross-site form may send `text/plain` without a
/// CORS preflight, but not `application/json`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// Whether `headers` say the body is JSON: `application/json`, with or without
/// parameters (`; charset=utf-8`), in any letter case.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let dialect = dialect_of(req.uri().path());
        if !is_json(req.headers()) {
            let sent = req
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let message = match sent {
                Some(t) => format!("the body is sent as '{t}'; send it as application/json"),
                None => "the body has no Content-Type; send it as application/json".to_owned(),
            };
            return Err(HttpError(
                ApiError::new(ErrorCode::UnsupportedMediaType, message),
                dialect,
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let err = if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::BodyTooLarge,
                    format!("the request body is over {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::bad_request(format!(
                    "cannot read the request body: {}",
                    rejection.body_text()
                ))
            };
            HttpError(err, dialect)
        })?;
        parse_json(&bytes)
            .map(ApiJson)
            .map_err(|e| HttpError(e, dialect))
    }
}

/// Fallback for unknown routes: 404 with a JSON body naming the path.
pub async fn route_not_found(method: Method, uri: Uri) -> HttpError {
    HttpError::for_path(
        ApiError::new(
            ErrorCode::RouteNotFound,
            format!("no route {method} {}", uri.path()),
        ),
        uri.path(),
    )
}

/// Fallback for a known route asked with the wrong method: 405 with a JSON body.
pub async fn method_not_allowed(method: Method, uri: Uri) -> HttpError {
    HttpError::for_path(
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} does not accept {method}", uri.path()),
        ),
        uri.path(),
    )
}

/// The request's id (set or kept by the request-id layer), `-` when none.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(cerebrum_shared::headers::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_application_json_with_any_parameters_and_case() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_json(&h)
        };
        for yes in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
        ] {
            assert!(with(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "application/json-seq",
            "text/json",
            "",
        ] {
            assert!(!with(no), "{no}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
