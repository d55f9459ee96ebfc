//! The orchestrator's router in process (`oneshot`), against a fake upstream on
//! loopback: layer order, every error shape in both dialects, auth, limits,
//! the breaker and broken streams. No model and no node process: seconds.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use cerebrum::app::router;
use cerebrum::serve::build_state;
use cerebrum_shared::cerebrum::{OrchestratorHealth, StreamEvent};
use cerebrum_shared::error::{ApiError, ErrorCode, OpenAiErrorBody};
use cerebrum_shared::limits::{MAX_BODY_BYTES, MAX_PROMPT_CHARS};
use cerebrum_testkit::fake::{Behaviour, FakeUpstream};
use cerebrum_testkit::router::{self as testkit, error_of, send, sse_data};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod inproc;
use inproc::{Stack, config};

/// A router in front of a fake node whose health and model list are already read.
async fn stack(extra: &[(&str, &str)]) -> Stack {
    inproc::stack(extra, router).await
}

fn request(method: Method, path: &str, body: &str, headers: &[(&str, &str)]) -> Request<Body> {
    testkit::request(method, path, body.to_string(), [127, 0, 0, 1], headers)
}

async fn post(app: &Router, path: &str, body: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(app, request(Method::POST, path, body, &[])).await
}

const COMPLETE: &str = r#"{"prompt":"def add(a, b):","max_tokens":8}"#;
const CHAT: &str = r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8}"#;

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_echoed() {
    let s = stack(&[]).await;
    for (method, path, body) in [
        (Method::GET, "/health", ""),
        (Method::GET, "/nope", ""),
        (Method::GET, "/v1/complete", ""),
        (Method::POST, "/v1/complete", "{"),
        (Method::POST, "/v1/complete", COMPLETE),
    ] {
        let (status, headers, _) = send(&s.app, request(method.clone(), path, body, &[])).await;
        let id = headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{method} {path} ({status}) has no request id"));
        assert_eq!(id.len(), 36, "a UUID is made when none is given");
    }
    let (_, headers, _) = send(
        &s.app,
        request(Method::GET, "/nope", "", &[("x-request-id", "abc-123")]),
    )
    .await;
    assert_eq!(headers.get("x-request-id").unwrap(), "abc-123");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json_in_the_paths_dialect() {
    let s = stack(&[]).await;
    for (method, path, status, code) in [
        (
            Method::GET,
            "/v1/nothing",
            StatusCode::NOT_FOUND,
            ErrorCode::RouteNotFound,
        ),
        (
            Method::GET,
            "/v1/complete",
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
        ),
        (
            Method::GET,
            "/v1/chat/completions",
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
        ),
        (
            Method::DELETE,
            "/health",
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
        ),
    ] {
        let (got, headers, body) = send(&s.app, request(method, path, "", &[])).await;
        assert_eq!(got, status, "{path}");
        let e = error_of(path, got, &headers, &body);
        assert_eq!(e.code, code, "{path}");
        assert!(e.message.contains(path), "{path}: {}", e.message);
    }
}

#[tokio::test]
async fn every_bad_body_is_refused_with_its_code_in_both_dialects_before_the_node() {
    let s = stack(&[]).await;
    let long = "x".repeat(MAX_PROMPT_CHARS + 1);
    let huge = format!(r#"{{"prompt":"{}"}}"#, "y".repeat(MAX_BODY_BYTES));
    let cases: Vec<(&str, String, u16, ErrorCode, Option<&str>)> = vec![
        ("/v1/complete", "{".into(), 400, ErrorCode::BadRequest, None),
        ("/v1/complete", "".into(), 400, ErrorCode::BadRequest, None),
        (
            "/v1/complete",
            r#"{"prompt":"x","max_tokens":"many"}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("max_tokens"),
        ),
        (
            "/v1/complete",
            r#"{"max_tokens":3}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("prompt"),
        ),
        (
            "/v1/complete",
            r#"{"prompt":"x","max_tokens":5000}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("max_tokens"),
        ),
        (
            "/v1/complete",
            r#"{"prompt":"x","temperature":9}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("temperature"),
        ),
        (
            "/v1/complete",
            r#"{"prompt":"  "}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("prompt"),
        ),
        (
            "/v1/complete/stream",
            format!(r#"{{"prompt":"{long}"}}"#),
            413,
            ErrorCode::PromptTooLarge,
            None,
        ),
        (
            "/v1/complete",
            huge.clone(),
            413,
            ErrorCode::BodyTooLarge,
            None,
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role""#.into(),
            400,
            ErrorCode::BadRequest,
            None,
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[]}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("messages"),
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("max_tokens"),
        ),
        (
            "/v1/chat/completions",
            format!(r#"{{"messages":[{{"role":"user","content":"{long}"}}]}}"#),
            413,
            ErrorCode::PromptTooLarge,
            None,
        ),
        (
            "/v1/chat/completions",
            huge.clone(),
            413,
            ErrorCode::BodyTooLarge,
            None,
        ),
        (
            "/v1/completions",
            r#"{"prompt":["a","b"]}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("prompt"),
        ),
        (
            "/v1/prepare",
            r#"{"language":"rust"}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("prompt"),
        ),
    ];
    for (path, body, status, code, field) in cases {
        let (got, headers, bytes) = send(&s.app, request(Method::POST, path, &body, &[])).await;
        assert_eq!(
            got.as_u16(),
            status,
            "{path} {}",
            &body[..body.len().min(60)]
        );
        let e = error_of(path, got, &headers, &bytes);
        assert_eq!(e.code, code, "{path}: {}", e.message);
        assert_eq!(e.field.as_deref(), field, "{path}: {}", e.message);
    }
    // Invalid UTF-8 (cannot be written in a &str).
    let mut req = request(Method::POST, "/v1/complete", "", &[]);
    *req.body_mut() = Body::from(b"{\"prompt\":\"\xff\"}".to_vec());
    let (got, headers, bytes) = send(&s.app, req).await;
    let e = error_of("/v1/complete", got, &headers, &bytes);
    assert_eq!((got.as_u16(), e.code), (400, ErrorCode::BadRequest));
    assert!(e.message.contains("UTF-8"), "{}", e.message);
    assert_eq!(s.fake.generations(), 0, "no bad request reached the node");
}

#[tokio::test]
async fn streams_are_relayed_in_both_dialects() {
    let s = stack(&[]).await;
    let (status, headers, body) = post(&s.app, "/v1/complete/stream", COMPLETE).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "text/event-stream");
    let events: Vec<StreamEvent> = sse_data(&body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Token(t) => Some(t.token.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hello world");
    let StreamEvent::Done(done) = events.last().unwrap() else {
        panic!("last event is not done: {events:?}");
    };
    assert_eq!(done.total_tokens, 2);
    assert_eq!(
        done.model.as_deref(),
        Some("fake-model"),
        "routed to a served model"
    );
    assert!(done.preparation.is_some());

    let chat = r#"{"messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
    let (status, _, body) = post(&s.app, "/v1/chat/completions", chat).await;
    assert_eq!(status, 200);
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 2);

    let (status, _, body) = post(&s.app, "/v1/completions", r#"{"prompt":"x"}"#).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["text"], "Hello world");
    assert_eq!(v["object"], "text_completion");
}

#[tokio::test]
async fn node_errors_pass_through_with_their_code_and_retry_after() {
    let s = stack(&[]).await;
    let overloaded = ApiError::unavailable(ErrorCode::VpsOverloaded, "cpu at 95%", 7)
        .with_hint("cpu at 95%", "retry later");
    s.fake.set(Behaviour::Status {
        status: 503,
        body: overloaded
            .body(cerebrum_shared::error::Dialect::OpenAi)
            .to_string(),
        retry_after: Some(7),
    });
    for path in ["/v1/complete", "/v1/chat/completions"] {
        let body = if path == "/v1/complete" {
            COMPLETE
        } else {
            CHAT
        };
        let (status, headers, bytes) = post(&s.app, path, body).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(headers.get("retry-after").unwrap(), "7");
        let e = error_of(path, status, &headers, &bytes);
        assert_eq!(e.code, ErrorCode::VpsOverloaded);
        assert_eq!(e.message, "cpu at 95%");
    }
    // A node that lost the model answers in the Cerebrum dialect; the code survives.
    s.fake.set(Behaviour::Status {
        status: 404,
        body: ApiError::new(ErrorCode::ModelNotFound, "no model 'x'")
            .body(cerebrum_shared::error::Dialect::Cerebrum)
            .to_string(),
        retry_after: None,
    });
    let (status, headers, bytes) = post(&s.app, "/v1/chat/completions", CHAT).await;
    assert_eq!(status, 404);
    assert_eq!(
        error_of("/v1/chat/completions", status, &headers, &bytes).code,
        ErrorCode::ModelNotFound
    );
    // Another engine's error (llama-server's shape, numeric code).
    s.fake.set(Behaviour::Status {
        status: 500,
        body: json!({"error": {"code": 500, "message": "boom", "type": "server_error"}})
            .to_string(),
        retry_after: None,
    });
    let (status, headers, bytes) = post(&s.app, "/v1/complete", COMPLETE).await;
    assert_eq!(status, 500);
    let e = error_of("/v1/complete", status, &headers, &bytes);
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::UpstreamError, "boom")
    );
}

#[tokio::test]
async fn the_in_flight_permit_is_held_until_the_stream_ends() {
    let s = stack(&[("CEREBRUM_MAX_IN_FLIGHT", "1")]).await;
    s.fake.set(Behaviour::HoldAfterFirst);
    let res = s
        .app
        .clone()
        .oneshot(request(Method::POST, "/v1/complete/stream", COMPLETE, &[]))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut held = res.into_body().into_data_stream();
    let first = held.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("held"));
    assert_eq!(s.state.active(), 1);

    for (path, body) in [("/v1/complete", COMPLETE), ("/v1/chat/completions", CHAT)] {
        let (status, headers, bytes) = post(&s.app, path, body).await;
        assert_eq!(status, 503, "{path}");
        assert!(headers.contains_key("retry-after"));
        assert_eq!(
            error_of(path, status, &headers, &bytes).code,
            ErrorCode::Cm4Busy
        );
    }
    assert_eq!(
        s.fake.generations(),
        1,
        "shed requests never reach the node"
    );

    s.fake.release();
    while held.next().await.is_some() {}
    // hyper drops a finished body; so does the test.
    drop(held);
    assert_eq!(s.state.active(), 0, "the permit went with the stream");
    s.fake.set(Behaviour::Stream(vec!["ok".into()]));
    assert_eq!(post(&s.app, "/v1/complete", COMPLETE).await.0, 200);
}

#[tokio::test]
async fn client_keys_come_before_the_node_and_health_stays_open() {
    let s = stack(&[("CEREBRUM_CLIENT_KEYS", "alpha-key,beta-key")]).await;
    let cases = [
        (vec![], 401, Some(ErrorCode::MissingApiKey)),
        (
            vec![("x-api-key", "wrong")],
            403,
            Some(ErrorCode::InvalidApiKey),
        ),
        (vec![("x-api-key", "beta-key")], 200, None),
        (vec![("authorization", "Bearer alpha-key")], 200, None),
    ];
    for (headers, status, code) in cases {
        for path in ["/v1/complete", "/v1/chat/completions"] {
            let body = if path == "/v1/complete" {
                COMPLETE
            } else {
                CHAT
            };
            let (got, h, bytes) = send(&s.app, request(Method::POST, path, body, &headers)).await;
            assert_eq!(got.as_u16(), status, "{path} {headers:?}");
            if let Some(code) = code {
                assert_eq!(error_of(path, got, &h, &bytes).code, code);
            }
        }
    }
    assert_eq!(
        s.fake.generations(),
        4,
        "only the authorised requests reached the node"
    );
    for path in ["/health", "/health/ready"] {
        assert_eq!(
            send(&s.app, request(Method::GET, path, "", &[])).await.0,
            200
        );
    }
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let s = stack(&[
        ("CEREBRUM_RATE_LIMIT_PER_SECOND", "1"),
        ("CEREBRUM_RATE_LIMIT_BURST", "1"),
    ])
    .await;
    assert_eq!(post(&s.app, "/v1/complete", COMPLETE).await.0, 200);
    let (status, headers, bytes) = post(&s.app, "/v1/chat/completions", CHAT).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_some());
    assert_eq!(
        error_of("/v1/chat/completions", status, &headers, &bytes).code,
        ErrorCode::RateLimited
    );
    assert_eq!(s.fake.generations(), 1);
}

#[tokio::test]
async fn the_breaker_opens_after_failures_and_then_answers_without_the_node() {
    let s = stack(&[
        ("CEREBRUM_BREAKER_THRESHOLD", "2"),
        ("CEREBRUM_BREAKER_COOLDOWN_SECS", "60"),
    ])
    .await;
    s.fake.set(Behaviour::Status {
        status: 500,
        body: "{}".into(),
        retry_after: None,
    });
    for _ in 0..2 {
        assert_eq!(post(&s.app, "/v1/complete", COMPLETE).await.0, 500);
    }
    for path in ["/v1/complete", "/v1/chat/completions"] {
        let body = if path == "/v1/complete" {
            COMPLETE
        } else {
            CHAT
        };
        let (status, headers, bytes) = post(&s.app, path, body).await;
        assert_eq!(status, 503);
        let retry: u64 = headers
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(
            error_of(path, status, &headers, &bytes).code,
            ErrorCode::BreakerOpen
        );
    }
    assert_eq!(
        s.fake.generations(),
        2,
        "an open breaker does not call the node"
    );
    let (status, headers, bytes) =
        send(&s.app, request(Method::GET, "/health/ready", "", &[])).await;
    assert_eq!(status, 503);
    assert_eq!(
        error_of("/health/ready", status, &headers, &bytes).code,
        ErrorCode::BreakerOpen
    );
    let (_, _, body) = send(&s.app, request(Method::GET, "/health", "", &[])).await;
    let h: OrchestratorHealth = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (h.status.as_str(), h.breaker.as_str()),
        ("degraded", "open")
    );
}

#[tokio::test]
async fn a_stream_that_breaks_ends_with_a_final_error_event_in_both_dialects() {
    let s = stack(&[]).await;
    s.fake.set(Behaviour::BreakAfterFirst);
    let (status, _, body) = post(&s.app, "/v1/complete/stream", COMPLETE).await;
    assert_eq!(status, 200, "the stream had started");
    let events: Vec<StreamEvent> = sse_data(&body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(matches!(&events[0], StreamEvent::Token(t) if t.token == "partial"));
    let StreamEvent::Error(e) = events.last().unwrap() else {
        panic!("{events:?}");
    };
    assert_eq!(
        (e.error.as_str(), e.code, e.done),
        ("Streaming failed", Some(ErrorCode::StreamingFailed), true)
    );

    let chat = r#"{"messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let (_, _, body) = post(&s.app, "/v1/chat/completions", chat).await;
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let err: OpenAiErrorBody = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(err.error.code, Some(ErrorCode::StreamingFailed));
}

#[tokio::test]
async fn health_is_typed_and_readiness_follows_the_node() {
    let s = stack(&[]).await;
    let (status, _, body) = send(&s.app, request(Method::GET, "/health", "", &[])).await;
    assert_eq!(status, 200);
    let h: OrchestratorHealth = serde_json::from_slice(&body).unwrap();
    assert!(
        h.is_healthy() && h.vps_connected && h.vps_available,
        "{h:?}"
    );
    assert_eq!(h.max_in_flight, 2);
    let (status, _, body) = send(&s.app, request(Method::GET, "/health/ready", "", &[])).await;
    assert_eq!(
        (status.as_u16(), &body[..]),
        (200, &br#"{"ready":true}"#[..])
    );

    // A node that is not there: port 9 on loopback refuses.
    let state = build_state(config("http://127.0.0.1:9", &[])).unwrap();
    assert!(
        state.upstreams.first().health().is_none(),
        "nothing is known before the first probe"
    );
    state.upstreams.first().refresh_health().await;
    let app = router(state);
    let (_, _, body) = send(&app, request(Method::GET, "/health", "", &[])).await;
    let h: OrchestratorHealth = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (h.status.as_str(), h.vps_status.as_str(), h.vps_connected),
        ("degraded", "unreachable", false)
    );
    let (status, headers, bytes) = send(&app, request(Method::GET, "/health/ready", "", &[])).await;
    assert_eq!(status, 503);
    assert_eq!(
        error_of("/health/ready", status, &headers, &bytes).code,
        ErrorCode::VpsUnavailable
    );
    // A generation against it fails fast with the same code.
    let (status, headers, bytes) = post(&app, "/v1/complete", COMPLETE).await;
    assert_eq!(status, 503);
    assert_eq!(
        error_of("/v1/complete", status, &headers, &bytes).code,
        ErrorCode::VpsUnavailable
    );
}

#[tokio::test]
async fn the_model_list_is_read_in_the_background_and_kept_when_the_node_fails() {
    let s = stack(&[("CEREBRUM_FALLBACK_MODEL", "b")]).await;
    assert_eq!(
        s.state.upstreams.first().models().unwrap_or_default(),
        vec!["fake-model".to_string()]
    );
    s.fake.set_models(&["a", "b"]);
    assert!(s.state.upstreams.first().refresh_models().await);
    assert_eq!(
        s.state.upstreams.first().models().unwrap_or_default(),
        vec!["a".to_string(), "b".into()]
    );
    // Requests route from the cached list without asking the node.
    let (_, _, body) = post(&s.app, "/v1/complete", COMPLETE).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["model_used"], "b", "{v}");

    let gone = build_state(config("http://127.0.0.1:9", &[])).unwrap();
    assert!(!gone.upstreams.first().refresh_models().await);
    assert!(
        gone.upstreams
            .first()
            .models()
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn a_model_served_nowhere_is_a_404_naming_what_each_upstream_serves() {
    // No fallback model: the route for Python (qwen_7b) is served nowhere.
    let s = stack(&[("CEREBRUM_FALLBACK_MODEL", "")]).await;
    let body = json!({"prompt": "x", "language": "python", "max_tokens": 4}).to_string();
    let (status, headers, bytes) = post(&s.app, "/v1/complete", &body).await;
    assert_eq!(status, 404);
    let e = error_of("/v1/complete", status, &headers, &bytes);
    assert_eq!(e.code, ErrorCode::ModelNotFound);
    assert!(
        e.message.starts_with("model 'qwen_7b' (the route for python) is not served by any upstream: vps (http://127.0.0.1:")
            && e.message.contains(") serves fake-model.")
            && e.message.contains("CEREBRUM_FALLBACK_MODEL"),
        "{}",
        e.message
    );
    assert_eq!(s.fake.generations(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_follow_up_sends_the_previous_turn_exactly_as_before() {
    let s = stack(&[]).await;
    // A pasted file big enough to be prepared, then a follow-up carrying it back.
    let mut file = String::from("Why does parse_config fail?\n```python\n");
    for i in 0..60 {
        file.push_str(&format!("def step_{i}(x):\n    return x + {i}\n\n"));
    }
    file.push_str("def parse_config(path):\n    return open(path).read().split('=')\n```");
    let first = json!([
        {"role": "system", "content": "You review Python."},
        {"role": "user", "content": file},
    ]);
    let body = json!({"messages": first, "max_tokens": 8}).to_string();
    let (status, headers, _) = post(&s.app, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    let prep: cerebrum_shared::prepare::Preparation =
        serde_json::from_slice(headers["x-cerebrum-preparation"].as_bytes()).unwrap();
    assert!(prep.applied, "the paste was cut down: {prep:?}");

    let mut second = first.as_array().unwrap().clone();
    second.push(json!({"role": "assistant", "content": "Hello world"}));
    second.push(json!({"role": "user", "content": "Now add a test for it."}));
    let body = json!({"messages": second, "max_tokens": 8}).to_string();
    assert_eq!(post(&s.app, "/v1/chat/completions", &body).await.0, 200);

    let sent = s.fake.bodies();
    let (turn1, turn2) = (
        sent[0]["messages"].as_array().unwrap(),
        sent[1]["messages"].as_array().unwrap(),
    );
    assert_eq!(turn1[0]["role"], "system", "the system message is kept");
    assert!(turn1[1]["content"].as_str().unwrap().len() < file.len());
    assert_eq!(
        &turn2[..turn1.len()],
        &turn1[..],
        "turn 2 starts with exactly what turn 1 sent, so the node's cache hits"
    );
    assert_eq!(turn2.len(), turn1.len() + 2);
}

#[tokio::test]
async fn a_request_before_the_model_list_is_read_routes_to_a_served_model() {
    // The node came up after the orchestrator: nothing cached yet.
    let fake = FakeUpstream::start().await;
    let state = build_state(config(&fake.url, &[])).unwrap();
    assert!(
        state
            .upstreams
            .first()
            .models()
            .unwrap_or_default()
            .is_empty()
    );
    let app = router(state.clone());
    // Language routing alone would pick qwen_7b, which this node does not serve.
    let (status, _, body) = post(
        &app,
        "/v1/complete",
        r#"{"prompt":"def add(a, b):","language":"python","max_tokens":8}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(fake.bodies()[0]["model"], "fake-model");
    assert_eq!(
        state.upstreams.first().models().unwrap_or_default(),
        ["fake-model"]
    );
}
