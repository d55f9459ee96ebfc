//! A scripted coding session (a bench binary, not a timed test): five turns over
//! a 6 KB source file, time to first token per turn, on our node with the prefix
//! cache on, on a second node with it off (`CEREBRUM_PROMPT_CACHE=false`), and on
//! llama.cpp's llama-server, in the same run, alternating engines each turn.
//! Prints a Markdown table for BENCHMARKS.md.
//!
//!     scripts/build-llama-server          # once (~4 min), cached
//!     cargo bench -p cerebrum-node --bench sessions
//!
//! Both engines: SmolLM2-135M Q4_1, 2 threads, 2 slots of 4,096 tokens, OpenMP
//! off, greedy, 16 answer tokens, the same messages (scripted assistant replies,
//! so every engine sees the same prompts). Each round starts a new session (a
//! round tag opens the system message), so turn 1 is never served from a cache.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use futures::StreamExt;
use serde_json::{Value, json};

const ROUNDS: usize = 3;
const FOLLOW_UPS: [&str; 4] = [
    "Now add type hints to parse_record.",
    "Why could load_all fail on an empty file?",
    "Rename summarize to report.",
    "Write one unit test for merge_counts.",
];

/// A 6 KB Python module, as a person would paste it.
fn source_file() -> String {
    let mut s = String::from("import json\nfrom collections import Counter\n\n");
    let mut i = 0;
    while s.len() < 6000 {
        s.push_str(&format!(
            "def parse_record_{i}(line):\n    \"\"\"Split one CSV line into fields ({i}).\"\"\"\n    fields = line.strip().split(',')\n    return {{'id': int(fields[0]), 'name': fields[1], 'score': float(fields[2]) * {i}}}\n\n"
        ));
        i += 1;
    }
    s.push_str("def load_all(path):\n    with open(path) as f:\n        return [parse_record_0(l) for l in f]\n\ndef merge_counts(a, b):\n    return Counter(a) + Counter(b)\n\ndef summarize(records):\n    return json.dumps({'n': len(records)})\n");
    s
}

/// The messages of turn `turn` (0-based) of round `round`.
fn messages(round: usize, turn: usize, file: &str) -> Vec<Value> {
    let mut m = vec![
        json!({"role": "system", "content": format!("Session {round}. You are a concise Python reviewer.")}),
        json!({"role": "user", "content": format!("Review this file:\n```python\n{file}```\nWhat does it do?")}),
    ];
    for q in &FOLLOW_UPS[..turn] {
        m.push(
            json!({"role": "assistant", "content": "It parses CSV records and summarizes them."}),
        );
        m.push(json!({"role": "user", "content": q}));
    }
    m
}

/// (time to first token, prompt tokens, cached tokens) of one streamed chat turn.
async fn ttft(
    url: &str,
    key: Option<&str>,
    messages: &[Value],
    cache: bool,
) -> (Duration, u64, u64) {
    let t0 = Instant::now();
    let mut req = client()
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({
            "messages": messages, "max_tokens": 16, "temperature": 0, "stream": true,
            "stream_options": {"include_usage": true}, "cache_prompt": cache,
        }));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let r = req.send().await.unwrap();
    if !r.status().is_success() {
        panic!(
            "{url}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    let mut body = r.bytes_stream();
    let (mut first, mut usage, mut buf) = (None, Value::Null, String::new());
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
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            {
                first.get_or_insert_with(|| t0.elapsed());
            }
            if !v["usage"].is_null() {
                usage = v["usage"].clone();
            }
        }
    }
    (
        first.unwrap_or_else(|| t0.elapsed()),
        usage["prompt_tokens"].as_u64().unwrap_or(0),
        usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0),
    )
}

struct LlamaServer {
    child: Child,
    url: String,
}

impl LlamaServer {
    fn start() -> Option<LlamaServer> {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-llama-server");
        let out = Command::new(script)
            .stderr(Stdio::inherit())
            .output()
            .ok()?;
        let bin = String::from_utf8(out.stdout).ok()?.trim().to_string();
        let port = free_port();
        let child = Command::new(format!("{bin}/llama-server"))
            .args([
                "-m",
                smollm2_path().to_str()?,
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "-t",
                "2",
                "-tb",
                "2",
                "-np",
                "2",
                "-c",
                "8192",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let url = format!("http://127.0.0.1:{port}");
        let ready = poll(Duration::from_secs(60), Duration::from_millis(100), || {
            http_get(&url, "/health").0 == 200
        });
        ready.then_some(LlamaServer { child, url })
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let file = source_file();
    let node = Node::start(
        "bench-sessions",
        &[
            ("CEREBRUM_N_THREADS", "2"),
            ("CEREBRUM_PARALLEL", "2"),
            ("CEREBRUM_CONTEXT_SIZE", "4096"),
        ],
    );
    let uncached = Node::start(
        "bench-sessions-off",
        &[
            ("CEREBRUM_N_THREADS", "2"),
            ("CEREBRUM_PARALLEL", "2"),
            ("CEREBRUM_CONTEXT_SIZE", "4096"),
            ("CEREBRUM_PROMPT_CACHE", "false"),
        ],
    );
    let peer =
        LlamaServer::start().expect("llama-server (scripts/build-llama-server) did not start");
    // Warm both (model load, first allocation).
    let warm = vec![json!({"role": "user", "content": "Hi"})];
    ttft(&node.url, Some(KEY), &warm, true).await;
    ttft(&uncached.url, Some(KEY), &warm, true).await;
    ttft(&peer.url, None, &warm, true).await;

    // [engine][turn] -> samples (ms); prompt and cached tokens of the last round.
    let names = ["node, cache on", "node, cache off", "llama-server"];
    let mut ms = vec![vec![Vec::new(); 5]; 3];
    let mut tokens = vec![vec![(0u64, 0u64); 5]; 3];
    for round in 0..ROUNDS {
        for turn in 0..5 {
            // Alternate which engine goes first, so drift hits all alike.
            let order: Vec<usize> = if (round + turn) % 2 == 0 {
                vec![0, 1, 2]
            } else {
                vec![2, 1, 0]
            };
            for e in order {
                // Each engine runs its own session: the round tag differs per engine.
                let m = messages(round * 3 + e, turn, &file);
                let (t, p, c) = match e {
                    0 => ttft(&node.url, Some(KEY), &m, true).await,
                    1 => ttft(&uncached.url, Some(KEY), &m, true).await,
                    _ => ttft(&peer.url, None, &m, true).await,
                };
                ms[e][turn].push(t.as_secs_f64() * 1000.0);
                tokens[e][turn] = (p, c);
            }
        }
    }
    println!(
        "| turn | prompt tokens | {} | {} | {} | cached (node / llama-server) | node on ÷ llama-server |",
        names[0], names[1], names[2]
    );
    println!("|---|---|---|---|---|---|---|");
    for turn in 0..5 {
        let med: Vec<f64> = (0..3).map(|e| median(ms[e][turn].clone())).collect();
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {} / {} | {:.2}× |",
            turn + 1,
            tokens[0][turn].0,
            med[0],
            med[1],
            med[2],
            tokens[0][turn].1,
            tokens[2][turn].1,
            med[0] / med[2]
        );
    }
    let range = |e: usize, t: usize| {
        let v = &ms[e][t];
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("{lo:.0}–{hi:.0}")
    };
    println!("\nmin–max over {ROUNDS} rounds (ms), turn 1 / turn 5:");
    for (e, name) in names.iter().enumerate() {
        println!("- {name}: {} / {}", range(e, 0), range(e, 4));
    }
}
