//! Node throughput benchmark (a bench binary, not a timed test): real `cerebrum-node`
//! on loopback, real SmolLM2, 2 threads. Prints a Markdown table for BENCHMARKS.md.
//!
//!     cargo bench -p cerebrum-node --bench node_throughput
//!
//! Measures: time to first token cold (model load included) and warm, prompt
//! processing tok/s, single-stream decode tok/s, and aggregate decode tok/s with
//! 1, 2 and 4 concurrent streams (continuous batching, 4 slots).

use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::json;

/// One streamed request: (time to first token, token arrival times, tokens, prompt tokens).
struct Run {
    ttft: Duration,
    first_to_last: Duration,
    tokens: u64,
    prompt_tokens: u64,
}

async fn stream(url: &str, prompt: &str, max_tokens: u32) -> Run {
    let t0 = Instant::now();
    let r = client()
        .post(format!("{url}/v1/inference/stream"))
        .header("x-api-key", KEY)
        .json(&json!({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}))
        .send()
        .await
        .unwrap();
    let mut events = r.bytes_stream().eventsource();
    let (mut first, mut last) = (None, t0);
    let (mut tokens, mut prompt_tokens) = (0, 0);
    while let Some(ev) = events.next().await {
        let v: serde_json::Value = serde_json::from_str(&ev.unwrap().data).unwrap();
        if v.get("token").is_some() {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
        } else if v["done"] == true {
            tokens = v["total_tokens"].as_u64().unwrap_or(0);
            prompt_tokens = v["prompt_tokens"].as_u64().unwrap_or(0);
        }
    }
    let first = first.unwrap_or(last);
    Run {
        ttft: first - t0,
        first_to_last: last - first,
        tokens,
        prompt_tokens,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

const COUNT: &str = "1, 2, 3, 4, 5, 6,";

#[tokio::main]
async fn main() {
    // cargo bench passes --bench; nothing to parse.
    let node = Node::start(
        "bench",
        &[("CEREBRUM_PARALLEL", "4"), ("CEREBRUM_N_THREADS", "2")],
    );
    let url = node.url.clone();

    let cold = stream(&url, COUNT, 8).await;
    let mut warm = Vec::new();
    for _ in 0..7 {
        warm.push(
            stream(&url, "The capital of France is", 4)
                .await
                .ttft
                .as_secs_f64()
                * 1e3,
        );
    }
    let long_prompt = "The quick brown fox jumps over the lazy dog. ".repeat(90);
    let mut prompt_tps = Vec::new();
    for _ in 0..5 {
        let r = stream(&url, &long_prompt, 2).await;
        prompt_tps.push(r.prompt_tokens as f64 / r.ttft.as_secs_f64());
    }
    let mut decode = Vec::new();
    for _ in 0..5 {
        let r = stream(&url, COUNT, 128).await;
        decode.push((r.tokens - 1) as f64 / r.first_to_last.as_secs_f64());
    }
    let mut aggregate = Vec::new();
    for streams in [1usize, 2, 4] {
        let mut rounds = Vec::new();
        for _ in 0..3 {
            let t0 = Instant::now();
            let handles: Vec<_> = (0..streams)
                .map(|_| {
                    let url = url.clone();
                    tokio::spawn(async move { stream(&url, COUNT, 128).await.tokens })
                })
                .collect();
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            rounds.push(total as f64 / t0.elapsed().as_secs_f64());
        }
        aggregate.push((streams, median(rounds)));
    }

    println!("| measure (SmolLM2-135M Q4_1, 2 threads, 4 slots) | median |");
    println!("|---|---|");
    println!(
        "| time to first token, cold (load included) | {:.0} ms |",
        cold.ttft.as_secs_f64() * 1e3
    );
    println!("| time to first token, warm | {:.1} ms |", median(warm));
    println!(
        "| prompt processing ({} tokens) | {:.0} tok/s |",
        1 + long_prompt.len() / 5,
        median(prompt_tps)
    );
    println!("| decode, one stream | {:.1} tok/s |", median(decode));
    let base = aggregate[0].1;
    for (streams, tps) in &aggregate {
        println!(
            "| aggregate decode, {streams} concurrent stream(s) | {tps:.1} tok/s ({:.2}x) |",
            tps / base
        );
    }
}
