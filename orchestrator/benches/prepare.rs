//! Prompt preparation speed on 8 KB and 16 KB prompts (Python with a marker
//! instruction, C as a chat message), from the evaluation corpus generator.
//!
//! `cargo bench -p cerebrum --bench prepare`; medians go into BENCHMARKS.md.

#[path = "../tests/data/corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::time::Duration;

use cerebrum::prompt::{PrepareConfig, PromptInput, prepare};
use corpus::{Form, Lang, Place};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bench_prepare(c: &mut Criterion) {
    let cfg = PrepareConfig::default();
    let mut group = c.benchmark_group("prepare");
    for (label, size) in [("8KB", 8 * 1024), ("16KB", 16 * 1024)] {
        for (lang, form) in [(Lang::Python, Form::Marker), (Lang::C, Form::Chat)] {
            let case = corpus::build(100 + size, lang, size, Place::Middle, form);
            let input = PromptInput {
                text: &case.text,
                instruction: case.instruction.as_deref(),
                language: None,
            };
            let plan = prepare(&input, &cfg);
            assert!(plan.applied, "the benchmark prompt must be prepared");
            eprintln!(
                "prepare/{}/{label}: {} bytes, {}",
                lang.name(),
                case.text.len(),
                plan.stats
            );
            group.throughput(Throughput::Bytes(case.text.len() as u64));
            group.bench_with_input(BenchmarkId::new(lang.name(), label), &input, |b, input| {
                b.iter(|| prepare(black_box(input), black_box(&cfg)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60);
    targets = bench_prepare
}
criterion_main!(benches);
