//! Byte classes of a text as bit masks, 64 bytes per `u64`, so the scans of a
//! preparation find words by bit arithmetic instead of a branch per byte
//! (whose mispredictions at every word edge were most of their time).
//!
//! On x86-64 CPUs with AVX2 the whole 64-byte blocks are read 32 bytes at a
//! time, on aarch64 (the Pi) 16 bytes at a time with NEON, and the last,
//! partial block by a table per byte; elsewhere every block by the table.
//! All give the same masks (a test compares them).

/// Is AVX2 present (checked once per process by the standard library)?
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Bit `i % 64` of entry `i / 64` describes byte `i`; bits past the end are 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masks {
    /// Bytes of words: ASCII letters, digits and `_`, and the bytes of
    /// alphanumeric non-ASCII characters (as `char::is_alphanumeric` has it).
    pub word: Vec<u64>,
    /// Word bytes that are not ASCII lowercase letters: a word without any is
    /// a plain lowercase word.
    pub special: Vec<u64>,
    /// ASCII uppercase letters.
    pub upper: Vec<u64>,
    /// ASCII digits.
    pub digit: Vec<u64>,
    /// `_`.
    pub under: Vec<u64>,
    /// Bytes of non-ASCII characters (alphanumeric or not).
    pub high: Vec<u64>,
    /// Length of the text in bytes.
    pub len: usize,
}

/// Bits of a byte's classes, in the order of [`Masks`]' fields (lowercase
/// letters set only `word`).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_lowercase() {
            1
        } else if c.is_ascii_uppercase() {
            1 | 2 | 4
        } else if c.is_ascii_digit() {
            1 | 2 | 8
        } else if c == b'_' {
            1 | 2 | 16
        } else if c >= 0x80 {
            1 | 2 | 32
        } else {
            0
        };
        b += 1;
    }
    t
};

impl Masks {
    /// The masks of `text`.
    pub fn new(text: &str) -> Masks {
        let mut m = Masks::raw(text.as_bytes(), true);
        // Non-ASCII bytes are in the masks already: no second pass over the
        // text to find whether it has any.
        if m.high.iter().any(|&w| w != 0) {
            m.clear_non_alphanumeric(text);
        }
        m
    }

    /// The masks of `b` with every non-ASCII byte taken as a word byte,
    /// with AVX2 where there is and `simd` asks for it, or a byte at a time.
    fn raw(b: &[u8], simd: bool) -> Masks {
        let blocks = b.len().div_ceil(64);
        let mut m = Masks {
            word: vec![0; blocks],
            special: vec![0; blocks],
            upper: vec![0; blocks],
            digit: vec![0; blocks],
            under: vec![0; blocks],
            high: vec![0; blocks],
            len: b.len(),
        };
        #[cfg(target_arch = "x86_64")]
        let done = if simd && has_avx2() {
            // SAFETY: AVX2 is present (checked just above).
            unsafe { m.push_avx2(b) }
        } else {
            0
        };
        #[cfg(target_arch = "aarch64")]
        let done = if simd {
            // SAFETY: NEON is part of every aarch64 CPU (the target enables
            // it).
            unsafe { m.push_neon(b) }
        } else {
            0
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let done = {
            let _ = simd;
            0
        };
        m.push_plain(&b[done..], done / 64);
        m
    }

    /// Sets entry `k` of every mask (allocated whole up front).
    #[inline]
    fn set(&mut self, k: usize, words: [u64; 6]) {
        let [word, special, upper, digit, under, high] = words;
        self.word[k] = word;
        self.special[k] = special;
        self.upper[k] = upper;
        self.digit[k] = digit;
        self.under[k] = under;
        self.high[k] = high;
    }

    /// Masks of `b` a byte at a time, 64 bytes per entry (non-ASCII bytes
    /// all taken as word bytes).
    fn push_plain(&mut self, b: &[u8], mut k: usize) {
        class_blocks(b, &CLASS, |words| {
            self.set(k, words);
            k += 1;
        });
    }

    /// [`Masks::push_plain`] of the whole 64-byte blocks of `b`, 32 bytes a
    /// step; returns how many bytes it read.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn push_avx2(&mut self, b: &[u8]) -> usize {
        use std::arch::x86_64::{
            __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
            _mm256_movemask_epi8, _mm256_set1_epi8,
        };
        let full = b.len() / 64;
        // The masks as slices of the whole blocks: their lengths are known
        // not to change, so no bounds check is left inside the loop (see
        // `Spaces::push_avx2`).
        let mut out = [
            &mut self.word[..full],
            &mut self.special[..full],
            &mut self.upper[..full],
            &mut self.digit[..full],
            &mut self.under[..full],
            &mut self.high[..full],
        ];
        for k in 0..full {
            let mut words = [0u64; 6];
            for h in 0..2 {
                // SAFETY: bytes 64k+32h..+32 are inside `b`.
                let v = unsafe {
                    _mm256_loadu_si256(b.as_ptr().add(k * 64 + h * 32).cast::<__m256i>())
                };
                let between = |lo: u8, hi: u8| {
                    _mm256_and_si256(
                        _mm256_cmpgt_epi8(v, _mm256_set1_epi8((lo - 1) as i8)),
                        _mm256_cmpgt_epi8(_mm256_set1_epi8((hi + 1) as i8), v),
                    )
                };
                // Bytes of 0x80 and up are negative as signed: the sign bit
                // is theirs, and no range above matches them.
                let [lower, upper, digit, under, high] = [
                    between(b'a', b'z'),
                    between(b'A', b'Z'),
                    between(b'0', b'9'),
                    _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'_' as i8)),
                    v,
                ]
                .map(|x| _mm256_movemask_epi8(x) as u32 as u64);
                let special = upper | digit | under | high;
                for (w, x) in
                    words
                        .iter_mut()
                        .zip([lower | special, special, upper, digit, under, high])
                {
                    *w |= x << (h * 32);
                }
            }
            for (m, w) in out.iter_mut().zip(words) {
                m[k] = w;
            }
        }
        full * 64
    }

    /// [`Masks::push_plain`] of the whole 64-byte blocks of `b` with NEON
    /// (part of every aarch64 CPU); returns how many bytes it read.
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    fn push_neon(&mut self, b: &[u8]) -> usize {
        use std::arch::aarch64::{vandq_u8, vceqq_u8, vcgeq_u8, vcleq_u8, vdupq_n_u8};
        let full = b.len() / 64;
        // Slices of the whole blocks: no bounds check inside the loop (see
        // `Spaces::push_avx2`).
        let mut out = [
            &mut self.word[..full],
            &mut self.special[..full],
            &mut self.upper[..full],
            &mut self.digit[..full],
            &mut self.under[..full],
            &mut self.high[..full],
        ];
        for k in 0..full {
            let v = neon_block(b, k);
            let between = |lo: u8, hi: u8| {
                movemask64(
                    v.map(|x| vandq_u8(vcgeq_u8(x, vdupq_n_u8(lo)), vcleq_u8(x, vdupq_n_u8(hi)))),
                )
            };
            let lower = between(b'a', b'z');
            let upper = between(b'A', b'Z');
            let digit = between(b'0', b'9');
            let under = movemask64(v.map(|x| vceqq_u8(x, vdupq_n_u8(b'_'))));
            let high = movemask64(v.map(|x| vcgeq_u8(x, vdupq_n_u8(0x80))));
            let special = upper | digit | under | high;
            let words = [lower | special, special, upper, digit, under, high];
            for (m, w) in out.iter_mut().zip(words) {
                m[k] = w;
            }
        }
        full * 64
    }

    /// Clears the word bit of the bytes of every non-ASCII character that is
    /// not alphanumeric.
    fn clear_non_alphanumeric(&mut self, text: &str) {
        wide_chars_until(text, |i, c| {
            if !c.is_alphanumeric() {
                for k in i..i + c.len_utf8() {
                    self.word[k / 64] &= !(1u64 << (k % 64));
                    self.special[k / 64] &= !(1u64 << (k % 64));
                }
            }
            true
        });
    }

    /// Calls `f(start, end)` with the byte span of every word (maximal run
    /// of word bytes), in order ([`for_each_run`] of the word mask).
    #[inline]
    pub fn for_each_word(&self, f: impl FnMut(usize, usize)) {
        for_each_run(&self.word, f);
    }

    /// The byte span of every word, in order ([`Masks::for_each_word`]).
    #[cfg(test)]
    pub fn spans(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        self.for_each_word(|s, e| out.push((s as u32, e as u32)));
        out
    }

    /// Does `start..end` hold a byte other than an ASCII lowercase letter
    /// (for a word: is it other than a plain lowercase word)?
    #[inline]
    pub fn special_in(&self, start: usize, end: usize) -> bool {
        start < end && any_in(&self.special, start, end)
    }
}

/// `str::trim`, with ASCII-only ends trimmed as bytes.
#[inline]
pub fn trim(s: &str) -> &str {
    let t = s.trim_ascii();
    match (t.as_bytes().first(), t.as_bytes().last()) {
        // `trim_ascii` leaves the vertical tab, which `str::trim` takes.
        (Some(&a), Some(&z)) if a >= 0x80 || z >= 0x80 || a == 0x0b || z == 0x0b => t.trim(),
        _ => t,
    }
}

/// Calls `push` with the masks of each 64-byte block of `b` (the last may be
/// shorter), a byte at a time: bit `f` of a byte's entry in `table` sets its
/// bit in mask `f`.
fn class_blocks<const N: usize>(b: &[u8], table: &[u8; 256], mut push: impl FnMut([u64; N])) {
    for chunk in b.chunks(64) {
        let mut words = [0u64; N];
        for (i, &c) in chunk.iter().enumerate() {
            let class = table[usize::from(c)];
            for (f, w) in words.iter_mut().enumerate() {
                *w |= u64::from(class >> f & 1) << i;
            }
        }
        push(words);
    }
}

/// Calls `f(i, c)` for each character `c` of more than one byte of `text`
/// (at byte `i`), in order, until it returns false; returns whether it went
/// through all of them. ASCII is skipped 16 bytes at a time.
pub fn wide_chars_until(text: &str, mut f: impl FnMut(usize, char) -> bool) -> bool {
    const HIGH: u128 = u128::from_ne_bytes([0x80; 16]);
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if let Some(block) = b.get(i..i + 16)
            && u128::from_ne_bytes(block.try_into().unwrap_or([0; 16])) & HIGH == 0
        {
            i += 16;
            continue;
        }
        if b[i] < 0x80 {
            i += 1;
            continue;
        }
        // `i` is a character boundary: it follows ASCII bytes or a whole
        // character.
        let c = text[i..].chars().next().unwrap_or(' ');
        if !f(i, c) {
            return false;
        }
        i += c.len_utf8();
    }
    true
}

/// Calls `f` for each piece of `text` between line breaks, as
/// `text.split('\n')` gives them, until `f` returns false.
pub fn lines_until(text: &str, mut f: impl FnMut(&str) -> bool) {
    let mut from = 0;
    let finished = try_for_each_newline(text.as_bytes(), |at| {
        // `from..at` lies between line breaks (ASCII bytes), so on char
        // boundaries.
        let go = f(&text[from..at]);
        from = at + 1;
        go
    });
    if finished {
        f(&text[from..]);
    }
}

/// Calls `f(i)` for the index of every `\n` in `b`, in order, until `f`
/// returns false; returns whether it went through all of `b`.
#[inline]
fn try_for_each_newline(b: &[u8], mut f: impl FnMut(usize) -> bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let full = b.len() / 16;
        for k in 0..full {
            // SAFETY: SSE2 is part of the x86-64 baseline; bytes 16k..16k+16
            // are inside `b`.
            let mut mask = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(k * 16).cast::<__m128i>());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))) as u32
            };
            while mask != 0 {
                if !f(k * 16 + mask.trailing_zeros() as usize) {
                    return false;
                }
                mask &= mask - 1;
            }
        }
        for (i, &c) in b.iter().enumerate().skip(full * 16) {
            if c == b'\n' && !f(i) {
                return false;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && !f(i) {
            return false;
        }
    }
    true
}

/// The whitespace of a text as bit masks (as [`Masks`]), in one pass: where
/// its lines break, what indents them, where their text starts and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spaces {
    /// `\n`.
    pub newline: Vec<u64>,
    /// A space.
    pub space: Vec<u64>,
    /// A tab.
    pub tab: Vec<u64>,
    /// ASCII whitespace as `char::is_whitespace` has it (vertical tab
    /// included).
    pub white: Vec<u64>,
    /// UTF-8 continuation bytes (a character's bytes after its first).
    pub cont: Vec<u64>,
    /// Whitespace other than a single space between non-whitespace bytes:
    /// an ASCII whitespace byte other than a space, or one followed by more
    /// whitespace. A line's trimmed text without such a bit separates its
    /// words by single spaces.
    pub rough: Vec<u64>,
}

/// Bits of a byte in [`Spaces`]' masks, in field order.
const SPACE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'\n' as usize] = 1 | 8;
    t[b' ' as usize] = 2 | 8;
    t[b'\t' as usize] = 4 | 8;
    t[0x0b] = 8;
    t[0x0c] = 8;
    t[b'\r' as usize] = 8;
    let mut b = 0x80;
    while b < 0xc0 {
        t[b] = 16;
        b += 1;
    }
    t
};

impl Spaces {
    /// The masks of `b`.
    pub fn new(b: &[u8]) -> Spaces {
        Spaces::read(b, true)
    }

    /// The masks of `b`, with AVX2 where there is and `simd` asks for it,
    /// or a byte at a time.
    fn read(b: &[u8], simd: bool) -> Spaces {
        let blocks = b.len().div_ceil(64);
        let mut m = Spaces {
            newline: vec![0; blocks],
            space: vec![0; blocks],
            tab: vec![0; blocks],
            white: vec![0; blocks],
            cont: vec![0; blocks],
            rough: Vec::new(),
        };
        #[cfg(target_arch = "x86_64")]
        let done = if simd && has_avx2() {
            // SAFETY: AVX2 is present (checked just above).
            unsafe { m.push_avx2(b) }
        } else {
            0
        };
        #[cfg(target_arch = "aarch64")]
        let done = if simd {
            // SAFETY: NEON is part of every aarch64 CPU (the target enables
            // it).
            unsafe { m.push_neon(b) }
        } else {
            0
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let done = {
            let _ = simd;
            0
        };
        m.push_plain(&b[done..], done / 64);
        m.rough = (0..blocks)
            .map(|k| {
                let white = m.white[k];
                let next = m.white.get(k + 1).map_or(0, |&x| x << 63);
                white & !m.space[k] | white & (white >> 1 | next)
            })
            .collect();
        m
    }

    /// Sets entry `k` of the masks but `rough` (see [`Masks::set`]).
    #[inline]
    fn set(&mut self, k: usize, words: [u64; 5]) {
        let [newline, space, tab, white, cont] = words;
        self.newline[k] = newline;
        self.space[k] = space;
        self.tab[k] = tab;
        self.white[k] = white;
        self.cont[k] = cont;
    }

    /// Masks of `b` a byte at a time, 64 bytes per entry.
    fn push_plain(&mut self, b: &[u8], mut k: usize) {
        class_blocks(b, &SPACE_CLASS, |words| {
            self.set(k, words);
            k += 1;
        });
    }

    /// Masks of the whole 64-byte blocks of `b`, 32 bytes per step; returns
    /// how many bytes it read.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn push_avx2(&mut self, b: &[u8]) -> usize {
        use std::arch::x86_64::{
            __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
            _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
        };
        let full = b.len() / 64;
        // The masks as slices of the whole blocks: their lengths are known
        // not to change, so no bounds check is left inside the loop (across
        // one, the compiler kept compare results as vectors of bytes, read
        // out one by one).
        let mut out = [
            &mut self.newline[..full],
            &mut self.space[..full],
            &mut self.tab[..full],
            &mut self.white[..full],
            &mut self.cont[..full],
        ];
        for k in 0..full {
            let mut words = [0u64; 5];
            for h in 0..2 {
                // SAFETY: bytes 64k+32h..+32 are inside `b`.
                let v = unsafe {
                    _mm256_loadu_si256(b.as_ptr().add(k * 64 + h * 32).cast::<__m256i>())
                };
                let newline = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\n' as i8));
                let space = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b' ' as i8));
                let tab = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\t' as i8));
                // `\t`, `\n`, vertical tab, form feed and `\r` are 9..=13.
                let controls = _mm256_and_si256(
                    _mm256_cmpgt_epi8(v, _mm256_set1_epi8(8)),
                    _mm256_cmpgt_epi8(_mm256_set1_epi8(14), v),
                );
                let white = _mm256_or_si256(controls, space);
                // 0x80..=0xbf are -128..=-65 as signed bytes.
                let cont = _mm256_cmpgt_epi8(_mm256_set1_epi8(-64), v);
                let [newline, space, tab, white, cont] = [newline, space, tab, white, cont]
                    .map(|x| _mm256_movemask_epi8(x) as u32 as u64);
                for (w, x) in words.iter_mut().zip([newline, space, tab, white, cont]) {
                    *w |= x << (h * 32);
                }
            }
            for (m, w) in out.iter_mut().zip(words) {
                m[k] = w;
            }
        }
        full * 64
    }

    /// Masks of the whole 64-byte blocks of `b` with NEON (part of every
    /// aarch64 CPU); returns how many bytes it read.
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    fn push_neon(&mut self, b: &[u8]) -> usize {
        use std::arch::aarch64::{vandq_u8, vceqq_u8, vcgeq_u8, vcleq_u8, vdupq_n_u8, vorrq_u8};
        let full = b.len() / 64;
        // Slices of the whole blocks: no bounds check inside the loop (see
        // `Spaces::push_avx2`).
        let mut out = [
            &mut self.newline[..full],
            &mut self.space[..full],
            &mut self.tab[..full],
            &mut self.white[..full],
            &mut self.cont[..full],
        ];
        for k in 0..full {
            let v = neon_block(b, k);
            let eq = |c: u8| v.map(|x| vceqq_u8(x, vdupq_n_u8(c)));
            let (newline, space, tab) = (eq(b'\n'), eq(b' '), eq(b'\t'));
            // `\t`, `\n`, vertical tab, form feed and `\r` are 9..=13.
            let white = std::array::from_fn::<_, 4, _>(|q| {
                let x = v[q];
                let controls = vandq_u8(vcgeq_u8(x, vdupq_n_u8(9)), vcleq_u8(x, vdupq_n_u8(13)));
                vorrq_u8(controls, space[q])
            });
            // Continuation bytes are 0x80..=0xbf.
            let cont =
                v.map(|x| vandq_u8(vcgeq_u8(x, vdupq_n_u8(0x80)), vcleq_u8(x, vdupq_n_u8(0xbf))));
            let words = [newline, space, tab, white, cont].map(|m| movemask64(m));
            for (m, w) in out.iter_mut().zip(words) {
                m[k] = w;
            }
        }
        full * 64
    }

    /// The first byte of `start..end` whose bit in `m` is clear, or `end`.
    #[inline]
    pub fn first_clear(m: &[u64], start: usize, end: usize) -> usize {
        Spaces::first_clear_of(|k| m[k], start, end)
    }

    /// [`Spaces::first_clear`] in the mask whose entries `word` gives.
    #[inline]
    pub fn first_clear_of(word: impl Fn(usize) -> u64, start: usize, end: usize) -> usize {
        let mut i = start;
        while i < end {
            let clear = !word(i / 64) >> (i % 64);
            if clear != 0 {
                return (i + clear.trailing_zeros() as usize).min(end);
            }
            i = (i / 64 + 1) * 64;
        }
        end
    }

    /// One past the last byte of `start..end` whose bit in `m` is clear, or
    /// `start`.
    #[inline]
    pub fn last_clear_end(m: &[u64], start: usize, end: usize) -> usize {
        let mut i = end;
        while i > start {
            // Bits of the bytes before `i` in its word, topmost first.
            let k = (i - 1) / 64;
            let shift = 63 - (i - 1) % 64;
            let clear = !m[k] << shift;
            if clear != 0 {
                return (i - clear.leading_zeros() as usize).max(start);
            }
            i = k * 64;
        }
        start
    }

    /// How many bits of `start..end` are set in `m`.
    #[inline]
    pub fn count(m: &[u64], start: usize, end: usize) -> usize {
        if start >= end {
            return 0;
        }
        let (first, last) = (start / 64, (end - 1) / 64);
        let head = u64::MAX << (start % 64);
        let tail = u64::MAX >> (63 - (end - 1) % 64);
        if first == last {
            return (m[first] & head & tail).count_ones() as usize;
        }
        let middle: u32 = m[first + 1..last].iter().map(|x| x.count_ones()).sum();
        ((m[first] & head).count_ones() + middle + (m[last] & tail).count_ones()) as usize
    }
}

/// Calls `f(i)` for every bit `i` of `start..end` set in `m`, in order.
#[inline]
pub fn for_each_bit(m: &[u64], start: usize, end: usize, mut f: impl FnMut(usize)) {
    if start >= end {
        return;
    }
    let (first, last) = (start / 64, (end - 1) / 64);
    for (k, &word) in m.iter().enumerate().take(last + 1).skip(first) {
        let mut word = word;
        if k == first {
            word &= u64::MAX << (start % 64);
        }
        if k == last {
            word &= u64::MAX >> (63 - (end - 1) % 64);
        }
        while word != 0 {
            f(k * 64 + word.trailing_zeros() as usize);
            word &= word - 1;
        }
    }
}

/// The 64 bytes of block `k` of `b` (which holds them) as four NEON vectors.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
#[inline]
fn neon_block(b: &[u8], k: usize) -> [std::arch::aarch64::uint8x16_t; 4] {
    let block = &b[k * 64..k * 64 + 64];
    // SAFETY: each load reads 16 bytes of `block`, which has 64.
    std::array::from_fn(|q| unsafe { std::arch::aarch64::vld1q_u8(block.as_ptr().add(q * 16)) })
}

/// One bit per byte of four NEON compare results (bytes all ones or all
/// zeros), first byte lowest: NEON has no `movemask`, so each byte keeps the
/// bit of its place in its group of eight, and three rounds of pairwise adds
/// gather the groups into a word.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
#[inline]
fn movemask64(v: [std::arch::aarch64::uint8x16_t; 4]) -> u64 {
    use std::arch::aarch64::{vandq_u8, vgetq_lane_u64, vld1q_u8, vpaddq_u8, vreinterpretq_u64_u8};
    const PLACES: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: `PLACES` has the 16 bytes loaded.
    let places = unsafe { vld1q_u8(PLACES.as_ptr()) };
    let [a, b, c, d] = v.map(|x| vandq_u8(x, places));
    let ab = vpaddq_u8(a, b);
    let cd = vpaddq_u8(c, d);
    let abcd = vpaddq_u8(ab, cd);
    vgetq_lane_u64::<0>(vreinterpretq_u64_u8(vpaddq_u8(abcd, abcd)))
}

/// Calls `f(start, end)` with the span of every maximal run of set bits of
/// `m`, in order: run starts and ends are found 64 bits at a time by
/// shifting, and read off by popping bits.
#[inline]
pub fn for_each_run(m: &[u64], mut f: impl FnMut(usize, usize)) {
    let mut start = None;
    for (k, &w) in m.iter().enumerate() {
        let before = if k > 0 { m[k - 1] >> 63 } else { 0 };
        let after = m.get(k + 1).map_or(0, |&x| x & 1);
        // First and last byte of each word.
        let mut first = w & !(w << 1 | before);
        let mut last = w & !(w >> 1 | after << 63);
        let base = k * 64;
        loop {
            let s = match start {
                Some(s) => s,
                None if first != 0 => {
                    let s = base + first.trailing_zeros() as usize;
                    first &= first - 1;
                    s
                }
                None => break,
            };
            if last == 0 {
                // The word goes on in the next block.
                start = Some(s);
                break;
            }
            start = None;
            f(s, base + last.trailing_zeros() as usize + 1);
            last &= last - 1;
        }
    }
}

/// Is any bit of `start..end` set in `m`?
#[inline]
pub fn any_in(m: &[u64], start: usize, end: usize) -> bool {
    let (first, last) = (start / 64, (end - 1) / 64);
    let head = u64::MAX << (start % 64);
    let tail = u64::MAX >> (63 - (end - 1) % 64);
    if first == last {
        return m[first] & head & tail != 0;
    }
    m[first] & head != 0 || m[first + 1..last].iter().any(|&x| x != 0) || m[last] & tail != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Words as the tokenizer's plain scan finds them.
    fn words_reference(text: &str) -> Vec<(usize, usize, bool)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
            let word = c.is_alphanumeric() || c == '_';
            match (start, word) {
                (None, true) => start = Some(i),
                (Some(s), false) => {
                    let w = &text[s..i];
                    out.push((s, i, !w.bytes().all(|b| b.is_ascii_lowercase())));
                    start = None;
                }
                _ => {}
            }
        }
        out
    }

    fn check(text: &str) {
        let m = Masks::new(text);
        let got: Vec<(usize, usize, bool)> = m
            .spans()
            .into_iter()
            .map(|(s, e)| (s as usize, e as usize, m.special_in(s as usize, e as usize)))
            .collect();
        assert_eq!(got, words_reference(text), "{text:?}");
        let b = text.as_bytes();
        // The vector path is the one compared (this machine has it).
        #[cfg(target_arch = "x86_64")]
        assert!(has_avx2());
        let raw = Masks::raw(b, true);
        assert_eq!(Masks::raw(b, false), raw, "{text:?}");
        let bit = |v: &[u64], i: usize| v[i / 64] >> (i % 64) & 1 == 1;
        for (i, &c) in b.iter().enumerate() {
            assert_eq!(bit(&raw.upper, i), c.is_ascii_uppercase());
            assert_eq!(bit(&raw.digit, i), c.is_ascii_digit());
            assert_eq!(bit(&raw.under, i), c == b'_');
            assert_eq!(bit(&raw.high, i), c >= 0x80);
        }
    }

    #[test]
    fn words_and_classes() {
        for text in [
            "",
            "a",
            "ab cd_e Fg h1 __x__ 42 é—ß ∑x ab—cd",
            &"abc ".repeat(40),
            &"x".repeat(64),
            &"x".repeat(65),
            &format!("{}Y{}", "x".repeat(63), "z".repeat(70)),
            "\u{7f}\u{80}\u{ff}\u{100} ~`@[{",
        ] {
            check(text);
        }
    }

    /// [`Spaces`] of `text` against a byte-by-byte reading, and its bit
    /// searches against plain loops.
    fn check_spaces(text: &str) {
        let b = text.as_bytes();
        let m = Spaces::new(b);
        #[cfg(target_arch = "x86_64")]
        assert!(has_avx2());
        assert_eq!(Spaces::read(b, false), m);
        let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
        let bit = |v: &[u64], i: usize| v[i / 64] >> (i % 64) & 1 == 1;
        for i in 0..b.len() {
            assert_eq!(bit(&m.newline, i), b[i] == b'\n', "{i}");
            assert_eq!(bit(&m.space, i), b[i] == b' ', "{i}");
            assert_eq!(bit(&m.tab, i), b[i] == b'\t', "{i}");
            assert_eq!(bit(&m.white, i), ws(b[i]), "{i}");
            assert_eq!(bit(&m.cont, i), b[i] & 0xc0 == 0x80, "{i}");
            let rough = ws(b[i]) && (b[i] != b' ' || b.get(i + 1).is_some_and(|&c| ws(c)));
            assert_eq!(bit(&m.rough, i), rough, "{i}");
        }
        let n = b.len();
        for start in (0..=n).step_by(7) {
            for end in (start..=n).step_by(5).chain([n]) {
                let first = (start..end).find(|&i| !ws(b[i])).unwrap_or(end);
                assert_eq!(Spaces::first_clear(&m.white, start, end), first);
                let last = (start..end)
                    .rev()
                    .find(|&i| !ws(b[i]))
                    .map_or(start, |i| i + 1);
                assert_eq!(Spaces::last_clear_end(&m.white, start, end), last);
                let count = (start..end).filter(|&i| ws(b[i])).count();
                assert_eq!(Spaces::count(&m.white, start, end), count);
            }
        }
    }

    #[test]
    fn spaces_mark_whitespace_and_rough_space() {
        check_spaces(&format!(
            "{}a b  c\td \n e\x0b{}",
            "x y ".repeat(20),
            " z".repeat(30)
        ));
        check_spaces("");
        check_spaces(&" ".repeat(200));
        check_spaces(&format!("{}é—\u{a0}\r\n", "\t".repeat(70)));
    }

    #[test]
    fn trim_is_str_trim() {
        for text in [
            "",
            " ",
            "a",
            " a\t\n",
            "\x0b a \x0b",
            "\u{a0}a b\u{2003}",
            "é ",
            "\r\n",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn wide_chars_are_found() {
        for text in [
            "",
            "abc",
            "é",
            &format!(
                "{}—x{}é∑\u{a0}{}",
                "a".repeat(15),
                "b".repeat(40),
                "c".repeat(17)
            ),
        ] {
            let mut got = Vec::new();
            assert!(wide_chars_until(text, |i, c| {
                got.push((i, c));
                true
            }));
            let want: Vec<(usize, char)> =
                text.char_indices().filter(|(_, c)| !c.is_ascii()).collect();
            assert_eq!(got, want, "{text:?}");
        }
        assert!(!wide_chars_until("aé b ∑", |_, c| c != '∑'));
    }

    #[test]
    fn lines_are_split_as_split_does() {
        for text in [
            "",
            "\n",
            "a\nb",
            "a\r\n\nb\n",
            &"ab\n\nc".repeat(30),
            &format!("{}\n", "x".repeat(47)),
        ] {
            let mut got = Vec::new();
            lines_until(text, |l| {
                got.push(l.to_owned());
                true
            });
            let want: Vec<String> = text.split('\n').map(str::to_owned).collect();
            assert_eq!(got, want, "{text:?}");
            for stop in 0..want.len() {
                let mut got = Vec::new();
                lines_until(text, |l| {
                    got.push(l.to_owned());
                    got.len() <= stop
                });
                assert_eq!(got, want[..=stop], "{text:?} {stop}");
            }
        }
    }

    proptest! {
        #[test]
        fn masks_find_the_plain_words(text in "(\\PC|[a-z_0-9 ]{1,70}){0,60}") {
            check(&text);
        }

        #[test]
        fn bits_are_visited_in_order(
            words in prop::collection::vec(any::<u64>(), 0..5),
            start in 0usize..330,
            len in 0usize..330,
        ) {
            let n = words.len() * 64;
            let (start, end) = (start.min(n), (start + len).min(n));
            let mut got = Vec::new();
            for_each_bit(&words, start, end, |i| got.push(i));
            let want: Vec<usize> =
                (start..end).filter(|&i| words[i / 64] >> (i % 64) & 1 == 1).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn spaces_match_the_bytes(text in "(\\PC|[ \t\r\n\x0b\x0c]{1,9}|[a-z]{1,70}){0,60}") {
            check_spaces(&text);
        }
    }
}
