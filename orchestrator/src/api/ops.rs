//! Health, readiness, models, stats, the node's health, dry-run preparation and metrics.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::cerebrum::{OrchestratorHealth, Ready, VpsAuth};
use cerebrum_shared::error::{ApiError, Dialect, ErrorCode};
use cerebrum_shared::prepare::{PrepareRequest, PreparedPrompt};
use serde_json::{Value, json};

use super::{ApiJson, HttpError, check_prompt_size, request_id};
use crate::prompt::{PromptInput, prepare};
use crate::state::{AppState, NodeStatus};
use crate::upstream::BreakerState;

fn uptime_text(secs: u64) -> String {
    format!("{}h {}m", secs / 3600, (secs % 3600) / 60)
}

/// The node's state as `/health` reports it: (status text, reachable, available).
/// Read from the background refresher's last reading: never waits on the node.
fn node_view(state: &AppState) -> (String, bool, bool) {
    match state.node.health() {
        Some(NodeStatus::Up { status, available }) => (status, true, available),
        Some(NodeStatus::Unreachable(_)) => ("unreachable".into(), false, false),
        None => ("unknown".into(), false, false),
    }
}

/// `GET /health`: always 200, with the original's body; `status` is `degraded`
/// when a request could not be served now.
pub async fn health(State(state): State<AppState>) -> Json<OrchestratorHealth> {
    let (vps_status, connected, available) = node_view(&state);
    let breaker = state.upstream.breaker.state();
    let (vps_auth, vps_auth_problem) = state.upstream.auth();
    let ready =
        connected && available && breaker != BreakerState::Open && vps_auth != VpsAuth::Refused;
    let up = state.started.elapsed().as_secs();
    Json(OrchestratorHealth {
        status: if ready { "healthy" } else { "degraded" }.into(),
        cm4_status: "healthy".into(),
        vps_status,
        vps_available: available,
        vps_connected: connected,
        active_count: state.active() as u64,
        queue_count: 0,
        max_in_flight: state.config.max_in_flight as u64,
        breaker,
        breaker_retry_after_seconds: state.upstream.breaker.retry_after_secs(),
        vps_auth,
        vps_auth_problem,
        uptime_seconds: up,
        uptime_text: uptime_text(up),
        cpu_percent: state.cpu.percent(),
    })
}

/// `GET /health/ready`: 200 when a request could be served now, else 503
/// (`upstream_auth` when the node refuses the orchestrator's key or address).
pub async fn ready(State(state): State<AppState>) -> Response {
    let breaker = state.upstream.breaker.state();
    if breaker == BreakerState::Open {
        let retry = state.upstream.breaker.retry_after_secs().max(1);
        return HttpError(
            ApiError::unavailable(ErrorCode::BreakerOpen, "circuit breaker open", retry),
            Dialect::Cerebrum,
        )
        .into_response();
    }
    let (status, connected, available) = node_view(&state);
    if !connected {
        return HttpError(
            ApiError::unavailable(
                ErrorCode::VpsUnavailable,
                format!("cannot reach {}", state.upstream.endpoint()),
                5,
            ),
            Dialect::Cerebrum,
        )
        .into_response();
    }
    if let (VpsAuth::Refused, problem) = state.upstream.auth() {
        let refused = crate::upstream::auth::to_api_error(problem.as_deref().unwrap_or_default());
        return HttpError(
            ApiError {
                status: 503,
                ..refused
            },
            Dialect::Cerebrum,
        )
        .into_response();
    }
    if !available {
        return HttpError(
            ApiError::unavailable(ErrorCode::VpsOverloaded, format!("node is {status}"), 5),
            Dialect::Cerebrum,
        )
        .into_response();
    }
    Json(Ready { ready: true }).into_response()
}

/// `GET /v1/models`: the node's list (OpenAI and Cerebrum keys), passed through.
pub async fn models(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, HttpError> {
    state
        .upstream
        .get_json("/v1/models", &request_id(&headers), Duration::from_secs(5))
        .await
        .map(Json)
        .map_err(|e| HttpError(e.to_api_error(), Dialect::OpenAi))
}

/// `GET|POST /v1/vps/health`: the node's own `/health`.
pub async fn vps_health(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, HttpError> {
    state
        .upstream
        .get_json("/health", &request_id(&headers), Duration::from_secs(5))
        .await
        .map(Json)
        .map_err(|e| HttpError(e.to_api_error(), Dialect::Cerebrum))
}

/// `GET /v1/stats`. The node's figures include where its files are (model
/// paths); those go only to a caller that presented a client key (when keys
/// are configured every caller here has) or that is on this machine (loopback).
pub async fn stats(State(state): State<AppState>, request: Request) -> Json<Value> {
    let local = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().to_canonical().is_loopback());
    let trusted = local || !state.config.client_keys.is_empty();
    let mut vps = state
        .upstream
        .get_json(
            "/v1/stats",
            &request_id(request.headers()),
            Duration::from_secs(3),
        )
        .await
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    if !trusted {
        strip_locations(&mut vps);
    }
    Json(json!({
        "cm4": {
            "uptime_seconds": state.started.elapsed().as_secs(),
            "active_count": state.active(),
            "breaker": state.upstream.breaker.state().as_str(),
            "prompts_prepared": state.metrics.prepared.load(Ordering::Relaxed),
            "chars_saved": state.metrics.chars_saved.load(Ordering::Relaxed),
            "vps_client": state.upstream.stats.to_json(),
        },
        "vps": vps,
    }))
}

/// Removes, at any depth, the keys that name places on the node's disk:
/// `path`, and any ending in `_path`, `_dir` or `_file`.
fn strip_locations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| {
                !(k == "path"
                    || k.ends_with("_path")
                    || k.ends_with("_dir")
                    || k.ends_with("_file"))
            });
            map.values_mut().for_each(strip_locations);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_locations),
        _ => {}
    }
}

/// `POST /v1/prepare`: what would be sent, and the figures; no inference.
pub async fn prepare_dry_run(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PrepareRequest>,
) -> Result<Json<PreparedPrompt>, HttpError> {
    let err = |e| HttpError(e, Dialect::Cerebrum);
    check_prompt_size(&state, "prompt", req.prompt.chars().count()).map_err(err)?;
    let plan = prepare(
        &PromptInput {
            text: &req.prompt,
            instruction: req.instruction.as_deref(),
            language: req.language.as_deref(),
        },
        &state.prepare,
    );
    Ok(Json(plan))
}

/// `GET /metrics` in Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let u = &state.upstream.stats;
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    let breaker_open = state.upstream.breaker.state() == BreakerState::Open;
    let series: [(&str, &str, &str, f64); 19] = [
        (
            "cerebrum_http_requests_total",
            "counter",
            "HTTP requests received.",
            c(&m.requests),
        ),
        (
            "cerebrum_load_shed_total",
            "counter",
            "Requests refused by the in-flight limit.",
            c(&m.shed),
        ),
        (
            "cerebrum_rate_limited_total",
            "counter",
            "Requests refused by the rate limit.",
            c(&m.rate_limited),
        ),
        (
            "cerebrum_inference_succeeded_total",
            "counter",
            "Inference requests answered well to the end.",
            c(&m.succeeded),
        ),
        (
            "cerebrum_inference_failed_total",
            "counter",
            "Inference requests answered with an error status or an error event.",
            c(&m.failed),
        ),
        (
            "cerebrum_inference_cancelled_total",
            "counter",
            "Inference requests whose client left before the end.",
            c(&m.cancelled),
        ),
        (
            "cerebrum_in_flight",
            "gauge",
            "Inference requests in flight.",
            state.active() as f64,
        ),
        (
            "cerebrum_prompts_prepared_total",
            "counter",
            "Prompts cut down by preparation.",
            c(&m.prepared),
        ),
        (
            "cerebrum_prompt_chars_saved_total",
            "counter",
            "Characters removed by preparation.",
            c(&m.chars_saved),
        ),
        (
            "cerebrum_upstream_requests_total",
            "counter",
            "Generations asked of the node.",
            c(&u.requests_sent),
        ),
        (
            "cerebrum_upstream_success_total",
            "counter",
            "Generations that ended well.",
            c(&u.successful),
        ),
        (
            "cerebrum_upstream_failures_total",
            "counter",
            "Generations failed by the node or link.",
            c(&u.failed),
        ),
        (
            "cerebrum_upstream_refused_total",
            "counter",
            "Generations the node refused: 4xx, 503, 401/403 or a redirect.",
            c(&u.refused),
        ),
        (
            "cerebrum_upstream_queued_timeouts_total",
            "counter",
            "First-token timeouts while the node was busy (not counted against it).",
            c(&u.queued_timeouts),
        ),
        (
            "cerebrum_upstream_cancelled_total",
            "counter",
            "Generations whose client went away first.",
            c(&u.cancelled),
        ),
        (
            "cerebrum_upstream_auth_refused",
            "gauge",
            "1 while the node refuses the orchestrator's key or address.",
            f64::from(u8::from(state.upstream.auth().0 == VpsAuth::Refused)),
        ),
        (
            "cerebrum_tokens_relayed_total",
            "counter",
            "Tokens relayed to clients.",
            c(&u.tokens),
        ),
        (
            "cerebrum_breaker_open",
            "gauge",
            "1 while the circuit breaker is open.",
            f64::from(u8::from(breaker_open)),
        ),
        (
            "cerebrum_breaker_opens_total",
            "counter",
            "Times the breaker opened.",
            state.upstream.breaker.opens() as f64,
        ),
    ];
    let mut s = String::with_capacity(2048);
    for (name, kind, help, value) in series {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn locations_are_stripped_at_any_depth_and_nothing_else() {
        let mut v = serde_json::json!({
            "models": [{"name": "m", "path": "/srv/m.gguf", "parameters": 1}],
            "models_dir": "/srv", "cache_path": "/c", "log_file": "/l",
            "limits": {"max_cpu_percent": 80, "path": "/x"},
            "uptime_seconds": 5,
        });
        super::strip_locations(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "models": [{"name": "m", "parameters": 1}],
                "limits": {"max_cpu_percent": 80},
                "uptime_seconds": 5,
            })
        );
    }

    #[test]
    fn uptime_text_is_hours_and_minutes() {
        assert_eq!(super::uptime_text(3 * 3600 + 7 * 60 + 5), "3h 7m");
        assert_eq!(super::uptime_text(59), "0h 0m");
    }
}
