//! What the orchestrator costs on top of the node (a bench binary, not a timed
//! test): time to first token and total time through the orchestrator versus
//! straight to the node, p50 and p99 at concurrency 1 and 2, and the
//! orchestrator's RSS idle and under load. Real processes, real SmolLM2, loopback.
//!
//!     cargo bench -p cerebrum --bench overhead
//!
//! Both paths send the same OpenAI chat stream request; each round alternates
//! the two, so machine noise hits both alike.

use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::json;

const ROUNDS: usize = 40;

/// (time to first token, total) of one streamed chat request.
async fn one(url: &str) -> (Duration, Duration) {
    let t0 = Instant::now();
    let r = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-api-key", KEY)
        .json(&json!({"model": SMOLLM, "messages": [{"role": "user", "content": "What is the capital of Japan?"}],
                      "temperature": 0, "max_tokens": 24, "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut events = r.bytes_stream().eventsource();
    let mut first = None;
    while let Some(e) = events.next().await {
        let data = e.unwrap().data;
        if first.is_none() && data.contains("\"content\"") {
            first = Some(t0.elapsed());
        }
    }
    (first.unwrap_or_else(|| t0.elapsed()), t0.elapsed())
}

/// `concurrency` requests at once; returns every request's timings.
async fn batch(url: &str, concurrency: usize) -> Vec<(Duration, Duration)> {
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move { one(&url).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    let node = Node::start("overhead", &[("CEREBRUM_N_THREADS", "2")]);
    let orch = Orchestrator::start(&node.url, &[("LOG_LEVEL", "warn")]);
    let pid = orch.child.id();
    // Warm both paths (model load, connection pool).
    for _ in 0..3 {
        one(&node.url).await;
        one(&orch.url).await;
    }
    let idle_rss = rss_mib(pid);
    let mut peak_rss: f64 = idle_rss;

    println!("| concurrency | path | TTFT p50 | TTFT p99 | total p50 | total p99 |");
    println!("|---|---|---|---|---|---|");
    for concurrency in [1usize, 2] {
        let (mut direct, mut via) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            direct.extend(batch(&node.url, concurrency).await);
            via.extend(batch(&orch.url, concurrency).await);
            peak_rss = peak_rss.max(rss_mib(pid));
        }
        for (name, runs) in [("node direct", &direct), ("via orchestrator", &via)] {
            let ttft: Vec<f64> = runs.iter().map(|r| r.0.as_secs_f64() * 1e3).collect();
            let total: Vec<f64> = runs.iter().map(|r| r.1.as_secs_f64() * 1e3).collect();
            println!(
                "| {concurrency} | {name} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
                pct(ttft.clone(), 0.5),
                pct(ttft, 0.99),
                pct(total.clone(), 0.5),
                pct(total, 0.99)
            );
        }
        let med = |v: &Vec<(Duration, Duration)>, f: fn(&(Duration, Duration)) -> Duration| {
            pct(v.iter().map(|r| f(r).as_secs_f64() * 1e3).collect(), 0.5)
        };
        println!(
            "| {concurrency} | overhead (p50 difference) | {:+.1} ms | | {:+.1} ms | |",
            med(&via, |r| r.0) - med(&direct, |r| r.0),
            med(&via, |r| r.1) - med(&direct, |r| r.1)
        );
    }
    println!();
    println!("orchestrator RSS: idle {idle_rss:.1} MiB, peak under load {peak_rss:.1} MiB");
}
