//! Health, readiness, models, stats, the node's health, dry-run preparation and metrics.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
            "prompts_prepared": state.metrics.prepared.load(Ordering::Relaxed),
            "chars_saved": state.metrics.chars_saved.load(Ordering::Relaxed),
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

/// `GET /metrics` in Prometheus text format: the orchestrator's own series,
/// then one series per upstream (label `upstream`) for each upstream metric.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    let own: [(&str, &str, &str, f64); 9] = [
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
    ];
    type PerUpstream = fn(&Upstream) -> f64;
    let per_upstream: [(&str, &str, &str, PerUpstream); 12] = [
        (
            "cerebrum_upstream_requests_total",
            "counter",
            "Generations asked of the upstream.",
            |u| count(&u.stats.requests_sent),
        ),
        (
            "cerebrum_upstream_success_total",
            "counter",
            "Generations that ended well.",
            |u| count(&u.stats.successful),
        ),
        (
            "cerebrum_upstream_failures_total",
            "counter",
            "Generations failed by the upstream or the link.",
            |u| count(&u.stats.failed),
        ),
        (
            "cerebrum_upstream_refused_total",
            "counter",
            "Generations the upstream refused: 4xx, 503, 401/403 or a redirect.",
            |u| count(&u.stats.refused),
        ),
        (
            "cerebrum_upstream_queued_timeouts_total",
            "counter",
            "First-token timeouts while the upstream was busy (not counted against it).",
            |u| count(&u.stats.queued_timeouts),
        ),
        (
            "cerebrum_upstream_cancelled_total",
            "counter",
            "Generations whose client went away first.",
            |u| count(&u.stats.cancelled),
        ),
        (
            "cerebrum_upstream_auth_refused",
            "gauge",
            "1 while the upstream refuses the orchestrator's key or address.",
            |u| f64::from(u8::from(u.auth().0 == VpsAuth::Refused)),
        ),
        (
            "cerebrum_upstream_ready",
            "gauge",
            "1 while the upstream could take a request (reachable, available, breaker not open, key accepted).",
            |u| f64::from(u8::from(u.is_ready())),
        ),
        (
            "cerebrum_upstream_in_flight",
            "gauge",
            "Generations of this orchestrator in flight to the upstream.",
            |u| u.in_flight() as f64,
        ),
        (
            "cerebrum_tokens_relayed_total",
            "counter",
            "Tokens relayed to clients from the upstream.",
            |u| count(&u.stats.tokens),
        ),
        (
            "cerebrum_breaker_open",
            "gauge",
            "1 while the upstream's circuit breaker is open.",
            |u| f64::from(u8::from(u.breaker.state() == BreakerState::Open)),
        ),
        (
            "cerebrum_breaker_opens_total",
            "counter",
            "Times the upstream's breaker opened.",
            |u| u.breaker.opens() as f64,
        ),
    ];
    let mut s = String::with_capacity(4096);
    for (name, kind, help, value) in own {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    for (name, kind, help, value) in per_upstream {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for u in state.upstreams.all() {
            let _ = writeln!(s, "{name}{{upstream=\"{}\"}} {}", u.name(), value(u));
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s,
    )
        .into_response()
}

fn count(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
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
