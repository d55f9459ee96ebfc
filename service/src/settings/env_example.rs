//! What a `.env` example must document: exactly the variables the binary reads.

use std::collections::BTreeSet;

use super::Settings;
use crate::logging;

/// Every environment variable `T`'s binary reads: its table's and logging's.
pub fn env_names<T: Settings>() -> BTreeSet<&'static str> {
    T::table()
        .iter()
        .map(|r| r.setting.env)
        .chain(logging::VARIABLES)
        .collect()
}

/// The variables a `.env` example documents: `NAME=` lines, active or commented out.
fn documented(example: &str) -> BTreeSet<String> {
    example
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix('#').unwrap_or(l);
            let (name, _) = l.split_once('=')?;
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            is_name.then(|| name.to_string())
        })
        .collect()
}

/// Checks that a `.env` example documents exactly the variables `T`'s binary
/// reads; the error lists what is missing and what is extra.
pub fn check_env_example<T: Settings>(example: &str) -> Result<(), String> {
    let docs = documented(example);
    let read: BTreeSet<String> = env_names::<T>().into_iter().map(String::from).collect();
    let missing: Vec<_> = read.difference(&docs).cloned().collect();
    let extra: Vec<_> = docs.difference(&read).cloned().collect();
    if missing.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "undocumented: {missing:?}; documented but not read: {extra:?}"
        ))
    }
}
