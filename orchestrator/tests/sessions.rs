//! Coding sessions through both tiers with the real model: a conversation whose
//! follow-ups are served from the node's prefix cache, and a pasted file far
//! larger than the model's context that still gets an answer.

use std::time::{Duration, Instant};

use cerebrum_shared::cerebrum::FitReport;
use cerebrum_testkit::*;
use serde_json::{Value, json};

struct Turn {
    answer: String,
    prompt_tokens: u64,
    cached: u64,
    ttft: Duration,
}

/// One streamed chat turn through the orchestrator.
async fn turn(orch: &Orchestrator, messages: &[Value]) -> Turn {
    use futures::StreamExt;
    let started = Instant::now();
    let r = client()
        .post(format!("{}/v1/chat/completions", orch.url))
        .json(&json!({
            "messages": messages,
            "temperature": 0,
            "max_tokens": 24,
            "stream": true,
            "stream_options": {"include_usage": true},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-cerebrum-preparation"));
    let mut body = r.bytes_stream();
    let (mut text, mut ttft, mut usage) = (String::new(), None, Value::Null);
    let mut buf = String::new();
    while let Some(chunk) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.trim().strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).unwrap();
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                ttft.get_or_insert_with(|| started.elapsed());
                text.push_str(t);
            }
            if !v["usage"].is_null() {
                usage = v["usage"].clone();
            }
        }
    }
    Turn {
        answer: text,
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap(),
        cached: usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
        ttft: ttft.expect("no text streamed"),
    }
}

fn msg(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

/// A module a person would paste, about 3 KB, so the first turn's prompt is worth caching.
fn module() -> String {
    let mut s = String::from("```python\n");
    for i in 0..30 {
        s.push_str(&format!(
            "def area_{i}(w, h):\n    \"\"\"Area of shape {i}.\"\"\"\n    return w * h * {i}\n\n"
        ));
    }
    s.push_str("```");
    s
}

#[tokio::test]
async fn a_three_turn_session_reuses_the_cache_and_remembers_the_first_turn() {
    let node = Node::start("session", &[("CEREBRUM_PARALLEL", "2")]);
    let orch = Orchestrator::start(&node.url, &[]);
    let mut messages = vec![
        msg("system", "You are a helpful assistant."),
        msg(
            "user",
            &format!(
                "Here is my code:\n{}\nThe project's codename is Zorblax. Say OK.",
                module()
            ),
        ),
    ];
    let first = turn(&orch, &messages).await;
    assert_eq!(first.cached, 0, "nothing cached before the first turn");
    messages.push(msg("assistant", &first.answer));
    messages.push(msg("user", "What does area_3 return for w=2, h=5?"));
    let second = turn(&orch, &messages).await;
    messages.push(msg("assistant", &second.answer));
    messages.push(msg(
        "user",
        "What is the project's codename? Answer with the codename only.",
    ));
    let third = turn(&orch, &messages).await;

    assert!(
        second.cached >= first.prompt_tokens && third.cached >= second.prompt_tokens,
        "each follow-up reuses the whole previous prompt: {} of {}, {} of {}",
        second.cached,
        first.prompt_tokens,
        third.cached,
        second.prompt_tokens
    );
    assert!(
        third.ttft < first.ttft,
        "the third turn ({:?}) starts sooner than the first ({:?})",
        third.ttft,
        first.ttft
    );
    assert!(
        third.answer.contains("Zorblax"),
        "the last answer needs the first turn: {:?}",
        third.answer
    );
}

#[tokio::test]
async fn a_pasted_file_far_beyond_the_context_gets_an_answer() {
    // A 512-token context: the prepared paste fits, 600 answer tokens do not.
    let node = Node::start("paste", &[("CEREBRUM_CONTEXT_SIZE", "512")]);
    let orch = Orchestrator::start(&node.url, &[]);
    // ~40,000 characters of Python: about 12,000 tokens against a 2,048-token context.
    let mut code = String::new();
    let mut i = 0;
    while code.len() < 40_000 {
        code.push_str(&format!(
            "def handler_{i}(request):\n    data = request.json()\n    if not data:\n        return {{\"error\": \"empty\", \"code\": {i}}}\n    return process_{i}(data)\n\n"
        ));
        i += 1;
    }
    code.push_str("def validate_payment(amount, currency):\n    if amount <= 0:\n        raise ValueError(\"amount\")\n    return currency in (\"EUR\", \"USD\")\n");
    let question = format!("Explain what validate_payment does.\n```python\n{code}```");
    assert!(question.len() >= 40_000);
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"messages": [msg("user", &question)], "max_tokens": 600, "temperature": 0}),
        ),
        (
            "/v1/complete",
            json!({"prompt": question, "max_tokens": 600, "temperature": 0}),
        ),
    ] {
        let r = client()
            .post(format!("{}{path}", orch.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let fit: Option<FitReport> = r
            .headers()
            .get("x-cerebrum-fit")
            .map(|v| serde_json::from_slice(v.as_bytes()).unwrap());
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {v}");
        let answer = v["choices"][0]["message"]["content"]
            .as_str()
            .or(v["result"].as_str())
            .unwrap();
        assert!(!answer.trim().is_empty(), "{path}");
        let fit = fit
            .or_else(|| serde_json::from_value(v["fit"].clone()).ok())
            .unwrap_or_else(|| panic!("{path}: no fit report: {v}"));
        assert!(
            fit.prompt_tokens + u64::from(fit.max_tokens) <= fit.context_length,
            "{fit:?}"
        );
        assert!(
            fit.max_tokens < 600 && fit.max_tokens_requested == 600,
            "max_tokens clamped to what is left: {fit:?}"
        );
    }
}

#[tokio::test]
async fn a_turn_that_cannot_fit_is_413_with_the_numbers() {
    // A 64-token context cannot hold any real question with room for an answer.
    let node = Node::start("tiny-context", &[("CEREBRUM_CONTEXT_SIZE", "64")]);
    let orch = Orchestrator::start(&node.url, &[]);
    let (status, _, v) = post(
        &orch,
        "/v1/chat/completions",
        json!({"messages": [msg("user", &"Tell me about the history of Rome. ".repeat(10))]}),
    )
    .await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], "prompt_too_large");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("tokens") && message.contains("64"),
        "{message}"
    );
}

#[tokio::test]
async fn the_oldest_turns_are_dropped_when_the_conversation_outgrows_the_context() {
    let node = Node::start("drop", &[("CEREBRUM_CONTEXT_SIZE", "512")]);
    let orch = Orchestrator::start(&node.url, &[]);
    let story = "The lighthouse keeper climbed the stairs every evening to light the lamp. ";
    let mut messages = vec![msg("system", "You are brief.")];
    for i in 0..4 {
        messages.push(msg("user", &format!("Part {i}: {}", story.repeat(8))));
        messages.push(msg("assistant", "Noted."));
    }
    messages.push(msg("user", "Who climbed the stairs?"));
    let r = client()
        .post(format!("{}/v1/chat/completions", orch.url))
        .json(&json!({"messages": messages, "max_tokens": 40, "temperature": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fit: FitReport = serde_json::from_slice(r.headers()["x-cerebrum-fit"].as_bytes()).unwrap();
    assert!(fit.dropped_messages >= 2, "{fit:?}");
    assert!(
        fit.prompt_tokens + u64::from(fit.max_tokens) <= 512,
        "{fit:?}"
    );
    let v: Value = r.json().await.unwrap();
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() <= 512 - 40);
}
