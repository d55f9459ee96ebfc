//! HTTP handlers (thin), the steps they share, and the one place errors become responses.

pub mod cerebrum;
pub mod openai;
pub mod ops;

use std::sync::atomic::Ordering;
use std::time::Instant;

use cerebrum_shared::error::{ApiError, ErrorCode};

use crate::prompt::{PromptInput, PromptPlan, prepare};
use crate::routing::RouteDecision;
use crate::state::{AppState, Metrics};
use crate::upstream::{Piece, TokenStream, UpstreamError};

pub use cerebrum_service::http::{ApiJson, HttpError, request_id};
pub use cerebrum_shared::error::dialect_of;

/// 413 for prompts over the configured size.
pub fn check_prompt_size(state: &AppState, field: &str, chars: usize) -> Result<(), ApiError> {
    if chars > state.config.max_prompt_chars {
        return Err(ApiError::new(
            ErrorCode::PromptTooLarge,
            format!(
                "{field} is {chars} characters; at most {} are accepted",
                state.config.max_prompt_chars
            ),
        ));
    }
    Ok(())
}

/// Runs prompt preparation and logs what it did with the request id.
pub fn prepare_logged(state: &AppState, input: &PromptInput<'_>, request_id: &str) -> PromptPlan {
    let plan = prepare(input, &state.prepare);
    if plan.applied {
        Metrics::inc(&state.metrics.prepared);
        let saved = plan
            .stats
            .original_chars
            .saturating_sub(plan.stats.final_chars);
        state
            .metrics
            .chars_saved
            .fetch_add(saved as u64, Ordering::Relaxed);
    }
    tracing::info!(request_id, applied = plan.applied, stats = %plan.stats, "prompt prepared");
    plan
}

/// Picks the model (served-model list from the node, cached).
pub async fn route(
    state: &AppState,
    explicit: Option<&str>,
    language: Option<&str>,
    text: &str,
    request_id: &str,
) -> Result<RouteDecision, ApiError> {
    // An open breaker answers at once: no model-list lookup against a dead node.
    if state.upstream.breaker.state() == crate::upstream::BreakerState::Open {
        let retry_after = state.upstream.breaker.retry_after_secs();
        return Err(UpstreamError::BreakerOpen { retry_after }.to_api_error());
    }
    let served = state.node.models();
    let decision = state
        .config
        .routing
        .decide(explicit, language, text, &served)
        .map_err(|e| ApiError::new(ErrorCode::ModelNotFound, e.to_string()))?;
    tracing::info!(request_id, model = %decision.model, language = ?decision.language,
        reason = ?decision.reason, "routed");
    Ok(decision)
}

/// Opens the upstream stream, mapping failures to the client's error.
pub async fn open(
    state: &AppState,
    path: &str,
    body: serde_json::Value,
    request_id: &str,
) -> Result<TokenStream, ApiError> {
    state.upstream.open_stream(path, body, request_id).await.map_err(|e| {
        tracing::warn!(request_id, error = %e, "upstream refused or failed before the first token");
        e.to_api_error()
    })
}

/// A whole answer, for non-streamed requests.
pub struct Collected {
    /// The text.
    pub text: String,
    /// Generated tokens (the node's count when it gave one).
    pub tokens: u64,
    /// Prompt tokens, when known.
    pub prompt_tokens: u64,
    /// Of those, reused from the node's KV cache, when it said.
    pub cached_tokens: Option<u64>,
    /// `"stop"` or `"length"`.
    pub finish_reason: String,
    /// Seconds from the request to the last token.
    pub seconds: f64,
}

/// Reads a stream to its end.
pub async fn collect(
    mut stream: TokenStream,
    started: Instant,
) -> Result<Collected, UpstreamError> {
    let mut text = String::new();
    let mut pieces = 0;
    while let Some(piece) = stream.next().await {
        match piece? {
            Piece::Text(t) => {
                pieces += 1;
                text.push_str(&t);
            }
            Piece::Finished {
                finish_reason,
                prompt_tokens,
                completion_tokens,
                cached_tokens,
            } => {
                return Ok(Collected {
                    text,
                    tokens: completion_tokens.unwrap_or(pieces),
                    prompt_tokens: prompt_tokens.unwrap_or(0),
                    cached_tokens,
                    finish_reason,
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
        }
    }
    Err(UpstreamError::Broken("stream ended early".into()))
}
