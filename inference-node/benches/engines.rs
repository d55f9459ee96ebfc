//! Our node against the engines a user would pick instead, in one run (a bench
//! binary, not a timed test): llama.cpp's own llama-server and llama-cpp-python's
//! OpenAI server (the original Cerebrum's engine). Same GGUF, 2 threads, greedy,
//! the same OpenAI chat requests; the engines alternate measure by measure, and
//! which goes first rotates each round, so drift hits all of them alike. Prints
//! Markdown for BENCHMARKS.md (`scripts/bench` pastes it there).
//!
//!     scripts/build-llama-server && scripts/build-llama-cpp-python   # once, cached
//!     cargo bench -p cerebrum-node --bench engines
//!     # ENGINES_ROUNDS (3), ENGINES_MODELS (smollm2,gemma3)
//!
//! Every engine gets the same requests, word for word, so greedy answers run
//! alike (each of these prompts draws 128 tokens from both models). Per round
//! every engine is started afresh (so nothing is answered from an earlier
//! round's cache), and measured:
//! - **cold TTFT**: process start to the first streamed token of a first request
//!   (model load included: the node loads lazily, the peers before listening);
//! - **RSS idle** right after start, before any request, and **RSS loaded** at the
//!   end of the round (`VmRSS`), also as bytes beyond the model file;
//! - **warm TTFT**: a short new prompt, first streamed token;
//! - **decode**: one stream of up to 128 tokens, tokens after the first over the
//!   time from the first to the last;
//! - **prompt**: a ~1,500-token coding prompt (a Python file and a question), not
//!   streamed, `max_tokens` 1: prompt tokens over the whole request time;
//! - **follow-up**: right after it, the same conversation plus an answer and a new
//!   question, first streamed token (what a prefix cache saves);
//! - **aggregate** tok/s with 1, 2 and 4 streams of 64 tokens at once: all tokens
//!   over the wall time from the first request sent to the last stream's end.
//!
//! Settings, alike where the engines allow: 4 sequences of 2,048 tokens (node:
//! `CEREBRUM_PARALLEL=4`, `CEREBRUM_CONTEXT_SIZE=2048`; llama-server: `-np 4 -c
//! 8192`; llama-cpp-python serves one sequence of 2,048 and queues the rest,
//! `--interrupt_requests false` so a new request waits instead of cutting the
//! running one off), flash attention on (the others' `auto` resolves to on),
//! batch 512, `temperature` 0, `repeat_penalty` 1.0 (llama-cpp-python's default
//! is 1.1), `--logits_all false`. A GGUF without a chat template (gemma-3-270m)
//! is rendered as ChatML by all three (llama-cpp-python told so with
//! `--chat_format chatml`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cerebrum_node::fit::RunShape;
use cerebrum_node::inspect::{ModelReport, inspect};
use cerebrum_testkit::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

const THREADS: &str = "2";
const SLOTS: usize = 4;
const SLOT_CONTEXT: usize = 2048;
const DECODE_TOKENS: u32 = 128;
const STREAM_TOKENS: u32 = 64;
const CONCURRENCY: [usize; 3] = [1, 2, 4];
/// The name every engine serves its one model under.
const MODEL: &str = "m";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Node,
    LlamaServer,
    LlamaCppPython,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Node, Kind::LlamaServer, Kind::LlamaCppPython];

    fn name(self) -> &'static str {
        match self {
            Kind::Node => "cerebrum-node",
            Kind::LlamaServer => "llama-server",
            Kind::LlamaCppPython => "llama-cpp-python",
        }
    }
}

enum Process {
    Node(Node),
    Child(Child, PathBuf),
}

/// One running engine serving [`MODEL`].
struct Engine {
    kind: Kind,
    process: Process,
    url: String,
}

impl Engine {
    /// Starts `kind` over `model` and returns once it accepts requests, with the
    /// instant it was spawned.
    fn start(kind: Kind, model: &Path) -> (Engine, Instant) {
        let t0 = Instant::now();
        let (process, url) = match kind {
            Kind::Node => {
                let dir = ModelDir::empty("bench-engines");
                dir.link(MODEL, model);
                let context = SLOT_CONTEXT.to_string();
                let slots = SLOTS.to_string();
                let node = Node::start_with(
                    dir,
                    &[
                        ("CEREBRUM_DEFAULT_MODEL", MODEL),
                        ("CEREBRUM_N_THREADS", THREADS),
                        ("CEREBRUM_PARALLEL", &slots),
                        ("CEREBRUM_CONTEXT_SIZE", &context),
                        ("LOG_LEVEL", "warn"),
                    ],
                );
                let url = node.url.clone();
                (Process::Node(node), url)
            }
            Kind::LlamaServer | Kind::LlamaCppPython => {
                let port = free_port();
                let (mut cmd, args) = peer_command(kind, model, port);
                let log =
                    std::env::temp_dir().join(format!("cerebrum-bench-{}-{port}.log", kind.name()));
                let file = std::fs::File::create(&log).expect("create peer log");
                let mut child = cmd
                    .args(args)
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .stdout(Stdio::from(file.try_clone().unwrap()))
                    .stderr(Stdio::from(file))
                    .spawn()
                    .unwrap_or_else(|e| panic!("spawn {}: {e}", kind.name()));
                let url = format!("http://127.0.0.1:{port}");
                // Both load their model before they answer.
                let ready = poll(Duration::from_secs(180), Duration::from_millis(20), || {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "{} exited ({status}); its log:\n{}",
                            kind.name(),
                            tail(&std::fs::read_to_string(&log).unwrap_or_default(), 30)
                        );
                    }
                    http_get(&url, "/v1/models").0 == 200
                });
                assert!(
                    ready,
                    "{} did not start; log: {}",
                    kind.name(),
                    log.display()
                );
                (Process::Child(child, log), url)
            }
        };
        (Engine { kind, process, url }, t0)
    }

    fn pid(&self) -> u32 {
        match &self.process {
            Process::Node(n) => n.child.id(),
            Process::Child(c, _) => c.id(),
        }
    }

    /// Resident memory now, in bytes (`VmRSS`).
    fn rss(&self) -> f64 {
        memory_kib(self.pid()).0 as f64 * 1024.0
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Process::Child(child, log) = &mut self.process {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(log);
        }
    }
}

/// The command line of a peer: llama-server, or llama-cpp-python's server.
fn peer_command(kind: Kind, model: &Path, port: u16) -> (Command, Vec<String>) {
    let report = shape(model);
    let model = model.to_str().unwrap().to_string();
    let port = port.to_string();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match kind {
        Kind::LlamaServer => {
            let mut args = s(&["--model", &model, "--alias", MODEL, "--host", "127.0.0.1"]);
            args.extend(s(&[
                "--port",
                &port,
                "--threads",
                THREADS,
                "--threads-batch",
                THREADS,
            ]));
            args.extend(s(&["--parallel", &SLOTS.to_string()]));
            args.extend(s(&["--ctx-size", &(SLOTS * SLOT_CONTEXT).to_string()]));
            args.extend(s(&["--batch-size", "512", "--ubatch-size", "512"]));
            args.extend(s(&["--no-webui", "--log-colors", "off"]));
            (Command::new(llama_server_path()), args)
        }
        Kind::LlamaCppPython => {
            let mut args = s(&["-m", "llama_cpp.server", "--model", &model]);
            args.extend(s(&[
                "--model_alias",
                MODEL,
                "--host",
                "127.0.0.1",
                "--port",
                &port,
            ]));
            args.extend(s(&["--n_threads", THREADS, "--n_threads_batch", THREADS]));
            args.extend(s(&[
                "--n_ctx",
                &SLOT_CONTEXT.to_string(),
                "--n_batch",
                "512",
            ]));
            args.extend(s(&["--n_ubatch", "512", "--flash_attn", "true"]));
            args.extend(s(&[
                "--logits_all",
                "false",
                "--interrupt_requests",
                "false",
            ]));
            if !report.has_chat_template {
                // Its own fallback is Llama-2's format, in which gemma answers
                // nothing; the node and llama-server fall back to ChatML.
                args.extend(s(&["--chat_format", "chatml"]));
            }
            (Command::new(llama_cpp_python_path()), args)
        }
        Kind::Node => unreachable!("the node starts through testkit"),
    }
}

/// The node's own reading of the GGUF (`cerebrum-node inspect`) at the bench's
/// settings: whether it carries a chat template, and its KV cache size.
fn shape(model: &Path) -> ModelReport {
    let run = RunShape {
        slots: SLOTS as u64,
        context: SLOT_CONTEXT as u64,
        ubatch: 512,
    };
    inspect(model, &run).expect("inspect the model")
}

/// What one chat request showed.
#[derive(Default)]
struct Sample {
    /// Request sent to first content token (streamed) or to the response (not).
    ttft: Duration,
    /// Request sent to the end of the response.
    total: Duration,
    /// First content token to the last.
    first_to_last: Duration,
    /// Tokens generated (the usage figure, or content chunks where an engine
    /// streams no usage).
    tokens: u64,
    prompt_tokens: u64,
    cached_tokens: Option<u64>,
}

fn body(messages: &Value, max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": MODEL, "messages": messages, "max_tokens": max_tokens, "stream": stream,
        "temperature": 0, "repeat_penalty": 1.0,
        "stream_options": {"include_usage": true},
    })
}

async fn chat(engine: &Engine, messages: &Value, max_tokens: u32, stream: bool) -> Sample {
    let t0 = Instant::now();
    let r = client()
        .post(format!("{}/v1/chat/completions", engine.url))
        .header("x-api-key", KEY)
        .json(&body(messages, max_tokens, stream))
        .send()
        .await
        .unwrap();
    if !r.status().is_success() {
        panic!(
            "{}: {} {}",
            engine.kind.name(),
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    if !stream {
        let v: Value = r.json().await.unwrap();
        let total = t0.elapsed();
        return Sample {
            ttft: total,
            total,
            tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
            prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            cached_tokens: v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64(),
            ..Sample::default()
        };
    }
    let mut events = r.bytes_stream().eventsource();
    let (mut first, mut last, mut chunks, mut usage) = (None, t0, 0u64, Value::Null);
    while let Some(event) = events.next().await {
        let data = event.unwrap().data;
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        if v["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            chunks += 1;
        }
        if v["usage"].is_object() {
            usage = v["usage"].clone();
        }
    }
    let total = t0.elapsed();
    let first = first.unwrap_or(last);
    Sample {
        ttft: first - t0,
        total,
        first_to_last: last - first,
        tokens: usage["completion_tokens"].as_u64().unwrap_or(chunks),
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        cached_tokens: usage["prompt_tokens_details"]["cached_tokens"].as_u64(),
    }
}

/// A one-question chat. With a system message, so all three render the same
/// prompt: without one, SmolLM2's template adds its own default and
/// llama-cpp-python's ChatML an empty system turn (gemma then answers nothing).
fn user(text: &str) -> Value {
    json!([
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": text},
    ])
}

/// A Python module of `bytes` bytes, as a person would paste it.
fn source_file(bytes: usize) -> String {
    let mut s = String::from("import json\nfrom collections import Counter\n\n");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!(
            "def parse_record_{i}(line):\n    \"\"\"Split one CSV line into fields ({i}).\"\"\"\n    fields = line.strip().split(',')\n    return {{'id': int(fields[0]), 'name': fields[1], 'score': float(fields[2]) * {i}}}\n\n"
        ));
        i += 1;
    }
    s.push_str("def merge_counts(a, b):\n    return Counter(a) + Counter(b)\n");
    s
}

/// The coding conversation of one engine in one round: turn 1, and turn 2 (turn 1,
/// an answer, a follow-up question).
fn conversation(file: &str) -> (Value, Value) {
    let first = vec![
        json!({"role": "system", "content": "You are a concise Python reviewer."}),
        json!({"role": "user", "content": format!("Review this file:\n```python\n{file}```\nWhat does it do?")}),
    ];
    let mut second = first.clone();
    second
        .push(json!({"role": "assistant", "content": "It parses CSV records into dictionaries."}));
    second.push(json!({"role": "user", "content": "Now add type hints to parse_record_0."}));
    (Value::Array(first), Value::Array(second))
}

/// Samples of one measure, per engine (index of [`Kind::ALL`]).
#[derive(Default)]
struct Measure(Vec<Vec<f64>>);

impl Measure {
    fn push(&mut self, engine: usize, value: f64) {
        if self.0.len() < Kind::ALL.len() {
            self.0.resize(Kind::ALL.len(), Vec::new());
        }
        self.0[engine].push(value);
    }

    fn median(&self, engine: usize) -> f64 {
        let mut v = self.0[engine].clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    fn cell(&self, engine: usize, unit: &str, scale: f64, digits: usize) -> String {
        let v = &self.0[engine];
        let lo = v.iter().copied().fold(f64::MAX, f64::min) * scale;
        let hi = v.iter().copied().fold(f64::MIN, f64::max) * scale;
        let m = self.median(engine) * scale;
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        format!("{m:.digits$}{unit} ({lo:.digits$}–{hi:.digits$})")
    }
}

#[derive(Default)]
struct Results {
    cold_ttft: Measure,
    warm_ttft: Measure,
    decode: Measure,
    decode_tokens: Measure,
    prompt: Measure,
    prompt_tokens: Measure,
    follow_up: Measure,
    cached: Vec<Option<u64>>,
    aggregate: [Measure; 3],
    aggregate_tokens: [Measure; 3],
    rss_idle: Measure,
    rss_loaded: Measure,
}

async fn run_model(label: &str, model: &Path, rounds: usize) {
    let file_bytes = std::fs::metadata(model).unwrap().len() as f64;
    let code = source_file(4200);
    let mut r = Results {
        cached: vec![None; Kind::ALL.len()],
        ..Results::default()
    };
    for round in 0..rounds {
        // Which engine goes first rotates each round.
        let order: Vec<usize> = (0..Kind::ALL.len())
            .map(|i| (i + round) % Kind::ALL.len())
            .collect();
        eprintln!("{label}: round {}/{rounds}", round + 1);
        let mut engines: Vec<Option<Engine>> = (0..Kind::ALL.len()).map(|_| None).collect();
        for &e in &order {
            let (engine, spawned) = Engine::start(Kind::ALL[e], model);
            r.rss_idle.push(e, engine.rss());
            let s = chat(&engine, &user("Hi"), 4, true).await;
            r.cold_ttft
                .push(e, (spawned.elapsed() - (s.total - s.ttft)).as_secs_f64());
            engines[e] = Some(engine);
        }
        let engines: Vec<Engine> = engines.into_iter().map(Option::unwrap).collect();
        for &e in &order {
            let q = "What is the capital of France?".to_string();
            let s = chat(&engines[e], &user(&q), 4, true).await;
            r.warm_ttft.push(e, s.ttft.as_secs_f64());
        }
        for &e in &order {
            let q = "Write a long story about a robot who learns to paint.".to_string();
            let s = chat(&engines[e], &user(&q), DECODE_TOKENS, true).await;
            // An engine may stop early (end of text): the rate is over what it wrote,
            // and the table says how many tokens that was.
            assert!(s.tokens > 1, "{}: no answer", engines[e].kind.name());
            r.decode
                .push(e, (s.tokens - 1) as f64 / s.first_to_last.as_secs_f64());
            r.decode_tokens.push(e, s.tokens as f64);
        }
        for &e in &order {
            let (turn1, turn2) = conversation(&code);
            let s = chat(&engines[e], &turn1, 1, false).await;
            r.prompt
                .push(e, s.prompt_tokens as f64 / s.total.as_secs_f64());
            r.prompt_tokens.push(e, s.prompt_tokens as f64);
            let f = chat(&engines[e], &turn2, 4, true).await;
            r.follow_up.push(e, f.ttft.as_secs_f64());
            r.cached[e] = f.cached_tokens;
        }
        for (c, &n) in CONCURRENCY.iter().enumerate() {
            for &e in &order {
                let t0 = Instant::now();
                let runs = futures::future::join_all((0..n).map(|i| {
                    let q = format!(
                        "Tell a long tale of a brave {} knight.",
                        ["red", "blue", "green", "old"][i % 4]
                    );
                    let engine = &engines[e];
                    async move { chat(engine, &user(&q), STREAM_TOKENS, true).await }
                }))
                .await;
                let tokens: u64 = runs.iter().map(|s| s.tokens).sum();
                r.aggregate[c].push(e, tokens as f64 / t0.elapsed().as_secs_f64());
                r.aggregate_tokens[c].push(e, tokens as f64);
            }
        }
        for &e in &order {
            r.rss_loaded.push(e, engines[e].rss());
        }
    }
    print_table(label, model, file_bytes, rounds, &r);
}

fn print_table(label: &str, model: &Path, file_bytes: f64, rounds: usize, r: &Results) {
    const MB: f64 = 1.0 / 1_000_000.0;
    let (node, ls, py) = (0, 1, 2);
    let ratio = |m: &Measure, a: usize, b: usize, higher_better: bool| {
        let x = if higher_better {
            m.median(a) / m.median(b)
        } else {
            m.median(b) / m.median(a)
        };
        format!("{x:.2}×")
    };
    println!(
        "\n#### {label}: `{}`, {:.0} MB, {rounds} rounds\n",
        model.file_name().unwrap().to_string_lossy(),
        file_bytes * MB
    );
    println!(
        "| measure | {} | {} | {} | node vs llama-server | node vs llama-cpp-python |",
        Kind::ALL[0].name(),
        Kind::ALL[1].name(),
        Kind::ALL[2].name()
    );
    println!("|---|---|---|---|---|---|");
    // Ratios say how many times better the node did: speeds node ÷ peer, times
    // and memory peer ÷ node; above 1 the node is ahead.
    // Token counts where engines may write different amounts: a rate over other
    // work is not a ratio worth printing.
    let work: std::cell::Cell<Option<&Measure>> = std::cell::Cell::new(None);
    let compared = |m: &Measure, peer: usize, higher_better: bool| match work.get() {
        Some(w) if (w.median(peer) - w.median(node)).abs() > 0.1 * w.median(node) => {
            format!(
                "not comparable: {:.0} tokens against {:.0}",
                w.median(peer),
                w.median(node)
            )
        }
        _ => ratio(m, node, peer, higher_better),
    };
    let row =
        |name: &str, m: &Measure, unit: &str, scale: f64, digits: usize, higher_better: bool| {
            println!(
                "| {name} | {} | {} | {} | {} | {} |",
                m.cell(node, unit, scale, digits),
                m.cell(ls, unit, scale, digits),
                m.cell(py, unit, scale, digits),
                compared(m, ls, higher_better),
                compared(m, py, higher_better),
            );
        };
    let written = |e: usize| r.decode_tokens.median(e);
    work.set(Some(&r.decode_tokens));
    row(
        &format!(
            "decode, one stream, {:.0} / {:.0} / {:.0} tokens (tok/s)",
            written(node),
            written(ls),
            written(py)
        ),
        &r.decode,
        "",
        1.0,
        1,
        true,
    );
    work.set(None);
    let tokens = |e: usize| r.prompt_tokens.median(e);
    row(
        &format!(
            "prompt processing, {:.0} / {:.0} / {:.0} tokens (tok/s)",
            tokens(node),
            tokens(ls),
            tokens(py)
        ),
        &r.prompt,
        "",
        1.0,
        0,
        true,
    );
    row(
        "TTFT cold: start to first token",
        &r.cold_ttft,
        "ms",
        1000.0,
        0,
        false,
    );
    row(
        "TTFT warm: short prompt",
        &r.warm_ttft,
        "ms",
        1000.0,
        1,
        false,
    );
    let cached = |e: usize| {
        r.cached[e]
            .map(|c| c.to_string())
            .unwrap_or_else(|| "not reported".into())
    };
    row(
        &format!(
            "prefix-cache follow-up, TTFT (cached: {} / {} / {})",
            cached(node),
            cached(ls),
            cached(py)
        ),
        &r.follow_up,
        "ms",
        1000.0,
        0,
        false,
    );
    for (c, n) in CONCURRENCY.iter().enumerate() {
        work.set(Some(&r.aggregate_tokens[c]));
        row(
            &format!(
                "aggregate, {n} stream{}, {:.0} / {:.0} / {:.0} tokens (tok/s)",
                if *n == 1 { "" } else { "s" },
                r.aggregate_tokens[c].median(node),
                r.aggregate_tokens[c].median(ls),
                r.aggregate_tokens[c].median(py)
            ),
            &r.aggregate[c],
            "",
            1.0,
            1,
            true,
        );
    }
    work.set(None);
    row("RSS idle, after start (MB)", &r.rss_idle, "", MB, 0, false);
    row(
        "RSS loaded, after the round (MB)",
        &r.rss_loaded,
        "",
        MB,
        0,
        false,
    );
    let mut beyond = Measure::default();
    for (e, v) in r.rss_loaded.0.iter().enumerate() {
        for x in v {
            beyond.push(e, x - file_bytes);
        }
    }
    row(
        "RSS loaded beyond the model file (MB)",
        &beyond,
        "",
        MB,
        0,
        false,
    );
    let scaling: Vec<String> = Kind::ALL
        .iter()
        .enumerate()
        .map(|(e, kind)| {
            let ratio = r.aggregate[2].median(e) / r.aggregate[0].median(e);
            if ratio.is_finite() {
                format!("{} {ratio:.2}×", kind.name())
            } else {
                format!("{} — (no tokens)", kind.name())
            }
        })
        .collect();
    println!(
        "\nAggregate scaling, 4 streams over 1: {}.",
        scaling.join(", ")
    );
    let report = shape(model);
    let own = r.rss_loaded.median(node) - file_bytes - report.kv_bytes as f64;
    println!(
        "Node memory: of its {:.0} MB beyond the model file, the KV cache ({SLOTS} × {SLOT_CONTEXT} \
         tokens, `cerebrum-node inspect`'s figure) is {:.0} MB; the rest, {:.0} MB, is llama.cpp's \
         compute buffers and the node itself ({:.0} MB before the model loads).",
        (r.rss_loaded.median(node) - file_bytes) * MB,
        report.kv_bytes as f64 * MB,
        own * MB,
        r.rss_idle.median(node) * MB
    );
}

/// The machine and the versions, for the table's heading.
fn describe() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap_or_default();
    let sys = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"llama-cpp-sys-2\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .unwrap_or("?")
        .trim_matches('"')
        .to_string();
    // scripts/build-llama-server writes it beside bin/.
    let server = llama_server_path();
    let commit = server
        .parent()
        .and_then(Path::parent)
        .map(|dir| std::fs::read_to_string(dir.join("llama.cpp-commit")).unwrap_or_default())
        .unwrap_or_default();
    let python = llama_cpp_python_path();
    let pyver = Command::new(&python)
        .args([
            "-c",
            "import sys, llama_cpp; print(llama_cpp.__version__, sys.version.split()[0])",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "Machine: {} × {cpu}. Node: llama.cpp in `llama-cpp-sys-2` {sys}; llama-server: llama.cpp `{}` \
         (from llama-cpp-python 0.3.36's source package); llama-cpp-python (version, Python): {pyver}. \
         All three: OpenMP off, AVX2/FMA/F16C (`GGML_NATIVE` off).",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        commit.trim()
    );
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ENGINES_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let models = std::env::var("ENGINES_MODELS").unwrap_or_else(|_| "smollm2,gemma3".into());
    describe();
    for name in models.split(',') {
        match name.trim() {
            "smollm2" => run_model("SmolLM2-135M-Instruct", &smollm2_path(), rounds).await,
            "gemma3" => run_model("gemma-3-270m-it", &gemma3_path(), rounds).await,
            other => panic!("ENGINES_MODELS: unknown model {other:?} (smollm2, gemma3)"),
        }
    }
}
