//! A typed client for every orchestrator route: what `cerebrum ask`, `chat`,
//! `health` and `models` call, and what any Rust program may use.
//!
//! Each call returns the protocol type from `cerebrum-shared` that the route
//! answers with. A failure is a [`ClientError`]: the transport's (bad URL,
//! unreachable, broken stream, unexpected body) or the server's own
//! [`ApiError`], read back from either dialect by [`ApiError::from_response`];
//! the error event that ends a stream is an [`ApiError`] too. Callers branch
//! on its [`ErrorCode`](cerebrum_shared::error::ErrorCode), never on its words.
//!
//! No printing, no exit codes, no command-line parsing here: that is the CLI's.
//!
//! - [`url`]: the base URL as people give it.
//! - [`error`]: [`ClientError`], why a call failed.
//! - [`stream`]: the Cerebrum and OpenAI answer streams.

pub mod error;
pub mod stream;
pub mod url;

use std::time::Duration;

use cerebrum_shared::cerebrum::{
    CompleteRequest, CompleteResponse, ModelsResponse, NodeHealth, OrchestratorHealth, Ready,
};
use cerebrum_shared::error::ApiError;
use cerebrum_shared::headers::API_KEY;
use cerebrum_shared::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, CompletionRequest, TextCompletion,
};
use cerebrum_shared::prepare::{PrepareRequest, PreparedPrompt};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use error::ClientError;
pub use stream::{Chunk, CompleteStream, OpenAiStream};
pub use url::parse_url;

/// The orchestrator's address when none is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7000";

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the short calls (health, models, prepare, stats, metrics) may take.
const SHORT_CALL: Duration = Duration::from_secs(15);
/// Sent as `User-Agent`.
const USER_AGENT: &str = concat!("cerebrum-cli/", env!("CARGO_PKG_VERSION"));

/// A typed answer together with its JSON body as the server sent it, for
/// output that must show fields this build does not know (`--json`).
#[derive(Debug, Clone, PartialEq)]
pub struct WithBody<T> {
    /// The typed reading.
    pub value: T,
    /// The body as sent.
    pub body: Value,
}

/// A client for one orchestrator.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    shown: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for the orchestrator at `url` (`http(s)://host[:port][/prefix]`
    /// or `host:port`). Loopback addresses bypass any proxy from the environment.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let base = parse_url(url)?;
        let shown = base.as_str().trim_end_matches('/').to_owned();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT);
        if url::is_loopback(&base) {
            // A proxy cannot reach this machine's loopback.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| ClientError::BadUrl {
            url: url.to_owned(),
            reason: format!("cannot build an HTTP client: {e}"),
        })?;
        Ok(Self {
            base,
            shown,
            key: None,
            http,
        })
    }

    /// Presents `key` as `X-API-Key` on every call (none when absent or blank).
    pub fn with_key(mut self, key: Option<&str>) -> Self {
        self.key = key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned);
        self
    }

    /// The base URL as shown to people (no trailing slash).
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Whether a key is presented.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// `GET /health`: the orchestrator's view of the stack (always 200).
    pub async fn health(&self) -> Result<OrchestratorHealth, ClientError> {
        Ok(self.health_with_body().await?.value)
    }

    /// [`Client::health`], with the body as sent.
    pub async fn health_with_body(&self) -> Result<WithBody<OrchestratorHealth>, ClientError> {
        self.get("/health").await
    }

    /// `GET /health/ready`: `Ready` when a request could be served now; an
    /// [`ApiError`] (breaker open, node down or overloaded) when not.
    pub async fn ready(&self) -> Result<Ready, ClientError> {
        Ok(self.get("/health/ready").await?.value)
    }

    /// `GET /v1/vps/health`: the inference node's own health, through the orchestrator.
    pub async fn node_health(&self) -> Result<NodeHealth, ClientError> {
        Ok(self.get("/v1/vps/health").await?.value)
    }

    /// `GET /v1/models`: the models the node serves.
    pub async fn models(&self) -> Result<ModelsResponse, ClientError> {
        Ok(self.models_with_body().await?.value)
    }

    /// [`Client::models`], with the body as sent.
    pub async fn models_with_body(&self) -> Result<WithBody<ModelsResponse>, ClientError> {
        self.get("/v1/models").await
    }

    /// `GET /v1/stats`: the orchestrator's counters and the node's, passed
    /// through as the node reports them.
    pub async fn stats(&self) -> Result<Value, ClientError> {
        Ok(self.get("/v1/stats").await?.value)
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let response = self
            .send(self.request(Method::GET, "/metrics")?.timeout(SHORT_CALL))
            .await?;
        response
            .text()
            .await
            .map_err(|e| ClientError::transport(&self.shown, &e))
    }

    /// `POST /v1/prepare`: what would be sent for this prompt, without inference.
    pub async fn prepare(
        &self,
        prompt: &str,
        language: Option<&str>,
        instruction: Option<&str>,
    ) -> Result<PreparedPrompt, ClientError> {
        let body = PrepareRequest {
            prompt: prompt.to_string(),
            language: language.map(str::to_string),
            instruction: instruction.map(str::to_string),
        };
        let req = self
            .request(Method::POST, "/v1/prepare")?
            .timeout(SHORT_CALL);
        Ok(self.read(self.send(req.json(&body)).await?).await?.value)
    }

    /// `POST /v1/complete`: the whole answer at once.
    pub async fn complete(
        &self,
        request: &CompleteRequest,
    ) -> Result<CompleteResponse, ClientError> {
        Ok(self.complete_with_body(request).await?.value)
    }

    /// [`Client::complete`], with the body as sent.
    pub async fn complete_with_body(
        &self,
        request: &CompleteRequest,
    ) -> Result<WithBody<CompleteResponse>, ClientError> {
        self.post("/v1/complete", request).await
    }

    /// `POST /v1/complete/stream`: opens the answer stream.
    pub async fn complete_stream(
        &self,
        request: &CompleteRequest,
    ) -> Result<CompleteStream, ClientError> {
        Ok(CompleteStream::new(
            self.open_stream("/v1/complete/stream", request).await?,
        ))
    }

    /// `POST /v1/chat/completions`, not streamed (whatever `request.sampling.stream` says).
    pub async fn chat(
        &self,
        request: &ChatCompletionRequest,
    ) -> Result<ChatCompletion, ClientError> {
        let mut request = request.clone();
        request.sampling.stream = false;
        Ok(self.post("/v1/chat/completions", &request).await?.value)
    }

    /// `POST /v1/chat/completions`, streamed: chunks until `[DONE]`. The
    /// stream keeps the response's headers (what preparation did, for one:
    /// [`OpenAiStream::preparation`]).
    pub async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
    ) -> Result<OpenAiStream<ChatCompletionChunk>, ClientError> {
        let mut request = request.clone();
        request.sampling.stream = true;
        Ok(OpenAiStream::new(
            self.open_stream("/v1/chat/completions", &request).await?,
        ))
    }

    /// `POST /v1/completions`, not streamed.
    pub async fn completions(
        &self,
        request: &CompletionRequest,
    ) -> Result<TextCompletion, ClientError> {
        let mut request = request.clone();
        request.sampling.stream = false;
        Ok(self.post("/v1/completions", &request).await?.value)
    }

    /// `POST /v1/completions`, streamed: text chunks until `[DONE]`.
    pub async fn completions_stream(
        &self,
        request: &CompletionRequest,
    ) -> Result<OpenAiStream<TextCompletion>, ClientError> {
        let mut request = request.clone();
        request.sampling.stream = true;
        Ok(OpenAiStream::new(
            self.open_stream("/v1/completions", &request).await?,
        ))
    }

    fn request(&self, method: Method, route: &str) -> Result<RequestBuilder, ClientError> {
        let url =
            self.base
                .join(route.trim_start_matches('/'))
                .map_err(|e| ClientError::BadUrl {
                    url: self.shown.clone(),
                    reason: e.to_string(),
                })?;
        let mut req = self.http.request(method, url);
        if let Some(key) = &self.key {
            req = req.header(API_KEY, key);
        }
        Ok(req)
    }

    /// Sends; an error status becomes [`ClientError::Api`].
    async fn send(&self, req: RequestBuilder) -> Result<Response, ClientError> {
        let response = req
            .send()
            .await
            .map_err(|e| ClientError::transport(&self.shown, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // A body cut off mid-read still leaves the status and headers to go by.
        let body = response.bytes().await.unwrap_or_default();
        Err(ClientError::Api(ApiError::from_response(
            status, &headers, &body,
        )))
    }

    /// Reads a JSON body as `T`, keeping it as sent.
    async fn read<T: DeserializeOwned>(
        &self,
        response: Response,
    ) -> Result<WithBody<T>, ClientError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(&self.shown, &e))?;
        let unexpected = |e: serde_json::Error| {
            let head: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            ClientError::Protocol(format!("{e} in {head:?}"))
        };
        let body: Value = serde_json::from_slice(&bytes).map_err(unexpected)?;
        let value = T::deserialize(&body).map_err(unexpected)?;
        Ok(WithBody { value, body })
    }

    async fn get<T: DeserializeOwned>(&self, route: &str) -> Result<WithBody<T>, ClientError> {
        let req = self.request(Method::GET, route)?.timeout(SHORT_CALL);
        self.read(self.send(req).await?).await
    }

    /// A generation: no overall timeout (answers may be long).
    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
    ) -> Result<WithBody<T>, ClientError> {
        let req = self.request(Method::POST, route)?.json(body);
        self.read(self.send(req).await?).await
    }

    async fn open_stream<B: Serialize>(
        &self,
        route: &str,
        body: &B,
    ) -> Result<Response, ClientError> {
        let req = self
            .request(Method::POST, route)?
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(body);
        self.send(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_key_is_no_key() {
        let client = Client::new("127.0.0.1:7000").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.url(), "http://127.0.0.1:7000");
        assert!(!client.clone().with_key(Some("  ")).has_key());
        assert!(!client.clone().with_key(None).has_key());
        assert!(client.with_key(Some("k")).has_key());
    }
}
