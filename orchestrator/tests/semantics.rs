//! What the orchestrator does with each request field, in process (`oneshot`)
//! against a fake node on loopback: every sampler knob given reaches the node
//! as given (`top_p: 0` included, `top_k` and `repeat_penalty` of
//! `/v1/complete` included); OpenAI fields it cannot honour are refused with
//! 422 naming them before the node is asked; what SDKs send by default passes;
//! the message count is bounded.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use cerebrum::app::router;
use cerebrum::config::OrchestratorConfig;
use cerebrum::serve::build_state;
use cerebrum_shared::error::ErrorCode;
use cerebrum_shared::limits::MAX_MESSAGES;
use cerebrum_testkit::fake::FakeUpstream;
use cerebrum_testkit::router::{self as testkit, error_of, send};
use serde_json::{Value, json};

struct Stack {
    app: Router,
    fake: FakeUpstream,
}

/// A router in front of a fake node whose health and model list are already read.
async fn stack() -> Stack {
    let fake = FakeUpstream::start().await;
    let env: BTreeMap<String, String> = [
        ("VPS_ENDPOINT".to_string(), fake.url.clone()),
        (
            "CEREBRUM_FALLBACK_MODEL".to_string(),
            "fake-model".to_string(),
        ),
    ]
    .into();
    let config =
        OrchestratorConfig::resolve(Default::default(), &env, &Default::default()).unwrap();
    let state = build_state(config).unwrap();
    state.upstreams.first().refresh_health().await;
    assert!(state.upstreams.first().refresh_models().await);
    Stack {
        app: router(state),
        fake,
    }
}

async fn post(app: &Router, path: &str, body: &Value) -> (StatusCode, HeaderMap, Bytes) {
    let request = testkit::request(Method::POST, path, body.to_string(), [127, 0, 0, 1], &[]);
    send(app, request).await
}

/// The sampler knobs a client may give, with values no default has.
fn knobs() -> Value {
    json!({"top_p": 0.0, "top_k": 7, "repeat_penalty": 1.25, "frequency_penalty": 0.5,
           "presence_penalty": -0.5, "seed": 42, "cache_prompt": false})
}

fn with(mut body: Value, extra: &Value) -> Value {
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

fn chat(extra: Value) -> Value {
    with(
        json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}),
        &extra,
    )
}

#[tokio::test]
async fn every_sampler_knob_reaches_the_node_as_given_on_every_route() {
    let s = stack().await;
    let cases = [
        (
            "/v1/complete",
            with(
                json!({"prompt": "def add(a, b):", "max_tokens": 8}),
                &knobs(),
            ),
        ),
        (
            "/v1/complete/stream",
            with(
                json!({"prompt": "def add(a, b):", "max_tokens": 8}),
                &knobs(),
            ),
        ),
        ("/v1/chat/completions", chat(knobs())),
        (
            "/v1/completions",
            with(json!({"prompt": "x", "max_tokens": 8}), &knobs()),
        ),
    ];
    for (i, (path, body)) in cases.iter().enumerate() {
        let (status, _, answer) = post(&s.app, path, body).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&answer));
        let sent = &s.fake.bodies()[i];
        for (knob, value) in knobs().as_object().unwrap() {
            assert_eq!(&sent[knob], value, "{path}: {knob} in {sent}");
        }
    }
    assert_eq!(s.fake.generations(), cases.len());
}

#[tokio::test]
async fn knobs_out_of_range_are_refused_before_the_node_on_the_cerebrum_api() {
    let s = stack().await;
    for (extra, field) in [
        (json!({"top_k": 1001}), "top_k"),
        (json!({"top_k": -1}), "top_k"),
        (json!({"repeat_penalty": 0.05}), "repeat_penalty"),
        (json!({"frequency_penalty": 2.5}), "frequency_penalty"),
        (json!({"top_p": 1.5}), "top_p"),
    ] {
        let body = with(json!({"prompt": "x"}), &extra);
        let (status, headers, answer) = post(&s.app, "/v1/complete", &body).await;
        let e = error_of("/v1/complete", status, &headers, &answer);
        assert_eq!(
            (status.as_u16(), e.code, e.field.as_deref()),
            (422, ErrorCode::InvalidRequest, Some(field)),
            "{body}"
        );
    }
    assert_eq!(s.fake.generations(), 0);
}

#[tokio::test]
async fn openai_fields_not_served_are_refused_by_name_before_the_node() {
    let s = stack().await;
    let image = json!([{"role": "user", "content": [
        {"type": "text", "text": "What is in it?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]);
    let cases = [
        ("/v1/chat/completions", chat(json!({"n": 2})), "n"),
        (
            "/v1/chat/completions",
            chat(json!({"logit_bias": {"1234": 5}})),
            "logit_bias",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"tools": [{"type": "function", "function": {"name": "f"}}]})),
            "tools",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"tool_choice": "required"})),
            "tool_choice",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"functions": [{"name": "f"}]})),
            "functions",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"response_format": {"type": "json_object"}})),
            "response_format",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"logprobs": true, "top_logprobs": 2})),
            "logprobs",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"messages": image})),
            "messages[0].content[1].type",
        ),
        ("/v1/completions", json!({"prompt": "x", "n": 3}), "n"),
        (
            "/v1/completions",
            json!({"prompt": "x", "echo": true}),
            "echo",
        ),
        (
            "/v1/completions",
            json!({"prompt": "x", "logprobs": 2}),
            "logprobs",
        ),
        (
            "/v1/completions",
            json!({"prompt": "x", "suffix": "}"}),
            "suffix",
        ),
    ];
    for (path, body, field) in cases {
        let (status, headers, answer) = post(&s.app, path, &body).await;
        let e = error_of(path, status, &headers, &answer);
        assert_eq!(
            (status.as_u16(), e.code, e.field.as_deref()),
            (422, ErrorCode::InvalidRequest, Some(field)),
            "{body}"
        );
        assert!(e.message.contains("not supported"), "{}", e.message);
        // In OpenAI's shape, `param` naming the field, as OpenAI's own errors do.
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["error"]["param"], field, "{v}");
    }
    assert_eq!(s.fake.generations(), 0, "nothing reached the node");
}

#[tokio::test]
async fn what_openai_sdks_send_by_default_is_served() {
    let s = stack().await;
    let defaults = json!({"n": 1, "stream": true, "stream_options": {"include_usage": true},
        "user": "user-1", "seed": 1, "response_format": {"type": "text"}, "logprobs": false,
        "tool_choice": "none", "parallel_tool_calls": false, "store": false,
        "metadata": {"k": "v"}, "modalities": ["text"], "logit_bias": {}});
    let (status, _, answer) = post(&s.app, "/v1/chat/completions", &chat(defaults)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.contains("chat.completion.chunk") && text.contains("[DONE]"),
        "{text}"
    );
    let sent = &s.fake.bodies()[0];
    assert_eq!(sent["seed"], 1);
    for absent in ["n", "user", "response_format", "logprobs", "tool_choice"] {
        assert!(sent.get(absent).is_none(), "{absent} sent on: {sent}");
    }
}

#[tokio::test]
async fn the_message_count_is_bounded_on_the_chat_route() {
    let s = stack().await;
    let message = json!({"role": "user", "content": "Hi"});
    let at_limit = json!({"messages": vec![message.clone(); MAX_MESSAGES], "max_tokens": 4});
    let (status, _, answer) = post(&s.app, "/v1/chat/completions", &at_limit).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        s.fake.bodies()[0]["messages"].as_array().map(Vec::len),
        Some(MAX_MESSAGES)
    );
    let over = json!({"messages": vec![message; MAX_MESSAGES + 1]});
    let (status, headers, answer) = post(&s.app, "/v1/chat/completions", &over).await;
    let e = error_of("/v1/chat/completions", status, &headers, &answer);
    assert_eq!(
        (status.as_u16(), e.field.as_deref()),
        (422, Some("messages"))
    );
    assert!(
        e.message.contains(&MAX_MESSAGES.to_string()),
        "{}",
        e.message
    );
    assert_eq!(
        s.fake.generations(),
        1,
        "the long one never reached the node"
    );
}
