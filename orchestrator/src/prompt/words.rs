//! The code's words, read once for ranking.
//!
//! Ranking needs, for every unique chunk, its length in tokens and how often
//! each query term occurs in it, and the query itself needs the code's
//! spelling of the identifiers the instruction names. Chunks overlap (150 of
//! 1,000 characters), so tokenizing each chunk reads much of the code twice,
//! and looking the names up read it all a third time. Here the code is
//! tokenized once: per word (a maximal run of letters, digits and `_`) its
//! byte span and the number of tokens before it, and where the query's terms
//! occur. A chunk's counts are then a difference of prefix sums, plus the
//! (at most two) words its edges cut, tokenized on their own: exactly what
//! [`rank::score`](super::rank::score) counts over the chunk's text.

use std::ops::Range;

use super::hash::WordMap;

use super::rank::{self, Query, TermCounts};
use super::scan::{Masks, any_in, for_each_run};

/// Byte classes of ASCII word characters, OR-ed over a word to classify it.
const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const UNDER: u8 = 8;
const WIDE: u8 = 16;

/// [`LOWER`], [`UPPER`], [`DIGIT`] or [`UNDER`] for ASCII word bytes,
/// [`WIDE`] for bytes of non-ASCII characters, 0 for any other byte.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 128;
    while b < 256 {
        t[b] = WIDE;
        b += 1;
    }
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            LOWER
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c == b'_' {
            UNDER
        } else {
            0
        };
        b += 1;
    }
    t
};

/// A filter of short lowercase strings by length and by first and last
/// byte: most words of the code are ruled out by two bit tests before any
/// comparison.
#[derive(Default)]
struct Filter {
    /// Bit `n`: some string is `n` bytes long (bit 63: 63 or more).
    lens: u64,
    /// Bit `edge_key(first, last)`: some string starts and ends so (ASCII
    /// case folded; other bytes share keys, so the filter only rules out).
    edges: [u64; 16],
}

impl Filter {
    fn new<'s>(strings: impl IntoIterator<Item = &'s str>) -> Filter {
        let mut f = Filter::default();
        for s in strings {
            f.lens |= 1u64 << s.len().min(63);
            if let (Some(&a), Some(&z)) = (s.as_bytes().first(), s.as_bytes().last()) {
                let k = edge_key(a, z);
                f.edges[k / 64] |= 1u64 << (k % 64);
            }
        }
        f
    }

    /// May `token` (ASCII, any case) equal one of the strings lowercased?
    #[inline]
    fn may_hold(&self, token: &[u8]) -> bool {
        let (Some(&a), Some(&z)) = (token.first(), token.last()) else {
            return self.lens & 1 != 0;
        };
        let k = edge_key(a, z);
        self.lens & 1u64 << token.len().min(63) != 0 && self.edges[k / 64] & 1u64 << (k % 64) != 0
    }
}

/// 10 bits from two bytes, ASCII letters folded to lowercase.
#[inline]
fn edge_key(a: u8, z: u8) -> usize {
    (usize::from(a | 0x20) & 31) << 5 | usize::from(z | 0x20) & 31
}

/// Distinct lowercased terms, matched against tokens without lowercasing
/// them.
struct Terms<'q> {
    texts: Vec<&'q str>,
    /// Bit `n`: some term is `n` bytes long (bit 63: 63 or more).
    lens: u64,
    filter: Filter,
}

impl<'q> Terms<'q> {
    fn new(texts: &[&'q str]) -> Self {
        let mut distinct: Vec<&'q str> = Vec::with_capacity(texts.len());
        for &t in texts {
            if !distinct.contains(&t) {
                distinct.push(t);
            }
        }
        let filter = Filter::new(distinct.iter().copied());
        Terms {
            lens: filter.lens,
            texts: distinct,
            filter,
        }
    }

    /// Slot of the term equal to the ASCII token `token` lowercased. A term
    /// is lowercase already, so ASCII case-insensitive equality is exactly
    /// equality after lowercasing the token (a term with other bytes cannot
    /// equal a lowercased ASCII token).
    #[inline]
    fn ascii(&self, token: &[u8]) -> Option<usize> {
        if !self.filter.may_hold(token) {
            return None;
        }
        self.texts
            .iter()
            .position(|t| t.len() == token.len() && t.as_bytes().eq_ignore_ascii_case(token))
    }

    /// Slot of the term equal to an already lowercased token.
    fn exact(&self, token: &str) -> Option<usize> {
        self.texts.iter().position(|t| *t == token)
    }
}

/// The tokens of one word (as [`rank::tokenize`] gives them): calls
/// `hit(slot)` for each that equals a term, and returns how many there are.
#[inline]
fn word_tokens(
    word: &str,
    terms: &Terms<'_>,
    scratch: &mut rank::Scratch,
    mut hit: impl FnMut(usize),
) -> u32 {
    let w = rank::trim_underscores(word);
    let b = w.as_bytes();
    if b.len() < 2 {
        // Too short (ASCII), or one character that is not (the general
        // path decides).
        if w.is_ascii() {
            return 0;
        }
    } else {
        let class = b.iter().fold(0u8, |m, &c| m | CLASS[usize::from(c)]);
        if class == LOWER {
            // The common plain word: one token, itself.
            if let Some(slot) = terms.ascii(b) {
                hit(slot);
            }
            return 1;
        }
        if class == DIGIT {
            return 0;
        }
        if class & WIDE == 0 {
            return ascii_compound(w, terms, scratch, hit);
        }
    }
    // Anything else (non-ASCII letters): the tokenizer itself.
    let mut n = 0;
    rank::word_tokens(word, scratch, terms.lens, &mut |token, _, _| {
        n += 1;
        if let Some(slot) = token.and_then(|t| terms.exact(t)) {
            hit(slot);
        }
    });
    n
}

/// [`word_tokens`] of an ASCII word that is not all lowercase or all digits:
/// its parts when compound, then itself.
fn ascii_compound(
    w: &str,
    terms: &Terms<'_>,
    scratch: &mut rank::Scratch,
    mut hit: impl FnMut(usize),
) -> u32 {
    let parts = &mut scratch.parts;
    rank::split_identifier(w, parts);
    let mut n = 1;
    if parts.len() > 1 {
        for &(start, end) in parts.iter() {
            let part = &w.as_bytes()[start..end];
            if part.len() >= 2 && !part.iter().all(u8::is_ascii_digit) {
                n += 1;
                if let Some(slot) = terms.ascii(part) {
                    hit(slot);
                }
            }
        }
    }
    if let Some(slot) = terms.ascii(w.as_bytes()) {
        hit(slot);
    }
    n
}

/// The bits of bytes `s..s + n` (`n` at most 64) of the mask `m`, byte `s`
/// lowest.
#[inline]
fn bits_at(m: &[u64], s: usize, n: usize) -> u64 {
    let (k, off) = (s / 64, s % 64);
    let mut v = m[k] >> off;
    if off > 0 && off + n > 64 {
        v |= m[k + 1] << (64 - off);
    }
    if n < 64 { v & ((1 << n) - 1) } else { v }
}

/// [`word_tokens`] of an ASCII word of at most 64 bytes, from the bits of
/// its bytes' classes (`[lower, upper, digit, under]`, byte 0 lowest): its
/// underscores trimmed, its parts and their edges found by bit arithmetic
/// instead of a branch per byte. The same tokens as the tokenizer's rules
/// (`rank::split_identifier`): a part ends at `_`, at a lowercase letter
/// followed by an uppercase one, before the last of a run of capitals that
/// a lowercase letter follows, and between letters and digits.
#[inline]
fn ascii_word_tokens(
    word: &[u8],
    [lower, upper, digit, under]: [u64; 4],
    terms: &Terms<'_>,
    mut hit: impl FnMut(usize),
) -> u32 {
    let n = word.len();
    let all = if n == 64 { u64::MAX } else { (1 << n) - 1 };
    // Trim underscores: keep bytes `a..z`.
    let kept = !under & all;
    if kept == 0 {
        return 0;
    }
    let a = kept.trailing_zeros() as usize;
    let z = 64 - kept.leading_zeros() as usize;
    if z - a < 2 {
        return 0;
    }
    let span = all >> (n - z) & !((1u64 << a) - 1);
    let (l, u, d) = (lower & span, upper & span, digit & span);
    let w = &word[a..z];
    if (u | d | under & span) == 0 {
        // All lowercase: one token, itself.
        if let Some(slot) = terms.ascii(w) {
            hit(slot);
        }
        return 1;
    }
    if (l | u | under & span) == 0 {
        return 0;
    }
    let letter = l | u;
    let part = letter | d;
    // A part starts after an underscore (or the start) and where the rules
    // cut inside a run.
    let cut =
        part & part << 1 & (u & l << 1 | u & u << 1 & l >> 1 | d & letter << 1 | letter & d << 1);
    let starts = part & !(part << 1) | cut;
    let mut count = 1;
    if starts & starts.wrapping_sub(1) != 0 {
        let mut rest = starts;
        while rest != 0 {
            let i = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            // The part ends at the next start or at the end of its run.
            let run_end = i + (!(part >> i)).trailing_zeros() as usize;
            let end = run_end.min(if rest == 0 {
                64
            } else {
                rest.trailing_zeros() as usize
            });
            let this = (u64::MAX >> (64 - end)) & !((1u64 << i) - 1);
            if end - i >= 2 && letter & this != 0 {
                count += 1;
                if let Some(slot) = terms.ascii(&word[i..end]) {
                    hit(slot);
                }
            }
        }
    }
    if let Some(slot) = terms.ascii(w) {
        hit(slot);
    }
    count
}

/// The words of a code text, tokenized once, with where the terms of one
/// query occur.
///
/// A word's tokens are counted as bits ("marks") set at some of its bytes:
/// as many as it has tokens, all inside it. A plain lowercase word of two
/// bytes or more (most words) has one token, marked at its first byte, and
/// those marks are made for all words at once from the word mask; the other
/// words are tokenized one by one and their marks rewritten. The tokens of
/// the whole words of a range are then the marks in it, counted from sums
/// per 64-byte block.
pub struct CodeWords<'a> {
    code: &'a str,
    /// Bytes of the words wholly inside the regions (see [`Masks::word`]).
    word: Vec<u64>,
    /// Token marks, 64 bytes per entry.
    marks: Vec<u64>,
    /// Marks before each entry of `marks`, and one more: all of them.
    before: Vec<u32>,
    /// The terms `hits` is about, each followed by a `\n` (which no term
    /// holds): one allocation.
    terms: String,
    /// (first byte of the word, term slot) of every token equal to a term,
    /// in word order.
    hits: Vec<(u32, u32)>,
}

impl<'a> CodeWords<'a> {
    /// Tokenizes the words of `code` (under 4 GiB) that lie wholly inside
    /// `regions` (sorted, disjoint byte ranges) once, locating `terms`
    /// (lowercased query terms), and returns with it the first spelling there
    /// of each `wanted` identifier (lowercased whole tokens of the
    /// instruction), keyed by it: what `build_query` looks names up in.
    /// [`CodeWords::score`] then counts ranges inside `regions`.
    ///
    /// A preparation passes the code minus its repeat segments: a repeat
    /// copies earlier lines word for word, so it holds no first spelling and
    /// no chunk that is scored.
    pub fn new(
        code: &'a str,
        regions: &[Range<usize>],
        terms: &[&str],
        wanted: &[&str],
    ) -> (Self, WordMap<String, String>) {
        let t = Terms::new(terms);
        let wanted_filter = Filter::new(wanted.iter().copied());
        let either = Filter::new(t.texts.iter().copied().chain(wanted.iter().copied()));
        let mut found: WordMap<String, String> = WordMap::default();
        let mut hits = Vec::new();
        let mut scratch = rank::Scratch::default();
        let mut lower = String::new();
        let mut masks = Masks::new(code);
        keep_only(&mut masks.word, regions, code.len());
        let bytes = code.as_bytes();
        // Every word of two bytes or more marked at its first byte: a plain
        // word's one token. Other words are rewritten below.
        let w = &masks.word;
        let mut marks: Vec<u64> = (0..w.len())
            .map(|k| {
                let before = if k > 0 { w[k - 1] >> 63 } else { 0 };
                let after = w.get(k + 1).map_or(0, |&x| x & 1);
                w[k] & !(w[k] << 1 | before) & (w[k] >> 1 | after << 63)
            })
            .collect();
        masks.for_each_word(|s, e| {
            let at = s as u32;
            if masks.special_in(s, e) {
                let word = &code[s..e];
                let n = e - s;
                let ascii = !any_in(&masks.high, s, e);
                let tokens = if n <= 64 && ascii {
                    let at_word = |m: &[u64]| bits_at(m, s, n);
                    let lower = at_word(&masks.word) & !at_word(&masks.special);
                    let classes = [
                        lower,
                        at_word(&masks.upper),
                        at_word(&masks.digit),
                        at_word(&masks.under),
                    ];
                    ascii_word_tokens(word.as_bytes(), classes, &t, |slot| {
                        hits.push((at, slot as u32));
                    })
                } else {
                    word_tokens(word, &t, &mut scratch, |slot| {
                        hits.push((at, slot as u32));
                    })
                };
                set_marks(&mut marks, s, tokens as usize);
                // An ASCII word the filter rules out is no wanted name.
                if found.len() < wanted.len()
                    && (!ascii || wanted_filter.may_hold(rank::trim_underscores(word).as_bytes()))
                {
                    find_wanted(word, wanted, &wanted_filter, &mut found, &mut lower);
                }
            } else if e - s >= 2 {
                // A plain lowercase word: one token, itself (marked). Most
                // are no term and no wanted name: one filter rules out both.
                let word = &bytes[s..e];
                if either.may_hold(word) {
                    if let Some(slot) = t.ascii(word) {
                        hits.push((at, slot as u32));
                    }
                    if found.len() < wanted.len() && wanted_filter.may_hold(word) {
                        let word = &code[s..e];
                        find_wanted(word, wanted, &wanted_filter, &mut found, &mut lower);
                    }
                }
            }
        });
        let mut before = Vec::with_capacity(marks.len() + 1);
        let mut total = 0u32;
        for m in &marks {
            before.push(total);
            total += m.count_ones();
        }
        before.push(total);
        let words = CodeWords {
            code,
            word: masks.word,
            marks,
            before,
            terms: t.texts.iter().fold(String::new(), |mut all, term| {
                all.push_str(term);
                all.push('\n');
                all
            }),
            hits,
        };
        (words, found)
    }

    /// BM25 scores of the byte ranges `docs` of the code for `query`: equal
    /// to [`rank::score`] of their texts.
    pub fn score(&self, docs: &[Range<usize>], query: &Query) -> Vec<f64> {
        let texts: Vec<&str> = query.terms.iter().map(|t| t.text.as_str()).collect();
        let terms = Terms::new(&texts);
        let rescanned;
        let hits = if self.scanned_for(&terms.texts) {
            &self.hits
        } else {
            rescanned = self.hits_of(&terms);
            &rescanned
        };
        let of_term: Vec<usize> = texts
            .iter()
            .map(|t| terms.texts.iter().position(|x| x == t).unwrap_or(0))
            .collect();
        let mut scratch = rank::Scratch::default();
        let counts: Vec<TermCounts> = docs
            .iter()
            .map(|d| self.counts(d.clone(), hits, &terms, &mut scratch))
            .collect();
        rank::bm25_counts(&counts, query, &of_term)
    }

    /// Are `texts` the terms scanned for, in their order?
    fn scanned_for(&self, texts: &[&str]) -> bool {
        let mut rest = self.terms.as_str();
        for t in texts {
            match rest.strip_prefix(t).and_then(|r| r.strip_prefix('\n')) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// Where `terms` occur, for a query other than the one scanned for.
    fn hits_of(&self, terms: &Terms<'_>) -> Vec<(u32, u32)> {
        let mut hits = Vec::new();
        let mut scratch = rank::Scratch::default();
        for_each_run(&self.word, |s, e| {
            word_tokens(&self.code[s..e], terms, &mut scratch, |slot| {
                hits.push((s as u32, slot as u32));
            });
        });
        hits
    }

    /// Token marks before byte `x`.
    fn marks_before(&self, x: usize) -> usize {
        let (k, off) = (x / 64, x % 64);
        let mut n = self.before[k] as usize;
        if off > 0 {
            n += (self.marks[k] & ((1u64 << off) - 1)).count_ones() as usize;
        }
        n
    }

    /// Is byte `i` part of a word (inside the regions)?
    fn in_word(&self, i: usize) -> bool {
        self.word
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 != 0)
    }

    /// The counts of the bytes `range` of the code: whole words from the
    /// marks and hits, words cut by an edge tokenized as cut.
    fn counts(
        &self,
        range: Range<usize>,
        hits: &[(u32, u32)],
        terms: &Terms<'_>,
        scratch: &mut rank::Scratch,
    ) -> TermCounts {
        use super::scan::Spaces;
        let mut c = TermCounts {
            len: 0,
            tf: vec![0; terms.texts.len()],
        };
        let (bs, be) = (range.start, range.end.min(self.code.len()));
        if bs >= be {
            return c;
        }
        let mut cut = |s: usize, e: usize, c: &mut TermCounts| {
            let n = word_tokens(&self.code[s..e], terms, scratch, |slot| c.tf[slot] += 1);
            c.len += n as usize;
        };
        // Whole words lie in `from..to`.
        let (mut from, mut to) = (bs, be);
        if bs > 0 && self.in_word(bs - 1) && self.in_word(bs) {
            // The first word starts before the range (and may end after it).
            from = Spaces::first_clear(&self.word, bs, be);
            cut(bs, from, &mut c);
        }
        if from < to && self.in_word(be - 1) && self.in_word(be) {
            // The last word ends after the range.
            to = Spaces::last_clear_end(&self.word, from, be);
            cut(to, be, &mut c);
        }
        if from < to {
            c.len += self.marks_before(to) - self.marks_before(from);
            let lo = hits.partition_point(|h| (h.0 as usize) < from);
            let hi = hits.partition_point(|h| (h.0 as usize) < to);
            for &(_, slot) in &hits[lo..hi] {
                c.tf[slot as usize] += 1;
            }
        }
        c
    }
}

/// Clears the bits of `m` (over a text of `len` bytes) outside `regions`
/// (sorted, disjoint byte ranges).
fn keep_only(m: &mut [u64], regions: &[Range<usize>], len: usize) {
    let mut at = 0;
    for g in regions.iter().chain([&(len..len)]) {
        clear_bits(m, at, g.start.min(len));
        at = at.max(g.end.min(len));
    }
}

/// Clears bits `start..end` of `m`.
fn clear_bits(m: &mut [u64], start: usize, end: usize) {
    let mut i = start;
    while i < end {
        let (k, off) = (i / 64, i % 64);
        let n = (64 - off).min(end - i);
        let span = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << off
        };
        m[k] &= !span;
        i += n;
    }
}

/// Marks `n` tokens for the word starting at byte `s` (at least `n` bytes
/// long): bits `s..s + n`, where only bit `s` may have been set.
#[inline]
fn set_marks(marks: &mut [u64], s: usize, n: usize) {
    marks[s / 64] &= !(1u64 << (s % 64));
    let mut i = s;
    while i < s + n {
        let (k, off) = (i / 64, i % 64);
        let m = (64 - off).min(s + n - i);
        marks[k] |= if m == 64 {
            u64::MAX
        } else {
            ((1u64 << m) - 1) << off
        };
        i += m;
    }
}

/// Records `word` (trimmed of `_`) under the `wanted` token it spells, when
/// it is the first such word: the rule of the plain scan
/// (`code_identifiers_reference` in the tests).
#[inline]
fn find_wanted(
    word: &str,
    wanted: &[&str],
    filter: &Filter,
    found: &mut WordMap<String, String>,
    lower: &mut String,
) {
    let word = rank::trim_underscores(word);
    let key = if word.is_ascii() {
        if !filter.may_hold(word.as_bytes()) {
            return;
        }
        wanted
            .iter()
            .find(|w| w.len() == word.len() && w.eq_ignore_ascii_case(word))
    } else {
        lower.clear();
        lower.push_str(&word.to_lowercase());
        wanted.iter().find(|w| **w == *lower)
    };
    if let Some(&key) = key
        && word.chars().nth(1).is_some()
        && !word.chars().all(char::is_numeric)
        && !found.contains_key(key)
    {
        found.insert(key.to_owned(), word.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain scans these replace: every word of the code looked up, and
    /// every chunk tokenized on its own.
    fn code_identifiers_reference(code: &str, wanted: &[String]) -> WordMap<String, String> {
        let mut out = WordMap::default();
        rank::for_each_word(code, |word| {
            let word = rank::trim_underscores(word);
            let lower = word.to_lowercase();
            if let Some(key) = wanted.iter().find(|w| **w == lower)
                && word.chars().nth(1).is_some()
                && !word.chars().all(char::is_numeric)
            {
                out.entry(key.clone()).or_insert_with(|| word.to_owned());
            }
        });
        out
    }

    fn check(code: &str, query_text: &str, cuts: &[(usize, usize)]) {
        let query = rank::tail_query(query_text);
        let terms: Vec<&str> = query.terms.iter().map(|t| t.text.as_str()).collect();
        let mut wanted: Vec<String> = Vec::new();
        rank::for_each_token(query_text, |t, whole, _| {
            if whole && !wanted.iter().any(|w| w == t) {
                wanted.push(t.to_owned());
            }
        });
        let whole = 0..code.len();
        let wanted_str: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let (words, found) =
            CodeWords::new(code, std::slice::from_ref(&whole), &terms, &wanted_str);
        assert_eq!(found, code_identifiers_reference(code, &wanted), "{code:?}");
        // Only some lines: as if the others were not there.
        let mut regions = Vec::new();
        let mut kept = String::new();
        let mut at = 0;
        for (i, line) in code.split_inclusive('\n').enumerate() {
            if i % 3 != 1 {
                regions.push(at..at + line.len());
                kept.push_str(line);
            }
            at += line.len();
        }
        let (part, found) = CodeWords::new(code, &regions, &terms, &wanted_str);
        assert_eq!(
            found,
            code_identifiers_reference(&kept, &wanted),
            "{code:?}"
        );
        let inside: Vec<Range<usize>> = regions.iter().filter(|g| !g.is_empty()).cloned().collect();
        let texts: Vec<&str> = inside.iter().map(|d| &code[d.clone()]).collect();
        assert_eq!(
            part.score(&inside, &query),
            rank::score(&texts, &query),
            "{code:?}"
        );
        // Char boundaries only, as chunks are.
        let bounds: Vec<usize> = code
            .char_indices()
            .map(|(i, _)| i)
            .chain([code.len()])
            .collect();
        let docs: Vec<Range<usize>> = cuts
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (bounds[a % bounds.len()], bounds[b % bounds.len()]);
                a.min(b)..a.max(b)
            })
            .collect();
        let texts: Vec<&str> = docs.iter().map(|d| &code[d.clone()]).collect();
        assert_eq!(
            words.score(&docs, &query),
            rank::score(&texts, &query),
            "{code:?} {docs:?}"
        );
        // Another query than the one scanned for.
        let other = rank::tail_query("load value x_y HTTPServer größe");
        assert_eq!(
            words.score(&docs, &other),
            rank::score(&texts, &other),
            "{code:?}"
        );
    }

    #[test]
    fn counts_equal_tokenizing_each_chunk() {
        let code = "def parse_config(path):\n    return loadAll(path) + HTTPServer.max_Retries2\n__init__ _wrap x9 99 größe_berechnen Kelvin_\u{212a} a_b\n";
        let n = code.chars().count();
        let mut cuts = Vec::new();
        for a in 0..=n {
            for b in (a..=n).step_by(7) {
                cuts.push((a, b));
            }
        }
        check(
            code,
            "parse the config, load all http servers; größe",
            &cuts,
        );
        check(code, "", &cuts);
        check("", "x", &[(0, 0)]);
    }

    proptest! {
        #[test]
        fn bit_tokens_equal_the_tokenizer(
            word in "[a-zA-Z0-9_]{1,64}",
            extra in prop::collection::vec("[a-z0-9]{1,6}", 0..4),
        ) {
            // Terms: some of the word's own tokens, and others.
            let mut terms: Vec<String> = extra;
            rank::for_each_token(&word, |t, _, _| terms.push(t.to_owned()));
            terms.retain(|t| t.len() % 3 != 1);
            let texts: Vec<&str> = terms.iter().map(String::as_str).collect();
            let t = Terms::new(&texts);
            let m = Masks::new(&word);
            let at = |v: &[u64]| bits_at(v, 0, word.len());
            let classes = [at(&m.word) & !at(&m.special), at(&m.upper), at(&m.digit), at(&m.under)];
            let (mut got, mut want) = (Vec::new(), Vec::new());
            let n = ascii_word_tokens(word.as_bytes(), classes, &t, |s| got.push(s));
            let mut scratch = rank::Scratch::default();
            let n_want = word_tokens(&word, &t, &mut scratch, |s| want.push(s));
            got.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!((n, got), (n_want, want));
        }

        #[test]
        fn fused_counts_equal_the_plain_scan(
            code in prop::collection::vec(
                prop_oneof![
                    4 => "[a-zA-Z0-9_]{1,12}",
                    2 => "[ \n\t(),.:=]{1,3}",
                    1 => "\\PC{1,4}",
                    1 => Just("HTTPServer_maxRetries2".to_owned()),
                    1 => Just("load".to_owned()),
                ],
                0..80,
            ).prop_map(|p| p.concat()),
            query in "[a-zA-Z_ ()`]{0,40}( load| server| max_retries)?",
            cuts in prop::collection::vec((0usize..1000, 0usize..1000), 1..8),
        ) {
            check(&code, &query, &cuts);
        }
    }
}
