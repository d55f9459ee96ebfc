//! The error envelope both tiers answer with, and typed body-parsing errors.
//!
//! Every failure a client can see is an [`ApiError`]: a status code, a short title
//! and a message. It renders in the caller's [`Dialect`]: the original Cerebrum
//! shape `{"error": title, "message": …}` or OpenAI's
//! `{"error": {"message", "type", "code"}}`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Which API a request came in on; decides the error body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The original Cerebrum API (`/v1/complete`, `/v1/inference`, …).
    Cerebrum,
    /// The OpenAI API (`/v1/chat/completions`, `/v1/completions`).
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

/// A client-visible failure: what went wrong, with the status code that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Short title, e.g. `"Invalid API key"`, `"VPS overloaded"`.
    pub title: String,
    /// Human-readable detail.
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// Seconds a client should wait before retrying (sent as `Retry-After` on 503/429).
    pub retry_after: Option<u64>,
    /// Extra keys merged into the Cerebrum-shaped body (e.g. `reason`, `suggestion`).
    pub extra: Option<Box<Value>>,
}

impl ApiError {
    /// A new error with a status, title and message.
    pub fn new(status: u16, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            field: None,
            retry_after: None,
            extra: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "Bad request", message)
    }

    /// 404: the named thing does not exist.
    pub fn not_found(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(404, title, message)
    }

    /// 422: a field has a wrong type or an out-of-range value.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            field: Some(field.clone()),
            ..Self::new(422, "Invalid request", format!("{field}: {message}"))
        }
    }

    /// 503 with a `Retry-After`.
    pub fn unavailable(
        title: impl Into<String>,
        message: impl Into<String>,
        retry_after: u64,
    ) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(503, title, message)
        }
    }

    /// Adds keys to the Cerebrum body (`{"reason": …, "suggestion": …}`).
    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(Box::new(extra));
        self
    }

    /// The HTTP status (500 if the number is not a valid status).
    pub fn status_code(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `Retry-After` seconds to send: the error's own, and on every 503 at
    /// least a default, so a refusal always says when to come back (design §4).
    pub fn retry_after_header(&self) -> Option<u64> {
        self.retry_after.or((self.status == 503).then_some(5))
    }

    /// OpenAI's error `type` for this status.
    pub fn openai_type(&self) -> &'static str {
        match self.status {
            400 | 404 | 413 | 422 => "invalid_request_error",
            401 | 403 => "authentication_error",
            429 => "rate_limit_error",
            503 => "server_overloaded",
            _ => "server_error",
        }
    }

    /// The JSON body in the given dialect.
    pub fn body(&self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::Cerebrum => {
                let mut body = json!({"error": self.title, "message": self.message});
                if let Some(field) = &self.field {
                    body["field"] = json!(field);
                }
                if let Some(retry) = self.retry_after {
                    body["retry_after_seconds"] = json!(retry);
                }
                if let (Some(Value::Object(extra)), Value::Object(map)) =
                    (self.extra.as_deref(), &mut body)
                {
                    for (k, v) in extra {
                        map.insert(k.clone(), v.clone());
                    }
                }
                body
            }
            Dialect::OpenAi => json!({
                "error": {
                    "message": format!("{}: {}", self.title, self.message),
                    "type": self.openai_type(),
                    "param": self.field,
                    "code": self.status,
                }
            }),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.message)
    }
}

impl std::error::Error for ApiError {}

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
        assert_eq!(ApiError::new(503, "x", "y").retry_after_header(), Some(5));
        assert_eq!(
            ApiError::unavailable("x", "y", 9).retry_after_header(),
            Some(9)
        );
        assert_eq!(ApiError::bad_request("y").retry_after_header(), None);
        assert_eq!(dialect_of("/v1/chat/completions"), Dialect::OpenAi);
        assert_eq!(dialect_of("/v1/complete"), Dialect::Cerebrum);
    }

    #[test]
    fn dialects_render_differently() {
        let e = ApiError::unavailable("VPS overloaded", "cpu", 5)
            .with_extra(json!({"reason": "cpu busy", "suggestion": "retry"}));
        let c = e.body(Dialect::Cerebrum);
        assert_eq!(c["error"], "VPS overloaded");
        assert_eq!(c["reason"], "cpu busy");
        let o = e.body(Dialect::OpenAi);
        assert_eq!(o["error"]["type"], "server_overloaded");
        assert_eq!(o["error"]["code"], 503);
    }
}
