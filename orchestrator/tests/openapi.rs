//! The orchestrator's OpenAPI document held against its router, in-process
//! (`oneshot` on `app::router`, a node port nothing listens on, no model):
//! every route of `app.rs` is documented and every documented operation is
//! routed; the answers the router really gives (success, bad input, no node,
//! client keys) are documented statuses whose bodies validate against the document.
#![cfg(feature = "openapi")]

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Body;
use cerebrum::config::OrchestratorConfig;
use cerebrum_shared::error::{Dialect, dialect_of};
use cerebrum_shared::limits::MAX_BODY_BYTES;
use cerebrum_testkit::openapi::{
    Document, bad_body_mismatches, call, check_committed, concrete, document, routing_mismatches,
    undocumented_routes,
};
use serde_json::Value;

const CLIENT_KEY: &str = "client-key-0123456789";

/// The router over a node that is not there (a free loopback port).
fn router(env: &[(&str, &str)]) -> Router {
    let mut vars: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let node = format!("http://127.0.0.1:{}", cerebrum_testkit::free_port());
    vars.insert("VPS_ENDPOINT".into(), node);
    let config = OrchestratorConfig::resolve(None, &vars, &Default::default()).expect("config");
    cerebrum::app::router(cerebrum::serve::build_state(config).expect("state"))
}

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
        "CompleteRequest" => r#"{"prompt":"def add(a, b):\n    return a + b","max_tokens":4}"#,
        "ChatCompletionRequest" => {
            r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4}"#
        }
        "CompletionRequest" => r#"{"prompt":"Hi","max_tokens":4}"#,
        "PrepareRequest" => r#"{"prompt":"def add(a, b):\n    return a + b"}"#,
        other => panic!("no example body for {other}: add one"),
    };
    doc.validate_component(&schema, &serde_json::from_str(body).unwrap())
        .unwrap_or_else(|e| panic!("the example {schema} is not valid: {e}"));
    body
}

#[test]
fn the_served_document_is_the_one_the_types_generate() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let generated = cerebrum::openapi::api().document();
    check_committed(&generated, cerebrum::openapi::DOCUMENT, path).unwrap();
}

#[tokio::test]
async fn every_route_of_the_router_is_documented_and_no_other() {
    let doc = document(&router(&[])).await;
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
    let app = router(&[]);
    let doc = document(&app).await;
    let mismatches = routing_mismatches(&app, &doc, None, &error_schema).await;
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn answers_without_a_node_are_the_documented_ones() {
    let app = router(&[]);
    let doc = document(&app).await;
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for (method, path) in doc.operations() {
        let body = valid_body(&doc, &method, &path);
        let a = call(&app, &method, &concrete(&path), None, body).await;
        seen.insert(a.status);
        if let Err(e) = a.check(&doc, &method, &path) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Success, and the node being away (503 with Retry-After), were both checked.
    assert!(seen.contains(&200) && seen.contains(&503), "{seen:?}");
}

#[tokio::test]
async fn bad_requests_are_answered_as_documented() {
    let app = router(&[]);
    let doc = document(&app).await;
    let mut failures = bad_body_mismatches(&app, &doc, None, MAX_BODY_BYTES).await;
    // Out of range: the documented limits are the ones enforced (a prompt of
    // white space only is the one refusal the schema cannot say).
    for (path, body, schema_says_invalid) in [
        ("/v1/complete", r#"{"prompt":"x","max_tokens":2049}"#, true),
        ("/v1/complete", r#"{"prompt":"x","temperature":2.5}"#, true),
        ("/v1/complete/stream", r#"{"prompt":" \n"}"#, false),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":2049}"#,
            true,
        ),
        ("/v1/chat/completions", r#"{"messages":[]}"#, true),
        ("/v1/completions", r#"{"prompt":["a","b"]}"#, true),
        // The node's sampler ranges, checked here too (the knobs are passed on).
        ("/v1/complete", r#"{"prompt":"x","top_k":99999}"#, true),
        (
            "/v1/complete",
            r#"{"prompt":"x","repeat_penalty":99.0}"#,
            true,
        ),
        // OpenAI fields not served yet are refused, as documented.
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
            true,
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#,
            true,
        ),
        ("/v1/completions", r#"{"prompt":"x","echo":true}"#, true),
    ] {
        let a = call(&app, "POST", path, None, body).await;
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
    // Unknown routes: 404 in the path's dialect.
    for path in ["/v1/nope", "/v2/chat/completions"] {
        let a = call(&app, "GET", path, None, Body::empty()).await;
        assert_eq!(
            (a.status, a.code().as_deref()),
            (404, Some("route_not_found"))
        );
        doc.validate_component(error_schema(path), &a.json())
            .unwrap();
    }
}

#[tokio::test]
async fn client_keys_are_asked_where_the_document_says() {
    let app = router(&[("CEREBRUM_CLIENT_KEYS", CLIENT_KEY)]);
    let doc = document(&app).await;
    let mut failures = Vec::new();
    for (method, path) in doc.operations() {
        let protected = doc.is_protected(&method, &path);
        let body = valid_body(&doc, &method, &path);
        for (key, refusal) in [(None, 401), (Some("wrong-key-0123456789"), 403)] {
            let a = call(&app, &method, &concrete(&path), key, body).await;
            if (a.status == refusal) != protected {
                failures.push(format!("{method} {path} key {key:?}: {}", a.status));
            }
            if let Err(e) = a.check(&doc, &method, &path) {
                failures.push(e);
            }
        }
        let a = call(&app, &method, &concrete(&path), Some(CLIENT_KEY), body).await;
        if a.status == 401 || a.status == 403 {
            failures.push(format!(
                "{method} {path} refused the right key: {}",
                a.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_docs_page_reads_the_document() {
    let app = router(&[]);
    let doc = document(&app).await;
    let a = call(&app, "GET", "/docs", None, Body::empty()).await;
    a.check(&doc, "GET", "/docs").unwrap();
    let html = String::from_utf8(a.body.to_vec()).unwrap();
    assert!(html.contains("fetch(\"openapi.json\")") && html.contains("<noscript>"));
}
