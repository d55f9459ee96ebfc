//! Property tests of prompt preparation: chunking covers every character,
//! respects sizes and overlaps and never splits a character; the whole
//! pipeline never panics, always puts the instruction first and leaves small
//! prompts unchanged.

use cerebrum::prompt::chunk::chunk_str;
use cerebrum::prompt::{PrepareConfig, PromptInput, prepare};
use proptest::prelude::*;

/// Text with arbitrary Unicode (any scalar value, including combining marks,
/// emoji, control characters) and plenty of line breaks.
fn unicode_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>().prop_map(String::from),
            1 => Just("\n".to_owned()),
            1 => Just("\r\n".to_owned()),
            1 => "[a-z ]{1,20}",
        ],
        0..600,
    )
    .prop_map(|parts| parts.concat())
}

/// One line of something that looks like code, prose, a fence or a marker.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => ("[a-z][a-z_]{0,10}", "[a-zA-Z_][a-zA-Z0-9_]{0,12}", 0usize..4).prop_map(
            |(kw, name, depth)| format!("{}{kw} {name}({name}_arg) {{", "    ".repeat(depth))
        ),
        6 => ("[a-z_]{1,8}", "[0-9]{1,4}", 0usize..4)
            .prop_map(|(v, n, depth)| format!("{}{v} = compute({n}, {v})", "    ".repeat(depth))),
        3 => (0usize..4).prop_map(|depth| format!("{}}}", "    ".repeat(depth))),
        2 => "def [a-z_]{1,12}\\(self\\):",
        2 => "fn [a-z_]{1,12}\\(\\) -> u32 \\{",
        2 => Just(String::new()),
        1 => "(#|//|--)? ?(TODO|INSTRUCTION|REFACTOR|todo|Instruction): [a-z `_()]{0,40}",
        1 => "(```|~~~)[a-z]{0,6}",
        1 => "\\PC{0,40}",
        1 => "[A-Z][a-z]+ [a-z]+ [a-z_]+ [a-z]+\\.",
    ]
}

/// A prompt: lines, sometimes with a block of them pasted several times.
fn prompt_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(line(), 0..160),
        prop::collection::vec(line(), 0..30),
        0usize..5,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(lines, block, copies, at)| {
            let mut lines = lines;
            let block = block.join("\n");
            let pos = if lines.is_empty() {
                0
            } else {
                at.index(lines.len())
            };
            for _ in 0..copies {
                lines.insert(pos, block.clone());
            }
            lines.join("\n")
        })
}

fn config() -> impl Strategy<Value = PrepareConfig> {
    (
        0usize..3000,
        1usize..1500,
        0usize..400,
        0usize..6,
        0.0f64..0.9,
        0usize..600,
        0usize..20,
    )
        .prop_map(
            |(threshold, chunk, overlap, top_k, min_gain, tail, window)| PrepareConfig {
                threshold_chars: threshold,
                chunk_chars: chunk,
                overlap_chars: overlap,
                top_k,
                min_gain,
                query_tail_chars: tail,
                marker_window: window,
                ..PrepareConfig::default()
            },
        )
}

/// Byte offset of every character boundary, by character index.
fn boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect()
}

proptest! {
    // Failing seeds are kept in prompt_props.proptest-regressions and replayed
    // first (one is the multi-byte signature panic these tests found).
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunks_cover_every_char_and_respect_sizes(
        text in unicode_text(),
        size in 1usize..1200,
        overlap in 0usize..400,
        near in 0usize..400,
    ) {
        let n = text.chars().count();
        let chunks = chunk_str(&text, size, overlap, near);
        let overlap = overlap.min(size - 1);
        if n == 0 {
            prop_assert!(chunks.is_empty());
            return Ok(());
        }
        prop_assert_eq!(chunks.first().map(|c| c.start), Some(0));
        prop_assert_eq!(chunks.last().map(|c| c.end), Some(n));
        for c in &chunks {
            prop_assert!(c.start < c.end, "empty chunk {:?}", c);
            prop_assert!(c.end - c.start <= size, "chunk {:?} over {}", c, size);
        }
        for pair in chunks.windows(2) {
            // Exactly `overlap` characters shared, and always moving forward.
            prop_assert_eq!(pair[1].start, pair[0].end - overlap);
            prop_assert!(pair[1].start > pair[0].start);
            prop_assert!(pair[1].end > pair[0].end);
        }
        // Mapped to bytes, every cut is a character boundary, and the chunks
        // minus their overlaps rebuild the text exactly.
        let b = boundaries(&text);
        let mut rebuilt = String::with_capacity(text.len());
        let mut at = 0;
        for c in &chunks {
            let (s, e) = (b[c.start], b[c.end]);
            prop_assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
            let piece = &text[s..e];
            prop_assert_eq!(piece.chars().count(), c.end - c.start);
            rebuilt.push_str(&text[b[at.max(c.start)]..e]);
            at = c.end;
        }
        prop_assert_eq!(rebuilt, text);
    }

    #[test]
    fn pipeline_never_panics_and_keeps_its_promises(
        text in prompt_text(),
        given in prop::option::of("[A-Za-z ,`_()]{0,80}"),
        language in prop::option::of("(python|rs|c\\+\\+|js|zig|)"),
        cfg in config(),
    ) {
        let input = PromptInput {
            text: &text,
            instruction: given.as_deref(),
            language: language.as_deref(),
        };
        let plan = prepare(&input, &cfg);
        check_plan(&text, given.as_deref(), &plan, &cfg)?;
    }

    #[test]
    fn pipeline_survives_arbitrary_unicode(
        text in unicode_text(),
        cfg in config(),
    ) {
        let plan = prepare(&PromptInput { text: &text, instruction: None, language: None }, &cfg);
        check_plan(&text, None, &plan, &cfg)?;
    }

    #[test]
    fn small_prompts_are_unchanged(text in prompt_text(), cfg in config()) {
        // Cut the text to the threshold: the code part can only be shorter.
        let small: String = text.chars().take(cfg.threshold_chars).collect();
        let plan = prepare(&PromptInput { text: &small, instruction: None, language: None }, &cfg);
        prop_assert_eq!(&plan.prompt, &small);
        prop_assert!(!plan.applied);
        prop_assert_eq!(plan.stats.chunks_total, 0);
    }
}

fn check_plan(
    text: &str,
    given: Option<&str>,
    plan: &cerebrum::prompt::PromptPlan,
    cfg: &PrepareConfig,
) -> Result<(), TestCaseError> {
    let s = &plan.stats;
    let given = given.map(str::trim).filter(|g| !g.is_empty());
    let original = match given {
        Some(g) => format!("{g}\n\n{text}"),
        None => text.to_owned(),
    };
    prop_assert_eq!(s.original_chars, original.chars().count());
    prop_assert_eq!(s.final_chars, plan.prompt.chars().count());
    prop_assert!(s.chunks_unique <= s.chunks_total);
    prop_assert!(s.chunks_kept <= cfg.top_k.max(1));
    let n = text.chars().count();
    for r in &s.kept_ranges {
        prop_assert!(r.start < r.end && r.end <= n, "{:?} of {}", r, n);
        prop_assert!(r.start_line <= r.end_line);
    }
    // A given instruction always comes first.
    if let Some(g) = given {
        prop_assert!(plan.prompt.starts_with(g), "given instruction not first");
    }
    if s.chunks_total == 0 {
        // Not prepared (small code): the original, unchanged.
        prop_assert!(!plan.applied);
        prop_assert_eq!(&plan.prompt, &original);
    } else if let Some(instruction) = &plan.instruction {
        // Prepared or sent whole by the skip rule: instruction first.
        prop_assert!(
            plan.prompt.starts_with(instruction.as_str()),
            "instruction {:?} not first in {:?}",
            instruction,
            plan.prompt
        );
    }
    if plan.applied {
        let limit = s.original_chars as f64 * (1.0 - cfg.min_gain.clamp(0.0, 1.0));
        prop_assert!(s.final_chars as f64 <= limit);
        // Every kept range of the input appears verbatim in the prompt.
        let chars: Vec<char> = text.chars().collect();
        for r in &s.kept_ranges {
            let kept: String = chars[r.start..r.end].iter().collect();
            prop_assert!(plan.prompt.contains(&kept), "kept range {:?} missing", r);
        }
    } else {
        prop_assert!(s.skipped_reason.is_some());
    }
    Ok(())
}
