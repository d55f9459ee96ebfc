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
    /// Byte offset of every character, plus one entry for the end; left empty
    /// for an ASCII text, where character and byte offsets are the same.
    byte_of: Vec<usize>,
    /// Number of characters.
    chars: usize,
}

impl<'a> LineTable<'a> {
    /// Builds the table in one pass over `text`.
    pub fn new(text: &'a str) -> Self {
        let ascii = text.is_ascii();
        let mut lines = Vec::with_capacity(text.len() / 32 + 1);
        let mut byte_of = Vec::new();
        if !ascii {
            byte_of.reserve(text.len() + 1);
            byte_of.extend(text.char_indices().map(|(i, _)| i));
            byte_of.push(text.len());
        }
        let mut chars = 0;
        let mut byte = 0;
        let mut line = |end: usize| {
            let raw = &text[byte..end];
            let n = if ascii {
                raw.len()
            } else {
                raw.chars().count()
            };
            let mut indent = 0;
            let mut blank = true;
            for (i, &b) in raw.as_bytes().iter().enumerate() {
                match b {
                    b' ' => indent += 1,
                    b'\t' => indent += 4,
                    _ => {
                        // Blank when only whitespace follows (often just the
                        // line break); `i` is a char boundary (after ASCII).
                        blank = !b.is_ascii_graphic() && raw[i..].trim().is_empty();
                        break;
                    }
                }
            }
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
        super::scan::for_each_newline(text.as_bytes(), |i| line(i + 1));
        if !text.is_empty() && !text.ends_with('\n') {
            line(text.len());
        }
        LineTable {
            text,
            lines,
            byte_of,
            chars,
        }
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

    /// Byte offset of character `c` (clamped to the end of the text).
    pub fn byte(&self, c: usize) -> usize {
        if self.byte_of.is_empty() {
            c.min(self.text.len())
        } else {
            self.byte_of[c.min(self.chars)]
        }
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
            self.text[l.byte_start..l.byte_end].trim_end_matches(['\n', '\r'])
        })
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

    #[test]
    fn empty() {
        let t = LineTable::new("");
        assert!(t.is_empty());
        assert_eq!(t.char_len(), 0);
        assert_eq!(t.line_of(0), 0);
        assert_eq!(t.slice(0, 5), "");
    }
}
