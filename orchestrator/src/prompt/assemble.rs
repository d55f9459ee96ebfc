//! Step 6: write the prompt: the instruction first, then the kept code in one
//! fence tagged with the language, with a marker wherever code was left out
//! (`# … 42 lines omitted …`) so the model knows it sees part of the code.

use std::ops::Range;

use super::language::line_comment;
use super::lines::LineTable;

/// The kept `ranges` of the code in `table`, in order, with an omission marker
/// (a comment in `language` when it has line comments) for every left-out
/// stretch that holds more than whitespace. Always ends with a line break
/// unless empty.
pub fn render_kept(
    table: &LineTable<'_>,
    ranges: &[Range<usize>],
    language: Option<&str>,
) -> String {
    let comment = language.and_then(line_comment);
    let total = table.char_len();
    let mut out = String::with_capacity(ranges.iter().map(|r| r.len() + 1).sum::<usize>() + 64);
    let mut at = 0;
    let gap = |out: &mut String, from: usize, to: usize| {
        if from < to && !table.slice(from, to).trim().is_empty() {
            let lines = table.line_of(to - 1) - table.line_of(from) + 1;
            out.push_str(&omission_marker(lines, comment));
            out.push('\n');
        }
    };
    for r in ranges {
        let start = r.start.max(at).min(total);
        let end = r.end.min(total);
        if start >= end {
            continue;
        }
        gap(&mut out, at, start);
        out.push_str(table.slice(start, end));
        if !out.ends_with('\n') {
            out.push('\n');
        }
        at = end;
    }
    gap(&mut out, at, total);
    out
}

/// `… 42 lines omitted …`, behind the language's line-comment lead if any.
pub fn omission_marker(lines: usize, comment: Option<&str>) -> String {
    let noun = if lines == 1 { "line" } else { "lines" };
    match comment {
        Some(lead) => format!("{lead} … {lines} {noun} omitted …"),
        None => format!("… {lines} {noun} omitted …"),
    }
}

/// `code` inside a fence tagged `language`; the fence is longer than any run
/// of backticks that starts a line of the code, so it cannot be closed early.
pub fn fence(code: &str, language: Option<&str>) -> String {
    let mut out = String::with_capacity(code.len() + 32);
    push_fenced(&mut out, code, language);
    out
}

/// Appends [`fence`] of `code` to `out`.
fn push_fenced(out: &mut String, code: &str, language: Option<&str>) {
    let mut longest = 0;
    // Most code holds no backtick at all: one `memchr` decides.
    let has_ticks = memchr::memchr(b'`', code.as_bytes()).is_some();
    super::scan::lines_until(if has_ticks { code } else { "" }, |l| {
        // Most lines start with another visible character after their indent.
        let plain = l
            .bytes()
            .find(|b| !matches!(b, b' ' | b'\t'))
            .is_none_or(|b| b.is_ascii_graphic() && b != b'`');
        if !plain {
            longest = longest.max(l.trim_start().chars().take_while(|c| *c == '`').count());
        }
        true
    });
    let ticks = (longest + 1).max(3);
    let tag = language
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("");
    out.extend(std::iter::repeat_n('`', ticks));
    out.extend(tag.chars().filter(|c| *c != '`'));
    out.push('\n');
    out.push_str(code);
    if !(code.ends_with('\n') || code.is_empty()) {
        out.push('\n');
    }
    out.extend(std::iter::repeat_n('`', ticks));
}

/// The instruction (when there is one), a blank line, then `body`.
pub fn with_instruction(instruction: Option<&str>, body: &str) -> String {
    match instruction {
        Some(i) if !i.is_empty() => format!("{i}\n\n{body}"),
        _ => body.to_owned(),
    }
}

/// [`with_instruction`] of [`fence`] of `code`, written once.
pub fn with_instruction_fenced(
    instruction: Option<&str>,
    code: &str,
    language: Option<&str>,
) -> String {
    let instruction = instruction.filter(|i| !i.is_empty());
    let mut out = String::with_capacity(instruction.map_or(0, str::len) + code.len() + 40);
    if let Some(i) = instruction {
        out.push_str(i);
        out.push_str("\n\n");
    }
    push_fenced(&mut out, code, language);
    out
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one kept range is a real case
mod tests {
    use super::*;

    #[test]
    fn fenced_in_one_write_is_fence_then_instruction() {
        for code in ["", "a\n", "x = 1", "```\nq\n", "  ````js\nz\n"] {
            for instruction in [None, Some(""), Some("Fix it")] {
                for language in [None, Some("python"), Some("c++ x"), Some("`js")] {
                    assert_eq!(
                        with_instruction_fenced(instruction, code, language),
                        with_instruction(instruction, &fence(code, language)),
                        "{code:?} {instruction:?} {language:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn markers_between_kept_ranges() {
        let code = "a\nb\nc\nd\ne\n\n";
        let t = LineTable::new(code);
        // Keep `b` and `d`.
        let out = render_kept(&t, &[2..4, 6..8], Some("python"));
        assert_eq!(
            out,
            "# … 1 line omitted …\nb\n# … 1 line omitted …\nd\n# … 2 lines omitted …\n"
        );
        // Whitespace-only gaps get no marker; unknown language gets a bare marker.
        let out = render_kept(&t, &[0..8], Some("klingon"));
        assert_eq!(out, "a\nb\nc\nd\n… 2 lines omitted …\n");
        let out = render_kept(&t, &[0..10], None);
        assert_eq!(out, "a\nb\nc\nd\ne\n");
    }

    #[test]
    fn range_without_trailing_newline() {
        let t = LineTable::new("abc\ndef");
        assert_eq!(
            render_kept(&t, &[4..7], Some("c")),
            "// … 1 line omitted …\ndef\n"
        );
        assert_eq!(
            render_kept(&t, &[0..2], Some("c")),
            "ab\n// … 2 lines omitted …\n"
        );
    }

    #[test]
    fn fences() {
        assert_eq!(fence("x = 1\n", Some("python")), "```python\nx = 1\n```");
        assert_eq!(fence("x", None), "```\nx\n```");
        assert_eq!(
            fence("```js\nx\n```\n", Some("markdown")),
            "````markdown\n```js\nx\n```\n````"
        );
        assert_eq!(fence("x\n", Some("c++ `evil`")), "```c++\nx\n```");
        assert_eq!(
            fence("a\n  ````x\n\u{a0}`````\r\n\t``\n", None),
            "``````\na\n  ````x\n\u{a0}`````\r\n\t``\n``````"
        );
    }

    #[test]
    fn instruction_first() {
        assert_eq!(with_instruction(Some("Do X"), "body"), "Do X\n\nbody");
        assert_eq!(with_instruction(None, "body"), "body");
        assert_eq!(with_instruction(Some(""), "body"), "body");
    }
}
