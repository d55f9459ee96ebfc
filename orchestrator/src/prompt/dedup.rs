//! Step 4: recognise repeated code, even when repeats do not line up with
//! chunk boundaries.
//!
//! Fixed-size chunks of a block pasted five times start at different offsets
//! in each copy, so their fingerprints never match. So the repeats are found
//! first, at the line level: every line gets an xxh3 fingerprint of its
//! whitespace-normalised text, and a run of lines that repeats an earlier run
//! (at least `min_lines` non-blank lines and `min_chars` non-blank characters)
//! becomes a segment of its own. Chunking then restarts at every segment
//! boundary, so each copy is cut the same way, and every chunk inside a repeat
//! is a duplicate. Chunks are then fingerprinted too (xxh3 of normalised text),
//! which catches identical chunks the run detection left alone.

use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

use super::hash::{PrintMap, PrintSet};
use super::lines::LineTable;

/// xxh3 of `text` with every run of whitespace folded to one space and the
/// ends trimmed.
pub fn fingerprint(text: &str) -> u64 {
    fingerprint_with(text, &mut Vec::new()).0
}

/// ASCII whitespace as `char::is_whitespace` has it (vertical tab included).
const ASCII_SPACE: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[0x0b] = true;
    t[0x0c] = true;
    t[b'\r' as usize] = true;
    t
};

/// [`fingerprint`] building the normalised text in `buf` (reused across calls,
/// so a preparation allocates it once), and the number of non-whitespace
/// characters of `text`.
pub fn fingerprint_with(text: &str, buf: &mut Vec<u8>) -> (u64, usize) {
    buf.clear();
    let mut weight = 0;
    if text.is_ascii() {
        // The same folding as `split_whitespace`, over bytes.
        weight = fold_into(text.as_bytes(), buf);
    } else {
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 {
                buf.push(b' ');
            }
            buf.extend_from_slice(word.as_bytes());
            weight += word.chars().count();
        }
    }
    (xxh3_64(buf), weight)
}

/// Fingerprints of character ranges of one text. Unless the text has
/// whitespace outside ASCII, each line's words are found once: where its
/// text starts and ends without the surrounding whitespace, and whether its
/// words are separated by single spaces (most lines of code). The
/// fingerprint of a line is then a hash of that slice of the text itself,
/// and of a longer range a hash of its lines' slices joined by spaces: the
/// same bytes [`fingerprint`] folds, copied at most once.
pub struct Printer<'t, 'a> {
    table: &'t LineTable<'a>,
    /// Per line: the byte range of its text between leading and trailing
    /// whitespace, and whether whitespace inside it is only single spaces;
    /// `None` when the text has whitespace outside ASCII.
    lines: Option<&'t [(u32, u32, bool)]>,
}

impl<'t, 'a> Printer<'t, 'a> {
    /// Reads the lines of `table` when the text's whitespace is ASCII (and it
    /// is under 4 GiB).
    pub fn new(table: &'t LineTable<'a>) -> Self {
        let str = table.text();
        // Byte folding equals `split_whitespace` unless the text has
        // whitespace outside ASCII (no other byte of a UTF-8 character can
        // be an ASCII space).
        let foldable = u32::try_from(str.len()).is_ok()
            && (table.is_ascii() || super::scan::wide_chars_until(str, |_, c| !c.is_whitespace()));
        let lines = foldable.then(|| table.trims());
        Printer { table, lines }
    }

    /// [`fingerprint`] of the characters `start..end`, and their number of
    /// non-whitespace characters.
    pub fn print(&self, start: usize, end: usize, buf: &mut Vec<u8>) -> (u64, usize) {
        let Some(lines) = self.lines else {
            return fingerprint_with(self.table.slice(start, end), buf);
        };
        let folded = self.fold(lines, start, end, buf);
        (xxh3_64(folded), weight(folded))
    }

    /// [`Printer::print`] of line `i` (whole).
    pub fn print_line(&self, i: usize, buf: &mut Vec<u8>) -> (u64, usize) {
        match self.line_folded(i, buf) {
            Some(folded) => (xxh3_64(folded), weight(folded)),
            None => {
                let l = self.table.lines()[i];
                self.print(l.start, l.end, buf)
            }
        }
    }

    /// The count [`Printer::print_line`] gives, without the fingerprint:
    /// the characters of the line that are not whitespace.
    pub fn line_weight(&self, i: usize, buf: &mut Vec<u8>) -> usize {
        match self.lines {
            Some(lines) => {
                // Bytes that are neither whitespace nor inside a character.
                use super::scan::Spaces;
                let (s, e) = (lines[i].0 as usize, lines[i].1 as usize);
                let m = self.table.spaces();
                e - s - Spaces::count(&m.white, s, e) - Spaces::count(&m.cont, s, e)
            }
            None => self.print_line(i, buf).1,
        }
    }

    /// The fingerprint [`Printer::print_line`] gives, without the count.
    pub fn line_print(&self, i: usize, buf: &mut Vec<u8>) -> u64 {
        match self.line_folded(i, buf) {
            Some(folded) => xxh3_64(folded),
            None => self.print_line(i, buf).0,
        }
    }

    /// The words of line `i` joined by single spaces (in place for a
    /// simple line), or `None` when the text is not folded by bytes.
    fn line_folded<'b>(&self, i: usize, buf: &'b mut Vec<u8>) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        let (s, e, simple) = self.lines?[i];
        let text = &self.table.text().as_bytes()[s as usize..e as usize];
        Some(if simple {
            text
        } else {
            buf.clear();
            fold_into(text, buf);
            &buf[..]
        })
    }

    /// [`Printer::print`] without the count.
    pub fn print_only(&self, start: usize, end: usize, buf: &mut Vec<u8>) -> u64 {
        match self.lines {
            Some(lines) => xxh3_64(self.fold(lines, start, end, buf)),
            None => fingerprint_with(self.table.slice(start, end), buf).0,
        }
    }

    /// The words of the characters `start..end` joined by single spaces: a
    /// slice of the text itself when they lie on one simple line, else
    /// copied into `buf`.
    fn fold<'b>(
        &self,
        lines: &[(u32, u32, bool)],
        start: usize,
        end: usize,
        buf: &'b mut Vec<u8>,
    ) -> &'b [u8]
    where
        'a: 'b,
    {
        let text = self.table.text().as_bytes();
        let end_byte = self.table.byte(end);
        let start_byte = self.table.byte(start).min(end_byte);
        buf.clear();
        if start_byte == end_byte {
            return &buf[..];
        }
        let first = self.table.line_of(start);
        let last = self.table.line_of(end.saturating_sub(1).max(start));
        if first == last {
            let (s, e, simple) = lines[first];
            let (s, e) = (s as usize, e as usize);
            if simple {
                let (a, b) = (s.max(start_byte), e.min(end_byte));
                return if a < b {
                    trim_space(&text[a..b])
                } else {
                    &buf[..]
                };
            }
        }
        for &(s, e, simple) in &lines[first..=last] {
            let (a, b) = ((s as usize).max(start_byte), (e as usize).min(end_byte));
            if a >= b {
                continue;
            }
            if simple {
                let piece = trim_space(&text[a..b]);
                if !piece.is_empty() {
                    if !buf.is_empty() {
                        buf.push(b' ');
                    }
                    // `piece` is a slice of `text`: where it starts.
                    let at = piece.as_ptr() as usize - text.as_ptr() as usize;
                    append(buf, text, at, piece.len());
                }
            } else {
                fold_into(&text[a..b], buf);
            }
        }
        &buf[..]
    }
}

/// Appends `text[at..at + n]` to `buf`. Lines are short: a copy of a fixed
/// 64 bytes, then cut back, is a few vector moves where a copy of `n` bytes
/// is a `memcpy` call.
#[inline]
fn append(buf: &mut Vec<u8>, text: &[u8], at: usize, n: usize) {
    match text[at..].first_chunk::<64>() {
        Some(block) if n <= 64 => {
            let len = buf.len();
            buf.extend_from_slice(block);
            buf.truncate(len + n);
        }
        _ => buf.extend_from_slice(&text[at..at + n]),
    }
}

/// `b` without one leading and one trailing space (a cut through a line
/// whose words are separated by single spaces leaves at most one).
fn trim_space(b: &[u8]) -> &[u8] {
    let b = b.strip_prefix(b" ").unwrap_or(b);
    b.strip_suffix(b" ").unwrap_or(b)
}

/// Appends the words of `b` to `buf`, each after a space unless `buf` is
/// empty; returns how many word bytes it appended.
fn fold_into(b: &[u8], buf: &mut Vec<u8>) -> usize {
    let mut i = 0;
    let mut weight = 0;
    loop {
        while i < b.len() && ASCII_SPACE[usize::from(b[i])] {
            i += 1;
        }
        if i == b.len() {
            return weight;
        }
        let start = i;
        while i < b.len() && !ASCII_SPACE[usize::from(b[i])] {
            i += 1;
        }
        if !buf.is_empty() {
            buf.push(b' ');
        }
        buf.extend_from_slice(&b[start..i]);
        weight += i - start;
    }
}

/// Characters of a folded text other than its separating spaces: bytes that
/// start a UTF-8 character.
fn weight(folded: &[u8]) -> usize {
    folded
        .iter()
        .filter(|&&b| b != b' ' && b & 0xc0 != 0x80)
        .count()
}

/// A part of the code, as a character range; `repeat` is true when the part
/// copies earlier code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Characters covered.
    pub range: Range<usize>,
    /// True when this part repeats code that appeared before it.
    pub repeat: bool,
}

/// Splits the text of `table` into segments: maximal runs that repeat earlier
/// lines, and the original code between them. The segments cover the whole
/// text in order.
pub fn segments(table: &LineTable<'_>, min_lines: usize, min_chars: usize) -> Vec<Segment> {
    segments_with(&Printer::new(table), min_lines, min_chars)
}

/// [`segments`] with the fingerprints of a [`Printer`] (shared with
/// [`unique_chunks_with`]).
pub fn segments_with(
    printer: &Printer<'_, '_>,
    min_lines: usize,
    min_chars: usize,
) -> Vec<Segment> {
    let table = printer.table;
    let runs = repeat_runs(printer, min_lines.max(1), min_chars);
    let total = table.char_len();
    let mut out = Vec::with_capacity(runs.len() * 2 + 1);
    let mut at = 0;
    for run in runs {
        if run.start > at {
            out.push(Segment {
                range: at..run.start,
                repeat: false,
            });
        }
        at = run.end;
        out.push(Segment {
            range: run,
            repeat: true,
        });
    }
    if at < total {
        out.push(Segment {
            range: at..total,
            repeat: false,
        });
    }
    out
}

/// Character ranges of runs of whole lines that repeat an earlier run.
///
/// Works on the non-blank lines only, so copies separated by different blank
/// lines still match. A window of `min_lines` line fingerprints is hashed at
/// every position; where a window was seen earlier (the latest such place),
/// the run is extended line by line while it keeps matching, but never past
/// the start of the copy (so five back-to-back pastes give four runs, one per
/// copy).
fn repeat_runs(printer: &Printer<'_, '_>, k: usize, min_chars: usize) -> Vec<Range<usize>> {
    let table = printer.table;
    let lines = table.lines();
    let idx: Vec<usize> = (0..lines.len()).filter(|&i| !lines[i].blank).collect();
    if idx.len() < 2 * k {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let prints: Vec<u64> = idx
        .iter()
        .map(|&i| printer.line_print(i, &mut buf))
        .collect();
    // The prints are xxh3 hashes already: a window's key mixes its `k`
    // prints (a key shared by different windows is caught by the comparison
    // of the prints themselves below).
    let window_hash = |j: usize| -> u64 {
        let h = prints[j..j + k]
            .iter()
            .fold(0x243f_6a88_85a3_08d3u64, |h, &p| {
                (h.rotate_left(23) ^ p).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            });
        h ^ h >> 29
    };
    let windows = idx.len() + 1 - k;
    let hashes: Vec<u64> = (0..windows).map(window_hash).collect();
    // Latest earlier position of each window, filled in as the scan passes.
    let mut latest: PrintMap<usize> =
        PrintMap::with_capacity_and_hasher(windows, Default::default());
    let mut seen_to = 0;
    let mut runs = Vec::new();
    let mut j = 0;
    while j < windows {
        for (q, h) in hashes.iter().enumerate().take(j).skip(seen_to) {
            latest.insert(*h, q);
        }
        seen_to = seen_to.max(j);
        let p = latest.get(&hashes[j]).copied().unwrap_or(j);
        if p < j && prints[p..p + k] == prints[j..j + k] {
            let mut len = 0;
            while j + len < idx.len() && p + len < j && prints[p + len] == prints[j + len] {
                len += 1;
            }
            // Lines' weights are summed only as far as the minimum.
            let mut heavy = || {
                let mut chars = 0;
                idx[j..j + len].iter().any(|&i| {
                    chars += printer.line_weight(i, &mut buf);
                    chars >= min_chars
                }) || min_chars == 0
            };
            if len >= k && heavy() {
                let start = lines[idx[j]].start;
                // Blank lines after a copy belong to it, so no blank-only
                // segment is left between back-to-back copies.
                let end = idx
                    .get(j + len)
                    .map_or(table.char_len(), |&next| lines[next].start);
                runs.push(start..end);
                j += len;
                continue;
            }
        }
        j += 1;
    }
    runs
}

/// Marks which chunks are duplicates: those inside a repeat segment, those
/// with nothing but whitespace, and those whose normalised text (xxh3) was
/// seen in an earlier chunk. Returns one flag per chunk, `true` = unique.
pub fn unique_chunks(
    table: &LineTable<'_>,
    chunks: &[Range<usize>],
    segments: &[Segment],
) -> Vec<bool> {
    unique_chunks_with(&Printer::new(table), chunks, segments)
}

/// [`unique_chunks`] with the fingerprints of a [`Printer`].
pub fn unique_chunks_with(
    printer: &Printer<'_, '_>,
    chunks: &[Range<usize>],
    segments: &[Segment],
) -> Vec<bool> {
    let empty = fingerprint("");
    let mut seen = PrintSet::with_capacity_and_hasher(chunks.len(), Default::default());
    // A chunk's folded text, reused: sized for a chunk of the default size.
    let mut buf = Vec::with_capacity(2048);
    chunks
        .iter()
        .map(|c| {
            let in_repeat = segments
                .iter()
                .any(|s| s.repeat && s.range.start <= c.start && c.end <= s.range.end);
            let print = printer.print_only(c.start, c.end, &mut buf);
            // Insert even for repeats so a later identical original chunk is
            // still recognised.
            let fresh = seen.insert(print);
            !in_repeat && fresh && print != empty
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::chunk::chunk_chars;
    use super::*;

    fn block(tag: &str, lines: usize) -> String {
        (0..lines)
            .map(|i| format!("    result_{tag}_{i} = compute_value({i}, \"{tag}\")  # step {i}\n"))
            .collect()
    }

    #[test]
    fn fingerprint_ignores_whitespace_layout() {
        assert_eq!(fingerprint("a  b\n\tc "), fingerprint("a b c"));
        assert_ne!(fingerprint("a b c"), fingerprint("a bc"));
        assert_eq!(fingerprint("\x0b a\x0cb\r"), fingerprint("a b"));
        // The ASCII path folds exactly as the general one does.
        let mut buf = Vec::new();
        for text in [
            "  def f(x):\n\t return x\r\n",
            "",
            "   ",
            "a\x0bb",
            "x  y é",
        ] {
            let (print, weight) = fingerprint_with(text, &mut buf);
            let words: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(print, xxh3_64(words.join(" ").as_bytes()), "{text:?}");
            assert_eq!(
                weight,
                words.iter().map(|w| w.chars().count()).sum::<usize>()
            );
        }
    }

    #[test]
    fn folded_prints_equal_folding_each_range() {
        let text = "  def f(x):\n\t\treturn  x\r\n\n   \n  y = 1 \x0b z\n   ";
        let table = LineTable::new(text);
        let printer = Printer::new(&table);
        assert!(printer.lines.is_some());
        let n = table.char_len();
        let mut buf = Vec::new();
        for start in 0..=n {
            for end in start..=n {
                let want = fingerprint_with(table.slice(start, end), &mut buf);
                assert_eq!(printer.print(start, end, &mut buf), want, "{start}..{end}");
            }
        }
        for (i, l) in table.lines().iter().enumerate() {
            assert_eq!(
                printer.print_line(i, &mut buf),
                printer.print(l.start, l.end, &mut buf)
            );
            assert_eq!(
                printer.line_weight(i, &mut buf),
                printer.print_line(i, &mut buf).1
            );
        }
        // Non-ASCII letters fold over bytes too; non-ASCII whitespace makes
        // each range fold itself; both give the same prints.
        for (text, folds) in [("é  a\n b…\t∑x  ", true), ("é\u{a0} a\u{2028}b ", false)] {
            let table = LineTable::new(text);
            let printer = Printer::new(&table);
            assert_eq!(printer.lines.is_some(), folds);
            let n = table.char_len();
            for start in 0..=n {
                for end in start..=n {
                    let want = fingerprint_with(table.slice(start, end), &mut buf);
                    assert_eq!(
                        printer.print(start, end, &mut buf),
                        want,
                        "{text:?} {start}..{end}"
                    );
                }
            }
            for i in 0..table.len() {
                assert_eq!(
                    printer.line_weight(i, &mut buf),
                    printer.print_line(i, &mut buf).1,
                    "{text:?} line {i}"
                );
            }
        }
    }

    #[test]
    fn five_pastes_give_four_repeat_runs() {
        let b = block("x", 30);
        let text = format!("{b}\n{b}{b}\n\n{b}{b}");
        let table = LineTable::new(&text);
        let segs = segments(&table, 3, 60);
        assert_eq!(segs.len(), 5);
        assert!(!segs[0].repeat);
        assert!(segs[1..].iter().all(|s| s.repeat));
        let blen = b.chars().count();
        assert_eq!(segs[0].range, 0..blen + 1);
        // Every repeat holds exactly one copy of the block (and the blank
        // lines after it).
        for s in &segs[1..] {
            assert_eq!(
                table.slice(s.range.start, s.range.end).trim_end(),
                b.trim_end()
            );
        }
        assert_eq!(segs.last().map(|s| s.range.end), Some(table.char_len()));
    }

    /// The original's example: a block pasted five times gives 10 chunks, of
    /// which 2 are unique, although a copy is not a multiple of the chunk step.
    #[test]
    fn original_example_ten_chunks_two_unique() {
        let b = block("y", 28);
        let blen = b.chars().count();
        assert!(blen > 1000 && blen < 1850, "{blen}");
        assert_ne!(blen % 850, 0);
        let text = b.repeat(5);
        let table = LineTable::new(&text);
        let chars: Vec<char> = text.chars().collect();
        let segs = segments(&table, 3, 60);
        let mut chunks = Vec::new();
        for s in &segs {
            for c in chunk_chars(&chars[s.range.clone()], 1000, 150, 250) {
                chunks.push(c.start + s.range.start..c.end + s.range.start);
            }
        }
        let unique = unique_chunks(&table, &chunks, &segs);
        assert_eq!(chunks.len(), 10);
        assert_eq!(unique.iter().filter(|u| **u).count(), 2);
    }

    #[test]
    fn reindented_and_partial_repeats() {
        let b = block("z", 10);
        let re: String = b.lines().map(|l| format!("\t{}\n", l.trim())).collect();
        let partial: String = b.lines().take(5).map(|l| format!("{l}\n")).collect();
        let text = format!("{b}other_line_one()\n{re}other_line_two()\n{partial}");
        let table = LineTable::new(&text);
        let segs = segments(&table, 3, 60);
        let repeats: Vec<&str> = segs
            .iter()
            .filter(|s| s.repeat)
            .map(|s| table.slice(s.range.start, s.range.end))
            .collect();
        assert_eq!(repeats, vec![re.as_str(), partial.as_str()]);
        assert_eq!(segs.len(), 4);
    }

    #[test]
    fn short_common_lines_are_not_repeats() {
        let text = "fn a() {\n    x();\n    }\n}\n}\nfn b() {\n    y();\n    }\n}\n}\n";
        let table = LineTable::new(text);
        let segs = segments(&table, 3, 60);
        assert_eq!(segs.len(), 1);
        assert!(!segs[0].repeat);
    }

    #[test]
    fn identical_chunks_outside_runs_are_duplicates() {
        let text = "aaaa\nbbbb\naaaa\n";
        let table = LineTable::new(text);
        let segs = segments(&table, 3, 60);
        let unique = unique_chunks(&table, &[0..5, 5..10, 10..15], &segs);
        assert_eq!(unique, vec![true, true, false]);
        let unique = unique_chunks(&table, &[0..1, 4..5], &segs);
        assert_eq!(unique, vec![true, false]);
    }

    proptest::proptest! {
        /// Prints of random ranges of texts with long lines (line pieces
        /// copied as 64-byte blocks, folds across mask words) equal folding
        /// each range; line weights equal the fold's count.
        #[test]
        fn prints_equal_folding_each_range(
            lines in proptest::collection::vec(
                "[ \t]{0,6}([a-z(){}=.,]{1,30}( {1,2}|\t|\x0b)?){0,8}\r?", 0..14),
            cuts in proptest::collection::vec((0usize..2000, 0usize..2000), 1..8),
        ) {
            let text = lines.join("\n");
            let table = LineTable::new(&text);
            let printer = Printer::new(&table);
            proptest::prop_assert!(printer.lines.is_some());
            let n = table.char_len();
            let mut buf = Vec::new();
            for (a, b) in cuts {
                let (a, b) = (a % (n + 1), b % (n + 1));
                let (start, end) = (a.min(b), a.max(b));
                let want = fingerprint_with(table.slice(start, end), &mut buf);
                proptest::prop_assert_eq!(printer.print(start, end, &mut buf), want);
            }
            for i in 0..table.len() {
                let folded = printer.print_line(i, &mut buf);
                proptest::prop_assert_eq!(printer.line_weight(i, &mut buf), folded.1);
            }
        }
    }
}
