//! A line table over a text: where each line starts and ends, in characters and
//! bytes, and its indentation. Dedup, block detection and assembly all work on
//! whole lines, and the plan reports positions in characters, so both offsets
//! are kept side by side.

/// One line of a text. `end` offsets include the line's `\n`, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// First character of the line.
    pub start: usize,
    /// One past the last character (including the line break).
    pub end: usize,
    /// First byte of the line.
    pub byte_start: usize,
    /// One past the last byte (including the line break).
    pub byte_end: usize,
    /// Leading whitespace width in columns (a tab counts 4).
    pub indent: usize,
    /// True when the line holds only whitespace.
    pub blank: bool,
}

/// The lines of a text plus a character-to-byte map.
#[derive(Debug, Clone)]
pub struct LineTable<'a> {
    text: &'a str,
    lines: Vec<Line>,
    /// Per character of more than one byte, in order: its character offset
    /// and the bytes it and those before it have beyond one each (a byte
    /// offset is the character offset plus that of the characters before
    /// it). Empty for an ASCII text.
    wide: Vec<(usize, usize)>,
    /// Number of characters.
    chars: usize,
    /// The text's whitespace masks, which the table was read from (the
    /// fingerprints of `dedup` read them too).
    spaces: super::scan::Spaces,
    /// Per line: the byte range of its text between the ASCII whitespace
    /// around it, and whether only single spaces separate its words.
    trims: Vec<(u32, u32, bool)>,
}

impl<'a> LineTable<'a> {
    /// Builds the table (of a text under 4 GiB: trimmed bounds are kept in
    /// 32 bits) from the whitespace masks of `text` (one pass over
    /// its bytes; per ASCII line a few bit searches, no loop over its bytes;
    /// a line with multi-byte characters is also read char by char).
    pub fn new(text: &'a str) -> Self {
        use super::scan::Spaces;
        debug_assert!(u32::try_from(text.len()).is_ok(), "a text under 4 GiB");
        let b = text.as_bytes();
        let spaces = Spaces::new(b);
        // A character outside ASCII has continuation bytes (valid UTF-8).
        let ascii = spaces.cont.iter().all(|&w| w == 0);
        let breaks: usize = spaces.newline.iter().map(|w| w.count_ones() as usize).sum();
        let mut lines = Vec::with_capacity(breaks + 1);
        let mut wide = Vec::new();
        let mut trims = Vec::with_capacity(breaks + 1);
        let mut chars = 0;
        let mut byte = 0;
        let mut line = |end: usize| {
            let n = if ascii {
                end - byte
            } else {
                end - byte - Spaces::count(&spaces.cont, byte, end)
            };
            if n < end - byte {
                let mut extra = wide.last().map_or(0, |&(_, e)| e);
                for (c, ch) in text[byte..end].chars().enumerate() {
                    if ch.len_utf8() > 1 {
                        extra += ch.len_utf8() - 1;
                        wide.push((chars + c, extra));
                    }
                }
            }
            // Indentation: the leading run of spaces and tabs (a tab is 4).
            let lead = Spaces::first_clear_of(|k| spaces.space[k] | spaces.tab[k], byte, end);
            let mut indent = lead - byte;
            if lead > byte && super::scan::any_in(&spaces.tab, byte, lead) {
                indent += 3 * Spaces::count(&spaces.tab, byte, lead);
            }
            // Blank: only whitespace. The first byte that is not ASCII
            // whitespace decides, unless it starts a non-ASCII character
            // (which may be whitespace: U+00A0).
            let first = Spaces::first_clear(&spaces.white, lead, end);
            let blank = first == end || (b[first] >= 0x80 && text[first..end].trim().is_empty());
            // The text between the whitespace around it, and whether only
            // single spaces separate its words.
            let last = Spaces::last_clear_end(&spaces.white, first, end);
            let simple = first == last || !super::scan::any_in(&spaces.rough, first, last);
            trims.push((first as u32, last as u32, simple));
            lines.push(Line {
                start: chars,
                end: chars + n,
                byte_start: byte,
                byte_end: end,
                indent,
                blank,
            });
            chars += n;
            byte = end;
        };
        for (k, &word) in spaces.newline.iter().enumerate() {
            let mut m = word;
            while m != 0 {
                line(k * 64 + m.trailing_zeros() as usize + 1);
                m &= m - 1;
            }
        }
        if !text.is_empty() && !text.ends_with('\n') {
            line(text.len());
        }
        LineTable {
            text,
            lines,
            wide,
            chars,
            spaces,
            trims,
        }
    }

    /// The whitespace masks of the text.
    pub(crate) fn spaces(&self) -> &super::scan::Spaces {
        &self.spaces
    }

    /// Per line: the byte range of its text between the ASCII whitespace
    /// around it, and whether only single spaces separate its words (the
    /// text is under 4 GiB).
    pub(crate) fn trims(&self) -> &[(u32, u32, bool)] {
        &self.trims
    }

    /// The text the table was built over.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// All lines, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True for an empty text.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Number of characters in the text.
    pub fn char_len(&self) -> usize {
        self.chars
    }

    /// True when the text is ASCII (its characters are its bytes).
    pub fn is_ascii(&self) -> bool {
        self.chars == self.text.len()
    }

    /// Byte offset of character `c` (clamped to the end of the text).
    pub fn byte(&self, c: usize) -> usize {
        let c = c.min(self.chars);
        let before = self.wide.partition_point(|&(at, _)| at < c);
        c + before.checked_sub(1).map_or(0, |k| self.wide[k].1)
    }

    /// The text of the character range `start..end` (clamped).
    pub fn slice(&self, start: usize, end: usize) -> &'a str {
        let s = self.byte(start);
        let e = self.byte(end).max(s);
        &self.text[s..e]
    }

    /// The text of line `i` without its line break.
    pub fn line_text(&self, i: usize) -> &'a str {
        self.lines.get(i).map_or("", |l| {
            let b = self.text.as_bytes();
            let mut end = l.byte_end;
            while end > l.byte_start && matches!(b[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            &self.text[l.byte_start..end]
        })
    }

    /// The text of line `i` without the whitespace around it (as
    /// `str::trim`), its ASCII ends found in the whitespace masks.
    pub fn trimmed(&self, i: usize) -> &'a str {
        let Some(&(s, e, _)) = self.trims.get(i) else {
            return "";
        };
        let (s, e) = (s as usize, e as usize);
        let b = self.text.as_bytes();
        if s < e && (b[s] >= 0x80 || b[e - 1] >= 0x80) {
            // Maybe whitespace outside ASCII (U+00A0) at an end.
            return self.text[s..e].trim();
        }
        &self.text[s..e]
    }

    /// Index of the line holding character `c` (the last line for `c` at or
    /// past the end).
    pub fn line_of(&self, c: usize) -> usize {
        match self.lines.binary_search_by(|l| {
            if c < l.start {
                std::cmp::Ordering::Greater
            } else if c >= l.end {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Equal
            }
        }) {
            Ok(i) => i,
            Err(i) => i.min(self.lines.len().saturating_sub(1)),
        }
    }
}

/// [`LineTable::line_of`] of an ASCII text without the table: the line
/// breaks before each position are counted, carrying on from the previous
/// position when it is not further on, so positions in increasing order
/// read the text once.
pub struct LineCounter<'a> {
    text: &'a [u8],
    /// The position counted up to, and the line breaks before it.
    at: usize,
    breaks: usize,
}

impl<'a> LineCounter<'a> {
    /// The counter of `text`, given its number of characters: `None` unless
    /// that is its number of bytes (an ASCII text).
    pub fn new(text: &'a str, chars: usize) -> Option<Self> {
        (chars == text.len()).then_some(LineCounter {
            text: text.as_bytes(),
            at: 0,
            breaks: 0,
        })
    }

    /// Index of the line holding character `c` (the last line for `c` at or
    /// past the end).
    pub fn line_of(&mut self, c: usize) -> usize {
        let c = c.min(self.text.len());
        if c < self.at {
            (self.at, self.breaks) = (0, 0);
        }
        self.breaks += count_newlines(&self.text[self.at..c]);
        self.at = c;
        // Past the end's line break there is no line: the last one is
        // before it.
        if c == self.text.len() && self.text.last() == Some(&b'\n') {
            self.breaks - 1
        } else {
            self.breaks
        }
    }
}

/// The `\n` bytes of `b`, counted in byte lanes 128 bytes at a time (which
/// compiles to vector compares and adds; a count in `usize` lanes is a few
/// times slower).
fn count_newlines(b: &[u8]) -> usize {
    let blocks = b.chunks_exact(128);
    let rest = blocks.remainder();
    let whole: usize = blocks
        .map(|c| usize::from(c.iter().fold(0u8, |n, &x| n + u8::from(x == b'\n'))))
        .sum();
    whole + rest.iter().filter(|&&x| x == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_offsets() {
        let t = LineTable::new("aé\n\tb\n\n  c");
        assert_eq!(t.len(), 4);
        assert_eq!(t.char_len(), 10);
        let l = t.lines();
        assert_eq!(
            (l[0].start, l[0].end, l[0].byte_start, l[0].byte_end),
            (0, 3, 0, 4)
        );
        assert_eq!(l[1].indent, 4);
        assert!(l[2].blank);
        assert_eq!(l[3].indent, 2);
        assert_eq!(t.line_text(0), "aé");
        assert_eq!(t.slice(1, 4), "é\n\t");
        assert_eq!(t.line_of(0), 0);
        assert_eq!(t.line_of(2), 0);
        assert_eq!(t.line_of(3), 1);
        assert_eq!(t.line_of(9), 3);
        assert_eq!(t.line_of(99), 3);
        assert_eq!(t.byte(99), t.text().len());
    }

    #[test]
    fn ascii_and_unicode_tables_agree() {
        let ascii = "ab\n\tc  \n \n\nd";
        let wide = "áb\n\tc  \n \n\nd";
        let (a, w) = (LineTable::new(ascii), LineTable::new(wide));
        assert_eq!(a.char_len(), w.char_len());
        for (x, y) in a.lines().iter().zip(w.lines()) {
            assert_eq!(
                (x.start, x.end, x.indent, x.blank),
                (y.start, y.end, y.indent, y.blank)
            );
        }
        assert_eq!(a.byte(3), 3);
        assert_eq!(w.byte(3), 4);
        assert_eq!(a.byte(99), ascii.len());
        assert_eq!(w.byte(99), wide.len());
        assert_eq!(a.slice(1, 4), "b\n\t");
        assert_eq!(w.slice(1, 4), "b\n\t");
        assert!(a.lines()[2].blank && w.lines()[2].blank);
        assert!(!a.lines()[1].blank);
    }

    /// The table read line by line, char by char.
    fn lines_reference(text: &str) -> Vec<Line> {
        let (mut chars, mut bytes) = (0, 0);
        text.split_inclusive('\n')
            .map(|raw| {
                let n = raw.chars().count();
                let indent = raw
                    .bytes()
                    .take_while(|b| matches!(b, b' ' | b'\t'))
                    .map(|b| if b == b'\t' { 4 } else { 1 })
                    .sum();
                let line = Line {
                    start: chars,
                    end: chars + n,
                    byte_start: bytes,
                    byte_end: bytes + raw.len(),
                    indent,
                    blank: raw.trim().is_empty(),
                };
                chars += n;
                bytes += raw.len();
                line
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn lines_are_read_as_the_plain_reading(
            text in "([ \t]{0,9}(\\PC|[ \t\r\x0b\u{a0}\u{2003}]|[a-z]{1,70}){0,9}\n){0,40}[ a-z]{0,3}"
        ) {
            let t = LineTable::new(&text);
            proptest::prop_assert_eq!(t.lines(), &lines_reference(&text)[..]);
            proptest::prop_assert_eq!(t.char_len(), text.chars().count());
            proptest::prop_assert_eq!(t.is_ascii(), text.is_ascii());
            for i in 0..t.len() {
                proptest::prop_assert_eq!(t.trimmed(i), t.line_text(i).trim());
                // Single-spaced: no whitespace but lone spaces between the
                // line's ASCII-trimmed ends.
                let (s, e, simple) = t.trims()[i];
                let inner = &text.as_bytes()[s as usize..e as usize];
                let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
                let rough = inner.iter().any(|c| ws(c) && *c != b' ')
                    || inner.windows(2).any(|w| w[0] == b' ' && ws(&w[1]));
                proptest::prop_assert_eq!(simple, !rough);
            }
            let bytes: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            for (c, &b) in bytes.iter().enumerate() {
                proptest::prop_assert_eq!(t.byte(c), b);
            }
            proptest::prop_assert_eq!(t.byte(bytes.len() + 3), text.len());
        }
    }

    proptest::proptest! {
        #[test]
        fn counted_lines_are_the_table_s(
            text in "([ a-z]{0,5}\n{0,2}){0,12}",
            positions in proptest::collection::vec(0usize..80, 0..12),
        ) {
            let t = LineTable::new(&text);
            let mut counter = LineCounter::new(&text, text.len()).unwrap();
            for c in positions {
                proptest::prop_assert_eq!(counter.line_of(c), t.line_of(c), "at {}", c);
            }
        }
    }

    #[test]
    fn counter_needs_an_ascii_text() {
        assert!(LineCounter::new("é\n", 2).is_none());
        let mut c = LineCounter::new("a\nb\n", 4).unwrap();
        assert_eq!(
            [c.line_of(0), c.line_of(2), c.line_of(4), c.line_of(1)],
            [0, 1, 1, 0]
        );
    }

    #[test]
    fn empty() {
        let t = LineTable::new("");
        assert!(t.is_empty());
        assert_eq!(t.char_len(), 0);
        assert_eq!(t.line_of(0), 0);
        assert_eq!(t.slice(0, 5), "");
    }
}
