//! The orchestrator against a node that misbehaves on command (the fake
//! upstream, a real loopback server): for each fault, the status, the final
//! SSE event in both dialects, the breaker afterwards, the counters in
//! `/metrics`, and that the request ended within its configured bounds.
//!
//! Each case runs on its own stack with a breaker threshold of 1, so "counts
//! against the node" is visible as an open breaker. Timeouts are configured
//! to [`TIMEOUT`]; a fault that needs no timeout must end well before it.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use cerebrum::app::router;
use cerebrum::config::OrchestratorConfig;
use cerebrum::serve::build_state;
use cerebrum::upstream::BreakerState;
use cerebrum::upstream::bounded::MAX_SSE_EVENT_BYTES;
use cerebrum_shared::cerebrum::{OrchestratorHealth, StreamEvent, VpsAuth};
use cerebrum_shared::error::{ApiError, Dialect, ErrorCode, OpenAiErrorBody};
use cerebrum_testkit::fake::{Behaviour, FakeUpstream, Gate};
use cerebrum_testkit::router::{self as testkit, error_of, send, sse_data};
use futures::StreamExt;
use tower::ServiceExt;

/// The first-token and idle timeouts every case is configured with.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Slack on top of a bound (scheduling, loopback, a slow CI machine).
const MARGIN: Duration = Duration::from_secs(2);
/// The bound for a fault no timeout is needed to see: under [`TIMEOUT`], so a
/// case that ended by a timeout instead fails.
const PROMPT: Duration = Duration::from_millis(2500);

const COMPLETE_STREAM: &str = "/v1/complete/stream";
const CHAT: &str = "/v1/chat/completions";

fn body_for(path: &str) -> &'static str {
    match path {
        COMPLETE_STREAM => r#"{"prompt":"def add(a, b):","max_tokens":8}"#,
        _ => r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"stream":true}"#,
    }
}

mod inproc;
use inproc::Stack;

/// The settings every case starts from (`extra` over them).
fn config(endpoint: &str, extra: &[(&str, &str)]) -> OrchestratorConfig {
    let secs = TIMEOUT.as_secs().to_string();
    let env: Vec<(&str, &str)> = [
        ("VPS_API_KEY", ""),
        ("CEREBRUM_FIRST_TOKEN_TIMEOUT_SECS", &secs),
        ("CEREBRUM_IDLE_TIMEOUT_SECS", &secs),
        ("CEREBRUM_CONNECT_TIMEOUT_SECS", "1"),
        ("CEREBRUM_BREAKER_THRESHOLD", "1"),
        ("CEREBRUM_BREAKER_COOLDOWN_SECS", "60"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    inproc::config(endpoint, &env)
}

/// A router in front of a fake node, its health and model list already read.
async fn stack(extra: &[(&str, &str)]) -> Stack {
    let fake = FakeUpstream::start().await;
    stack_on(fake, extra).await
}

async fn stack_on(fake: FakeUpstream, extra: &[(&str, &str)]) -> Stack {
    let config = config(&fake.url, extra);
    inproc::stack_on(fake, config, router).await
}

fn request(method: Method, path: &str, body: &str) -> Request<Body> {
    testkit::request(method, path, body.to_string(), [127, 0, 0, 1], &[])
}

/// Runs `f`, failing the test when it does not end within `bound`; the time it took.
async fn within<T>(bound: Duration, what: &str, f: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = tokio::time::timeout(bound, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: did not end within {bound:?}"));
    (out, started.elapsed())
}

/// One streamed request, read to its end within `bound`.
async fn stream(
    s: &Stack,
    path: &str,
    bound: Duration,
) -> (StatusCode, HeaderMap, Bytes, Duration) {
    let ((status, headers, body), took) = within(
        bound,
        path,
        send(&s.app, request(Method::POST, path, body_for(path))),
    )
    .await;
    (status, headers, body, took)
}

/// `/metrics` as name → value.
/// Every series by name, labelled ones (per upstream) summed.
async fn metrics(app: &Router) -> BTreeMap<String, f64> {
    let (status, _, body) = send(app, request(Method::GET, "/metrics", "")).await;
    assert_eq!(status, 200);
    let mut all = BTreeMap::new();
    for line in String::from_utf8_lossy(&body).lines() {
        let Some((series, value)) = line.rsplit_once(' ').filter(|_| !line.starts_with('#')) else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let Ok(v) = value.parse::<f64>() {
            *all.entry(name.to_string()).or_insert(0.0) += v;
        }
    }
    all
}

/// How the generations ended, by outcome, as `/metrics` counts them.
#[derive(Debug, Default, PartialEq)]
struct Outcomes {
    success: u32,
    failed: u32,
    refused: u32,
    queued: u32,
    cancelled: u32,
}

/// Reads the outcome counters and checks that every generation sent has
/// exactly one of them.
async fn outcomes(app: &Router) -> Outcomes {
    let m = metrics(app).await;
    let get = |name: &str| {
        *m.get(name)
            .unwrap_or_else(|| panic!("/metrics has no {name}")) as u32
    };
    let o = Outcomes {
        success: get("cerebrum_upstream_success_total"),
        failed: get("cerebrum_upstream_failures_total"),
        refused: get("cerebrum_upstream_refused_total"),
        queued: get("cerebrum_upstream_queued_timeouts_total"),
        cancelled: get("cerebrum_upstream_cancelled_total"),
    };
    assert_eq!(
        get("cerebrum_upstream_requests_total"),
        o.success + o.failed + o.refused + o.queued + o.cancelled,
        "every generation sent has exactly one outcome: {o:?}"
    );
    o
}

/// The breaker opened (threshold 1) and the request was counted as failed: a
/// fault that counts against the node.
async fn counted_against_the_node(s: &Stack, path: &str) {
    assert_eq!(s.breaker(), BreakerState::Open, "{path}");
    assert_eq!(outcomes(&s.app).await, failed_once(), "{path}");
}

fn failed_once() -> Outcomes {
    Outcomes {
        failed: 1,
        ..Default::default()
    }
}

fn refused_once() -> Outcomes {
    Outcomes {
        refused: 1,
        ..Default::default()
    }
}

/// The last Cerebrum event, which must be an error; its code.
fn cerebrum_final_error(body: &[u8]) -> ErrorCode {
    let events: Vec<StreamEvent> = sse_data(body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect();
    match events.last() {
        Some(StreamEvent::Error(e)) => {
            assert!(e.done, "{e:?}");
            e.code.expect("the error event has a code")
        }
        other => panic!("the last event is not an error: {other:?} in {events:?}"),
    }
}

/// The OpenAI stream's end: an error chunk, then `[DONE]`; the error's code.
fn openai_final_error(body: &[u8]) -> ErrorCode {
    let data = sse_data(body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let err: OpenAiErrorBody = serde_json::from_str(&data[data.len() - 2])
        .unwrap_or_else(|e| panic!("{e}: the event before [DONE] is not an error: {data:?}"));
    err.error.code.expect("the error chunk has a code")
}

/// The final error of a stream that had started (200), in `path`'s dialect.
fn final_error(path: &str, body: &[u8]) -> ErrorCode {
    if path == CHAT {
        openai_final_error(body)
    } else {
        cerebrum_final_error(body)
    }
}

/// Asserts a failure before the first token: `status`, `code`, no stream.
fn refused_before_streaming(
    path: &str,
    got: (StatusCode, &HeaderMap, &[u8]),
    status: u16,
    code: ErrorCode,
) -> ApiError {
    assert_eq!(got.0.as_u16(), status, "{path}: {:?}", got.2);
    let e = error_of(path, got.0, got.1, got.2);
    assert_eq!(e.code, code, "{path}: {}", e.message);
    e
}

#[tokio::test]
async fn slow_first_byte_on_an_idle_node_is_a_504_that_counts() {
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[]).await;
        s.fake
            .set(Behaviour::SlowFirstByte(Duration::from_secs(30)));
        let (status, headers, body, took) = stream(&s, path, TIMEOUT + MARGIN).await;
        assert!(took >= TIMEOUT, "{path}: ended by the first-token timeout");
        let e =
            refused_before_streaming(path, (status, &headers, &body), 504, ErrorCode::VpsTimeout);
        assert!(e.message.contains("no token within 3 s"), "{}", e.message);
        assert!(!e.message.contains("busy"), "{}", e.message);
        counted_against_the_node(&s, path).await;
    }
}

#[tokio::test]
async fn slow_first_byte_on_a_busy_node_is_queueing_and_does_not_count() {
    // The node's own health says it is busy: refusing work, or loading a model.
    for (status, available, loading) in [
        ("overloaded", false, &[][..]),
        ("healthy", true, &["qwen_7b"][..]),
    ] {
        let s = stack(&[]).await;
        s.fake.set_health(status, available, loading);
        s.state.upstreams.first().refresh_health().await;
        s.fake
            .set(Behaviour::SlowFirstByte(Duration::from_secs(30)));
        let (got, headers, body, took) = stream(&s, CHAT, TIMEOUT + MARGIN).await;
        assert!(took >= TIMEOUT);
        let e = refused_before_streaming(CHAT, (got, &headers, &body), 504, ErrorCode::VpsTimeout);
        assert!(e.message.contains("busy"), "{}", e.message);
        assert_eq!(s.breaker(), BreakerState::Closed, "{status} {loading:?}");
        assert_eq!(
            outcomes(&s.app).await,
            Outcomes {
                queued: 1,
                ..Default::default()
            }
        );
    }
}

#[tokio::test]
async fn a_first_token_timeout_behind_another_of_our_streams_does_not_count() {
    let s = stack(&[]).await;
    s.fake.set(Behaviour::HoldAfterFirst);
    let res = s
        .app
        .clone()
        .oneshot(request(Method::POST, CHAT, body_for(CHAT)))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut held = res.into_body().into_data_stream();
    assert!(held.next().await.is_some());
    // The node is healthy by its own account, but ours waits behind the held stream.
    s.fake
        .set(Behaviour::SlowFirstByte(Duration::from_secs(30)));
    let (got, headers, body, _) = stream(&s, COMPLETE_STREAM, TIMEOUT + MARGIN).await;
    refused_before_streaming(
        COMPLETE_STREAM,
        (got, &headers, &body),
        504,
        ErrorCode::VpsTimeout,
    );
    assert_eq!(s.breaker(), BreakerState::Closed);
    s.fake.release();
    while held.next().await.is_some() {}
    drop(held);
    assert_eq!(
        outcomes(&s.app).await,
        Outcomes {
            success: 1,
            queued: 1,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn a_stall_mid_stream_ends_with_an_error_event_after_the_idle_timeout() {
    for (path, code) in [
        // Once tokens flowed, the Cerebrum dialect calls any failure a broken
        // stream; OpenAI's error chunk keeps the cause.
        (COMPLETE_STREAM, ErrorCode::StreamingFailed),
        (CHAT, ErrorCode::VpsTimeout),
    ] {
        let s = stack(&[]).await;
        s.fake.set(Behaviour::StallAfterFirst);
        let (status, _, body, took) = stream(&s, path, TIMEOUT + MARGIN).await;
        assert_eq!(status, 200, "{path}");
        assert!(took >= TIMEOUT, "{path}: ended by the idle timeout");
        assert!(String::from_utf8_lossy(&body).contains("stalled"));
        assert_eq!(final_error(path, &body), code, "{path}");
        counted_against_the_node(&s, path).await;
    }
}

#[tokio::test]
async fn garbage_before_the_first_token_is_a_502_that_counts_once() {
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[]).await;
        s.fake
            .set(Behaviour::Garbage("<html>not an event</html>".into()));
        let (status, headers, body, _) = stream(&s, path, PROMPT).await;
        let e = refused_before_streaming(
            path,
            (status, &headers, &body),
            502,
            ErrorCode::StreamingFailed,
        );
        assert!(e.message.contains("not JSON"), "{}", e.message);
        counted_against_the_node(&s, path).await;
    }
}

#[tokio::test]
async fn a_truncated_stream_ends_with_an_error_event_or_a_502_before_any_token() {
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[]).await;
        s.fake
            .set(Behaviour::Truncated(vec!["Hel".into(), "lo".into()]));
        let (status, _, body, _) = stream(&s, path, PROMPT).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            final_error(path, &body),
            ErrorCode::StreamingFailed,
            "{path}"
        );
        counted_against_the_node(&s, path).await;

        let s = stack(&[]).await;
        s.fake.set(Behaviour::Truncated(vec![]));
        let (status, headers, body, _) = stream(&s, path, PROMPT).await;
        refused_before_streaming(
            path,
            (status, &headers, &body),
            502,
            ErrorCode::StreamingFailed,
        );
        counted_against_the_node(&s, path).await;
    }
}

#[tokio::test]
async fn a_stream_failing_before_its_first_token_counts_once_against_the_breaker() {
    // Threshold 2: one failure recorded twice would open it.
    let s = stack(&[("CEREBRUM_BREAKER_THRESHOLD", "2")]).await;
    s.fake.set(Behaviour::Truncated(vec![]));
    let (status, _, _, _) = stream(&s, CHAT, PROMPT).await;
    assert_eq!(status, 502);
    assert_eq!(s.breaker(), BreakerState::Closed);
    assert_eq!(outcomes(&s.app).await, failed_once());
    let (status, _, _, _) = stream(&s, CHAT, PROMPT).await;
    assert_eq!(status, 502);
    assert_eq!(s.breaker(), BreakerState::Open);
}

#[tokio::test]
async fn an_enormous_line_ends_the_stream_at_the_cap_without_reading_the_rest() {
    const LINE: usize = 64 << 20;
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[]).await;
        s.fake.set(Behaviour::EnormousLine(LINE));
        // Ended by the cap, not by the idle timeout.
        let (status, _, body, _) = stream(&s, path, PROMPT).await;
        assert_eq!(status, 200, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("big"));
        assert_eq!(
            final_error(path, &body),
            ErrorCode::StreamingFailed,
            "{path}"
        );
        assert!(
            body.len() < 4096,
            "{path}: the line is not relayed ({} bytes)",
            body.len()
        );
        assert!(
            String::from_utf8_lossy(&body).contains("SSE event"),
            "{path}: the error names the cause"
        );
        // The connection was dropped: the fake could not push the whole line
        // (the cap, plus what the sockets buffer).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let streamed = s.fake.streamed_bytes();
        assert!(
            (MAX_SSE_EVENT_BYTES..LINE / 2).contains(&streamed),
            "{path}: {streamed} bytes of the line left the fake"
        );
        counted_against_the_node(&s, path).await;
    }
}

#[tokio::test]
async fn a_reset_mid_stream_ends_with_an_error_event() {
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[]).await;
        s.fake.set(Behaviour::ResetAfterFirst);
        let (status, _, body, _) = stream(&s, path, PROMPT).await;
        assert_eq!(status, 200, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("partial"));
        assert_eq!(
            final_error(path, &body),
            ErrorCode::StreamingFailed,
            "{path}"
        );
        counted_against_the_node(&s, path).await;
    }
}

#[tokio::test]
async fn a_500_is_passed_on_and_counts() {
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[]).await;
        s.fake.set(Behaviour::Status {
            status: 500,
            body: ApiError::new(ErrorCode::InferenceFailed, "decode failed")
                .body(Dialect::OpenAi)
                .to_string(),
            retry_after: None,
        });
        let (status, headers, body, _) = stream(&s, path, PROMPT).await;
        let e = refused_before_streaming(
            path,
            (status, &headers, &body),
            500,
            ErrorCode::InferenceFailed,
        );
        assert_eq!(e.message, "decode failed");
        counted_against_the_node(&s, path).await;
    }
}

#[tokio::test]
async fn a_503_with_retry_after_is_passed_on_and_does_not_count() {
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[]).await;
        s.fake.set(Behaviour::Status {
            status: 503,
            body: ApiError::unavailable(ErrorCode::VpsOverloaded, "all slots busy", 7)
                .body(Dialect::OpenAi)
                .to_string(),
            retry_after: Some(7),
        });
        let (status, headers, body, _) = stream(&s, path, PROMPT).await;
        refused_before_streaming(
            path,
            (status, &headers, &body),
            503,
            ErrorCode::VpsOverloaded,
        );
        assert_eq!(headers.get("retry-after").unwrap(), "7");
        assert_eq!(s.breaker(), BreakerState::Closed);
        assert_eq!(outcomes(&s.app).await, refused_once(), "{path}");
    }
}

async fn health(app: &Router) -> OrchestratorHealth {
    let (status, _, body) = send(app, request(Method::GET, "/health", "")).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

/// A node that refuses the orchestrator: 502 `upstream_auth` naming `fix` in
/// both dialects, the breaker untouched, and `/health`, `/health/ready` and
/// `/metrics` saying so. Returns the stack.
async fn refused_by_the_node(gate: Gate, key: &str, fix: &str) -> Stack {
    let fake = FakeUpstream::start().await;
    fake.set_gate(gate);
    let s = stack_on(fake, &[("VPS_API_KEY", key)]).await;
    for path in [COMPLETE_STREAM, CHAT] {
        let (status, headers, body, _) = stream(&s, path, PROMPT).await;
        let e = refused_before_streaming(
            path,
            (status, &headers, &body),
            502,
            ErrorCode::UpstreamAuth,
        );
        assert!(e.message.contains(fix), "{path}: {}", e.message);
        assert!(
            !e.message.contains("--key"),
            "not the user's key: {}",
            e.message
        );
    }
    assert_eq!(s.breaker(), BreakerState::Closed);
    assert_eq!(
        outcomes(&s.app).await,
        Outcomes {
            refused: 2,
            ..Default::default()
        }
    );
    assert_eq!(metrics(&s.app).await["cerebrum_upstream_auth_refused"], 1.0);
    let h = health(&s.app).await;
    assert_eq!(
        (h.status.as_str(), h.vps_auth),
        ("degraded", VpsAuth::Refused)
    );
    assert!(
        h.vps_auth_problem
            .as_deref()
            .is_some_and(|p| p.contains(fix)),
        "{h:?}"
    );
    let (status, headers, body) = send(&s.app, request(Method::GET, "/health/ready", "")).await;
    let e = refused_before_streaming(
        "/health/ready",
        (status, &headers, &body),
        503,
        ErrorCode::UpstreamAuth,
    );
    assert!(e.message.contains(fix), "{}", e.message);
    s
}

#[tokio::test]
async fn a_401_for_a_missing_key_is_the_operators_502_and_health_shows_it() {
    let s = refused_by_the_node(
        Gate::Key("the-nodes-key-0123456789".into()),
        "",
        "VPS_API_KEY is empty",
    )
    .await;
    // The background probe saw it too: the model list is the authenticated route.
    s.state.upstreams.first().refresh_models().await;
    assert_eq!(health(&s.app).await.vps_auth, VpsAuth::Refused);
    // Fixed on the node's side: the next probe clears it.
    s.fake.set_gate(Gate::Open);
    assert!(s.state.upstreams.first().refresh_models().await);
    let h = health(&s.app).await;
    assert_eq!((h.status.as_str(), h.vps_auth), ("healthy", VpsAuth::Ok));
    let (status, _, _) = send(&s.app, request(Method::GET, "/health/ready", "")).await;
    assert_eq!(status, 200);
    assert_eq!(metrics(&s.app).await["cerebrum_upstream_auth_refused"], 0.0);
}

#[tokio::test]
async fn a_403_for_a_wrong_key_names_vps_api_key() {
    let s = refused_by_the_node(
        Gate::Key("the-nodes-key-0123456789".into()),
        "not-the-nodes-key-987654321",
        "set VPS_API_KEY on the Pi",
    )
    .await;
    let h = health(&s.app).await;
    assert!(
        h.vps_auth_problem
            .as_deref()
            .is_some_and(|p| p.contains("invalid_api_key")),
        "the node's code is quoted: {h:?}"
    );
    // The key was sent, to the node only.
    assert!(s.fake.received().iter().any(|r| {
        r.headers.get("x-api-key").map(|v| v.as_bytes()) == Some(b"not-the-nodes-key-987654321")
    }));
}

#[tokio::test]
async fn a_403_for_a_peer_not_allowed_names_allowed_cm4_ip() {
    let s = refused_by_the_node(Gate::PeerNotAllowed, "any-key-0123456789", "ALLOWED_CM4_IP").await;
    assert!(
        !health(&s.app)
            .await
            .vps_auth_problem
            .unwrap()
            .contains("VPS_API_KEY"),
        "the key is not the problem"
    );
}

#[tokio::test]
async fn a_redirect_is_a_502_naming_it_and_the_key_goes_nowhere_else() {
    let elsewhere = FakeUpstream::start().await;
    for path in [COMPLETE_STREAM, CHAT] {
        let s = stack(&[("VPS_API_KEY", "s3cret-node-key-0123")]).await;
        let location = format!("{}/v1/chat/completions", elsewhere.url);
        s.fake.set(Behaviour::Redirect {
            status: 307,
            location: location.clone(),
        });
        let (status, headers, body, _) = stream(&s, path, PROMPT).await;
        let e = refused_before_streaming(
            path,
            (status, &headers, &body),
            502,
            ErrorCode::UpstreamError,
        );
        assert!(
            e.message.contains("307") && e.message.contains(&location),
            "{}",
            e.message
        );
        assert!(e.message.contains("VPS_ENDPOINT"), "{}", e.message);
        assert_eq!(s.breaker(), BreakerState::Closed);
        assert_eq!(outcomes(&s.app).await, refused_once(), "{path}");
    }
    assert!(
        elsewhere.received().is_empty(),
        "the redirect target was asked: {:?}",
        elsewhere.received()
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_is_cancelled_not_a_failure() {
    let s = stack(&[]).await;
    s.fake.set(Behaviour::HoldAfterFirst);
    let res = s
        .app
        .clone()
        .oneshot(request(Method::POST, CHAT, body_for(CHAT)))
        .await
        .unwrap();
    let mut held = res.into_body().into_data_stream();
    assert!(held.next().await.is_some());
    drop(held);
    assert_eq!(s.breaker(), BreakerState::Closed);
    assert_eq!(
        outcomes(&s.app).await,
        Outcomes {
            cancelled: 1,
            ..Default::default()
        }
    );
    // And the next one goes through.
    s.fake.set(Behaviour::Stream(vec!["ok".into()]));
    let (status, _, _, _) = stream(&s, CHAT, PROMPT).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes(&s.app).await.success, 1);
}

/// `scripts/install-pi --check` against a real orchestrator on loopback whose
/// node refuses its key: it fails and says what to fix; with the key fixed on
/// the node's side it passes.
#[tokio::test]
async fn install_pis_check_fails_when_the_node_refuses_the_key() {
    let fake = FakeUpstream::start().await;
    fake.set_gate(Gate::Key("the-nodes-key-0123456789".into()));
    let state = build_state(config(
        &fake.url,
        &[("VPS_API_KEY", "wrong-key-0123456789")],
    ))
    .unwrap();
    tokio::spawn(state.upstreams.clone().run());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let app = router(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/install-pi");
    let check = || {
        tokio::process::Command::new("bash")
            .args([script, "--check", "--host", "127.0.0.1", "--port", &port])
            .output()
    };
    let (out, _) = within(Duration::from_secs(30), "install-pi --check", check()).await;
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("install-pi: error:") && stderr.contains("set VPS_API_KEY on the Pi"),
        "{stderr}"
    );
    // Fixed on the node's side: the background probe (every 2 s) sees it.
    fake.set_gate(Gate::Open);
    let bound = cerebrum::upstream::facts::HEALTH_EVERY + MARGIN;
    within(bound, "the probe seeing the fix", async {
        while state.upstreams.first().auth().0 != VpsAuth::Ok {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (out, _) = within(Duration::from_secs(30), "install-pi --check", check()).await;
    let out = out.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready: the node accepts"));
}

/// The fake's reset is a real TCP RST (what the orchestrator is tested against above).
#[tokio::test]
async fn the_fakes_reset_is_a_tcp_rst() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeUpstream::start().await;
    fake.set(Behaviour::ResetAfterFirst);
    let addr = fake.url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body_for(CHAT);
    tcp.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 8192];
    let (end, _) = within(PROMPT, "reading until the reset", async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(e) => break Err(e.kind()),
            }
        }
    })
    .await;
    assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));
}
