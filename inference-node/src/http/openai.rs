//! The OpenAI API: `/v1/chat/completions` and `/v1/completions`, streamed or not.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, Dialect};
use cerebrum_shared::limits::{
    DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, MAX_MESSAGES, MAX_TOKENS_NODE,
};
use cerebrum_shared::openai::{
    ChatCompletion, ChatCompletionRequest, ChatMessage, ChunkShaper, CompletionRequest, ObjectKind,
    OneOrMany, OpenAiSampling, TextCompletion, Usage,
};
use cerebrum_shared::sse::OPENAI_DONE;
use cerebrum_shared::validate;
use futures::StreamExt;

use super::cerebrum::{check_prompt, sampling_from, stops_from};
use super::{ApiJson, AppState, Generation, HttpError};
use crate::engine::{GenEvent, GenerateRequest, Prompt};

fn err(e: ApiError) -> HttpError {
    HttpError(e, Dialect::OpenAi)
}

fn build(prompt: Prompt, s: &OpenAiSampling) -> Result<GenerateRequest, ApiError> {
    let max_tokens = s.max_tokens().unwrap_or(DEFAULT_MAX_TOKENS);
    validate::in_range("max_tokens", max_tokens, 1, MAX_TOKENS_NODE)?;
    let sampling = sampling_from(s.temperature.unwrap_or(DEFAULT_TEMPERATURE), &s.extras())?;
    let stop = stops_from(s.stop.clone().map(OneOrMany::into_vec))?;
    Ok(GenerateRequest {
        prompt,
        max_tokens,
        sampling,
        stop,
        cache_prompt: s.cache_prompt.unwrap_or(true),
    })
}

/// A conversation as the engine takes it: roles checked, sizes checked.
pub(super) fn chat_turns(state: &AppState, messages: &[ChatMessage]) -> Result<Prompt, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid_field(
            "messages",
            "must hold at least one message",
        ));
    }
    if messages.len() > MAX_MESSAGES {
        return Err(ApiError::invalid_field(
            "messages",
            format!(
                "holds {} messages; at most {MAX_MESSAGES} are accepted",
                messages.len()
            ),
        ));
    }
    let mut turns = Vec::with_capacity(messages.len());
    let mut total = 0usize;
    for (i, m) in messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(ApiError::invalid_field(
                    format!("messages[{i}].role"),
                    format!("'{other}' is not one of system, user, assistant"),
                ));
            }
        };
        let text = m.text();
        total += text.len();
        turns.push((role.to_string(), text));
    }
    let joined: String = turns.iter().map(|(_, t)| t.as_str()).collect();
    check_prompt(state, "messages", &joined)?;
    debug_assert!(total == joined.len());
    Ok(Prompt::Chat(turns))
}

fn completion_id(kind: ObjectKind) -> String {
    format!("{}-{}", kind.id_prefix(), uuid::Uuid::new_v4().simple())
}

/// `POST /v1/chat/completions`.
pub async fn chat(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, HttpError> {
    req.check().map_err(err)?;
    let prompt = chat_turns(&state, &req.messages).map_err(err)?;
    let request = build(prompt, &req.sampling).map_err(err)?;
    let generation = state
        .start(req.model.as_deref(), request)
        .await
        .map_err(err)?;
    answer(generation, ObjectKind::Chat, &req.sampling).await
}

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, HttpError> {
    req.check().map_err(err)?;
    let mut prompts = req.prompt.clone().into_vec();
    if prompts.len() != 1 {
        return Err(err(ApiError::invalid_field(
            "prompt",
            "send exactly one prompt per request",
        )));
    }
    let prompt = prompts.remove(0);
    check_prompt(&state, "prompt", &prompt).map_err(err)?;
    let request = build(Prompt::Text(prompt), &req.sampling).map_err(err)?;
    let generation = state
        .start(req.model.as_deref(), request)
        .await
        .map_err(err)?;
    answer(generation, ObjectKind::Text, &req.sampling).await
}

/// The generation streamed (`stream: true`) or collected into one answer in the
/// route's shape.
async fn answer(
    generation: Generation,
    kind: ObjectKind,
    sampling: &OpenAiSampling,
) -> Result<Response, HttpError> {
    let id = completion_id(kind);
    if sampling.stream {
        return Ok(stream(generation, id, sampling.include_usage(), kind));
    }
    let model = generation.model.clone();
    let done = generation.collect().await.map_err(err)?;
    let usage = Usage::new(
        u64::from(done.prompt_tokens),
        u64::from(done.completion_tokens),
    )
    .with_cached(u64::from(done.cached_tokens));
    let (text, reason) = (done.text, done.reason.as_str().to_string());
    Ok(match kind {
        ObjectKind::Chat => {
            Json(ChatCompletion::answer(id, model, text, reason, usage)).into_response()
        }
        ObjectKind::Text => {
            Json(TextCompletion::answer(id, model, text, reason, usage)).into_response()
        }
    })
}

fn stream(generation: Generation, id: String, include_usage: bool, kind: ObjectKind) -> Response {
    let mut shaper = ChunkShaper::new(kind, id, generation.model.clone());
    let events = generation.events.flat_map(move |event| {
        let mut out: Vec<String> = Vec::new();
        match event {
            GenEvent::Token { text, .. } => out.push(shaper.text(text)),
            GenEvent::Finished {
                reason,
                prompt_tokens,
                cached_tokens,
                completion_tokens,
                ..
            } => {
                out.push(shaper.finish(reason.as_str()));
                if include_usage {
                    let usage = Usage::new(u64::from(prompt_tokens), u64::from(completion_tokens))
                        .with_cached(u64::from(cached_tokens));
                    out.push(shaper.usage(usage));
                }
                out.push(OPENAI_DONE.to_string());
            }
            GenEvent::Failed(e) => {
                let api: ApiError = e.into();
                out.push(api.body(Dialect::OpenAi).to_string());
                out.push(OPENAI_DONE.to_string());
            }
            GenEvent::Started { .. } => {}
        }
        futures::stream::iter(
            out.into_iter()
                .map(|d| Ok::<_, Infallible>(Event::default().data(d))),
        )
    });
    Sse::new(events).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openai_routes_read_every_sampler_knob() {
        // What the orchestrator sends for a `/v1/complete` with top_k and repeat_penalty.
        let req: ChatCompletionRequest = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":0.7,"top_p":0,
                "top_k":5,"repeat_penalty":1.25,"frequency_penalty":0.5,"presence_penalty":0.25,
                "seed":3,"max_tokens":9}"#,
        )
        .unwrap();
        let built = build(Prompt::Text("x".into()), &req.sampling).unwrap();
        let s = built.sampling;
        assert_eq!(
            (s.temperature, s.top_p, s.top_k, s.repeat_penalty, s.seed),
            (0.7, 0.0, 5, 1.25, Some(3))
        );
        assert_eq!((s.frequency_penalty, s.presence_penalty), (0.5, 0.25));
        assert_eq!(built.max_tokens, 9);
        assert!(s.is_greedy(), "top_p 0 takes the most likely token");
    }
}
