//! The OpenAI API: `/v1/chat/completions` and `/v1/completions`, streamed or not.
//! Large code prompts are prepared like Cerebrum ones (the system message is the
//! instruction), the model is routed, and the node's stream is re-emitted.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::cerebrum::FitReport;
use cerebrum_shared::error::{ApiError, Dialect, to_json};
use cerebrum_shared::headers;
use cerebrum_shared::limits::{DEFAULT_MAX_TOKENS, MAX_TOKENS_ORCHESTRATOR};
use cerebrum_shared::openai::{
    ChatCompletion, ChatCompletionRequest, ChatMessage, ChunkShaper, CompletionRequest, ObjectKind,
    OpenAiSampling, PromptTokensDetails, TextCompletion, Usage,
};
use cerebrum_shared::prepare::Preparation;
use cerebrum_shared::validate;
use serde_json::{Value, json};

use super::{
    ApiJson, HttpError, Newest, Sendable, check_prompt_size, collect, fit_request, open,
    prepare_logged, request_id, route,
};
use crate::app::paths;
use crate::prompt::{PromptInput, prepare};
use crate::state::AppState;
use crate::upstream::{Piece, TokenStream};

fn err(e: ApiError) -> HttpError {
    HttpError(e, Dialect::OpenAi)
}

/// Checks `max_tokens` against the orchestrator's limit and copies the
/// sampling fields into the node request (the rest was checked by the
/// request's own `check`).
fn sampling_into(s: &OpenAiSampling, body: &mut Value) -> Result<(), ApiError> {
    if let Some(m) = s.max_tokens() {
        validate::in_range("max_tokens", m, 1, MAX_TOKENS_ORCHESTRATOR)?;
        body["max_tokens"] = json!(m);
    }
    if let Some(t) = s.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(stop) = &s.stop {
        body["stop"] = json!(stop.clone().into_vec());
    }
    super::extras_into(&s.extras(), body);
    Ok(())
}

/// Fits what the request sends to the model's context, then builds the node
/// request with its sampling fields and the fitted `max_tokens`.
async fn fitted_body(
    state: &AppState,
    model: &str,
    mut sendable: Sendable,
    newest: Option<Newest<'_>>,
    sampling: &OpenAiSampling,
    request_id: &str,
) -> Result<(Value, Option<FitReport>), ApiError> {
    let asked = sampling.max_tokens().unwrap_or(DEFAULT_MAX_TOKENS);
    let (max_tokens, fit) =
        fit_request(state, model, &mut sendable, newest, asked, request_id).await?;
    let mut body = sendable.into_body(model);
    sampling_into(sampling, &mut body)?;
    body["max_tokens"] = json!(max_tokens);
    Ok((body, fit))
}

/// The headers that say what the orchestrator did to the request.
fn with_report(
    mut response: Response,
    preparation: &Preparation,
    fit: Option<&FitReport>,
) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&to_json(preparation)) {
        h.insert(headers::PREPARATION, v);
    }
    if let Some(fit) = fit
        && let Ok(v) = HeaderValue::from_str(&to_json(fit))
    {
        h.insert(headers::FIT, v);
    }
    response
}

/// `POST /v1/chat/completions`.
pub async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, HttpError> {
    let started = Instant::now();
    let rid = request_id(&headers);
    req.check().map_err(err)?;
    if req.messages.is_empty() {
        return Err(err(ApiError::invalid_field(
            "messages",
            "must hold at least one message",
        )));
    }
    let chars: usize = req.messages.iter().map(|m| m.text().chars().count()).sum();
    check_prompt_size(&state, "messages", chars).map_err(err)?;
    // Checked before any work; the node gets the fitted max_tokens below.
    sampling_into(&req.sampling, &mut json!({})).map_err(err)?;
    let last_user = req.messages.iter().rposition(|m| m.role == "user");
    let user_text = last_user
        .map(|i| req.messages[i].text())
        .unwrap_or_default();
    // The newest turn is prepared from its own words (the instruction is found
    // in it); system and assistant messages go as sent.
    let newest = PromptInput {
        text: &user_text,
        instruction: None,
        language: None,
    };
    let plan = prepare_logged(&state, &newest, &rid);
    let decision = route(
        &state,
        req.model.as_deref(),
        plan.language.as_deref(),
        &user_text,
        &rid,
    )
    .await
    .map_err(err)?;
    // Earlier user turns get the very preparation they got as the newest turn
    // (it is a pure function of the turn): history sent back becomes the same
    // tokens on the node, so its prefix cache serves every follow-up.
    let messages = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let prepared = if Some(i) == last_user {
                plan.applied.then(|| plan.prompt.clone())
            } else if m.role == "user" {
                let text = m.text();
                let p = prepare(
                    &PromptInput {
                        text: &text,
                        instruction: None,
                        language: None,
                    },
                    &state.prepare,
                );
                p.applied.then_some(p.prompt)
            } else {
                None
            };
            prepared.map_or_else(|| m.clone(), |p| ChatMessage::new("user", &p))
        })
        .collect();
    let sendable = Sendable::Messages(messages);
    let newest_turn = last_user.map(|index| Newest {
        index,
        input: newest,
    });
    let outbound = Outbound {
        kind: ObjectKind::Chat,
        model: decision.model,
        sendable,
        newest: newest_turn,
        report: Preparation::from(&plan),
    };
    answer(&state, outbound, &req.sampling, rid, started).await
}

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, HttpError> {
    let started = Instant::now();
    let rid = request_id(&headers);
    req.check().map_err(err)?;
    let prompts = req.prompt.clone().into_vec();
    let [prompt] = prompts.as_slice() else {
        return Err(err(ApiError::invalid_field(
            "prompt",
            "send exactly one prompt per request",
        )));
    };
    validate::non_empty("prompt", prompt).map_err(err)?;
    check_prompt_size(&state, "prompt", prompt.chars().count()).map_err(err)?;
    sampling_into(&req.sampling, &mut json!({})).map_err(err)?;
    let input = PromptInput {
        text: prompt,
        instruction: None,
        language: None,
    };
    let plan = prepare_logged(&state, &input, &rid);
    let decision = route(
        &state,
        req.model.as_deref(),
        plan.language.as_deref(),
        prompt,
        &rid,
    )
    .await
    .map_err(err)?;
    let outbound = Outbound {
        kind: ObjectKind::Text,
        model: decision.model,
        sendable: Sendable::Text(plan.prompt.clone()),
        newest: Some(Newest { index: 0, input }),
        report: Preparation::from(&plan),
    };
    answer(&state, outbound, &req.sampling, rid, started).await
}

/// A request prepared and routed, on its way to the node.
struct Outbound<'a> {
    /// Which of the two routes: the node route it goes to and the answer's shape.
    kind: ObjectKind,
    /// The routed model.
    model: String,
    /// What goes to the node, before it is fitted to the model's context.
    sendable: Sendable,
    /// The newest user turn, the part fitting may cut.
    newest: Option<Newest<'a>>,
    /// What preparation did, for the response's header.
    report: Preparation,
}

/// The second half of both routes: fits the request to the model's context,
/// opens the node's stream, and relays it (`stream: true`) or collects it into
/// one answer; either way with the headers that say what was done.
async fn answer(
    state: &AppState,
    out: Outbound<'_>,
    sampling: &OpenAiSampling,
    rid: String,
    started: Instant,
) -> Result<Response, HttpError> {
    let (body, fit) = fitted_body(state, &out.model, out.sendable, out.newest, sampling, &rid)
        .await
        .map_err(err)?;
    // The node serves the OpenAI API at the same paths.
    let node_path = match out.kind {
        ObjectKind::Chat => paths::CHAT,
        ObjectKind::Text => paths::COMPLETIONS,
    };
    let stream = open(state, node_path, body, &rid).await.map_err(err)?;
    let id = completion_id(out.kind);
    let response = if sampling.stream {
        let shaper = ChunkShaper::new(out.kind, id, out.model.clone());
        relay(stream, shaper, out.model, sampling.include_usage(), rid)
    } else {
        let done = collect(stream, started)
            .await
            .map_err(|e| err(e.to_api_error()))?;
        whole(out.kind, id, out.model, done)
    };
    Ok(with_report(response, &out.report, fit.as_ref()))
}

/// A whole (unstreamed) answer in the route's shape.
fn whole(kind: ObjectKind, id: String, model: String, done: super::Collected) -> Response {
    let usage = usage_of(&done);
    let (text, reason) = (done.text, done.finish_reason);
    match kind {
        ObjectKind::Chat => {
            Json(ChatCompletion::answer(id, model, text, reason, usage)).into_response()
        }
        ObjectKind::Text => {
            Json(TextCompletion::answer(id, model, text, reason, usage)).into_response()
        }
    }
}

/// The usage of a whole answer; cached tokens when the node reported them.
fn usage_of(done: &super::Collected) -> Usage {
    let mut usage = Usage::new(done.prompt_tokens, done.tokens);
    usage.prompt_tokens_details = done
        .cached_tokens
        .map(|cached_tokens| PromptTokensDetails { cached_tokens });
    usage
}

fn completion_id(kind: ObjectKind) -> String {
    format!("{}-{}", kind.id_prefix(), uuid::Uuid::new_v4().simple())
}

struct OpenAiRelay {
    stream: TokenStream,
    shaper: ChunkShaper,
    model: String,
    include_usage: bool,
    count: u64,
    pending: std::collections::VecDeque<String>,
    finished: bool,
    request_id: String,
}

impl OpenAiRelay {
    async fn step(&mut self) -> Option<String> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        if self.finished {
            return None;
        }
        match self.stream.next().await {
            Some(Ok(Piece::Text(t))) => {
                self.count += 1;
                Some(self.shaper.text(t))
            }
            Some(Ok(Piece::Finished {
                finish_reason,
                prompt_tokens,
                completion_tokens,
                cached_tokens,
            })) => {
                self.finished = true;
                let tokens = completion_tokens.unwrap_or(self.count);
                tracing::info!(request_id = %self.request_id, model = %self.model, tokens, "stream complete");
                if self.include_usage {
                    let mut usage = Usage::new(prompt_tokens.unwrap_or(0), tokens);
                    usage.prompt_tokens_details =
                        cached_tokens.map(|cached_tokens| PromptTokensDetails { cached_tokens });
                    self.pending.push_back(self.shaper.usage(usage));
                }
                self.pending
                    .push_back(cerebrum_shared::sse::OPENAI_DONE.into());
                Some(self.shaper.finish(&finish_reason))
            }
            Some(Err(e)) => {
                self.finished = true;
                tracing::warn!(request_id = %self.request_id, error = %e, "stream failed");
                self.pending
                    .push_back(cerebrum_shared::sse::OPENAI_DONE.into());
                Some(e.to_api_error().body(Dialect::OpenAi).to_string())
            }
            None => None,
        }
    }
}

fn relay(
    stream: TokenStream,
    shaper: ChunkShaper,
    model: String,
    include_usage: bool,
    request_id: String,
) -> Response {
    let relay = OpenAiRelay {
        stream,
        shaper,
        model,
        include_usage,
        count: 0,
        pending: Default::default(),
        finished: false,
        request_id,
    };
    let events = futures::stream::unfold(relay, |mut r| async move {
        let data = r.step().await?;
        Some((Ok::<_, Infallible>(Event::default().data(data)), r))
    });
    Sse::new(events).into_response()
}
