//! Prompt-prefix reuse across requests (llama-server's `cache_prompt`): which
//! slot a new prompt should take, and how much of what that slot holds in the
//! KV cache it can keep. Pure: the worker applies the decision to llama.cpp.
//!
//! A slot keeps the tokens of its last request (prompt and answer, exactly the
//! cells written) after the request ends. A new prompt goes to the free slot
//! whose tokens share the longest prefix with it, the least recently used among
//! equals — so a follow-up in a conversation lands where its history already is,
//! and an unrelated prompt takes the stalest slot instead of destroying a
//! conversation's cache.

/// What one sequence slot holds in the KV cache.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotCache<T> {
    /// Tokens at positions `0..tokens.len()`, every one decoded into the slot's cells.
    pub tokens: Vec<T>,
    /// When the slot was last given to a request (a counter; larger is newer).
    pub last_used: u64,
}

impl<T> Default for SlotCache<T> {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            last_used: 0,
        }
    }
}

/// Length of the longest common prefix of `a` and `b`.
pub fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The slot chosen for a prompt, and how many of its cached tokens to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The slot.
    pub slot: usize,
    /// Tokens at the start of the prompt already in the slot's cells; the worker
    /// prefills only the rest. Always less than the prompt's length, so at least
    /// one token is decoded and the next token has logits.
    pub reuse: usize,
}

/// Picks a slot among `free` (`(slot, cache)` pairs) for `prompt`; `None` when
/// no slot is free. With `reuse` off every slot counts as empty (least recently
/// used wins) and nothing is kept.
pub fn choose<'a, T: PartialEq + 'a>(
    free: impl IntoIterator<Item = (usize, &'a SlotCache<T>)>,
    prompt: &[T],
    reuse: bool,
) -> Option<Choice> {
    let (slot, shared, _) = free
        .into_iter()
        .map(|(slot, cache)| {
            let shared = if reuse {
                common_prefix(&cache.tokens, prompt)
            } else {
                0
            };
            (slot, shared, cache.last_used)
        })
        // Longest prefix first; among equals the least recently used.
        .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))?;
    Some(Choice {
        slot,
        reuse: shared.min(prompt.len().saturating_sub(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cache(tokens: &[u32], last_used: u64) -> SlotCache<u32> {
        SlotCache {
            tokens: tokens.to_vec(),
            last_used,
        }
    }

    #[test]
    fn a_follow_up_goes_where_its_history_is() {
        let slots = [cache(&[1, 2, 3, 4, 5], 9), cache(&[7, 8, 9], 1)];
        let prompt = [1, 2, 3, 4, 5, 6, 7];
        let c = choose(slots.iter().enumerate(), &prompt, true).unwrap();
        assert_eq!(c, Choice { slot: 0, reuse: 5 });
    }

    #[test]
    fn an_unrelated_prompt_takes_the_stalest_slot() {
        let slots = [cache(&[1, 2, 3], 9), cache(&[4, 5], 3), cache(&[6], 5)];
        let c = choose(slots.iter().enumerate(), &[8, 8, 8], true).unwrap();
        assert_eq!(c, Choice { slot: 1, reuse: 0 });
    }

    #[test]
    fn the_same_prompt_again_still_decodes_its_last_token() {
        let slots = [cache(&[1, 2, 3], 1)];
        let c = choose(slots.iter().enumerate(), &[1, 2, 3], true).unwrap();
        assert_eq!(c.reuse, 2, "logits are needed for the next token");
        // A prompt that is a prefix of what the slot holds keeps all but its last token.
        let c = choose(slots.iter().enumerate(), &[1, 2], true).unwrap();
        assert_eq!(c.reuse, 1);
    }

    #[test]
    fn reuse_off_keeps_nothing_and_takes_the_least_recently_used() {
        let slots = [cache(&[1, 2, 3], 9), cache(&[], 2)];
        let c = choose(slots.iter().enumerate(), &[1, 2, 3, 4], false).unwrap();
        assert_eq!(c, Choice { slot: 1, reuse: 0 });
    }

    #[test]
    fn only_free_slots_are_chosen() {
        let slots = [cache(&[1, 2, 3], 9), cache(&[], 2)];
        let free = slots.iter().enumerate().filter(|(i, _)| *i == 1);
        assert_eq!(choose(free, &[1, 2, 3, 4], true).unwrap().slot, 1);
        assert!(choose(std::iter::empty::<(usize, &SlotCache<u32>)>(), &[1], true).is_none());
    }

    proptest! {
        #[test]
        fn reuse_is_a_true_common_prefix_shorter_than_the_prompt(
            slots in proptest::collection::vec(
                (proptest::collection::vec(0u32..4, 0..12), 0u64..5), 1..5),
            prompt in proptest::collection::vec(0u32..4, 1..12),
        ) {
            let caches: Vec<_> = slots.iter().map(|(t, u)| cache(t, *u)).collect();
            let c = choose(caches.iter().enumerate(), &prompt, true).unwrap();
            prop_assert!(c.reuse < prompt.len());
            prop_assert_eq!(&caches[c.slot].tokens[..c.reuse], &prompt[..c.reuse]);
            // No other slot shares a longer prefix.
            let best = caches.iter().map(|s| common_prefix(&s.tokens, &prompt)).max().unwrap();
            prop_assert_eq!(c.reuse, best.min(prompt.len() - 1));
        }
    }
}
