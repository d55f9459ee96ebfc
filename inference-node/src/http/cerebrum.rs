//! The original Cerebrum node API: `/v1/inference` and `/v1/inference/stream`.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::cerebrum::{
    InferenceRequest, InferenceResponse, SamplingExtras, StreamDone, StreamError, StreamToken,
};
use cerebrum_shared::error::{ApiError, Dialect, ErrorCode, to_json};
use cerebrum_shared::limits::{MAX_TEMPERATURE, MAX_TOKENS_NODE};
use cerebrum_shared::validate;
use futures::StreamExt;

use super::{ApiJson, AppState, HttpError};
use crate::engine::{GenEvent, GenerateRequest, Prompt, SamplingParams};

/// Checks ranges and builds the engine's sampler settings (shared with the OpenAI routes).
pub fn sampling_from(
    temperature: f32,
    extras: &SamplingExtras,
) -> Result<SamplingParams, ApiError> {
    validate::in_range_f32("temperature", temperature, 0.0, MAX_TEMPERATURE)?;
    let defaults = SamplingParams::default();
    let top_p = extras.top_p.unwrap_or(defaults.top_p);
    validate::in_range_f32("top_p", top_p, 0.0, 1.0)?;
    let top_k = extras.top_k.unwrap_or(defaults.top_k);
    validate::in_range("top_k", top_k, 0, 1000)?;
    let repeat_penalty = extras.repeat_penalty.unwrap_or(defaults.repeat_penalty);
    validate::in_range_f32("repeat_penalty", repeat_penalty, 0.1, 3.0)?;
    Ok(SamplingParams {
        temperature,
        top_p: if top_p <= 0.0 { 1.0 } else { top_p },
        top_k,
        seed: extras.seed,
        repeat_penalty,
    })
}

/// Checks stop sequences: at most 8, each 1..=64 characters.
pub fn stops_from(stop: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let stop = stop.unwrap_or_default();
    validate::in_range("stop", stop.len(), 0, 8)?;
    for s in &stop {
        validate::in_range("stop", s.chars().count(), 1, 64)?;
    }
    Ok(stop)
}

/// Checks a prompt's size before it reaches the tokenizer (413 when too large).
pub fn check_prompt(state: &AppState, field: &str, prompt: &str) -> Result<(), ApiError> {
    validate::non_empty(field, prompt)?;
    if prompt.len() > state.config.max_prompt_bytes {
        return Err(ApiError::new(
            ErrorCode::PromptTooLarge,
            format!(
                "{field} is {} bytes; the node accepts at most {}",
                prompt.len(),
                state.config.max_prompt_bytes
            ),
        ));
    }
    Ok(())
}

fn to_generate(
    state: &AppState,
    req: InferenceRequest,
) -> Result<(Option<String>, GenerateRequest), ApiError> {
    check_prompt(state, "prompt", &req.prompt)?;
    validate::in_range("max_tokens", req.max_tokens, 1, MAX_TOKENS_NODE)?;
    let sampling = sampling_from(req.temperature, &req.sampling)?;
    let stop = stops_from(req.stop)?;
    Ok((
        req.model,
        GenerateRequest {
            prompt: Prompt::Text(req.prompt),
            max_tokens: req.max_tokens,
            sampling,
            stop,
            cache_prompt: req.sampling.cache_prompt.unwrap_or(true),
        },
    ))
}

/// `POST /v1/inference`: the whole answer at once.
pub async fn inference(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<InferenceRequest>,
) -> Result<Response, HttpError> {
    let err = |e| HttpError(e, Dialect::Cerebrum);
    let (model, request) = to_generate(&state, req).map_err(err)?;
    let generation = state.start(model.as_deref(), request).await.map_err(err)?;
    let model = generation.model.clone();
    let done = generation.collect().await.map_err(err)?;
    Ok(Json(InferenceResponse {
        result: done.text,
        model,
        tokens_generated: u64::from(done.completion_tokens),
        prompt_tokens: u64::from(done.prompt_tokens),
        cached_tokens: u64::from(done.cached_tokens),
        inference_time_seconds: done.seconds,
        finish_reason: done.reason.as_str().to_string(),
        timestamp: cerebrum_shared::unix_timestamp(),
    })
    .into_response())
}

/// `POST /v1/inference/stream`: one SSE event per token, then a `done` event.
pub async fn inference_stream(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<InferenceRequest>,
) -> Result<Response, HttpError> {
    let err = |e| HttpError(e, Dialect::Cerebrum);
    let (model, request) = to_generate(&state, req).map_err(err)?;
    let generation = state.start(model.as_deref(), request).await.map_err(err)?;
    let model = generation.model.clone();
    let stream = generation.events.filter_map(move |event| {
        let json = match event {
            GenEvent::Token { text, total_tokens } => Some(to_json(&StreamToken {
                token: text,
                total_tokens: u64::from(total_tokens),
            })),
            GenEvent::Finished {
                reason,
                prompt_tokens,
                cached_tokens,
                completion_tokens,
                elapsed,
            } => {
                let secs = elapsed.as_secs_f64();
                Some(to_json(&StreamDone {
                    done: true,
                    total_tokens: u64::from(completion_tokens),
                    inference_time: secs,
                    model: Some(model.clone()),
                    language: None,
                    tokens_per_second: Some(if secs > 0.0 {
                        f64::from(completion_tokens) / secs
                    } else {
                        0.0
                    }),
                    finish_reason: Some(reason.as_str().to_string()),
                    prompt_tokens: Some(u64::from(prompt_tokens)),
                    cached_tokens: Some(u64::from(cached_tokens)),
                    timestamp: Some(cerebrum_shared::unix_timestamp()),
                    preparation: None,
                    fit: None,
                }))
            }
            GenEvent::Failed(e) => Some(to_json(&StreamError::from(&ApiError::from(e)))),
            GenEvent::Started { .. } => None,
        };
        std::future::ready(json.map(|j| Ok::<_, Infallible>(Event::default().data(j))))
    });
    Ok(Sse::new(stream).into_response())
}
