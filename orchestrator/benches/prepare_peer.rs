//! Same-run comparison of prompt preparation with the original system's Python
//! pipeline (`bench/original_prepare.py`), on the 24 held-out prompts of the
//! evaluation corpus (`tests/data/corpus.rs`, 3–16 KB).
//!
//! Both are timed warm and in-process: here `Instant` around each
//! `prepare` call, there `time.perf_counter_ns` around each `prepare` call in
//! one Python process. The engines alternate by round (ours, Python, Python,
//! ours, …) so drift on a shared machine hits both. Per prompt the median of
//! all samples is taken; the table gives the median of those per size class
//! and overall, with min–max.
//!
//! `cargo bench -p cerebrum --bench prepare_peer` (`PEER_ROUNDS`, default 4,
//! `PEER_ITERS` per prompt per round, default 150, `PYTHON`, default
//! `python3`, `PEER_CASES=<file>` to keep the prompts as JSON). The table is
//! Markdown, for BENCHMARKS.md.

#[path = "../tests/data/corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use cerebrum::prompt::{PrepareConfig, PromptInput, prepare};

const WARMUP: usize = 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One round of ours: per case, `iters` timed calls after a warm-up (ns).
fn time_ours(inputs: &[PromptInput<'_>], cfg: &PrepareConfig, iters: usize) -> Vec<Vec<f64>> {
    inputs
        .iter()
        .map(|input| {
            for _ in 0..WARMUP {
                black_box(prepare(black_box(input), cfg));
            }
            (0..iters)
                .map(|_| {
                    let t = Instant::now();
                    black_box(prepare(black_box(input), cfg));
                    t.elapsed().as_nanos() as f64
                })
                .collect()
        })
        .collect()
}

/// One round of the Python pipeline, in one process (ns per call, per case).
fn time_python(python: &str, script: &str, cases: &str, iters: usize) -> (Vec<Vec<f64>>, String) {
    let out = Command::new(python)
        .args([script, "--bench", cases, "--iters", &iters.to_string()])
        .args(["--warmup", &WARMUP.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the Python bench prints JSON");
    let version = v["python"].as_str().unwrap_or("?").to_owned();
    let cases = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            c["ns"]
                .as_array()
                .expect("ns")
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect()
        })
        .collect();
    (cases, version)
}

fn main() {
    let rounds = env_usize("PEER_ROUNDS", 4);
    let iters = env_usize("PEER_ITERS", 150);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/original_prepare.py");
    let cfg = PrepareConfig::default();
    let cases = corpus::cases();
    let inputs: Vec<PromptInput<'_>> = cases
        .iter()
        .map(|c| PromptInput {
            text: &c.text,
            instruction: c.instruction.as_deref(),
            language: None,
        })
        .collect();
    let json = serde_json::Value::Array(
        cases
            .iter()
            .map(|c| serde_json::json!({"text": c.text, "instruction": c.instruction}))
            .collect(),
    );
    // `PEER_CASES=<file>` keeps the cases there (to run the Python side alone).
    let keep = std::env::var_os("PEER_CASES").map(std::path::PathBuf::from);
    let path = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cerebrum-peer-{}.json", std::process::id()))
    });
    std::fs::write(&path, json.to_string()).expect("write the cases");
    let path_str = path.to_string_lossy().into_owned();

    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut version = String::new();
    for round in 0..rounds {
        let mut run_ours = || {
            for (all, new) in ours.iter_mut().zip(time_ours(&inputs, &cfg, iters)) {
                all.extend(new);
            }
        };
        let mut run_python = |version: &mut String| {
            let (samples, v) = time_python(&python, script, &path_str, iters);
            assert_eq!(samples.len(), cases.len());
            for (all, new) in theirs.iter_mut().zip(samples) {
                all.extend(new);
            }
            *version = v;
        };
        if round % 2 == 0 {
            run_ours();
            run_python(&mut version);
        } else {
            run_python(&mut version);
            run_ours();
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    if keep.is_none() {
        let _ = std::fs::remove_file(&path);
    }

    println!(
        "\n{rounds} rounds × {iters} calls per prompt and engine (after {WARMUP} warm-up calls), Python {version}\n"
    );
    println!(
        "| case | language | form | bytes | ours µs | original (Python) µs | Python ÷ ours | ours: reduced |"
    );
    println!("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let o = median(&mut ours[i]) / 1000.0;
        let p = median(&mut theirs[i]) / 1000.0;
        let plan = prepare(&inputs[i], &cfg);
        println!(
            "| {} | {} | {:?} | {} | {o:.0} | {p:.0} | {:.1}× | {:.1}% |",
            c.id,
            c.lang.name(),
            c.form,
            c.text.len(),
            p / o,
            plan.stats.reduction_percent,
        );
        rows.push((c.text.len(), o, p));
    }
    println!(
        "\n| prompts | n | ours: median (min–max) | original (Python): median (min–max) | Python ÷ ours |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    let classes: [(&str, usize, usize); 4] = [
        ("3–6 KB", 0, 6 * 1024),
        ("6–11 KB", 6 * 1024, 11 * 1024),
        ("11–16 KB", 11 * 1024, usize::MAX),
        ("all 24", 0, usize::MAX),
    ];
    for (label, lo, hi) in classes {
        let sel: Vec<&(usize, f64, f64)> = rows.iter().filter(|r| r.0 >= lo && r.0 < hi).collect();
        let mut o: Vec<f64> = sel.iter().map(|r| r.1).collect();
        let mut p: Vec<f64> = sel.iter().map(|r| r.2).collect();
        let (om, pm) = (median(&mut o), median(&mut p));
        println!(
            "| {label} | {} | {om:.0} µs ({:.0}–{:.0}) | {pm:.0} µs ({:.0}–{:.0}) | {:.1}× |",
            sel.len(),
            o.first().copied().unwrap_or(f64::NAN),
            o.last().copied().unwrap_or(f64::NAN),
            p.first().copied().unwrap_or(f64::NAN),
            p.last().copied().unwrap_or(f64::NAN),
            pm / om,
        );
    }
}
