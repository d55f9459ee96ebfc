//! Health, models, unloading, stats and metrics: answered from counters and
//! cached figures, never waiting behind inference.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::cerebrum::{ModelsResponse, NodeHealth};
use cerebrum_shared::error::{ApiError, Dialect, ErrorCode};
use serde_json::json;

use super::{AppState, HttpError};
use crate::metrics::LiveGauges;

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `GET /health` (public).
pub async fn health(State(state): State<AppState>) -> Json<NodeHealth> {
    let snap = state.guard.snapshot();
    let verdict = state.guard.check();
    let engines = state.registry.engines();
    let active: usize = engines
        .iter()
        .map(|e| e.stats().active.load(Ordering::SeqCst))
        .sum();
    Json(NodeHealth {
        status: if verdict.is_ok() {
            "healthy"
        } else {
            "overloaded"
        }
        .into(),
        available: verdict.is_ok(),
        reason: verdict.err().map(|r| r.reason),
        cpu_usage_percent: snap.cpu_total_percent,
        cpu_other_percent: snap.cpu_other_percent(),
        ram_available_gb: snap.ram_available as f64 / GB,
        ram_used_gb: snap.ram_used as f64 / GB,
        models_in_cache: state.registry.loaded(),
        models_loading: state.registry.loading(),
        active_sequences: active as u64,
        context_length: Some(u64::from(state.config.context_size)),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}

fn inference_counts(state: &AppState) -> BTreeMap<String, u64> {
    state
        .registry
        .engines()
        .iter()
        .map(|e| {
            (
                e.info().name.clone(),
                e.stats().completed.load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// `GET /v1/models`: OpenAI's list plus the Cerebrum keys.
pub async fn models(State(state): State<AppState>) -> Json<ModelsResponse> {
    // Every model gets the same per-sequence context (prompt and answer together).
    Json(
        ModelsResponse::new(
            state.registry.available(),
            state.registry.loaded(),
            inference_counts(&state),
            "cerebrum-node",
        )
        .with_context_length(u64::from(state.config.context_size)),
    )
}

/// `POST /v1/unload/{model}`; a name that is not UTF-8 once decoded is a JSON 400.
pub async fn unload(
    State(state): State<AppState>,
    model: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    let Path(model) = model.map_err(|e| {
        HttpError(
            ApiError::bad_request(format!("model: {}", e.body_text())),
            Dialect::Cerebrum,
        )
    })?;
    match state.registry.unload(&model) {
        Ok(true) => Ok(Json(json!({"status": "unloaded", "model": model})).into_response()),
        Ok(false) => Err(HttpError(
            ApiError::new(
                ErrorCode::ModelNotLoaded,
                format!(
                    "'{model}' is not loaded; loaded: {:?}",
                    state.registry.loaded()
                ),
            ),
            Dialect::Cerebrum,
        )),
        Err(busy) => Err(HttpError(
            ApiError::new(ErrorCode::ModelBusy, busy),
            Dialect::Cerebrum,
        )),
    }
}

/// `POST /v1/cleanup`: unloads every model that is not serving.
pub async fn cleanup(State(state): State<AppState>) -> Json<serde_json::Value> {
    let unloaded = state.registry.unload_idle(std::time::Duration::ZERO);
    Json(json!({"status": "ok", "unloaded": unloaded}))
}

/// `GET /v1/stats`.
pub async fn stats(State(state): State<AppState>) -> Json<serde_json::Value> {
    let snap = state.guard.snapshot();
    let models: Vec<_> = state
        .registry
        .engines()
        .iter()
        .map(|e| {
            let s = e.stats();
            json!({
                "name": e.info().name,
                "path": e.info().path,
                "parameters": e.info().n_params,
                "load_seconds": e.info().load_seconds,
                "has_chat_template": e.info().has_chat_template,
                "active_sequences": s.active.load(Ordering::SeqCst),
                "queued": s.queued.load(Ordering::SeqCst),
                "completed": s.completed.load(Ordering::Relaxed),
                "tokens_generated": s.tokens_generated.load(Ordering::Relaxed),
                "idle_seconds": s.idle_for().as_secs_f64(),
            })
        })
        .collect();
    let limits = state.guard.limits();
    Json(json!({
        "uptime_seconds": state.started.elapsed().as_secs(),
        "models": models,
        "available_models": state.registry.available(),
        "cpu_usage_percent": snap.cpu_total_percent,
        "cpu_own_percent": snap.cpu_own_percent,
        "ram_available_gb": snap.ram_available as f64 / GB,
        "limits": {"max_cpu_percent": limits.max_cpu_percent, "ram_floor_mb": limits.ram_floor >> 20},
        "parallel": state.config.parallel,
        "context_size": state.config.context_size,
        "idle_unload_seconds": state.config.idle_unload.as_secs(),
    }))
}

/// `GET /metrics` in Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let snap = state.guard.snapshot();
    let engines = state.registry.engines();
    let live = LiveGauges {
        active_sequences: engines
            .iter()
            .map(|e| e.stats().active.load(Ordering::SeqCst) as u64)
            .sum(),
        queued: engines
            .iter()
            .map(|e| e.stats().queued.load(Ordering::SeqCst) as u64)
            .sum(),
        loaded_models: engines.len() as u64,
        tokens_generated: engines
            .iter()
            .map(|e| e.stats().tokens_generated.load(Ordering::Relaxed))
            .sum(),
        cpu_other_percent: snap.cpu_other_percent(),
        ram_available_bytes: snap.ram_available,
    };
    (
        [(
            header::CONTENT_TYPE,
            cerebrum_service::metrics::CONTENT_TYPE,
        )],
        state.metrics.render(live),
    )
        .into_response()
}
