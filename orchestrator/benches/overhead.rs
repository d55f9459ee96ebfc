//! What the orchestrator adds on top of the node (a bench binary, not a timed
//! test): time to first token and total time of a streamed request through
//! `cerebrum serve` versus straight to the node, p50/p90/p99, at several
//! concurrencies, on both APIs, with the tiers sharing the cores or each
//! pinned to its own. Real processes, real SmolLM2, loopback. Prints markdown
//! tables for BENCHMARKS.md; exits 1 when a request does not come back whole.
//!
//!     flock /root/.cache/cargo.lock cargo test --release -p cerebrum --bench overhead -- \
//!         [--pairs N (200)] [--concurrency 1,2,32] [--api openai,cerebrum] \
//!         [--pin off|on|both (both)] [--max-tokens N (4)] [--node-threads N]
//!
//! (`cargo bench -p cerebrum --bench overhead -- ...` runs the same binary.)
//!
//! - **Paths.** OpenAI: the same `/v1/chat/completions` stream request to the
//!   node and to the orchestrator. Cerebrum: `/v1/complete/stream` on the
//!   orchestrator, against the request it makes of the node for it (an OpenAI
//!   chat stream with the prompt as the user turn) sent to the node directly.
//!   The node's own Cerebrum-dialect route, `/v1/inference/stream`, completes
//!   a raw prompt without the chat template: other tokens, other work, so not
//!   the baseline.
//! - **Pairs.** Each round sends `concurrency` requests at once to one path,
//!   waits for all, then the same to the other; the order flips every round,
//!   so drift and the node's state hit both alike. Rounds are repeated until
//!   `--pairs` requests went each way. "Added" is the orchestrator's
//!   percentile minus the node's.
//! - **Pinning.** `off`: every process may run on every core, as `cargo bench`
//!   leaves them (the node with 2 llama.cpp threads). `on`: the node on CPU 1
//!   with 1 thread, the orchestrator and this client on CPU 0 (`taskset -a -p`
//!   on each process, threads created later inherit it), the way two machines
//!   run them.
//! - The orchestrator runs at its default log level (`info`, to a file), with
//!   `CEREBRUM_MAX_IN_FLIGHT=64` so concurrency 32 is not shed; the node with
//!   `CEREBRUM_PARALLEL=2` (its default). One keep-alive client for all requests.

use std::process::Command;
use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

const PROMPT: &str = "What is the capital of Japan?";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Cerebrum,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::OpenAi => "OpenAI chat stream",
            Api::Cerebrum => "Cerebrum `/v1/complete/stream`",
        }
    }
}

struct Args {
    pairs: usize,
    concurrency: Vec<usize>,
    apis: Vec<Api>,
    pin: Vec<bool>,
    max_tokens: u32,
    /// llama.cpp threads of the node; by default 2 unpinned, 1 pinned.
    node_threads: Option<usize>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo test --release -p cerebrum --bench overhead -- [--pairs N (200)] \
         [--concurrency 1,2,32] [--api openai,cerebrum] [--pin off|on|both (both)] [--max-tokens N (4)] \
         [--node-threads N (2 unpinned, 1 pinned)]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        pairs: 200,
        concurrency: vec![1, 2, 32],
        apis: vec![Api::OpenAi, Api::Cerebrum],
        pin: vec![false, true],
        max_tokens: 4,
        node_threads: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        let number = |v: String| v.parse::<usize>().ok().filter(|n| *n > 0);
        match flag.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--pairs" => a.pairs = number(value()).unwrap_or_else(|| usage()),
            "--max-tokens" => {
                a.max_tokens = number(value()).unwrap_or_else(|| usage()) as u32;
            }
            "--node-threads" => a.node_threads = Some(number(value()).unwrap_or_else(|| usage())),
            "--concurrency" => {
                a.concurrency = value()
                    .split(',')
                    .map(|n| number(n.trim().to_string()).unwrap_or_else(|| usage()))
                    .collect()
            }
            "--api" => {
                a.apis = value()
                    .split(',')
                    .map(|n| match n.trim() {
                        "openai" => Api::OpenAi,
                        "cerebrum" => Api::Cerebrum,
                        _ => usage(),
                    })
                    .collect()
            }
            "--pin" => {
                a.pin = match value().as_str() {
                    "off" => vec![false],
                    "on" => vec![true],
                    "both" => vec![false, true],
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    a
}

/// One request: where it goes, what it sends, how its tokens are recognised.
#[derive(Clone)]
struct Target {
    url: String,
    body: Value,
    /// The JSON pointer of a token's text in an event.
    token_at: &'static str,
}

impl Target {
    fn direct(node: &str, max_tokens: u32) -> Target {
        Target {
            url: format!("{node}/v1/chat/completions"),
            body: json!({"model": SMOLLM, "messages": [{"role": "user", "content": PROMPT}],
                         "temperature": 0, "max_tokens": max_tokens, "stream": true}),
            token_at: "/choices/0/delta/content",
        }
    }

    fn via(orch: &str, api: Api, max_tokens: u32) -> Target {
        match api {
            Api::OpenAi => Target {
                url: format!("{orch}/v1/chat/completions"),
                ..Target::direct("", max_tokens)
            },
            Api::Cerebrum => Target {
                url: format!("{orch}/v1/complete/stream"),
                body: json!({"model": SMOLLM, "prompt": PROMPT, "temperature": 0,
                             "max_tokens": max_tokens}),
                token_at: "/token",
            },
        }
    }
}

/// What one streamed request took.
#[derive(Clone, Copy)]
struct Timing {
    ttft: Duration,
    total: Duration,
    tokens: u32,
}

async fn one(http: &reqwest::Client, t: &Target) -> Timing {
    let t0 = Instant::now();
    let r = http
        .post(&t.url)
        .header("x-api-key", KEY)
        .json(&t.body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", t.url);
    let mut events = r.bytes_stream().eventsource();
    let (mut ttft, mut tokens) = (None, 0);
    while let Some(e) = events.next().await {
        let event: Value = serde_json::from_str(&e.unwrap().data).unwrap_or_default();
        if event
            .pointer(t.token_at)
            .and_then(Value::as_str)
            .is_some_and(|text| !text.is_empty())
        {
            ttft.get_or_insert_with(|| t0.elapsed());
            tokens += 1;
        }
    }
    let total = t0.elapsed();
    Timing {
        ttft: ttft.unwrap_or(total),
        total,
        tokens,
    }
}

/// `concurrency` requests at once; every request's timings.
async fn batch(http: &reqwest::Client, t: &Target, concurrency: usize) -> Vec<Timing> {
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, t) = (http.clone(), t.clone());
            tokio::spawn(async move { one(&http, &t).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_mib(pid: u32) -> f64 {
    memory_kib(pid).0 as f64 / 1024.0
}

/// Sets the CPUs every thread of `pid` may run on (`taskset -a -p -c`).
fn pin(pid: u32, cpus: &str) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset -a -p -c {cpus} {pid} failed");
}

const PERCENTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// The p50/p90/p99 cells of `v` (ms).
fn cells(v: &[f64]) -> [f64; 3] {
    PERCENTILES.map(|p| pct(v, p))
}

fn row(label: &str, ttft: [f64; 3], total: [f64; 3], sign: bool) -> String {
    let f = |x: f64| {
        if sign {
            format!("{x:+.1}")
        } else {
            format!("{x:.1}")
        }
    };
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} |",
        f(ttft[0]),
        f(ttft[1]),
        f(ttft[2]),
        f(total[0]),
        f(total[1]),
        f(total[2])
    )
}

/// One pinning mode: a fresh node and orchestrator, every API and concurrency.
async fn run(a: &Args, pinned: bool, failures: &mut usize) {
    let all_cpus = format!(
        "0-{}",
        std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
    );
    pin(std::process::id(), if pinned { "0" } else { &all_cpus });
    let threads = a.node_threads.unwrap_or(if pinned { 1 } else { 2 });
    let node = Node::start(
        "overhead",
        &[("CEREBRUM_N_THREADS", threads.to_string().as_str())],
    );
    let orch = Orchestrator::start_logged(&node.url, &[("CEREBRUM_MAX_IN_FLIGHT", "64")]);
    pin(node.child.id(), if pinned { "1" } else { &all_cpus });
    pin(orch.child.id(), if pinned { "0" } else { &all_cpus });
    assert!(
        orch.wait_ready(Duration::from_secs(60)),
        "orchestrator not ready"
    );
    let pid = orch.child.id();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let direct = Target::direct(&node.url, a.max_tokens);
    // Warm both paths (model load, connection pools, prefix cache).
    for api in &a.apis {
        for _ in 0..5 {
            one(&http, &direct).await;
            one(&http, &Target::via(&orch.url, *api, a.max_tokens)).await;
        }
    }
    let idle_rss = rss_mib(pid);
    let mut peak_rss = idle_rss;
    let cores = if pinned {
        format!("node on CPU 1 ({threads} llama.cpp thread); orchestrator + client on CPU 0")
    } else {
        format!("unpinned, 2 cores shared (node {threads} llama.cpp threads)")
    };
    println!("\n### {cores}\n");
    println!(
        "| API | clients | path | TTFT p50 | TTFT p90 | TTFT p99 | total p50 | total p90 | total p99 |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for api in &a.apis {
        let via = Target::via(&orch.url, *api, a.max_tokens);
        for &concurrency in &a.concurrency {
            let started = Instant::now();
            let rounds = a.pairs.div_ceil(concurrency);
            let (mut d, mut v) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                if round % 2 == 0 {
                    d.extend(batch(&http, &direct, concurrency).await);
                    v.extend(batch(&http, &via, concurrency).await);
                } else {
                    v.extend(batch(&http, &via, concurrency).await);
                    d.extend(batch(&http, &direct, concurrency).await);
                }
                peak_rss = peak_rss.max(rss_mib(pid));
            }
            let short = d
                .iter()
                .chain(&v)
                .filter(|t| t.tokens != a.max_tokens)
                .count();
            if short > 0 {
                eprintln!(
                    "{short} requests did not stream {} tokens ({}, {concurrency} clients)",
                    a.max_tokens,
                    api.name()
                );
                *failures += short;
            }
            let ms = |v: &[Timing], f: fn(&Timing) -> Duration| -> Vec<f64> {
                v.iter().map(|t| f(t).as_secs_f64() * 1e3).collect()
            };
            let (dt, dn) = (cells(&ms(&d, |t| t.ttft)), cells(&ms(&d, |t| t.total)));
            let (vt, vn) = (cells(&ms(&v, |t| t.ttft)), cells(&ms(&v, |t| t.total)));
            let minus = |x: [f64; 3], y: [f64; 3]| [x[0] - y[0], x[1] - y[1], x[2] - y[2]];
            let lead = format!("{} | {concurrency}", api.name());
            println!("{}", row(&format!("{lead} | node direct"), dt, dn, false));
            println!(
                "{}",
                row(&format!("{lead} | via orchestrator"), vt, vn, false)
            );
            println!(
                "{}",
                row(
                    &format!("{lead} | **added**"),
                    minus(vt, dt),
                    minus(vn, dn),
                    true
                )
            );
            eprintln!(
                "({}, {concurrency} clients: {} pairs in {:.1} s)",
                api.name(),
                d.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!("\nOrchestrator RSS: idle {idle_rss:.1} MiB, peak under this load {peak_rss:.1} MiB.");
}

#[tokio::main]
async fn main() {
    let a = args();
    println!(
        "{} pairs per row, max_tokens {}, times in ms (added = the orchestrator's percentile minus the node's)",
        a.pairs, a.max_tokens
    );
    let mut failures = 0;
    for &pinned in &a.pin {
        run(&a, pinned, &mut failures).await;
    }
    if failures > 0 {
        eprintln!("{failures} requests came back short");
        std::process::exit(1);
    }
}
