//! Prompt-prefix reuse across requests (llama-server's `cache_prompt`): which
//! slot a new prompt should take, and how much of what that slot holds in the
//! KV cache it can keep. Pure: the worker applies the decision to llama.cpp.
//!
//! A slot keeps the tokens of its last request (prompt and answer, exactly the
//! cells written) after the request ends. A new prompt *continues* a slot when
//! it shares at least [`CONTINUES`] of what the slot holds; it goes to the
//! continued slot with the longest shared prefix, so a follow-up lands where
//! its history is. A prompt that continues no slot takes an empty slot, else the
//! least recently used one, instead of wiping a conversation's cache for the few
//! tokens every chat template starts with (llama-server guards this the same
//! way, with its slot-similarity threshold).
//!
//! Reused cells give the same greedy text on ordinary prompts, but llama.cpp does
//! not promise bit-identical logits when the same tokens are decoded in batches of
//! other shapes (llama-server says the same of its `cache_prompt`), so a near-tie
//! between two tokens may break the other way.

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

/// The share of a slot's tokens a prompt must repeat to continue that slot.
pub const CONTINUES: f64 = 0.5;

/// A slot holding at most this many tokens is cheap to give up (a short exchange,
/// read again in about a second), so a new prompt may take it to sit beside a
/// busy slot; a longer conversation is kept for its follow-up.
pub const CHEAP: usize = 512;

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
/// no slot is free. With `reuse` off the slot is chosen the same way (a request
/// that opts out still goes to its own conversation's slot instead of wiping
/// another's) but nothing is kept.
///
/// `busy` are the slots decoding now. Among [`CHEAP`] slots, one next to a busy
/// slot is taken first, then an empty one, then the lowest: llama.cpp decodes
/// sequences of separate KV streams together only as a run of consecutive slots,
/// so streams in slots 0 and 3 cost two passes over the weights a step where
/// slots 2 and 3 cost one (gemma-3-270m, two streams: 43.9 against llama-server's
/// 66.2 tok/s in one run; BENCHMARKS.md, engines).
pub fn choose<'a, T: PartialEq + 'a>(
    free: impl IntoIterator<Item = (usize, &'a SlotCache<T>)>,
    busy: &[usize],
    prompt: &[T],
    reuse: bool,
) -> Option<Choice> {
    let candidates: Vec<(usize, usize, &SlotCache<T>)> = free
        .into_iter()
        .map(|(slot, cache)| (slot, common_prefix(&cache.tokens, prompt), cache))
        .collect();
    let continued = candidates
        .iter()
        .filter(|(_, shared, cache)| {
            !cache.tokens.is_empty() && *shared as f64 >= CONTINUES * cache.tokens.len() as f64
        })
        .max_by(|a, b| a.1.cmp(&b.1).then(b.2.last_used.cmp(&a.2.last_used)));
    // Else the least valuable slot: a cheap one (next to a busy one first, then an
    // empty one), then the least recently used.
    let beside_busy = |slot: usize| busy.iter().any(|&b| b.abs_diff(slot) == 1);
    let (slot, shared, _) = continued.or_else(|| {
        candidates.iter().min_by_key(|(slot, _, cache)| {
            let cheap = cache.tokens.len() <= CHEAP;
            (
                !cheap,
                !beside_busy(*slot),
                !cache.tokens.is_empty(),
                cache.last_used,
                *slot,
            )
        })
    })?;
    Some(Choice {
        slot: *slot,
        reuse: if reuse {
            (*shared).min(prompt.len().saturating_sub(1))
        } else {
            0
        },
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
        let c = choose(slots.iter().enumerate(), &[], &prompt, true).unwrap();
        assert_eq!(c, Choice { slot: 0, reuse: 5 });
    }

    #[test]
    fn an_unrelated_prompt_takes_the_stalest_slot() {
        let slots = [cache(&[1, 2, 3], 9), cache(&[4, 5], 3), cache(&[6], 5)];
        let c = choose(slots.iter().enumerate(), &[], &[8, 8, 8], true).unwrap();
        assert_eq!(c, Choice { slot: 1, reuse: 0 });
    }

    #[test]
    fn a_shared_template_header_does_not_wipe_a_conversation() {
        // Slot 0 holds a long conversation; the new prompt shares only the
        // chat template's first tokens with it. The empty slot is taken.
        let conversation: Vec<u32> = (0..100).collect();
        let slots = [cache(&conversation, 5), cache(&[], 0)];
        let c = choose(slots.iter().enumerate(), &[], &[0, 1, 2, 99, 98], true).unwrap();
        assert_eq!(c, Choice { slot: 1, reuse: 0 });
        // With no empty slot, the least recently used one; it keeps what it shares.
        let slots = [cache(&conversation, 5), cache(&[0, 1, 7, 7], 2)];
        let c = choose(slots.iter().enumerate(), &[], &[0, 1, 2, 99, 98], true).unwrap();
        assert_eq!(c, Choice { slot: 1, reuse: 2 });
    }

    #[test]
    fn the_same_prompt_again_still_decodes_its_last_token() {
        let slots = [cache(&[1, 2, 3], 1)];
        let c = choose(slots.iter().enumerate(), &[], &[1, 2, 3], true).unwrap();
        assert_eq!(c.reuse, 2, "logits are needed for the next token");
        // A prompt that is a prefix of what the slot holds keeps all but its last token.
        let c = choose(slots.iter().enumerate(), &[], &[1, 2], true).unwrap();
        assert_eq!(c.reuse, 1);
    }

    #[test]
    fn reuse_off_keeps_nothing_but_stays_in_its_own_slot() {
        let slots = [cache(&[1, 2, 3], 9), cache(&[5], 2)];
        let c = choose(slots.iter().enumerate(), &[], &[1, 2, 3, 4], false).unwrap();
        assert_eq!(c, Choice { slot: 0, reuse: 0 });
        let c = choose(slots.iter().enumerate(), &[], &[7, 7], false).unwrap();
        assert_eq!(c, Choice { slot: 1, reuse: 0 });
    }

    #[test]
    fn an_empty_slot_next_to_a_busy_one_goes_first() {
        // Slot 1 decodes; of the empty slots 0, 3 and 4 (2 holds a short
        // exchange), 0 is beside it, so the two stream in one run of slots.
        let slots = [
            cache(&[], 0),
            cache(&[1], 4),
            cache(&[9, 9, 9], 3),
            cache(&[], 0),
            cache(&[], 0),
        ];
        let free = slots.iter().enumerate().filter(|(i, _)| *i != 1);
        assert_eq!(choose(free, &[1], &[5, 5], true).unwrap().slot, 0);
        // Nothing beside a busy slot is empty: the lowest empty one.
        let free = slots.iter().enumerate().filter(|(i, _)| *i == 3 || *i == 4);
        assert_eq!(choose(free, &[1], &[5, 5], true).unwrap().slot, 3);
        // A short exchange beside the busy slot goes before an empty slot apart.
        let free = slots.iter().enumerate().filter(|(i, _)| *i == 2 || *i == 4);
        assert_eq!(choose(free, &[1], &[5, 5], true).unwrap().slot, 2);
        // A conversation is not wiped for it while a cheap slot is free.
        let long = cache(&[9; CHEAP + 1], 3);
        let slots = [
            cache(&[], 0),
            cache(&[1], 4),
            long,
            cache(&[], 0),
            cache(&[7], 1),
        ];
        let free = slots.iter().enumerate().filter(|(i, _)| *i == 2 || *i >= 3);
        assert_eq!(choose(free, &[1], &[5, 5], true).unwrap().slot, 3);
        // Nothing busy: the lowest empty slot, so the next stream can sit beside it.
        let free = slots.iter().enumerate().filter(|(i, _)| *i != 1);
        assert_eq!(choose(free, &[], &[5, 5], true).unwrap().slot, 0);
    }

    #[test]
    fn only_free_slots_are_chosen() {
        let slots = [cache(&[1, 2, 3], 9), cache(&[], 2)];
        let free = slots.iter().enumerate().filter(|(i, _)| *i == 1);
        assert_eq!(choose(free, &[0], &[1, 2, 3, 4], true).unwrap().slot, 1);
        assert!(
            choose(
                std::iter::empty::<(usize, &SlotCache<u32>)>(),
                &[],
                &[1],
                true
            )
            .is_none()
        );
    }

    proptest! {
        #[test]
        fn reuse_is_a_true_common_prefix_shorter_than_the_prompt(
            slots in proptest::collection::vec(
                (proptest::collection::vec(0u32..4, 0..12), 0u64..5), 1..5),
            prompt in proptest::collection::vec(0u32..4, 1..12),
        ) {
            let caches: Vec<_> = slots.iter().map(|(t, u)| cache(t, *u)).collect();
            let c = choose(caches.iter().enumerate(), &[], &prompt, true).unwrap();
            prop_assert!(c.reuse < prompt.len());
            prop_assert_eq!(&caches[c.slot].tokens[..c.reuse], &prompt[..c.reuse]);
            // When some slot is continued, the chosen one is continued and no
            // continued slot shares a longer prefix.
            let continues = |s: &SlotCache<u32>| !s.tokens.is_empty()
                && common_prefix(&s.tokens, &prompt) as f64 >= CONTINUES * s.tokens.len() as f64;
            if let Some(best) = caches.iter().filter(|s| continues(s))
                .map(|s| common_prefix(&s.tokens, &prompt)).max()
            {
                prop_assert!(continues(&caches[c.slot]));
                prop_assert_eq!(c.reuse, best.min(prompt.len() - 1));
            }
        }
    }
}
