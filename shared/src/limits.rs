//! Request defaults and limits both tiers and the client use: each written once.

/// `max_tokens` when a request gives none (the original's default).
pub const DEFAULT_MAX_TOKENS: u32 = 512;
/// `temperature` when a request gives none (the original's default).
pub const DEFAULT_TEMPERATURE: f32 = 0.2;
/// `language` of a `/v1/complete` request that gives none (the original's default).
pub const DEFAULT_LANGUAGE: &str = "python";
/// Highest `temperature` either tier accepts.
pub const MAX_TEMPERATURE: f32 = 2.0;
/// Highest `max_tokens` the orchestrator accepts (the original's limit).
pub const MAX_TOKENS_ORCHESTRATOR: u32 = 2048;
/// Highest `max_tokens` the node accepts.
pub const MAX_TOKENS_NODE: u32 = 4096;
/// Largest request body either tier reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest prompt the orchestrator reads, in characters: a bound on its own work.
/// What reaches the model is fitted to the model's context in tokens (the
/// original refused over 16,000 characters; a pasted file now gets an answer).
pub const MAX_PROMPT_CHARS: usize = 262_144;
/// Most chat messages one request may hold, on both tiers. Characters bound the
/// text, not the turns: 28,000 empty messages are a small body but each one is
/// rendered by the chat template and costs template tokens (ChatML: ~5 each), so
/// more than ~400 can never fit the default 2048-token context and 1024 fill the
/// largest common one (~8k tokens) on their own. No real conversation comes near.
pub const MAX_MESSAGES: usize = 1024;
/// Highest `top_k` either tier accepts (0 = off).
pub const MAX_TOP_K: i32 = 1000;
/// Lowest `repeat_penalty` either tier accepts (1.0 = off).
pub const MIN_REPEAT_PENALTY: f32 = 0.1;
/// Highest `repeat_penalty` either tier accepts.
pub const MAX_REPEAT_PENALTY: f32 = 3.0;
/// `frequency_penalty` and `presence_penalty` lie in ±this (OpenAI's range; 0 = off).
pub const MAX_TOKEN_PENALTY: f32 = 2.0;
