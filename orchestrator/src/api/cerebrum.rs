//! The original Cerebrum API: `/v1/complete` and `/v1/complete/stream`.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::cerebrum::{
    CompleteRequest, CompleteResponse, FitReport, StreamDone, StreamError, StreamToken,
};
use cerebrum_shared::error::{ApiError, Dialect, to_json};
use cerebrum_shared::limits::{MAX_TEMPERATURE, MAX_TOKENS_ORCHESTRATOR};
use cerebrum_shared::openai::ChatMessage;
use cerebrum_shared::prepare::Preparation;
use cerebrum_shared::validate;
use serde_json::json;

use super::{
    ApiJson, HttpError, Newest, Sendable, check_prompt_size, collect, fit_request, open,
    prepare_logged, request_id, route,
};
use crate::app::paths;
use crate::prompt::{PromptInput, PromptPlan};
use crate::routing::RouteDecision;
use crate::state::AppState;
use crate::upstream::{Piece, TokenStream};

fn err(e: ApiError) -> HttpError {
    HttpError(e, Dialect::Cerebrum)
}

struct Prepared {
    req: CompleteRequest,
    plan: PromptPlan,
    decision: RouteDecision,
    request_id: String,
    /// The user turn as sent, after fitting.
    prompt: String,
    /// `max_tokens` as sent.
    max_tokens: u32,
    /// How it was fitted to the context, when the node counted.
    fit: Option<FitReport>,
}

async fn prepare_request(
    state: &AppState,
    headers: &HeaderMap,
    req: CompleteRequest,
) -> Result<Prepared, ApiError> {
    validate::non_empty("prompt", &req.prompt)?;
    check_prompt_size(state, "prompt", req.prompt.chars().count())?;
    // Honoured up to the limit, never silently cut (design §4).
    validate::in_range("max_tokens", req.max_tokens, 1, MAX_TOKENS_ORCHESTRATOR)?;
    validate::in_range_f32("temperature", req.temperature, 0.0, MAX_TEMPERATURE)?;
    req.sampling.check()?;
    let request_id = request_id(headers);
    let plan = prepare_logged(
        state,
        &PromptInput {
            text: &req.prompt,
            instruction: None,
            language: Some(&req.language),
        },
        &request_id,
    );
    let decision = route(
        state,
        req.model.as_deref(),
        Some(&req.language),
        &req.prompt,
        &request_id,
    )
    .await?;
    let mut sendable = Sendable::Messages(vec![ChatMessage::new("user", &plan.prompt)]);
    let newest = Newest {
        index: 0,
        input: PromptInput {
            text: &req.prompt,
            instruction: None,
            language: Some(&req.language),
        },
    };
    let (max_tokens, fit) = fit_request(
        state,
        &decision.model,
        &mut sendable,
        Some(newest),
        req.max_tokens,
        &request_id,
    )
    .await?;
    let Sendable::Messages(mut messages) = sendable else {
        unreachable!("a conversation stays a conversation")
    };
    let prompt = messages.pop().map(|m| m.text()).unwrap_or_default();
    Ok(Prepared {
        req,
        plan,
        decision,
        request_id,
        prompt,
        max_tokens,
        fit,
    })
}

/// The node request: an OpenAI chat with the prepared prompt as the user turn,
/// so the model's chat template applies; every sampler knob given goes along
/// under its own name (the node's OpenAI routes read them all).
fn upstream_body(p: &Prepared) -> serde_json::Value {
    let mut body = json!({
        "model": p.decision.model,
        "messages": [{"role": "user", "content": p.prompt}],
        "max_tokens": p.max_tokens,
        "temperature": p.req.temperature,
    });
    if let Some(stop) = &p.req.stop {
        body["stop"] = json!(stop);
    }
    super::extras_into(&p.req.sampling, &mut body);
    body
}

/// Parses, prepares and routes the request, then opens the node's stream.
async fn start(
    state: &AppState,
    headers: &HeaderMap,
    req: CompleteRequest,
) -> Result<(Prepared, TokenStream), ApiError> {
    let p = prepare_request(state, headers, req).await?;
    // The node's OpenAI chat route: it applies the model's chat template.
    let stream = open(state, paths::CHAT, upstream_body(&p), &p.request_id).await?;
    Ok((p, stream))
}

/// `POST /v1/complete`.
pub async fn complete(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<Response, HttpError> {
    let started = Instant::now();
    let (p, stream) = start(&state, &headers, req).await.map_err(err)?;
    let done = collect(stream, started)
        .await
        .map_err(|e| err(e.to_api_error()))?;
    tracing::info!(request_id = %p.request_id, model = %p.decision.model, tokens = done.tokens,
        seconds = done.seconds, "completion done");
    Ok(Json(CompleteResponse {
        result: done.text,
        language: p.req.language.clone(),
        source: "vps".into(),
        model_used: p.decision.model.clone(),
        tokens_generated: done.tokens,
        inference_time_seconds: done.seconds,
        timestamp: cerebrum_shared::unix_timestamp(),
        preparation: p.plan.applied.then(|| Preparation::from(&p.plan)),
        fit: p.fit,
    })
    .into_response())
}

/// `POST /v1/complete/stream`: tokens as they come, then a `done` event.
pub async fn complete_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<Response, HttpError> {
    let started = Instant::now();
    let (p, stream) = start(&state, &headers, req).await.map_err(err)?;
    let relay = Relay {
        preparation: Some(Preparation::from(&p.plan)),
        fit: p.fit,
        stream,
        count: 0,
        started,
        language: p.req.language,
        model: p.decision.model,
        request_id: p.request_id,
        finished: false,
    };
    let events = futures::stream::unfold(relay, |mut r| async move {
        let data = r.step().await?;
        Some((Ok::<_, Infallible>(Event::default().data(data)), r))
    });
    Ok(Sse::new(events).into_response())
}

/// Re-emits the node's stream as Cerebrum events.
struct Relay {
    /// Preparation figures for the `done` event.
    preparation: Option<Preparation>,
    /// How the request was fitted, for the `done` event.
    fit: Option<FitReport>,
    stream: TokenStream,
    count: u64,
    started: Instant,
    language: String,
    model: String,
    request_id: String,
    finished: bool,
}

impl Relay {
    async fn step(&mut self) -> Option<String> {
        if self.finished {
            return None;
        }
        match self.stream.next().await {
            Some(Ok(Piece::Text(token))) => {
                self.count += 1;
                Some(to_json(&StreamToken {
                    token,
                    total_tokens: self.count,
                }))
            }
            Some(Ok(Piece::Finished {
                completion_tokens,
                prompt_tokens,
                cached_tokens,
                ..
            })) => {
                self.finished = true;
                let total = completion_tokens.unwrap_or(self.count);
                let secs = self.started.elapsed().as_secs_f64();
                tracing::info!(request_id = %self.request_id, model = %self.model, tokens = total,
                    seconds = secs, "stream complete");
                Some(to_json(&StreamDone {
                    done: true,
                    total_tokens: total,
                    inference_time: secs,
                    model: Some(self.model.clone()),
                    language: Some(self.language.clone()),
                    tokens_per_second: None,
                    finish_reason: None,
                    prompt_tokens,
                    cached_tokens,
                    timestamp: Some(cerebrum_shared::unix_timestamp()),
                    preparation: self.preparation.take(),
                    fit: self.fit,
                }))
            }
            Some(Err(e)) => {
                self.finished = true;
                tracing::warn!(request_id = %self.request_id, error = %e, tokens = self.count, "stream failed");
                let mut failure = e.to_api_error();
                // Once tokens flowed, any failure is a broken stream to the client.
                failure.code = cerebrum_shared::error::ErrorCode::StreamingFailed;
                Some(to_json(&StreamError::from(&failure)))
            }
            None => None,
        }
    }
}
