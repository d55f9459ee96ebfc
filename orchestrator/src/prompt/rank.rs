//! Step 5a: score chunks against the instruction with BM25 over a code-aware
//! tokenizer.
//!
//! The tokenizer keeps whole identifiers (`parse_config`, `parseConfig`) and
//! also their parts (`parse`, `config`), so an instruction that says "the
//! config parser" still meets `parseConfig`, while one that names
//! `parse_config` matches it exactly and more strongly. Query terms that are
//! identifiers present in the code weigh more than prose words, and names the
//! instruction writes the way code does (snake_case, camelCase, in backticks or
//! followed by `(`) weigh most.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::HashSet;

use super::hash::WordMap;

/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;
/// Query weight of a name written the way code writes it and found in the code.
pub const WEIGHT_NAMED: f64 = 6.0;
/// Query weight of a plain word that is also a whole identifier in the code.
pub const WEIGHT_IDENT: f64 = 2.5;
/// Query weight of any other word.
pub const WEIGHT_WORD: f64 = 1.0;

/// English filler and the marker keywords, which say nothing about the code.
const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "can",
    "could",
    "do",
    "does",
    "for",
    "from",
    "has",
    "have",
    "how",
    "i",
    "in",
    "into",
    "is",
    "it",
    "its",
    "make",
    "me",
    "my",
    "of",
    "on",
    "or",
    "our",
    "please",
    "should",
    "so",
    "some",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "this",
    "those",
    "to",
    "use",
    "using",
    "was",
    "we",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "instruction",
    "refactor",
    "todo",
    "code",
    "function",
    "method",
    "following",
    "above",
    "below",
];

/// [`STOPWORDS`] as a set, built once per process (a token is looked up in
/// it three times per preparation).
static STOPWORD_SET: std::sync::LazyLock<
    HashSet<&'static str, std::hash::BuildHasherDefault<super::hash::Fnv>>,
> = std::sync::LazyLock::new(|| STOPWORDS.iter().copied().collect());

/// Longest of [`STOPWORDS`].
const STOPWORD_MAX: usize = 11;

/// Per length, per first letter: bit `z - 'a'` set when a stopword of that
/// length starts with that letter and ends with `z`. Most tokens are ruled
/// out by it before the set is hashed.
static STOPWORD_EDGES: [[u32; 26]; STOPWORD_MAX + 1] = {
    let mut t = [[0u32; 26]; STOPWORD_MAX + 1];
    let mut i = 0;
    while i < STOPWORDS.len() {
        let w = STOPWORDS[i].as_bytes();
        assert!(w.len() <= STOPWORD_MAX && w[0].is_ascii_lowercase());
        assert!(w[w.len() - 1].is_ascii_lowercase());
        t[w.len()][(w[0] - b'a') as usize] |= 1 << (w[w.len() - 1] - b'a');
        i += 1;
    }
    t
};

/// Is `token` (lowercased) one of [`STOPWORDS`]?
fn is_stopword(token: &str) -> bool {
    let b = token.as_bytes();
    let (Some(&a), Some(&z)) = (b.first(), b.last()) else {
        return false;
    };
    b.len() <= STOPWORD_MAX
        && a.is_ascii_lowercase()
        && z.is_ascii_lowercase()
        && STOPWORD_EDGES[b.len()][usize::from(a - b'a')] >> (z - b'a') & 1 != 0
        && STOPWORD_SET.contains(token)
}

/// One token: the lowercased text, and whether it is a whole identifier (as
/// opposed to a part of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// Lowercased text: a slice of the text tokenized when it is spelled so
    /// there (most words), else a copy.
    pub text: Cow<'a, str>,
    /// True for a whole identifier, false for a part of a compound one.
    pub whole: bool,
    /// True when the identifier is compound (snake_case, camelCase, digits).
    pub compound: bool,
}

/// Splits `text` into code-aware tokens: every identifier-like run of letters,
/// digits and `_` is emitted whole (lowercased), and when it is compound its
/// snake_case / camelCase / acronym parts follow. Pure numbers and one-letter
/// tokens are dropped.
pub fn tokenize(text: &str) -> Vec<Token<'_>> {
    // About one token per five bytes of prose: one allocation, mostly.
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    let (base, end) = (text.as_ptr() as usize, text.as_ptr() as usize + text.len());
    for_each_token(text, |token, whole, compound| {
        let at = token.as_ptr() as usize;
        let text = if (base..=end).contains(&at) && at + token.len() <= end {
            // A slice of `text` (a word already lowercase): borrowed.
            Cow::Borrowed(&text[at - base..at - base + token.len()])
        } else {
            Cow::Owned(token.to_owned())
        };
        out.push(Token {
            text,
            whole,
            compound,
        });
    });
    out
}

/// Calls `f(text, whole, compound)` for every token [`tokenize`] gives, in the
/// same order, without allocating per token: ranking reads every token of
/// every chunk, and a `String` each was most of its time.
pub fn for_each_token(text: &str, mut f: impl FnMut(&str, bool, bool)) {
    for_each_token_masked(text, u64::MAX, |token, whole, compound| {
        f(token.unwrap_or_default(), whole, compound);
    });
}

/// [`for_each_token`], passing `None` for a token whose length the mask
/// `lens` does not want (see [`word_tokens`]).
fn for_each_token_masked(text: &str, lens: u64, mut f: impl FnMut(Option<&str>, bool, bool)) {
    let mut scratch = Scratch::default();
    for_each_word(text, |word| word_tokens(word, &mut scratch, lens, &mut f));
}

/// Calls `f` for every maximal run of letters, digits and `_` in `text` (the
/// words tokens come from), scanning bytes when the text is ASCII.
pub fn for_each_word<'t>(text: &'t str, mut f: impl FnMut(&'t str)) {
    if text.is_ascii() {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if IDENT[usize::from(b[i])] {
                let start = i;
                while i < b.len() && IDENT[usize::from(b[i])] {
                    i += 1;
                }
                f(&text[start..i]);
            } else {
                i += 1;
            }
        }
    } else {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .for_each(f);
    }
}

/// ASCII letters, digits and `_`.
const IDENT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = (b as u8).is_ascii_alphanumeric() || b == b'_' as usize;
        b += 1;
    }
    t
};

/// `word` without leading and trailing `_` (bytes, so no char decoding).
pub fn trim_underscores(word: &str) -> &str {
    let b = word.as_bytes();
    let start = b.iter().position(|&c| c != b'_').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b'_').map_or(start, |e| e + 1);
    &word[start..end]
}

/// Buffers reused across the words of one text.
#[derive(Default)]
pub(super) struct Scratch {
    whole: String,
    part: String,
    pub(super) parts: Vec<(usize, usize)>,
}

/// Does the length mask `lens` (bit `n`: a wanted token is `n` bytes long, bit
/// 63: 63 or more) want a token of `len` bytes?
fn wants(lens: u64, len: usize) -> bool {
    lens & 1 << len.min(63) != 0
}

/// The tokens of one identifier-like word. A token of an ASCII word whose
/// length `lens` does not want is passed as `None` (counted, not lowercased);
/// lowercasing keeps an ASCII token's length, so the mask is exact.
pub(super) fn word_tokens(
    word: &str,
    s: &mut Scratch,
    lens: u64,
    f: &mut impl FnMut(Option<&str>, bool, bool),
) {
    let word = trim_underscores(word);
    if word.len() >= 2 && word.bytes().all(|b| b.is_ascii_lowercase()) {
        // Fast path for the common plain word: no parts, already lowercase.
        f(Some(word), true, false);
        return;
    }
    if word.is_ascii() {
        if word.len() < 2 || word.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        split_identifier(word, &mut s.parts);
        let compound = s.parts.len() > 1;
        if compound {
            for &(start, end) in &s.parts {
                // A part of a compound word is shorter than it, so never
                // equal to the whole.
                let part = &word[start..end];
                if part.len() >= 2 && !part.bytes().all(|b| b.is_ascii_digit()) {
                    if wants(lens, part.len()) {
                        lowercase_into(part, &mut s.part);
                        f(Some(&s.part), false, false);
                    } else {
                        f(None, false, false);
                    }
                }
            }
        }
        if wants(lens, word.len()) {
            lowercase_into(word, &mut s.whole);
            f(Some(&s.whole), true, compound);
        } else {
            f(None, true, compound);
        }
        return;
    }
    if word.chars().nth(1).is_none() || word.chars().all(char::is_numeric) {
        return;
    }
    split_identifier(word, &mut s.parts);
    let compound = s.parts.len() > 1;
    lowercase_into(word, &mut s.whole);
    if compound {
        for &(start, end) in &s.parts {
            lowercase_into(&word[start..end], &mut s.part);
            if s.part.chars().nth(1).is_some()
                && !s.part.chars().all(char::is_numeric)
                && s.part != s.whole
            {
                f(Some(&s.part), false, false);
            }
        }
    }
    f(Some(&s.whole), true, compound);
}

/// `out` = `text.to_lowercase()`, reusing `out`'s buffer.
fn lowercase_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
    } else {
        out.push_str(&text.to_lowercase());
    }
}

/// Byte ranges of the parts of an identifier: split at `_`, lower→upper
/// changes, the end of an acronym (`HTTPServer` → `HTTP`, `Server`) and
/// letter/digit changes.
pub(super) fn split_identifier(word: &str, out: &mut Vec<(usize, usize)>) {
    out.clear();
    if word.is_ascii() {
        // The same rule over bytes: ASCII case and digit tests.
        let b = word.as_bytes();
        let mut start = 0;
        for i in 0..b.len() {
            let c = b[i];
            if c == b'_' {
                if i > start {
                    out.push((start, i));
                }
                start = i + 1;
                continue;
            }
            if i > start {
                let prev = b[i - 1];
                let boundary = (prev.is_ascii_lowercase() && c.is_ascii_uppercase())
                    || (prev.is_ascii_uppercase()
                        && c.is_ascii_uppercase()
                        && b.get(i + 1).is_some_and(u8::is_ascii_lowercase))
                    || (prev.is_ascii_alphabetic() && c.is_ascii_digit())
                    || (prev.is_ascii_digit() && c.is_ascii_alphabetic());
                if boundary {
                    out.push((start, i));
                    start = i;
                }
            }
        }
        if b.len() > start {
            out.push((start, b.len()));
        }
        return;
    }
    let mut base = 0;
    for piece in word.split('_') {
        let offset = base;
        base += piece.len() + 1;
        if piece.is_empty() {
            continue;
        }
        let mut start = 0;
        let mut prev: Option<char> = None;
        let mut chars = piece.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if let Some(prev) = prev {
                let next = chars.peek().map(|&(_, n)| n);
                let boundary = (prev.is_lowercase() && c.is_uppercase())
                    || (prev.is_uppercase()
                        && c.is_uppercase()
                        && next.is_some_and(char::is_lowercase))
                    || (prev.is_alphabetic() && c.is_numeric())
                    || (prev.is_numeric() && c.is_alphabetic());
                if boundary {
                    out.push((offset + start, offset + i));
                    start = i;
                }
            }
            prev = Some(c);
        }
        out.push((offset + start, offset + piece.len()));
    }
}

/// A weighted query term.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTerm {
    /// Lowercased token text.
    pub text: String,
    /// Weight multiplying this term's BM25 contribution.
    pub weight: f64,
}

/// The ranking query built from an instruction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Distinct weighted terms.
    pub terms: Vec<QueryTerm>,
    /// Identifiers the instruction names the way code writes them and that
    /// occur whole in the code, exactly as written (case kept).
    pub named: Vec<String>,
    /// Plain instruction words that are whole identifiers in the code, as
    /// written in the code (case kept) — weaker evidence of a named symbol.
    pub mentioned: Vec<String>,
}

/// Builds the query for `instruction` against the code's identifiers.
/// `code_identifiers` maps each lowercased whole identifier of the code to its
/// spelling in the code.
pub fn build_query<S: std::hash::BuildHasher>(
    instruction: &str,
    code_identifiers: &HashMap<String, String, S>,
) -> Query {
    build_query_from(instruction, &tokenize(instruction), code_identifiers)
}

/// [`build_query`] with the instruction's tokens already made.
pub fn build_query_from<S: std::hash::BuildHasher>(
    instruction: &str,
    tokens: &[Token],
    code_identifiers: &HashMap<String, String, S>,
) -> Query {
    let code_like = code_like_names(instruction);
    let mut weights: Vec<(String, f64)> = Vec::new();
    let mut named = Vec::new();
    let mut mentioned = Vec::new();
    for token in tokens {
        if is_stopword(&token.text) {
            continue;
        }
        let text: &str = &token.text;
        let in_code = token.whole && code_identifiers.contains_key(text);
        let weight = if in_code && (token.compound || code_like.iter().any(|c| c == text)) {
            push_unique(&mut named, code_identifiers.get(text));
            WEIGHT_NAMED
        } else if in_code {
            push_unique(&mut mentioned, code_identifiers.get(text));
            WEIGHT_IDENT
        } else {
            WEIGHT_WORD
        };
        match weights.iter_mut().find(|(t, _)| t == text) {
            Some(entry) => entry.1 = entry.1.max(weight),
            None => weights.push((text.to_owned(), weight)),
        }
    }
    Query {
        terms: weights
            .into_iter()
            .map(|(text, weight)| QueryTerm { text, weight })
            .collect(),
        named,
        mentioned,
    }
}

/// The texts of the terms [`build_query_from`] gives for an instruction's
/// `tokens`, in its order: they do not depend on the code (the weights do),
/// so the code can be scanned for them before the query is built.
pub fn query_terms<'t>(tokens: &'t [Token<'_>]) -> Vec<&'t str> {
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if !is_stopword(&t.text) && !out.contains(&&*t.text) {
            out.push(&t.text);
        }
    }
    out
}

/// The distinct whole tokens among `tokens` that are not stopwords: the
/// identifiers [`build_query_from`] may look up in the code (it skips
/// stopwords before any lookup).
pub fn whole_tokens<'t>(tokens: &'t [Token<'_>]) -> Vec<&'t str> {
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if t.whole && !is_stopword(&t.text) && !out.contains(&&*t.text) {
            out.push(&t.text);
        }
    }
    out
}

fn push_unique(list: &mut Vec<String>, name: Option<&String>) {
    if let Some(name) = name
        && !list.contains(name)
    {
        list.push(name.clone());
    }
}

/// Lowercased words the instruction writes as code: inside backticks, or
/// directly followed by `(` (a short list: an instruction names a few).
fn code_like_names(instruction: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, quoted) in instruction.split('`').enumerate() {
        if i % 2 == 1 {
            for_each_token(quoted, |t, whole, _| {
                if whole && !out.iter().any(|o| o == t) {
                    out.push(t.to_owned());
                }
            });
        }
    }
    let mut start = None;
    for (i, c) in instruction.char_indices() {
        if c.is_alphanumeric() || c == '_' {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take()
            && c == '('
        {
            let name = instruction[s..i].to_lowercase();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The query used when there is no instruction: the tail of the code, every
/// term weighing the same.
pub fn tail_query(tail: &str) -> Query {
    let mut terms: Vec<QueryTerm> = Vec::new();
    for token in tokenize(tail) {
        if !terms.iter().any(|t| t.text == token.text) {
            terms.push(QueryTerm {
                text: token.text.into_owned(),
                weight: WEIGHT_WORD,
            });
        }
    }
    Query {
        terms,
        named: Vec::new(),
        mentioned: Vec::new(),
    }
}

/// BM25 scores of `texts` for `query` (see [`bm25`]), tokenizing each text
/// once and counting only the query's terms.
pub fn score(texts: &[&str], query: &Query) -> Vec<f64> {
    let terms = TermSlots::new(query);
    let counts: Vec<TermCounts> = texts
        .iter()
        .map(|text| {
            let mut c = terms.empty();
            for_each_token_masked(text, terms.lens, |token, _, _| terms.count(&mut c, token));
            c
        })
        .collect();
    bm25_counts(&counts, query, &terms.of_term)
}

/// BM25 scores of `docs` (each a list of token texts) for `query`; IDF is the
/// non-negative `ln(1 + (N - df + 0.5) / (df + 0.5))` form.
pub fn bm25(docs: &[Vec<String>], query: &Query) -> Vec<f64> {
    let terms = TermSlots::new(query);
    let counts: Vec<TermCounts> = docs
        .iter()
        .map(|doc| {
            let mut c = terms.empty();
            for token in doc {
                terms.count(&mut c, Some(token));
            }
            c
        })
        .collect();
    bm25_counts(&counts, query, &terms.of_term)
}

/// What BM25 needs of one document: its length in tokens and the frequency of
/// each distinct query term.
pub(super) struct TermCounts {
    pub(super) len: usize,
    pub(super) tf: Vec<u32>,
}

/// The distinct texts of a query's terms, each with a slot in [`TermCounts`].
struct TermSlots<'q> {
    slots: WordMap<&'q str, usize>,
    /// Bit `n` set when a term is `n` bytes long (bit 63: 63 or more), so
    /// most tokens are ruled out before hashing.
    lens: u64,
    /// Slot of each query term.
    of_term: Vec<usize>,
}

impl<'q> TermSlots<'q> {
    fn new(query: &'q Query) -> Self {
        let mut slots: WordMap<&'q str, usize> = WordMap::default();
        let of_term = query
            .terms
            .iter()
            .map(|t| {
                let next = slots.len();
                *slots.entry(t.text.as_str()).or_insert(next)
            })
            .collect();
        let lens = query
            .terms
            .iter()
            .fold(0, |m, t| m | 1u64 << t.text.len().min(63));
        TermSlots {
            slots,
            lens,
            of_term,
        }
    }

    fn empty(&self) -> TermCounts {
        TermCounts {
            len: 0,
            tf: vec![0; self.slots.len()],
        }
    }

    /// Counts one token; `None` is a token no term can equal.
    fn count(&self, counts: &mut TermCounts, token: Option<&str>) {
        counts.len += 1;
        let Some(token) = token.filter(|t| wants(self.lens, t.len())) else {
            return;
        };
        if let Some(&slot) = self.slots.get(token) {
            counts.tf[slot] += 1;
        }
    }
}

/// The BM25 formula over counts; `of_term` gives each query term's slot.
pub(super) fn bm25_counts(docs: &[TermCounts], query: &Query, of_term: &[usize]) -> Vec<f64> {
    let n = docs.len();
    if n == 0 {
        return Vec::new();
    }
    let avg_len = docs.iter().map(|d| d.len).sum::<usize>() as f64 / n as f64;
    let mut scores = vec![0.0; n];
    for (term, &slot) in query.terms.iter().zip(of_term) {
        let df = docs.iter().filter(|d| d.tf[slot] > 0).count();
        if df == 0 {
            continue;
        }
        let idf = (1.0 + (n as f64 - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
        for (i, d) in docs.iter().enumerate() {
            if d.tf[slot] > 0 {
                let tf = f64::from(d.tf[slot]);
                let len_norm = if avg_len > 0.0 {
                    1.0 - B + B * d.len as f64 / avg_len
                } else {
                    1.0
                };
                scores[i] += term.weight * idf * tf * (K1 + 1.0) / (tf + K1 * len_norm);
            }
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'t>(tokens: &'t [Token<'_>]) -> Vec<&'t str> {
        tokens.iter().map(|t| &*t.text).collect()
    }

    #[test]
    fn tokenizer_splits_and_keeps_whole() {
        let t = tokenize("let cfg = parse_config(HTTPServer.maxRetries2, x);");
        assert_eq!(
            texts(&t),
            vec![
                "let",
                "cfg",
                "parse",
                "config",
                "parse_config",
                "http",
                "server",
                "httpserver",
                "max",
                "retries",
                "maxretries2",
            ]
        );
        assert!(
            t.iter()
                .any(|x| x.text == "parse_config" && x.whole && x.compound)
        );
        assert!(t.iter().any(|x| x.text == "cfg" && x.whole && !x.compound));
    }

    /// The tokenizer as first written (a `String` per token and part), kept
    /// to check the allocation-free one against.
    fn tokenize_reference(text: &str) -> Vec<Token<'static>> {
        fn split(word: &str) -> Vec<String> {
            let mut parts = Vec::new();
            for piece in word.split('_').filter(|p| !p.is_empty()) {
                let chars: Vec<char> = piece.chars().collect();
                let mut current = String::new();
                for (i, &c) in chars.iter().enumerate() {
                    if i > 0 {
                        let prev = chars[i - 1];
                        let next = chars.get(i + 1).copied();
                        let boundary = (prev.is_lowercase() && c.is_uppercase())
                            || (prev.is_uppercase()
                                && c.is_uppercase()
                                && next.is_some_and(|n| n.is_lowercase()))
                            || (prev.is_alphabetic() && c.is_numeric())
                            || (prev.is_numeric() && c.is_alphabetic());
                        if boundary && !current.is_empty() {
                            parts.push(current.to_lowercase());
                            current.clear();
                        }
                    }
                    current.push(c);
                }
                if !current.is_empty() {
                    parts.push(current.to_lowercase());
                }
            }
            parts
        }
        let mut out = Vec::new();
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            let word = word.trim_matches('_');
            if word.chars().count() < 2 || word.chars().all(|c| c.is_numeric()) {
                continue;
            }
            let parts = split(word);
            let compound = parts.len() > 1;
            let whole = word.to_lowercase();
            for part in &parts {
                if part.chars().count() >= 2
                    && !part.chars().all(|c| c.is_numeric())
                    && compound
                    && *part != whole
                {
                    out.push(Token {
                        text: part.clone().into(),
                        whole: false,
                        compound: false,
                    });
                }
            }
            out.push(Token {
                text: whole.into(),
                whole: true,
                compound,
            });
        }
        out
    }

    #[test]
    fn tokenizer_matches_the_reference() {
        for text in [
            "let cfg = parse_config(HTTPServer.maxRetries2, x);",
            "__init__ _wrap_chunks __ a_b a1b2 ABCdef XMLHttpRequest2Go x9 99 9x",
            "größe_berechnen ΣΑΣ_Λόγος İstanbul_ID ǅemal_x Kelvin_K 0x1F",
            "snake_case_name camelCaseName PascalCase SCREAMING_CASE mixed_Case9x",
            "",
            "_ __ ___ a _a a_ 1 12 _1_",
        ] {
            assert_eq!(tokenize(text), tokenize_reference(text), "{text:?}");
        }
    }

    #[test]
    fn score_is_bm25_of_the_tokens() {
        let texts = [
            "def parse_config(path):\n    return load(path)",
            "fn parseConfig() { loadAll(); load(); }",
            "nothing here",
            "",
        ];
        let docs: Vec<Vec<String>> = texts
            .iter()
            .map(|t| {
                tokenize(t)
                    .into_iter()
                    .map(|t| t.text.into_owned())
                    .collect()
            })
            .collect();
        let q = tail_query("parse config load");
        let s = score(&texts, &q);
        assert_eq!(s, bm25(&docs, &q));
        assert!(s[0] > 0.0 && s[1] > 0.0 && s[2] == 0.0 && s[3] == 0.0);
    }

    #[test]
    fn tokenizer_unicode_and_numbers() {
        assert_eq!(
            texts(&tokenize("größe_berechnen 42 0x1F a")),
            vec!["größe", "berechnen", "größe_berechnen", "0x1f"]
        );
        assert!(tokenize("").is_empty());
        assert!(tokenize("___ __init__").iter().any(|t| t.text == "init"));
    }

    #[test]
    fn query_weights_named_identifiers_most() {
        let mut ids = HashMap::new();
        for name in ["parse_config", "load", "Widget"] {
            ids.insert(name.to_lowercase(), name.to_owned());
        }
        let q = build_query(
            "Please make parse_config faster and call load() on the widget",
            &ids,
        );
        let w = |t: &str| q.terms.iter().find(|x| x.text == t).map(|x| x.weight);
        assert_eq!(w("parse_config"), Some(WEIGHT_NAMED));
        assert_eq!(w("load"), Some(WEIGHT_NAMED));
        assert_eq!(w("widget"), Some(WEIGHT_IDENT));
        assert_eq!(w("faster"), Some(WEIGHT_WORD));
        assert_eq!(w("parse"), Some(WEIGHT_WORD));
        assert_eq!(w("the"), None);
        assert_eq!(q.named, vec!["parse_config".to_owned(), "load".to_owned()]);
        assert_eq!(q.mentioned, vec!["Widget".to_owned()]);
        let q = build_query("fix `Widget`", &ids);
        assert_eq!(q.named, vec!["Widget".to_owned()]);
    }

    #[test]
    fn stopword_set_is_the_list() {
        for w in STOPWORDS {
            assert!(is_stopword(w), "{w}");
        }
        assert!(STOPWORDS.iter().all(|w| w.len() <= STOPWORD_MAX));
        for w in [
            "",
            "parse",
            "thes",
            "instructions",
            "x",
            "Th",
            "wha",
            "whet",
            "é",
        ] {
            assert!(!is_stopword(w), "{w}");
        }
    }

    #[test]
    fn query_terms_are_the_querys() {
        let mut ids = HashMap::new();
        ids.insert("load".to_owned(), "load".to_owned());
        for text in [
            "Please make parse_config faster and call load() on the widget, the widget",
            "",
            "the a an",
            "größe_berechnen `Widget` HTTPServer x_y_z load load",
        ] {
            let q = build_query(text, &ids);
            let texts: Vec<&str> = q.terms.iter().map(|t| t.text.as_str()).collect();
            let tokens = tokenize(text);
            assert_eq!(query_terms(&tokens), texts, "{text:?}");
            assert_eq!(build_query_from(text, &tokens, &ids), q);
        }
    }

    #[test]
    fn bm25_prefers_matching_and_rarer_terms() {
        let docs: Vec<Vec<String>> = ["def alpha beta beta", "def gamma delta", "def alpha gamma"]
            .iter()
            .map(|d| {
                tokenize(d)
                    .into_iter()
                    .map(|t| t.text.into_owned())
                    .collect()
            })
            .collect();
        let q = tail_query("beta");
        let s = bm25(&docs, &q);
        assert!(s[0] > 0.0 && s[1] == 0.0 && s[2] == 0.0);
        let q = tail_query("alpha delta");
        let s = bm25(&docs, &q);
        assert!(s[1] > s[0], "{s:?}");
        assert!(bm25(&[], &q).is_empty());
        let s = bm25(&[vec![], vec![]], &q);
        assert_eq!(s, vec![0.0, 0.0]);
    }
}
