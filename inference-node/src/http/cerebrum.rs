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
/// Every knob given is honoured as given: `top_p: 0` keeps only the most likely token.
pub fn sampling_from(
    temperature: f32,
    extras: &SamplingExtras,
) -> Result<SamplingParams, ApiError> {
    validate::in_range_f32("temperature", temperature, 0.0, MAX_TEMPERATURE)?;
    extras.check()?;
    let defaults = SamplingParams::default();
    Ok(SamplingParams {
        temperature,
        top_p: extras.top_p.unwrap_or(defaults.top_p),
        top_k: extras.top_k.unwrap_or(defaults.top_k),
        seed: extras.seed,
        repeat_penalty: extras.repeat_penalty.unwrap_or(defaults.repeat_penalty),
        frequency_penalty: extras
            .frequency_penalty
            .unwrap_or(defaults.frequency_penalty),
        presence_penalty: extras.presence_penalty.unwrap_or(defaults.presence_penalty),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_given_reaches_the_sampler_as_given() {
        let extras = SamplingExtras {
            top_p: Some(0.0),
            top_k: Some(7),
            seed: Some(42),
            repeat_penalty: Some(1.3),
            frequency_penalty: Some(0.5),
            presence_penalty: Some(-0.25),
            cache_prompt: None,
        };
        let p = sampling_from(0.8, &extras).unwrap();
        assert_eq!(
            p,
            SamplingParams {
                temperature: 0.8,
                top_p: 0.0,
                top_k: 7,
                seed: Some(42),
                repeat_penalty: 1.3,
                frequency_penalty: 0.5,
                presence_penalty: -0.25,
            }
        );
        // top_p 0 is OpenAI's smallest nucleus: the most likely token only, not "off".
        assert!(p.is_greedy());
        let defaults = sampling_from(0.8, &SamplingExtras::default()).unwrap();
        assert_eq!(
            defaults,
            SamplingParams {
                temperature: 0.8,
                ..SamplingParams::default()
            }
        );
        assert!(!defaults.is_greedy());
    }

    #[test]
    fn out_of_range_knobs_are_named() {
        for (extras, field) in [
            (
                SamplingExtras {
                    top_k: Some(-1),
                    ..Default::default()
                },
                "top_k",
            ),
            (
                SamplingExtras {
                    repeat_penalty: Some(f32::NAN),
                    ..Default::default()
                },
                "repeat_penalty",
            ),
            (
                SamplingExtras {
                    presence_penalty: Some(2.5),
                    ..Default::default()
                },
                "presence_penalty",
            ),
        ] {
            let e = sampling_from(0.2, &extras).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field));
        }
    }
}
