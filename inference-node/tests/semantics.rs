//! What the node does with each request field, through its router in process
//! (`oneshot`) with no model loaded: OpenAI fields it cannot honour are refused
//! with 422 naming them before any model is looked up; what SDKs send by
//! default gets past every check (to the model lookup: 404 for a model that is
//! not there); the OpenAI routes read `top_k` and `repeat_penalty` (the
//! orchestrator sends `/v1/complete`'s through them); the message count is
//! bounded. (That the knobs reach the sampler as given is unit-tested beside
//! the mapping, `http::openai` and `http::cerebrum`.)

use std::collections::BTreeMap;

use axum::Router;
use axum::http::{Method, StatusCode};
use cerebrum_node::app::router;
use cerebrum_node::config::NodeConfig;
use cerebrum_node::server::build_state;
use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_shared::limits::MAX_MESSAGES;
use cerebrum_testkit::router::{error_of, request, send};
use serde_json::{Value, json};

const KEY: &str = "semantics-test-key-0123456789";

fn app() -> Router {
    let dir = std::env::temp_dir().join(format!("cerebrum-semantics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env: BTreeMap<String, String> = [
        ("CEREBRUM_API_KEY", KEY),
        ("CEREBRUM_MODELS_DIR", dir.to_str().unwrap()),
        ("CEREBRUM_N_THREADS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = NodeConfig::resolve(Default::default(), &env, &Default::default()).unwrap();
    router(build_state(config))
}

async fn post(app: &Router, path: &str, body: &Value) -> (StatusCode, ApiError) {
    let r = request(
        Method::POST,
        path,
        body.to_string(),
        [127, 0, 0, 1],
        &[("x-api-key", KEY)],
    );
    let (status, headers, bytes) = send(app, r).await;
    (status, error_of(path, status, &headers, &bytes))
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "absent", "messages": [{"role": "user", "content": "Hi"}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

fn completion(extra: Value) -> Value {
    let mut body = json!({"model": "absent", "prompt": "x"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// Past every check of the request, to the model lookup.
fn passed(status: StatusCode, e: &ApiError) -> bool {
    status == 404 && e.code == ErrorCode::ModelNotFound
}

#[tokio::test]
async fn openai_fields_not_served_are_refused_by_name() {
    let app = app();
    let cases = [
        ("/v1/chat/completions", chat(json!({"n": 4})), "n"),
        (
            "/v1/chat/completions",
            chat(json!({"logit_bias": {"7": -100}})),
            "logit_bias",
        ),
        (
            "/v1/chat/completions",
            chat(
                json!({"tools": [{"type": "function", "function": {"name": "f"}}],
                        "tool_choice": "auto"}),
            ),
            "tools",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"function_call": {"name": "f"}})),
            "function_call",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})),
            "response_format",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]})),
            "messages[0].content[0].type",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"audio": {"voice": "alloy", "format": "mp3"}})),
            "audio",
        ),
        (
            "/v1/completions",
            completion(json!({"best_of": 2})),
            "best_of",
        ),
        (
            "/v1/completions",
            completion(json!({"logprobs": 0})),
            "logprobs",
        ),
    ];
    for (path, body, field) in cases {
        let (status, e) = post(&app, path, &body).await;
        assert_eq!(
            (status.as_u16(), e.code, e.field.as_deref()),
            (422, ErrorCode::InvalidRequest, Some(field)),
            "{body}: {}",
            e.message
        );
    }
}

#[tokio::test]
async fn what_openai_sdks_send_by_default_passes_every_check() {
    let app = app();
    let defaults = json!({"n": 1, "stream": true, "stream_options": {"include_usage": true},
        "user": "u", "seed": 3, "response_format": {"type": "text"}, "logprobs": false,
        "top_logprobs": 0, "tools": [], "tool_choice": "none", "parallel_tool_calls": true,
        "logit_bias": {}, "store": false, "modalities": ["text"]});
    let (status, e) = post(&app, "/v1/chat/completions", &chat(defaults)).await;
    assert!(passed(status, &e), "{status}: {}", e.message);
    let text_defaults = json!({"n": 1, "best_of": 1, "echo": false, "suffix": "",
        "logprobs": null, "user": "u"});
    let (status, e) = post(&app, "/v1/completions", &completion(text_defaults)).await;
    assert!(passed(status, &e), "{status}: {}", e.message);
}

#[tokio::test]
async fn the_openai_routes_read_every_sampler_knob() {
    let app = app();
    // In range: past the checks (top_p 0 among them: the most likely token, not an error).
    let knobs = json!({"top_p": 0, "top_k": 5, "repeat_penalty": 1.3,
        "frequency_penalty": 1.0, "presence_penalty": -1.0});
    for (path, body) in [
        ("/v1/chat/completions", chat(knobs.clone())),
        ("/v1/completions", completion(knobs.clone())),
    ] {
        let (status, e) = post(&app, path, &body).await;
        assert!(passed(status, &e), "{path} {status}: {}", e.message);
    }
    // Out of range: refused by name, so they are read, not dropped.
    for (extra, field) in [
        (json!({"top_k": 1001}), "top_k"),
        (json!({"repeat_penalty": 3.5}), "repeat_penalty"),
        (json!({"presence_penalty": -2.5}), "presence_penalty"),
    ] {
        for (path, body) in [
            ("/v1/chat/completions", chat(extra.clone())),
            ("/v1/completions", completion(extra.clone())),
        ] {
            let (status, e) = post(&app, path, &body).await;
            assert_eq!(
                (status.as_u16(), e.field.as_deref()),
                (422, Some(field)),
                "{path} {body}"
            );
        }
    }
    // The Cerebrum API takes the penalties too.
    let (status, e) = post(
        &app,
        "/v1/inference",
        &completion(json!({"frequency_penalty": 9})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), e.field.as_deref()),
        (422, Some("frequency_penalty"))
    );
}

#[tokio::test]
async fn the_message_count_is_bounded() {
    let app = app();
    let message = json!({"role": "user", "content": "Hi"});
    let at_limit = chat(json!({"messages": vec![message.clone(); MAX_MESSAGES]}));
    let (status, e) = post(&app, "/v1/chat/completions", &at_limit).await;
    assert!(passed(status, &e), "{status}: {}", e.message);
    let over = chat(json!({"messages": vec![message; MAX_MESSAGES + 1]}));
    let (status, e) = post(&app, "/v1/chat/completions", &over).await;
    assert_eq!(
        (status.as_u16(), e.field.as_deref()),
        (422, Some("messages"))
    );
}
