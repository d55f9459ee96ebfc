//! The original Cerebrum API, kept byte-compatible so existing clients work.
//!
//! Orchestrator: `/v1/complete`, `/v1/complete/stream`. Node: `/v1/inference`,
//! `/v1/inference/stream`. Stream events are one JSON object per `data:` line:
//! [`StreamToken`]s, then one [`StreamDone`] (or a [`StreamError`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::limits::{DEFAULT_LANGUAGE, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE};
use crate::prepare::Preparation;

fn default_language() -> String {
    DEFAULT_LANGUAGE.to_string()
}
fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}
fn default_temperature() -> f32 {
    DEFAULT_TEMPERATURE
}

/// Sampling knobs beyond the original's, shared by every request type (the
/// OpenAI routes take the same names). Ranges: [`SamplingExtras::check`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SamplingExtras {
    /// Nucleus sampling mass, 0..=1 (1 = off; 0 keeps only the most likely
    /// token: greedy, as in llama.cpp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens (0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    /// Seed for reproducible sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Repetition penalty (1.0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    /// Lowers a token's odds by how often it already appeared (0 = off; OpenAI's knob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Lowers the odds of any token that already appeared (0 = off; OpenAI's knob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Reuse the node's cached prompt prefix (default true; llama-server's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_prompt: Option<bool>,
}

impl SamplingExtras {
    /// Checks every knob given is in range (422 naming the first that is not).
    /// Both tiers call it, so a value one accepts the other accepts too.
    pub fn check(&self) -> Result<(), crate::error::ApiError> {
        use crate::limits::{MAX_REPEAT_PENALTY, MAX_TOKEN_PENALTY, MAX_TOP_K, MIN_REPEAT_PENALTY};
        use crate::validate::{in_range, in_range_f32};
        if let Some(p) = self.top_p {
            in_range_f32("top_p", p, 0.0, 1.0)?;
        }
        if let Some(k) = self.top_k {
            in_range("top_k", k, 0, MAX_TOP_K)?;
        }
        if let Some(r) = self.repeat_penalty {
            in_range_f32("repeat_penalty", r, MIN_REPEAT_PENALTY, MAX_REPEAT_PENALTY)?;
        }
        for (field, value) in [
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
        ] {
            if let Some(v) = value {
                in_range_f32(field, v, -MAX_TOKEN_PENALTY, MAX_TOKEN_PENALTY)?;
            }
        }
        Ok(())
    }
}

/// `POST /v1/complete` and `/v1/complete/stream` on the orchestrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteRequest {
    /// The prompt; large code prompts are prepared (chunked, deduplicated, ranked).
    pub prompt: String,
    /// Source language of the code; picks the model through the routing table.
    #[serde(default = "default_language")]
    pub language: String,
    /// 1..=2048.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// 0..=2.
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// Explicit model (ours): wins over routing when the node serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Stop sequences (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Extra sampling knobs (ours).
    #[serde(flatten)]
    pub sampling: SamplingExtras,
}

/// The answer to `POST /v1/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteResponse {
    /// Generated text.
    pub result: String,
    /// The request's language.
    pub language: String,
    /// Always `"vps"`: which tier generated it (kept for old clients).
    pub source: String,
    /// The model that answered.
    pub model_used: String,
    /// Tokens generated.
    pub tokens_generated: u64,
    /// Wall time spent on inference.
    pub inference_time_seconds: f64,
    /// Unix time of the answer.
    pub timestamp: f64,
    /// What prompt preparation did (ours; absent when not applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preparation: Option<Preparation>,
    /// How the request was fitted to the context, when it had to be (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitReport>,
}

/// `POST /v1/inference` and `/v1/inference/stream` on the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceRequest {
    /// The raw prompt, completed as-is (no chat template).
    pub prompt: String,
    /// Model name; the node's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// 1..=4096.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// 0..=2; 0 is greedy.
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// Generation stops before any of these strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Extra sampling knobs.
    #[serde(flatten)]
    pub sampling: SamplingExtras,
}

/// The answer to `POST /v1/inference`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceResponse {
    /// Generated text.
    pub result: String,
    /// Model that generated it.
    pub model: String,
    /// Tokens generated.
    pub tokens_generated: u64,
    /// Tokens in the prompt (ours).
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Of those, tokens reused from the KV cache (ours).
    #[serde(default)]
    pub cached_tokens: u64,
    /// Wall time from admission to the last token.
    pub inference_time_seconds: f64,
    /// `"stop"` (end of generation or a stop sequence) or `"length"` (max_tokens).
    #[serde(default)]
    pub finish_reason: String,
    /// Unix time of the answer.
    pub timestamp: f64,
}

/// One streamed token: `{"token": "…", "total_tokens": n}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamToken {
    /// Text of this token (always valid UTF-8; may be several tokens' bytes).
    pub token: String,
    /// Tokens generated so far.
    pub total_tokens: u64,
}

/// The final event of a successful stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamDone {
    /// Always true.
    pub done: bool,
    /// Tokens generated.
    pub total_tokens: u64,
    /// Seconds spent generating.
    pub inference_time: f64,
    /// Model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Orchestrator only: the request's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Node only: generation speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
    /// `"stop"` or `"length"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Tokens in the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Of those, tokens the node reused from its KV cache instead of processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Unix time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// Orchestrator only: what prompt preparation did (`applied` plus its figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preparation: Option<Preparation>,
    /// Orchestrator only: how the request was fitted to the context, when it had to be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitReport>,
}

/// How the orchestrator fitted a request to the model's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FitReport {
    /// Tokens of the prompt as sent.
    pub prompt_tokens: u64,
    /// Tokens one request may hold on the model (prompt and answer).
    pub context_length: u64,
    /// `max_tokens` as sent.
    pub max_tokens: u32,
    /// `max_tokens` as asked; larger than `max_tokens` when it was clamped.
    pub max_tokens_requested: u32,
    /// Oldest messages left out to make room.
    pub dropped_messages: u32,
    /// How much harder than usual the newest turn was prepared (0 = as usual).
    pub prepare_level: u8,
}

impl FitReport {
    /// Whether anything was changed to make the request fit.
    pub fn changed_anything(&self) -> bool {
        self.max_tokens < self.max_tokens_requested
            || self.dropped_messages > 0
            || self.prepare_level > 0
    }
}

/// The final event of a failed stream: `{"error", "message", "done": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamError {
    /// Short title (`"VPS unavailable"`, `"Streaming failed"`).
    pub error: String,
    /// What went wrong, for programs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// Detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Always true.
    pub done: bool,
}

/// Any event on a Cerebrum stream, for clients that read one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
// Read one at a time off a stream and matched at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum StreamEvent {
    /// A failure (checked first: it also carries `done`).
    Error(StreamError),
    /// The end.
    Done(StreamDone),
    /// A token.
    Token(StreamToken),
}

/// The node's `GET /health`; answered from cached figures, never behind inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeHealth {
    /// `"healthy"` or `"overloaded"`.
    pub status: String,
    /// Whether a new inference would be admitted now.
    pub available: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// System CPU busy %, all processes.
    pub cpu_usage_percent: f32,
    /// CPU busy % from other processes than the node (what the guard judges).
    #[serde(default)]
    pub cpu_other_percent: f32,
    /// Available RAM.
    pub ram_available_gb: f64,
    /// Used RAM.
    pub ram_used_gb: f64,
    /// Names of loaded models.
    pub models_in_cache: Vec<String>,
    /// Names of models being loaded now.
    #[serde(default)]
    pub models_loading: Vec<String>,
    /// Sequences generating now, all models.
    #[serde(default)]
    pub active_sequences: u64,
    /// Tokens one request may hold on this node, prompt and answer (every model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// Seconds since start.
    pub uptime_seconds: u64,
}

/// One model in `GET /v1/models`, OpenAI's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelCard {
    /// Model name.
    pub id: String,
    /// Always `"model"`.
    pub object: String,
    /// Who serves it.
    pub owned_by: String,
    /// Unix time (OpenAI field).
    #[serde(default)]
    pub created: u64,
    /// Tokens one request may hold (prompt and answer), when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
}

/// `GET /v1/models`: OpenAI's list and the Cerebrum keys in one body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelsResponse {
    /// Always `"list"`.
    pub object: String,
    /// OpenAI's model cards.
    pub data: Vec<ModelCard>,
    /// Every model name the node can serve.
    pub available_models: Vec<String>,
    /// Those loaded now.
    pub cached_models: Vec<String>,
    /// Completed inferences per model.
    pub inference_counts: BTreeMap<String, u64>,
}

impl ModelsResponse {
    /// Sets every card's context length.
    pub fn with_context_length(mut self, tokens: u64) -> Self {
        for card in &mut self.data {
            card.context_length = Some(tokens);
        }
        self
    }

    /// The context length the server states for `model`.
    pub fn context_length(&self, model: &str) -> Option<u64> {
        self.data
            .iter()
            .find(|c| c.id == model)
            .and_then(|c| c.context_length)
    }

    /// Builds the combined list from names.
    pub fn new(
        available: Vec<String>,
        cached: Vec<String>,
        counts: BTreeMap<String, u64>,
        owned_by: &str,
    ) -> Self {
        let data = available
            .iter()
            .map(|id| ModelCard {
                id: id.clone(),
                object: "model".into(),
                owned_by: owned_by.into(),
                created: 0,
                context_length: None,
            })
            .collect();
        Self {
            object: "list".into(),
            data,
            available_models: available,
            cached_models: cached,
            inference_counts: counts,
        }
    }
}

impl From<&crate::error::ApiError> for StreamError {
    fn from(e: &crate::error::ApiError) -> Self {
        Self {
            error: e.title().to_string(),
            code: Some(e.code),
            message: Some(e.message.clone()),
            done: true,
        }
    }
}

impl StreamError {
    /// The failure as an [`ApiError`] (its code; the title's when it carries none).
    pub fn to_api_error(&self) -> crate::error::ApiError {
        let code = self.code.unwrap_or(ErrorCode::StreamingFailed);
        crate::error::ApiError::new(code, self.message.clone().unwrap_or_default())
    }
}

/// `POST /tokenize` on the node (llama-server's route, extended): the tokens a
/// prompt (`content`) or a conversation (`messages`, rendered with the model's
/// chat template as for generation) becomes. Exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenizeRequest {
    /// Model whose tokenizer to use; the node's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A raw prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<crate::openai::ChatMessage>>,
    /// Answer the count only, without the token ids.
    #[serde(default)]
    pub count_only: bool,
}

/// The answer to `POST /tokenize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenizeResponse {
    /// The token ids (empty with `count_only`).
    #[serde(default)]
    pub tokens: Vec<i32>,
    /// How many tokens.
    pub count: u64,
    /// Tokens one request may hold on this node (prompt and answer together).
    pub context_length: u64,
    /// The model whose tokenizer was used.
    pub model: String,
}

/// The orchestrator's `GET /health`: always 200; `status` says whether a
/// request could be served now. The original's keys first, then ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrchestratorHealth {
    /// `"healthy"` when a request could be served now, else `"degraded"`.
    pub status: String,
    /// Always `"healthy"`: the orchestrator answered.
    pub cm4_status: String,
    /// The node's own status (`"healthy"`, `"overloaded"`), or `"unreachable"`.
    pub vps_status: String,
    /// Whether the node would admit a request now.
    pub vps_available: bool,
    /// Whether the node answered its health check.
    pub vps_connected: bool,
    /// Inference requests in flight on the orchestrator.
    pub active_count: u64,
    /// Always 0: the orchestrator sheds instead of queueing.
    pub queue_count: u64,
    /// The in-flight limit.
    #[serde(default)]
    pub max_in_flight: u64,
    /// The circuit breaker in front of the node.
    #[serde(default)]
    pub breaker: BreakerState,
    /// Seconds until the breaker lets a trial call through (0 when closed).
    #[serde(default)]
    pub breaker_retry_after_seconds: u64,
    /// Whether the node accepts this orchestrator (its `VPS_API_KEY`, and its
    /// address on the node's `ALLOWED_CM4_IP`), as its last authenticated
    /// answer said; `refused` makes `status` `degraded`.
    #[serde(default)]
    pub vps_auth: VpsAuth,
    /// When `vps_auth` is `refused`: what the node said and what the operator
    /// must fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vps_auth_problem: Option<String>,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// `"Xh Ym"`.
    pub uptime_text: String,
    /// The Pi's CPU busy %.
    pub cpu_percent: f32,
    /// Every configured upstream (the `vps_*` and `breaker*` keys above sum
    /// them up: the first that is ready, else the first configured).
    #[serde(default)]
    pub upstreams: Vec<UpstreamHealth>,
}

/// What kind of server an upstream is, which decides how its health is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamKind {
    /// Decided by what it answers: a Cerebrum node's `/health` when it has
    /// one, else as `openai`.
    #[default]
    Auto,
    /// A `cerebrum-node`: its `/health` says whether it would admit work.
    CerebrumNode,
    /// Any OpenAI-compatible server (llama-server, vLLM, Ollama, a hosted
    /// API): ready when `GET /v1/models` answers 200 with the key.
    #[serde(rename = "openai")]
    OpenAi,
}

impl UpstreamKind {
    /// The wire name (`auto`, `cerebrum-node`, `openai`).
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamKind::Auto => "auto",
            UpstreamKind::CerebrumNode => "cerebrum-node",
            UpstreamKind::OpenAi => "openai",
        }
    }
}

/// One upstream in the orchestrator's `/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpstreamHealth {
    /// Its configured name.
    pub name: String,
    /// Its base URL.
    pub endpoint: String,
    /// How its health is read (for `auto`, what it turned out to be once known).
    pub kind: UpstreamKind,
    /// Whether it only takes requests no primary could (`fallback = true`).
    pub fallback: bool,
    /// Whether it could take a request now: reachable, available, breaker not
    /// open, key accepted.
    pub ready: bool,
    /// Its own status word (`healthy`, `ok`, `overloaded`), or `unreachable`, or
    /// `unknown` before the first reading.
    pub status: String,
    /// Whether it answered its last health check.
    pub connected: bool,
    /// Whether it would admit a request now, by its own account.
    pub available: bool,
    /// Its circuit breaker.
    pub breaker: BreakerState,
    /// Seconds until its breaker lets a trial call through (0 unless open).
    pub breaker_retry_after_seconds: u64,
    /// Whether it accepts this orchestrator's key and address.
    pub auth: VpsAuth,
    /// When `auth` is `refused`: what it said and what to fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_problem: Option<String>,
    /// The models it serves (configured, else as its `/v1/models` last said;
    /// empty while unknown).
    pub models: Vec<String>,
    /// Generations of this orchestrator in flight to it now.
    pub in_flight: u64,
    /// Generations it runs at once (configured `slots`).
    pub slots: u64,
}

/// The orchestrator's circuit breaker, as `/health` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    #[default]
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// The cooldown ended: the next call is a trial.
    HalfOpen,
}

impl BreakerState {
    /// The wire name (`closed`, `open`, `half_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Whether the node accepts the orchestrator's credentials, as `/health` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VpsAuth {
    /// No authenticated call has been answered yet.
    #[default]
    Unknown,
    /// The node accepted the key and the address.
    Ok,
    /// The node answered 401 or 403: the operator's configuration is wrong.
    Refused,
}

impl VpsAuth {
    /// The wire name (`unknown`, `ok`, `refused`).
    pub fn as_str(self) -> &'static str {
        match self {
            VpsAuth::Unknown => "unknown",
            VpsAuth::Ok => "ok",
            VpsAuth::Refused => "refused",
        }
    }
}

impl OrchestratorHealth {
    /// Whether the stack can serve a request now.
    pub fn is_healthy(&self) -> bool {
        self.status == "healthy"
    }
}

/// `GET /health/ready` when the stack can serve: `{"ready": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ready {
    /// Always true (the 503 answer is an error body).
    pub ready: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_request_defaults_match_the_original() {
        let r: CompleteRequest = serde_json::from_str(r#"{"prompt":"x"}"#).unwrap();
        assert_eq!(r.language, "python");
        assert_eq!(r.max_tokens, 512);
        assert!((r.temperature - 0.2).abs() < 1e-6);
    }

    #[test]
    fn stream_events_are_told_apart() {
        let t: StreamEvent = serde_json::from_str(r#"{"token":"a","total_tokens":1}"#).unwrap();
        assert!(matches!(t, StreamEvent::Token(_)));
        let d: StreamEvent =
            serde_json::from_str(r#"{"done":true,"total_tokens":3,"inference_time":0.5}"#).unwrap();
        assert!(matches!(d, StreamEvent::Done(_)));
        let e: StreamEvent =
            serde_json::from_str(r#"{"error":"Streaming failed","done":true}"#).unwrap();
        assert!(matches!(e, StreamEvent::Error(_)));
    }

    #[test]
    fn models_response_has_both_shapes() {
        let m = ModelsResponse::new(vec!["a".into()], vec![], BTreeMap::new(), "cerebrum-node");
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["id"], "a");
        assert_eq!(v["available_models"][0], "a");
    }
}
