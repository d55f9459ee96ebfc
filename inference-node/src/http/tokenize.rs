//! `POST /tokenize`: how many tokens a prompt or conversation is for a model,
//! so a caller (the orchestrator) can fit a request to the context before sending it.

use axum::Json;
use axum::extract::State;
use cerebrum_shared::cerebrum::{TokenizeRequest, TokenizeResponse};
use cerebrum_shared::error::{ApiError, Dialect};

use super::cerebrum::check_prompt;
use super::openai::chat_turns;
use super::{ApiJson, AppState, HttpError};
use crate::engine::{EngineError, Prompt};

/// `POST /tokenize` (loads the model if it is not loaded).
pub async fn tokenize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> Result<Json<TokenizeResponse>, HttpError> {
    let err = |e| HttpError(e, Dialect::Cerebrum);
    let prompt = match (req.content, req.messages) {
        (Some(text), None) => {
            check_prompt(&state, "content", &text).map_err(err)?;
            Prompt::Text(text)
        }
        (None, Some(messages)) => chat_turns(&state, &messages).map_err(err)?,
        _ => {
            return Err(err(ApiError::invalid_field(
                "content",
                "send exactly one of content and messages",
            )));
        }
    };
    let name = state
        .registry
        .resolve_name(req.model.as_deref())
        .map_err(|e| err(e.into()))?;
    let lease = state.registry.get(&name).await.map_err(|e| err(e.into()))?;
    let tokens = tokio::task::spawn_blocking(move || {
        let t = lease.tokenizer();
        t.tokens(&prompt).map(|tokens| (tokens, t.ctx_per_seq))
    })
    .await
    .map_err(|_| err(EngineError::WorkerGone.into()))?
    .map_err(|e| err(e.into()))?;
    let (tokens, context) = tokens;
    Ok(Json(TokenizeResponse {
        count: tokens.len() as u64,
        tokens: if req.count_only {
            Vec::new()
        } else {
            tokens.iter().map(|t| t.0).collect()
        },
        context_length: u64::from(context),
        model: name,
    }))
}
