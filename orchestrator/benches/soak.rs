//! Soak: many mixed requests through both tiers (real node, real SmolLM2,
//! real `cerebrum serve`, loopback), checking that every answer is well
//! formed, that the orchestrator's counters account for every request, and
//! that neither process grows. A bench binary, not a timed test.
//!
//!     cargo bench -p cerebrum --bench soak -- [--requests N] [--concurrency C]
//!                                            [--max-tokens T] [--mix KIND=W,...]
//!
//! (`cargo test --release -p cerebrum --bench soak -- ...` runs the same binary
//! built in the release profile, as scripts/test does with 1,000 requests.)
//!
//! Kinds (default weights): normal=40 (a whole answer, three routes), stream=25
//! (read to the end), cancel=10 (dropped after the first event), bad=10
//! (malformed or invalid bodies), over=5 (over a limit: prompt, body,
//! max_tokens), slow=10 (a stream read with a pause between events).
//! Concurrency defaults to 3, one above the orchestrator's in-flight limit of
//! 2, so some requests are shed (503).
//!
//! Checks, each failing the run: every status is one its kind allows; every
//! error body reads back as an `ApiError` whose code has that status; every
//! 200 is the route's answer type, and every stream read to its end ends with
//! its final event (`done` or `[DONE]`); the orchestrator's counters add up,
//! sent = succeeded + failed + cancelled + shed + rate-limited, and agree with
//! what the client saw; every generation the orchestrator asked of the node is
//! counted by the node (less those cancelled before it started them); neither
//! process's RSS grows over the run by more than 10% of its RSS after warm-up
//! (at least 4 MiB, see `RSS_SLACK_KIB`), judged by the lowest of the samples
//! taken after the last three tenths of the run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cerebrum_shared::cerebrum::CompleteResponse;
use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_shared::limits::{MAX_BODY_BYTES, MAX_PROMPT_CHARS, MAX_TOKENS_ORCHESTRATOR};
use cerebrum_shared::openai::{ChatCompletion, TextCompletion};
use cerebrum_testkit::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Normal,
    Stream,
    Cancel,
    Bad,
    Over,
    Slow,
}

const KINDS: [(Kind, &str, u32); 6] = [
    (Kind::Normal, "normal", 40),
    (Kind::Stream, "stream", 25),
    (Kind::Cancel, "cancel", 10),
    (Kind::Bad, "bad", 10),
    (Kind::Over, "over", 5),
    (Kind::Slow, "slow", 10),
];

fn name(kind: Kind) -> &'static str {
    KINDS.iter().find(|k| k.0 == kind).map_or("?", |k| k.1)
}

struct Args {
    requests: usize,
    concurrency: usize,
    max_tokens: u32,
    weights: Vec<(Kind, u32)>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench -p cerebrum --bench soak -- [--requests N (10000)] \
         [--concurrency C (3)] [--max-tokens T (4)] [--mix normal=40,stream=25,cancel=10,bad=10,over=5,slow=10]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        requests: 10_000,
        concurrency: 3,
        max_tokens: 4,
        weights: KINDS.iter().map(|k| (k.0, k.2)).collect(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |what: &str| it.next().unwrap_or_else(|| panic!("{what} needs a value"));
        match flag.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--requests" => a.requests = value("--requests").parse().unwrap_or_else(|_| usage()),
            "--concurrency" => {
                a.concurrency = value("--concurrency").parse().unwrap_or_else(|_| usage())
            }
            "--max-tokens" => {
                a.max_tokens = value("--max-tokens").parse().unwrap_or_else(|_| usage())
            }
            "--mix" => {
                let mix = value("--mix");
                for part in mix.split(',') {
                    let (k, w) = part.split_once('=').unwrap_or_else(|| usage());
                    let kind = KINDS.iter().find(|x| x.1 == k).unwrap_or_else(|| usage()).0;
                    let w: u32 = w.parse().unwrap_or_else(|_| usage());
                    a.weights.iter_mut().find(|x| x.0 == kind).expect("kind").1 = w;
                }
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if a.requests == 0 || a.concurrency == 0 || a.weights.iter().all(|w| w.1 == 0) {
        usage();
    }
    a
}

/// A deterministic choice per request (xorshift of its index).
fn rand(i: usize, salt: u64) -> u64 {
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn kind_of(i: usize, weights: &[(Kind, u32)]) -> Kind {
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut pick = (rand(i, 1) % u64::from(total)) as u32;
    for (kind, w) in weights {
        if pick < *w {
            return *kind;
        }
        pick -= w;
    }
    unreachable!()
}

/// How one request ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// 2xx, read to its end, well formed.
    Ok,
    /// A stream that ended with its error event.
    StreamError,
    /// 503 `cm4_busy`: the in-flight limit.
    Shed,
    /// Any other error status (with a well-formed error body).
    Error(u16),
    /// 200, then the client left after the first event.
    Cancelled,
}

struct Request {
    path: &'static str,
    body: Vec<u8>,
    stream: bool,
}

/// How long a worker waits after being shed (the server's Retry-After is 2 s;
/// a soak cannot wait that long per shed request).
const SHED_PAUSE: Duration = Duration::from_millis(100);

const ROUTES: [&str; 3] = ["/v1/complete", "/v1/chat/completions", "/v1/completions"];

fn generation(i: usize, path: &str, stream: bool, max_tokens: u32) -> Value {
    let prompt = format!("Count from {} to {}:", i % 50, i % 50 + 3);
    match path {
        "/v1/complete" | "/v1/complete/stream" => {
            json!({"prompt": prompt, "language": "python", "max_tokens": max_tokens, "temperature": 0.2})
        }
        "/v1/chat/completions" => json!({"messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0.2, "stream": stream}),
        _ => {
            json!({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.2, "stream": stream})
        }
    }
}

fn request(i: usize, kind: Kind, max_tokens: u32) -> Request {
    let route = ROUTES[(rand(i, 2) % 3) as usize];
    let stream_route = |r: &'static str| {
        if r == "/v1/complete" {
            "/v1/complete/stream"
        } else {
            r
        }
    };
    let json = |path: &'static str, v: Value, stream: bool| Request {
        path,
        body: v.to_string().into_bytes(),
        stream,
    };
    match kind {
        Kind::Normal => json(route, generation(i, route, false, max_tokens), false),
        Kind::Stream | Kind::Slow => {
            let path = stream_route(route);
            json(path, generation(i, path, true, max_tokens * 2), true)
        }
        // Long enough that the client leaves mid-answer.
        Kind::Cancel => {
            let path = stream_route(route);
            json(path, generation(i, path, true, 64), true)
        }
        Kind::Bad => {
            let bodies: [&[u8]; 8] = [
                b"{\"prompt\": ",
                b"not json at all",
                b"[1, 2, 3]",
                b"{\"prompt\": 42}",
                b"{\"prompt\": \"hi\", \"max_tokens\": 0}",
                b"{\"prompt\": \"   \"}",
                b"{\"prompt\": \"hi\", \"temperature\": 9.5}",
                b"{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}",
            ];
            let pick = (rand(i, 3) % bodies.len() as u64) as usize;
            let path = if pick == 7 {
                "/v1/chat/completions"
            } else {
                route
            };
            Request {
                path,
                body: bodies[pick].to_vec(),
                stream: false,
            }
        }
        Kind::Over => match rand(i, 4) % 3 {
            0 => json(
                "/v1/complete",
                json!({"prompt": "x".repeat(MAX_PROMPT_CHARS + 1), "max_tokens": 1}),
                false,
            ),
            1 => {
                let mut body = br#"{"prompt": ""#.to_vec();
                body.resize(MAX_BODY_BYTES + 16, b'a');
                body.extend_from_slice(br#""}"#);
                Request {
                    path: route,
                    body,
                    stream: false,
                }
            }
            _ => json(
                route,
                {
                    let mut v = generation(i, route, false, 1);
                    v["max_tokens"] = json!(MAX_TOKENS_ORCHESTRATOR + 1);
                    v
                },
                false,
            ),
        },
    }
}

/// The statuses a kind may be answered with (503 is the shed, for every kind).
fn allowed(kind: Kind, status: u16) -> bool {
    status == 503
        || match kind {
            Kind::Normal | Kind::Stream | Kind::Cancel | Kind::Slow => status == 200,
            Kind::Bad => matches!(status, 400 | 422),
            Kind::Over => matches!(status, 413 | 422),
        }
}

fn fail(i: usize, kind: Kind, what: String) -> ! {
    panic!("request {i} ({}): {what}", name(kind))
}

/// Checks a stream's events: every one JSON (or `[DONE]`), and the last the
/// final one. `Some(true)` when it ended with an error event.
fn check_stream(i: usize, kind: Kind, path: &str, events: &[String]) -> bool {
    let last = events
        .last()
        .unwrap_or_else(|| fail(i, kind, format!("{path}: empty stream")));
    for e in events {
        if e != "[DONE]" {
            serde_json::from_str::<Value>(e)
                .unwrap_or_else(|err| fail(i, kind, format!("{path}: event {e:?}: {err}")));
        }
    }
    if path == "/v1/complete/stream" {
        let v: Value = serde_json::from_str(last).expect("checked");
        if v["done"] != true {
            fail(i, kind, format!("stream ends without done: {last}"));
        }
        v.get("error").is_some()
    } else {
        if last != "[DONE]" {
            fail(
                i,
                kind,
                format!("{path}: stream ends without [DONE]: {last}"),
            );
        }
        events.iter().any(|e| e.starts_with("{\"error\""))
    }
}

/// POSTs a body over the size limit the way a careful client does: the
/// headers first, and the body only if no answer comes (the server refuses by
/// `Content-Length` at once). reqwest writes the whole body first and, when
/// the server answers 413 and closes early, reports a send error instead.
async fn post_oversized(
    url: &str,
    path: &str,
    body: &[u8],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("send headers");
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    match tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
        _ => {
            // No early answer: send the body and read what comes.
            let _ = tcp.write_all(body).await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = reqwest::header::HeaderMap::new();
    for line in head.lines().skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
            reqwest::header::HeaderValue::from_str(v.trim()),
        ) {
            headers.insert(k, v);
        }
    }
    (status, headers, body.as_bytes().to_vec())
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// What an error answer says: shed, or another error; its body checked.
fn error_answer(
    i: usize,
    kind: Kind,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Seen {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| fail(i, kind, format!("{status} body not JSON ({e})")));
    if !v.is_object() {
        fail(i, kind, format!("{status} body not an object: {v}"));
    }
    let e = ApiError::from_response(status, headers, body);
    if e.code.status() != status {
        fail(i, kind, format!("code {:?} answered as {status}", e.code));
    }
    if status == 503 && e.code == ErrorCode::Cm4Busy {
        if !headers.contains_key("retry-after") {
            fail(i, kind, "shed without Retry-After".into());
        }
        Seen::Shed
    } else {
        Seen::Error(status)
    }
}

async fn one(client: &reqwest::Client, url: &str, i: usize, kind: Kind, max_tokens: u32) -> Seen {
    let req = request(i, kind, max_tokens);
    if req.body.len() > MAX_BODY_BYTES {
        let (status, headers, body) = post_oversized(url, req.path, &req.body).await;
        if !allowed(kind, status) {
            fail(
                i,
                kind,
                format!("status {status} on an oversized body to {}", req.path),
            );
        }
        return error_answer(i, kind, status, &headers, &body);
    }
    let response = client
        .post(format!("{url}{}", req.path))
        .header("content-type", "application/json")
        .body(req.body)
        .send()
        .await
        .unwrap_or_else(|e| fail(i, kind, format!("no answer: {e:?}")));
    let status = response.status().as_u16();
    if !allowed(kind, status) {
        let body = response.text().await.unwrap_or_default();
        fail(
            i,
            kind,
            format!("status {status} on {}: {body:.300}", req.path),
        );
    }
    let headers = response.headers().clone();
    if status != 200 {
        let body = response.bytes().await.unwrap_or_default();
        return error_answer(i, kind, status, &headers, &body);
    }
    if !req.stream {
        let body = response.bytes().await.expect("read the answer");
        let parsed = match req.path {
            "/v1/complete" => serde_json::from_slice::<CompleteResponse>(&body).map(|_| ()),
            "/v1/chat/completions" => serde_json::from_slice::<ChatCompletion>(&body).map(|_| ()),
            _ => serde_json::from_slice::<TextCompletion>(&body).map(|_| ()),
        };
        if let Err(e) = parsed {
            fail(
                i,
                kind,
                format!(
                    "{}: answer unreadable ({e}): {:.300}",
                    req.path,
                    String::from_utf8_lossy(&body)
                ),
            );
        }
        return Seen::Ok;
    }
    let mut events = response.bytes_stream().eventsource();
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        let event = event.unwrap_or_else(|e| fail(i, kind, format!("stream broke: {e}")));
        if event.data.trim().is_empty() {
            continue;
        }
        seen.push(event.data);
        match kind {
            Kind::Cancel => return Seen::Cancelled,
            Kind::Slow => tokio::time::sleep(Duration::from_millis(40)).await,
            _ => {}
        }
    }
    if check_stream(i, kind, req.path, &seen) {
        Seen::StreamError
    } else {
        Seen::Ok
    }
}

fn rss_kib(pid: u32) -> u64 {
    memory_kib(pid).0
}

/// RSS a process may gain over the run without it counting as a leak: 10% of
/// its RSS after warm-up, and never less than [`RSS_SLACK_KIB`].
fn allowance(start_kib: u64) -> u64 {
    (start_kib / 10).max(RSS_SLACK_KIB)
}

/// glibc's per-thread arenas and page-granular trimming move a small process
/// by up to ~1.2 MiB with no leak at all (measured here, 2 cores: the
/// orchestrator's 11 MiB moved 0.3–1.2 MiB over 300 requests and 0.6 MiB over
/// 3,000, up and down). 10% of that 11 MiB would fail on noise.
const RSS_SLACK_KIB: u64 = 4 * 1024;

/// How far a process grew beyond its allowance, given its RSS after warm-up
/// and after each tenth of the run. A leak raises the floor tenth after tenth,
/// so the growth counted is that of the lowest of the last three samples: one
/// sample caught at a peak (a burst of buffers about to be freed) is not a leak.
fn leaked(rss: &[u64]) -> Option<u64> {
    let start = *rss.first()?;
    let floor = rss[rss.len().saturating_sub(3)..].iter().min()?;
    let grown = floor.saturating_sub(start);
    (grown > allowance(start)).then_some(grown)
}

/// Sums every sample of a Prometheus metric (all label sets).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn run(
    url: &str,
    from: usize,
    to: usize,
    concurrency: usize,
    args: &Arc<Args>,
) -> Vec<(Kind, Seen)> {
    let next = Arc::new(AtomicUsize::new(from));
    // A connection per request: the server closes one whose request body it did
    // not read (a shed request, a refused one), and a pooled client that reuses
    // it in that instant gets a send error instead of an answer.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, client, url, args) =
                (next.clone(), client.clone(), url.to_string(), args.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= to {
                        return out;
                    }
                    let kind = kind_of(i, &args.weights);
                    let seen = one(&client, &url, i, kind, args.max_tokens).await;
                    if seen == Seen::Shed {
                        // As a client backs off: a shed worker must not race through the list.
                        tokio::time::sleep(SHED_PAUSE).await;
                    }
                    out.push((kind, seen));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    all
}

#[tokio::main]
async fn main() {
    let args = Arc::new(args());
    let node = Node::start("soak", &[]);
    let orch = Orchestrator::start_logged(&node.url, &[("LOG_LEVEL", "warn")]);
    assert!(
        orch.wait_ready(Duration::from_secs(60)),
        "orchestrator not ready"
    );

    // Warm-up: the model loaded, pools and caches filled, allocators settled.
    let warm = (args.requests / 10).clamp(100, 1000);
    let warm_up = run(&orch.url, 0, warm, args.concurrency, &args).await;
    let base = metrics(&orch).await;
    let node_base = metrics(&node).await;
    let rss_start = (rss_kib(orch.child.id()), rss_kib(node.child.id()));

    // The run in tenths, the RSS of both processes sampled after each: a leak
    // climbs tenth after tenth, an allocator settling steps once.
    let started = Instant::now();
    let mut seen = Vec::with_capacity(args.requests);
    let mut trace = vec![rss_start];
    for tenth in 0..10 {
        let from = warm + args.requests * tenth / 10;
        let to = warm + args.requests * (tenth + 1) / 10;
        seen.extend(run(&orch.url, from, to, args.concurrency, &args).await);
        trace.push((rss_kib(orch.child.id()), rss_kib(node.child.id())));
    }
    let elapsed = started.elapsed();

    // Cancelled streams release their slot when the server notices: wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = metrics(&orch).await;
    while metric(&after, "cerebrum_in_flight") > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = metrics(&orch).await;
    }
    let node_after = metrics(&node).await;

    // Per kind, what the client saw.
    let mut table: BTreeMap<Kind, BTreeMap<String, usize>> = BTreeMap::new();
    for (kind, s) in &seen {
        let label = match s {
            Seen::Error(code) => format!("{code}"),
            other => format!("{other:?}").to_lowercase(),
        };
        *table.entry(*kind).or_default().entry(label).or_default() += 1;
    }
    println!(
        "soak: {} requests (after {} warm-up), concurrency {}, max_tokens {}, {:.1} s ({:.1} requests/s)",
        seen.len(),
        warm_up.len(),
        args.concurrency,
        args.max_tokens,
        elapsed.as_secs_f64(),
        seen.len() as f64 / elapsed.as_secs_f64()
    );
    println!("{:<8} {:>6}  outcomes", "kind", "sent");
    for (kind, outcomes) in &table {
        let sent: usize = outcomes.values().sum();
        let detail: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{:<8} {:>6}  {}", name(*kind), sent, detail.join(", "));
    }

    let d = |name: &str| metric_sum(&after, name) - metric_sum(&base, name);
    let count = |f: fn(&Seen) -> bool| seen.iter().filter(|(_, s)| f(s)).count() as f64;
    let sent = seen.len() as f64;
    let (succeeded, failed, cancelled) = (
        d("cerebrum_inference_succeeded_total"),
        d("cerebrum_inference_failed_total"),
        d("cerebrum_inference_cancelled_total"),
    );
    let (shed, limited) = (
        d("cerebrum_load_shed_total"),
        d("cerebrum_rate_limited_total"),
    );
    println!(
        "orchestrator counters: succeeded {succeeded}, failed {failed}, cancelled {cancelled}, shed {shed}, rate-limited {limited}; sum {} of {sent} sent",
        succeeded + failed + cancelled + shed + limited
    );
    let upstream = d("cerebrum_upstream_requests_total");
    let node_d = |name: &str| metric_sum(&node_after, name) - metric_sum(&node_base, name);
    let (node_inference, node_refused) = (
        node_d("cerebrum_node_inference_requests_total"),
        node_d("cerebrum_node_rejections_total"),
    );
    println!(
        "node: generations asked by the orchestrator {upstream}, started by the node {node_inference}, refused {node_refused}; tokens {}",
        node_d("cerebrum_node_tokens_generated_total")
    );
    let mib = |k: u64| k as f64 / 1024.0;
    let (orch_rss, node_rss): (Vec<u64>, Vec<u64>) = trace.iter().copied().unzip();
    for (who, rss) in [("orchestrator", &orch_rss), ("node", &node_rss)] {
        let tenths: Vec<String> = rss.iter().map(|&k| format!("{:.1}", mib(k))).collect();
        println!(
            "RSS {who} (MiB, after warm-up then each tenth): {}",
            tenths.join(" ")
        );
    }
    let mut problems = Vec::new();
    if succeeded + failed + cancelled + shed + limited != sent {
        problems.push("sent ≠ succeeded + failed + cancelled + shed + rate-limited".to_string());
    }
    let client_shed = count(|s| *s == Seen::Shed);
    if shed != client_shed {
        problems.push(format!("shed: server {shed}, client {client_shed}"));
    }
    let client_failed = count(|s| matches!(s, Seen::Error(_) | Seen::StreamError));
    if failed != client_failed {
        problems.push(format!("failed: server {failed}, client {client_failed}"));
    }
    // A cancelled stream may have been sent whole before the client left.
    let client_ok = count(|s| *s == Seen::Ok);
    let client_cancelled = count(|s| *s == Seen::Cancelled);
    if succeeded < client_ok || succeeded + cancelled != client_ok + client_cancelled {
        problems.push(format!(
            "succeeded {succeeded} + cancelled {cancelled} on the server, ok {client_ok} + cancelled {client_cancelled} on the client"
        ));
    }
    // A generation whose client left may be dropped before the node hands it to an engine.
    let node_counted = node_inference + node_refused;
    if node_counted > upstream || node_counted + cancelled < upstream {
        problems.push(format!(
            "the orchestrator asked {upstream} generations ({cancelled} cancelled), the node counted {node_counted}"
        ));
    }
    for (who, rss) in [("orchestrator", &orch_rss), ("node", &node_rss)] {
        if let Some(grown) = leaked(rss) {
            problems.push(format!(
                "{who} RSS grew {:.1} MiB ({:.1} → {:.1}), more than {:.1} MiB allowed",
                mib(grown),
                mib(rss[0]),
                mib(rss[0] + grown),
                mib(allowance(rss[0]))
            ));
        }
    }
    if !problems.is_empty() {
        eprintln!(
            "--- orchestrator log (last lines) ---\n{}",
            tail(&orch.log(), 30)
        );
        panic!("soak failed:\n  {}", problems.join("\n  "));
    }
    println!(
        "soak: every answer well formed, counters consistent, no RSS growth beyond the allowance"
    );
}
