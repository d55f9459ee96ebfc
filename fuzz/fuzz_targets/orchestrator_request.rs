//! Request parsing on the orchestrator tier: arbitrary bodies sent through the
//! whole router (`cerebrum::app::router`: body limit, client auth, the
//! in-flight limit, `ApiJson` parsing into the shared request types, each
//! handler's validation, preparation and routing), in front of an in-process
//! fake node (`cerebrum_testkit::fake`) that streams a short answer.
//!
//! Input: one byte choosing the route (low 3 bits) and the Content-Type (next
//! 2 bits: mostly `application/json`), then the body.
//! Invariants: no panic; never a 500; every error is a JSON error body of
//! either dialect whose code has the status answered; every 200 is JSON or a
//! stream that ends with its final event (`done`/error event, or `[DONE]`).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use cerebrum::app::router;
use cerebrum::config::OrchestratorConfig;
use cerebrum::serve::build_state;
use cerebrum_fuzz::{split_first, sse_events};
use cerebrum_shared::error::ApiError;
use cerebrum_testkit::fake::FakeUpstream;
use http::{Request, header};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::ServiceExt;

const ROUTES: [&str; 6] = [
    "/v1/complete",
    "/v1/complete/stream",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/prepare",
    "/v1/chat/completions",
];

struct World {
    rt: Runtime,
    app: Router,
    _fake: FakeUpstream,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let fake = rt.block_on(FakeUpstream::start());
        let env = [
            ("VPS_ENDPOINT", fake.url.as_str()),
            ("CEREBRUM_DEFAULT_MODEL", "fake-model"),
            ("CEREBRUM_ROUTES", "python=fake-model"),
            // Sequential requests never shed; a breaker opened by odd answers stays open.
            ("CEREBRUM_BREAKER_COOLDOWN_SECS", "3600"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = OrchestratorConfig::resolve(None, &env, &Default::default()).expect("config");
        let state = build_state(config).expect("state");
        World {
            app: router(state),
            rt,
            _fake: fake,
        }
    })
}

fn check_stream(path: &str, body: &[u8]) {
    let (events, broken) = sse_events(vec![bytes::Bytes::copy_from_slice(body)]);
    assert!(!broken, "unreadable stream from {path}");
    let last = events
        .last()
        .unwrap_or_else(|| panic!("empty stream from {path}"));
    if path == "/v1/complete/stream" {
        let v: serde_json::Value = serde_json::from_str(last).expect("final event is JSON");
        assert!(
            v["done"] == true,
            "stream from {path} ends without done: {last}"
        );
    } else {
        assert_eq!(last, "[DONE]", "stream from {path} ends without [DONE]");
    }
}

fuzz_target!(|data: &[u8]| {
    let (choice, body) = split_first(data);
    let path = ROUTES[usize::from(choice & 7) % ROUTES.len()];
    let content_type = match (choice >> 3) & 3 {
        0 | 1 => Some("application/json"),
        2 => Some("text/plain"),
        _ => None,
    };
    let w = world();
    let mut request = Request::post(path).header(header::HOST, "127.0.0.1:7000");
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let request = request.body(Body::from(body.to_vec())).expect("request");
    let (status, headers, bytes) = w.rt.block_on(async {
        let response = w.app.clone().oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = tokio::time::timeout(
            Duration::from_secs(30),
            axum::body::to_bytes(body, usize::MAX),
        )
        .await
        .expect("the answer ends")
        .expect("the body reads");
        (parts.status.as_u16(), parts.headers, bytes)
    });
    assert_ne!(
        status,
        500,
        "500 from {path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if status >= 400 {
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("error body is JSON");
        assert!(json.is_object(), "{json}");
        let e = ApiError::from_response(status, &headers, &bytes);
        assert_eq!(e.status, status);
        assert_eq!(
            e.code.status(),
            status,
            "code {:?} answered as {status}",
            e.code
        );
        return;
    }
    assert_eq!(status, 200, "{path}");
    let is_stream = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if is_stream {
        check_stream(path, &bytes);
    } else {
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("a 200 is JSON");
    }
});
