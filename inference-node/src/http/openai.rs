//! The OpenAI API: `/v1/chat/completions` and `/v1/completions`, streamed or not.

use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::cerebrum::SamplingExtras;
use cerebrum_shared::error::{ApiError, Dialect, parse_json, to_json};
use cerebrum_shared::openai::{
    ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChunkChoice,
    CompletionRequest, Delta, OneOrMany, OpenAiSampling, ResponseMessage, TextChoice,
    TextCompletion, Usage, created_now,
};
use cerebrum_shared::sse::OPENAI_DONE;
use cerebrum_shared::validate;
use futures::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::cerebrum::{MAX_TOKENS, check_prompt, sampling_from, stops_from};
use super::{AppState, Generation, HttpError};
use crate::engine::{GenEvent, GenerateRequest, Prompt};

fn err(e: ApiError) -> HttpError {
    HttpError(e, Dialect::OpenAi)
}

fn build(prompt: Prompt, s: &OpenAiSampling) -> Result<GenerateRequest, ApiError> {
    let max_tokens = s.max_tokens().unwrap_or(512);
    validate::in_range("max_tokens", max_tokens, 1, MAX_TOKENS)?;
    let extras = SamplingExtras {
        top_p: s.top_p,
        seed: s.seed,
        ..Default::default()
    };
    let sampling = sampling_from(s.temperature.unwrap_or(0.2), &extras)?;
    let stop = stops_from(s.stop.clone().map(OneOrMany::into_vec))?;
    Ok(GenerateRequest {
        prompt,
        max_tokens,
        sampling,
        stop,
    })
}

fn chat_turns(state: &AppState, req: &ChatCompletionRequest) -> Result<Prompt, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid_field(
            "messages",
            "must hold at least one message",
        ));
    }
    let mut turns = Vec::with_capacity(req.messages.len());
    let mut total = 0usize;
    for (i, m) in req.messages.iter().enumerate() {
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

fn completion_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `POST /v1/chat/completions`.
pub async fn chat(State(state): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let req: ChatCompletionRequest = parse_json(&body).map_err(err)?;
    let prompt = chat_turns(&state, &req).map_err(err)?;
    let request = build(prompt, &req.sampling).map_err(err)?;
    let generation = state
        .start(req.model.as_deref(), request)
        .await
        .map_err(err)?;
    let id = completion_id("chatcmpl");
    if req.sampling.stream {
        return Ok(stream(
            generation,
            id,
            req.sampling.include_usage(),
            Kind::Chat,
        ));
    }
    let model = generation.model.clone();
    let done = generation.collect().await.map_err(err)?;
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion".into(),
        created: created_now(),
        model,
        choices: vec![ChatChoice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: done.text,
            },
            finish_reason: done.reason.as_str().into(),
        }],
        usage: Usage::new(
            u64::from(done.prompt_tokens),
            u64::from(done.completion_tokens),
        ),
    })
    .into_response())
}

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let req: CompletionRequest = parse_json(&body).map_err(err)?;
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
    let id = completion_id("cmpl");
    if req.sampling.stream {
        return Ok(stream(
            generation,
            id,
            req.sampling.include_usage(),
            Kind::Text,
        ));
    }
    let model = generation.model.clone();
    let done = generation.collect().await.map_err(err)?;
    Ok(Json(TextCompletion {
        id,
        object: "text_completion".into(),
        created: created_now(),
        model,
        choices: vec![TextChoice {
            index: 0,
            text: done.text,
            finish_reason: Some(done.reason.as_str().into()),
            logprobs: None,
        }],
        usage: Some(Usage::new(
            u64::from(done.prompt_tokens),
            u64::from(done.completion_tokens),
        )),
    })
    .into_response())
}

#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Text,
}

/// Shapes one streamed chunk in either object type.
struct Chunker {
    kind: Kind,
    id: String,
    model: String,
    created: u64,
}

impl Chunker {
    fn chunk(
        &self,
        text: Option<String>,
        role: bool,
        finish: Option<&str>,
        usage: Option<Usage>,
    ) -> String {
        let with_choice = text.is_some() || finish.is_some() || role;
        match self.kind {
            Kind::Chat => to_json(&ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk".into(),
                created: self.created,
                model: self.model.clone(),
                choices: if with_choice {
                    vec![ChunkChoice {
                        index: 0,
                        delta: Delta {
                            role: role.then(|| "assistant".to_string()),
                            content: text,
                        },
                        finish_reason: finish.map(str::to_string),
                    }]
                } else {
                    vec![]
                },
                usage,
            }),
            Kind::Text => to_json(&TextCompletion {
                id: self.id.clone(),
                object: "text_completion".into(),
                created: self.created,
                model: self.model.clone(),
                choices: if with_choice {
                    vec![TextChoice {
                        index: 0,
                        text: text.unwrap_or_default(),
                        finish_reason: finish.map(str::to_string),
                        logprobs: None,
                    }]
                } else {
                    vec![]
                },
                usage,
            }),
        }
    }
}

fn stream(generation: Generation, id: String, include_usage: bool, kind: Kind) -> Response {
    let chunker = Chunker {
        kind,
        id,
        model: generation.model.clone(),
        created: created_now(),
    };
    let mut first = true;
    let events = UnboundedReceiverStream::new(generation.events).flat_map(move |event| {
        let mut out: Vec<String> = Vec::new();
        match event {
            GenEvent::Token { text, .. } => {
                out.push(chunker.chunk(
                    Some(text),
                    first && matches!(kind, Kind::Chat),
                    None,
                    None,
                ));
                first = false;
            }
            GenEvent::Finished {
                reason,
                prompt_tokens,
                completion_tokens,
                ..
            } => {
                out.push(chunker.chunk(
                    None,
                    first && matches!(kind, Kind::Chat),
                    Some(reason.as_str()),
                    None,
                ));
                if include_usage {
                    let usage = Usage::new(u64::from(prompt_tokens), u64::from(completion_tokens));
                    out.push(chunker.chunk(None, false, None, Some(usage)));
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
