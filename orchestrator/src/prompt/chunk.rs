//! Step 3: cut code into overlapping blocks for ranking.
//!
//! Sizes are counted in characters (not bytes), so a block can never split a
//! UTF-8 character. A block ends at a line break when one is near its size
//! limit, so blocks mostly hold whole lines; consecutive blocks always share
//! exactly `overlap` characters, so a statement cut at a boundary is whole in
//! one of the two.

use std::ops::Range;

use super::lines::LineTable;

/// Character ranges of the blocks of `chars`: each at most `size` characters,
/// each next one starting `overlap` characters before the previous one ends.
/// A block ends just after a `\n` when one lies within the last `near`
/// characters of the size limit. Together the ranges cover every character;
/// an empty input has no blocks.
///
/// Degenerate settings are repaired rather than rejected: `size` is at least 1
/// and `overlap` at most `size - 1`, so the cut always moves forward.
pub fn chunk_chars(chars: &[char], size: usize, overlap: usize, near: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    chunk_with(chars.len(), size, overlap, near, 0, &mut out, |lo, end| {
        (lo..=end).rev().find(|&e| chars[e - 1] == '\n')
    });
    out
}

/// [`chunk_chars`] over the characters `range` of the text of `table`,
/// returning ranges of that text: the line table answers where the line
/// breaks are, so no character buffer is built.
pub fn chunk_lines(
    table: &LineTable<'_>,
    range: Range<usize>,
    size: usize,
    overlap: usize,
    near: usize,
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    chunk_lines_into(table, range, size, overlap, near, &mut out);
    out
}

/// [`chunk_lines`] appended to `out` (a preparation chunks every segment
/// into one list).
pub fn chunk_lines_into(
    table: &LineTable<'_>,
    range: Range<usize>,
    size: usize,
    overlap: usize,
    near: usize,
    out: &mut Vec<Range<usize>>,
) {
    let off = range.start;
    let n = range.end.min(table.char_len()).saturating_sub(off);
    let lines = table.lines();
    chunk_with(n, size, overlap, near, off, out, |lo, end| {
        // The latest line break before character `end` ends the line before
        // the one holding `end`.
        let line = table.line_of(off + end);
        let at = lines[line].start;
        (line > 0 && at >= off + lo).then(|| at - off)
    });
}

/// The cutting rule of [`chunk_chars`] over `n` characters, appending the
/// blocks to `out` shifted by `off`; `latest_break(lo, end)` is the latest
/// `e` in `lo..=end` just after a `\n`.
fn chunk_with(
    n: usize,
    size: usize,
    overlap: usize,
    near: usize,
    off: usize,
    out: &mut Vec<Range<usize>>,
    latest_break: impl Fn(usize, usize) -> Option<usize>,
) {
    let size = size.max(1);
    let overlap = overlap.min(size - 1);
    out.reserve(n / (size - overlap) + 1);
    let mut start = 0;
    while start < n {
        let mut end = (start + size).min(n);
        if end < n {
            // Latest line break in the last `near` characters that still leaves
            // the block longer than the overlap.
            let lo = end.saturating_sub(near).max(start + overlap + 1);
            if let Some(brk) = latest_break(lo, end) {
                end = brk;
            }
        }
        out.push(start + off..end + off);
        if end == n {
            break;
        }
        start = end - overlap;
    }
}

/// [`chunk_chars`] over a `&str`, for callers that have no char buffer.
pub fn chunk_str(text: &str, size: usize, overlap: usize, near: usize) -> Vec<Range<usize>> {
    let chars: Vec<char> = text.chars().collect();
    chunk_chars(&chars, size, overlap, near)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_small() {
        assert!(chunk_str("", 10, 2, 3).is_empty());
        assert_eq!(chunk_str("abc", 10, 2, 3), vec![0..3]);
    }

    #[test]
    fn fixed_steps_without_newlines() {
        let text = "x".repeat(2500);
        let chunks = chunk_str(&text, 1000, 150, 250);
        assert_eq!(chunks, vec![0..1000, 850..1850, 1700..2500]);
    }

    #[test]
    fn ends_at_near_line_break() {
        // A newline 100 chars before the limit is taken.
        let text = format!("{}\n{}", "a".repeat(899), "b".repeat(800));
        let chunks = chunk_str(&text, 1000, 150, 250);
        assert_eq!(chunks[0], 0..900);
        assert_eq!(chunks[1].start, 750);
        // A newline far from the limit is not.
        let text = format!("{}\n{}", "a".repeat(100), "b".repeat(1500));
        assert_eq!(chunk_str(&text, 1000, 150, 250)[0], 0..1000);
    }

    #[test]
    fn counts_chars_not_bytes() {
        let text = "é".repeat(30);
        let chunks = chunk_str(&text, 10, 2, 0);
        assert_eq!(chunks[0], 0..10);
        assert_eq!(chunks[1], 8..18);
        let s: String = text.chars().skip(8).take(10).collect();
        assert_eq!(s.chars().count(), 10);
    }

    #[test]
    fn line_table_cuts_as_the_char_buffer() {
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&"é".repeat(i % 7));
            text.push_str(&"x".repeat(i * 13 % 90));
            text.push('\n');
            if i % 11 == 0 {
                text.push('\n');
            }
        }
        text.push_str("no newline at the end");
        let table = LineTable::new(&text);
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        for (size, overlap, near) in [
            (1000, 150, 250),
            (100, 30, 40),
            (7, 2, 7),
            (1, 0, 0),
            (50, 49, 0),
        ] {
            for range in [0..n, 0..0, 5..n, 37..n - 3, 400..401, n - 1..n] {
                let want: Vec<Range<usize>> =
                    chunk_chars(&chars[range.clone()], size, overlap, near)
                        .into_iter()
                        .map(|c| c.start + range.start..c.end + range.start)
                        .collect();
                assert_eq!(
                    chunk_lines(&table, range.clone(), size, overlap, near),
                    want,
                    "{range:?} {size} {overlap} {near}"
                );
            }
        }
    }

    #[test]
    fn degenerate_settings_terminate() {
        assert_eq!(chunk_str("abcd", 0, 5, 9).len(), 4);
        let c = chunk_str("abcdef", 3, 3, 0);
        assert_eq!(c, vec![0..3, 1..4, 2..5, 3..6]);
    }
}
