//! Prompt preparation (`cerebrum::prompt::prepare`) on arbitrary text and
//! tunables.
//!
//! Input: a 16-byte header, then `text [\0 instruction [\0 language]]` (UTF-8,
//! invalid bytes replaced). Header byte 0 even: the default tunables; odd: the
//! next 15 bytes set them, each within a range around its default (the
//! server sanitises whatever it is given, and that is part of what is tested).
//! Invariants: no panic; the stats describe the prompt sent; a prepared
//! prompt is shorter than the original; one sent unchanged is at most the
//! original plus a fence; every kept range lies inside the text, in order.
#![no_main]

use cerebrum::prompt::{PrepareConfig, PromptInput, prepare};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = 16;

fn config(h: &[u8; HEADER]) -> PrepareConfig {
    if h[0] % 2 == 0 {
        return PrepareConfig::default();
    }
    let wide = |i: usize| usize::from(u16::from_le_bytes([h[i], h[i + 1]]));
    PrepareConfig {
        threshold_chars: wide(1) % 3000,
        chunk_chars: wide(3) % 2500,
        overlap_chars: wide(5) % 600,
        top_k: usize::from(h[7] % 12),
        // -0.2..=1.3: out-of-range gains are sanitised.
        min_gain: f64::from(h[8]) / 170.0 - 0.2,
        query_tail_chars: usize::from(h[9]) * 4,
        marker_window: usize::from(h[10] % 40),
        line_break_window: usize::from(h[11]) * 2,
        repeat_min_lines: usize::from(h[12] % 10),
        repeat_min_chars: usize::from(h[13]) * 2,
        max_growth_chars: usize::from(h[14]) * 16,
        max_named_chars: usize::from(h[15]) * 64,
    }
}

/// The longest run of backticks that starts a line (what sizes a fence).
fn longest_fence_run(text: &str) -> usize {
    text.lines()
        .map(|l| l.trim_start().chars().take_while(|&c| c == '`').count())
        .max()
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let (head, rest) = data.split_at(HEADER);
    let cfg = config(head.try_into().expect("16 bytes"));
    let rest = String::from_utf8_lossy(rest);
    let mut parts = rest.splitn(3, '\0');
    let text = parts.next().unwrap_or_default();
    let instruction = parts.next();
    let language = parts.next();
    let plan = prepare(
        &PromptInput {
            text,
            instruction,
            language,
        },
        &cfg,
    );
    let s = &plan.stats;
    let sent = plan.prompt.chars().count();
    assert_eq!(
        s.final_chars, sent,
        "stats.final_chars is not the prompt's length"
    );
    let given = instruction.map(str::trim).filter(|i| !i.is_empty());
    let original = given.map_or(0, |i| i.chars().count() + 2) + text.chars().count();
    assert_eq!(s.original_chars, original, "stats.original_chars");
    assert!(s.reduction_percent.is_finite());
    if plan.applied {
        assert!(sent <= original, "prepared {sent} > original {original}");
        assert!(s.chunks_kept >= 1 && s.chunks_kept <= s.chunks_unique);
        assert!(s.chunks_unique <= s.chunks_total);
    } else {
        // Sent unchanged, perhaps re-fenced: at most a fence line pair and the language more.
        let fence = longest_fence_run(text).max(2) + 1;
        let lang = plan.language.as_deref().map_or(0, |l| l.chars().count());
        let bound = original + 2 * fence + lang + 4;
        assert!(sent <= bound, "unchanged prompt {sent} > bound {bound}");
        assert!(
            s.skipped_reason.is_some(),
            "sent unchanged without a reason"
        );
    }
    let text_chars = text.chars().count();
    let text_lines = text.split('\n').count();
    let mut last_end = 0;
    for r in &s.kept_ranges {
        assert!(
            r.start < r.end && r.end <= text_chars,
            "{r:?} outside 0..{text_chars}"
        );
        assert!(
            r.start >= last_end,
            "kept ranges overlap or are out of order: {:?}",
            s.kept_ranges
        );
        assert!(
            r.start_line >= 1 && r.start_line <= r.end_line && r.end_line <= text_lines,
            "{r:?} lines outside 1..={text_lines}"
        );
        last_end = r.end;
    }
});
