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

// ---------------------------------------------------------------------------
// Several upstreams: two `cerebrum-node`s with different models (SmolLM2 on
// `a`, gemma-3-270m on `b`) behind one orchestrator configured by file, and a
// llama-server as the fallback `spare`. Which upstream answered a request is
// read from the orchestrator's per-upstream `/metrics` and the nodes' own
// counters. gemma-3-270m's chat template is broken in its GGUF: every request
// here is a raw-prompt completion.

/// A `cerebrum-node` serving the GGUF at `path` alone, as `name`; `tag`
/// makes its model directory its own (tests run at once in one process).
fn node_serving(tag: &str, name: &str, path: &std::path::Path) -> Node {
    let models = ModelDir::empty(&format!("{tag}-{name}"));
    models.link(name, path);
    Node::start_with(models, &[("CEREBRUM_DEFAULT_MODEL", name)])
}

/// One `[[upstreams]]` table: `name` at `url` with `key`, plus `extra` lines.
fn upstream(name: &str, url: &str, key: &str, extra: &str) -> String {
    format!("\n[[upstreams]]\nname = \"{name}\"\nendpoint = \"{url}\"\nkey = \"{key}\"\n{extra}")
}

/// An orchestrator config: SmolLM2 as the default model, no fallback model,
/// then the given `[[upstreams]]` tables.
fn config(upstreams: &[String]) -> String {
    format!(
        "default_model = \"{SMOLLM}\"\nroutes = {{ python = \"{SMOLLM}\" }}\n{}",
        upstreams.concat()
    )
}

/// `series{upstream="NAME"}` in the orchestrator's `/metrics` text.
fn per_upstream(text: &str, series: &str, name: &str) -> f64 {
    let prefix = format!("{series}{{upstream=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
}

/// Generations each upstream ended well, by name.
async fn successes(orch: &Orchestrator, names: &[&str]) -> Vec<f64> {
    let m = metrics(orch).await;
    names
        .iter()
        .map(|n| per_upstream(&m, "cerebrum_upstream_success_total", n))
        .collect()
}

/// Generations a `cerebrum-node` ran, by its own count.
async fn node_generations(node: &Node) -> f64 {
    metric(
        &metrics(node).await,
        "cerebrum_node_inference_requests_total",
    )
}

/// OpenAI's text completion of `model` (greedy, 4 tokens) through `orch`:
/// status, body and how long the answer took.
async fn complete(orch: &Orchestrator, model: &str) -> (u16, Value, Duration) {
    let started = std::time::Instant::now();
    let (s, _, body) = post(
        orch,
        "/v1/completions",
        json!({"model": model, "prompt": "The capital city of France is the city of",
               "temperature": 0, "max_tokens": 4}),
    )
    .await;
    (s, body, started.elapsed())
}

/// As [`complete`], and it must be answered, by `model`, with text.
async fn answered(orch: &Orchestrator, model: &str) -> Duration {
    let (s, body, took) = complete(orch, model).await;
    assert_eq!(s, 200, "{model}: {body}\n{}", tail(&orch.log(), 20));
    assert_eq!(body["model"], model, "{body}");
    assert!(
        !body["choices"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{body}"
    );
    took
}

/// The orchestrator's `/health` entry for upstream `name`.
fn entry<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["upstreams"]
        .as_array()
        .and_then(|list| list.iter().find(|u| u["name"] == name))
        .unwrap_or_else(|| panic!("no upstream {name} in {health}"))
}

/// Polls `/health` until `done` holds for it; the last body either way.
async fn health_until(
    orch: &Orchestrator,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> (bool, Value) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (s, h) = get(orch, "/health").await;
        assert_eq!(s, 200, "{h}");
        if done(&h) {
            return (true, h);
        }
        if std::time::Instant::now() > deadline {
            return (false, h);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every upstream in `/health` is ready with a known model list.
fn all_ready(h: &Value) -> bool {
    h["upstreams"].as_array().is_some_and(|list| {
        list.iter()
            .all(|u| u["ready"] == true && u["models"].as_array().is_some_and(|m| !m.is_empty()))
    })
}

#[tokio::test]
async fn each_model_goes_to_the_node_that_serves_it() {
    let a = node_serving("routed", SMOLLM, &smollm2_path());
    let b = node_serving("routed", GEMMA3, &gemma3_path());
    let kind = "kind = \"cerebrum-node\"\n";
    let orch = Orchestrator::start_with_config(
        &config(&[
            upstream("a", &a.url, KEY, kind),
            upstream("b", &b.url, KEY, kind),
        ]),
        &[],
    );
    let (ready, h) = health_until(&orch, SEEN_WITHIN, all_ready).await;
    assert!(ready, "{h}\n{}", orch.log());
    assert_eq!(h["status"], "healthy", "{h}");
    for (name, node, model) in [("a", &a, SMOLLM), ("b", &b, GEMMA3)] {
        let u = entry(&h, name);
        assert_eq!(u["kind"], "cerebrum-node", "{u}");
        assert_eq!(u["endpoint"], node.url.as_str(), "{u}");
        assert_eq!(u["connected"], true, "{u}");
        assert_eq!(u["breaker"], "closed", "{u}");
        assert_eq!(u["auth"], "ok", "{u}");
        assert_eq!(u["models"], json!([model]), "{u}");
    }

    // The model list is both nodes' lists merged.
    let (s, list) = get(&orch, "/v1/models").await;
    assert_eq!(s, 200, "{list}");
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [GEMMA3, SMOLLM], "{list}");

    // Each model's requests reach its node, and only its node.
    for _ in 0..2 {
        answered(&orch, SMOLLM).await;
        answered(&orch, GEMMA3).await;
    }
    let (s, _, whole) = post(
        &orch,
        "/v1/complete",
        json!({"prompt": "The capital city of France is the city of", "model": GEMMA3,
               "temperature": 0, "max_tokens": 4}),
    )
    .await;
    assert_eq!(s, 200, "{whole}");
    assert_eq!(whole["model_used"], GEMMA3, "{whole}");
    // (Through gemma3's broken chat template: some text, not necessarily the answer.)
    assert!(
        !whole["result"].as_str().unwrap_or_default().is_empty(),
        "{whole}"
    );
    // The raw prompt reaches gemma3 on b as it is.
    let (s, t, _) = complete(&orch, GEMMA3).await;
    assert_eq!(s, 200, "{t}");
    assert!(
        t["choices"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Paris"),
        "{t}"
    );
    // Unnamed: the default model, on its node.
    let (s, _, whole) = post(
        &orch,
        "/v1/complete",
        json!({"prompt": "The capital city of France is the city of", "max_tokens": 4}),
    )
    .await;
    assert_eq!(s, 200, "{whole}");
    assert_eq!(whole["model_used"], SMOLLM, "{whole}");

    assert_eq!(successes(&orch, &["a", "b"]).await, [3.0, 4.0]);
    assert_eq!(node_generations(&a).await, 3.0, "a ran SmolLM2's three");
    assert_eq!(node_generations(&b).await, 4.0, "b ran gemma3's four");
    let m = metrics(&orch).await;
    for name in ["a", "b"] {
        assert_eq!(
            per_upstream(&m, "cerebrum_upstream_failures_total", name),
            0.0,
            "{m}"
        );
        assert_eq!(
            per_upstream(&m, "cerebrum_upstream_refused_total", name),
            0.0,
            "{m}"
        );
    }

    // A model neither serves: 404 naming it and both upstreams with their lists.
    for (path, body) in [
        (
            "/v1/completions",
            json!({"model": "no-such-model", "prompt": "Hi", "max_tokens": 2}),
        ),
        (
            "/v1/complete",
            json!({"model": "no-such-model", "prompt": "Hi", "max_tokens": 2}),
        ),
    ] {
        let e = refused(&orch, path, body).await;
        assert_eq!(
            (e.status, e.code),
            (404, ErrorCode::ModelNotFound),
            "{path}: {e:?}"
        );
        for named in [
            "no-such-model",
            "a (",
            &a.url,
            "b (",
            &b.url,
            SMOLLM,
            GEMMA3,
        ] {
            assert!(
                e.message.contains(named),
                "{path}: '{named}' not in: {}",
                e.message
            );
        }
    }
    assert_eq!(node_generations(&a).await + node_generations(&b).await, 7.0);
}

/// The breaker settings of the failover tests: one failure opens a breaker
/// for 2 s; a connection gets 1 s.
const SMALL_BREAKER: [(&str, &str); 3] = [
    ("CEREBRUM_BREAKER_THRESHOLD", "1"),
    ("CEREBRUM_BREAKER_COOLDOWN_SECS", "2"),
    ("CEREBRUM_CONNECT_TIMEOUT_SECS", "1"),
];

/// How long the first request after a node dies may take when a fallback
/// serves its model. What it costs: the refused connection to the dead node
/// (immediate on loopback; at most the 1 s connect timeout elsewhere) and its
/// two retries (0.1 s + 0.3 s back-off), then 4 tokens from the fallback on
/// one thread (well under a second for a 135M model): about 1 s. The rest is
/// room for a loaded CI machine.
const FAILOVER_WITHIN: Duration = Duration::from_secs(10);

/// How long a restarted node may take to get its model's traffic back: the
/// rest of its breaker's 2 s cooldown, then the trial request, which loads
/// SmolLM2 (about a second) — the health probe (every 2 s) is not even
/// needed, as a primary is tried before the fallback. The rest is room.
const TAKEN_BACK_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_killed_node_fails_its_model_over_to_the_fallback_and_takes_traffic_back_when_healed() {
    let mut a = node_serving("failover", SMOLLM, &smollm2_path());
    let b = node_serving("failover", GEMMA3, &gemma3_path());
    let spare = LlamaServer::start(&smollm2_path(), SMOLLM, Some(KEY));
    let node = "kind = \"cerebrum-node\"\n";
    let orch = Orchestrator::start_with_config(
        &config(&[
            upstream("a", &a.url, KEY, node),
            upstream("b", &b.url, KEY, node),
            upstream(
                "spare",
                &spare.url,
                KEY,
                "kind = \"openai\"\nfallback = true\n",
            ),
        ]),
        &SMALL_BREAKER,
    );
    let names = ["a", "b", "spare"];
    let (ready, h) = health_until(&orch, SEEN_WITHIN, all_ready).await;
    assert!(ready, "{h}\n{}", orch.log());
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(entry(&h, "spare")["fallback"], true, "{h}");
    assert_eq!(entry(&h, "spare")["kind"], "openai", "{h}");

    // Before: SmolLM2 on a, gemma3 on b, nothing on the spare.
    for _ in 0..2 {
        answered(&orch, SMOLLM).await;
        answered(&orch, GEMMA3).await;
    }
    assert_eq!(successes(&orch, &names).await, [2.0, 2.0, 0.0]);
    assert_eq!(node_generations(&a).await, 2.0);

    // a dies: its model goes to the spare at once.
    a.kill();
    let first = answered(&orch, SMOLLM).await;
    eprintln!("failover: first smollm2 request after the kill answered in {first:?}");
    assert!(
        first < FAILOVER_WITHIN,
        "first answer after the kill took {first:?}"
    );
    assert_eq!(
        successes(&orch, &names).await,
        [2.0, 2.0, 1.0],
        "answered by the spare"
    );

    // For a while (over the breaker's cooldown, so a's half-open trials come
    // and fail too): SmolLM2 from the spare, gemma3 from b, none lost.
    let mut slowest = first;
    let mut rounds = 0.0;
    let window = std::time::Instant::now();
    while window.elapsed() < Duration::from_secs(5) {
        slowest = slowest.max(answered(&orch, SMOLLM).await);
        answered(&orch, GEMMA3).await;
        rounds += 1.0;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("failover: {rounds} more rounds with a dead; slowest smollm2 answer {slowest:?}");
    assert!(
        slowest < FAILOVER_WITHIN,
        "a smollm2 answer took {slowest:?}"
    );
    assert_eq!(
        successes(&orch, &names).await,
        [2.0, 2.0 + rounds, 1.0 + rounds]
    );
    assert_eq!(node_generations(&b).await, 2.0 + rounds);

    // Health: a not ready and unreachable, the whole degraded, yet ready.
    let (seen, h) = health_until(&orch, SEEN_WITHIN, |h| entry(h, "a")["connected"] == false).await;
    assert!(seen, "a still connected: {h}");
    let ua = entry(&h, "a");
    assert_eq!(ua["ready"], false, "{ua}");
    assert_eq!(ua["status"], "unreachable", "{ua}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(entry(&h, "b")["ready"], true, "{h}");
    assert_eq!(entry(&h, "spare")["ready"], true, "{h}");
    assert_eq!(
        http_get(&orch.url, "/health/ready").0,
        200,
        "b and the spare can take work"
    );
    let m = metrics(&orch).await;
    assert!(
        per_upstream(&m, "cerebrum_upstream_failures_total", "a") >= 1.0,
        "{m}"
    );
    assert!(
        per_upstream(&m, "cerebrum_breaker_opens_total", "a") >= 1.0,
        "{m}"
    );
    assert_eq!(per_upstream(&m, "cerebrum_upstream_ready", "a"), 0.0, "{m}");
    for name in ["b", "spare"] {
        assert_eq!(
            per_upstream(&m, "cerebrum_upstream_failures_total", name),
            0.0,
            "{m}"
        );
        assert_eq!(
            per_upstream(&m, "cerebrum_upstream_refused_total", name),
            0.0,
            "{m}"
        );
        assert_eq!(
            per_upstream(&m, "cerebrum_breaker_opens_total", name),
            0.0,
            "{m}"
        );
    }

    // a is back: it takes its model's traffic again, the spare none.
    a.restart();
    let healing = std::time::Instant::now();
    let taken_back = loop {
        let before = successes(&orch, &names).await;
        answered(&orch, SMOLLM).await;
        let after = successes(&orch, &names).await;
        if after[0] > before[0] {
            break healing.elapsed();
        }
        assert!(
            healing.elapsed() < TAKEN_BACK_WITHIN,
            "a did not take smollm2 back within {TAKEN_BACK_WITHIN:?}:\n{}",
            orch.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("failover: restarted a answered smollm2 again {taken_back:?} after it listened");
    let before = successes(&orch, &names).await;
    for _ in 0..3 {
        answered(&orch, SMOLLM).await;
    }
    answered(&orch, GEMMA3).await;
    let after = successes(&orch, &names).await;
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ],
        [3.0, 1.0, 0.0],
        "smollm2 back on a, the spare idle"
    );
    assert_eq!(
        node_generations(&a).await,
        4.0,
        "the restarted a ran the trial and three more"
    );
    let (healthy, h) = health_until(&orch, SEEN_WITHIN, all_ready).await;
    assert!(healthy, "{h}");
    assert_eq!(h["status"], "healthy", "{h}");
}

#[tokio::test]
async fn without_a_fallback_a_dead_nodes_model_is_a_clear_503_and_the_other_model_is_unaffected() {
    let mut a = node_serving("no-fallback", SMOLLM, &smollm2_path());
    let b = node_serving("no-fallback", GEMMA3, &gemma3_path());
    // The default breaker: three failures open it for 10 s.
    let orch = Orchestrator::start_with_config(
        &config(&[
            upstream("a", &a.url, KEY, ""),
            upstream("b", &b.url, KEY, ""),
        ]),
        &[],
    );
    let (ready, h) = health_until(&orch, SEEN_WITHIN, all_ready).await;
    assert!(ready, "{h}\n{}", orch.log());
    answered(&orch, SMOLLM).await;
    answered(&orch, GEMMA3).await;

    a.kill();
    let mut codes = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let e = refused(
            &orch,
            "/v1/completions",
            json!({"model": SMOLLM, "prompt": "The capital of France is", "max_tokens": 4}),
        )
        .await;
        let took = started.elapsed();
        eprintln!(
            "no fallback: {} {:?} in {took:?}: {}",
            e.status, e.code, e.message
        );
        assert!(
            took < Duration::from_secs(3),
            "a dead node's 503 took {took:?}"
        );
        assert_eq!(e.status, 503, "{e:?}");
        let retry = e
            .retry_after
            .unwrap_or_else(|| panic!("no Retry-After: {e:?}"));
        match e.code {
            ErrorCode::VpsUnavailable => {
                assert!(e.message.contains("upstream 'a'"), "{}", e.message);
                assert!(e.message.contains(&a.url), "{}", e.message);
                assert!((1..=10).contains(&retry), "{e:?}");
            }
            ErrorCode::BreakerOpen => {
                assert!((1..=10).contains(&retry), "within the cooldown: {e:?}");
                assert!(e.message.contains(&format!("{retry} s")), "{}", e.message);
            }
            other => panic!("{other:?} is neither vps_unavailable nor breaker_open: {e:?}"),
        }
        codes.push(e.code);
        // The other model is unaffected.
        answered(&orch, GEMMA3).await;
    }
    assert_eq!(
        codes[..3],
        [ErrorCode::VpsUnavailable; 3],
        "three failures before the breaker opens"
    );
    assert_eq!(codes[3..], [ErrorCode::BreakerOpen; 2], "then it is open");
    assert_eq!(node_generations(&b).await, 6.0);
    let m = metrics(&orch).await;
    assert_eq!(
        per_upstream(&m, "cerebrum_upstream_failures_total", "b"),
        0.0,
        "{m}"
    );
    assert_eq!(per_upstream(&m, "cerebrum_breaker_open", "a"), 1.0, "{m}");
    assert_eq!(per_upstream(&m, "cerebrum_breaker_open", "b"), 0.0, "{m}");
    assert_eq!(
        http_get(&orch.url, "/health/ready").0,
        200,
        "b can take work"
    );
    let (_, h) = get(&orch, "/health").await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(entry(&h, "a")["breaker"], "open", "{h}");
}

#[tokio::test]
async fn an_openai_upstream_by_file_is_healthy_and_ready() {
    let llama = llama();
    let start = |key: &str, kind: &str| {
        Orchestrator::start_with_config(&config(&[upstream("llama", &llama.url, key, kind)]), &[])
    };
    let named = start(LLAMA_KEY, "kind = \"openai\"\n");
    let auto = start(LLAMA_KEY, "");
    for orch in [&named, &auto] {
        let (seen, h) = health_until(orch, SEEN_WITHIN, |h| {
            entry(h, "llama")["kind"] == "openai" && entry(h, "llama")["ready"] == true
        })
        .await;
        assert!(seen, "{h}\n{}", orch.log());
        assert_eq!(h["status"], "healthy", "{h}");
        let u = entry(&h, "llama");
        assert_eq!(u["models"], json!([SMOLLM]), "{u}");
        assert_eq!(u["auth"], "ok", "{u}");
        assert_eq!(u["connected"], true, "{u}");
        assert_eq!(u["breaker"], "closed", "{u}");
        assert_eq!(http_get(&orch.url, "/health/ready").0, 200);
        answered(orch, SMOLLM).await;
    }

    for kind in ["kind = \"openai\"\n", ""] {
        let orch = start("not-the-llama-key-987654321", kind);
        let mut last = String::new();
        let seen = poll(SEEN_WITHIN, Duration::from_millis(200), || {
            let (status, body) = http_get(&orch.url, "/health/ready");
            last = format!("{status} {body}");
            status == 503 && body.contains("upstream_auth")
        });
        assert!(seen, "{kind}: readiness said {last}\n{}", orch.log());
        let (_, h) = get(&orch, "/health").await;
        assert_eq!(h["status"], "degraded", "{h}");
        let u = entry(&h, "llama");
        assert_eq!(u["ready"], false, "{u}");
        assert_eq!(u["auth"], "refused", "{u}");
        assert!(u["auth_problem"].is_string(), "{u}");
        assert_eq!(u["connected"], true, "it answered: {u}");
        assert_eq!(u["breaker"], "closed", "not the engine's fault: {u}");
    }
}
