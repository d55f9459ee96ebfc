//! The error envelope both tiers answer with, and typed body-parsing errors.
//!
//! Every failure a client can see is an [`ApiError`]: an [`ErrorCode`] (the
//! machine-readable fact: clients branch on it, never on the words), the status
//! code that goes with it, and a message for people. It renders in the caller's
//! [`Dialect`]: the original Cerebrum shape [`CerebrumErrorBody`]
//! `{"error": title, "code", "message", …}` or OpenAI's [`OpenAiErrorBody`]
//! `{"error": {"message", "type", "param", "code"}}`, and
//! [`ApiError::from_response`] reads either back.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which API a request came in on; decides the error body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The original Cerebrum API (`/v1/complete`, `/v1/inference`, …).
    Cerebrum,
    /// The OpenAI API (`/v1/chat/completions`, `/v1/completions`, `/v1/models`).
    OpenAi,
}

/// Which API a request path belongs to.
pub fn dialect_of(path: &str) -> Dialect {
    if path.ends_with("/chat/completions") || path == "/v1/completions" {
        Dialect::OpenAi
    } else {
        Dialect::Cerebrum
    }
}

/// What went wrong, as a client should branch on it. Sent as `code` in both
/// dialects (`"cm4_busy"`, `"breaker_open"`, …). The table below is the one
/// place a code's status, title and OpenAI `type` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON, not UTF-8, or empty.
    BadRequest,
    /// 422: a field is missing, of the wrong type or out of range (`field` names it).
    InvalidRequest,
    /// 413: the request body is over the server's byte limit.
    BodyTooLarge,
    /// 413: the prompt is over the orchestrator's limit.
    PromptTooLarge,
    /// 400: the prompt does not fit the model's context on the node.
    PromptTooLong,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 408: the request body did not arrive within the server's bound.
    RequestTimeout,
    /// 401: no API key was presented.
    MissingApiKey,
    /// 403: the API key does not match.
    InvalidApiKey,
    /// 403: the caller is not allowed: its address is not on the node's
    /// allow-list, or the `Host` it named is not one the orchestrator answers to.
    PeerNotAllowed,
    /// 404: no such model.
    ModelNotFound,
    /// 404: the model is not loaded (so it cannot be unloaded).
    ModelNotLoaded,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: the model is serving and cannot be unloaded now.
    ModelBusy,
    /// 429: this client sent too many requests.
    RateLimited,
    /// 503: the orchestrator has as many requests in flight as it allows.
    Cm4Busy,
    /// 503: the inference node cannot be reached.
    VpsUnavailable,
    /// 503: the node failed repeatedly; the circuit breaker paused calls.
    BreakerOpen,
    /// 503: the node refuses work to protect itself (CPU, RAM, all slots busy).
    VpsOverloaded,
    /// 503: the model's worker is gone (it is reloaded on the next request).
    ModelUnavailable,
    /// 504: the node did not answer in time.
    VpsTimeout,
    /// 502: the node's answer broke off or was unreadable.
    StreamingFailed,
    /// 502: the node refused the orchestrator itself (its `VPS_API_KEY`, or its
    /// address is not on the node's `ALLOWED_CM4_IP`): the operator's
    /// configuration, not the request. The message says which to fix.
    UpstreamAuth,
    /// 500: the model could not be loaded.
    ModelLoadFailed,
    /// 500: inference failed.
    InferenceFailed,
    /// Another upstream failure, passed on with the upstream's status.
    UpstreamError,
    /// 500: a bug.
    Internal,
    /// A code this build does not know (a newer server); the status tells the class.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code this build knows (all but [`ErrorCode::Unknown`]).
    pub const ALL: [ErrorCode; 28] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidRequest,
        ErrorCode::BodyTooLarge,
        ErrorCode::PromptTooLarge,
        ErrorCode::PromptTooLong,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RequestTimeout,
        ErrorCode::MissingApiKey,
        ErrorCode::InvalidApiKey,
        ErrorCode::PeerNotAllowed,
        ErrorCode::ModelNotFound,
        ErrorCode::ModelNotLoaded,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ModelBusy,
        ErrorCode::RateLimited,
        ErrorCode::Cm4Busy,
        ErrorCode::VpsUnavailable,
        ErrorCode::BreakerOpen,
        ErrorCode::VpsOverloaded,
        ErrorCode::ModelUnavailable,
        ErrorCode::VpsTimeout,
        ErrorCode::StreamingFailed,
        ErrorCode::UpstreamAuth,
        ErrorCode::ModelLoadFailed,
        ErrorCode::InferenceFailed,
        ErrorCode::UpstreamError,
        ErrorCode::Internal,
    ];

    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest | PromptTooLong => 400,
            MissingApiKey => 401,
            InvalidApiKey | PeerNotAllowed => 403,
            ModelNotFound | ModelNotLoaded | RouteNotFound => 404,
            MethodNotAllowed => 405,
            RequestTimeout => 408,
            ModelBusy => 409,
            BodyTooLarge | PromptTooLarge => 413,
            UnsupportedMediaType => 415,
            InvalidRequest => 422,
            RateLimited => 429,
            ModelLoadFailed | InferenceFailed | Internal | UpstreamError | Unknown => 500,
            StreamingFailed | UpstreamAuth => 502,
            Cm4Busy | VpsUnavailable | BreakerOpen | VpsOverloaded | ModelUnavailable => 503,
            VpsTimeout => 504,
        }
    }

    /// The short title the original Cerebrum API sends as `error`.
    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "Bad request",
            InvalidRequest => "Invalid request",
            BodyTooLarge => "Request body too large",
            PromptTooLarge => "Prompt too large",
            PromptTooLong => "Prompt too long",
            UnsupportedMediaType => "Unsupported media type",
            RequestTimeout => "Request timeout",
            MissingApiKey => "Missing API key",
            InvalidApiKey => "Invalid API key",
            PeerNotAllowed => "Forbidden",
            ModelNotFound => "Model not found",
            ModelNotLoaded => "Model not loaded",
            RouteNotFound => "Not found",
            MethodNotAllowed => "Method not allowed",
            ModelBusy => "Model busy",
            RateLimited => "Rate limited",
            Cm4Busy => "CM4 busy",
            VpsUnavailable | BreakerOpen => "VPS unavailable",
            VpsOverloaded => "VPS overloaded",
            ModelUnavailable => "Model unavailable",
            VpsTimeout => "VPS timeout",
            StreamingFailed => "Streaming failed",
            UpstreamAuth => "VPS refused the orchestrator",
            ModelLoadFailed => "Model load failed",
            InferenceFailed => "Inference failed",
            UpstreamError | Unknown => "Upstream error",
            Internal => "Internal error",
        }
    }

    /// OpenAI's error `type` for this code.
    pub fn openai_type(self) -> &'static str {
        match self.status() {
            400 | 404 | 405 | 408 | 413 | 415 | 422 => "invalid_request_error",
            401 | 403 => "authentication_error",
            409 => "conflict_error",
            429 => "rate_limit_error",
            503 => "server_overloaded",
            _ => "server_error",
        }
    }

    /// The code a status stands for when a body carries none (an upstream
    /// that is not ours, or a proxy in between).
    pub fn from_status(status: u16) -> Self {
        use ErrorCode::*;
        match status {
            400 => BadRequest,
            401 => MissingApiKey,
            403 => InvalidApiKey,
            404 => RouteNotFound,
            405 => MethodNotAllowed,
            408 => RequestTimeout,
            409 => ModelBusy,
            413 => BodyTooLarge,
            415 => UnsupportedMediaType,
            422 => InvalidRequest,
            429 => RateLimited,
            502 => StreamingFailed,
            503 => VpsOverloaded,
            504 => VpsTimeout,
            _ => UpstreamError,
        }
    }

    /// Whether retrying the same request later may work (busy, down, paused).
    pub fn is_transient(self) -> bool {
        matches!(self.status(), 429 | 503)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The wire name: one source of truth, serde's.
        let v = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(v.as_str().unwrap_or("unknown"))
    }
}

/// A client-visible failure: what went wrong, with the status code that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What went wrong.
    pub code: ErrorCode,
    /// HTTP status (the code's, unless an upstream's status is passed on).
    pub status: u16,
    /// Human-readable detail.
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// Seconds a client should wait before retrying (sent as `Retry-After`).
    pub retry_after: Option<u64>,
    /// Why the node refused (its guard's words).
    pub reason: Option<String>,
    /// What to do about it.
    pub suggestion: Option<String>,
}

/// `Retry-After` on a 503 that names none: every refusal says when to come back (design §4).
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

impl ApiError {
    /// A new error with the code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.status(),
            message: message.into(),
            field: None,
            retry_after: None,
            reason: None,
            suggestion: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 422: a field has a wrong type or an out-of-range value.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            field: Some(field.clone()),
            ..Self::new(ErrorCode::InvalidRequest, format!("{field}: {message}"))
        }
    }

    /// An error that says when to retry (503, 429).
    pub fn unavailable(code: ErrorCode, message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(code, message)
        }
    }

    /// Adds the node's `reason` and `suggestion`.
    pub fn with_hint(mut self, reason: impl Into<String>, suggestion: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self.suggestion = Some(suggestion.into());
        self
    }

    /// The short title (`"CM4 busy"`, …).
    pub fn title(&self) -> &'static str {
        self.code.title()
    }

    /// The HTTP status (500 if the number is not a valid status).
    pub fn status_code(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `Retry-After` seconds to send: the error's own, and on every 503 at
    /// least a default, so a refusal always says when to come back (design §4).
    pub fn retry_after_header(&self) -> Option<u64> {
        self.retry_after
            .or((self.status == 503).then_some(DEFAULT_RETRY_AFTER_SECS))
    }

    /// The original Cerebrum body.
    pub fn cerebrum_body(&self) -> CerebrumErrorBody {
        CerebrumErrorBody {
            error: self.title().to_string(),
            code: Some(self.code),
            message: self.message.clone(),
            field: self.field.clone(),
            retry_after_seconds: self.retry_after,
            reason: self.reason.clone(),
            suggestion: self.suggestion.clone(),
        }
    }

    /// OpenAI's body.
    pub fn openai_body(&self) -> OpenAiErrorBody {
        OpenAiErrorBody {
            error: OpenAiError {
                message: format!("{}: {}", self.title(), self.message),
                kind: self.code.openai_type().to_string(),
                param: self.field.clone(),
                code: Some(self.code),
            },
        }
    }

    /// The JSON body in the given dialect.
    pub fn body(&self, dialect: Dialect) -> serde_json::Value {
        let v = match dialect {
            Dialect::Cerebrum => serde_json::to_value(self.cerebrum_body()),
            Dialect::OpenAi => serde_json::to_value(self.openai_body()),
        };
        v.unwrap_or_default()
    }

    /// Reads an error response of either dialect (or any other body) back into
    /// an [`ApiError`]: the code from the body when it carries one, else from the
    /// status; `Retry-After` from the headers.
    pub fn from_response(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Self {
        let retry_after = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Self::from_body(status, retry_after, body)
    }

    /// [`ApiError::from_response`] with `Retry-After` already read.
    pub fn from_body(status: u16, retry_after: Option<u64>, body: &[u8]) -> Self {
        let fallback = ErrorCode::from_status(status);
        let mut e = match serde_json::from_slice::<AnyErrorBody>(body) {
            Ok(AnyErrorBody::OpenAi(b)) => {
                let code = b.error.code.unwrap_or(fallback);
                // Ours prefix the title; take it off again so messages do not stutter.
                let message = b
                    .error
                    .message
                    .strip_prefix(code.title())
                    .and_then(|m| m.strip_prefix(": "))
                    .map(str::to_string)
                    .unwrap_or(b.error.message);
                Self {
                    field: b.error.param,
                    ..Self::new(code, message)
                }
            }
            Ok(AnyErrorBody::Cerebrum(b)) => {
                let code = b.code.unwrap_or(fallback);
                let message = match (b.message.is_empty(), &b.reason) {
                    (true, Some(reason)) => reason.clone(),
                    (true, None) => b.error.clone(),
                    _ => b.message,
                };
                Self {
                    field: b.field,
                    reason: b.reason,
                    suggestion: b.suggestion,
                    retry_after: b.retry_after_seconds,
                    ..Self::new(code, message)
                }
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text: String = text.trim().chars().take(300).collect();
                Self::new(fallback, text)
            }
        };
        e.status = status;
        e.retry_after = retry_after.or(e.retry_after);
        e
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// The original Cerebrum error body: `{"error": title, "code", "message", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CerebrumErrorBody {
    /// Short title (`"CM4 busy"`, `"VPS overloaded"`); the original's key.
    pub error: String,
    /// What went wrong, for programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// Detail, for people.
    #[serde(default)]
    pub message: String,
    /// The request field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before retrying (also the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Why the node refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// OpenAI's error body: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAiErrorBody {
    /// The error.
    pub error: OpenAiError,
}

/// The inside of [`OpenAiErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAiError {
    /// `"Title: detail"`.
    pub message: String,
    /// OpenAI's class (`invalid_request_error`, `server_overloaded`, …).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The request field at fault.
    #[serde(default)]
    pub param: Option<String>,
    /// What went wrong, for programs. (Other servers may send a number or
    /// another string here; those read as `None`.)
    #[serde(default, deserialize_with = "lenient_code")]
    pub code: Option<ErrorCode>,
}

fn lenient_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ErrorCode>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value::<ErrorCode>(v)
        .ok()
        .filter(|c| *c != ErrorCode::Unknown))
}

/// Either error body, for readers.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyErrorBody {
    OpenAi(OpenAiErrorBody),
    Cerebrum(CerebrumErrorBody),
}

/// Parses a JSON request body, telling apart the ways it can be wrong:
/// not UTF-8 or not JSON → 400; a field of the wrong type or missing → 422 naming it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; expected a JSON object",
        ));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::bad_request(format!(
            "request body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = strip_position(&inner.to_string());
                    let field = if path != "." {
                        path
                    } else {
                        // serde reports a missing field at the parent: take the name from the message.
                        message
                            .strip_prefix("missing field `")
                            .and_then(|rest| rest.split('`').next())
                            .unwrap_or("body")
                            .to_string()
                    };
                    Err(ApiError::invalid_field(field, message))
                }
                _ => Err(ApiError::bad_request(format!("malformed JSON: {inner}"))),
            }
        }
    }
}

/// serde's messages end in "at line 1 column 20"; the field name says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Serialises a value that cannot fail to serialise (plain structs of strings and numbers).
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"serialization failed: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Req {
        prompt: String,
        #[serde(default)]
        max_tokens: u32,
    }

    #[test]
    fn malformed_json_is_400() {
        let e = parse_json::<Req>(b"{\"prompt\": ").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("malformed JSON"), "{}", e.message);
    }

    #[test]
    fn wrong_type_is_422_naming_the_field() {
        let e = parse_json::<Req>(br#"{"prompt":"hi","max_tokens":"many"}"#).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(e.field.as_deref(), Some("max_tokens"));
    }

    #[test]
    fn missing_field_is_422() {
        let e = parse_json::<Req>(br#"{"max_tokens":3}"#).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(e.field.as_deref(), Some("prompt"));
        assert!(e.message.contains("prompt"), "{}", e.message);
    }

    #[test]
    fn invalid_utf8_is_400() {
        let e = parse_json::<Req>(b"{\"prompt\":\"\xff\"}").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("UTF-8"));
    }

    #[test]
    fn empty_body_is_400() {
        assert_eq!(parse_json::<Req>(b"  ").unwrap_err().status, 400);
    }

    #[test]
    fn every_503_says_when_to_retry() {
        assert_eq!(
            ApiError::new(ErrorCode::Cm4Busy, "y").retry_after_header(),
            Some(DEFAULT_RETRY_AFTER_SECS)
        );
        assert_eq!(
            ApiError::unavailable(ErrorCode::VpsOverloaded, "y", 9).retry_after_header(),
            Some(9)
        );
        assert_eq!(ApiError::bad_request("y").retry_after_header(), None);
        assert_eq!(dialect_of("/v1/chat/completions"), Dialect::OpenAi);
        assert_eq!(dialect_of("/v1/complete"), Dialect::Cerebrum);
    }

    #[test]
    fn dialects_render_differently_and_carry_the_code() {
        let e = ApiError::unavailable(ErrorCode::VpsOverloaded, "cpu", 5)
            .with_hint("cpu busy", "retry");
        let c = e.body(Dialect::Cerebrum);
        assert_eq!(c["error"], "VPS overloaded");
        assert_eq!(c["code"], "vps_overloaded");
        assert_eq!(c["reason"], "cpu busy");
        let o = e.body(Dialect::OpenAi);
        assert_eq!(o["error"]["type"], "server_overloaded");
        assert_eq!(o["error"]["code"], "vps_overloaded");
    }

    #[test]
    fn every_code_round_trips_through_both_dialects() {
        for code in ErrorCode::ALL {
            let mut e = ApiError::unavailable(code, "detail: with a colon", 7);
            e.field = Some("max_tokens".into());
            for dialect in [Dialect::Cerebrum, Dialect::OpenAi] {
                let body = serde_json::to_vec(&e.body(dialect)).unwrap();
                let back = ApiError::from_body(e.status, Some(7), &body);
                assert_eq!(back.code, code, "{dialect:?}");
                assert_eq!(back.message, e.message, "{code:?} {dialect:?}");
                assert_eq!(back.field, e.field);
                assert_eq!(back.retry_after, Some(7));
            }
            assert_eq!(code.to_string(), serde_json::to_value(code).unwrap());
        }
    }

    #[test]
    fn foreign_bodies_take_the_code_from_the_status() {
        // llama-server / vLLM style: numeric code.
        let b = br#"{"error":{"message":"context too long","type":"invalid_request_error","code":400}}"#;
        let e = ApiError::from_body(400, None, b);
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert_eq!(e.message, "context too long");
        // Plain text from a proxy.
        let e = ApiError::from_body(502, None, b"Bad Gateway");
        assert_eq!(e.code, ErrorCode::StreamingFailed);
        assert_eq!(e.message, "Bad Gateway");
        // A newer server's code this build does not know.
        let e = ApiError::from_body(
            503,
            None,
            br#"{"error":"X","code":"brand_new","message":"m"}"#,
        );
        assert_eq!((e.code, e.status), (ErrorCode::Unknown, 503));
        // Retry-After header wins over the body's.
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        let e = ApiError::from_response(
            503,
            &h,
            br#"{"error":"CM4 busy","code":"cm4_busy","message":"m","retry_after_seconds":9}"#,
        );
        assert_eq!((e.code, e.retry_after), (ErrorCode::Cm4Busy, Some(3)));
    }
}
