//! Language detection and per-language comment syntax.
//!
//! The assembled prompt fences the kept code with a language tag, and the
//! omission markers (`… 42 lines omitted …`) are written as comments of that
//! language so the partial code still reads as code. The router reuses
//! [`detect_language`] to pick a model, so it is cheap and needs no input but
//! the text itself.

/// Canonical names this module can return, with the aliases that map to them
/// (fence info strings, file extensions, common spellings).
const ALIASES: &[(&str, &[&str])] = &[
    ("python", &["python", "py", "python3", "py3", "pyw"]),
    (
        "javascript",
        &["javascript", "js", "node", "nodejs", "mjs", "cjs", "jsx"],
    ),
    ("typescript", &["typescript", "ts", "tsx", "mts", "cts"]),
    ("rust", &["rust", "rs"]),
    ("go", &["go", "golang"]),
    ("c", &["c", "h"]),
    ("cpp", &["cpp", "c++", "cc", "cxx", "hpp", "hh", "hxx"]),
    ("java", &["java"]),
    ("csharp", &["csharp", "c#", "cs"]),
    ("kotlin", &["kotlin", "kt", "kts"]),
    ("swift", &["swift"]),
    ("ruby", &["ruby", "rb"]),
    ("php", &["php"]),
    ("bash", &["bash", "sh", "shell", "zsh", "console"]),
    ("sql", &["sql", "postgresql", "mysql", "sqlite"]),
    ("lua", &["lua"]),
    ("haskell", &["haskell", "hs"]),
    ("html", &["html", "htm", "xml", "svg"]),
    ("css", &["css", "scss", "less"]),
    ("yaml", &["yaml", "yml"]),
    ("toml", &["toml"]),
    ("json", &["json", "jsonc"]),
];

/// Maps a language name or alias (`py`, `C++`, `golang`, a fence info string
/// such as `rust,ignore`) to the canonical name used in this crate, or `None`
/// when it is not one this module knows.
pub fn normalize_language(name: &str) -> Option<&'static str> {
    let word = name
        .trim()
        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
        .next()
        .unwrap_or("")
        .trim_start_matches('.')
        .to_ascii_lowercase();
    if word.is_empty() {
        return None;
    }
    ALIASES
        .iter()
        .find(|(_, names)| names.contains(&word.as_str()))
        .map(|(canonical, _)| *canonical)
}

/// How a line comment starts in `language` (any name [`normalize_language`]
/// accepts), or `None` when the language has no line comment (JSON) or is
/// unknown; omission markers are then written bare.
pub fn line_comment(language: &str) -> Option<&'static str> {
    match normalize_language(language)? {
        "python" | "ruby" | "bash" | "yaml" | "toml" => Some("#"),
        "sql" | "lua" | "haskell" => Some("--"),
        "html" | "css" | "json" => None,
        _ => Some("//"),
    }
}

/// Detects the language of `text` from, in order: the info string of the first
/// fenced block, a shebang line, then keyword signals. Returns a canonical name
/// (`python`, `javascript`, `typescript`, `rust`, `go`, `c`, `cpp`, `java`,
/// `csharp`, `kotlin`, `swift`, `ruby`, `php`, `bash`, `sql`, `lua`, `html`, …)
/// or `None` when nothing is convincing. Keyword signals are read from the
/// first [`KEYWORD_LINES`] non-blank lines only: they are dense, and reading a
/// whole 16 KB file was a third of the time of a whole preparation.
pub fn detect_language(text: &str) -> Option<&'static str> {
    if let Some(lang) = fence_language(text) {
        return Some(lang);
    }
    if let Some(lang) = shebang_language(text) {
        return Some(lang);
    }
    keyword_language(text)
}

/// The canonical language of the first fenced block's info string, if any.
fn fence_language(text: &str) -> Option<&'static str> {
    if !may_hold_fence(text) {
        return None;
    }
    text.lines().find_map(|line| {
        let t = line.trim_start();
        let info = t.strip_prefix("```").or_else(|| t.strip_prefix("~~~"))?;
        let info = info.trim_start_matches(['`', '~']).trim();
        if info.is_empty() {
            None
        } else {
            normalize_language(info)
        }
    })
}

/// False when `text` holds no run of three backticks or tildes, so no fence:
/// two SIMD substring searches (a `memchr` per backtick stopped at every one
/// of a JavaScript file's template strings).
pub(crate) fn may_hold_fence(text: &str) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    static FENCES: LazyLock<[Finder<'static>; 2]> =
        LazyLock::new(|| [Finder::new("```"), Finder::new("~~~")]);
    FENCES.iter().any(|f| f.find(text.as_bytes()).is_some())
}

/// The language named by a `#!` first line (`#!/usr/bin/env python3`).
fn shebang_language(text: &str) -> Option<&'static str> {
    let first = text.trim_start_matches('\u{feff}').lines().next()?;
    let rest = first.strip_prefix("#!")?;
    let mut words = rest.split_whitespace();
    let program = words.next()?;
    let mut name = program.rsplit('/').next().unwrap_or(program);
    if name == "env" {
        name = words.find(|w| !w.starts_with('-'))?;
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    match stem {
        "python" | "pypy" => Some("python"),
        "node" | "deno" | "bun" => Some("javascript"),
        "ts-node" => Some("typescript"),
        "bash" | "sh" | "zsh" | "dash" | "ksh" => Some("bash"),
        "ruby" => Some("ruby"),
        "php" => Some("php"),
        "lua" => Some("lua"),
        _ => None,
    }
}

/// How many non-blank lines keyword detection reads.
pub const KEYWORD_LINES: usize = 150;

/// Where in a trimmed line a signal must appear.
#[derive(Clone, Copy)]
enum At {
    /// The trimmed line starts with the pattern.
    Start,
    /// The pattern appears anywhere in the line.
    Anywhere,
    /// The trimmed line ends with the pattern.
    End,
}

/// (language, pattern, where, weight). Weights favour signals that are nearly
/// unique to one language; generic ones (`{`, `;`) are not listed at all.
const SIGNALS: &[(&str, &str, At, u32)] = &[
    // Python
    ("python", "def ", At::Start, 3),
    ("python", "elif ", At::Start, 4),
    ("python", "from ", At::Start, 1),
    ("python", "import ", At::Start, 1),
    ("python", "self.", At::Anywhere, 2),
    ("python", "(self", At::Anywhere, 3),
    ("python", "__init__", At::Anywhere, 3),
    ("python", "None", At::Anywhere, 1),
    ("python", "):", At::End, 2),
    ("python", "else:", At::End, 2),
    ("python", "try:", At::End, 3),
    ("python", "except", At::Start, 3),
    ("python", "print(", At::Start, 1),
    ("python", "@", At::Start, 1),
    ("python", "\"\"\"", At::Anywhere, 2),
    // JavaScript (TypeScript shares these)
    ("javascript", "function ", At::Anywhere, 2),
    ("javascript", "const ", At::Start, 2),
    ("javascript", "let ", At::Start, 1),
    ("javascript", "var ", At::Start, 2),
    ("javascript", "=>", At::Anywhere, 2),
    ("javascript", "console.", At::Anywhere, 3),
    ("javascript", "require(", At::Anywhere, 3),
    ("javascript", "module.exports", At::Anywhere, 4),
    ("javascript", "export ", At::Start, 2),
    ("javascript", "===", At::Anywhere, 3),
    ("javascript", "!==", At::Anywhere, 3),
    ("javascript", "async ", At::Anywhere, 1),
    ("javascript", "await ", At::Anywhere, 1),
    ("javascript", "document.", At::Anywhere, 3),
    ("javascript", "this.", At::Anywhere, 1),
    // TypeScript-only
    ("typescript", ": string", At::Anywhere, 4),
    ("typescript", ": number", At::Anywhere, 4),
    ("typescript", ": boolean", At::Anywhere, 4),
    ("typescript", "interface ", At::Start, 3),
    ("typescript", "export interface ", At::Start, 4),
    ("typescript", "type ", At::Start, 2),
    ("typescript", "implements ", At::Anywhere, 2),
    ("typescript", "readonly ", At::Anywhere, 3),
    ("typescript", ": void", At::Anywhere, 3),
    // Rust
    ("rust", "fn ", At::Start, 3),
    ("rust", "pub fn ", At::Start, 4),
    ("rust", "let mut ", At::Anywhere, 4),
    ("rust", "impl ", At::Start, 4),
    ("rust", "impl<", At::Start, 4),
    ("rust", "use std::", At::Start, 5),
    ("rust", "#[derive", At::Start, 5),
    ("rust", "#[", At::Start, 1),
    ("rust", "match ", At::Anywhere, 1),
    ("rust", "&mut ", At::Anywhere, 3),
    ("rust", "&self", At::Anywhere, 4),
    ("rust", "println!", At::Anywhere, 4),
    ("rust", "Some(", At::Anywhere, 2),
    ("rust", "Ok(", At::Anywhere, 2),
    ("rust", "pub struct ", At::Start, 4),
    ("rust", "-> Result<", At::Anywhere, 4),
    ("rust", "-> Option<", At::Anywhere, 4),
    ("rust", "::new(", At::Anywhere, 1),
    ("rust", "mod ", At::Start, 2),
    // Go
    ("go", "package ", At::Start, 5),
    ("go", "func ", At::Start, 4),
    ("go", ":=", At::Anywhere, 2),
    ("go", "fmt.", At::Anywhere, 3),
    ("go", "err != nil", At::Anywhere, 5),
    ("go", "import (", At::Start, 5),
    ("go", "chan ", At::Anywhere, 2),
    ("go", "go func", At::Anywhere, 4),
    // C (C++ shares most of these)
    ("c", "#include <", At::Start, 2),
    ("c", "#include \"", At::Start, 2),
    ("c", "#define ", At::Start, 3),
    ("c", "#ifndef ", At::Start, 2),
    ("c", "typedef ", At::Start, 3),
    ("c", "printf(", At::Anywhere, 2),
    ("c", "malloc(", At::Anywhere, 3),
    ("c", "free(", At::Anywhere, 1),
    ("c", "sizeof(", At::Anywhere, 2),
    ("c", "NULL", At::Anywhere, 2),
    ("c", "->", At::Anywhere, 1),
    ("c", "static ", At::Start, 1),
    ("c", "int ", At::Start, 1),
    ("c", "void ", At::Start, 1),
    ("c", "char *", At::Anywhere, 2),
    ("c", "const char *", At::Anywhere, 2),
    ("c", "struct ", At::Start, 1),
    ("c", "size_t ", At::Anywhere, 2),
    // C++-only
    ("cpp", "std::", At::Anywhere, 4),
    ("cpp", "#include <iostream>", At::Start, 6),
    ("cpp", "#include <vector>", At::Start, 6),
    ("cpp", "#include <string>", At::Start, 6),
    ("cpp", "template <", At::Start, 5),
    ("cpp", "template<", At::Start, 5),
    ("cpp", "namespace ", At::Start, 4),
    ("cpp", "nullptr", At::Anywhere, 4),
    ("cpp", "public:", At::Start, 4),
    ("cpp", "private:", At::Start, 4),
    ("cpp", "cout <<", At::Anywhere, 4),
    ("cpp", "auto ", At::Anywhere, 1),
    // Java
    ("java", "public class ", At::Start, 4),
    ("java", "public static void main", At::Anywhere, 6),
    ("java", "System.out.", At::Anywhere, 5),
    ("java", "import java.", At::Start, 6),
    ("java", "@Override", At::Start, 4),
    ("java", "private final ", At::Start, 2),
    ("java", "public void ", At::Start, 2),
    // C#
    ("csharp", "using System", At::Start, 6),
    ("csharp", "Console.Write", At::Anywhere, 5),
    ("csharp", "public async Task", At::Anywhere, 5),
    ("csharp", "{ get; set; }", At::Anywhere, 6),
    // Kotlin
    ("kotlin", "fun ", At::Start, 3),
    ("kotlin", "val ", At::Start, 2),
    ("kotlin", "data class ", At::Start, 5),
    // Swift
    ("swift", "import Foundation", At::Start, 6),
    ("swift", "import UIKit", At::Start, 6),
    ("swift", "guard let ", At::Anywhere, 5),
    ("swift", "func ", At::Start, 1),
    // Ruby
    ("ruby", "end", At::Start, 1),
    ("ruby", "puts ", At::Start, 3),
    ("ruby", "require '", At::Start, 4),
    ("ruby", "attr_accessor", At::Anywhere, 5),
    ("ruby", " do |", At::Anywhere, 5),
    // PHP
    ("php", "<?php", At::Start, 10),
    ("php", "$this->", At::Anywhere, 5),
    // Shell
    ("bash", "fi", At::Start, 2),
    ("bash", "then", At::End, 3),
    ("bash", "esac", At::Start, 5),
    ("bash", "done", At::Start, 2),
    ("bash", "echo ", At::Start, 2),
    ("bash", "export ", At::Start, 1),
    ("bash", "set -e", At::Start, 4),
    // SQL
    ("sql", "SELECT ", At::Start, 4),
    ("sql", "CREATE TABLE", At::Start, 6),
    ("sql", "INSERT INTO", At::Start, 6),
    ("sql", "WHERE ", At::Start, 2),
    ("sql", "FROM ", At::Start, 2),
    // Lua
    ("lua", "local function ", At::Start, 6),
    ("lua", "local ", At::Start, 2),
    ("lua", "~=", At::Anywhere, 2),
    // HTML
    ("html", "<div", At::Anywhere, 3),
    ("html", "<html", At::Anywhere, 6),
    ("html", "</", At::Anywhere, 1),
    ("html", "<!DOCTYPE", At::Start, 8),
];

/// [`SIGNALS`] indexed for a scan of each line: by the byte a pattern starts
/// with (for `Start` and `Anywhere`) or ends with (`End`), so a line is read
/// once instead of once per signal. Built once per process.
struct SignalIndex {
    /// Distinct languages, in order of first appearance in [`SIGNALS`] (the
    /// tie-break order).
    langs: Vec<&'static str>,
    /// Index into `langs` of each signal.
    lang_of: Vec<usize>,
    /// Signal indices by the first byte of their pattern.
    start: Vec<Vec<usize>>,
    /// Signal indices by the first byte of their pattern.
    anywhere: Vec<Vec<usize>>,
    /// Signal indices by the last byte of their pattern.
    end: Vec<Vec<usize>>,
    /// Bit [`triple_key`] of the first three bytes of every `Anywhere`
    /// pattern (of a two-byte pattern: its two bytes and any third): most
    /// positions of a line are ruled out by one bit test.
    triples: Box<Triples>,
    /// The first bytes of each signal's pattern, to compare in one step.
    heads: Vec<Head>,
}

/// Bits of [`SignalIndex::triples`].
const TRIPLE_BITS: usize = 1 << 16;

/// [`TRIPLE_BITS`] bits, 32 to a word (bit `k` is bit `k % 32` of word
/// `k / 32`: the unit an AVX2 gather loads).
type Triples = [u32; TRIPLE_BITS / 32];

/// Three bytes (the low 24 bits of `window`, first byte lowest) hashed to a
/// bit of [`SignalIndex::triples`].
#[inline]
fn triple_key(window: u32) -> usize {
    (window.wrapping_mul(0x9e37_79b1) >> 16) as usize
}

/// Bit `p` set for the positions `p` of `text[..end]` where an `Anywhere`
/// signal may start: those whose three bytes (read from `text`, a zero past
/// its end) have their bit in `triples`. A signal that matches in a line
/// has its first three bytes there, or two and any third; bytes past the
/// line only let more positions through.
fn candidate_mask(text: &[u8], end: usize, triples: &Triples) -> Vec<u64> {
    let mut mask = vec![0u64; end.div_ceil(64)];
    #[cfg(target_arch = "x86_64")]
    let from = if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked just above).
        unsafe { candidates_avx2(text, end, triples, &mut mask) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let from = 0;
    candidates_plain(text, from, end, triples, &mut mask);
    mask
}

/// [`candidate_mask`] of the positions `from..end`, one at a time.
fn candidates_plain(text: &[u8], from: usize, end: usize, triples: &Triples, mask: &mut [u64]) {
    let at = |i: usize| u32::from(text.get(i).copied().unwrap_or(0));
    for p in from..end {
        let k = triple_key(at(p) | at(p + 1) << 8 | at(p + 2) << 16);
        mask[p / 64] |= u64::from(triples[k / 32] >> (k % 32) & 1) << (p % 64);
    }
}

/// [`candidate_mask`] from position 0, eight positions at a time: the three
/// bytes of each widened to a 32-bit lane, hashed by one multiply, their
/// bits fetched by one gather. Returns the first position not read (the
/// last few, too near the end of `text` for a 16-byte load, are left to
/// [`candidates_plain`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn candidates_avx2(text: &[u8], end: usize, triples: &Triples, mask: &mut [u64]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_srli_si128, _mm256_and_si256, _mm256_castsi256_ps,
        _mm256_cvtepu8_epi32, _mm256_i32gather_epi32, _mm256_movemask_ps, _mm256_mullo_epi32,
        _mm256_or_si256, _mm256_set1_epi32, _mm256_slli_epi32, _mm256_srli_epi32,
        _mm256_srlv_epi32,
    };
    let mut p = 0;
    while p + 8 <= end && p + 16 <= text.len() {
        // SAFETY: bytes `p..p + 16` are inside `text`; every gathered index
        // is a 16-bit key over 32, inside the 2,048 words of `triples`.
        let bits = unsafe {
            let v = _mm_loadu_si128(text.as_ptr().add(p).cast::<__m128i>());
            let b0 = _mm256_cvtepu8_epi32(v);
            let b1 = _mm256_cvtepu8_epi32(_mm_srli_si128::<1>(v));
            let b2 = _mm256_cvtepu8_epi32(_mm_srli_si128::<2>(v));
            let window = _mm256_or_si256(
                b0,
                _mm256_or_si256(_mm256_slli_epi32::<8>(b1), _mm256_slli_epi32::<16>(b2)),
            );
            let key = _mm256_srli_epi32::<16>(_mm256_mullo_epi32(
                window,
                _mm256_set1_epi32(0x9e37_79b1_u32 as i32),
            ));
            let words = _mm256_i32gather_epi32::<4>(
                triples.as_ptr().cast::<i32>(),
                _mm256_srli_epi32::<5>(key),
            );
            let bits = _mm256_srlv_epi32(words, _mm256_and_si256(key, _mm256_set1_epi32(31)));
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<31>(bits))) as u32
        };
        // `p` is a multiple of 8: its eight bits lie in one word.
        mask[p / 64] |= u64::from(bits) << (p % 64);
        p += 8;
    }
    p
}

/// Up to the first 8 bytes of a byte string as one little-endian word, and
/// how many there are (as a mask): most patterns are compared whole by one
/// `u64` comparison instead of a `memcmp` call.
#[derive(Clone, Copy)]
struct Head {
    bytes: u64,
    mask: u64,
}

impl Head {
    #[inline]
    fn of(b: &[u8]) -> Head {
        let n = b.len().min(8);
        // One load when there are eight bytes (a `memcpy` call otherwise).
        let word = match b.first_chunk::<8>() {
            Some(&w) => w,
            None => {
                let mut word = [0u8; 8];
                word[..n].copy_from_slice(&b[..n]);
                word
            }
        };
        Head {
            bytes: u64::from_le_bytes(word),
            mask: if n == 8 {
                u64::MAX
            } else {
                (1u64 << (n * 8)) - 1
            },
        }
    }

    /// Does `text` (whose head is `here`) start with `pattern` (whose head
    /// is `self`)?
    #[inline]
    fn matches(self, here: Head, text: &[u8], pattern: &[u8]) -> bool {
        self.mask & !here.mask == 0
            && here.bytes & self.mask == self.bytes
            && (pattern.len() <= 8 || text.starts_with(pattern))
    }
}

/// The last (up to) 8 bytes of `b` as a little-endian word, aligned to its
/// top: a pattern of `n <= 8` bytes ends `b` when the word shifted down by
/// `8 - n` bytes equals the pattern's [`Head`].
#[inline]
fn tail_word(b: &[u8]) -> u64 {
    if let Some(&w) = b.last_chunk::<8>() {
        return u64::from_le_bytes(w);
    }
    let n = b.len();
    let mut word = [0u8; 8];
    word[8 - n..].copy_from_slice(b);
    u64::from_le_bytes(word)
}

static SIGNAL_INDEX: std::sync::LazyLock<SignalIndex> = std::sync::LazyLock::new(|| {
    let mut index = SignalIndex {
        langs: Vec::new(),
        lang_of: Vec::with_capacity(SIGNALS.len()),
        start: vec![Vec::new(); 256],
        anywhere: vec![Vec::new(); 256],
        end: vec![Vec::new(); 256],
        triples: Box::new([0; TRIPLE_BITS / 32]),
        heads: SIGNALS.iter().map(|s| Head::of(s.1.as_bytes())).collect(),
    };
    for (s, &(lang, pattern, at, _)) in SIGNALS.iter().enumerate() {
        let l = match index.langs.iter().position(|&x| x == lang) {
            Some(l) => l,
            None => {
                index.langs.push(lang);
                index.langs.len() - 1
            }
        };
        index.lang_of.push(l);
        let bytes = pattern.as_bytes();
        if let At::Anywhere = at {
            assert!(bytes.len() >= 2, "an Anywhere signal has two bytes or more");
            let thirds = match bytes.get(2) {
                Some(&c) => c..=c,
                None => 0..=255,
            };
            for c in thirds {
                let k = triple_key(u32::from_le_bytes([bytes[0], bytes[1], c, 0]));
                index.triples[k / 32] |= 1 << (k % 32);
            }
        }
        let (table, key) = match at {
            At::Start => (&mut index.start, bytes[0]),
            At::Anywhere => (&mut index.anywhere, bytes[0]),
            At::End => (&mut index.end, bytes[bytes.len() - 1]),
        };
        table[usize::from(key)].push(s);
    }
    index
});

/// Scores each language by its signals and returns the best one when it is
/// clearly supported. Each signal counts once per line it appears in.
fn keyword_language(text: &str) -> Option<&'static str> {
    let mut lines = Vec::with_capacity(KEYWORD_LINES);
    let base = text.as_ptr() as usize;
    super::scan::lines_until(text, |line| {
        let t = super::scan::trim(line);
        if !t.is_empty() {
            let start = t.as_ptr() as usize - base;
            lines.push((start, start + t.len()));
        }
        lines.len() < KEYWORD_LINES
    });
    Scorer::new(text, &lines).best()
}

/// [`detect_language`] of the text of `table`, its lines read from the table.
pub(crate) fn detect_language_lines(
    table: &super::lines::LineTable<'_>,
    may_fence: bool,
) -> Option<&'static str> {
    let text = table.text();
    if may_fence && let Some(lang) = fence_language(text) {
        return Some(lang);
    }
    if let Some(lang) = shebang_language(text) {
        return Some(lang);
    }
    let base = text.as_ptr() as usize;
    let mut lines: Vec<(usize, usize)> = Vec::with_capacity(KEYWORD_LINES);
    lines.extend(
        (0..table.len())
            .filter(|&i| !table.lines()[i].blank)
            .map(|i| table.trimmed(i))
            .filter(|t| !t.is_empty())
            .take(KEYWORD_LINES)
            .map(|t| {
                (
                    t.as_ptr() as usize - base,
                    t.as_ptr() as usize - base + t.len(),
                )
            }),
    );
    Scorer::new(text, &lines).best()
}

/// Language scores of some lines of a text.
struct Scorer {
    index: &'static SignalIndex,
    scores: Vec<u32>,
}

impl Scorer {
    /// Scores the trimmed, non-blank `lines` of `text` (byte ranges, in
    /// order): each signal counts once per line it appears in.
    fn new(text: &str, lines: &[(usize, usize)]) -> Scorer {
        let index = &*SIGNAL_INDEX;
        let mut scores = vec![0; index.langs.len()];
        // The line each signal last hit, so it counts once per line.
        let mut hit_on = vec![usize::MAX; SIGNALS.len()];
        let text = text.as_bytes();
        let read = lines.last().map_or(0, |l| l.1);
        let maybe = candidate_mask(text, read, &index.triples);
        for (n, &(start, end)) in lines.iter().enumerate() {
            let b = &text[start..end];
            let mut hit = |s: usize| {
                if hit_on[s] != n {
                    hit_on[s] = n;
                    scores[index.lang_of[s]] += SIGNALS[s].3;
                }
            };
            let head = Head::of(b);
            for &s in &index.start[usize::from(b[0])] {
                if index.heads[s].matches(head, b, SIGNALS[s].1.as_bytes()) {
                    hit(s);
                }
            }
            let tail = tail_word(b);
            for &s in &index.end[usize::from(b[b.len() - 1])] {
                let pattern = SIGNALS[s].1.as_bytes();
                let n = pattern.len();
                let ends = if n <= 8 {
                    b.len() >= n && tail >> (8 * (8 - n)) == index.heads[s].bytes
                } else {
                    b.ends_with(pattern)
                };
                if ends {
                    hit(s);
                }
            }
            // A signal has two bytes or more: none starts at the last byte.
            super::scan::for_each_bit(&maybe, start, end - 1, |at| {
                let rest = &text[at..end];
                let here = Head::of(rest);
                for &s in &index.anywhere[usize::from(rest[0])] {
                    if index.heads[s].matches(here, rest, SIGNALS[s].1.as_bytes()) {
                        hit(s);
                    }
                }
            });
        }
        Scorer { index, scores }
    }

    /// The best-scoring language, when it is clearly supported.
    fn best(self) -> Option<&'static str> {
        let Scorer { index, scores } = self;
        let score = |lang: &str| {
            index
                .langs
                .iter()
                .position(|&l| l == lang)
                .map_or(0, |l| scores[l])
        };
        // Superset languages inherit the base language's signals.
        let mut totals: Vec<(usize, u32)> = scores
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s > 0)
            .map(|(l, &s)| match index.langs[l] {
                "typescript" => (l, s + score("javascript")),
                "cpp" => (l, s + score("c")),
                _ => (l, s),
            })
            .collect();
        // Stable order so ties resolve the same way every time: table order.
        totals.sort_by_key(|&(l, s)| (std::cmp::Reverse(s), l));
        let (best, best_score) = *totals.first()?;
        if best_score < 4 {
            return None;
        }
        // TypeScript and C++ only when their own signals are present; otherwise the
        // inherited base language score would let them win every tie.
        match index.langs[best] {
            "typescript" if score("typescript") < 4 => Some("javascript"),
            "cpp" if score("cpp") < 4 => Some("c"),
            best => Some(best),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_normalize() {
        assert_eq!(normalize_language("py"), Some("python"));
        assert_eq!(normalize_language(" C++ "), Some("cpp"));
        assert_eq!(normalize_language("rust,ignore"), Some("rust"));
        assert_eq!(normalize_language("golang"), Some("go"));
        assert_eq!(normalize_language(".ts"), Some("typescript"));
        assert_eq!(normalize_language("brainfuck"), None);
        assert_eq!(normalize_language(""), None);
    }

    #[test]
    fn fence_wins() {
        assert_eq!(
            detect_language("fix this\n```rs\nfn main() {}\n```\n"),
            Some("rust")
        );
    }

    #[test]
    fn shebangs() {
        assert_eq!(
            detect_language("#!/usr/bin/env python3\nx = 1\n"),
            Some("python")
        );
        assert_eq!(detect_language("#!/bin/bash\necho hi\n"), Some("bash"));
        assert_eq!(
            detect_language("#!/usr/bin/env -S node --harmony\n"),
            Some("javascript")
        );
    }

    #[test]
    fn keywords() {
        let py = "import os\n\ndef load(path):\n    if not path:\n        return None\n    elif x:\n        pass\n";
        assert_eq!(detect_language(py), Some("python"));
        let rs = "use std::io;\n\npub fn main() {\n    let mut x = 1;\n    println!(\"{x}\");\n}\n";
        assert_eq!(detect_language(rs), Some("rust"));
        let js = "const fs = require('fs');\nfunction load(p) {\n  return p === 1;\n}\nmodule.exports = { load };\n";
        assert_eq!(detect_language(js), Some("javascript"));
        let ts = "export interface User {\n  name: string;\n  age: number;\n}\nconst f = (u: User): boolean => u.age > 1;\n";
        assert_eq!(detect_language(ts), Some("typescript"));
        let c = "#include <stdio.h>\n#include <stdlib.h>\n\nint main(void) {\n    char *p = malloc(4);\n    printf(\"%p\", p);\n    free(p);\n    return 0;\n}\n";
        assert_eq!(detect_language(c), Some("c"));
        let cpp = "#include <iostream>\n#include <vector>\n\nint main() {\n    std::vector<int> v;\n    std::cout << v.size();\n}\n";
        assert_eq!(detect_language(cpp), Some("cpp"));
        let go = "package main\n\nimport (\n\t\"fmt\"\n)\n\nfunc main() {\n\tx := 1\n\tfmt.Println(x)\n}\n";
        assert_eq!(detect_language(go), Some("go"));
    }

    /// The plain scan the index replaces: every signal tested on every line.
    fn keyword_language_reference(text: &str) -> Option<&'static str> {
        let mut scores: Vec<(&'static str, u32)> = Vec::new();
        for t in text
            .lines()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .take(KEYWORD_LINES)
        {
            for &(lang, pattern, at, weight) in SIGNALS {
                let hit = match at {
                    At::Start => t.starts_with(pattern),
                    At::Anywhere => t.contains(pattern),
                    At::End => t.ends_with(pattern),
                };
                if hit {
                    match scores.iter_mut().find(|(l, _)| *l == lang) {
                        Some(entry) => entry.1 += weight,
                        None => scores.push((lang, weight)),
                    }
                }
            }
        }
        let score = |lang: &str| scores.iter().find(|(l, _)| *l == lang).map_or(0, |e| e.1);
        let mut totals: Vec<(&'static str, u32)> = scores
            .iter()
            .map(|&(lang, s)| match lang {
                "typescript" => (lang, s + score("javascript")),
                "cpp" => (lang, s + score("c")),
                _ => (lang, s),
            })
            .collect();
        totals.sort_by_key(|&(lang, s)| {
            let rank = SIGNALS.iter().position(|(l, ..)| *l == lang);
            (std::cmp::Reverse(s), rank)
        });
        let (best, best_score) = *totals.first()?;
        if best_score < 4 {
            return None;
        }
        match best {
            "typescript" if score("typescript") < 4 => Some("javascript"),
            "cpp" if score("cpp") < 4 => Some("c"),
            _ => Some(best),
        }
    }

    #[test]
    fn indexed_scan_scores_as_the_plain_scan() {
        let samples = [
            "import os\n\ndef load(path):\n    if not path:\n        return None\n",
            "const a = b === c; const d = e !== f; console.log(a === d);\n",
            "#include <iostream>\nint main() { std::cout << nullptr; }\n",
            "fn main() { let mut x = Some(1); if let Some(y) = x { println!(\"{y}\"); } }\n",
            "package main\nfunc main() {\n\tif err != nil {\n\t\treturn\n\t}\n}\n",
            "SELECT a FROM b WHERE c;\nINSERT INTO t VALUES (1);\n",
            "<?php echo $this->name; ?>\n<div></div></div>\n",
            "x => x => x => y; ===== !== !==\n  then\nfi\nesac\n",
            "größe = 1 # ünïcödé\n→ const é = 1;\n",
            "@@@@ ((self ((self self.self. \"\"\"\"\"\" None None\n):\n",
            "",
            "   \n\t\n",
        ];
        let by_table =
            |text: &str| detect_language_lines(&crate::prompt::lines::LineTable::new(text), true);
        for text in samples {
            assert_eq!(
                keyword_language(text),
                keyword_language_reference(text),
                "{text:?}"
            );
            assert_eq!(by_table(text), detect_language(text), "{text:?}");
        }
        // Every pattern alone, twice on a line, and at a line's start and end.
        for &(_, pattern, ..) in SIGNALS {
            for text in [
                format!("{pattern}\n"),
                format!("x {pattern} {pattern} y\n{pattern}{pattern}\n"),
                format!("{pattern} mid {pattern}\nlet {pattern}\n"),
                // Long lines: patterns around and past byte 64.
                format!("{}{pattern} {}{pattern}\n", "x".repeat(61), "y".repeat(70)),
                format!("{}{pattern}\n", "z ".repeat(40)),
            ] {
                assert_eq!(
                    keyword_language(&text),
                    keyword_language_reference(&text),
                    "{text:?}"
                );
                assert_eq!(by_table(&text), detect_language(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn prose_is_not_code() {
        assert_eq!(detect_language("hello there, how are you today?"), None);
        assert_eq!(detect_language(""), None);
    }

    #[test]
    fn comment_syntax() {
        assert_eq!(line_comment("python"), Some("#"));
        assert_eq!(line_comment("rs"), Some("//"));
        assert_eq!(line_comment("sql"), Some("--"));
        assert_eq!(line_comment("json"), None);
        assert_eq!(line_comment("klingon"), None);
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// The AVX2 filter sets the bits the one-at-a-time loop sets, up to
        /// any end (near the text's end too), and every position where a
        /// signal starts is among them.
        #[test]
        fn candidate_filters_agree(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-zA-Z_ ().:=!<>&\"$~{}-]{0,40}\n?",
                    proptest::sample::select(SIGNALS.iter().map(|s| s.1).collect::<Vec<_>>())
                        .prop_map(str::to_owned),
                ],
                0..30,
            ),
            cut in 0usize..900,
        ) {
            // On x86-64 the AVX2 path must be what is compared (the node
            // needs AVX2 too), not the plain loop with itself.
            #[cfg(target_arch = "x86_64")]
            proptest::prop_assert!(std::arch::is_x86_feature_detected!("avx2"));
            let text = pieces.concat();
            let index = &*SIGNAL_INDEX;
            let b = text.as_bytes();
            let end = cut.min(b.len());
            let mut plain = vec![0u64; end.div_ceil(64)];
            candidates_plain(b, 0, end, &index.triples, &mut plain);
            let got = candidate_mask(b, end, &index.triples);
            proptest::prop_assert_eq!(&got, &plain);
            for &(_, pattern, at, _) in SIGNALS {
                if let At::Anywhere = at {
                    for (i, _) in text[..end].match_indices(pattern) {
                        proptest::prop_assert!(got[i / 64] >> (i % 64) & 1 == 1, "{pattern:?} at {i}");
                    }
                }
            }
        }
    }
}
