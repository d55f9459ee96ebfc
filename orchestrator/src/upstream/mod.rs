//! The orchestrator's side of the links to its upstreams: per upstream one
//! keep-alive client, a circuit breaker, counters and the facts the background
//! probe keeps ([`facts`]); the pool and the choice among them ([`pool`],
//! [`choose`]); the reader of a token stream ([`relay`]).
//!
//! An upstream is any OpenAI-compatible server (our node, llama-server, vLLM,
//! Ollama…), so every generation is asked for as an OpenAI stream; the relay
//! re-emits it in the client's dialect.

pub mod auth;
pub mod bounded;
pub mod breaker;
pub mod choose;
pub mod facts;
pub mod pool;
pub mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cerebrum_shared::cerebrum::VpsAuth;
use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_shared::headers;
use serde_json::{Value, json};

use crate::config::OrchestratorConfig;
use crate::config::upstreams::{UpstreamConfig, UpstreamKind};
use auth::AuthWatch;
use bounded::{MAX_ERROR_BODY_BYTES, MAX_JSON_BODY_BYTES, read_capped};
pub use breaker::{Breaker, BreakerState, Outcome};
pub use facts::NodeStatus;
pub use pool::Upstreams;
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
    /// The node took too long (connecting, answering a lookup, or between two
    /// pieces of a stream).
    #[error("the inference node did not answer in time ({0})")]
    Timeout(String),
    /// No first piece within `first_token_timeout`.
    #[error("the inference node sent no token within {waited_secs} s{}",
        if *.busy { " (it is busy: the request waited behind others)" } else { "" })]
    FirstToken {
        /// The timeout.
        waited_secs: u64,
        /// Whether the node was busy (see `breaker`): then it is not its fault.
        busy: bool,
    },
    /// The node answered with an error status; its error (code, words,
    /// `Retry-After`) is passed on.
    #[error("the inference node answered {}", .0)]
    Status(ApiError),
    /// The node refused the orchestrator itself (401/403); what to fix.
    #[error("the inference node refused the orchestrator: {0}")]
    Auth(String),
    /// The node answered a redirect, which is never followed.
    #[error(
        "the inference node answered {status} redirecting to '{location}'; redirects are not \
        followed (the key would go with them): set VPS_ENDPOINT to the node's own address"
    )]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// Its `Location`, as sent.
        location: String,
    },
    /// The node's answer was not the protocol we speak.
    #[error("the inference node sent something unreadable: {0}")]
    Protocol(String),
    /// The stream broke off before the end.
    #[error("the inference node's stream broke off: {0}")]
    Broken(String),
}

impl UpstreamError {
    /// What this failure tells the breaker and the counters (see `breaker`);
    /// `None` when nothing was asked of the node.
    pub fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            UpstreamError::BreakerOpen { .. } => return None,
            UpstreamError::Status(e) if e.status >= 500 && e.status != 503 => Outcome::NodeFault,
            UpstreamError::Status(_) => Outcome::Refused,
            UpstreamError::Auth(_) | UpstreamError::Redirect { .. } => Outcome::Misconfigured,
            UpstreamError::FirstToken { busy: true, .. } => Outcome::Queued,
            UpstreamError::Unreachable { .. }
            | UpstreamError::Timeout(_)
            | UpstreamError::FirstToken { busy: false, .. }
            | UpstreamError::Protocol(_)
            | UpstreamError::Broken(_) => Outcome::NodeFault,
        })
    }

    /// Whether the next upstream serving the model should be tried: every
    /// failure but the request's own (a 4xx other than 401/403/404/408/429)
    /// and a first-token timeout while the upstream was busy (the request
    /// itself is slow there, and has waited the whole timeout already).
    pub fn moves_on(&self) -> bool {
        match self {
            UpstreamError::Status(e) => e.status >= 500 || matches!(e.status, 404 | 408 | 429),
            UpstreamError::FirstToken { busy: true, .. } => false,
            _ => true,
        }
    }

    /// Whether this counts against the node in the breaker.
    pub fn counts_as_failure(&self) -> bool {
        self.outcome() == Some(Outcome::NodeFault)
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
            UpstreamError::Timeout(_) | UpstreamError::FirstToken { .. } => {
                ApiError::new(ErrorCode::VpsTimeout, self.to_string())
            }
            UpstreamError::Protocol(_) | UpstreamError::Broken(_) => {
                ApiError::new(ErrorCode::StreamingFailed, self.to_string())
            }
            UpstreamError::Auth(problem) => auth::to_api_error(problem),
            UpstreamError::Redirect { .. } => ApiError {
                status: 502,
                ..ApiError::new(ErrorCode::UpstreamError, self.to_string())
            },
            // The node's own words, code and Retry-After.
            UpstreamError::Status(e) => e.clone(),
        }
    }
}

/// Counters of calls to the node, for `/v1/stats` and `/metrics`. Every
/// generation sent ends in exactly one of the five outcomes counted below.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Generations asked for.
    pub requests_sent: AtomicU64,
    /// Generations that ended well.
    pub successful: AtomicU64,
    /// Generations that failed because of the node or the link.
    pub failed: AtomicU64,
    /// Generations the node answered with an error status that is not its
    /// fault (4xx, 503), refused the orchestrator (401/403) or redirected.
    pub refused: AtomicU64,
    /// First-token timeouts while the node was busy (not its fault).
    pub queued_timeouts: AtomicU64,
    /// Generations whose client went away first.
    pub cancelled: AtomicU64,
    /// Sum of successful generation times, µs.
    pub inference_micros: AtomicU64,
    /// Tokens relayed.
    pub tokens: AtomicU64,
}

impl UpstreamStats {
    /// `{requests_sent, successful, failed, refused, queued_timeouts, cancelled,
    /// success_rate_percent, avg_inference_time_seconds}`.
    pub fn to_json(&self) -> Value {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sent = c(&self.requests_sent);
        let ok = c(&self.successful);
        let micros = c(&self.inference_micros);
        json!({
            "requests_sent": sent,
            "successful": ok,
            "failed": c(&self.failed),
            "refused": c(&self.refused),
            "queued_timeouts": c(&self.queued_timeouts),
            "cancelled": c(&self.cancelled),
            "success_rate_percent": if sent == 0 { 0.0 } else { ok as f64 * 100.0 / sent as f64 },
            "avg_inference_time_seconds": if ok == 0 { 0.0 } else { micros as f64 / 1e6 / ok as f64 },
        })
    }

    fn counter(&self, outcome: Outcome) -> &AtomicU64 {
        match outcome {
            Outcome::Success => &self.successful,
            Outcome::NodeFault => &self.failed,
            Outcome::Refused | Outcome::Misconfigured => &self.refused,
            Outcome::Queued => &self.queued_timeouts,
            Outcome::Cancelled => &self.cancelled,
        }
    }
}

/// One generation asked of the node, from the moment it is sent: records
/// exactly one [`Outcome`] (a second `settle` is ignored), and `Cancelled`
/// when dropped unsettled (the client went away).
pub struct Attempt {
    breaker: Breaker,
    stats: Arc<UpstreamStats>,
    in_flight: Arc<AtomicUsize>,
    settled: bool,
}

impl Attempt {
    fn begin(upstream: &Upstream) -> Self {
        upstream.stats.requests_sent.fetch_add(1, Ordering::Relaxed);
        upstream.in_flight.fetch_add(1, Ordering::SeqCst);
        Self {
            breaker: upstream.breaker.clone(),
            stats: upstream.stats.clone(),
            in_flight: upstream.in_flight.clone(),
            settled: false,
        }
    }

    /// Records how it ended (once).
    pub fn settle(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        self.stats.counter(outcome).fetch_add(1, Ordering::Relaxed);
        self.breaker.record(outcome);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether another generation of ours is in flight to the node.
    fn others_in_flight(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 1
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.settle(Outcome::Cancelled);
    }
}

/// One upstream: its client, breaker, counters and facts.
pub struct Upstream {
    http: reqwest::Client,
    /// What was configured (name, endpoint, key, kind, models, slots, weight, role).
    config: UpstreamConfig,
    /// What the background probe last read.
    facts: facts::Facts,
    /// The breaker guarding every generation.
    pub breaker: Breaker,
    first_token_timeout: Duration,
    idle_timeout: Duration,
    /// Counters.
    pub stats: Arc<UpstreamStats>,
    /// Generations in flight to the node now.
    in_flight: Arc<AtomicUsize>,
    /// Whether the last health reading said the node is busy (see `breaker`).
    node_busy: AtomicBool,
    auth: AuthWatch,
}

/// Retries for refused or reset connections only, before anything reached the
/// client. A connect *timeout* is not retried: a black-holed node would triple the wait.
const CONNECT_RETRIES: u32 = 2;

/// Paths answered without the key: what they answer says nothing about it.
const OPEN_PATHS: [&str; 1] = ["/health"];

impl Upstream {
    /// The HTTP client every upstream shares (one pool per host inside it):
    /// keep-alive, the connect timeout of `cfg`, no redirects.
    pub fn client(cfg: &OrchestratorConfig) -> Result<reqwest::Client, String> {
        let builder = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            // Below the node's header-read timeout (10 s, which also closes idle
            // keep-alive connections): we drop an idle connection before the node
            // does, so a request is never written into one it is closing.
            .pool_idle_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(8)
            .tcp_keepalive(Duration::from_secs(15))
            .tcp_nodelay(true)
            // The key goes to the configured endpoint only: a redirect is
            // answered as an error naming it, never followed.
            .redirect(reqwest::redirect::Policy::none());
        // A request written into a pooled connection whose peer vanished (link
        // black-holed) would otherwise wait for TCP keep-alive to notice. With
        // TCP_USER_TIMEOUT the kernel gives up on unacknowledged data after twice
        // the connect timeout. Idle streams are unaffected (we send no data then).
        #[cfg(target_os = "linux")]
        let builder = builder.tcp_user_timeout(cfg.connect_timeout * 2);
        builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }

    /// The upstream `upstream` over `http` (see [`Upstream::client`]), with the
    /// timeouts and breaker policy of `cfg`.
    pub fn new(cfg: &OrchestratorConfig, upstream: &UpstreamConfig, http: reqwest::Client) -> Self {
        Self {
            http,
            config: upstream.clone(),
            facts: Default::default(),
            breaker: Breaker::new(cfg.breaker_threshold, cfg.breaker_cooldown),
            first_token_timeout: cfg.first_token_timeout,
            idle_timeout: cfg.idle_timeout,
            stats: Default::default(),
            in_flight: Default::default(),
            node_busy: AtomicBool::new(false),
            auth: AuthWatch::default(),
        }
    }

    /// Where it is.
    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// Its configured name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// How it was configured.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Generations of ours in flight to it now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Whether to ask it to count tokens (`/tokenize`): a Cerebrum node, or
    /// one not known yet (fitting sends the request as it is when it cannot).
    pub fn can_count_tokens(&self) -> bool {
        self.kind() != UpstreamKind::OpenAi
    }

    /// Whether the node accepts the orchestrator, and when not, what to fix.
    pub fn auth(&self) -> (VpsAuth, Option<String>) {
        self.auth.get()
    }

    /// The background health probe's verdict: the node is up but busy
    /// (refusing work, not `healthy`, or loading a model).
    pub fn set_node_busy(&self, busy: bool) {
        self.node_busy.store(busy, Ordering::SeqCst);
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        request_id: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.config.endpoint))
            .header(headers::REQUEST_ID, request_id);
        if !self.config.key.is_empty() {
            r = r
                .header(headers::API_KEY, &self.config.key)
                .bearer_auth(&self.config.key);
        }
        r
    }

    /// Starts a streamed generation (`path` is `/v1/chat/completions` or
    /// `/v1/completions`, `body` an OpenAI request) and waits for its first piece,
    /// so that a failure before any token is still a status code. The outcome
    /// is recorded once: here when it fails, else by the stream.
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
        let mut attempt = Attempt::begin(self);
        let deadline = tokio::time::Instant::now() + self.first_token_timeout;
        let response = match self.send(path, &body, request_id, deadline, &attempt).await {
            Ok(r) => r,
            Err(e) => return Err(settled(&mut attempt, e)),
        };
        let mut stream = TokenStream::new(response, self.idle_timeout, attempt);
        match tokio::time::timeout_at(deadline, stream.read_first()).await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(settled(stream.attempt(), e)),
            Err(_) => {
                let e = self.first_token_timeout(stream.attempt());
                Err(settled(stream.attempt(), e))
            }
        }
    }

    /// Sends a generation and reads its status: a 2xx response, or the error.
    async fn send(
        &self,
        path: &str,
        body: &Value,
        request_id: &str,
        deadline: tokio::time::Instant,
        attempt: &Attempt,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut tries = 0;
        let response = loop {
            let send = self
                .request(reqwest::Method::POST, path, request_id)
                .json(body)
                .send();
            match tokio::time::timeout_at(deadline, send).await {
                Err(_) => return Err(self.first_token_timeout(attempt)),
                Ok(Ok(r)) => break r,
                Ok(Err(e)) if e.is_connect() && !e.is_timeout() && tries < CONNECT_RETRIES => {
                    tries += 1;
                    let backoff = Duration::from_millis(100 * 3u64.pow(tries - 1));
                    tracing::debug!(attempt = tries, error = %e, "connect failed; retrying");
                    tokio::time::sleep(backoff).await;
                }
                Ok(Err(e)) if e.is_timeout() => return Err(UpstreamError::Timeout(e.to_string())),
                Ok(Err(e)) => {
                    return Err(UpstreamError::Unreachable {
                        endpoint: self.config.endpoint.clone(),
                        detail: error_chain(&e),
                    });
                }
            }
        };
        tokio::time::timeout_at(deadline, self.check_status(path, response))
            .await
            .unwrap_or_else(|_| Err(UpstreamError::Timeout("error body".into())))
    }

    /// A 2xx response as it is; any other status as the error it stands for
    /// (its body read up to [`MAX_ERROR_BODY_BYTES`]). Notes what it says about
    /// the orchestrator's credentials.
    async fn check_status(
        &self,
        path: &str,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, UpstreamError> {
        let status = response.status().as_u16();
        let authenticated = !OPEN_PATHS.contains(&path);
        if (200..300).contains(&status) {
            if authenticated {
                self.auth.accepted();
            }
            return Ok(response);
        }
        let headers = response.headers().clone();
        if (300..400).contains(&status) {
            let location = headers
                .get(reqwest::header::LOCATION)
                .map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .chars()
                        .take(200)
                        .collect()
                })
                .unwrap_or_default();
            tracing::warn!(
                status,
                location,
                path,
                "the node answered a redirect; not followed"
            );
            return Err(UpstreamError::Redirect { status, location });
        }
        let body = read_capped(response, MAX_ERROR_BODY_BYTES)
            .await
            .map(|(b, _)| b)
            .unwrap_or_default();
        let e = ApiError::from_response(status, &headers, &body);
        if authenticated && matches!(status, 401 | 403) {
            let problem = auth::problem(&e, !self.config.key.is_empty(), &self.config.name);
            self.auth.refused(&problem);
            return Err(UpstreamError::Auth(problem));
        }
        Err(UpstreamError::Status(e))
    }

    /// The first-token timeout, classified by the rule in `breaker`.
    fn first_token_timeout(&self, attempt: &Attempt) -> UpstreamError {
        UpstreamError::FirstToken {
            waited_secs: self.first_token_timeout.as_secs(),
            busy: attempt.others_in_flight() || self.node_busy.load(Ordering::SeqCst),
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
                    endpoint: self.config.endpoint.clone(),
                    detail: error_chain(&e),
                }
            }
        })?;
        let r = self.check_status(path, r).await?;
        let (bytes, whole) = read_capped(r, MAX_JSON_BODY_BYTES)
            .await
            .map_err(|e| UpstreamError::Broken(format!("{path}: {e}")))?;
        if !whole {
            return Err(UpstreamError::Protocol(format!(
                "{path}: an answer over {MAX_JSON_BODY_BYTES} bytes"
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Protocol(format!("{path}: {e}")))
    }
}

/// Records a failure's outcome on its attempt and hands the failure on.
fn settled(attempt: &mut Attempt, e: UpstreamError) -> UpstreamError {
    if let Some(outcome) = e.outcome() {
        attempt.settle(outcome);
    }
    e
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
