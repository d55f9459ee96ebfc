//! HTTP handlers (thin), the steps they share, and the one place errors become responses.

pub mod cerebrum;
pub mod openai;
pub mod ops;

use std::time::Instant;

use cerebrum_shared::error::{ApiError, ErrorCode};

use crate::prompt::{PromptInput, PromptPlan, prepare};
use crate::routing::{RouteDecision, Served};
use crate::state::{AppState, Metrics};
use crate::upstream::choose::NoUpstream;
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

/// Writes every sampler knob given (`top_p`, `top_k`, `repeat_penalty`,
/// penalties, `seed`, `cache_prompt`) into a node request, under the names
/// both of the node's APIs read.
pub fn extras_into(
    extras: &cerebrum_shared::cerebrum::SamplingExtras,
    body: &mut serde_json::Value,
) {
    if let (Ok(serde_json::Value::Object(knobs)), Some(body)) =
        (serde_json::to_value(extras), body.as_object_mut())
    {
        body.extend(knobs);
    }
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
        state.metrics.chars_saved.inc_by(saved as u64);
    }
    tracing::info!(request_id, applied = plan.applied, stats = %plan.stats, "prompt prepared");
    plan
}

/// Picks the model from the upstreams' model lists (cached), and checks that
/// some upstream can take it now: a model served nowhere is 404 naming where it
/// was looked for; one whose every upstream's breaker is open is 503 at once
/// (no lookup against a dead node).
pub async fn route(
    state: &AppState,
    explicit: Option<&str>,
    language: Option<&str>,
    text: &str,
    request_id: &str,
) -> Result<RouteDecision, ApiError> {
    let upstreams = &state.upstreams;
    let (mut models, mut incomplete) = upstreams.served();
    if models.is_empty() && incomplete {
        // No list read yet (the upstreams came up after us): ask now rather
        // than route blind to a model they may not serve. Once one list is
        // known, a dead upstream's never delays a request: the background
        // probe keeps asking it.
        upstreams.refresh_unknown_models().await;
        (models, incomplete) = upstreams.served();
    }
    let decision = state
        .config
        .routing
        .decide(
            explicit,
            language,
            text,
            Served {
                models: &models,
                incomplete,
            },
            state.config.fallback_model.as_deref(),
        )
        .map_err(|e| {
            ApiError::new(
                ErrorCode::ModelNotFound,
                format!(
                    "{e}: {}. Name a served model, map the language to one with \
                     CEREBRUM_ROUTES, or set CEREBRUM_FALLBACK_MODEL",
                    upstreams.describe()
                ),
            )
        })?;
    if let Err(NoUpstream::AllOpen { retry_after }) = upstreams.likely(&decision.model) {
        return Err(all_open(state, &decision.model, retry_after));
    }
    cerebrum_service::logging::record_model(&decision.model);
    tracing::info!(request_id, model = %decision.model, language = ?decision.language,
        reason = ?decision.reason, "routed");
    Ok(decision)
}

/// Opens a stream for the generation `body` (its `model` decides where it can
/// go): tries the upstreams of [`Upstreams::plan`](crate::upstream::Upstreams::plan)
/// in order, moving on after a failure before the first byte (see
/// [`UpstreamError::moves_on`]). All failed: the last real failure, or, when
/// every breaker refused, `breaker_open` with the soonest retry.
pub async fn open(
    state: &AppState,
    path: &str,
    body: serde_json::Value,
    request_id: &str,
) -> Result<TokenStream, ApiError> {
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let several = state.upstreams.all().len() > 1;
    let plan = state.upstreams.plan(&model).map_err(|e| match e {
        NoUpstream::AllOpen { retry_after } => all_open(state, &model, retry_after),
        NoUpstream::NotServed => ApiError::new(
            ErrorCode::ModelNotFound,
            format!(
                "model '{model}' is not served by any upstream: {}",
                state.upstreams.describe()
            ),
        ),
    })?;
    let mut refused: Option<u64> = None;
    let mut failed: Option<(String, UpstreamError)> = None;
    for (i, upstream) in plan.iter().enumerate() {
        match upstream.open_stream(path, body.clone(), request_id).await {
            Ok(stream) => {
                if i > 0 || upstream.config().fallback {
                    tracing::info!(
                        request_id,
                        upstream = upstream.name(),
                        model,
                        tried = i + 1,
                        fallback = upstream.config().fallback,
                        "answered by another upstream"
                    );
                }
                return Ok(stream);
            }
            Err(UpstreamError::BreakerOpen { retry_after }) => {
                refused = Some(refused.map_or(retry_after, |r| r.min(retry_after)));
            }
            Err(e) => {
                if let UpstreamError::Auth(_) = e {
                    // Logged loudly once per change by the upstream, not per request.
                    tracing::debug!(request_id, upstream = upstream.name(), error = %e,
                        "upstream refused the orchestrator");
                } else {
                    tracing::warn!(request_id, upstream = upstream.name(), error = %e,
                        "upstream refused or failed before the first token");
                }
                let moves_on = e.moves_on();
                failed = Some((upstream.name().to_string(), e));
                if !moves_on {
                    break;
                }
            }
        }
    }
    match (failed, refused) {
        (Some((name, e)), _) => {
            let mut error = e.to_api_error();
            if several {
                error.message = format!("upstream '{name}': {}", error.message);
            }
            Err(error)
        }
        (None, Some(retry_after)) => Err(all_open(state, &model, retry_after)),
        (None, None) => unreachable!("a plan is never empty"),
    }
}

/// 503 `breaker_open` for `model`: with several upstreams, naming those that serve it.
fn all_open(state: &AppState, model: &str, retry_after: u64) -> ApiError {
    let mut e = UpstreamError::BreakerOpen { retry_after }.to_api_error();
    if state.upstreams.all().len() > 1 {
        let serving: Vec<&str> = state
            .upstreams
            .all()
            .iter()
            .filter(|u| u.serves(model) != crate::upstream::choose::Serves::No)
            .map(|u| u.name())
            .collect();
        e.message = format!(
            "every upstream serving '{model}' ({}) is failing; calls paused for {retry_after} s",
            serving.join(", ")
        );
    }
    e
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

/// What a request sends, as fitting sees it: a conversation or one raw prompt.
pub enum Sendable {
    /// OpenAI chat messages (the node renders them with the model's template).
    Messages(Vec<cerebrum_shared::openai::ChatMessage>),
    /// A raw prompt (`/v1/completions`).
    Text(String),
}

impl Sendable {
    /// A bound on its tokens without asking the node: a token covers at least one
    /// byte, and a chat template adds a few per message.
    fn token_bound(&self) -> u64 {
        match self {
            Sendable::Messages(m) => m
                .iter()
                .map(|m| (m.text().len() + m.role.len() + 16) as u64)
                .sum::<u64>()
                .saturating_add(16),
            Sendable::Text(t) => t.len() as u64 + 8,
        }
    }

    /// The node request for `model`: OpenAI chat `messages` or a completion `prompt`.
    pub fn into_body(self, model: &str) -> serde_json::Value {
        match self {
            Sendable::Messages(m) => serde_json::json!({"model": model, "messages": m}),
            Sendable::Text(t) => serde_json::json!({"model": model, "prompt": t}),
        }
    }

    fn tokenize_body(&self, model: &str) -> serde_json::Value {
        match self {
            Sendable::Messages(m) => {
                serde_json::json!({"model": model, "messages": m, "count_only": true})
            }
            Sendable::Text(t) => {
                serde_json::json!({"model": model, "content": t, "count_only": true})
            }
        }
    }
}

/// The newest user turn as typed, so fitting can prepare it harder.
pub struct Newest<'a> {
    /// Its index in the messages (0 for a raw prompt).
    pub index: usize,
    /// What preparation reads.
    pub input: PromptInput<'a>,
}

impl Newest<'_> {
    /// Whether there is code in it that a harder preparation could cut.
    fn has_code(&self) -> bool {
        self.input.text.len() > crate::fit::HARDER_MIN_CHARS
    }
}

/// How long a token count may take before the request goes out unfitted.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Fits `sendable` to `model`'s context (see [`crate::fit`]): returns the
/// `max_tokens` to send, and a report when the node counted tokens. A node
/// that cannot count (another engine, or unreachable) gets the request as it is.
pub async fn fit_request(
    state: &AppState,
    model: &str,
    sendable: &mut Sendable,
    newest: Option<Newest<'_>>,
    max_tokens: u32,
    request_id: &str,
) -> Result<(u32, Option<cerebrum_shared::cerebrum::FitReport>), ApiError> {
    use crate::fit::{Fitting, Step, next};
    // Counted where it will most likely go; only a Cerebrum node counts tokens.
    let Some(upstream) = state
        .upstreams
        .likely(model)
        .ok()
        .filter(|u| u.can_count_tokens())
    else {
        return Ok((max_tokens, None));
    };
    // Most requests are far below the context: no round trip for them.
    if let Some(context) = upstream.context_length(model)
        && sendable.token_bound() + u64::from(max_tokens) <= context
    {
        return Ok((max_tokens, None));
    }
    let mut level = 0u8;
    let mut dropped = 0u32;
    let mut newest_index = newest.as_ref().map(|n| n.index);
    loop {
        let counted = upstream
            .post_json(
                "/tokenize",
                &sendable.tokenize_body(model),
                request_id,
                COUNT_TIMEOUT,
            )
            .await;
        let (prompt_tokens, context) = match counted {
            Ok(v) => match (v["count"].as_u64(), v["context_length"].as_u64()) {
                (Some(n), Some(c)) => (n, c),
                _ => return Ok((max_tokens, None)),
            },
            Err(e) => {
                tracing::debug!(request_id, error = %e, "cannot count tokens; sending unfitted");
                return Ok((max_tokens, None));
            }
        };
        let droppable = match sendable {
            Sendable::Messages(m) => usize::from(oldest_droppable(m, newest_index).is_some()),
            Sendable::Text(_) => 0,
        };
        let step = next(&Fitting {
            prompt_tokens,
            context,
            max_tokens,
            level,
            can_prepare_harder: newest.as_ref().is_some_and(Newest::has_code),
            droppable,
        });
        let report = |max| cerebrum_shared::cerebrum::FitReport {
            prompt_tokens,
            context_length: context,
            max_tokens: max,
            max_tokens_requested: max_tokens,
            dropped_messages: dropped,
            prepare_level: level,
        };
        match step {
            Step::Send { max_tokens: max } => {
                let r = report(max);
                if r.changed_anything() {
                    tracing::info!(request_id, ?r, "fitted to the context");
                }
                return Ok((max, Some(r)));
            }
            Step::PrepareHarder => {
                level += 1;
                let (Some(n), Some(index)) = (newest.as_ref(), newest_index) else {
                    unreachable!("offered only with a newest turn")
                };
                let plan = prepare(&n.input, &state.prepare.harder(level));
                match sendable {
                    Sendable::Messages(m) => {
                        m[index] = cerebrum_shared::openai::ChatMessage::new("user", &plan.prompt)
                    }
                    Sendable::Text(t) => *t = plan.prompt,
                }
            }
            Step::DropOldest => {
                let Sendable::Messages(m) = sendable else {
                    unreachable!("only conversations have turns to drop")
                };
                let Some(i) = oldest_droppable(m, newest_index) else {
                    unreachable!("offered only when one exists")
                };
                // A user turn goes with the answers that follow it.
                let mut end = i + 1;
                while end < m.len() && m[end].role == "assistant" {
                    end += 1;
                }
                let end = end.min(newest_index.unwrap_or(m.len() - 1)).max(i + 1);
                m.drain(i..end);
                dropped += (end - i) as u32;
                if let Some(index) = newest_index.as_mut() {
                    *index -= end - i;
                }
            }
            Step::Refuse { fits } => {
                return Err(ApiError::new(
                    ErrorCode::PromptTooLarge,
                    format!(
                        "the prompt is {prompt_tokens} tokens even with the newest turn prepared as hard as it goes and older turns left out; {fits} fit in the model's context of {context} (with room for the answer)"
                    ),
                ));
            }
        }
    }
}

/// The oldest message that may be dropped: not a system message, not the newest turn.
fn oldest_droppable(
    messages: &[cerebrum_shared::openai::ChatMessage],
    newest: Option<usize>,
) -> Option<usize> {
    let end = newest.unwrap_or(messages.len().saturating_sub(1));
    messages[..end]
        .iter()
        .position(|m| m.role != "system" && m.role != "developer")
}
