//! The orchestrator in front of a real node with the real model, over loopback.

use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::json;

fn stack(tag: &str, node_env: &[(&str, &str)], orch_env: &[(&str, &str)]) -> (Node, Orchestrator) {
    let node = Node::start(tag, node_env);
    let orch = Orchestrator::start(&node.url, orch_env);
    (node, orch)
}

/// Opens a streaming request and returns the open event stream once its first event came.
async fn open_stream(
    url: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, impl futures::Stream<Item = String> + Unpin) {
    let r = client()
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let events = r
        .bytes_stream()
        .eventsource()
        .map(|e| e.map(|e| e.data).unwrap_or_else(|e| format!("ERR {e}")));
    (status, Box::pin(events))
}

const COUNTING: &str = "1, 2, 3, 4, 5, 6,";

#[tokio::test]
async fn both_apis_streaming_and_not() {
    let (_node, orch) = stack("both", &[], &[]);

    let (s, h, b) = post(
        &orch,
        "/v1/complete",
        json!({"prompt": "What is the capital of Japan?", "temperature": 0, "max_tokens": 30}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["result"].as_str().unwrap().contains("Tokyo"), "{b}");
    assert_eq!(b["source"], "vps");
    assert_eq!(b["language"], "python");
    assert_eq!(b["model_used"], SMOLLM, "routed to the node's only model");
    assert!(b["tokens_generated"].as_u64().unwrap() > 0);
    assert!(h.contains_key("x-request-id"));

    let events = stream_events(
        &orch,
        "/v1/complete/stream",
        json!({"prompt": "What is the capital of Japan?", "temperature": 0, "max_tokens": 30}),
    )
    .await;
    let (text, done) = cerebrum_text(&events);
    assert_eq!(
        text,
        b["result"].as_str().unwrap(),
        "streamed text equals the whole answer"
    );
    assert_eq!(done["done"], true);
    assert_eq!(done["language"], "python");
    assert_eq!(done["model"], SMOLLM);
    assert_eq!(done["total_tokens"], b["tokens_generated"]);

    let (s, _, c) = post(&orch, "/v1/chat/completions", json!({"messages": [{"role": "user", "content": "What is the capital of Japan?"}], "temperature": 0, "max_tokens": 30})).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["object"], "chat.completion");
    assert!(
        c["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Tokyo")
    );
    assert!(c["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let chunks = stream_events(&orch, "/v1/chat/completions", json!({"messages": [{"role": "user", "content": "What is the capital of Japan?"}], "temperature": 0, "max_tokens": 30, "stream": true, "stream_options": {"include_usage": true}})).await;
    assert_eq!(chunks.last().unwrap(), "[DONE]");
    let mut text = String::new();
    let mut usage = None;
    for c in &chunks[..chunks.len() - 1] {
        let v: serde_json::Value = serde_json::from_str(c).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    assert!(text.contains("Tokyo"), "{text}");
    assert!(usage.unwrap()["completion_tokens"].as_u64().unwrap() > 0);

    let (s, _, t) = post(
        &orch,
        "/v1/completions",
        json!({"prompt": "The capital of France is", "temperature": 0, "max_tokens": 8}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert!(
        t["choices"][0]["text"].as_str().unwrap().contains("Paris"),
        "{t}"
    );
}

#[tokio::test]
async fn a_third_concurrent_stream_is_shed_while_two_run() {
    let (node, orch) = stack("shed", &[], &[]);
    let long = json!({"prompt": COUNTING, "temperature": 0, "max_tokens": 2000});
    let (s1, mut a) = open_stream(&orch.url, "/v1/complete/stream", long.clone()).await;
    let (s2, mut b) = open_stream(&orch.url, "/v1/complete/stream", long.clone()).await;
    assert_eq!((s1, s2), (200, 200));
    // Both are past their headers and streaming: the original stopped counting them here.
    assert!(a.next().await.unwrap().contains("token"));
    assert!(b.next().await.unwrap().contains("token"));

    let (s, h, body) = post(
        &orch,
        "/v1/complete",
        json!({"prompt": "Hi", "max_tokens": 2}),
    )
    .await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"], "CM4 busy");
    assert!(h.contains_key("retry-after"));
    let (s, _, body) = post(
        &orch,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(s, 503);
    assert_eq!(body["error"]["type"], "server_overloaded");
    // Health and metrics are exempt.
    let (s, h) = get(&orch, "/health").await;
    assert_eq!((s, h["active_count"].as_u64()), (200, Some(2)));
    let m = metrics(&orch).await;
    assert_eq!(metric(&m, "cerebrum_load_shed_total"), 2.0);

    // Ending the streams frees the slots, and the node's sequences.
    drop(a);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, h) = get(&node, "/health").await;
        let (_, oh) = get(&orch, "/health").await;
        if h["active_sequences"] == 0 && oh["active_count"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "node {h} / orchestrator {oh}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, _, _) = post(
        &orch,
        "/v1/complete",
        json!({"prompt": "Hi", "max_tokens": 2}),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn the_breaker_opens_on_a_dead_node_and_closes_after_the_cooldown() {
    let (mut node, orch) = stack("breaker", &[], &[("CEREBRUM_BREAKER_COOLDOWN_SECS", "3")]);
    let req =
        json!({"prompt": "What is the capital of Japan?", "temperature": 0, "max_tokens": 12});
    let (s, _, _) = post(&orch, "/v1/complete", req.clone()).await;
    assert_eq!(s, 200);
    node.kill();

    for i in 0..3 {
        let (s, h, b) = post(&orch, "/v1/complete", req.clone()).await;
        assert_eq!(s, 503, "failure {i}: {b}");
        assert_eq!(b["error"], "VPS unavailable");
        assert!(h.contains_key("retry-after"));
    }
    let before = metric(&metrics(&orch).await, "cerebrum_upstream_requests_total");
    for _ in 0..3 {
        let (s, h, b) = post(&orch, "/v1/complete/stream", req.clone()).await;
        assert_eq!(s, 503, "{b}");
        assert!(b["message"].as_str().unwrap().contains("paused"), "{b}");
        let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3).contains(&retry), "{retry}");
    }
    let m = metrics(&orch).await;
    assert_eq!(
        metric(&m, "cerebrum_upstream_requests_total"),
        before,
        "an open breaker does not call the node"
    );
    assert_eq!(metric(&m, "cerebrum_breaker_open"), 1.0);
    let (_, h) = get(&orch, "/health").await;
    assert_eq!(
        (h["status"].as_str(), h["breaker"].as_str()),
        (Some("degraded"), Some("open"))
    );
    let ready = client()
        .get(format!("{}/health/ready", orch.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    node.restart();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (s, _, b) = post(&orch, "/v1/complete", req.clone()).await;
    assert_eq!(s, 200, "trial call after the cooldown: {b}");
    assert!(b["result"].as_str().unwrap().contains("Tokyo"), "{b}");
    let (_, h) = get(&orch, "/health").await;
    assert_eq!(h["breaker"], "closed");
}

#[tokio::test]
async fn a_node_killed_mid_stream_gives_an_error_event_and_a_clean_close() {
    let (mut node, orch) = stack("midstream", &[], &[]);
    let (s, mut events) = open_stream(
        &orch.url,
        "/v1/complete/stream",
        json!({"prompt": COUNTING, "temperature": 0, "max_tokens": 2000}),
    )
    .await;
    assert_eq!(s, 200);
    assert!(events.next().await.unwrap().contains("token"));
    node.kill();
    let mut last = String::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("stream closes")
    {
        last = e;
    }
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["error"], "Streaming failed", "{v}");
    assert_eq!(v["done"], true);
    let m = metrics(&orch).await;
    assert_eq!(
        metric(&m, "cerebrum_upstream_failures_total"),
        1.0,
        "streaming failures count"
    );
}

#[tokio::test]
async fn a_client_that_leaves_stops_the_node() {
    let (node, orch) = stack("leave", &[], &[]);
    let (_, mut events) = open_stream(&orch.url, "/v1/chat/completions", json!({"messages": [{"role": "user", "content": COUNTING}], "temperature": 0, "max_tokens": 2000, "stream": true})).await;
    assert!(events.next().await.is_some());
    let (_, h) = get(&node, "/health").await;
    assert_eq!(h["active_sequences"], 1);
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, h) = get(&node, "/health").await;
        if h["active_sequences"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "node still generating: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_request_id_reaches_the_node() {
    let (node, orch) = stack("reqid", &[], &[]);
    let r = client()
        .post(format!("{}/v1/complete", orch.url))
        .header("x-request-id", "trace-me-42")
        .json(&json!({"prompt": "Hi", "max_tokens": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = node.log();
    assert!(log.contains("trace-me-42"), "node log lacks the id:\n{log}");
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let (_node, orch) = stack("orchbad", &[], &[]);
    let c = client();
    let r = c
        .post(format!("{}/v1/complete", orch.url))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let cases = [
        // Over the orchestrator's own bound (what fits the model is fitted, not refused).
        (
            json!({"prompt": "x".repeat(cerebrum_shared::limits::MAX_PROMPT_CHARS + 1)}),
            413,
        ),
        (json!({"prompt": "x", "max_tokens": 2049}), 422),
        (json!({"prompt": "x", "max_tokens": 0}), 422),
        (json!({"prompt": "x", "temperature": -1}), 422),
        (json!({"prompt": ""}), 422),
        (json!({"prompt": ["x"]}), 422),
        (json!({"prompt": "x", "model": "gpt-9"}), 404),
    ];
    for (body, status) in cases {
        let (s, _, b) = post(&orch, "/v1/complete", body.clone()).await;
        assert_eq!(s, status, "{b}");
    }
    let (s, _, b) = post(&orch, "/v1/chat/completions", json!({"messages": []})).await;
    assert_eq!(s, 422);
    assert_eq!(b["error"]["param"], "messages");
    // max_tokens 2048 is accepted and honoured, not cut to 512.
    let (s, _, b) = post(
        &orch,
        "/v1/complete",
        json!({"prompt": "List the numbers from 1 to 1000, separated by commas.", "temperature": 0, "max_tokens": 600}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["tokens_generated"], 600);
}

#[tokio::test]
async fn ops_routes() {
    let (_node, orch) = stack("ops", &[], &[]);
    let (s, m) = get(&orch, "/v1/models").await;
    assert_eq!(s, 200);
    assert_eq!(m["object"], "list");
    assert_eq!(m["available_models"], json!([SMOLLM]));
    for method in ["GET", "POST"] {
        let r = client()
            .request(
                method.parse().unwrap(),
                format!("{}/v1/vps/health", orch.url),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["status"], "healthy");
    }
    let (_, _, _) = post(
        &orch,
        "/v1/complete",
        json!({"prompt": "Hi", "max_tokens": 2}),
    )
    .await;
    let (s, st) = get(&orch, "/v1/stats").await;
    assert_eq!(s, 200);
    assert_eq!(st["cm4"]["vps_client"]["requests_sent"], 1);
    assert_eq!(st["cm4"]["vps_client"]["successful"], 1);
    assert!(st["vps"]["uptime_seconds"].is_u64(), "{st}");
    let ready = client()
        .get(format!("{}/health/ready", orch.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let code = "def helper_function(x):\n    total = 0\n    for i in range(x):\n        total += i * 2\n    return total\n\n".repeat(40);
    let prompt = format!(
        "{code}\ndef target_function(data):\n    return sorted(data)\n\n# INSTRUCTION: Refactor target_function to handle None\n"
    );
    let (s, _, plan) = post(
        &orch,
        "/v1/prepare",
        json!({"prompt": prompt, "language": "python"}),
    )
    .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["applied"], true);
    assert!(
        plan["prompt"]
            .as_str()
            .unwrap()
            .contains("def target_function")
    );
    assert!(
        plan["stats"]["reduction_percent"].as_f64().unwrap() > 50.0,
        "{plan}"
    );
}

#[tokio::test]
async fn a_client_written_by_others_streams_through_the_orchestrator() {
    use async_openai::Client;
    use async_openai::config::OpenAIConfig;
    use async_openai::types::{
        ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
    };

    let (_node, orch) = stack("asyncopenai", &[], &[]);
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", orch.url))
            .with_api_key("unused"),
    );
    let request = CreateChatCompletionRequestArgs::default()
        .model(SMOLLM)
        .max_tokens(30u32)
        .temperature(0.0)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("What is the capital of Japan?")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();
    let mut stream = client.chat().create_stream(request).await.unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk parses");
        chunks += 1;
        for choice in chunk.choices {
            if let Some(c) = choice.delta.content {
                text.push_str(&c);
            }
        }
    }
    assert!(chunks > 2, "streamed in pieces");
    assert!(text.contains("Tokyo"), "{text}");
}

#[tokio::test]
async fn tells_systemd_it_is_ready_pings_the_watchdog_and_says_when_it_stops() {
    let node = Node::start("orchnotify", &[]);
    let notify = NotifySocket::bind("orchestrator");
    let path = notify.path.to_string_lossy().into_owned();
    let orch = Orchestrator::start(
        &node.url,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "300000")],
    );
    notify.wait_for("READY=1", Duration::from_secs(10));
    notify.wait_for("WATCHDOG=1", Duration::from_secs(2));
    terminate(&orch.child);
    notify.wait_for("STOPPING=1", Duration::from_secs(5));
}

#[tokio::test]
async fn sigterm_lets_open_streams_finish_and_refuses_new_connections() {
    let (_node, orch) = stack("graceful", &[], &[]);
    let (s, mut events) = open_stream(
        &orch.url,
        "/v1/complete/stream",
        json!({"prompt": "List the numbers from 1 to 1000, separated by commas.", "temperature": 0, "max_tokens": 120}),
    )
    .await;
    assert_eq!(s, 200);
    assert!(events.next().await.unwrap().contains("token"));
    terminate(&orch.child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the open stream goes on to its end.
    let refused = client().get(format!("{}/health", orch.url)).send().await;
    assert!(refused.is_err(), "accepted a new connection after SIGTERM");
    let mut last = String::new();
    while let Some(e) = events.next().await {
        last = e;
    }
    let done: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(done["total_tokens"], 120);
}

#[tokio::test]
async fn the_optional_rate_limit_answers_429_per_client() {
    let (_node, orch) = stack(
        "ratelimit",
        &[],
        &[
            ("CEREBRUM_RATE_LIMIT_PER_SECOND", "1"),
            ("CEREBRUM_RATE_LIMIT_BURST", "2"),
            ("CEREBRUM_CLIENT_KEYS", "alpha-key,beta-key"),
        ],
    );
    // An empty body is refused (422) by the handler right away, so the
    // requests come well within the limiter's one-second refill whatever the load.
    let body = json!({});
    let send = |key: &'static str| {
        let url = format!("{}/v1/complete", orch.url);
        let body = body.clone();
        async move {
            let r = client()
                .post(url)
                .header("x-api-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            if r.status() == 429 {
                assert!(r.headers().contains_key("retry-after"));
            }
            r.status().as_u16()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(send("alpha-key").await);
    }
    assert_eq!(statuses, vec![422, 422, 429]);
    // Another configured client key has its own budget.
    assert_eq!(send("beta-key").await, 422, "past the limiter");
}

#[tokio::test]
async fn an_invented_key_shares_its_peers_rate_limit() {
    let (_node, orch) = stack(
        "ratelimit-peer",
        &[],
        &[
            ("CEREBRUM_RATE_LIMIT_PER_SECOND", "1"),
            ("CEREBRUM_RATE_LIMIT_BURST", "2"),
        ],
    );
    // With no client keys configured, a client is its address: a new
    // X-API-Key value per request buys no new budget.
    let mut statuses = Vec::new();
    for key in ["k1", "k2", "k3", "k4"] {
        let r = client()
            .post(format!("{}/v1/complete", orch.url))
            .header("x-api-key", key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![422, 422, 429, 429]);
    let m = metrics(&orch).await;
    assert_eq!(metric(&m, "cerebrum_rate_limited_total"), 2.0);
}

#[tokio::test]
async fn client_keys_when_configured() {
    let (_node, orch) = stack(
        "clientkeys",
        &[],
        &[("CEREBRUM_CLIENT_KEYS", "alpha-key,beta-key")],
    );
    let c = client();
    let body = json!({"prompt": "Hi", "max_tokens": 1});
    let url = format!("{}/v1/complete", orch.url);
    assert_eq!(c.post(&url).json(&body).send().await.unwrap().status(), 401);
    assert_eq!(
        c.post(&url)
            .header("x-api-key", "nope")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        c.post(&url)
            .bearer_auth("beta-key")
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{}/health", orch.url))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "health stays open"
    );
}

#[tokio::test]
async fn one_json_log_line_per_request_with_its_model_tokens_and_times() {
    let node = Node::start("logline", &[]);
    let orch =
        Orchestrator::start_logged(&node.url, &[("LOG_FORMAT", "json"), ("LOG_LEVEL", "info")]);
    let body = json!({"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "stream": true});
    let r = client()
        .post(format!("{}/v1/chat/completions", orch.url))
        .header("x-request-id", "log-line-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
    let line = |log: String| {
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message"] == "request" && v["span"]["id"] == "log-line-1")
    };
    let mut found = None;
    assert!(
        poll(Duration::from_secs(5), Duration::from_millis(50), || {
            found = line(orch.log());
            found.is_some()
        }),
        "no request line in:\n{}",
        orch.log()
    );
    let v = found.unwrap();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["outcome"], "ok", "{v}");
    assert_eq!(v["span"]["path"], "/v1/chat/completions", "{v}");
    assert_eq!(v["span"]["model"], SMOLLM, "{v}");
    assert_eq!(v["span"]["tokens"], 4, "{v}");
    assert!(
        v["span"]["prompt_tokens"].as_u64().is_some_and(|n| n > 0),
        "{v}"
    );
    let (ttft, ms) = (v["ttft_ms"].as_f64().unwrap(), v["ms"].as_f64().unwrap());
    assert!(ttft > 0.0 && ttft <= ms, "{v}");
    // Not a terminal: no colour codes anywhere.
    assert!(!orch.log().contains('\u{1b}'), "colour codes in the log");
}
