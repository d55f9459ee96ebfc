//! Step 5b: code structure, so a kept chunk does not cut a function in half.
//!
//! Blocks are found from indentation (which works for Python and for
//! formatted brace languages alike, and is not fooled by braces inside strings
//! or comments), plus the closing line at the header's own indentation
//! (`}`, `)`, `end`, …), an opening `{` on its own line (Allman / K&R C), a
//! multi-line signature (`) -> T {`), and the decorators, attributes and doc
//! comments attached above a header.

use super::lines::LineTable;

/// Modifiers skipped before a definition keyword or a C-style signature.
const MODIFIERS: &[&str] = &[
    "pub",
    "pub(crate)",
    "pub(super)",
    "export",
    "default",
    "async",
    "static",
    "public",
    "private",
    "protected",
    "internal",
    "unsafe",
    "extern",
    "inline",
    "virtual",
    "override",
    "abstract",
    "final",
    "const",
    "sealed",
    "open",
    "suspend",
    "local",
    "declare",
];

/// Keywords whose next word is the name being defined.
const DEF_KEYWORDS: &[&str] = &[
    "def",
    "fn",
    "function",
    "function*",
    "class",
    "struct",
    "enum",
    "trait",
    "interface",
    "type",
    "func",
    "union",
    "impl",
    "mod",
    "module",
    "fun",
    "object",
    "record",
    "macro_rules!",
    "namespace",
    "typedef",
];

/// Words that start a statement, so `word (` after them is not a signature.
const CONTROL: &[&str] = &[
    "if", "for", "while", "switch", "return", "else", "case", "catch", "do", "match", "sizeof",
    "new", "throw", "await", "yield", "elif", "with", "assert", "print", "delete", "goto",
];

/// The name a line defines, if it looks like the head of a definition:
/// `def name`, `fn name`, `function name`, `class Name`, `func (r T) Name(`,
/// `const name = (…) =>`, or a C-style `type name(…)` signature.
pub fn definition_name(line: &str) -> Option<&str> {
    let t = super::scan::trim(line);
    if t.is_empty() || t.ends_with(';') && !t.contains('{') {
        return None;
    }
    let lead = first_word(t);
    if matches!(lead, "let" | "var" | "const" | "val") {
        // `const name = (…) =>`, `let name = function`, `val f = lambda`.
        let after = t[lead.len()..].trim_start();
        let name = ident_prefix(after);
        let tail = &after[name.len()..];
        if !name.is_empty()
            && tail.trim_start().starts_with(['=', ':'])
            && (tail.contains("=>") || tail.contains("function") || tail.contains("lambda"))
        {
            return Some(name);
        }
    }
    let mut rest = t;
    loop {
        let word = first_word(rest);
        if word.is_empty() {
            break;
        }
        if MODIFIERS.contains(&word) || word.starts_with("extern \"") {
            rest = rest[word.len()..].trim_start();
            if rest.starts_with('"') {
                // extern "C"
                rest = rest
                    .get(1..)
                    .and_then(|r| r.find('"').map(|i| &r[i + 1..]))
                    .unwrap_or("")
                    .trim_start();
            }
            continue;
        }
        break;
    }
    let word = first_word(rest);
    if DEF_KEYWORDS.contains(&word) {
        let mut after = rest[word.len()..].trim_start();
        if word == "func" && after.starts_with('(') {
            // Go method: func (r *T) Name(
            after = after.find(')').map_or("", |i| &after[i + 1..]).trim_start();
        }
        if word == "impl" {
            after = skip_generics(after);
            // `impl Trait for Type`: the type is what the block is about.
            if let Some(i) = after.find(" for ") {
                after = after[i + 5..].trim_start();
            }
        }
        let name = ident_prefix(after.trim_start_matches('*'));
        return (!name.is_empty()).then_some(name);
    }
    if matches!(word, "let" | "var" | "val") {
        return None;
    }
    c_style_name(rest)
}

/// `int *name(`, `static void name (`, `std::string Foo::bar(`, or a method
/// shorthand `name(args) {`: the identifier right before the first `(`.
///
/// Prose mentions such as "override `_wrap_chunks()` in a subclass" are
/// rejected: the line must not be a comment, only type-like words may precede
/// the name, and after the parameter list only a body, a return type or a
/// qualifier may follow (or the list continues on the next line).
fn c_style_name(t: &str) -> Option<&str> {
    if t.starts_with(['#', '/', '*', '-', '@', '"', '\'', '`', '<']) {
        return None;
    }
    let paren = t.find('(')?;
    let head = t[..paren].trim_end();
    let type_like = |c: char| {
        c.is_alphanumeric()
            || matches!(
                c,
                '_' | ':' | '~' | '*' | '&' | '<' | '>' | ',' | ' ' | '\t' | '[' | ']'
            )
    };
    if !head.chars().all(type_like) || head.split_whitespace().count() > 6 {
        return None;
    }
    if !after_parameters_ok(&t[paren..]) {
        return None;
    }
    let name_start = head
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '~'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let qualified = &head[name_start..];
    let name = after_last_path_separator(qualified);
    if name.is_empty() || name.chars().next().is_some_and(|c| c.is_numeric()) {
        return None;
    }
    let before = head[..name_start].trim();
    let first = first_word(head);
    if CONTROL.contains(&first) || CONTROL.contains(&name) {
        return None;
    }
    // Either a return type precedes the name, or the line opens a body.
    let opens = t.trim_end().ends_with('{');
    (!before.is_empty() || opens).then_some(name)
}

/// Given the text from a signature's `(`, is what follows the parameter list
/// what a definition has there (nothing, `{`, `->`, `:`, `const`, `throws`,
/// …), or does the list continue on the next line?
fn after_parameters_ok(from_paren: &str) -> bool {
    let mut depth = 0usize;
    for (i, c) in from_paren.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let rest = from_paren[i + 1..].trim();
                    return rest.is_empty()
                        || rest.starts_with(['{', ':', '&'])
                        || rest.starts_with("->")
                        || rest.starts_with("=>")
                        || [
                            "const", "override", "noexcept", "throws", "where", "final",
                            "volatile", "mutable", "async",
                        ]
                        .iter()
                        .any(|q| rest.starts_with(q));
                }
            }
            _ => {}
        }
    }
    // Unclosed: a parameter list that goes on over several lines.
    from_paren.trim_end().ends_with(['(', ','])
}

/// The leading run of identifier characters (plus `!` for macros).
fn first_word(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!' || c == '*'))
        .unwrap_or(s.len());
    let word = &s[..end];
    // `pub(crate)` is one modifier.
    if word == "pub" && s[end..].starts_with('(') {
        return s.find(')').map_or(word, |i| &s[..=i]);
    }
    word
}

/// `s` without a leading `<…>` generic parameter list.
fn skip_generics(s: &str) -> &str {
    if !s.starts_with('<') {
        return s;
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return s[i + 1..].trim_start();
                }
            }
            _ => {}
        }
    }
    ""
}

/// The leading identifier characters of `s`.
fn ident_prefix(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Does the trimmed line start by closing something (`}`, `)`, `]`, `end`,
/// `fi`, `done`, `esac`)?
fn is_closer(t: &str) -> bool {
    t.starts_with(['}', ')', ']'])
        || t == "end"
        || t.starts_with("end ")
        || t.starts_with("end;")
        || t.starts_with("end)")
        || matches!(t, "fi" | "done" | "esac" | "fi;" | "done;" | "esac;")
}

/// Does the trimmed line end by opening a body or continuing a header?
fn opens(t: &str) -> bool {
    let t = strip_trailing_comment(t);
    t.ends_with(['{', '(', '[', ':', ','])
        || t.ends_with("=>")
        || t.ends_with(" do")
        || t.ends_with("then")
        || t.ends_with('\\')
}

/// `name` after its last `::`, as `rsplit("::").next()` gives it (bytes
/// scanned: a `str` pattern would first build a searcher).
fn after_last_path_separator(name: &str) -> &str {
    match name.as_bytes().windows(2).rposition(|w| w == b"::") {
        Some(i) => &name[i + 2..],
        None => name,
    }
}

/// `t` before its first ` //`, or else its first ` # ` (a line is short:
/// a scan of its bytes, where a `str` pattern would first build a searcher).
fn strip_trailing_comment(t: &str) -> &str {
    let find = |p: &[u8; 3]| t.as_bytes().windows(3).position(|w| w == p);
    match find(b" //").or_else(|| find(b" # ")) {
        Some(i) => t[..i].trim_end(),
        None => t,
    }
}

/// Is the trimmed line a decorator, attribute or comment that belongs to the
/// definition under it?
fn is_attachment(t: &str) -> bool {
    t.starts_with('@')
        || t.starts_with("#[")
        || t.starts_with("//")
        || t.starts_with("/*")
        || t.starts_with('*')
        || t.starts_with("--")
        || (t.starts_with('#') && !t.starts_with("#include") && !t.starts_with("#define"))
}

/// A block of whole lines, `first..=last`, with the line holding its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// First line (attached decorators and doc comments included).
    pub first: usize,
    /// The header line (the line that opens the body).
    pub header: usize,
    /// Last line (the closing line included).
    pub last: usize,
}

/// Block structure over a line table.
pub struct Structure<'t, 'a> {
    table: &'t LineTable<'a>,
}

impl<'t, 'a> Structure<'t, 'a> {
    /// Wraps a line table.
    pub fn new(table: &'t LineTable<'a>) -> Self {
        Structure { table }
    }

    fn trimmed(&self, i: usize) -> &'a str {
        self.table.trimmed(i)
    }

    fn indent(&self, i: usize) -> usize {
        self.table.lines()[i].indent
    }

    fn blank(&self, i: usize) -> bool {
        self.table.lines()[i].blank
    }

    /// The block whose head is at line `i`: walks up from a continuation
    /// (`) -> T {`, `} else {`, a lone `{`, `where`) to the line that starts the
    /// header, then over attached decorators and comments; walks down over the
    /// body (deeper-indented or blank lines) and the closing line.
    pub fn block_at(&self, i: usize) -> Block {
        let header = self.header_start(i);
        let last = self.block_end(header);
        let mut first = header;
        let d = self.indent(header);
        while first > 0 {
            let p = first - 1;
            if self.blank(p) || self.indent(p) != d || !is_attachment(self.trimmed(p)) {
                break;
            }
            first = p;
        }
        Block {
            first,
            header,
            last: last.max(i),
        }
    }

    /// From a line that continues a header, the line that starts it.
    fn header_start(&self, i: usize) -> usize {
        let mut h = i;
        let mut guard = 0;
        loop {
            guard += 1;
            let t = self.trimmed(h);
            let d = self.indent(h);
            let continues = is_closer(t) || t.starts_with('{') || t.starts_with("where");
            if !continues || guard > 64 {
                return h;
            }
            // Nearest line above at the same indentation that is not itself a
            // closer; give up at a shallower line.
            let mut k = h;
            let mut found = None;
            while k > 0 {
                k -= 1;
                if self.blank(k) {
                    continue;
                }
                let ind = self.indent(k);
                if ind < d {
                    break;
                }
                if ind == d {
                    found = Some(k);
                    break;
                }
            }
            match found {
                Some(k) if k < h => h = k,
                _ => return h,
            }
        }
    }

    /// Last line of the block headed at `header`.
    fn block_end(&self, header: usize) -> usize {
        let n = self.table.len();
        let d = self.indent(header);
        let mut last = header;
        let mut expecting_body = opens(self.trimmed(header));
        let mut i = header + 1;
        while i < n {
            if self.blank(i) {
                i += 1;
                continue;
            }
            let ind = self.indent(i);
            if ind > d {
                last = i;
                expecting_body = false;
                i += 1;
                continue;
            }
            // Deeper lines are body by indentation alone; only the others
            // are read.
            let t = self.trimmed(i);
            if ind == d && is_closer(t) {
                last = i;
                if !opens(t) {
                    break;
                }
                expecting_body = true;
            } else if ind == d && (t.starts_with('{') || t.starts_with("where")) && last == i - 1 {
                last = i;
                expecting_body = true;
            } else if ind == d && expecting_body && last == header && t.starts_with("->") {
                last = i;
            } else {
                break;
            }
            i += 1;
        }
        last
    }

    /// Blocks that contain line `i`, innermost first: the block headed at `i`
    /// itself (when `i` is not blank), then each enclosing block found by
    /// walking up to shallower indentation.
    pub fn enclosing(&self, i: usize) -> Vec<Block> {
        let n = self.table.len();
        let mut out = Vec::new();
        if i >= n {
            return out;
        }
        // Indentation that line `i` is at; a blank line takes the next
        // non-blank line's.
        let mut cur = match (i..n).find(|&k| !self.blank(k)) {
            Some(k) => self.indent(k),
            None => return out,
        };
        let mut top = i;
        if !self.blank(i) {
            let own = self.block_at(i);
            out.push(own);
            top = own.header.min(i);
            cur = self.indent(own.header);
        }
        while cur > 0 {
            let mut k = top;
            let mut found = None;
            while k > 0 {
                k -= 1;
                if !self.blank(k) && self.indent(k) < cur {
                    found = Some(k);
                    break;
                }
            }
            let Some(k) = found else { break };
            let block = self.block_at(k);
            if block.last >= i && block.first <= i {
                out.push(block);
            }
            top = block.header.min(k);
            let next = self.indent(block.header);
            if next >= cur {
                break;
            }
            cur = next;
        }
        out
    }

    /// Is the block's header a definition (function, method, class, …)?
    pub fn is_definition(&self, block: &Block) -> bool {
        definition_name(self.table.line_text(block.header)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_scans_equal_str_patterns() {
        let texts = [
            "",
            ":",
            "::",
            ":::",
            "a::b",
            "a:::b",
            "std::string Foo::bar",
            "x // y # z",
            "x # y // z",
            " //",
            "a #b # c",
            "a//b",
            "é # ü",
            "x  //  y",
        ];
        for t in texts {
            assert_eq!(
                after_last_path_separator(t),
                t.rsplit("::").next().unwrap_or(t),
                "{t:?}"
            );
            let reference = match t.find(" //").or_else(|| t.find(" # ")) {
                Some(i) => t[..i].trim_end(),
                None => t,
            };
            assert_eq!(strip_trailing_comment(t), reference, "{t:?}");
        }
    }

    #[test]
    fn definition_names() {
        let cases = [
            ("def parse_config(path):", Some("parse_config")),
            ("    async def fetch(self, url):", Some("fetch")),
            ("pub fn build_index(&self) -> Index {", Some("build_index")),
            ("pub(crate) async fn go() {", Some("go")),
            ("export async function loadUsers(db) {", Some("loadUsers")),
            ("function* gen() {", Some("gen")),
            ("class Widget(Base):", Some("Widget")),
            ("impl<T> Stack<T> {", Some("Stack")),
            (
                "func (s *Server) Handle(w http.ResponseWriter) {",
                Some("Handle"),
            ),
            ("const mapRows = (rows) => {", Some("mapRows")),
            ("static int count_words(const char *s)", Some("count_words")),
            ("char *dup_string(const char *s) {", Some("dup_string")),
            ("std::string Foo::name() const {", Some("name")),
            ("  render(props) {", Some("render")),
            ("struct Point {", Some("Point")),
            (
                "impl<'a, T: Clone> Display for Wrapper<'a, T> {",
                Some("Wrapper"),
            ),
            ("let handler = function (req) {", Some("handler")),
            ("const fn limit() -> usize {", Some("limit")),
            ("if (x) {", None),
            ("while (running(x)) {", None),
            ("foo(x);", None),
            ("return compute(x);", None),
            ("x = foo(1)", None),
            ("int count_words(const char *s);", None),
            ("const LIMIT = 10;", None),
            ("𞹉ਛ:v𐆐(x) {", None), // 𐆐 is a symbol, not a letter
            ("int größe(void)", Some("größe")),
            ("you'll probably have to override _wrap_chunks().", None),
            ("# main loop of _wrap_chunks(), we'll wind up here", None),
            (
                "not quite the same as words; see _wrap_chunks() for full",
                None,
            ),
            ("Call parse_config(path) before use", None),
            ("Foo::Foo(int x) : a(x) {", Some("Foo")),
            (
                "public static void main(String[] args) throws IOException {",
                Some("main"),
            ),
            ("static int count(", Some("count")),
            ("void draw(int x,", Some("draw")),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(definition_name(line), want, "{line}");
        }
    }

    fn blocks_of(text: &str, line: usize) -> Vec<(usize, usize)> {
        let t = LineTable::new(text);
        Structure::new(&t)
            .enclosing(line)
            .iter()
            .map(|b| (b.first, b.last))
            .collect()
    }

    #[test]
    fn python_method_in_class() {
        let text = "import os\n\nclass A:\n    @property\n    def f(self):\n        x = 1\n\n        return x\n\n    def g(self):\n        pass\n\nprint(1)\n";
        // Line 7 is `return x`.
        assert_eq!(blocks_of(text, 7), vec![(7, 7), (3, 7), (2, 10)]);
        // The decorator belongs to `def f`.
        assert_eq!(blocks_of(text, 4)[0], (3, 7));
    }

    #[test]
    fn brace_function_with_else() {
        let text = "int f(int x)\n{\n    if (x) {\n        a();\n    } else {\n        b();\n    }\n    return 0;\n}\nint g;\n";
        // Line 5 is `b();`.
        assert_eq!(blocks_of(text, 5), vec![(5, 5), (2, 6), (0, 8)]);
        // The lone `{` line resolves to the signature above it.
        assert_eq!(blocks_of(text, 1)[0], (0, 8));
    }

    #[test]
    fn multi_line_signature_and_doc_comment() {
        let text = "/// Adds.\n#[inline]\npub fn add(\n    a: i32,\n    b: i32,\n) -> i32 {\n    a + b\n}\n";
        assert_eq!(blocks_of(text, 6), vec![(6, 6), (0, 7)]);
        assert_eq!(blocks_of(text, 5)[0], (0, 7));
    }

    #[test]
    fn js_arrow_function() {
        let text =
            "const f = async (a) => {\n  if (a) {\n    return 1;\n  }\n  return 2;\n};\nf(1);\n";
        assert_eq!(blocks_of(text, 2), vec![(2, 2), (1, 3), (0, 5)]);
    }

    #[test]
    fn blank_and_out_of_range_lines() {
        let text = "def f():\n    a = 1\n\n    b = 2\n";
        assert_eq!(blocks_of(text, 2), vec![(0, 3)]);
        assert!(blocks_of(text, 99).is_empty());
        assert!(blocks_of("", 0).is_empty());
    }
}
