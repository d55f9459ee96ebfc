//! Step 5c: pick the chunks to keep and grow them to whole code units.
//!
//! Chunks are taken best first (chunks holding the definition of a name the
//! instruction gives come before all others, then by BM25 score) until `top_k`
//! are kept; a chunk already covered by what was kept does not use a slot, and
//! one with no relevance at all (score 0) is not kept. A chunk holding a named
//! definition contributes that definition's whole block (however many chunks
//! it spans) instead of its own range. Any other kept chunk is snapped to whole
//! lines, and an edge that falls inside a function grows to the function's
//! bounds when that adds at most `max_growth` characters on that side, so code
//! cut in half by a chunk boundary keeps its other half.

use std::ops::Range;

use super::blocks::{Block, Structure};
use super::lines::LineTable;

/// Limits for [`select`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How many chunks to keep.
    pub top_k: usize,
    /// Most characters an edge may grow to reach a block boundary.
    pub max_growth: usize,
    /// Most characters kept for one named definition.
    pub max_named: usize,
}

/// What [`select`] kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Kept character ranges of the code: sorted, disjoint, whole lines.
    pub kept: Vec<Range<usize>>,
    /// How many chunks were kept.
    pub chunks_kept: usize,
}

/// Chooses what to keep. `chunks` are character ranges of the code in `table`;
/// `eligible[i]` says whether chunk `i` may be kept (unique); `scores[i]` is its
/// relevance; `named_defs` are the lines that define a symbol the instruction
/// names.
pub fn select(
    table: &LineTable<'_>,
    chunks: &[Range<usize>],
    eligible: &[bool],
    scores: &[f64],
    named_defs: &[usize],
    limits: Limits,
) -> Selection {
    let structure = Structure::new(table);
    let lines = table.lines();
    let defs_in = |c: &Range<usize>| -> Vec<usize> {
        named_defs
            .iter()
            .copied()
            .filter(|&l| lines.get(l).is_some_and(|line| c.contains(&line.start)))
            .collect()
    };
    let mut order: Vec<(usize, bool)> = (0..chunks.len())
        .filter(|&i| eligible.get(i).copied().unwrap_or(false))
        .map(|i| (i, !defs_in(&chunks[i]).is_empty()))
        .collect();
    order.sort_by(|&(a, da), &(b, db)| {
        db.cmp(&da)
            .then_with(|| {
                let sa = scores.get(a).copied().unwrap_or(0.0);
                let sb = scores.get(b).copied().unwrap_or(0.0);
                sb.total_cmp(&sa)
            })
            .then_with(|| a.cmp(&b))
    });
    let mut kept: Vec<Range<usize>> = Vec::new();
    let mut count = 0;
    for (i, _) in order {
        if count >= limits.top_k {
            break;
        }
        let chunk = &chunks[i];
        let score = scores.get(i).copied().unwrap_or(0.0);
        if chunk.is_empty() || covered(&kept, chunk) {
            continue;
        }
        let defs = defs_in(chunk);
        if defs.is_empty() && score.is_nan() || defs.is_empty() && score <= 0.0 {
            // Shares nothing with the query: keeping it would only add noise.
            continue;
        }
        if defs.is_empty() {
            let range = snap_to_lines(table, chunk.clone(), limits.max_growth);
            kept.push(grow_to_blocks(table, &structure, range, limits.max_growth));
        } else {
            // The chunk is kept for the definition it holds: keep that whole
            // definition rather than the unrelated code around it. Overlapping
            // chunks holding the same definition use one slot.
            let blocks: Vec<Range<usize>> = defs
                .iter()
                .map(|&line| bounded_block(table, &structure.block_at(line), limits.max_named))
                .filter(|b| !covered(&kept, b))
                .collect();
            if blocks.is_empty() {
                continue;
            }
            kept.extend(blocks);
        }
        count += 1;
    }
    Selection {
        kept: tidy(table, kept),
        chunks_kept: count,
    }
}

/// Is `r` inside the union of `kept`?
fn covered(kept: &[Range<usize>], r: &Range<usize>) -> bool {
    let mut sorted: Vec<&Range<usize>> = kept.iter().collect();
    sorted.sort_by_key(|k| k.start);
    let mut at = r.start;
    for k in sorted {
        if k.start <= at && k.end > at {
            at = k.end;
        }
        if at >= r.end {
            return true;
        }
    }
    at >= r.end
}

/// Extends `r` to whole lines, unless a side would grow by more than `limit`
/// characters (a very long line), which is then left cut.
fn snap_to_lines(table: &LineTable<'_>, r: Range<usize>, limit: usize) -> Range<usize> {
    if table.is_empty() || r.is_empty() {
        return r;
    }
    let lines = table.lines();
    let first = lines[table.line_of(r.start)];
    let last = lines[table.line_of(r.end - 1)];
    let start = if r.start - first.start <= limit {
        first.start
    } else {
        r.start
    };
    let end = if last.end - r.end <= limit {
        last.end
    } else {
        r.end
    };
    start..end
}

/// The character range of `block`, cut after at most `limit` characters (at a
/// line end).
fn bounded_block(table: &LineTable<'_>, block: &Block, limit: usize) -> Range<usize> {
    let lines = table.lines();
    let start = lines[block.first].start;
    let mut end = lines[block.header].end;
    for line in &lines[block.header..=block.last] {
        if line.end - start > limit && end > start {
            break;
        }
        end = line.end;
    }
    start..end
}

/// Moves each edge of `r` out to the bounds of the function it falls in: the
/// innermost enclosing definition when growth stays within `limit`, otherwise
/// (no enclosing definition) the outermost enclosing block that fits.
fn grow_to_blocks(
    table: &LineTable<'_>,
    structure: &Structure<'_, '_>,
    r: Range<usize>,
    limit: usize,
) -> Range<usize> {
    if table.is_empty() || r.is_empty() {
        return r;
    }
    let lines = table.lines();
    let first_line = table.line_of(r.start);
    let last_line = table.line_of(r.end - 1);
    let mut start = r.start;
    let mut end = r.end;
    if lines[first_line].start == r.start {
        let blocks = structure.enclosing(first_line);
        let fits = |b: &Block| r.start - lines[b.first].start.min(r.start) <= limit;
        let pick = match blocks.iter().find(|b| structure.is_definition(b)) {
            Some(def) => fits(def).then_some(def),
            None => blocks.iter().rev().find(|b| fits(b)),
        };
        if let Some(b) = pick {
            start = start.min(lines[b.first].start);
        }
    }
    if lines[last_line].end == r.end {
        let blocks = structure.enclosing(last_line);
        let fits = |b: &Block| lines[b.last].end.max(r.end) - r.end <= limit;
        let pick = match blocks.iter().find(|b| structure.is_definition(b)) {
            Some(def) => fits(def).then_some(def),
            None => blocks.iter().rev().find(|b| fits(b)),
        };
        if let Some(b) = pick {
            end = end.max(lines[b.last].end);
        }
    }
    start..end
}

/// Sorts and merges ranges that overlap, touch, or are separated only by
/// whitespace, then drops blank lines at their edges.
fn tidy(table: &LineTable<'_>, mut kept: Vec<Range<usize>>) -> Vec<Range<usize>> {
    kept.retain(|r| !r.is_empty());
    kept.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(kept.len());
    for r in kept {
        match merged.last_mut() {
            Some(last)
                if r.start <= last.end || table.slice(last.end, r.start).trim().is_empty() =>
            {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r),
        }
    }
    let lines = table.lines();
    for r in &mut merged {
        loop {
            let l = lines[table.line_of(r.start)];
            if l.blank && l.start == r.start && l.end < r.end {
                r.start = l.end;
            } else {
                break;
            }
        }
        loop {
            let l = lines[table.line_of(r.end - 1)];
            if l.blank && l.end == r.end && l.start > r.start {
                r.end = l.start;
            } else {
                break;
            }
        }
    }
    merged
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one kept range is a real case
mod tests {
    use super::*;

    fn limits(top_k: usize) -> Limits {
        Limits {
            top_k,
            max_growth: 1000,
            max_named: 8000,
        }
    }

    const PY: &str = "import os\n\ndef a():\n    x = 1\n    y = 2\n    return x + y\n\ndef b():\n    return 3\n\ndef c():\n    return 4\n";

    #[test]
    fn chunk_cutting_a_function_grows_to_it() {
        let t = LineTable::new(PY);
        // A chunk from the middle of `x = 1` to the middle of `y = 2`.
        let start = PY.find("x = 1").unwrap_or(0) + 2;
        let end = PY.find("y = 2").unwrap_or(0) + 2;
        let sel = select(&t, &[start..end], &[true], &[1.0], &[], limits(3));
        assert_eq!(sel.chunks_kept, 1);
        let kept: Vec<&str> = sel.kept.iter().map(|r| t.slice(r.start, r.end)).collect();
        assert_eq!(
            kept,
            vec!["def a():\n    x = 1\n    y = 2\n    return x + y\n"]
        );
    }

    #[test]
    fn named_definition_first_and_covered_chunks_skip() {
        let t = LineTable::new(PY);
        let c_line = 10;
        let n = PY.chars().count();
        let b_start = PY.find("def b").unwrap_or(0);
        let c_start = PY.find("def c").unwrap_or(0);
        let chunks = vec![0..b_start, b_start..c_start, c_start..n, c_start + 2..n];
        let sel = select(
            &t,
            &chunks,
            &[true, true, true, true],
            &[5.0, 4.0, 0.1, 0.1],
            &[c_line],
            limits(2),
        );
        // c first (named), then a (best score); chunk 3 is covered by c.
        assert_eq!(sel.chunks_kept, 2);
        let kept: Vec<&str> = sel.kept.iter().map(|r| t.slice(r.start, r.end)).collect();
        assert_eq!(kept, vec![&PY[..b_start - 1], &PY[c_start..]]);
        // Zero-score chunks are not kept; a named chunk keeps only its definition.
        let sel = select(
            &t,
            &[0..n, c_start..n],
            &[true, true],
            &[0.0, 0.0],
            &[c_line],
            limits(3),
        );
        assert_eq!(sel.chunks_kept, 1);
        let kept: Vec<&str> = sel.kept.iter().map(|r| t.slice(r.start, r.end)).collect();
        assert_eq!(kept, vec![&PY[c_start..]]);
        let sel = select(&t, &chunks[..2], &[true, true], &[0.0, 2.0], &[], limits(3));
        assert_eq!(sel.chunks_kept, 1);
    }

    #[test]
    fn ineligible_chunks_are_not_kept() {
        let t = LineTable::new(PY);
        let sel = select(&t, &[0..5], &[false], &[9.0], &[], limits(3));
        assert_eq!(sel.chunks_kept, 0);
        assert!(sel.kept.is_empty());
    }

    #[test]
    fn growth_is_bounded() {
        let mut text = String::from("def big():\n");
        for i in 0..200 {
            text.push_str(&format!("    v{i} = {i}\n"));
        }
        let t = LineTable::new(&text);
        let mid = text.find("v100 =").unwrap_or(0);
        let sel = select(&t, &[mid..mid + 5], &[true], &[1.0], &[], limits(1));
        assert_eq!(
            t.slice(sel.kept[0].start, sel.kept[0].end),
            "    v100 = 100\n"
        );
    }

    #[test]
    fn function_spanning_two_chunks_is_completed_from_a_grazing_chunk() {
        // A 1,800-character function (fits in two 1,000/150 chunks) and a
        // chunk that only holds its last lines and what follows.
        let mut text = String::from("int before;\n\nstatic long checksum(const char *s)\n{\n");
        while text.chars().count() < 1780 {
            text.push_str("    total = total * 31 + next_value(s, total);\n");
        }
        text.push_str("    return total;\n}\n\nint after = 1;\nint more = 2;\n");
        let t = LineTable::new(&text);
        let fn_start = text.find("static long").unwrap_or(0);
        let fn_end = text.find("}\n").map_or(0, |i| i + 2);
        assert!((1750..1850).contains(&(fn_end - fn_start)));
        let chunk = fn_end - 60..text.chars().count();
        let limits = Limits {
            top_k: 1,
            max_growth: 1850,
            max_named: 8000,
        };
        let sel = select(&t, &[chunk], &[true], &[1.0], &[], limits);
        let kept = t.slice(sel.kept[0].start, sel.kept[0].end);
        assert!(kept.starts_with("static long checksum"), "{kept}");
        assert!(kept.ends_with("int more = 2;\n"));
    }

    #[test]
    fn covered_logic() {
        assert!(covered(&[0..5, 5..10], &(2..9)));
        assert!(!covered(&[0..5, 6..10], &(2..9)));
        assert!(covered(&[3..4, 0..3], &(0..4)));
        assert!(!covered(&[], &(0..1)));
    }
}
