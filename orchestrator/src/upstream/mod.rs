//! The orchestrator's side of the link to the node: one keep-alive client, the
//! circuit breaker, and the reader of the node's token stream.
//!
//! The upstream is any OpenAI-compatible server (our node, llama-server, vLLM,
//! Ollama…), so every generation is asked for as an OpenAI stream; the relay
//! re-emits it in the client's dialect.

pub mod breaker;
pub mod relay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_shared::headers;
use serde_json::{Value, json};

use crate::config::OrchestratorConfig;
pub use breaker::{Breaker, BreakerState};
pub use relay::{Piece, TokenStream};

/// Why the node could not give us what we asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The breaker is open: we did not even try.
    #[error("the inference node is failing; calls paused for {retry_after} s")]
    BreakerOpen {
        /// Seconds until the trial call.
        retry_after: u64,
    },
    /// No connection could be made (after retries).
    #[error("cannot reach the inference node at {endpoint}: {detail}")]
    Unreachable {
        /// Where.
        endpoint: String,
        /// What reqwest said.
        detail: String,
    },
    /// The node took too long.
    #[error("the inference node did not answer in time ({0})")]
    Timeout(String),
    /// The node answered with an error status; its error (code, words,
    /// `Retry-After`) is passed on.
    #[error("the inference node answered {}", .0)]
    Status(ApiError),
    /// The node's answer was not the protocol we speak.
    #[error("the inference node sent something unreadable: {0}")]
    Protocol(String),
    /// The stream broke off before the end.
    #[error("the inference node's stream broke off: {0}")]
    Broken(String),
}

impl UpstreamError {
    /// Whether this counts against the node in the breaker. An overloaded node
    /// (503) is alive and protecting itself; a 4xx is the request's fault.
    pub fn counts_as_failure(&self) -> bool {
        match self {
            UpstreamError::BreakerOpen { .. } => false,
            UpstreamError::Status(e) => e.status >= 500 && e.status != 503,
            _ => true,
        }
    }

    /// The client-facing error.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            UpstreamError::BreakerOpen { retry_after } => ApiError::unavailable(
                ErrorCode::BreakerOpen,
                self.to_string(),
                (*retry_after).max(1),
            ),
            UpstreamError::Unreachable { .. } => {
                ApiError::unavailable(ErrorCode::VpsUnavailable, self.to_string(), 5)
            }
            UpstreamError::Timeout(_) => ApiError::new(ErrorCode::VpsTimeout, self.to_string()),
            UpstreamError::Protocol(_) | UpstreamError::Broken(_) => {
                ApiError::new(ErrorCode::StreamingFailed, self.to_string())
            }
            // The node's own words, code and Retry-After.
            UpstreamError::Status(e) => e.clone(),
        }
    }
}

/// Counters of calls to the node, for `/v1/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Generations asked for.
    pub requests_sent: AtomicU64,
    /// Generations that ended well.
    pub successful: AtomicU64,
    /// Generations that failed because of the node or the link.
    pub failed: AtomicU64,
    /// Sum of successful generation times, µs.
    pub inference_micros: AtomicU64,
    /// Tokens relayed.
    pub tokens: AtomicU64,
}

impl UpstreamStats {
    /// `{requests_sent, successful, failed, success_rate_percent, avg_inference_time_seconds}`.
    pub fn to_json(&self) -> Value {
        let sent = self.requests_sent.load(Ordering::Relaxed);
        let ok = self.successful.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let micros = self.inference_micros.load(Ordering::Relaxed);
        json!({
            "requests_sent": sent,
            "successful": ok,
            "failed": failed,
            "success_rate_percent": if sent == 0 { 0.0 } else { ok as f64 * 100.0 / sent as f64 },
            "avg_inference_time_seconds": if ok == 0 { 0.0 } else { micros as f64 / 1e6 / ok as f64 },
        })
    }
}

/// The client for the node.
pub struct Upstream {
    http: reqwest::Client,
    endpoint: String,
    key: String,
    /// The breaker guarding every generation.
    pub breaker: Breaker,
    first_token_timeout: Duration,
    idle_timeout: Duration,
    /// Counters.
    pub stats: std::sync::Arc<UpstreamStats>,
}

/// Retries for refused or reset connections only, before anything reached the
/// client. A connect *timeout* is not retried: a black-holed node would triple the wait.
const CONNECT_RETRIES: u32 = 2;

impl Upstream {
    /// A client with a keep-alive pool to the node.
    pub fn new(cfg: &OrchestratorConfig) -> Result<Self, String> {
        let builder = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            // Below the node's header-read timeout (10 s, which also closes idle
            // keep-alive connections): we drop an idle connection before the node
            // does, so a request is never written into one it is closing.
            .pool_idle_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(8)
            .tcp_keepalive(Duration::from_secs(15))
            .tcp_nodelay(true);
        // A request written into a pooled connection whose peer vanished (link
        // black-holed) would otherwise wait for TCP keep-alive to notice. With
        // TCP_USER_TIMEOUT the kernel gives up on unacknowledged data after twice
        // the connect timeout. Idle streams are unaffected (we send no data then).
        #[cfg(target_os = "linux")]
        let builder = builder.tcp_user_timeout(cfg.connect_timeout * 2);
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            endpoint: cfg.vps_endpoint.clone(),
            key: cfg.vps_api_key.clone(),
            breaker: Breaker::new(cfg.breaker_threshold, cfg.breaker_cooldown),
            first_token_timeout: cfg.first_token_timeout,
            idle_timeout: cfg.idle_timeout,
            stats: Default::default(),
        })
    }

    /// Where the node is.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        request_id: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.endpoint))
            .header(headers::REQUEST_ID, request_id);
        if !self.key.is_empty() {
            r = r.header(headers::API_KEY, &self.key).bearer_auth(&self.key);
        }
        r
    }

    /// Starts a streamed generation (`path` is `/v1/chat/completions` or
    /// `/v1/completions`, `body` an OpenAI request) and waits for its first piece,
    /// so that a failure before any token is still a status code.
    pub async fn open_stream(
        &self,
        path: &str,
        mut body: Value,
        request_id: &str,
    ) -> Result<TokenStream, UpstreamError> {
        if !self.breaker.permit() {
            return Err(UpstreamError::BreakerOpen {
                retry_after: self.breaker.retry_after_secs(),
            });
        }
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        self.stats.requests_sent.fetch_add(1, Ordering::Relaxed);
        let result = self.open_stream_inner(path, &body, request_id).await;
        if let Err(e) = &result {
            self.record_failure(e);
        }
        result
    }

    async fn open_stream_inner(
        &self,
        path: &str,
        body: &Value,
        request_id: &str,
    ) -> Result<TokenStream, UpstreamError> {
        let deadline = tokio::time::Instant::now() + self.first_token_timeout;
        let mut attempt = 0;
        let response = loop {
            let send = self
                .request(reqwest::Method::POST, path, request_id)
                .json(body)
                .send();
            match tokio::time::timeout_at(deadline, send).await {
                Err(_) => return Err(UpstreamError::Timeout("no response headers".into())),
                Ok(Ok(r)) => break r,
                Ok(Err(e)) if e.is_connect() && !e.is_timeout() && attempt < CONNECT_RETRIES => {
                    attempt += 1;
                    let backoff = Duration::from_millis(100 * 3u64.pow(attempt - 1));
                    tracing::debug!(attempt, error = %e, "connect failed; retrying");
                    tokio::time::sleep(backoff).await;
                }
                Ok(Err(e)) if e.is_timeout() => return Err(UpstreamError::Timeout(e.to_string())),
                Ok(Err(e)) => {
                    return Err(UpstreamError::Unreachable {
                        endpoint: self.endpoint.clone(),
                        detail: error_chain(&e),
                    });
                }
            }
        };
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let headers = response.headers().clone();
            let body = tokio::time::timeout_at(deadline, response.bytes())
                .await
                .map_err(|_| UpstreamError::Timeout("error body".into()))?
                .unwrap_or_default();
            return Err(UpstreamError::Status(ApiError::from_response(
                status, &headers, &body,
            )));
        }
        TokenStream::start(
            response,
            deadline,
            self.idle_timeout,
            self.breaker.clone(),
            self.stats.clone(),
        )
        .await
    }

    fn record_failure(&self, e: &UpstreamError) {
        if e.counts_as_failure() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            self.breaker.failure();
        } else if let UpstreamError::Status(_) = e {
            // The node answered: the link works.
            self.breaker.success();
        }
    }

    /// `GET path` on the node, JSON, with a short timeout; never touches the breaker.
    pub async fn get_json(
        &self,
        path: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        self.call_json(reqwest::Method::GET, path, None, request_id, timeout)
            .await
    }

    /// `POST path` with a JSON body on the node, with a short timeout; never
    /// touches the breaker.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        self.call_json(reqwest::Method::POST, path, Some(body), request_id, timeout)
            .await
    }

    async fn call_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let mut r = self.request(method, path, request_id).timeout(timeout);
        if let Some(body) = body {
            r = r.json(body);
        }
        let r = r.send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout(e.to_string())
            } else {
                UpstreamError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    detail: error_chain(&e),
                }
            }
        })?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r
            .bytes()
            .await
            .map_err(|e| UpstreamError::Broken(format!("{path}: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(UpstreamError::Status(ApiError::from_response(
                status, &headers, &bytes,
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Protocol(format!("{path}: {e}")))
    }
}

/// reqwest hides the cause (connection refused, DNS…) in its source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
