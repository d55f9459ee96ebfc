//! Step 1: split a prompt into the instruction and the code it is about.
//!
//! Three shapes are recognised, as the original does:
//! - a marker line (`# INSTRUCTION:`, `// TODO:`, `-- REFACTOR:`, …) within the
//!   last lines of the text starts the instruction, which runs to the end;
//! - a chat message where prose surrounds fenced code: the prose is the
//!   instruction, the fenced blocks are the code;
//! - an instruction given separately (the OpenAI system/user split), which is
//!   put before anything found in the text.
//!
//! The code keeps a map back to the original text so the plan can report kept
//! ranges as character offsets into what the caller sent.

use std::borrow::Cow;

/// Marker keywords; a marker line is one of these (any case), optionally after a
/// `#`, `//` or `--` comment lead, followed by a colon.
const MARKER_KEYWORDS: &[&str] = &["instruction", "refactor", "todo"];

/// A run of code characters that was copied from the input text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// First character of the run in the code.
    pub code_start: usize,
    /// First character of the run in the input text.
    pub text_start: usize,
    /// Length of the run in characters.
    pub len: usize,
}

/// Where the instruction in an [`Extracted`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// No instruction: the ranking query is the tail of the code.
    None,
    /// Only a separately given instruction.
    Given,
    /// A marker line in the text (possibly after a given instruction).
    Marker,
    /// Prose around fenced code (possibly after a given instruction).
    Prose,
}

/// The result of splitting a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted<'a> {
    /// The instruction, trimmed, or `None` when there is none.
    pub instruction: Option<String>,
    /// Where the instruction came from.
    pub source: Source,
    /// The code the instruction is about (the whole text when there is neither
    /// a marker nor a chat-style fence): a slice of the text unless it was
    /// put together from fenced blocks.
    pub code: Cow<'a, str>,
    /// The number of characters of `code`.
    pub code_chars: usize,
    /// The number of characters of the text.
    pub text_chars: usize,
    /// How `code` maps back to character offsets of the input text; characters
    /// of `code` not covered (separators between fenced blocks) map nowhere.
    pub pieces: Vec<Piece>,
    /// True when the code came out of fenced blocks.
    pub fenced: bool,
    /// The info string of the first fenced block, when it had one.
    pub fence_info: Option<String>,
    /// False when the text holds no run of three backticks or tildes, so
    /// neither it nor the code has a fence.
    pub may_fence: bool,
}

/// Splits `text` into instruction and code. `given` is a separately supplied
/// instruction (placed first); `marker_window` is how many of the last
/// non-blank-trailing lines are searched for a marker line.
pub fn extract<'a>(text: &'a str, given: Option<&str>, marker_window: usize) -> Extracted<'a> {
    let given = given.map(str::trim).filter(|g| !g.is_empty());
    let may_fence = super::language::may_hold_fence(text);
    let blocks = if may_fence {
        fenced_blocks(text)
    } else {
        Vec::new()
    };
    let mut found: Option<String> = None;
    let mut source = Source::None;
    let (mut code, mut code_chars, mut pieces, fenced, fence_info) = match chat_split(text, &blocks)
    {
        Some(chat) => {
            if let Some(prose) = chat.prose {
                found = Some(prose);
                source = Source::Prose;
            }
            let chars = chat.pieces.last().map_or(0, |p| p.code_start + p.len);
            (Cow::Owned(chat.code), chars, chat.pieces, true, chat.info)
        }
        None => (Cow::Borrowed(text), usize::MAX, Vec::new(), false, None),
    };
    let marker = if found.is_none() {
        find_marker(&code, marker_window)
    } else {
        None
    };
    let text_chars;
    if fenced {
        text_chars = text.chars().count();
    } else {
        // The code is the text up to the marker line, if any: counted once.
        let end = marker.unwrap_or(text.len());
        code_chars = text[..end].chars().count();
        text_chars = code_chars + text[end..].chars().count();
        pieces.push(Piece {
            code_start: 0,
            text_start: 0,
            len: code_chars,
        });
    }
    if let Some(byte) = marker {
        let instruction = code[byte..].trim().to_owned();
        let cut = if fenced {
            code[..byte].chars().count()
        } else {
            code_chars
        };
        match &mut code {
            Cow::Borrowed(c) => *c = &c[..byte],
            Cow::Owned(c) => c.truncate(byte),
        }
        code_chars = cut;
        truncate_pieces(&mut pieces, cut);
        if !instruction.is_empty() {
            found = Some(instruction);
            source = Source::Marker;
        }
    }
    let instruction = match (given, found) {
        (Some(g), Some(f)) => Some(format!("{g}\n\n{f}")),
        (Some(g), None) => {
            source = Source::Given;
            Some(g.to_owned())
        }
        (None, f) => f,
    };
    Extracted {
        instruction,
        source,
        code,
        code_chars,
        text_chars,
        pieces,
        fenced,
        fence_info,
        may_fence,
    }
}

/// Is `line` a marker line (`# TODO: …`, `INSTRUCTION: …`, `-- refactor: …`)?
pub fn is_marker_line(line: &str) -> bool {
    let mut t = line.trim_start();
    for lead in ["#", "//", "--"] {
        if let Some(rest) = t.strip_prefix(lead) {
            t = rest.trim_start_matches(lead.chars().next().unwrap_or('#'));
            t = t.trim_start();
            break;
        }
    }
    MARKER_KEYWORDS.iter().any(|kw| {
        t.get(..kw.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(kw))
            && t[kw.len()..]
                .trim_start_matches([' ', '\t'])
                .starts_with(':')
    })
}

/// Byte offset of the start of the earliest marker line among the last
/// `window` lines of `code` (trailing blank lines do not count).
fn find_marker(code: &str, window: usize) -> Option<usize> {
    if window == 0 {
        return None;
    }
    let body = code.trim_end();
    if body.is_empty() {
        return None;
    }
    // Starts of the last `window` lines, found from the end.
    let mut starts = Vec::with_capacity(window.min(64));
    let mut end = body.len();
    while starts.len() < window {
        match body[..end].rfind('\n') {
            Some(p) => {
                starts.push(p + 1);
                end = p;
            }
            None => {
                starts.push(0);
                break;
            }
        }
    }
    starts.reverse();
    starts.iter().copied().find(|&start| {
        let line = body[start..].split('\n').next().unwrap_or("");
        is_marker_line(line)
    })
}

/// Drops everything at or after code character `cut` from `pieces`.
fn truncate_pieces(pieces: &mut Vec<Piece>, cut: usize) {
    pieces.retain(|p| p.code_start < cut);
    if let Some(last) = pieces.last_mut() {
        last.len = last.len.min(cut - last.code_start);
    }
}

/// A fenced block found in a text, as byte offsets.
#[derive(Debug, Clone)]
struct Block {
    /// Start of the opening fence line.
    open: usize,
    /// Start of the content (after the opening fence line).
    content: usize,
    /// End of the content (start of the closing fence line, or end of text).
    content_end: usize,
    /// End of the closing fence line (or end of text).
    close_end: usize,
    /// The info string after the opening fence, trimmed.
    info: String,
}

/// Finds ``` and ~~~ fenced blocks that start at the beginning of a line
/// (indentation allowed). An unclosed fence runs to the end of the text.
fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(char, usize, usize, usize, String)> = None;
    let base = text.as_ptr() as usize;
    super::scan::lines_until(text, |line| {
        // The line with its line break, as `split_inclusive` gives it.
        let start = line.as_ptr() as usize - base;
        let offset = (start + line.len() + 1).min(text.len());
        // Only a line whose text starts with a backtick or a tilde matters;
        // most start with another visible character after their indent.
        if line
            .bytes()
            .find(|b| !matches!(b, b' ' | b'\t'))
            .is_some_and(|b| b.is_ascii_graphic() && b != b'`' && b != b'~')
        {
            return true;
        }
        let t = line.trim();
        let fence_char = t.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = fence_char.map_or(0, |c| t.chars().take_while(|x| *x == c).count());
        match (&open, fence_char) {
            (None, Some(c)) if run >= 3 => {
                let info = t[run..].trim().to_owned();
                if c == '`' && info.contains('`') {
                    return true;
                }
                open = Some((c, run, start, offset, info));
            }
            (Some((c, len, ..)), Some(fc)) if fc == *c && run >= *len && run == t.len() => {
                if let Some((_, _, open_at, content, info)) = open.take() {
                    blocks.push(Block {
                        open: open_at,
                        content,
                        content_end: start,
                        close_end: offset,
                        info,
                    });
                }
            }
            _ => {}
        }
        true
    });
    if let Some((_, _, open_at, content, info)) = open {
        blocks.push(Block {
            open: open_at,
            content,
            content_end: text.len(),
            close_end: text.len(),
            info,
        });
    }
    blocks
}

/// The number of characters of `s` that are not whitespace, or any number
/// from `cap` up once there are that many (the count stops a block later).
fn non_blank(s: &str, cap: usize) -> usize {
    let mut n = 0;
    let mut rest = s;
    while !rest.is_empty() && n < cap {
        let mut cut = rest.len().min(512);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (block, tail) = rest.split_at(cut);
        n += if block.is_ascii() {
            // ASCII whitespace as `char::is_whitespace` has it.
            block
                .bytes()
                .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
                .count()
        } else {
            block.chars().filter(|c| !c.is_whitespace()).count()
        };
        rest = tail;
    }
    n
}

/// A chat message split into prose and fenced code.
struct Chat {
    prose: Option<String>,
    code: String,
    pieces: Vec<Piece>,
    info: Option<String>,
}

/// Treats `text` as a chat message when it has fenced blocks and the text
/// around them is either shorter than the fenced code or does not look like
/// code (so a source file whose docstring happens to contain a fence is not
/// mistaken for one).
fn chat_split(text: &str, blocks: &[Block]) -> Option<Chat> {
    if blocks.is_empty() {
        return None;
    }
    let mut prose_parts: Vec<&str> = Vec::new();
    let mut last = 0;
    for b in blocks {
        prose_parts.push(&text[last..b.open]);
        last = b.close_end;
    }
    prose_parts.push(&text[last..]);
    let prose_len: usize = prose_parts.iter().map(|p| non_blank(p, usize::MAX)).sum();
    // Only whether the code is empty, or shorter than the prose, matters:
    // counting stops there (the code is most of a long message).
    let cap = prose_len.max(1);
    let mut code_len = 0;
    for b in blocks {
        if code_len >= cap {
            break;
        }
        code_len += non_blank(&text[b.content..b.content_end], cap - code_len);
    }
    if code_len == 0 {
        return None;
    }
    let prose: Vec<&str> = prose_parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    let prose = (!prose.is_empty()).then(|| prose.join("\n\n"));
    if code_len < prose_len
        && prose
            .as_deref()
            .is_some_and(|p| super::language::detect_language(p).is_some())
    {
        // More code outside the fences than in them: a source file.
        return None;
    }
    let mut code = String::new();
    let mut pieces = Vec::new();
    let mut code_chars = 0;
    for b in blocks {
        let content = &text[b.content..b.content_end];
        if content.is_empty() {
            continue;
        }
        if !code.is_empty() && !code.ends_with('\n') {
            code.push('\n');
            code_chars += 1;
        }
        let len = content.chars().count();
        pieces.push(Piece {
            code_start: code_chars,
            text_start: text[..b.content].chars().count(),
            len,
        });
        code.push_str(content);
        code_chars += len;
    }
    let info = blocks
        .iter()
        .map(|b| b.info.as_str())
        .find(|i| !i.is_empty())
        .map(str::to_owned);
    Some(Chat {
        prose,
        code,
        pieces,
        info,
    })
}

/// Maps a range of code characters to ranges of input-text characters (one per
/// piece it touches).
pub fn map_to_text(pieces: &[Piece], start: usize, end: usize) -> Vec<(usize, usize)> {
    pieces
        .iter()
        .filter_map(|p| {
            let s = start.max(p.code_start);
            let e = end.min(p.code_start + p.len);
            (s < e).then(|| {
                (
                    p.text_start + (s - p.code_start),
                    p.text_start + (e - p.code_start),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_forms() {
        for line in [
            "# INSTRUCTION: do it",
            "INSTRUCTION: do it",
            "# REFACTOR: x",
            "REFACTOR: x",
            "# TODO: x",
            "TODO: x",
            "// TODO: x",
            "-- refactor: x",
            "   //Instruction : x",
            "## todo: x",
        ] {
            assert!(is_marker_line(line), "{line}");
        }
        for line in [
            "todos: x",
            "x = 1 # TODO: not at start",
            "TODO",
            "/* TODO: x */",
            "instructions: x",
        ] {
            assert!(!is_marker_line(line), "{line}");
        }
    }

    #[test]
    fn marker_splits_code_and_instruction() {
        let text =
            "def f():\n    return 1\n\n# INSTRUCTION: make f return 2\n# and document it\n\n";
        let e = extract(text, None, 12);
        assert_eq!(e.source, Source::Marker);
        assert_eq!(
            e.instruction.as_deref(),
            Some("# INSTRUCTION: make f return 2\n# and document it")
        );
        assert_eq!(e.code, "def f():\n    return 1\n\n");
        assert_eq!(
            e.pieces,
            vec![Piece {
                code_start: 0,
                text_start: 0,
                len: 23
            }]
        );
    }

    #[test]
    fn marker_outside_window_is_code() {
        let mut text = String::from("// TODO: old note\n");
        for i in 0..20 {
            text.push_str(&format!("int x{i} = {i};\n"));
        }
        let e = extract(&text, None, 12);
        assert_eq!(e.instruction, None);
        assert_eq!(e.source, Source::None);
        assert_eq!(e.code, text);
    }

    #[test]
    fn earliest_marker_in_window_wins() {
        let text = "a\nb\nTODO: first\nmore\nINSTRUCTION: second\n";
        let e = extract(text, None, 12);
        assert_eq!(
            e.instruction.as_deref(),
            Some("TODO: first\nmore\nINSTRUCTION: second")
        );
        assert_eq!(e.code, "a\nb\n");
    }

    #[test]
    fn chat_message_prose_and_fences() {
        let text = "Please speed up `load`.\n\n```python\ndef load():\n    pass\n```\n\nAlso this:\n```\nx = 1\n```\n";
        let e = extract(text, None, 12);
        assert_eq!(e.source, Source::Prose);
        assert_eq!(
            e.instruction.as_deref(),
            Some("Please speed up `load`.\n\nAlso this:")
        );
        assert_eq!(e.code, "def load():\n    pass\nx = 1\n");
        assert!(e.fenced);
        assert_eq!(e.fence_info.as_deref(), Some("python"));
        let mapped = map_to_text(&e.pieces, 0, e.code.chars().count());
        let chars: Vec<char> = text.chars().collect();
        let got: String = mapped
            .iter()
            .map(|&(s, e)| chars[s..e].iter().collect::<String>())
            .collect();
        assert_eq!(got, e.code);
    }

    #[test]
    fn unclosed_fence_runs_to_end() {
        let text = "fix:\n```js\nlet a = 1;\nlet b = 2;\n";
        let e = extract(text, None, 12);
        assert_eq!(e.code, "let a = 1;\nlet b = 2;\n");
        assert_eq!(e.instruction.as_deref(), Some("fix:"));
    }

    #[test]
    fn fence_inside_mostly_code_is_not_chat() {
        let mut text = String::from("def f():\n    \"\"\"Example:\n```\nf()\n```\n    \"\"\"\n");
        for i in 0..10 {
            text.push_str(&format!("    value_{i} = compute_something({i})\n"));
        }
        let e = extract(&text, None, 12);
        assert!(!e.fenced);
        assert_eq!(e.code, text);
    }

    #[test]
    fn fenced_code_with_marker_and_no_prose() {
        let text = "```rust\nfn a() {}\n// TODO: rename a\n```\n";
        let e = extract(text, None, 12);
        assert_eq!(e.instruction.as_deref(), Some("// TODO: rename a"));
        assert_eq!(e.code, "fn a() {}\n");
        assert_eq!(e.source, Source::Marker);
    }

    #[test]
    fn given_instruction_goes_first() {
        let e = extract("x = 1\n# TODO: y\n", Some("  You are helpful. "), 12);
        assert_eq!(
            e.instruction.as_deref(),
            Some("You are helpful.\n\n# TODO: y")
        );
        let e = extract("x = 1\n", Some("Explain"), 12);
        assert_eq!(e.instruction.as_deref(), Some("Explain"));
        assert_eq!(e.source, Source::Given);
        assert_eq!(e.code, "x = 1\n");
        let e = extract("x = 1\n", Some("   "), 12);
        assert_eq!(e.instruction, None);
    }

    #[test]
    fn unicode_marker_text() {
        let e = extract("π = 3\n# TODO: ünïcödé ✓\n", None, 12);
        assert_eq!(e.instruction.as_deref(), Some("# TODO: ünïcödé ✓"));
        assert_eq!(e.code, "π = 3\n");
        assert_eq!(e.pieces[0].len, 6);
    }

    proptest::proptest! {
        /// The counted characters are the code's, whichever shape it came in.
        #[test]
        fn code_chars_are_counted(
            lines in proptest::collection::vec(
                "(# TODO: fix é|```py|```|~~~|[a-zé ]{0,12}|// INSTRUCTION: x)", 0..12),
            given in proptest::option::of("[a-z]{1,5}"),
        ) {
            let text = lines.join("\n");
            let e = extract(&text, given.as_deref(), 12);
            proptest::prop_assert_eq!(e.code_chars, e.code.chars().count());
            proptest::prop_assert_eq!(e.text_chars, text.chars().count());
            let mapped: usize = e.pieces.iter().map(|p| p.len).sum();
            proptest::prop_assert!(mapped <= e.code_chars);
        }
    }
}
