//! The subset of the OpenAI API both tiers serve, so every OpenAI client works.
//!
//! Requests accept what OpenAI SDKs send (string or array `content`, string or
//! array `stop`/`prompt`, `user`, `stream_options`, `n: 1`…). A field that asks
//! for something the node cannot do yet (`n` > 1, `logit_bias`, `tools`, a JSON
//! `response_format`, image or audio parts…) is refused by [`ChatCompletionRequest::check`]
//! and [`CompletionRequest::check`], which both tiers call, with 422 naming it: never
//! dropped without a word.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cerebrum::SamplingExtras;
use crate::error::ApiError;
use crate::limits::MAX_MESSAGES;

/// `content` as a plain string or as an array of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum MessageContent {
    /// `"content": "text"`.
    Text(String),
    /// `"content": [{"type": "text", "text": "…"}]`.
    Parts(Vec<ContentPart>),
}

/// One part of an array `content`; only text parts carry text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContentPart {
    /// `"text"`: the only type served (`image_url`, `input_audio`, `file`… are refused with 422).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text, for text parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl MessageContent {
    /// The message's text (text parts joined).
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` (or `developer`, treated as system).
    pub role: String,
    /// The message text; null is allowed for assistant messages.
    #[serde(default)]
    pub content: Option<MessageContent>,
}

impl ChatMessage {
    /// A message with plain text.
    pub fn new(role: &str, text: &str) -> Self {
        Self {
            role: role.to_string(),
            content: Some(MessageContent::Text(text.to_string())),
        }
    }

    /// The message's text, empty when absent.
    pub fn text(&self) -> String {
        self.content
            .as_ref()
            .map(MessageContent::text)
            .unwrap_or_default()
    }
}

/// A string or a list of strings (`stop`, `prompt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum OneOrMany {
    /// One string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// All the strings.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamOptions {
    /// Send a final chunk with `usage` before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// Sampling fields common to chat and text completions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAiSampling {
    /// Tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Newer name for `max_tokens` (chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// 0..=2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, 0..=1 as OpenAI's (1 = off; 0 keeps only the most
    /// likely token: greedy, as in llama.cpp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens (0 = off; llama.cpp's knob, not OpenAI's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    /// Repetition penalty (1.0 = off; llama.cpp's knob, not OpenAI's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    /// Lowers a token's odds by how often it already appeared (0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Lowers the odds of any token that already appeared (0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<OneOrMany>,
    /// Seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stream the answer as SSE chunks.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Reuse the server's cached prompt prefix (default true; llama-server's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_prompt: Option<bool>,
    /// OpenAI fields not served yet: accepted only at the value that asks for nothing.
    #[serde(flatten)]
    pub unsupported: Unsupported,
}

impl OpenAiSampling {
    /// No unsupported field, and the sampler knobs in range (the tier checks
    /// `max_tokens`, whose limit is its own).
    pub fn check(&self) -> Result<(), ApiError> {
        self.unsupported.check()?;
        if let Some(t) = self.temperature {
            crate::validate::in_range_f32("temperature", t, 0.0, crate::limits::MAX_TEMPERATURE)?;
        }
        self.extras().check()
    }

    /// The sampler knobs, as the Cerebrum API names them (same names, same ranges).
    pub fn extras(&self) -> SamplingExtras {
        SamplingExtras {
            top_p: self.top_p,
            top_k: self.top_k,
            seed: self.seed,
            repeat_penalty: self.repeat_penalty,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            cache_prompt: self.cache_prompt,
        }
    }

    /// `max_completion_tokens` or `max_tokens`.
    pub fn max_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Whether the stream ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

/// `logprobs`: a flag on chat, a count on text completions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Logprobs {
    /// Chat: `true` asks for them.
    Flag(bool),
    /// Text completions: how many alternatives per token (any number asks for them).
    Count(u32),
}

/// `response_format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseFormat {
    /// `"text"` is served; `"json_object"` and `"json_schema"` are refused.
    #[serde(rename = "type")]
    pub kind: String,
}

/// OpenAI fields the node cannot honour yet. Each is accepted at the value that
/// asks for nothing (what SDKs send by default: `n: 1`, `logprobs: false`,
/// `response_format: {"type": "text"}`, `tool_choice: "none"`, empty lists and
/// maps) and refused otherwise, with 422 naming it, until it is served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unsupported {
    /// Choices per request: 1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Text completions: candidates per choice, 1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_of: Option<u32>,
    /// Token id → bias: empty only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<BTreeMap<String, f64>>,
    /// `false` (chat) only; text completions: absent only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Logprobs>,
    /// 0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// Text completions: `false` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// Text completions: empty only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Function tools: empty only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub tools: Option<Vec<Value>>,
    /// `"none"` or `"auto"` only (with no tools both mean plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub tool_choice: Option<Value>,
    /// Legacy function tools: empty only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub functions: Option<Vec<Value>>,
    /// Legacy `tool_choice`: `"none"` or `"auto"` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub function_call: Option<Value>,
    /// `{"type": "text"}` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Output modalities: `["text"]` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalities: Option<Vec<String>>,
    /// Audio output: absent only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub audio: Option<Value>,
}

impl Unsupported {
    /// The first field that asks for something not served, as a 422 naming it.
    pub fn check(&self) -> Result<(), ApiError> {
        let refuse = |field: &str, what: &str| {
            Err(ApiError::invalid_field(
                field,
                format!("not supported: {what}"),
            ))
        };
        let plain_choice = |v: &Value| matches!(v.as_str(), Some("none" | "auto"));
        if self.n.is_some_and(|n| n != 1) {
            return refuse(
                "n",
                "one choice is generated per request; send n = 1 or leave it out",
            );
        }
        if self.best_of.is_some_and(|n| n != 1) {
            return refuse(
                "best_of",
                "one candidate is generated per choice; send 1 or leave it out",
            );
        }
        if self.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
            return refuse("logit_bias", "token biases are not applied; leave it out");
        }
        if matches!(
            self.logprobs,
            Some(Logprobs::Flag(true) | Logprobs::Count(_))
        ) {
            return refuse(
                "logprobs",
                "log probabilities are not returned; leave it out",
            );
        }
        if self.top_logprobs.is_some_and(|n| n > 0) {
            return refuse(
                "top_logprobs",
                "log probabilities are not returned; leave it out",
            );
        }
        if self.echo == Some(true) {
            return refuse("echo", "the prompt is not echoed; leave it out");
        }
        if self.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
            return refuse("suffix", "fill-in-the-middle is not served; leave it out");
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return refuse("tools", "tool calls are not served; leave it out");
        }
        if self.tool_choice.as_ref().is_some_and(|c| !plain_choice(c)) {
            return refuse(
                "tool_choice",
                "tool calls are not served; send \"none\" or leave it out",
            );
        }
        if self.functions.as_ref().is_some_and(|f| !f.is_empty()) {
            return refuse("functions", "function calls are not served; leave it out");
        }
        if self
            .function_call
            .as_ref()
            .is_some_and(|c| !plain_choice(c))
        {
            return refuse(
                "function_call",
                "function calls are not served; send \"none\" or leave it out",
            );
        }
        if let Some(f) = &self.response_format
            && f.kind != "text"
        {
            return refuse(
                "response_format",
                &format!("only {{\"type\": \"text\"}} is served, not \"{}\"", f.kind),
            );
        }
        if self
            .modalities
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m != "text"))
        {
            return refuse(
                "modalities",
                "only text is generated; send [\"text\"] or leave it out",
            );
        }
        if self.audio.as_ref().is_some_and(|a| !a.is_null()) {
            return refuse("audio", "only text is generated; leave it out");
        }
        Ok(())
    }
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatCompletionRequest {
    /// Model name; the server's choice when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling and streaming.
    #[serde(flatten)]
    pub sampling: OpenAiSampling,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompletionRequest {
    /// Model name; the server's choice when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The prompt (one string; a one-element list is accepted).
    pub prompt: OneOrMany,
    /// Sampling and streaming.
    #[serde(flatten)]
    pub sampling: OpenAiSampling,
}

impl ChatCompletionRequest {
    /// What the request asks that needs no server state to judge: at most
    /// [`MAX_MESSAGES`] messages, text parts only, no unsupported field, the
    /// sampler knobs in range. Both tiers call it before any work (422 naming
    /// the field).
    pub fn check(&self) -> Result<(), ApiError> {
        if self.messages.len() > MAX_MESSAGES {
            return Err(ApiError::invalid_field(
                "messages",
                format!(
                    "{} messages; at most {MAX_MESSAGES} are accepted per request",
                    self.messages.len()
                ),
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            let Some(MessageContent::Parts(parts)) = &m.content else {
                continue;
            };
            if let Some((j, part)) = parts.iter().enumerate().find(|(_, p)| p.kind != "text") {
                return Err(ApiError::invalid_field(
                    format!("messages[{i}].content[{j}].type"),
                    format!(
                        "not supported: only text parts are read, not \"{}\"; send the text alone",
                        part.kind
                    ),
                ));
            }
        }
        self.sampling.check()
    }
}

impl CompletionRequest {
    /// What the request asks that needs no server state to judge: no
    /// unsupported field, the sampler knobs in range (422 naming the field).
    /// Both tiers call it before any work.
    pub fn check(&self) -> Result<(), ApiError> {
        self.sampling.check()
    }
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// Sum.
    pub total_tokens: u64,
    /// How the prompt was served (OpenAI's field): tokens reused from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptTokensDetails {
    /// Prompt tokens reused from the KV cache, not processed again.
    pub cached_tokens: u64,
}

impl Usage {
    /// Usage from the two counts.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: None,
        }
    }

    /// With the count of prompt tokens that came from the cache.
    pub fn with_cached(mut self, cached_tokens: u64) -> Self {
        self.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens });
        self
    }

    /// Prompt tokens that came from the cache (0 when not reported).
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details.map_or(0, |d| d.cached_tokens)
    }
}

/// An assistant message in a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseMessage {
    /// Always `"assistant"`.
    pub role: String,
    /// The answer.
    pub content: String,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatChoice {
    /// 0.
    pub index: u32,
    /// The answer.
    pub message: ResponseMessage,
    /// `"stop"` or `"length"`.
    pub finish_reason: String,
}

/// The answer to a non-streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// `"chat.completion"`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// Model that answered.
    pub model: String,
    /// One choice.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
}

impl ChatCompletion {
    /// A whole answer: one assistant message.
    pub fn answer(
        id: String,
        model: String,
        content: String,
        finish_reason: String,
        usage: Usage,
    ) -> Self {
        Self {
            id,
            object: "chat.completion".into(),
            created: created_now(),
            model,
            choices: vec![ChatChoice {
                index: 0,
                message: ResponseMessage {
                    role: "assistant".into(),
                    content,
                },
                finish_reason,
            }],
            usage,
        }
    }
}

/// The incremental part of a streamed chat choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delta {
    /// Present on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice in a streamed chat chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChunkChoice {
    /// 0.
    pub index: u32,
    /// New text.
    pub delta: Delta,
    /// Set on the last content chunk.
    pub finish_reason: Option<String>,
}

/// `data: {chat.completion.chunk}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatCompletionChunk {
    /// Same for every chunk of a stream.
    pub id: String,
    /// `"chat.completion.chunk"`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// Model.
    pub model: String,
    /// Zero (usage chunk) or one choice.
    pub choices: Vec<ChunkChoice>,
    /// Only on the final usage chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One choice of a text completion (streamed or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TextChoice {
    /// 0.
    pub index: u32,
    /// Text (the delta, when streamed).
    pub text: String,
    /// `"stop"`, `"length"`, or null mid-stream.
    pub finish_reason: Option<String>,
    /// Always null.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::null_schema))]
    pub logprobs: Option<()>,
}

/// The answer to `/v1/completions` (`object: "text_completion"`), also each streamed chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TextCompletion {
    /// `cmpl-…`.
    pub id: String,
    /// `"text_completion"`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// Model.
    pub model: String,
    /// Zero (usage chunk) or one choice.
    pub choices: Vec<TextChoice>,
    /// Token counts (always on the non-streamed answer; on the usage chunk when streamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl TextCompletion {
    /// A whole answer: one text choice, with its usage.
    pub fn answer(
        id: String,
        model: String,
        text: String,
        finish_reason: String,
        usage: Usage,
    ) -> Self {
        Self {
            id,
            object: "text_completion".into(),
            created: created_now(),
            model,
            choices: vec![TextChoice {
                index: 0,
                text,
                finish_reason: Some(finish_reason),
                logprobs: None,
            }],
            usage: Some(usage),
        }
    }
}

/// Unix seconds, as OpenAI's `created`.
pub fn created_now() -> u64 {
    crate::unix_timestamp() as u64
}

/// Which OpenAI object a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `chat.completion` / `chat.completion.chunk`.
    Chat,
    /// `text_completion`.
    Text,
}

impl ObjectKind {
    /// The id prefix OpenAI uses: `chatcmpl` or `cmpl`.
    pub fn id_prefix(self) -> &'static str {
        match self {
            ObjectKind::Chat => "chatcmpl",
            ObjectKind::Text => "cmpl",
        }
    }
}

/// Shapes the chunks of one streamed OpenAI response (same id, model and
/// `created` on each; the first chat chunk carries `role`), as JSON for `data:`
/// lines. Both tiers stream through it.
#[derive(Debug, Clone)]
pub struct ChunkShaper {
    kind: ObjectKind,
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
}

impl ChunkShaper {
    /// A shaper for one response.
    pub fn new(kind: ObjectKind, id: String, model: String) -> Self {
        Self {
            kind,
            id,
            model,
            created: created_now(),
            role_sent: kind == ObjectKind::Text,
        }
    }

    /// A chunk with new text.
    pub fn text(&mut self, text: String) -> String {
        self.choice(Some(text), None)
    }

    /// The last content chunk: why generation ended (`"stop"`, `"length"`).
    pub fn finish(&mut self, reason: &str) -> String {
        self.choice(None, Some(reason.to_string()))
    }

    /// The usage chunk (no choices) sent before `[DONE]` when asked for.
    pub fn usage(&self, usage: Usage) -> String {
        self.render(None, Some(usage))
    }

    fn choice(&mut self, text: Option<String>, finish: Option<String>) -> String {
        let role = !std::mem::replace(&mut self.role_sent, true);
        self.render(Some((text, role, finish)), None)
    }

    fn render(
        &self,
        choice: Option<(Option<String>, bool, Option<String>)>,
        usage: Option<Usage>,
    ) -> String {
        let json = match self.kind {
            ObjectKind::Chat => serde_json::to_string(&ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk".into(),
                created: self.created,
                model: self.model.clone(),
                choices: choice
                    .map(|(content, role, finish_reason)| ChunkChoice {
                        index: 0,
                        delta: Delta {
                            role: role.then(|| "assistant".into()),
                            content,
                        },
                        finish_reason,
                    })
                    .into_iter()
                    .collect(),
                usage,
            }),
            ObjectKind::Text => serde_json::to_string(&TextCompletion {
                id: self.id.clone(),
                object: "text_completion".into(),
                created: self.created,
                model: self.model.clone(),
                choices: choice
                    .map(|(text, _, finish_reason)| TextChoice {
                        index: 0,
                        text: text.unwrap_or_default(),
                        finish_reason,
                        logprobs: None,
                    })
                    .into_iter()
                    .collect(),
                usage,
            }),
        };
        json.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_string_and_array_content() {
        let r: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},
               {"role":"user","content":[{"type":"text","text":"there"}]}],
               "stream":true,"stream_options":{"include_usage":true},"stop":"\n"}"#,
        )
        .unwrap();
        assert_eq!(r.messages[0].text(), "hi");
        assert_eq!(r.messages[1].text(), "there");
        assert!(r.sampling.stream && r.sampling.include_usage());
        assert_eq!(r.sampling.stop.unwrap().into_vec(), vec!["\n".to_string()]);
    }

    fn chat(extra: &str) -> ChatCompletionRequest {
        serde_json::from_str(&format!(
            r#"{{"messages":[{{"role":"user","content":"hi"}}]{extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn what_sdks_send_by_default_is_accepted() {
        // The OpenAI SDKs' defaults and harmless extras: nothing asked that is not served.
        let r = chat(
            r#","model":"m","n":1,"stream":true,"stream_options":{"include_usage":true},
               "user":"u-1","seed":7,"response_format":{"type":"text"},"logprobs":false,
               "top_logprobs":0,"tool_choice":"none","tools":[],"functions":[],
               "function_call":"auto","logit_bias":{},"parallel_tool_calls":false,
               "modalities":["text"],"store":false,"metadata":{"a":"b"},"service_tier":"auto",
               "top_p":0,"top_k":5,"repeat_penalty":1.1,"frequency_penalty":-2,"presence_penalty":2"#,
        );
        assert_eq!(r.check(), Ok(()));
        let c: CompletionRequest = serde_json::from_str(
            r#"{"prompt":"x","n":1,"best_of":1,"echo":false,"suffix":"","logprobs":null,"user":"u"}"#,
        )
        .unwrap();
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn each_field_not_served_is_refused_by_name() {
        for (extra, field) in [
            (r#","n":2"#, "n"),
            (r#","n":0"#, "n"),
            (r#","best_of":3"#, "best_of"),
            (r#","logit_bias":{"50256":-100}"#, "logit_bias"),
            (r#","logprobs":true"#, "logprobs"),
            (r#","logprobs":0"#, "logprobs"),
            (r#","top_logprobs":3"#, "top_logprobs"),
            (r#","echo":true"#, "echo"),
            (r#","suffix":"}""#, "suffix"),
            (
                r#","tools":[{"type":"function","function":{"name":"f"}}]"#,
                "tools",
            ),
            (r#","tool_choice":"required""#, "tool_choice"),
            (
                r#","tool_choice":{"type":"function","function":{"name":"f"}}"#,
                "tool_choice",
            ),
            (r#","functions":[{"name":"f"}]"#, "functions"),
            (r#","function_call":{"name":"f"}"#, "function_call"),
            (
                r#","response_format":{"type":"json_object"}"#,
                "response_format",
            ),
            (
                r#","response_format":{"type":"json_schema","json_schema":{}}"#,
                "response_format",
            ),
            (r#","modalities":["text","audio"]"#, "modalities"),
            (r#","audio":{"voice":"alloy","format":"wav"}"#, "audio"),
            (r#","top_k":1001"#, "top_k"),
            (r#","repeat_penalty":0.05"#, "repeat_penalty"),
            (r#","frequency_penalty":2.5"#, "frequency_penalty"),
            (r#","presence_penalty":-3"#, "presence_penalty"),
            (r#","top_p":-0.1"#, "top_p"),
            (r#","temperature":2.5"#, "temperature"),
        ] {
            let e = chat(extra).check().unwrap_err();
            assert_eq!(
                (e.status, e.field.as_deref()),
                (422, Some(field)),
                "{extra}: {e:?}"
            );
            assert!(e.message.starts_with(field), "{}", e.message);
        }
    }

    #[test]
    fn image_and_audio_parts_are_refused_where_they_are() {
        let r: ChatCompletionRequest = serde_json::from_str(
            r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":[
                {"type":"text","text":"what is this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}}]}]}"#,
        )
        .unwrap();
        let e = r.check().unwrap_err();
        assert_eq!(e.field.as_deref(), Some("messages[1].content[1].type"));
        assert!(e.message.contains("image_url"), "{}", e.message);
        let audio = chat("").messages[0].clone();
        let mut r = chat("");
        r.messages = vec![
            audio,
            ChatMessage {
                role: "user".into(),
                content: Some(MessageContent::Parts(vec![ContentPart {
                    kind: "input_audio".into(),
                    text: None,
                }])),
            },
        ];
        assert_eq!(
            r.check().unwrap_err().field.as_deref(),
            Some("messages[1].content[0].type")
        );
    }

    #[test]
    fn the_message_count_is_bounded() {
        let mut r = chat("");
        r.messages = vec![ChatMessage::new("user", ""); MAX_MESSAGES];
        assert_eq!(r.check(), Ok(()));
        r.messages.push(ChatMessage::new("user", ""));
        let e = r.check().unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (422, Some("messages")));
        assert!(
            e.message.contains("1025") && e.message.contains("1024"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_knobs_go_across_under_the_cerebrum_names() {
        let r = chat(r#","top_p":0,"top_k":3,"repeat_penalty":1.3,"seed":9,"cache_prompt":false"#);
        let x = r.sampling.extras();
        assert_eq!(
            (x.top_p, x.top_k, x.repeat_penalty, x.seed, x.cache_prompt),
            (Some(0.0), Some(3), Some(1.3), Some(9), Some(false))
        );
        // Serialised for the node, they keep their names.
        let v = serde_json::to_value(&x).unwrap();
        assert_eq!(
            (v["top_k"].as_i64(), v["top_p"].as_f64()),
            (Some(3), Some(0.0))
        );
        // Nothing unsupported is written when nothing was asked.
        let plain = serde_json::to_value(chat("")).unwrap();
        assert!(
            plain.get("n").is_none() && plain.get("tools").is_none(),
            "{plain}"
        );
    }

    #[test]
    fn max_completion_tokens_wins() {
        let s = OpenAiSampling {
            max_tokens: Some(5),
            max_completion_tokens: Some(9),
            ..Default::default()
        };
        assert_eq!(s.max_tokens(), Some(9));
    }

    #[test]
    fn shaper_sends_the_role_once_and_keeps_the_id() {
        let mut chat = ChunkShaper::new(ObjectKind::Chat, "chatcmpl-1".into(), "m".into());
        let a: serde_json::Value = serde_json::from_str(&chat.text("Hel".into())).unwrap();
        let b: serde_json::Value = serde_json::from_str(&chat.text("lo".into())).unwrap();
        let f: serde_json::Value = serde_json::from_str(&chat.finish("stop")).unwrap();
        let u: serde_json::Value = serde_json::from_str(&chat.usage(Usage::new(1, 2))).unwrap();
        assert_eq!(a["choices"][0]["delta"]["role"], "assistant");
        assert!(b["choices"][0]["delta"].get("role").is_none());
        assert_eq!(f["choices"][0]["finish_reason"], "stop");
        assert_eq!(u["choices"].as_array().unwrap().len(), 0);
        assert!([&a, &b, &f, &u].iter().all(|c| c["id"] == "chatcmpl-1"));
        // A chat that ends before any text still names the role once.
        let mut empty = ChunkShaper::new(ObjectKind::Chat, "c".into(), "m".into());
        let f: serde_json::Value = serde_json::from_str(&empty.finish("length")).unwrap();
        assert_eq!(f["choices"][0]["delta"]["role"], "assistant");
        let mut text = ChunkShaper::new(ObjectKind::Text, "cmpl-1".into(), "m".into());
        let t: serde_json::Value = serde_json::from_str(&text.text("x".into())).unwrap();
        assert_eq!(
            (t["object"].as_str(), t["choices"][0]["text"].as_str()),
            (Some("text_completion"), Some("x"))
        );
    }

    #[test]
    fn usage_chunk_has_no_choices() {
        let c = ChatCompletionChunk {
            id: "x".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "m".into(),
            choices: vec![],
            usage: Some(Usage::new(3, 4)),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["usage"]["total_tokens"], 7);
        assert!(v["choices"].as_array().unwrap().is_empty());
    }
}
