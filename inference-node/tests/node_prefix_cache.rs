//! Prefix KV-cache reuse on the real node with the real SmolLM2 model (and
//! gemma-3-270m for sliding-window attention): a follow-up prefills only what
//! is new, answers exactly as it would without the cache (greedy), and a
//! cancelled request leaves nothing a later prompt trusts.

use cerebrum_testkit::*;
use serde_json::{Value, json};

/// A file-sized system message, so the shared prefix is worth reusing.
fn system() -> String {
    let mut s = String::from("You are a careful assistant. Here is the module under review:\n");
    for i in 0..40 {
        s.push_str(&format!("def helper_{i}(x):\n    return x * {i} + 1\n"));
    }
    s
}

fn chat(messages: &[(&str, &str)], cache: bool) -> Value {
    json!({
        "messages": messages.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>(),
        "temperature": 0,
        "max_tokens": 24,
        "cache_prompt": cache,
    })
}

/// (answer, prompt tokens, cached tokens)
async fn ask(node: &Node, body: Value) -> (String, u64, u64) {
    let (status, _, v) = post(node, "/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{v}");
    let usage = &v["usage"];
    (
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string(),
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
    )
}

/// (text, prompt tokens, cached tokens) of a greedy text completion.
async fn complete(node: &Node, prompt: &str, cache: bool) -> (String, u64, u64) {
    let body = json!({"prompt": prompt, "temperature": 0, "max_tokens": 10, "cache_prompt": cache});
    let (status, _, v) = post(node, "/v1/completions", body).await;
    assert_eq!(status, 200, "{v}");
    (
        v["choices"][0]["text"].as_str().unwrap().to_string(),
        v["usage"]["prompt_tokens"].as_u64().unwrap(),
        v["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
    )
}

#[tokio::test]
async fn greedy_text_with_the_cache_equals_text_without_it() {
    let node = Node::start("prefix-equal", &[("CEREBRUM_PARALLEL", "2")]);
    // A session over a file: the prompt grows turn by turn, each turn carrying
    // the last answer back. (Prompts whose next token is not a near-tie: see
    // engine/prefix.rs on what llama.cpp does and does not promise.)
    let mut prompt = format!("{}def helper_40(x):\n    return x *", system());
    for turn in 0..3 {
        let (fresh, prompt_tokens, none) = complete(&node, &prompt, false).await;
        assert_eq!(none, 0, "cache_prompt: false prefills everything");
        let (cached_text, _, cached) = complete(&node, &prompt, true).await;
        // The uncached request just wrote this very prompt: all but its last token is reused.
        assert_eq!(cached, prompt_tokens - 1, "turn {turn}");
        assert_eq!(cached_text, fresh, "turn {turn}");
        prompt.push_str(&fresh);
        prompt.push_str(&format!("\n\ndef helper_{}(x):\n    return x *", 41 + turn));
    }
    let m = metrics(&node).await;
    assert!(
        metric(
            &m,
            "cerebrum_node_prompt_tokens_total{model=\"smollm2\",source=\"cached\"}"
        ) > 1000.0
    );
    assert!(
        metric(
            &m,
            "cerebrum_node_prompt_tokens_total{model=\"smollm2\",source=\"processed\"}"
        ) > 1000.0
    );
}

#[tokio::test]
async fn a_chat_follow_up_prefills_only_the_new_turn() {
    let node = Node::start("prefix-follow-up", &[("CEREBRUM_PARALLEL", "2")]);
    let system = system();
    let first = [
        ("system", system.as_str()),
        ("user", "What does helper_7 return for 2?"),
    ];
    let (answer, prompt_tokens, cached) = ask(&node, chat(&first, true)).await;
    assert_eq!(cached, 0, "nothing to reuse yet");
    assert!(prompt_tokens > 300, "{prompt_tokens}");
    // The follow-up carries the history back: the whole first turn is reused.
    let follow_up = [
        first[0],
        first[1],
        ("assistant", answer.as_str()),
        ("user", "And for 3?"),
    ];
    let (_, follow_tokens, cached) = ask(&node, chat(&follow_up, true)).await;
    assert!(
        cached >= prompt_tokens && cached < follow_tokens,
        "cached {cached} of {follow_tokens}; first turn had {prompt_tokens}"
    );
}

/// gemma-3-270m's sliding-window layers attend over the last 512 positions. A
/// slot trimmed to a prefix that ends far more than a window before its cached
/// end still answers exactly as without the cache: the node keeps every cell of
/// those layers (`with_swa_full`), where a windowed cache would already have
/// dropped the prefix's cells (the answer changes, or the decode fails).
#[tokio::test]
async fn gemma_reuses_a_prefix_a_window_behind_the_cached_end() {
    let models = ModelDir::empty("prefix-swa");
    models.link(GEMMA3, &gemma3_path());
    let node = Node::start_with(
        models,
        &[
            ("CEREBRUM_DEFAULT_MODEL", GEMMA3),
            ("CEREBRUM_PARALLEL", "1"),
        ],
    );
    let helpers = |n: usize| -> String {
        (0..n)
            .map(|i| format!("def helper_{i}(x):\n    return x * {i} + 1\n"))
            .collect()
    };
    // One slot, filled with a long file.
    let long = format!("{}def helper_90(x):\n    return x *", helpers(90));
    let (_, long_tokens, _) = complete(&node, &long, true).await;
    // A prompt sharing only the file's first lines: the slot keeps those.
    let short = format!("{}def helper_99(x):\n    return x *", helpers(8));
    let (fresh, short_tokens, none) = complete(&node, &short, false).await;
    assert_eq!(none, 0);
    // That uncached request took the slot: fill it with the file again.
    complete(&node, &long, true).await;
    let (cached_text, _, cached) = complete(&node, &short, true).await;
    assert!(
        cached > 50 && cached < short_tokens && long_tokens > cached + 2 * 512,
        "kept {cached} of {short_tokens} tokens, {long_tokens} cached before"
    );
    assert_eq!(cached_text, fresh);
}

#[tokio::test]
async fn two_conversations_each_find_their_own_slot() {
    let node = Node::start("prefix-two", &[("CEREBRUM_PARALLEL", "2")]);
    let system = system();
    let a1 = [("system", system.as_str()), ("user", "Name helper_3.")];
    let other = format!("Unrelated notes.\n{}", "The sky is blue. ".repeat(60));
    let b1 = [
        ("system", other.as_str()),
        ("user", "What colour is the sky?"),
    ];
    let (ra, pa, _) = ask(&node, chat(&a1, true)).await;
    let (rb, pb, _) = ask(&node, chat(&b1, true)).await;
    // Each follow-up lands on the slot its own history is in.
    let a2 = [
        a1[0],
        a1[1],
        ("assistant", ra.as_str()),
        ("user", "Thanks."),
    ];
    let b2 = [b1[0], b1[1], ("assistant", rb.as_str()), ("user", "Why?")];
    let (_, _, ca) = ask(&node, chat(&a2, true)).await;
    let (_, _, cb) = ask(&node, chat(&b2, true)).await;
    assert!(ca >= pa - 1, "conversation A reused {ca} of its {pa}");
    assert!(cb >= pb - 1, "conversation B reused {cb} of its {pb}");
}

#[tokio::test]
async fn a_cancelled_request_leaves_only_cells_that_answer_correctly() {
    let node = Node::start("prefix-cancel", &[("CEREBRUM_PARALLEL", "1")]);
    let system = system();
    let turn = [
        ("system", system.as_str()),
        ("user", "Count from 1 to 100."),
    ];
    let mut long = chat(&turn, true);
    long["max_tokens"] = json!(400);
    long["stream"] = json!(true);
    let r = client()
        .post(format!("{}/v1/chat/completions", node.url))
        .header("x-api-key", KEY)
        .json(&long)
        .send()
        .await
        .unwrap();
    use futures::StreamExt;
    let mut body = r.bytes_stream();
    for _ in 0..3 {
        let _ = body.next().await.unwrap().unwrap();
    }
    drop(body);
    // Wait for the node to notice, then ask the same question without and with the cache.
    assert!(poll(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(50),
        || {
            let (_, b) = http_get(&node.url, "/health");
            b.contains("\"active_sequences\":0")
        }
    ));
    let (fresh, _, none) = ask(&node, chat(&turn, false)).await;
    assert_eq!(none, 0);
    let (reused, prompt_tokens, cached) = ask(&node, chat(&turn, true)).await;
    assert!(
        cached > 0 && cached < prompt_tokens,
        "{cached}/{prompt_tokens}"
    );
    assert_eq!(reused, fresh);
}

#[tokio::test]
async fn the_cerebrum_api_reports_cached_tokens_too() {
    let node = Node::start("prefix-cerebrum", &[]);
    let prompt = format!("{}\n# helper_5(2) returns", system());
    let req = json!({"prompt": prompt, "temperature": 0, "max_tokens": 6});
    let (status, _, first) = post(&node, "/v1/inference", req.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["cached_tokens"], 0);
    let events = stream_events(&node, "/v1/inference/stream", req).await;
    let done: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(done["done"], true);
    let prompt_tokens = first["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        done["cached_tokens"].as_u64(),
        Some(prompt_tokens - 1),
        "{done}"
    );
    let text: String = events[..events.len() - 1]
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, first["result"].as_str().unwrap());
}
