//! The subset of the OpenAI API both tiers serve, so every OpenAI client works.
//!
//! Requests accept what OpenAI SDKs send (string or array `content`, string or
//! array `stop`/`prompt`) and ignore fields we do not use.

use serde::{Deserialize, Serialize};

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
    /// `"text"` (other types are ignored).
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
    /// (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
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
}

impl OpenAiSampling {
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
