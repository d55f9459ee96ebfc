//! The node over real HTTP on loopback, with the real SmolLM2 model.

use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use serde_json::json;

#[tokio::test]
async fn completes_the_capital_of_france_greedily() {
    let node = Node::start("france", &[]);
    let (status, headers, body) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "The capital of France is", "temperature": 0, "max_tokens": 8}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"].as_str().unwrap().contains("Paris"), "{body}");
    assert_eq!(body["model"], SMOLLM);
    assert!(body["tokens_generated"].as_u64().unwrap() >= 1);
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn chat_answers_the_capital_of_japan() {
    let node = Node::start("japan", &[]);
    let (status, _, body) = post(
        &node,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "What is the capital of Japan?"}],
               "temperature": 0, "max_tokens": 30}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(answer.contains("Tokyo"), "{answer}");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 5);
}

#[tokio::test]
async fn streamed_text_equals_non_streamed_text_for_a_seeded_request() {
    let node = Node::start("seeded", &[]);
    let req =
        json!({"prompt": "Once upon a time", "temperature": 0.9, "seed": 1234, "max_tokens": 40});
    let (_, _, whole) = post(&node, "/v1/inference", req.clone()).await;
    let events = stream_events(&node, "/v1/inference/stream", req).await;
    let (streamed, done) = cerebrum_text(&events);
    assert_eq!(streamed, whole["result"].as_str().unwrap());
    assert_eq!(done["done"], true);
    assert_eq!(done["total_tokens"], whole["tokens_generated"]);
    assert!(done["tokens_per_second"].as_f64().unwrap() > 0.0);

    // The OpenAI stream carries the same text, ends with [DONE], and reports usage when asked.
    let chunks = stream_events(
        &node,
        "/v1/completions",
        json!({"prompt": "Once upon a time", "temperature": 0.9, "seed": 1234, "max_tokens": 40,
               "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(chunks.last().unwrap(), "[DONE]");
    let mut text = String::new();
    let mut usage = None;
    for c in &chunks[..chunks.len() - 1] {
        let v: serde_json::Value = serde_json::from_str(c).unwrap();
        if let Some(t) = v["choices"][0]["text"].as_str() {
            text.push_str(t);
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    assert_eq!(text, whole["result"].as_str().unwrap());
    assert_eq!(
        usage.unwrap()["completion_tokens"],
        whole["tokens_generated"]
    );
}

/// Four different questions decoded together in one batch each get their own answer.
#[tokio::test]
async fn four_concurrent_requests_get_their_own_answers() {
    let node = Node::start("batch", &[("CEREBRUM_PARALLEL", "4")]);
    let cases = [
        ("France", "Paris"),
        ("Italy", "Rome"),
        ("Japan", "Tokyo"),
        ("Germany", "Berlin"),
    ];
    let req = |country: &str| json!({"prompt": format!("The capital of {country} is"), "temperature": 0, "max_tokens": 16});
    // Alone first, to measure how often batching changes the greedy text.
    let mut solo = Vec::new();
    for (country, _) in cases {
        let (_, _, body) = post(&node, "/v1/inference", req(country)).await;
        solo.push(body["result"].as_str().unwrap().to_string());
    }
    let mut drifted = 0;
    for round in 0..3 {
        let handles: Vec<_> = cases
            .iter()
            .map(|(country, _)| {
                let url = node.url.clone();
                let body = req(country);
                tokio::spawn(async move {
                    let r = client()
                        .post(format!("{url}/v1/inference/stream"))
                        .header("x-api-key", KEY)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    use eventsource_stream::Eventsource;
                    use futures::StreamExt;
                    let mut s = r.bytes_stream().eventsource();
                    let mut all = Vec::new();
                    while let Some(e) = s.next().await {
                        all.push(e.unwrap().data);
                    }
                    all
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let (text, done) = cerebrum_text(&h.await.unwrap());
            let (_, city) = cases[i];
            assert_eq!(done["done"], true);
            assert!(
                text.contains(city),
                "round {round}: {} → {text:?}",
                cases[i].0
            );
            for (_, other) in cases.iter().filter(|(_, c)| *c != city) {
                assert!(
                    !text.contains(other),
                    "round {round}: {city} answer has {other}: {text:?}"
                );
            }
            if text != solo[i] {
                drifted += 1;
            }
        }
    }
    eprintln!("batched vs solo greedy text: {drifted} of 12 answers differed");
    let m = metrics(&node).await;
    assert_eq!(metric(&m, "cerebrum_node_active_sequences"), 0.0);
}

#[tokio::test]
async fn a_client_that_disconnects_frees_its_sequence() {
    let node = Node::start("disconnect", &[]);
    let r = client()
        .post(format!("{}/v1/inference/stream", node.url))
        .header("x-api-key", KEY)
        .json(&json!({"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": 4000, "temperature": 0}))
        .send()
        .await
        .unwrap();
    use futures::StreamExt;
    let mut body = r.bytes_stream();
    let _ = body.next().await.unwrap().unwrap();
    let (_, h) = get(&node, "/health").await;
    assert_eq!(h["active_sequences"], 1, "{h}");
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = metrics(&node).await;
        if metric(&m, "cerebrum_node_active_sequences") == 0.0 {
            let generated = metric(&m, "cerebrum_node_tokens_generated_total");
            assert!(
                generated < 4000.0,
                "generation went on after the disconnect"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sequence still active 5 s after disconnect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_idle_model_is_unloaded() {
    let node = Node::start("idle", &[("CEREBRUM_IDLE_UNLOAD_SECS", "3")]);
    let (s, _, _) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "Hi", "max_tokens": 2}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, h) = get(&node, "/health").await;
    assert_eq!(h["models_in_cache"], json!([SMOLLM]), "{h}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, h) = get(&node, "/health").await;
        if h["models_in_cache"] == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "model still loaded: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it comes back on the next request.
    let (s, _, _) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "Hi", "max_tokens": 2}),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn ram_floor_above_free_memory_refuses_with_503() {
    let node = Node::start("ramfloor", &[("CEREBRUM_RAM_FLOOR_MB", "100000000")]);
    let (status, headers, body) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "The capital of France is"}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "VPS overloaded");
    assert!(body["reason"].as_str().unwrap().contains("floor"), "{body}");
    assert!(body["suggestion"].is_string());
    assert_eq!(headers["retry-after"], "30");
    let (_, h) = get(&node, "/health").await;
    assert_eq!(h["status"], "overloaded");
    assert_eq!(h["available"], false);
    let m = metrics(&node).await;
    assert!(
        m.contains("cerebrum_node_rejections_total{reason=\"memory\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn auth_matrix() {
    let node = Node::start("auth", &[]);
    let c = client();
    let url = |p: &str| format!("{}{p}", node.url);
    assert_eq!(c.get(url("/health")).send().await.unwrap().status(), 200);
    for path in ["/v1/models", "/metrics", "/v1/stats"] {
        assert_eq!(
            c.get(url(path)).send().await.unwrap().status(),
            401,
            "{path}"
        );
        let wrong = c
            .get(url(path))
            .header("x-api-key", "wrong-key")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403, "{path}");
        let ok = c
            .get(url(path))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{path}");
        let bearer = c.get(url(path)).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(bearer.status(), 200, "{path}");
    }
    let r = c
        .post(url("/v1/inference"))
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(url("/v1/chat/completions"))
        .bearer_auth("nope")
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_node_stays_up() {
    let models = ModelDir::new("badinput");
    models.write("broken.gguf", b"GGUF\x03\x00\x00\x00 this is not a model");
    let real = std::fs::read(smollm2_path()).unwrap();
    models.write("truncated.gguf", &real[..real.len() / 3]);
    let node = Node::start_with(models, &[("CEREBRUM_CONTEXT_SIZE", "128")]);
    let c = client();
    let raw = |body: Vec<u8>| {
        c.post(format!("{}/v1/inference", node.url))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = raw(b"{\"prompt\": ".to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = raw(b"{\"prompt\": \"\xff\xfe\"}".to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("UTF-8"));
    let r = raw(vec![b' '; 2 * 1024 * 1024]).await.unwrap();
    assert_eq!(r.status(), 413);

    let cases = [
        (json!({"prompt": 42}), 422, "prompt"),
        (
            json!({"prompt": "x", "max_tokens": "many"}),
            422,
            "max_tokens",
        ),
        (json!({"prompt": "x", "max_tokens": 0}), 422, "max_tokens"),
        (
            json!({"prompt": "x", "max_tokens": 4097}),
            422,
            "max_tokens",
        ),
        (
            json!({"prompt": "x", "temperature": 2.5}),
            422,
            "temperature",
        ),
        (json!({"prompt": "x", "top_p": 1.5}), 422, "top_p"),
        (json!({"prompt": "   "}), 422, "prompt"),
        (json!({"max_tokens": 3}), 422, "prompt"),
    ];
    for (body, status, field) in cases {
        let (s, _, b) = post(&node, "/v1/inference", body.clone()).await;
        assert_eq!(s, status, "{body} → {b}");
        assert_eq!(b["field"], field, "{body} → {b}");
    }

    let (s, _, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "hello ".repeat(400)}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let msg = b["message"].as_str().unwrap();
    // llama.cpp rounds the context up to its cell granularity; the message gives both counts.
    assert!(
        msg.contains("prompt is 401 tokens") && msg.contains("per sequence"),
        "{msg}"
    );

    let (s, _, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "x", "model": "gpt-9"}),
    )
    .await;
    assert_eq!(s, 404);
    assert!(b["message"].as_str().unwrap().contains(SMOLLM), "{b}");
    let (s, _, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "x", "model": "../../etc/passwd"}),
    )
    .await;
    assert_eq!(s, 404, "{b}");

    for broken in ["broken", "truncated"] {
        let (s, _, b) = post(
            &node,
            "/v1/inference",
            json!({"prompt": "x", "model": broken}),
        )
        .await;
        assert_eq!(s, 500, "{broken}: {b}");
        assert_eq!(b["error"], "Model load failed", "{b}");
    }

    let (s, _, b) = post(
        &node,
        "/v1/chat/completions",
        json!({"messages": [{"role": "wizard", "content": "hi"}]}),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(b["error"]["param"], "messages[0].role");

    // Still serving.
    let (s, _, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "The capital of France is", "temperature": 0, "max_tokens": 5}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["result"].as_str().unwrap().contains("Paris"));
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_are_honoured() {
    let node = Node::start("limits", &[]);
    let (_, _, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "Count: one, two, three,", "max_tokens": 7, "temperature": 0}),
    )
    .await;
    assert_eq!(b["tokens_generated"], 7);
    assert_eq!(b["finish_reason"], "length");
    let (_, _, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "The capital of France is", "max_tokens": 30, "temperature": 0, "stop": ["."]}),
    )
    .await;
    assert_eq!(b["finish_reason"], "stop");
    let text = b["result"].as_str().unwrap();
    assert!(text.contains("Paris") && !text.contains('.'), "{text}");
}

#[tokio::test]
async fn concurrent_first_requests_share_one_load_and_models_can_be_unloaded() {
    let node = Node::start("singleflight", &[]);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let url = node.url.clone();
            tokio::spawn(async move {
                client()
                    .post(format!("{url}/v1/inference"))
                    .header("x-api-key", KEY)
                    .json(&json!({"prompt": "Hello", "max_tokens": 3}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    let m = metrics(&node).await;
    assert_eq!(metric(&m, "cerebrum_node_model_loads_total"), 1.0);

    let (s, models) = get(&node, "/v1/models").await;
    assert_eq!(s, 200);
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], SMOLLM);
    assert_eq!(models["cached_models"], json!([SMOLLM]));
    assert_eq!(models["inference_counts"][SMOLLM], 3);

    let (s, _, b) = post(&node, &format!("/v1/unload/{SMOLLM}"), json!({})).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("unloaded")));
    let (s, _, _) = post(&node, &format!("/v1/unload/{SMOLLM}"), json!({})).await;
    assert_eq!(s, 404);
    let (s, _, b) = post(&node, "/v1/cleanup", json!({})).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn with_the_maximum_loaded_the_idle_model_is_evicted() {
    let models = ModelDir::new("evict");
    models.alias("second");
    let node = Node::start_with(models, &[("CEREBRUM_MAX_LOADED_MODELS", "1")]);
    let (s, _, _) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "Hi", "max_tokens": 2}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "Hi", "max_tokens": 2, "model": "second"}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, h) = get(&node, "/health").await;
    assert_eq!(h["models_in_cache"], json!(["second"]), "{h}");
}

#[tokio::test]
async fn the_request_id_is_kept_and_echoed() {
    let node = Node::start("reqid", &[]);
    let r = client()
        .post(format!("{}/v1/inference", node.url))
        .header("x-api-key", KEY)
        .header("x-request-id", "abc-123")
        .json(&json!({"prompt": "Hi", "max_tokens": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn tells_systemd_it_is_ready_pings_the_watchdog_and_says_when_it_stops() {
    let notify = NotifySocket::bind("node");
    let path = notify.path.to_string_lossy().into_owned();
    let node = Node::start(
        "notify",
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "300000")],
    );
    let first = notify.wait_for("READY=1", Duration::from_secs(10));
    assert!(
        first.iter().any(|m| m.contains("STATUS=serving on")),
        "{first:?}"
    );
    // WatchdogSec=0.3 s → a ping every 0.15 s.
    notify.wait_for("WATCHDOG=1", Duration::from_secs(2));
    notify.wait_for("WATCHDOG=1", Duration::from_secs(2));
    terminate(&node.child);
    notify.wait_for("STOPPING=1", Duration::from_secs(5));
}

#[tokio::test]
async fn tokenize_counts_exactly_what_generation_decodes() {
    let node = Node::start("tokenize", &[]);
    let messages = json!([{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "What is the capital of Japan?"}]);
    let (status, _, t) = post(
        &node,
        "/tokenize",
        json!({"messages": messages, "count_only": true}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["context_length"], 2048);
    assert_eq!(t["model"], SMOLLM);
    let (_, health) = get(&node, "/health").await;
    assert_eq!(health["context_length"], 2048, "/health states it too");
    let (_, models) = get(&node, "/v1/models").await;
    assert_eq!(models["data"][0]["context_length"], 2048);
    assert!(t["tokens"].as_array().unwrap().is_empty(), "count_only");
    let (_, _, chat) = post(
        &node,
        "/v1/chat/completions",
        json!({"messages": messages, "max_tokens": 1, "temperature": 0}),
    )
    .await;
    assert_eq!(t["count"], chat["usage"]["prompt_tokens"], "{chat}");

    let (_, _, text) = post(&node, "/tokenize", json!({"content": "Hello world"})).await;
    assert_eq!(
        text["tokens"].as_array().unwrap().len() as u64,
        text["count"].as_u64().unwrap()
    );
    let (status, _, both) = post(
        &node,
        "/tokenize",
        json!({"content": "x", "messages": messages}),
    )
    .await;
    assert_eq!(status, 422, "{both}");
    assert_eq!(both["code"], "invalid_request");
}
