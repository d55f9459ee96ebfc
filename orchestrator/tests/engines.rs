//! The orchestrator in front of a third-party engine: llama.cpp's own
//! `llama-server` (built by `scripts/build-llama-server`) serving the real
//! SmolLM2 GGUF under the name `smollm2`, reached through the one-upstream
//! shorthand (`VPS_ENDPOINT` + `VPS_API_KEY`).
//!
//! llama-server serves whatever model name it is asked for with its own model,
//! so these tests also hold that the orchestrator, not the engine, refuses a
//! name that is not served. The second model, gemma-3-270m (`gemma3`), is
//! proven on both engines here: llama-server behind an orchestrator configured
//! by file, and a `cerebrum-node` serving it alone.

use std::time::Duration;

use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_testkit::*;
use serde_json::{Value, json};

/// llama-server's `--api-key`.
const LLAMA_KEY: &str = "llama-key-0123456789abcdef";

/// The engine, with its key.
fn llama() -> LlamaServer {
    LlamaServer::start(&smollm2_path(), SMOLLM, Some(LLAMA_KEY))
}

/// An orchestrator in front of `llama` sending `key`, every language routed to
/// the one model llama-server serves.
fn orchestrator(llama: &LlamaServer, key: &str) -> Orchestrator {
    Orchestrator::start_logged(
        &llama.url,
        &[
            ("VPS_API_KEY", key),
            ("CEREBRUM_DEFAULT_MODEL", SMOLLM),
            ("CEREBRUM_ROUTES", "python=smollm2"),
        ],
    )
}

/// How long the orchestrator may take to see the engine (its probe runs every 2 s).
const SEEN_WITHIN: Duration = Duration::from_secs(20);

/// `POST` without assuming success: status, headers, body bytes.
async fn send(
    server: &impl Server,
    path: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = client()
        .post(format!("{}{path}", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// The error a request was answered with, read back from either dialect.
async fn refused(server: &impl Server, path: &str, body: Value) -> ApiError {
    let (status, headers, bytes) = send(server, path, body).await;
    assert!(
        status >= 400,
        "{path} answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    ApiError::from_response(status, &headers, &bytes)
}

/// The sum of every series of metric `name`, whatever its labels.
fn metric_sum(text: &str, name: &str) -> f64 {
    let series: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(!series.is_empty(), "metric {name} not found in:\n{text}");
    series.iter().sum()
}

/// The text, the finish reason and the `usage` (when one came) of an OpenAI
/// stream, from its `data:` payloads (which end in `[DONE]`).
fn openai_text(chunks: &[String], object: &str) -> (String, String, Option<Value>) {
    assert_eq!(
        chunks.last().map(String::as_str),
        Some("[DONE]"),
        "{chunks:?}"
    );
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    for c in &chunks[..chunks.len() - 1] {
        let v: Value = serde_json::from_str(c).unwrap_or_else(|e| panic!("{e}: {c}"));
        assert_eq!(v["object"], object, "{c}");
        assert_eq!(v["model"], SMOLLM, "{c}");
        let choice = &v["choices"][0];
        let piece = choice["delta"]["content"]
            .as_str()
            .or(choice["text"].as_str());
        text.push_str(piece.unwrap_or_default());
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    (text, finish.expect("a finish_reason"), usage)
}

#[tokio::test]
async fn both_apis_stream_through_the_orchestrator_to_llama_server() {
    let llama = llama();
    let orch = orchestrator(&llama, LLAMA_KEY);
    assert!(orch.wait_ready(SEEN_WITHIN), "never ready:\n{}", orch.log());
    let (s, h) = get(&orch, "/health").await;
    assert_eq!((s, h["status"].as_str()), (200, Some("healthy")), "{h}");

    // The model list is llama-server's, passed through.
    let (s, models) = get(&orch, "/v1/models").await;
    assert_eq!(s, 200, "{models}");
    assert_eq!(models["data"][0]["id"], SMOLLM, "{models}");

    // Cerebrum's API, streamed and whole.
    let ask =
        json!({"prompt": "What is the capital of France?", "temperature": 0, "max_tokens": 12});
    let events = stream_events(&orch, "/v1/complete/stream", ask.clone()).await;
    let (text, done) = cerebrum_text(&events);
    assert!(!text.trim().is_empty(), "{events:?}");
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(done["model"], SMOLLM, "{done}");
    let tokens = done["total_tokens"].as_u64().unwrap_or_default();
    assert!((1..=12).contains(&tokens), "{done}");
    let (s, _, whole) = post(&orch, "/v1/complete", ask).await;
    assert_eq!(s, 200, "{whole}");
    assert_eq!(whole["result"], text.as_str(), "greedy: the same answer");
    assert_eq!(whole["model_used"], SMOLLM);

    // OpenAI's chat completions, streamed, with usage.
    let chat = json!({
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0, "max_tokens": 12, "stream": true,
        "stream_options": {"include_usage": true},
    });
    let chunks = stream_events(&orch, "/v1/chat/completions", chat).await;
    let (text, finish, usage) = openai_text(&chunks, "chat.completion.chunk");
    assert!(!text.trim().is_empty(), "{chunks:?}");
    assert!(finish == "stop" || finish == "length", "{finish}");
    let usage = usage.unwrap_or_else(|| panic!("no usage chunk: {chunks:?}"));
    assert!(
        usage["prompt_tokens"].as_u64().unwrap_or_default() > 0,
        "{usage}"
    );
    let completion = usage["completion_tokens"].as_u64().unwrap_or_default();
    assert!((1..=12).contains(&completion), "{usage}");

    // OpenAI's text completions, streamed and whole: the prompt reaches the model.
    let complete = json!({"prompt": "The capital of France is", "temperature": 0, "max_tokens": 4});
    let mut streamed = complete.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = stream_events(&orch, "/v1/completions", streamed).await;
    let (text, finish, usage) = openai_text(&chunks, "text_completion");
    assert!(text.contains("Paris"), "{chunks:?}");
    assert_eq!(finish, "length", "{chunks:?}");
    assert_eq!(usage.expect("usage")["completion_tokens"], 4);
    let (s, _, t) = post(&orch, "/v1/completions", complete).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["choices"][0]["text"], text.as_str(), "{t}");

    let m = metrics(&orch).await;
    assert_eq!(
        metric_sum(&m, "cerebrum_upstream_failures_total"),
        0.0,
        "{m}"
    );
}

#[tokio::test]
async fn a_model_llama_server_does_not_serve_is_refused_by_the_orchestrator() {
    // llama-server itself would answer any name with its own model.
    let llama = llama();
    let orch = orchestrator(&llama, LLAMA_KEY);
    assert!(orch.wait_ready(SEEN_WITHIN), "never ready:\n{}", orch.log());
    for (path, body) in [
        (
            "/v1/complete",
            json!({"prompt": "Hi", "model": "no-such-model", "max_tokens": 2}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "no-such-model", "max_tokens": 2, "stream": true,
                   "messages": [{"role": "user", "content": "Hi"}]}),
        ),
    ] {
        let e = refused(&orch, path, body).await;
        assert_eq!(
            (e.status, e.code),
            (404, ErrorCode::ModelNotFound),
            "{path}: {e:?}"
        );
        assert!(e.message.contains("no-such-model"), "{path}: {}", e.message);
    }
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_upstream_auth_and_not_ready() {
    let llama = llama();
    for (key, fix) in [
        ("not-the-llama-key-987654321", "set VPS_API_KEY on the Pi"),
        ("", "VPS_API_KEY is empty"),
    ] {
        let orch = orchestrator(&llama, key);
        // llama-server's /health is open to anyone: only its model list (401
        // without the key) tells the orchestrator it is refused.
        let mut last = String::new();
        let seen = poll(SEEN_WITHIN, Duration::from_millis(200), || {
            let (status, body) = http_get(&orch.url, "/health/ready");
            last = format!("{status} {body}");
            status == 503 && body.contains("upstream_auth")
        });
        assert!(seen, "key {key:?}: readiness said {last}\n{}", orch.log());
        let (_, h) = get(&orch, "/health").await;
        assert_eq!(h["status"], "degraded", "{h}");

        for path in ["/v1/complete/stream", "/v1/complete"] {
            let e = refused(
                &orch,
                path,
                json!({"prompt": "What is the capital of France?", "max_tokens": 4}),
            )
            .await;
            assert_eq!((e.status, e.code), (502, ErrorCode::UpstreamAuth), "{e:?}");
            assert!(e.message.contains(fix), "{path}: {}", e.message);
        }
        let e = refused(
            &orch,
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": true}),
        )
        .await;
        assert_eq!((e.status, e.code), (502, ErrorCode::UpstreamAuth), "{e:?}");
        let m = metrics(&orch).await;
        assert_eq!(metric_sum(&m, "cerebrum_upstream_auth_refused"), 1.0, "{m}");
        assert_eq!(
            metric_sum(&m, "cerebrum_breaker_open"),
            0.0,
            "not the engine's fault"
        );
    }
}

#[tokio::test]
async fn a_killed_llama_server_is_unready_and_taken_back_when_restarted() {
    let mut llama = llama();
    let orch = orchestrator(&llama, LLAMA_KEY);
    assert!(orch.wait_ready(SEEN_WITHIN), "never ready:\n{}", orch.log());
    let ask = json!({"prompt": "What is the capital of France?", "max_tokens": 4});

    llama.kill();
    let (status, _, _) = send(&orch, "/v1/complete", ask.clone()).await;
    assert_eq!(status, 503, "a dead engine is unavailable");
    let unready = poll(SEEN_WITHIN, Duration::from_millis(200), || {
        http_get(&orch.url, "/health/ready").0 == 503
    });
    assert!(unready, "still ready with the engine dead:\n{}", orch.log());

    llama.restart();
    assert!(
        orch.wait_ready(SEEN_WITHIN),
        "not ready again:\n{}",
        orch.log()
    );
    // The breaker (threshold 3) saw one failure: the next call goes through.
    let (s, _, b) = post(&orch, "/v1/complete", ask).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_prompt_over_llama_servers_context_is_the_clients_400() {
    let llama = llama();
    let orch = orchestrator(&llama, LLAMA_KEY);
    assert!(orch.wait_ready(SEEN_WITHIN), "never ready:\n{}", orch.log());
    // Distinct words (preparation would fold a repeated one): over the
    // 1,024 tokens a slot holds, under the orchestrator's character limit.
    let long: Vec<String> = (0..1200).map(|i| format!("item{i}")).collect();
    let long = long.join(" ");
    for (path, body) in [
        (
            "/v1/completions",
            json!({"prompt": long, "max_tokens": 4, "stream": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": long}], "max_tokens": 4}),
        ),
    ] {
        let e = refused(&orch, path, body).await;
        assert_eq!(e.status, 400, "{path}: {e:?}");
        assert!(e.message.contains("context"), "{path}: {}", e.message);
    }
    let m = metrics(&orch).await;
    assert_eq!(
        metric_sum(&m, "cerebrum_upstream_failures_total"),
        0.0,
        "{m}"
    );
    assert_eq!(metric_sum(&m, "cerebrum_breaker_open"), 0.0, "{m}");
}

/// The first 4 tokens of "The capital city of France is the city of", greedy, as
/// OpenAI's text completion of `model` on `server`.
async fn capital(server: &impl Server, model: &str) -> Value {
    let (s, _, t) = post(
        server,
        "/v1/completions",
        json!({"model": model, "prompt": "The capital city of France is the city of", "temperature": 0, "max_tokens": 4}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    t
}

#[tokio::test]
async fn gemma3_on_llama_server_behind_an_orchestrator_configured_by_file() {
    let llama = LlamaServer::start(&gemma3_path(), GEMMA3, Some(LLAMA_KEY));
    let orch = Orchestrator::start_with_config(
        &format!(
            "vps_endpoint = \"{}\"\nvps_api_key = \"{LLAMA_KEY}\"\n\
             default_model = \"{GEMMA3}\"\nroutes = {{ python = \"{GEMMA3}\" }}\n",
            llama.url
        ),
        &[],
    );
    assert!(orch.wait_ready(SEEN_WITHIN), "never ready:\n{}", orch.log());
    let t = capital(&orch, GEMMA3).await;
    assert_eq!(t["model"], GEMMA3, "{t}");
    assert!(
        t["choices"][0]["text"].as_str().unwrap().contains("Paris"),
        "{t}"
    );
    let events = stream_events(
        &orch,
        "/v1/complete/stream",
        json!({"prompt": "What is the capital of France?", "temperature": 0, "max_tokens": 8}),
    )
    .await;
    let (text, done) = cerebrum_text(&events);
    assert!(!text.trim().is_empty(), "{events:?}");
    assert_eq!(done["model"], GEMMA3, "{done}");
}

#[tokio::test]
async fn a_cerebrum_node_serves_gemma3_alone() {
    let models = ModelDir::empty("gemma3-only");
    models.link(GEMMA3, &gemma3_path());
    let node = Node::start_with(models, &[("CEREBRUM_DEFAULT_MODEL", GEMMA3)]);
    let (s, list) = get(&node, "/v1/models").await;
    assert_eq!(s, 200, "{list}");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(names, [GEMMA3], "{list}");
    let t = capital(&node, GEMMA3).await;
    assert_eq!(t["model"], GEMMA3, "{t}");
    assert!(
        t["choices"][0]["text"].as_str().unwrap().contains("Paris"),
        "{t}"
    );
}
