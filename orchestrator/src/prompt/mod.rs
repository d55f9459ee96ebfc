//! Prompt preparation: cut what crosses the slow link, and what a CPU-bound
//! model must read, without losing what the instruction is about.
//!
//! Pure functions over strings: no I/O, no globals (the only impure bit is the
//! elapsed time in the stats). [`prepare`] runs the steps, one module each:
//!
//! 1. [`instruction`]: split the prompt into instruction and code (marker line,
//!    chat prose around fences, or an instruction given separately).
//! 2. Threshold: only code over [`PrepareConfig::threshold_chars`] is prepared.
//! 3. [`chunk`]: overlapping blocks counted in characters, ending at line breaks.
//! 4. [`dedup`]: repeated code found line by line (xxh3 of normalised text), so
//!    repeats are recognised even when they do not line up with chunks.
//! 5. [`rank`] (code-aware tokens + BM25, named identifiers weigh most),
//!    [`select`] (top-k, grown to whole functions via [`blocks`]).
//! 6. [`assemble`]: instruction first, kept code in a fence tagged with the
//!    language ([`language`]), `… N lines omitted …` where code was left out.
//! 7. Skip rule: if that is not [`PrepareConfig::min_gain`] shorter, the
//!    original is sent (instruction first).
//! 8. [`PrepareStats`]: what was done, to log per request.

pub mod assemble;
pub mod blocks;
pub mod chunk;
pub mod dedup;
mod hash;
pub mod instruction;
pub mod language;
pub mod lines;
pub mod rank;
mod scan;
pub mod select;
pub mod words;

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use language::{detect_language, line_comment, normalize_language};

use lines::LineTable;
use words::CodeWords;

/// Tunables of [`prepare`]. `Default` gives the original's figures (threshold
/// 1,500, chunks of 1,000 with 150 overlap, top 3, 10% minimum gain, 300-char
/// query tail, 12-line marker window) plus this implementation's own limits.
/// Deserialises with every field optional, so a config file can set a few.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrepareConfig {
    /// Preparation applies only when the code part is longer than this many
    /// characters.
    pub threshold_chars: usize,
    /// Largest chunk, in characters.
    pub chunk_chars: usize,
    /// Characters shared by consecutive chunks (kept below `chunk_chars`).
    pub overlap_chars: usize,
    /// How many chunks to keep (at least 1).
    pub top_k: usize,
    /// The prepared prompt must be at least this fraction shorter than the
    /// original, or the original is sent (0.10 = 10%).
    pub min_gain: f64,
    /// Without an instruction, the ranking query is this many characters from
    /// the end of the code.
    pub query_tail_chars: usize,
    /// A marker line must be among this many last lines of the text.
    pub marker_window: usize,
    /// A chunk ends at a line break found within this many characters of its
    /// size limit.
    pub line_break_window: usize,
    /// A repeat must span at least this many non-blank lines…
    pub repeat_min_lines: usize,
    /// …and at least this many non-blank characters (default: the overlap; a
    /// shorter repeat, like an idiom shared by sibling functions, is not worth
    /// a chunk boundary).
    pub repeat_min_chars: usize,
    /// Most characters a kept range may grow on each side to reach the bounds
    /// of the function it cuts. The default, 1,850, is two chunks less the
    /// overlap: any function that fits in two chunks is always completed.
    pub max_growth_chars: usize,
    /// Most characters kept for one definition the instruction names.
    pub max_named_chars: usize,
}

impl Default for PrepareConfig {
    fn default() -> Self {
        PrepareConfig {
            threshold_chars: 1500,
            chunk_chars: 1000,
            overlap_chars: 150,
            top_k: 3,
            min_gain: 0.10,
            query_tail_chars: 300,
            marker_window: 12,
            line_break_window: 250,
            repeat_min_lines: 3,
            repeat_min_chars: 150,
            max_growth_chars: 1850,
            max_named_chars: 8000,
        }
    }
}

impl PrepareConfig {
    /// A copy with impossible values repaired: chunk size at least 1, overlap
    /// below it, top-k at least 1, min-gain within 0..=1 (NaN → default).
    pub fn sanitized(&self) -> PrepareConfig {
        let mut c = self.clone();
        c.chunk_chars = c.chunk_chars.max(1);
        c.overlap_chars = c.overlap_chars.min(c.chunk_chars - 1);
        c.top_k = c.top_k.max(1);
        c.min_gain = if c.min_gain.is_nan() {
            PrepareConfig::default().min_gain
        } else {
            c.min_gain.clamp(0.0, 1.0)
        };
        c
    }
}

/// One prompt to prepare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptInput<'a> {
    /// The prompt text: code with a marker line, a chat message with fenced
    /// code, or just code.
    pub text: &'a str,
    /// An instruction given separately (e.g. the OpenAI system message); it is
    /// put first.
    pub instruction: Option<&'a str>,
    /// The request's language (any alias: `py`, `rs`, `c++`); when absent, the
    /// fence's or the detected one is used.
    pub language: Option<&'a str>,
}

/// What to send, and what was done to get it: the protocol's
/// [`PreparedPrompt`](cerebrum_shared::prepare::PreparedPrompt), which
/// `POST /v1/prepare` answers and `cerebrum prepare` prints.
pub use cerebrum_shared::prepare::PreparedPrompt as PromptPlan;
pub use cerebrum_shared::prepare::{KeptRange, PrepareStats};

/// Prepares `input`: finds the instruction, and when the code is long enough
/// keeps only the unique chunks most relevant to it (grown to whole
/// functions), instruction first, in a fence. Never panics; when preparation
/// does not pay, the plan carries the original (see [`PromptPlan::applied`]).
pub fn prepare(input: &PromptInput<'_>, cfg: &PrepareConfig) -> PromptPlan {
    let started = Instant::now();
    let cfg = cfg.sanitized();
    let text = input.text;
    let given = input.instruction.map(str::trim).filter(|g| !g.is_empty());
    // The original is the text after the given instruction and a blank line
    // (`assemble::with_instruction`); it is only built when it is sent.
    let original = || assemble::with_instruction(given, text);
    if u32::try_from(text.len()).is_err() {
        // Line and word offsets are kept in 32 bits.
        return too_big(input, given, started);
    }
    let ex = instruction::extract(text, given, cfg.marker_window);
    let text_chars = ex.text_chars;
    let original_chars = given.map_or(0, |g| g.chars().count() + 2) + text_chars;
    // The code's line table: language detection reads its lines, and every
    // later step works on them.
    let table = LineTable::new(&ex.code);
    let language = choose_language(input.language, ex.fence_info.as_deref(), &table, &ex);

    let mut stats = PrepareStats {
        original_chars,
        final_chars: original_chars,
        chunks_total: 0,
        chunks_unique: 0,
        chunks_kept: 0,
        reduction_percent: 0.0,
        elapsed_us: 0,
        // The whole text unless something is kept (set where it is known).
        kept_ranges: Vec::new(),
        skipped_reason: None,
    };

    let code_chars = ex.code_chars;
    if code_chars <= cfg.threshold_chars {
        stats.skipped_reason = Some(format!(
            "code is {code_chars} characters, not over the {} threshold",
            cfg.threshold_chars
        ));
        stats.kept_ranges = whole_range(text, text_chars);
        stats.elapsed_us = micros(started);
        return PromptPlan {
            prompt: original(),
            stats,
            applied: false,
            language,
            instruction: ex.instruction,
        };
    }

    // Chunk each segment separately, so repeated code is cut identically.
    let printer = dedup::Printer::new(&table);
    let segments = dedup::segments_with(&printer, cfg.repeat_min_lines, cfg.repeat_min_chars);
    let mut chunks = Vec::new();
    for seg in &segments {
        chunk::chunk_lines_into(
            &table,
            seg.range.clone(),
            cfg.chunk_chars,
            cfg.overlap_chars,
            cfg.line_break_window,
            &mut chunks,
        );
    }
    let unique = dedup::unique_chunks_with(&printer, &chunks, &segments);

    // Rank the unique chunks: the code is tokenized once (`words`), for the
    // query's terms and the identifiers the instruction may name.
    let tail = || {
        let tail_start = code_chars.saturating_sub(cfg.query_tail_chars);
        rank::tail_query(table.slice(tail_start, code_chars))
    };
    // Repeats copy earlier lines: no first spelling and no scored chunk is
    // in them, so their words are not read.
    let fresh: Vec<std::ops::Range<usize>> = segments
        .iter()
        .filter(|s| !s.repeat)
        .map(|s| table.byte(s.range.start)..table.byte(s.range.end))
        .collect();
    let (query, words) = match ex.instruction.as_deref() {
        Some(i) => {
            let tokens = rank::tokenize(i);
            let terms = rank::query_terms(&tokens);
            let wanted = rank::whole_tokens(&tokens);
            let (words, identifiers) = CodeWords::new(&ex.code, &fresh, &terms, &wanted);
            (rank::build_query_from(i, &tokens, &identifiers), words)
        }
        None => {
            let query = tail();
            let terms: Vec<&str> = query.terms.iter().map(|t| t.text.as_str()).collect();
            let (words, _) = CodeWords::new(&ex.code, &fresh, &terms, &[]);
            (query, words)
        }
    };
    let unique_idx: Vec<usize> = (0..chunks.len()).filter(|&i| unique[i]).collect();
    let docs: Vec<std::ops::Range<usize>> = unique_idx
        .iter()
        .map(|&i| {
            let start = table.byte(chunks[i].start);
            start..table.byte(chunks[i].end).max(start)
        })
        .collect();
    let mut named_defs = definition_lines(&table, &query.named);
    if named_defs.is_empty() {
        named_defs = definition_lines(&table, &query.mentioned);
    }
    let mut unique_scores = words.score(&docs, &query);
    if named_defs.is_empty() && unique_scores.iter().all(|s| *s <= 0.0) {
        // The instruction shares no word with the code ("explain this"): rank
        // by the end of the code, as when there is no instruction.
        unique_scores = words.score(&docs, &tail());
    }
    if named_defs.is_empty() && unique_scores.iter().all(|s| *s <= 0.0) {
        // Not even the tail has a usable word (`x = 1` repeated): the end of
        // the code is what matters, so prefer the last chunks.
        let n = unique_scores.len() as f64;
        for (rank, score) in unique_scores.iter_mut().enumerate() {
            *score = (rank as f64 + 1.0) / n;
        }
    }
    let mut scores = vec![0.0; chunks.len()];
    for (&i, s) in unique_idx.iter().zip(unique_scores) {
        scores[i] = s;
    }
    let selection = select::select(
        &table,
        &chunks,
        &unique,
        &scores,
        &named_defs,
        select::Limits {
            top_k: cfg.top_k,
            max_growth: cfg.max_growth_chars,
            max_named: cfg.max_named_chars,
        },
    );

    stats.chunks_total = chunks.len();
    stats.chunks_unique = unique_idx.len();
    stats.chunks_kept = selection.chunks_kept;

    let body = assemble::render_kept(&table, &selection.kept, language.as_deref());
    let prompt =
        assemble::with_instruction_fenced(ex.instruction.as_deref(), &body, language.as_deref());
    let final_chars = prompt.chars().count();
    let too_long = final_chars as f64 > original_chars as f64 * (1.0 - cfg.min_gain);
    if too_long || selection.kept.is_empty() {
        let prompt = skip_prompt(&ex, original, language.as_deref());
        let gain = percent_less(original_chars, final_chars);
        stats.skipped_reason = Some(if too_long {
            format!(
                "preparing saves {gain:.1}%, less than the {:.0}% minimum",
                cfg.min_gain * 100.0
            )
        } else {
            "no chunk worth keeping (the code is blank or all repeats)".to_owned()
        });
        stats.final_chars = prompt.chars().count();
        stats.reduction_percent = percent_less(original_chars, stats.final_chars);
        stats.kept_ranges = whole_range(text, text_chars);
        stats.elapsed_us = micros(started);
        return PromptPlan {
            prompt,
            stats,
            applied: false,
            language,
            instruction: ex.instruction,
        };
    }

    stats.final_chars = final_chars;
    stats.reduction_percent = percent_less(original_chars, final_chars);
    stats.kept_ranges = kept_ranges(&ex, text, text_chars, &table, &selection.kept);
    stats.elapsed_us = micros(started);
    PromptPlan {
        prompt,
        stats,
        applied: true,
        language,
        instruction: ex.instruction,
    }
}

/// The plan for a text of 4 GiB or more: sent as it is.
#[cold]
fn too_big(input: &PromptInput<'_>, given: Option<&str>, started: Instant) -> PromptPlan {
    let chars = input.text.chars().count() + given.map_or(0, |g| g.chars().count() + 2);
    let stats = PrepareStats {
        original_chars: chars,
        final_chars: chars,
        chunks_total: 0,
        chunks_unique: 0,
        chunks_kept: 0,
        reduction_percent: 0.0,
        elapsed_us: micros(started),
        kept_ranges: whole_range(input.text, input.text.chars().count()),
        skipped_reason: Some("the text is 4 GiB or more; it is sent as it is".to_owned()),
    };
    PromptPlan {
        prompt: assemble::with_instruction(given, input.text),
        stats,
        applied: false,
        language: input
            .language
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
        instruction: given.map(str::to_owned),
    }
}

/// The request's language as given, else the fence's (canonical name when
/// known), else the detected one.
fn choose_language(
    requested: Option<&str>,
    fence: Option<&str>,
    table: &LineTable<'_>,
    ex: &instruction::Extracted<'_>,
) -> Option<String> {
    let requested = requested.map(str::trim).filter(|l| !l.is_empty());
    if let Some(l) = requested {
        return Some(l.to_owned());
    }
    if let Some(word) = fence
        .and_then(|f| f.split([' ', ',', '{']).next())
        .filter(|w| !w.is_empty())
    {
        return Some(normalize_language(word).map_or_else(|| word.to_owned(), str::to_owned));
    }
    language::detect_language_lines(table, ex.may_fence).map(str::to_owned)
}

/// The original with the instruction first: the prompt sent when preparing
/// does not pay.
fn skip_prompt(
    ex: &instruction::Extracted,
    original: impl FnOnce() -> String,
    language: Option<&str>,
) -> String {
    use instruction::Source;
    match (&ex.instruction, ex.source, ex.fenced) {
        (None, ..) | (Some(_), Source::Given, false) => original(),
        (Some(i), _, true) => {
            assemble::with_instruction(Some(i), &assemble::fence(&ex.code, language))
        }
        (Some(i), _, false) => assemble::with_instruction(Some(i), ex.code.trim_end()),
    }
}

/// Lines of the code that define one of `names` (case-insensitive, and with
/// leading/trailing `_` ignored as the tokenizer ignores them: `_wrap_chunks`,
/// `__init__`).
fn definition_lines(table: &LineTable<'_>, names: &[String]) -> Vec<usize> {
    if names.is_empty() {
        return Vec::new();
    }
    let key = |n: &str| n.trim_matches('_').to_lowercase();
    let wanted: Vec<String> = names.iter().map(|n| key(n)).collect();
    let defines = |i: usize| {
        blocks::definition_name(table.line_text(i)).is_some_and(|name| {
            let name = name.trim_matches('_');
            if name.is_ascii() {
                // Lowercase keys: compared without lowercasing the name.
                wanted.iter().any(|w| w.eq_ignore_ascii_case(name))
            } else {
                wanted.contains(&name.to_lowercase())
            }
        })
    };
    if wanted.iter().any(String::is_empty) {
        return (0..table.len()).filter(|&i| defines(i)).collect();
    }
    // A defined name is part of its line, so an ASCII line can only define a
    // wanted name if it holds that name in some letter case: find those
    // lines with one search per name over the lowercased text, and read
    // only them (and the rare non-ASCII lines) as definitions.
    let lines = table.lines();
    let lower = table.text().to_ascii_lowercase();
    let mut candidate: Vec<bool> = if table.is_ascii() {
        vec![false; lines.len()]
    } else {
        lines
            .iter()
            .map(|l| !table.text()[l.byte_start..l.byte_end].is_ascii())
            .collect()
    };
    for w in &wanted {
        for at in memchr::memmem::find_iter(lower.as_bytes(), w.as_bytes()) {
            let line = lines.partition_point(|l| l.byte_end <= at);
            if let Some(c) = candidate.get_mut(line) {
                *c = true;
            }
        }
    }
    (0..table.len())
        .filter(|&i| candidate[i] && defines(i))
        .collect()
}

/// The whole text (of `chars` characters) as one kept range, counted without
/// a line table.
fn whole_range(text: &str, chars: usize) -> Vec<KeptRange> {
    if text.is_empty() {
        return Vec::new();
    }
    vec![KeptRange {
        start: 0,
        end: chars,
        start_line: 1,
        // `split_inclusive('\n').count()`: a line per line break, and one
        // more for a last line without one.
        end_line: text.bytes().filter(|&b| b == b'\n').count() + usize::from(!text.ends_with('\n')),
    }]
}

/// The kept code ranges `kept` as ranges of the text (of `text_chars`
/// characters), with their lines: the code's when the code is the start of
/// the text (no fences), else counted over an ASCII text, else read from a
/// table of the text.
fn kept_ranges(
    ex: &instruction::Extracted<'_>,
    text: &str,
    text_chars: usize,
    code: &LineTable<'_>,
    kept: &[std::ops::Range<usize>],
) -> Vec<KeptRange> {
    let ranges = kept
        .iter()
        .flat_map(|r| instruction::map_to_text(&ex.pieces, r.start, r.end));
    let code_is_text =
        ex.pieces.len() == 1 && ex.pieces[0].code_start == 0 && ex.pieces[0].text_start == 0;
    if code_is_text {
        return ranges
            .map(|(s, e)| kept_range(s, e, |c| code.line_of(c)))
            .collect();
    }
    if let Some(mut counter) = lines::LineCounter::new(text, text_chars) {
        return ranges
            .map(|(s, e)| kept_range(s, e, |c| counter.line_of(c)))
            .collect();
    }
    let table = LineTable::new(text);
    ranges
        .map(|(s, e)| kept_range(s, e, |c| table.line_of(c)))
        .collect()
}

/// The characters `start..end` with their lines, numbered from 1 by
/// `line_of` (the index of the line holding a character).
fn kept_range(start: usize, end: usize, mut line_of: impl FnMut(usize) -> usize) -> KeptRange {
    KeptRange {
        start,
        end,
        start_line: line_of(start) + 1,
        end_line: line_of(end.saturating_sub(1).max(start)) + 1,
    }
}

fn percent_less(original: usize, now: usize) -> f64 {
    if original == 0 {
        return 0.0;
    }
    let p = (original as f64 - now as f64) / original as f64 * 100.0;
    (p * 10.0).round() / 10.0
}

fn micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
