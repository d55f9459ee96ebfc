//! Health, readiness, models, stats, the node's health, dry-run preparation and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cerebrum_shared::cerebrum::{OrchestratorHealth, Ready, UpstreamHealth, VpsAuth};
use cerebrum_shared::error::{ApiError, Dialect, ErrorCode};
use cerebrum_shared::prepare::{PrepareRequest, PreparedPrompt};
use serde_json::{Value, json};

use super::{ApiJson, HttpError, check_prompt_size, request_id};
use crate::prompt::{PromptInput, prepare};
use crate::state::AppState;
use crate::upstream::{BreakerState, NodeStatus, Upstream};

fn uptime_text(secs: u64) -> String {
    format!("{}h {}m", secs / 3600, (secs % 3600) / 60)
}

/// `GET /health`: always 200, with the original's body. The `vps_*` and
/// `breaker*` keys describe the first ready upstream (else the first
/// configured), `upstreams` each one; `status` is `degraded` unless every
/// primary upstream could take a request now. Read from the background
/// probes' last readings: never waits on an upstream.
pub async fn health(State(state): State<AppState>) -> Json<OrchestratorHealth> {
    let upstreams: Vec<UpstreamHealth> = state.upstreams.all().iter().map(|u| u.report()).collect();
    let every_primary_ready = upstreams.iter().filter(|u| !u.fallback).all(|u| u.ready);
    let summary = upstreams
        .iter()
        .find(|u| u.ready)
        .unwrap_or(&upstreams[0])
        .clone();
    let up = state.started.elapsed().as_secs();
    Json(OrchestratorHealth {
        status: if every_primary_ready {
            "healthy"
        } else {
            "degraded"
        }
        .into(),
        cm4_status: "healthy".into(),
        vps_status: summary.status,
        vps_available: summary.available,
        vps_connected: summary.connected,
        active_count: state.active() as u64,
        queue_count: 0,
        max_in_flight: state.config.max_in_flight as u64,
        breaker: summary.breaker,
        breaker_retry_after_seconds: summary.breaker_retry_after_seconds,
        vps_auth: summary.auth,
        vps_auth_problem: summary.auth_problem,
        uptime_seconds: up,
        uptime_text: uptime_text(up),
        cpu_percent: state.cpu.percent(),
        upstreams,
    })
}

/// `GET /health/ready`: 200 when some upstream could take a request now, else
/// 503 with why the first configured one cannot (`upstream_auth` when it
/// refuses the orchestrator's key or address), naming the others' states when
/// there are several.
pub async fn ready(State(state): State<AppState>) -> Response {
    let all = state.upstreams.all();
    if all.iter().any(|u| u.is_ready()) {
        return Json(Ready { ready: true }).into_response();
    }
    let mut error = not_ready(&all[0]);
    if all.len() > 1 {
        let states: Vec<String> = all
            .iter()
            .map(|u| {
                let r = u.report();
                format!("{} {} (breaker {})", r.name, r.status, r.breaker.as_str())
            })
            .collect();
        error.message = format!(
            "no upstream is ready: {}; first: {}",
            states.join(", "),
            error.message
        );
    }
    HttpError(error, Dialect::Cerebrum).into_response()
}

/// Why `upstream` cannot take a request now (it is not ready).
fn not_ready(upstream: &Upstream) -> ApiError {
    if upstream.breaker.state() == BreakerState::Open {
        let retry = upstream.breaker.retry_after_secs().max(1);
        return ApiError::unavailable(ErrorCode::BreakerOpen, "circuit breaker open", retry);
    }
    match upstream.health() {
        None | Some(NodeStatus::Unreachable(_)) => ApiError::unavailable(
            ErrorCode::VpsUnavailable,
            format!("cannot reach {}", upstream.endpoint()),
            5,
        ),
        Some(NodeStatus::Up { status, .. }) => {
            if let (VpsAuth::Refused, problem) = upstream.auth() {
                let refused =
                    crate::upstream::auth::to_api_error(problem.as_deref().unwrap_or_default());
                return ApiError {
                    status: 503,
                    ..refused
                };
            }
            ApiError::unavailable(ErrorCode::VpsOverloaded, format!("node is {status}"), 5)
        }
    }
}

/// `GET /v1/models`: with one upstream its list as it is (OpenAI and Cerebrum
/// keys); with several, their lists merged (cards by `id`, names without
/// repeats, counts added), from those that answered.
pub async fn models(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, HttpError> {
    let rid = request_id(&headers);
    let ask = |u: &Arc<Upstream>| {
        let u = u.clone();
        let rid = rid.clone();
        async move { u.get_json("/v1/models", &rid, Duration::from_secs(5)).await }
    };
    let answers = futures::future::join_all(state.upstreams.all().iter().map(ask)).await;
    let mut merged: Option<Value> = None;
    let mut first_error = None;
    for answer in answers {
        match answer {
            Ok(list) => match merged.as_mut() {
                None => merged = Some(list),
                Some(into) => merge_models(into, list),
            },
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (merged, first_error) {
        (Some(list), _) => Ok(Json(list)),
        (None, Some(e)) => Err(HttpError(e.to_api_error(), Dialect::OpenAi)),
        (None, None) => unreachable!("there is always an upstream"),
    }
}

/// Adds one upstream's `/v1/models` answer to another's.
fn merge_models(into: &mut Value, from: Value) {
    let Value::Object(from) = from else { return };
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Array(items)), Value::Array(more)) => {
                for item in more {
                    let id = |v: &Value| v.get("id").cloned().unwrap_or_else(|| v.clone());
                    if !items.iter().any(|i| id(i) == id(&item)) {
                        items.push(item);
                    }
                }
            }
            (Some(Value::Object(counts)), Value::Object(more)) => {
                for (k, v) in more {
                    let sum = counts.get(&k).and_then(Value::as_u64).unwrap_or(0)
                        + v.as_u64().unwrap_or(0);
                    counts.insert(k, json!(sum));
                }
            }
            (None, value) => {
                if let Some(map) = into.as_object_mut() {
                    map.insert(key, value);
                }
            }
            _ => {}
        }
    }
}

/// `GET|POST /v1/vps/health`: the first configured upstream's own `/health`
/// (each upstream's state is in `/health`'s `upstreams`).
pub async fn vps_health(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, HttpError> {
    state
        .upstreams
        .first()
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
    let first = state.upstreams.first();
    let mut vps = first
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
            "breaker": first.breaker.state().as_str(),
            "prompts_prepared": state.metrics.prepared.get(),
            "chars_saved": state.metrics.chars_saved.get(),
            "vps_client": first.stats.to_json(),
            "upstreams": state.upstreams.all().iter().map(|u| json!({
                "name": u.name(),
                "endpoint": u.endpoint(),
                "breaker": u.breaker.state().as_str(),
                "client": u.stats.to_json(),
            })).collect::<Vec<_>>(),
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

/// `GET /metrics` in Prometheus text format (see [`crate::metrics`]).
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            cerebrum_service::metrics::CONTENT_TYPE,
        )],
        cerebrum_service::metrics::encode(&state.registry),
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
