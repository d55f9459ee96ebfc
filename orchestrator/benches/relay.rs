//! Relay: what the Pi tier (`cerebrum serve`) can carry, measured with an
//! upstream that costs nothing. A bench binary, not a timed test: it prints
//! figures and markdown tables (for docs/scaling.md and BENCHMARKS.md), and
//! exits 1 only when a request does not come back whole (or `/health` does not
//! list every upstream set). The default run takes about 2.5 minutes.
//!
//!     flock /root/.cache/cargo.lock cargo test --release -p cerebrum --bench relay -- \
//!         [--secs S (10)] [--tokens N (32)] [--gap-ms MS (0)] \
//!         [--concurrency 1,8,32] [--upstreams 1,4,16,64] [--idle-secs S (5)] [--part load|rss|all]
//!
//! (`cargo bench -p cerebrum --bench relay -- ...` runs the same binary.)
//!
//! The orchestrator is the real binary (`target/release/cerebrum serve`) on a
//! loopback port, load shedding raised (`CEREBRUM_MAX_IN_FLIGHT=4096`), no rate
//! limit, its default log level (`info`, to a file). The fake upstream runs
//! in this process (an axum server, see [`fake`]): it answers `/health` as a
//! node does, `/v1/models` with one model and its context length (so the
//! orchestrator never asks `/tokenize`, as with the real node), and streams
//! every generation as N one-word tokens, then `stop`, usage and `[DONE]`, as
//! fast as it can (or the tokens `--gap-ms` apart, as an engine generating
//! them). It records nothing per request, unlike `testkit::fake::FakeUpstream`,
//! which keeps every request and states no context length. The clients (closed loop: each sends its next request when
//! the last one's stream ended; keep-alive connections) run in this process
//! too, so orchestrator, clients and fake share the machine's cores: the
//! orchestrator's own CPU is read from `/proc/PID/stat` (utime + stime over
//! the window, % of one core) and its memory from `/proc/PID/status`.
//!
//! Parts:
//! - `load`: for each API (OpenAI chat streamed, Cerebrum `/v1/complete/stream`)
//!   and each concurrency, a fresh orchestrator in front of one fake upstream
//!   (`VPS_ENDPOINT`); RSS when ready and idle, then `--secs` of load:
//!   requests/s, tokens/s relayed, latency of whole streams (p50/p90/p99),
//!   the orchestrator's CPU and CPU time per request, RSS at the end, peak RSS.
//! - `rss`: for each N, a fresh orchestrator with N upstreams (N ports of the
//!   fake) set in `CEREBRUM_UPSTREAMS`; RSS and CPU after `--idle-secs` idle
//!   (health and model probes only), then RSS after a short load (concurrency
//!   8, chat, `--idle-secs` long) and how many upstreams took a request. When
//!   the binary has no `CEREBRUM_UPSTREAMS` setting (not in its `serve
//!   --help`), only N = 1 is run, through `VPS_ENDPOINT`.
//!
//! The process is started here rather than by `testkit::Orchestrator`, which
//! always passes `--vps-endpoint`: with `CEREBRUM_UPSTREAMS` that is a
//! configuration error.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cerebrum_testkit::{free_port, http_get, memory_kib, poll, tail, workspace_binary};
use futures::StreamExt;
use serde_json::{Value, json};

/// The one model the fake serves, and the orchestrator routes every language to.
const MODEL: &str = "bench-model";
/// The context length the fake states for it.
const CONTEXT: u64 = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Load,
    Rss,
    All,
}

struct Args {
    secs: u64,
    tokens: usize,
    gap: Duration,
    concurrency: Vec<usize>,
    upstreams: Vec<usize>,
    idle_secs: u64,
    part: Part,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo test --release -p cerebrum --bench relay -- [--secs S (10)] [--tokens N (32)] [--gap-ms MS (0)] \
         [--concurrency 1,8,32] [--upstreams 1,4,16,64] [--idle-secs S (5)] [--part load|rss|all]"
    );
    std::process::exit(2)
}

fn list(text: &str) -> Vec<usize> {
    let v: Vec<usize> = text
        .split(',')
        .map(|n| n.trim().parse().unwrap_or_else(|_| usage()))
        .collect();
    if v.contains(&0) {
        usage()
    }
    v
}

fn args() -> Args {
    let mut a = Args {
        secs: 10,
        tokens: 32,
        gap: Duration::ZERO,
        concurrency: vec![1, 8, 32],
        upstreams: vec![1, 4, 16, 64],
        idle_secs: 5,
        part: Part::All,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--secs" => a.secs = value().parse().unwrap_or_else(|_| usage()),
            "--tokens" => a.tokens = value().parse().unwrap_or_else(|_| usage()),
            "--gap-ms" => {
                a.gap = Duration::from_millis(value().parse().unwrap_or_else(|_| usage()))
            }
            "--concurrency" => a.concurrency = list(&value()),
            "--upstreams" => a.upstreams = list(&value()),
            "--idle-secs" => a.idle_secs = value().parse().unwrap_or_else(|_| usage()),
            "--part" => {
                a.part = match value().as_str() {
                    "load" => Part::Load,
                    "rss" => Part::Rss,
                    "all" => Part::All,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    if a.secs == 0 || a.tokens == 0 || a.idle_secs == 0 {
        usage()
    }
    a
}

/// The fake upstream: N listeners serving one router, each counting the
/// generations it was asked.
mod fake {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::http::header;
    use axum::response::Response;
    use axum::routing::{get, post};
    use axum::serve::ListenerExt;
    use cerebrum_shared::cerebrum::{ModelsResponse, NodeHealth};
    use cerebrum_shared::openai::{ChunkShaper, ObjectKind, Usage};
    use futures::StreamExt;

    /// What every answer is, built once.
    struct Answers {
        health: Bytes,
        models: Bytes,
        chat: Vec<Bytes>,
        text: Vec<Bytes>,
        tokens: usize,
        gap: Duration,
    }

    /// The SSE frames of one streamed generation: `tokens` pieces, then
    /// `stop`, usage and `[DONE]`.
    fn frames(kind: ObjectKind, model: &str, tokens: usize) -> Vec<Bytes> {
        let mut shaper =
            ChunkShaper::new(kind, format!("{}-bench", kind.id_prefix()), model.into());
        let frame = |json: String| Bytes::from(format!("data: {json}\n\n"));
        let mut out: Vec<Bytes> = (0..tokens)
            .map(|i| frame(shaper.text(format!(" w{i}"))))
            .collect();
        out.push(frame(shaper.finish("stop")));
        out.push(frame(shaper.usage(Usage::new(8, tokens as u64))));
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    fn answers(tokens: usize, gap: Duration) -> Answers {
        let health = NodeHealth {
            status: "healthy".into(),
            available: true,
            reason: None,
            cpu_usage_percent: 1.0,
            cpu_other_percent: 1.0,
            ram_available_gb: 1.0,
            ram_used_gb: 1.0,
            models_in_cache: vec![super::MODEL.into()],
            models_loading: vec![],
            active_sequences: 0,
            context_length: Some(super::CONTEXT),
            uptime_seconds: 1,
        };
        let models = ModelsResponse::new(
            vec![super::MODEL.into()],
            vec![super::MODEL.into()],
            Default::default(),
            "bench",
        )
        .with_context_length(super::CONTEXT);
        Answers {
            health: serde_json::to_vec(&health).unwrap().into(),
            models: serde_json::to_vec(&models).unwrap().into(),
            chat: frames(ObjectKind::Chat, super::MODEL, tokens),
            text: frames(ObjectKind::Text, super::MODEL, tokens),
            tokens,
            gap,
        }
    }

    #[derive(Clone)]
    struct Port {
        answers: Arc<Answers>,
        generations: Arc<AtomicUsize>,
    }

    fn json(body: &Bytes) -> Response {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))
            .unwrap()
    }

    /// Reads the request body (as a server must), then streams the frames:
    /// the tokens `gap` apart, the last three right after the last token (as
    /// the node sends them).
    fn stream(port: &Port, frames: &[Bytes]) -> Response {
        port.generations.fetch_add(1, Ordering::Relaxed);
        let frames = futures::stream::iter(frames.to_vec());
        let body = if port.answers.gap.is_zero() {
            Body::from_stream(frames.map(Ok::<_, std::io::Error>))
        } else {
            let (gap, tokens) = (port.answers.gap, port.answers.tokens);
            Body::from_stream(frames.enumerate().then(move |(i, frame)| async move {
                if i > 0 && i < tokens {
                    tokio::time::sleep(gap).await;
                }
                Ok::<_, std::io::Error>(frame)
            }))
        };
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(body)
            .unwrap()
    }

    /// The running fake.
    pub struct Fake {
        /// `http://127.0.0.1:PORT`, one per listener.
        pub urls: Vec<String>,
        generations: Vec<Arc<AtomicUsize>>,
    }

    impl Fake {
        /// Starts `ports` listeners streaming `tokens` tokens per
        /// generation, `gap` apart.
        pub async fn start(ports: usize, tokens: usize, gap: Duration) -> Fake {
            let answers = Arc::new(answers(tokens, gap));
            let mut urls = Vec::new();
            let mut generations = Vec::new();
            for _ in 0..ports {
                let port = Port {
                    answers: answers.clone(),
                    generations: Arc::new(AtomicUsize::new(0)),
                };
                generations.push(port.generations.clone());
                let app = Router::new()
                    .route(
                        "/health",
                        get(|State(p): State<Port>| async move { json(&p.answers.health) }),
                    )
                    .route(
                        "/v1/models",
                        get(|State(p): State<Port>| async move { json(&p.answers.models) }),
                    )
                    .route(
                        "/v1/chat/completions",
                        post(|State(p): State<Port>, _body: Bytes| async move {
                            stream(&p, &p.answers.chat)
                        }),
                    )
                    .route(
                        "/v1/completions",
                        post(|State(p): State<Port>, _body: Bytes| async move {
                            stream(&p, &p.answers.text)
                        }),
                    )
                    .with_state(port);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                urls.push(format!("http://{}", listener.local_addr().unwrap()));
                // Every frame goes out when written: the fake adds no Nagle delay of its own.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            Fake { urls, generations }
        }

        /// Generations asked of each listener so far.
        pub fn generations(&self) -> Vec<usize> {
            self.generations
                .iter()
                .map(|g| g.load(Ordering::Relaxed))
                .collect()
        }
    }
}

/// A running `cerebrum serve`; killed on drop, its log removed.
struct Serve {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Serve {
    /// Starts it with the bench's settings plus `upstream` (the upstream
    /// settings), and waits until `/health/ready` answers 200.
    fn start(upstream: &[(&str, String)]) -> Serve {
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("cerebrum-relay-{port}-{}.log", std::process::id()));
        let mut cmd = Command::new(workspace_binary("cerebrum", "cerebrum"));
        cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CEREBRUM_MAX_IN_FLIGHT", "4096")
            .env("CEREBRUM_RATE_LIMIT_PER_SECOND", "0")
            .env("CEREBRUM_DEFAULT_MODEL", MODEL)
            .env("CEREBRUM_ROUTES", format!("python={MODEL}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&log).expect("create log"),
            ));
        for (k, v) in upstream {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn cerebrum serve");
        let serve = Serve {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let ready = poll(Duration::from_secs(30), Duration::from_millis(50), || {
            http_get(&serve.url, "/health/ready").0 == 200
        });
        if !ready {
            let log = std::fs::read_to_string(&serve.log).unwrap_or_default();
            panic!(
                "orchestrator not ready in 30 s; its log:\n{}",
                tail(&log, 30)
            );
        }
        serve
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// CPU time (user + system) a process has used, in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').expect("stat format") + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU used by a process over a window, as % of one core.
struct CpuWindow {
    pid: String,
    ticks: u64,
    started: Instant,
}

impl CpuWindow {
    fn start(pid: &str) -> Self {
        Self {
            pid: pid.to_string(),
            ticks: cpu_ticks(pid),
            started: Instant::now(),
        }
    }

    /// (% of one core, CPU seconds) since the start.
    fn stop(&self) -> (f64, f64) {
        let secs = (cpu_ticks(&self.pid) - self.ticks) as f64 / ticks_per_second();
        (secs / self.started.elapsed().as_secs_f64() * 100.0, secs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `POST /v1/chat/completions` with `stream: true`.
    Chat,
    /// `POST /v1/complete/stream` (the Cerebrum API).
    Cerebrum,
}

impl Api {
    fn label(self) -> &'static str {
        match self {
            Api::Chat => "OpenAI chat, streamed",
            Api::Cerebrum => "Cerebrum /v1/complete/stream",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Cerebrum => "/v1/complete/stream",
        }
    }

    fn body(self, tokens: usize) -> Vec<u8> {
        match self {
            Api::Chat => json!({
                "model": MODEL,
                "messages": [{"role": "user", "content": "Write a Python function that adds two numbers."}],
                "max_tokens": tokens,
                "stream": true,
            }),
            Api::Cerebrum => json!({
                "prompt": "def add(a, b):",
                "language": "python",
                "max_tokens": tokens,
            }),
        }
        .to_string()
        .into_bytes()
    }

    /// Reads one `data:` payload: whether it is a token, whether it ends the
    /// stream, or the failure it reports.
    fn event(self, data: &str) -> Result<(bool, bool), String> {
        if self == Api::Chat && data == "[DONE]" {
            return Ok((false, true));
        }
        let v: Value = serde_json::from_str(data).map_err(|e| format!("event {data:.200}: {e}"))?;
        if v.get("error").is_some() {
            return Err(format!("error event: {data:.300}"));
        }
        Ok(match self {
            Api::Chat => {
                let content = v["choices"][0]["delta"]["content"].as_str();
                (content.is_some_and(|c| !c.is_empty()), false)
            }
            Api::Cerebrum => (v.get("token").is_some(), v["done"] == true),
        })
    }
}

/// One request: (latency of the whole stream, tokens received).
async fn one(
    client: &reqwest::Client,
    url: &str,
    api: Api,
    body: &[u8],
) -> Result<(Duration, u64), String> {
    let started = Instant::now();
    let response = client
        .post(format!("{url}{}", api.path()))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err(format!("status {status}: {text:.300}"));
    }
    let mut bytes = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let (mut tokens, mut ended) = (0u64, false);
    while let Some(chunk) = bytes.next().await {
        buffer.extend_from_slice(&chunk.map_err(|e| format!("stream broke: {e}"))?);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = std::str::from_utf8(&line).map_err(|e| format!("not UTF-8: {e}"))?;
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            if ended {
                return Err(format!("event after the end: {data:.200}"));
            }
            let (token, end) = api.event(data.trim_start())?;
            tokens += u64::from(token);
            ended = end;
        }
    }
    if !ended {
        return Err(format!(
            "stream ended without its final event after {tokens} tokens"
        ));
    }
    Ok((started.elapsed(), tokens))
}

/// What a closed loop of `concurrency` clients did for `secs`.
struct Loaded {
    requests: usize,
    tokens: u64,
    latencies: Vec<Duration>,
    errors: Vec<String>,
    elapsed: Duration,
    cpu_percent: f64,
    cpu_secs: f64,
    bench_cpu_percent: f64,
}

impl Loaded {
    fn per_second(&self, n: f64) -> f64 {
        n / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1].as_secs_f64() * 1000.0
    }
}

async fn load(serve: &Serve, api: Api, concurrency: usize, secs: u64, tokens: usize) -> Loaded {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let body: Arc<[u8]> = api.body(tokens).into();
    let pid = serve.pid().to_string();
    let (cpu, own) = (CpuWindow::start(&pid), CpuWindow::start("self"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, body) = (client.clone(), serve.url.clone(), body.clone());
            tokio::spawn(async move {
                let mut out = (Vec::new(), 0u64, Vec::new());
                while Instant::now() < deadline {
                    match one(&client, &url, api, &body).await {
                        Ok((latency, tokens)) => {
                            out.0.push(latency);
                            out.1 += tokens;
                        }
                        Err(e) => out.2.push(e),
                    }
                }
                out
            })
        })
        .collect();
    let mut loaded = Loaded {
        requests: 0,
        tokens: 0,
        latencies: Vec::new(),
        errors: Vec::new(),
        elapsed: Duration::ZERO,
        cpu_percent: 0.0,
        cpu_secs: 0.0,
        bench_cpu_percent: 0.0,
    };
    for w in workers {
        let (latencies, tokens, errors) = w.await.expect("worker");
        loaded.requests += latencies.len();
        loaded.latencies.extend(latencies);
        loaded.tokens += tokens;
        loaded.errors.extend(errors);
    }
    loaded.elapsed = started.elapsed();
    (loaded.cpu_percent, loaded.cpu_secs) = cpu.stop();
    loaded.bench_cpu_percent = own.stop().0;
    loaded.latencies.sort();
    loaded
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One row of the load table.
struct LoadRow {
    api: Api,
    concurrency: usize,
    idle_rss: u64,
    loaded: Loaded,
    end_rss: u64,
    peak_rss: u64,
}

async fn load_part(args: &Args, errors: &mut Vec<String>) -> Vec<LoadRow> {
    let fake = fake::Fake::start(1, args.tokens, args.gap).await;
    let mut rows = Vec::new();
    for api in [Api::Chat, Api::Cerebrum] {
        for &concurrency in &args.concurrency {
            let serve = Serve::start(&[
                ("VPS_ENDPOINT", fake.urls[0].clone()),
                ("VPS_API_KEY", "bench-key".into()),
            ]);
            let (idle_rss, _) = memory_kib(serve.pid());
            let loaded = load(&serve, api, concurrency, args.secs, args.tokens).await;
            let (end_rss, peak_rss) = memory_kib(serve.pid());
            eprintln!(
                "{} × {concurrency}: {} requests, {:.0}/s, {:.0} tokens/s, p50 {:.1} ms, p99 {:.1} ms, CPU {:.0}% (bench process {:.0}%), RSS {:.1} → {:.1} MiB, {} errors",
                api.label(),
                loaded.requests,
                loaded.per_second(loaded.requests as f64),
                loaded.per_second(loaded.tokens as f64),
                loaded.percentile_ms(0.5),
                loaded.percentile_ms(0.99),
                loaded.cpu_percent,
                loaded.bench_cpu_percent,
                mib(idle_rss),
                mib(end_rss),
                loaded.errors.len()
            );
            let expected = loaded.requests as u64 * args.tokens as u64;
            if loaded.tokens != expected {
                errors.push(format!(
                    "{} × {concurrency}: {} tokens received, {expected} sent",
                    api.label(),
                    loaded.tokens
                ));
            }
            errors.extend(
                loaded
                    .errors
                    .iter()
                    .take(5)
                    .map(|e| format!("{} × {concurrency}: {e}", api.label())),
            );
            rows.push(LoadRow {
                api,
                concurrency,
                idle_rss,
                loaded,
                end_rss,
                peak_rss,
            });
        }
    }
    rows
}

/// One row of the upstreams table.
struct RssRow {
    upstreams: usize,
    setting: &'static str,
    idle_rss: u64,
    idle_cpu: f64,
    loaded: Loaded,
    end_rss: u64,
    took_traffic: usize,
}

/// Whether this build of `cerebrum serve` has the several-upstreams setting.
fn has_upstreams_setting() -> bool {
    let out = Command::new(workspace_binary("cerebrum", "cerebrum"))
        .args(["serve", "--help"])
        .output()
        .expect("run cerebrum serve --help");
    String::from_utf8_lossy(&out.stdout).contains("CEREBRUM_UPSTREAMS")
}

/// The `CEREBRUM_UPSTREAMS` value naming each of `urls` (format: the issue 12 design).
fn upstreams_setting(urls: &[String]) -> String {
    let entries: Vec<String> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            format!(r#"{{name="u{i}", endpoint="{url}", key="bench-key", kind="cerebrum-node"}}"#)
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

async fn rss_part(args: &Args, errors: &mut Vec<String>) -> Vec<RssRow> {
    let several = has_upstreams_setting();
    if !several {
        eprintln!(
            "this cerebrum has no CEREBRUM_UPSTREAMS setting: upstreams N = 1 only, through VPS_ENDPOINT"
        );
    }
    let counts: Vec<usize> = args
        .upstreams
        .iter()
        .copied()
        .filter(|&n| several || n == 1)
        .collect();
    let fake = fake::Fake::start(
        counts.iter().copied().max().unwrap_or(1),
        args.tokens,
        args.gap,
    )
    .await;
    let mut rows = Vec::new();
    for n in counts {
        let urls = &fake.urls[..n];
        let (setting, env) = if several {
            (
                "CEREBRUM_UPSTREAMS",
                vec![("CEREBRUM_UPSTREAMS", upstreams_setting(urls))],
            )
        } else {
            (
                "VPS_ENDPOINT",
                vec![
                    ("VPS_ENDPOINT", urls[0].clone()),
                    ("VPS_API_KEY", "bench-key".into()),
                ],
            )
        };
        let serve = Serve::start(&env);
        let pid = serve.pid().to_string();
        let idle = CpuWindow::start(&pid);
        tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
        let (idle_cpu, _) = idle.stop();
        let (idle_rss, _) = memory_kib(serve.pid());
        if several {
            let (_, health) = http_get(&serve.url, "/health");
            let health: Value = serde_json::from_str(&health).unwrap_or_default();
            let listed = health["upstreams"].as_array().map_or(0, Vec::len);
            if listed != n {
                errors.push(format!(
                    "{n} upstreams set, /health lists {listed}: {health}"
                ));
            }
        }
        let before = fake.generations();
        let loaded = load(&serve, Api::Chat, 8, args.idle_secs, args.tokens).await;
        let (end_rss, _) = memory_kib(serve.pid());
        let took_traffic = fake
            .generations()
            .iter()
            .zip(&before)
            .take(n)
            .filter(|(after, before)| after > before)
            .count();
        eprintln!(
            "{n} upstream(s) ({setting}): idle RSS {:.1} MiB, idle CPU {idle_cpu:.1}%, after load {:.1} MiB ({:.0} requests/s, {took_traffic} of {n} upstreams took requests), {} errors",
            mib(idle_rss),
            mib(end_rss),
            loaded.per_second(loaded.requests as f64),
            loaded.errors.len()
        );
        errors.extend(
            loaded
                .errors
                .iter()
                .take(5)
                .map(|e| format!("{n} upstreams: {e}")),
        );
        rows.push(RssRow {
            upstreams: n,
            setting,
            idle_rss,
            idle_cpu,
            loaded,
            end_rss,
            took_traffic,
        });
    }
    rows
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let commit = run(
        "git",
        &[
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    format!(
        "{} × {cpu} (nproc {}), {}, {}, commit {commit}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        run("nproc", &[]),
        run("uname", &["-sr"]),
        run("date", &["-u", "+%Y-%m-%d"]),
    )
}

fn print_tables(args: &Args, load: &[LoadRow], rss: &[RssRow]) {
    println!();
    println!("Machine: {}.", machine());
    println!(
        "Fake upstream and clients in the bench process on the same cores; every generation streams {} tokens{}; \
         orchestrator CPU is % of one core (utime + stime from /proc/PID/stat over the window).",
        args.tokens,
        if args.gap.is_zero() {
            " as fast as it can".to_string()
        } else {
            format!(" {} ms apart", args.gap.as_millis())
        }
    );
    if !load.is_empty() {
        println!();
        println!(
            "Relay through `cerebrum serve`, one fast fake upstream, closed loop for {} s per row:",
            args.secs
        );
        println!();
        println!(
            "| API | clients | requests/s | tokens/s | p50 ms | p90 ms | p99 ms | orchestrator CPU | CPU ms/request | RSS idle → end of load (peak) | bench process CPU |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
        for r in load {
            let l = &r.loaded;
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.0}% | {:.2} | {:.1} → {:.1} MiB ({:.1}) | {:.0}% |",
                r.api.label(),
                r.concurrency,
                l.per_second(l.requests as f64),
                l.per_second(l.tokens as f64),
                l.percentile_ms(0.5),
                l.percentile_ms(0.9),
                l.percentile_ms(0.99),
                l.cpu_percent,
                l.cpu_secs * 1000.0 / l.requests.max(1) as f64,
                mib(r.idle_rss),
                mib(r.end_rss),
                mib(r.peak_rss),
                l.bench_cpu_percent,
            );
        }
    }
    if !rss.is_empty() {
        println!();
        println!(
            "Orchestrator memory with N upstreams (N ports of the fake): idle {} s after ready, then {} s of streamed chat at 8 clients:",
            args.idle_secs, args.idle_secs
        );
        println!();
        println!(
            "| upstreams | set by | RSS idle | CPU idle | RSS after load | requests/s under load | upstreams that took requests |"
        );
        println!("|---:|---|---:|---:|---:|---:|---:|");
        for r in rss {
            println!(
                "| {} | `{}` | {:.1} MiB | {:.1}% | {:.1} MiB | {:.0} | {} of {} |",
                r.upstreams,
                r.setting,
                mib(r.idle_rss),
                r.idle_cpu,
                mib(r.end_rss),
                r.loaded.per_second(r.loaded.requests as f64),
                r.took_traffic,
                r.upstreams,
            );
        }
    }
    let cmd = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect::<Vec<_>>()
        .join(" ");
    println!();
    println!(
        "Reproduce: `cargo test --release -p cerebrum --bench relay{}{cmd}`",
        if cmd.is_empty() { "" } else { " -- " }
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    let mut errors = Vec::new();
    let load = if args.part != Part::Rss {
        load_part(&args, &mut errors).await
    } else {
        Vec::new()
    };
    let rss = if args.part != Part::Load {
        rss_part(&args, &mut errors).await
    } else {
        Vec::new()
    };
    print_tables(&args, &load, &rss);
    if !errors.is_empty() {
        eprintln!(
            "relay: some requests did not come back whole:\n  {}",
            errors.join("\n  ")
        );
        std::process::exit(1);
    }
}
