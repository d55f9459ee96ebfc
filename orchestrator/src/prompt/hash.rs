//! Cheap hashers for the small tables one preparation builds: the standard
//! SipHash is built to resist hash flooding, which these per-call tables of
//! fingerprints and query terms (keys that are already hashes, or a few dozen
//! words) do not need, and it cost more than the work around it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Passes a `u64` key through: for keys that are already xxh3 fingerprints.
#[derive(Default, Clone, Copy)]
pub struct U64Identity(u64);

impl Hasher for U64Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; anything else is folded in (FNV-1a).
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FNV-1a over the key's bytes: fast for short strings.
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A map keyed by fingerprints.
pub type PrintMap<V> = HashMap<u64, V, BuildHasherDefault<U64Identity>>;
/// A set of fingerprints.
pub type PrintSet = HashSet<u64, BuildHasherDefault<U64Identity>>;
/// A map keyed by short strings.
pub type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_work_with_these_hashers() {
        let mut m: PrintMap<usize> = PrintMap::default();
        m.insert(7, 1);
        m.insert(u64::MAX, 2);
        assert_eq!(m.get(&7), Some(&1));
        assert_eq!(m.get(&u64::MAX), Some(&2));
        let mut w: WordMap<&str, usize> = WordMap::default();
        w.insert("parse", 0);
        w.insert("config", 1);
        assert_eq!(w.get("config"), Some(&1));
        assert_eq!(w.get("confi"), None);
    }
}
