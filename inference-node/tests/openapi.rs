//! The node's OpenAPI document held against its router, in-process (`oneshot`
//! on `app::router` over an empty models directory: no model is needed): every
//! route of `app.rs` is documented and every documented operation is routed;
//! the answers the router really gives (success, bad input, no such model, keys,
//! peers) are documented statuses whose bodies validate against the document.
#![cfg(feature = "openapi")]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use cerebrum_node::config::NodeConfig;
use cerebrum_shared::error::{Dialect, dialect_of};
use cerebrum_shared::limits::MAX_BODY_BYTES;
use cerebrum_testkit::openapi::{
    Document, bad_body_mismatches, call, check_committed, concrete, document, routing_mismatches,
    undocumented_routes,
};
use serde_json::Value;

const KEY: &str = "node-key-0123456789abcdef";

/// A models directory with nothing in it, removed at the end.
struct EmptyModels(std::path::PathBuf);

impl EmptyModels {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cerebrum-openapi-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for EmptyModels {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The node's router as seen from `peer`, with no model to serve.
fn router(models: &EmptyModels, peer: [u8; 4]) -> Router {
    let vars: BTreeMap<String, String> = [
        ("CEREBRUM_API_KEY", KEY),
        ("CEREBRUM_MODELS_DIR", models.0.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = NodeConfig::resolve(None, &vars, &Default::default()).expect("config");
    cerebrum_node::app::router(cerebrum_node::server::build_state(config))
        .layer(MockConnectInfo(SocketAddr::from((peer, 40000))))
}

const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

fn error_schema(path: &str) -> &'static str {
    match dialect_of(path) {
        Dialect::Cerebrum => "CerebrumErrorBody",
        Dialect::OpenAi => "OpenAiErrorBody",
    }
}

/// A valid body of each request schema (checked against the document too).
fn valid_body(doc: &Document, method: &str, path: &str) -> &'static str {
    let Some(schema) = doc.request_schema(method, path) else {
        return "";
    };
    let body = match schema.as_str() {
        "InferenceRequest" => r#"{"prompt":"The capital of France is","max_tokens":4}"#,
        "ChatCompletionRequest" => {
            r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4}"#
        }
        "CompletionRequest" => r#"{"prompt":"Hi","max_tokens":4}"#,
        "TokenizeRequest" => r#"{"content":"Hi","count_only":true}"#,
        other => panic!("no example body for {other}: add one"),
    };
    doc.validate_component(&schema, &serde_json::from_str(body).unwrap())
        .unwrap_or_else(|e| panic!("the example {schema} is not valid: {e}"));
    body
}

#[test]
fn the_served_document_is_the_one_the_types_generate() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let generated = cerebrum_node::openapi::api().document();
    check_committed(&generated, cerebrum_node::openapi::DOCUMENT, path).unwrap();
}

#[tokio::test]
async fn every_route_of_the_router_is_documented_and_no_other() {
    let models = EmptyModels::new("routes");
    let doc = document(&router(&models, LOOPBACK)).await;
    let source = [
        include_str!("../src/app.rs"),
        include_str!("../src/openapi.rs"),
        include_str!("../../service/src/docs.rs"),
    ]
    .concat();
    let mismatches = undocumented_routes(&doc, &source);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn documented_operations_are_routed_and_other_methods_are_not() {
    let models = EmptyModels::new("methods");
    let app = router(&models, LOOPBACK);
    let doc = document(&app).await;
    let mismatches = routing_mismatches(&app, &doc, Some(KEY), &error_schema).await;
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn answers_without_a_model_are_the_documented_ones() {
    let models = EmptyModels::new("answers");
    let app = router(&models, LOOPBACK);
    let doc = document(&app).await;
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for (method, path) in doc.operations() {
        let body = valid_body(&doc, &method, &path);
        let a = call(&app, &method, &concrete(&path), Some(KEY), body).await;
        seen.insert((a.status, a.code()));
        if let Err(e) = a.check(&doc, &method, &path) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Success, no such model and a model not loaded were all checked.
    for expected in [
        (200, None),
        (404, Some("model_not_found".to_string())),
        (404, Some("model_not_loaded".to_string())),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not among {seen:?}");
    }
}

#[tokio::test]
async fn bad_requests_are_answered_as_documented() {
    let models = EmptyModels::new("bad");
    let app = router(&models, LOOPBACK);
    let doc = document(&app).await;
    let mut failures = bad_body_mismatches(&app, &doc, Some(KEY), MAX_BODY_BYTES).await;
    // Out of range: the documented limits are the ones enforced (a prompt of
    // white space only is the one refusal the schema cannot say).
    for (path, body, schema_says_invalid) in [
        ("/v1/inference", r#"{"prompt":"x","max_tokens":4097}"#, true),
        ("/v1/inference", r#"{"prompt":"x","top_k":1001}"#, true),
        (
            "/v1/inference",
            r#"{"prompt":"x","repeat_penalty":0.05}"#,
            true,
        ),
        (
            "/v1/inference/stream",
            r#"{"prompt":"x","stop":["a","b","c","d","e","f","g","h","i"]}"#,
            true,
        ),
        ("/v1/inference/stream", r#"{"prompt":"\t"}"#, false),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"tool","content":"x"}]}"#,
            true,
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}],"top_p":1.5}"#,
            true,
        ),
        ("/v1/completions", r#"{"prompt":"x","stop":""}"#, true),
        ("/v1/completions", r#"{"prompt":[]}"#, true),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"system","content":""},{"role":"user","content":[{"type":"image_url"}]}]}"#,
            true,
        ),
    ] {
        let a = call(&app, "POST", path, Some(KEY), body).await;
        if a.status != 422 {
            failures.push(format!("POST {path} {body}: {} not 422", a.status));
        }
        if let Err(e) = a.check(&doc, "POST", path) {
            failures.push(e);
        }
        let v: Value = serde_json::from_str(body).unwrap();
        let schema = doc.request_schema("POST", path).unwrap();
        if doc.validate_component(&schema, &v).is_ok() == schema_says_invalid {
            failures.push(format!("{body}: the document does not say it is refused"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A model name that is not UTF-8 once percent-decoded: a JSON 400 too.
    let a = call(&app, "POST", "/v1/unload/%FF", Some(KEY), Body::empty()).await;
    assert_eq!((a.status, a.code().as_deref()), (400, Some("bad_request")));
    a.check(&doc, "POST", "/v1/unload/{model}").unwrap();
    for path in ["/v1/nope", "/v2/chat/completions"] {
        let a = call(&app, "GET", path, Some(KEY), Body::empty()).await;
        assert_eq!(
            (a.status, a.code().as_deref()),
            (404, Some("route_not_found"))
        );
        doc.validate_component(error_schema(path), &a.json())
            .unwrap();
    }
}

#[tokio::test]
async fn keys_and_peers_are_asked_where_the_document_says() {
    let models = EmptyModels::new("keys");
    let app = router(&models, LOOPBACK);
    let stranger = router(&models, [100, 64, 0, 9]);
    let doc = document(&app).await;
    let mut failures = Vec::new();
    for (method, path) in doc.operations() {
        let protected = doc.is_protected(&method, &path);
        let body = valid_body(&doc, &method, &path);
        for (app, key, refusal, code) in [
            (&app, None, 401, "missing_api_key"),
            (&app, Some("wrong-key-0123456789"), 403, "invalid_api_key"),
            (&stranger, Some(KEY), 403, "peer_not_allowed"),
        ] {
            let a = call(app, &method, &concrete(&path), key, body).await;
            let refused = a.status == refusal && a.code().as_deref() == Some(code);
            if refused != protected {
                failures.push(format!(
                    "{method} {path} {code}? {} {:?}",
                    a.status,
                    a.code()
                ));
            }
            if let Err(e) = a.check(&doc, &method, &path) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The documents are public: a browser can read them without the key.
    assert!(!doc.is_protected("GET", "/openapi.json") && !doc.is_protected("GET", "/docs"));
}
