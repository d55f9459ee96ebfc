//! The HTTP client behind `cerebrum ask`, `chat`, `health` and `models`: one
//! call per orchestrator route, and errors typed so that each maps to a
//! message a person understands and an exit code a script can rely on.

use std::pin::Pin;
use std::time::Duration;

use cerebrum_shared::cerebrum::{CompleteRequest, ModelsResponse, StreamDone, StreamEvent};
use clap::Args;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};

/// The orchestrator's address when neither `--url` nor `CEREBRUM_URL` is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7000";

/// Exit code: the server failed the request, the answer stream broke, or
/// output could not be written.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage or input error (bad flag, unreadable file, empty prompt, bad URL).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the orchestrator cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: the stack cannot serve now (busy, rate limited, node down or
/// overloaded, circuit breaker open); retrying later may work.
pub const EXIT_UNAVAILABLE: u8 = 4;
/// Exit code: the request was refused (prompt too large, invalid field,
/// unknown model, missing or wrong API key); retrying will not help.
pub const EXIT_REFUSED: u8 = 5;

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the server failed the request or the answer stream broke
  2  usage or input error (bad flag, unreadable file, empty prompt, bad URL)
  3  cannot reach the orchestrator (is `cerebrum serve` running?)
  4  the stack cannot serve now: busy, rate limited, node down or overloaded,
     circuit breaker open (retry later)
  5  the request was refused: prompt too large, invalid value, unknown model,
     missing or wrong API key";

/// Where the orchestrator is, and the key to present.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The orchestrator's base URL.
    #[arg(long, env = "CEREBRUM_URL", default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Client API key, sent as X-API-Key (needed when the server sets
    /// CEREBRUM_CLIENT_KEYS).
    #[arg(
        long,
        env = "CEREBRUM_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,
}

/// Why a call to the orchestrator failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--url` is not an http(s) URL.
    #[error("invalid server URL '{url}': {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot reach {url}: is `cerebrum serve` running? ({detail})")]
    Unreachable {
        /// The orchestrator's base URL.
        url: String,
        /// The transport's reason.
        detail: String,
    },
    /// 503 or 429: busy, rate limited, node down or overloaded, breaker open.
    #[error("{}", unavailable_text(title, message, *retry_after))]
    Unavailable {
        /// The server's title (`CM4 busy`, `VPS unavailable`, …).
        title: String,
        /// The server's detail.
        message: String,
        /// Seconds to wait, from `Retry-After`.
        retry_after: Option<u64>,
    },
    /// 413: the prompt is over the server's limit.
    #[error("prompt too large: {message}")]
    TooLarge {
        /// The server's detail (sizes).
        message: String,
    },
    /// Another 4xx: invalid field, unknown model, missing or wrong key.
    #[error("{}", refused_text(*status, title, message))]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's title.
        title: String,
        /// The server's detail.
        message: String,
    },
    /// A 5xx other than 503.
    #[error("the server failed the request ({status} {title}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's title.
        title: String,
        /// The server's detail.
        message: String,
    },
    /// The answer stream broke off or reported an error part-way.
    #[error("the answer stream failed: {0}")]
    Stream(String),
    /// A response that is not what the route promises.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

fn unavailable_text(title: &str, message: &str, retry_after: Option<u64>) -> String {
    let what = match title {
        "CM4 busy" => "the orchestrator is busy: too many requests in flight".to_owned(),
        "Rate limited" => format!("rate limited: {message}"),
        "VPS unavailable" if message.contains("paused") || message.contains("breaker") => {
            "the inference node is unavailable: it failed repeatedly, so the circuit breaker \
             is open and calls are paused"
                .to_owned()
        }
        "VPS unavailable" => format!("the inference node is unavailable: {message}"),
        "VPS overloaded" => format!("the inference node is overloaded: {message}"),
        _ if message.is_empty() => title.to_owned(),
        _ => format!("{title}: {message}"),
    };
    match retry_after {
        Some(secs) => format!("{what}; retry in {secs} s"),
        None => format!("{what}; retry shortly"),
    }
}

fn refused_text(status: u16, title: &str, message: &str) -> String {
    match status {
        401 | 403 => format!("{title}: {message} (pass --key or set CEREBRUM_API_KEY)"),
        404 => format!("{title}: {message} (`cerebrum models` lists the models)"),
        _ if message.is_empty() => format!("request refused: {title}"),
        _ => format!("request refused: {message}"),
    }
}

impl ClientError {
    /// The process exit code for this error (see [`EXIT_CODES_HELP`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::BadUrl { .. } => EXIT_USAGE,
            ClientError::Unreachable { .. } => EXIT_UNREACHABLE,
            ClientError::Unavailable { .. } => EXIT_UNAVAILABLE,
            ClientError::TooLarge { .. } | ClientError::Refused { .. } => EXIT_REFUSED,
            ClientError::Server { .. } | ClientError::Stream(_) | ClientError::Protocol(_) => {
                EXIT_FAILED
            }
        }
    }
}

pub use cerebrum_shared::prepare::{PrepareStats as PreparedStats, PreparedPrompt};

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// Text of one token.
    Token(String),
    /// The final event.
    Done(Box<StreamDone>),
}

type EventStream = Pin<
    Box<
        dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

/// An open `/v1/complete/stream` answer. Dropping it closes the connection,
/// which makes the orchestrator stop the generation on the node.
pub struct AnswerStream {
    events: EventStream,
    finished: bool,
}

impl AnswerStream {
    /// The next piece: `Ok(None)` after the final event.
    pub async fn next(&mut self) -> Result<Option<Chunk>, ClientError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let Some(event) = self.events.next().await else {
                self.finished = true;
                return Err(ClientError::Stream(
                    "the connection closed before the answer was complete".into(),
                ));
            };
            let event = event.map_err(|e| {
                self.finished = true;
                ClientError::Stream(format!("the connection broke: {e}"))
            })?;
            if event.data.trim().is_empty() {
                continue;
            }
            let parsed: StreamEvent = serde_json::from_str(&event.data).map_err(|e| {
                ClientError::Protocol(format!("stream event {:?}: {e}", event.data))
            })?;
            return match parsed {
                StreamEvent::Token(t) => Ok(Some(Chunk::Token(t.token))),
                StreamEvent::Done(d) => {
                    self.finished = true;
                    Ok(Some(Chunk::Done(Box::new(d))))
                }
                StreamEvent::Error(e) => {
                    self.finished = true;
                    let detail = match e.message {
                        Some(m) if !m.is_empty() => format!("{}: {m}", e.error),
                        _ => e.error,
                    };
                    Err(ClientError::Stream(detail))
                }
            };
        }
    }
}

/// A client for one orchestrator.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    shown: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// How long the short calls (health, models, prepare) may take.
const SHORT_CALL: Duration = Duration::from_secs(15);

/// Parses `--url`: `http(s)://host[:port][/prefix]`, or `host:port` (http is assumed).
pub fn parse_url(given: &str) -> Result<Url, ClientError> {
    let trimmed = given.trim();
    let bad = |reason: &str| ClientError::BadUrl {
        url: given.to_owned(),
        reason: reason.to_owned(),
    };
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad("only http:// and https:// are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    // A base with a path prefix joins routes under it.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl Client {
    /// A client for the orchestrator named by `args`.
    pub fn new(args: &ServerArgs) -> Result<Self, ClientError> {
        // An empty CEREBRUM_URL (exported but unset in a script) means the default.
        let given = if args.url.trim().is_empty() {
            DEFAULT_URL
        } else {
            args.url.as_str()
        };
        let base = parse_url(given)?;
        let shown = base.as_str().trim_end_matches('/').to_owned();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("cerebrum-cli/", env!("CARGO_PKG_VERSION")));
        let loopback = match base.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        if loopback {
            // A proxy from the environment cannot reach this machine's loopback.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| ClientError::BadUrl {
            url: args.url.clone(),
            reason: format!("cannot build an HTTP client: {e}"),
        })?;
        Ok(Self {
            base,
            shown,
            key: args.key.clone().filter(|k| !k.trim().is_empty()),
            http,
        })
    }

    /// The base URL as shown to people (no trailing slash).
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn endpoint(&self, route: &str) -> Result<Url, ClientError> {
        self.base
            .join(route.trim_start_matches('/'))
            .map_err(|e| ClientError::BadUrl {
                url: self.shown.clone(),
                reason: e.to_string(),
            })
    }

    fn request(
        &self,
        method: reqwest::Method,
        route: &str,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let mut req = self.http.request(method, self.endpoint(route)?);
        if let Some(key) = &self.key {
            req = req.header(cerebrum_shared::headers::API_KEY, key);
        }
        Ok(req)
    }

    fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        if e.is_connect() || (e.is_timeout() && !e.is_body()) {
            ClientError::Unreachable {
                url: self.shown.clone(),
                detail: root_cause(e),
            }
        } else if e.is_body() || e.is_decode() {
            ClientError::Stream(format!("the connection broke: {}", root_cause(e)))
        } else {
            ClientError::Unreachable {
                url: self.shown.clone(),
                detail: root_cause(e),
            }
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Response, ClientError> {
        let response = req.send().await.map_err(|e| self.transport_error(&e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(error_from_response(response).await)
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: Response,
    ) -> Result<T, ClientError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            let head: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            ClientError::Protocol(format!("{e} in {head:?}"))
        })
    }

    /// `GET /health`: the orchestrator's view of the stack (always 200).
    pub async fn health(&self) -> Result<Value, ClientError> {
        let req = self
            .request(reqwest::Method::GET, "/health")?
            .timeout(SHORT_CALL);
        let response = self.send(req).await?;
        self.json(response).await
    }

    /// `GET /v1/vps/health`: the inference node's own health, through the orchestrator.
    pub async fn node_health(&self) -> Result<Value, ClientError> {
        let req = self
            .request(reqwest::Method::GET, "/v1/vps/health")?
            .timeout(SHORT_CALL);
        let response = self.send(req).await?;
        self.json(response).await
    }

    /// `GET /v1/models`: the body as sent, and its typed reading.
    pub async fn models(&self) -> Result<(Value, ModelsResponse), ClientError> {
        let req = self
            .request(reqwest::Method::GET, "/v1/models")?
            .timeout(SHORT_CALL);
        let response = self.send(req).await?;
        let body: Value = self.json(response).await?;
        let typed = serde_json::from_value(body.clone())
            .map_err(|e| ClientError::Protocol(format!("/v1/models: {e}")))?;
        Ok((body, typed))
    }

    /// `POST /v1/prepare`: what would be sent for this prompt, without inference.
    pub async fn prepare(
        &self,
        prompt: &str,
        language: Option<&str>,
    ) -> Result<PreparedPrompt, ClientError> {
        let req = self
            .request(reqwest::Method::POST, "/v1/prepare")?
            .timeout(SHORT_CALL)
            .json(&json!({"prompt": prompt, "language": language}));
        let response = self.send(req).await?;
        self.json(response).await
    }

    /// `POST /v1/complete`: the whole answer at once, as the server's JSON
    /// object (a `CompleteResponse`, kept as JSON so `--json` prints it whole).
    pub async fn complete(&self, request: &CompleteRequest) -> Result<Value, ClientError> {
        let req = self
            .request(reqwest::Method::POST, "/v1/complete")?
            .json(request);
        let response = self.send(req).await?;
        self.json(response).await
    }

    /// `POST /v1/complete/stream`: opens the answer stream.
    pub async fn stream(&self, request: &CompleteRequest) -> Result<AnswerStream, ClientError> {
        let req = self
            .request(reqwest::Method::POST, "/v1/complete/stream")?
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(request);
        let response = self.send(req).await?;
        Ok(AnswerStream {
            events: Box::pin(response.bytes_stream().eventsource()),
            finished: false,
        })
    }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Turns an error response (either dialect) into a [`ClientError`].
async fn error_from_response(response: Response) -> ClientError {
    let status = response.status();
    let retry_header = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body: Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).trim().to_owned())),
        Err(_) => Value::Null,
    };
    from_status(status, &body, retry_header)
}

/// Maps a status and error body (Cerebrum `{"error": title, "message"}` or
/// OpenAI `{"error": {"message"}}`) to a [`ClientError`].
pub fn from_status(status: StatusCode, body: &Value, retry_header: Option<u64>) -> ClientError {
    let reason = status.canonical_reason().unwrap_or("error").to_owned();
    let (title, message) = match &body["error"] {
        Value::String(t) => (t.clone(), body["message"].as_str().unwrap_or("").to_owned()),
        // OpenAI's shape puts "Title: detail" in one message.
        Value::Object(o) => {
            let text = o.get("message").and_then(Value::as_str).unwrap_or("");
            match text.split_once(": ") {
                Some((t, m)) if t.len() <= 40 && t.starts_with(char::is_uppercase) => {
                    (t.to_owned(), m.to_owned())
                }
                _ => (reason, text.to_owned()),
            }
        }
        _ => (reason, body.as_str().unwrap_or("").to_owned()),
    };
    let retry_after = retry_header.or_else(|| body["retry_after_seconds"].as_u64());
    match status.as_u16() {
        503 | 429 => ClientError::Unavailable {
            title,
            message,
            retry_after,
        },
        413 => ClientError::TooLarge {
            message: if message.is_empty() { title } else { message },
        },
        s @ 400..=499 => ClientError::Refused {
            status: s,
            title,
            message,
        },
        s => ClientError::Server {
            status: s,
            title,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            parse_url("http://127.0.0.1:7000")
                .map(|u| u.to_string())
                .ok(),
            Some("http://127.0.0.1:7000/".into())
        );
        assert_eq!(
            parse_url("pi:7000").map(|u| u.to_string()).ok(),
            Some("http://pi:7000/".into())
        );
        assert_eq!(
            parse_url("https://x.example/cerebrum")
                .map(|u| u.to_string())
                .ok(),
            Some("https://x.example/cerebrum/".into())
        );
        assert!(matches!(
            parse_url("ftp://x"),
            Err(ClientError::BadUrl { .. })
        ));
        assert!(matches!(parse_url(""), Err(ClientError::BadUrl { .. })));
    }

    #[test]
    fn an_empty_url_means_the_default() {
        let args = ServerArgs {
            url: " ".into(),
            key: Some(String::new()),
        };
        let client = Client::new(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.url(), DEFAULT_URL);
        assert_eq!(client.key, None, "an empty key is no key");
    }

    #[test]
    fn load_shed_is_busy_with_a_retry_hint() {
        let body =
            json!({"error": "CM4 busy", "message": "Too many concurrent requests, retry shortly"});
        let e = from_status(status(503), &body, Some(2));
        assert_eq!(e.exit_code(), EXIT_UNAVAILABLE);
        assert_eq!(
            e.to_string(),
            "the orchestrator is busy: too many requests in flight; retry in 2 s"
        );
    }

    #[test]
    fn breaker_open_says_so() {
        let body = json!({"error": "VPS unavailable",
            "message": "the inference node is failing; calls paused for 27 s", "retry_after_seconds": 27});
        let e = from_status(status(503), &body, None);
        assert_eq!(e.exit_code(), EXIT_UNAVAILABLE);
        let text = e.to_string();
        assert!(text.contains("circuit breaker is open"), "{text}");
        assert!(text.ends_with("retry in 27 s"), "{text}");
    }

    #[test]
    fn too_large_and_invalid_are_refusals() {
        let e = from_status(
            status(413),
            &json!({"error": "Prompt too large", "message": "prompt is 20000 characters; at most 16000 are accepted"}),
            None,
        );
        assert_eq!(e.exit_code(), EXIT_REFUSED);
        assert_eq!(
            e.to_string(),
            "prompt too large: prompt is 20000 characters; at most 16000 are accepted"
        );
        let e = from_status(
            status(422),
            &json!({"error": "Invalid request", "message": "max_tokens: must be 1..=2048"}),
            None,
        );
        assert_eq!(e.exit_code(), EXIT_REFUSED);
        assert_eq!(
            e.to_string(),
            "request refused: max_tokens: must be 1..=2048"
        );
    }

    #[test]
    fn openai_shaped_errors_are_read() {
        let e = from_status(
            status(503),
            &json!({"error": {"message": "VPS unavailable: down", "type": "server_overloaded"}}),
            Some(5),
        );
        assert_eq!(e.exit_code(), EXIT_UNAVAILABLE);
        assert_eq!(
            e.to_string(),
            "the inference node is unavailable: down; retry in 5 s"
        );
    }

    #[test]
    fn auth_errors_hint_at_the_key() {
        let e = from_status(
            status(401),
            &json!({"error": "Missing API key", "message": "send your key as X-API-Key"}),
            None,
        );
        assert_eq!(e.exit_code(), EXIT_REFUSED);
        assert!(e.to_string().contains("--key"), "{e}");
    }

    #[test]
    fn other_server_errors_are_failures() {
        let e = from_status(
            status(502),
            &json!({"error": "Streaming failed", "message": "x"}),
            None,
        );
        assert_eq!(e.exit_code(), EXIT_FAILED);
        let e = from_status(status(500), &Value::String("oops".into()), None);
        assert_eq!(e.exit_code(), EXIT_FAILED);
        assert!(e.to_string().contains("oops"));
    }

    #[test]
    fn prepare_plan_parses() {
        let v = json!({"prompt": "p", "applied": true, "language": "python", "instruction": "Explain",
            "stats": {"original_chars": 9000, "final_chars": 3000, "chunks_total": 10, "chunks_unique": 9,
                      "chunks_kept": 3, "reduction_percent": 66.7, "elapsed_us": 120,
                      "kept_ranges": [{"start": 0, "end": 10, "start_line": 1, "end_line": 4}],
                      "skipped_reason": null}});
        let p: PreparedPrompt = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.applied);
        assert_eq!(p.stats.kept_ranges[0].end_line, 4);
    }
}
