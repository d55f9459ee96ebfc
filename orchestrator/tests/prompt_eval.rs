//! Quality evaluation of prompt preparation, kept as a regression check.
//!
//! 24 generated prompts (see `tests/data/corpus.rs`) of 3–16 KB in Python,
//! JavaScript, Rust and C, each with a block pasted several times and one
//! function the instruction names, placed at the start, middle or end. The
//! check: every line of the named function survives (as one contiguous piece)
//! in every case, and the median reduction is at least 60%.
//!
//! Print the figures with:
//! `cargo test --release -p cerebrum --test prompt_eval -- --nocapture`
//! Set `CEREBRUM_EVAL_DUMP=<dir>` to also write each prompt and its prepared
//! form there.

#[path = "data/corpus.rs"]
mod corpus;

use cerebrum::prompt::{PrepareConfig, PromptInput, prepare};
use corpus::{Case, Form, Place};

/// Outcome of one case.
struct Outcome {
    survived: bool,
    lines_survived: usize,
    lines_total: usize,
    reduction: f64,
    applied: bool,
    chunks: (usize, usize, usize),
    micros: u64,
}

fn evaluate(case: &Case) -> (Outcome, String) {
    let plan = prepare(
        &PromptInput {
            text: &case.text,
            instruction: case.instruction.as_deref(),
            language: None,
        },
        &PrepareConfig::default(),
    );
    let lines: Vec<&str> = case
        .function
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let lines_survived = lines.iter().filter(|l| plan.prompt.contains(**l)).count();
    let s = &plan.stats;
    (
        Outcome {
            survived: plan.prompt.contains(case.function.trim_end()),
            lines_survived,
            lines_total: lines.len(),
            reduction: if plan.applied {
                s.reduction_percent
            } else {
                0.0
            },
            applied: plan.applied,
            chunks: (s.chunks_total, s.chunks_unique, s.chunks_kept),
            micros: s.elapsed_us,
        },
        plan.prompt,
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[test]
fn corpus_is_as_specified() {
    let cases = corpus::cases();
    assert!(cases.len() >= 20);
    for case in &cases {
        let size = case.text.len();
        assert!(
            (3072..=16_000).contains(&size),
            "case {} is {size} bytes",
            case.id
        );
        assert_eq!(
            case.text.matches(case.function.as_str()).count(),
            1,
            "case {}: the named function appears once",
            case.id
        );
        assert!(case.copies >= 2);
    }
    for lang in ["python", "javascript", "rust", "c"] {
        assert!(cases.iter().any(|c| c.lang.name() == lang));
    }
    for place in [Place::Start, Place::Middle, Place::End] {
        assert!(cases.iter().any(|c| c.place == place));
    }
    for form in [Form::Marker, Form::Chat, Form::Given] {
        assert!(cases.iter().any(|c| c.form == form));
    }
    // Deterministic.
    let again = corpus::cases();
    assert!(cases.iter().zip(&again).all(|(a, b)| a.text == b.text));
}

#[test]
fn named_function_survives_and_median_reduction_is_at_least_60_percent() {
    let cases = corpus::cases();
    let dump = std::env::var_os("CEREBRUM_EVAL_DUMP").map(std::path::PathBuf::from);
    println!(
        "\n{:>4} {:<10} {:>6} {:<6} {:<6} {:<24} {:>6} {:>8} {:>9} {:>7}",
        "case", "language", "bytes", "place", "form", "named", "lines", "reduced", "chunks", "µs"
    );
    let mut reductions = Vec::new();
    let mut survived = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let (o, prompt) = evaluate(case);
        if let Some(dir) = &dump {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("case{:02}.in.txt", case.id)), &case.text);
            let _ = std::fs::write(dir.join(format!("case{:02}.out.txt", case.id)), &prompt);
        }
        println!(
            "{:>4} {:<10} {:>6} {:<6} {:<6} {:<24} {:>2}/{:<3} {:>7.1}% {:>3}/{:>2}/{:>2} {:>7}",
            case.id,
            case.lang.name(),
            case.text.len(),
            format!("{:?}", case.place),
            format!("{:?}", case.form),
            case.name,
            o.lines_survived,
            o.lines_total,
            o.reduction,
            o.chunks.0,
            o.chunks.1,
            o.chunks.2,
            o.micros,
        );
        if o.survived {
            survived += 1;
        } else {
            failures.push(case.id);
        }
        if !o.applied {
            println!("     (sent unchanged)");
        }
        reductions.push(o.reduction);
    }
    let med = median(&mut reductions);
    println!(
        "\nnamed function survived whole in {survived}/{} cases; median reduction {med:.1}% (min {:.1}%, max {:.1}%)",
        cases.len(),
        reductions.first().copied().unwrap_or(0.0),
        reductions.last().copied().unwrap_or(0.0),
    );
    assert!(
        failures.is_empty(),
        "named function lost in cases {failures:?}"
    );
    assert!(med >= 60.0, "median reduction {med:.1}% < 60%");
}

/// The whole plan of every case (prompt, stats but the time, kept ranges,
/// language, instruction) as a digest: a change to any of them shows here,
/// not only one that loses the named function or the median. Digests taken
/// at 06f8f0b, before the speed work of steps 10–18 in BENCHMARKS.md, and
/// unchanged by it. A deliberate change of output updates them (the failure
/// prints the new list).
#[test]
fn plans_are_unchanged() {
    const DIGESTS: [u64; 24] = [
        0xdcf6701cfbb42364,
        0xcc3f79b2176ea547,
        0x4bf04060ee931a3c,
        0xd3285f269b8a3497,
        0xdd6e5286afbe061b,
        0x75ba85e1cc076e0b,
        0x0d060c0f2f5e4b51,
        0x80f53ce7f9a5b94d,
        0x4ffa22d06bf42f40,
        0x1c392db2246f65c8,
        0xb5b79d1bc8dc86df,
        0xae63e86266a275d8,
        0x9d1934b333593953,
        0xde4e8777cb63321f,
        0xb869d210fbda3444,
        0x179632283d53c565,
        0xa5f9c1f3c07b6f73,
        0x91db432b59c528b7,
        0xfb1c6705674c1c6f,
        0xfd3ea6dfc002bb5b,
        0xf47324b0f396c54c,
        0x83d682849025c7a6,
        0xd2d59deb18020f7a,
        0xf033b6d76678cd18,
    ];
    let got: Vec<u64> = corpus::cases()
        .iter()
        .map(|case| {
            let mut plan = prepare(
                &PromptInput {
                    text: &case.text,
                    instruction: case.instruction.as_deref(),
                    language: None,
                },
                &PrepareConfig::default(),
            );
            plan.stats.elapsed_us = 0;
            let json = serde_json::to_vec(&plan).expect("a plan serializes");
            xxhash_rust::xxh3::xxh3_64(&json)
        })
        .collect();
    assert_eq!(got, DIGESTS, "plan digests: {got:#018x?}");
}
