//! The node's router in process (`oneshot`) with no model loaded: auth and the
//! allow-list, every error shape in both dialects, limits, unknown and broken
//! models, request ids. Runs in seconds; nothing is generated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use cerebrum_node::app::router;
use cerebrum_node::config::NodeConfig;
use cerebrum_node::server::build_state;
use cerebrum_shared::cerebrum::{ModelsResponse, NodeHealth};
use cerebrum_shared::error::ErrorCode;
use cerebrum_shared::limits::MAX_BODY_BYTES;
use cerebrum_testkit::router::{error_of, request, send};

const KEY: &str = "router-test-key-0123456789";
const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
const ALLOWED: [u8; 4] = [10, 77, 0, 1];
const STRANGER: [u8; 4] = [10, 77, 0, 9];

/// A models folder with one file that is not a GGUF (so loading it fails).
fn models_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cerebrum-router-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.gguf"), b"GGUF but not really").unwrap();
    dir
}

fn app(tag: &str) -> Router {
    let env: BTreeMap<String, String> = [
        ("CEREBRUM_API_KEY", KEY),
        ("CEREBRUM_MODELS_DIR", models_dir(tag).to_str().unwrap()),
        ("ALLOWED_CM4_IP", "10.77.0.1"),
        ("CEREBRUM_N_THREADS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = NodeConfig::resolve(Default::default(), &env, &Default::default()).unwrap();
    router(build_state(config))
}

async fn post(app: &Router, path: &str, body: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(
        app,
        request(
            Method::POST,
            path,
            body.to_string(),
            LOOPBACK,
            &[("x-api-key", KEY)],
        ),
    )
    .await
}

#[tokio::test]
async fn health_is_public_typed_and_carries_a_request_id() {
    let app = app("health");
    let (status, headers, body) = send(
        &app,
        request(Method::GET, "/health", Body::empty(), STRANGER, &[]),
    )
    .await;
    assert_eq!(status, 200);
    let h: NodeHealth = serde_json::from_slice(&body).unwrap();
    assert!(h.models_in_cache.is_empty(), "nothing is loaded at start");
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn keys_and_the_allow_list_guard_every_other_route_in_its_dialect() {
    let app = app("auth");
    let cases = [
        (LOOPBACK, vec![], 401, ErrorCode::MissingApiKey),
        (
            LOOPBACK,
            vec![("x-api-key", "nope")],
            403,
            ErrorCode::InvalidApiKey,
        ),
        (
            LOOPBACK,
            vec![("authorization", "Bearer nope")],
            403,
            ErrorCode::InvalidApiKey,
        ),
        (
            STRANGER,
            vec![("x-api-key", KEY)],
            403,
            ErrorCode::PeerNotAllowed,
        ),
    ];
    for path in ["/v1/inference", "/v1/chat/completions", "/v1/completions"] {
        for (peer, headers, status, code) in &cases {
            let (got, h, body) =
                send(&app, request(Method::POST, path, "{}", *peer, headers)).await;
            assert_eq!(got.as_u16(), *status, "{path} {headers:?}");
            assert_eq!(error_of(path, got, &h, &body).code, *code, "{path}");
        }
    }
    for (peer, headers) in [
        (ALLOWED, vec![("x-api-key", KEY)]),
        (
            LOOPBACK,
            vec![("authorization", "Bearer router-test-key-0123456789")],
        ),
    ] {
        let (status, _, body) = send(
            &app,
            request(Method::GET, "/v1/models", Body::empty(), peer, &headers),
        )
        .await;
        assert_eq!(status, 200);
        let m: ModelsResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(m.available_models, vec!["broken".to_string()]);
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let app = app("routes");
    for (method, path, status, code) in [
        (Method::GET, "/v2/x", 404, ErrorCode::RouteNotFound),
        (
            Method::GET,
            "/v1/inference",
            405,
            ErrorCode::MethodNotAllowed,
        ),
        (
            Method::PUT,
            "/v1/chat/completions",
            405,
            ErrorCode::MethodNotAllowed,
        ),
    ] {
        let (got, h, body) = send(
            &app,
            request(method, path, Body::empty(), LOOPBACK, &[("x-api-key", KEY)]),
        )
        .await;
        assert_eq!(got.as_u16(), status, "{path}");
        assert_eq!(error_of(path, got, &h, &body).code, code);
    }
}

#[tokio::test]
async fn every_bad_body_has_its_code_and_field_in_both_dialects() {
    let app = app("bodies");
    let huge = format!(r#"{{"prompt":"{}"}}"#, "y".repeat(MAX_BODY_BYTES));
    let cases: Vec<(&str, String, u16, ErrorCode, Option<&str>)> = vec![
        (
            "/v1/inference",
            "{".into(),
            400,
            ErrorCode::BadRequest,
            None,
        ),
        (
            "/v1/inference",
            r#"{"prompt":"x","max_tokens":"ten"}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("max_tokens"),
        ),
        (
            "/v1/inference",
            r#"{"prompt":"x","max_tokens":5000}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("max_tokens"),
        ),
        (
            "/v1/inference/stream",
            r#"{"prompt":"x","stop":["a","b","c","d","e","f","g","h","i"]}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("stop"),
        ),
        (
            "/v1/inference",
            r#"{"prompt":""}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("prompt"),
        ),
        (
            "/v1/inference",
            huge.clone(),
            413,
            ErrorCode::BodyTooLarge,
            None,
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":"hi"}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("messages"),
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"robot","content":"x"}]}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("messages[0].role"),
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":-1}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("temperature"),
        ),
        ("/v1/completions", huge, 413, ErrorCode::BodyTooLarge, None),
        (
            "/v1/completions",
            r#"{"prompt":"x","top_p":2}"#.into(),
            422,
            ErrorCode::InvalidRequest,
            Some("top_p"),
        ),
    ];
    for (path, body, status, code, field) in cases {
        let (got, h, bytes) = post(&app, path, &body).await;
        assert_eq!(
            got.as_u16(),
            status,
            "{path} {}",
            &body[..body.len().min(60)]
        );
        let e = error_of(path, got, &h, &bytes);
        assert_eq!(e.code, code, "{path}: {}", e.message);
        assert_eq!(e.field.as_deref(), field, "{path}: {}", e.message);
    }
}

#[tokio::test]
async fn unknown_models_are_404_and_a_broken_file_is_a_load_failure() {
    let app = app("models");
    let (status, h, body) = post(&app, "/v1/inference", r#"{"prompt":"x","model":"nope"}"#).await;
    assert_eq!(status, 404);
    let e = error_of("/v1/inference", status, &h, &body);
    assert_eq!(e.code, ErrorCode::ModelNotFound);
    assert!(
        e.message.contains("broken"),
        "lists what exists: {}",
        e.message
    );

    let (status, h, body) = post(
        &app,
        "/v1/chat/completions",
        r#"{"model":"broken","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        error_of("/v1/chat/completions", status, &h, &body).code,
        ErrorCode::ModelLoadFailed
    );

    let (status, h, body) = post(&app, "/v1/unload/broken", "").await;
    assert_eq!(status, 404);
    assert_eq!(
        error_of("/v1/unload/broken", status, &h, &body).code,
        ErrorCode::ModelNotLoaded
    );
}
