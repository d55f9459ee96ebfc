//! Fitting a request to the model's context, never a blind 400 from the node.
//! Pure: the handler counts tokens (the node's `POST /tokenize`) and applies
//! each [`Step`] until [`next`] says send, or refuse.
//!
//! The order, cheapest loss first for a person in a coding session:
//! 1. prepare the newest turn harder ([`PrepareConfig::harder`]: fewer chunks kept);
//! 2. drop the oldest turns (the system message and the newest turn stay);
//! 3. if the newest turn alone cannot fit, refuse with 413 and the numbers.
//!
//! `max_tokens` is then clamped to what is left of the context.

use crate::prompt::PrepareConfig;

/// Fewest answer tokens worth sending a request for (or the requested
/// `max_tokens`, when smaller).
pub const MIN_ANSWER_TOKENS: u64 = 32;

/// Below this many characters a turn is left as written (nothing to cut).
pub const HARDER_MIN_CHARS: usize = 400;

/// How many levels [`PrepareConfig::harder`] has beyond the default.
pub const HARDER_LEVELS: u8 = 3;

/// What is known of a request while fitting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fitting {
    /// Tokens the prompt is now, as the model will see it.
    pub prompt_tokens: u64,
    /// Tokens one request may hold, prompt and answer.
    pub context: u64,
    /// The `max_tokens` asked for.
    pub max_tokens: u32,
    /// Preparation level of the newest turn (0 = default).
    pub level: u8,
    /// Whether the newest turn has code that a harder level could cut.
    pub can_prepare_harder: bool,
    /// Older turns that may still be dropped.
    pub droppable: usize,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It fits: send with this `max_tokens` (the asked one, or what is left).
    Send {
        /// Tokens the answer may have.
        max_tokens: u32,
    },
    /// Prepare the newest turn at the next level, then count again.
    PrepareHarder,
    /// Drop the oldest droppable turn, then count again.
    DropOldest,
    /// Even the newest turn alone does not fit.
    Refuse {
        /// Tokens the prompt may have at most, leaving room for an answer.
        fits: u64,
    },
}

/// The next step for a request in state `f`.
pub fn next(f: &Fitting) -> Step {
    let min_answer = MIN_ANSWER_TOKENS.min(u64::from(f.max_tokens)).max(1);
    let room = f.context.saturating_sub(f.prompt_tokens);
    if room >= min_answer {
        let max_tokens = u64::from(f.max_tokens).min(room) as u32;
        return Step::Send { max_tokens };
    }
    if f.can_prepare_harder && f.level < HARDER_LEVELS {
        return Step::PrepareHarder;
    }
    if f.droppable > 0 {
        return Step::DropOldest;
    }
    Step::Refuse {
        fits: f.context.saturating_sub(min_answer),
    }
}

impl PrepareConfig {
    /// This configuration at fitting level `level` (0 = itself): each level
    /// keeps fewer and smaller pieces and prepares shorter code.
    pub fn harder(&self, level: u8) -> PrepareConfig {
        let mut c = self.clone();
        if level == 0 {
            return c;
        }
        c.top_k = match level {
            1 => c.top_k.min(2),
            _ => 1,
        };
        c.threshold_chars = c.threshold_chars.min(800 / usize::from(level));
        c.min_gain = 0.0;
        if level >= 3 {
            c.max_growth_chars = c.max_growth_chars.min(400);
            c.max_named_chars = c.max_named_chars.min(2000);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fitting(prompt_tokens: u64, droppable: usize, level: u8) -> Fitting {
        Fitting {
            prompt_tokens,
            context: 2048,
            max_tokens: 512,
            level,
            can_prepare_harder: true,
            droppable,
        }
    }

    #[test]
    fn a_prompt_that_fits_is_sent_with_max_tokens_clamped_to_what_is_left() {
        assert_eq!(next(&fitting(100, 3, 0)), Step::Send { max_tokens: 512 });
        assert_eq!(next(&fitting(1800, 3, 0)), Step::Send { max_tokens: 248 });
    }

    #[test]
    fn too_big_prepares_harder_then_drops_then_refuses() {
        assert_eq!(next(&fitting(2040, 2, 0)), Step::PrepareHarder);
        assert_eq!(next(&fitting(2040, 2, HARDER_LEVELS)), Step::DropOldest);
        let mut alone = fitting(2040, 0, HARDER_LEVELS);
        assert_eq!(next(&alone), Step::Refuse { fits: 2016 });
        alone.can_prepare_harder = false;
        alone.level = 0;
        assert_eq!(next(&alone), Step::Refuse { fits: 2016 });
    }

    #[test]
    fn a_small_max_tokens_needs_only_that_much_room() {
        let f = Fitting {
            max_tokens: 4,
            ..fitting(2044, 0, 0)
        };
        assert_eq!(next(&f), Step::Send { max_tokens: 4 });
    }

    #[test]
    fn harder_levels_keep_less() {
        let base = PrepareConfig::default();
        assert_eq!(base.harder(0), base);
        let (one, three) = (base.harder(1), base.harder(3));
        assert!(one.top_k < base.top_k && three.top_k <= one.top_k);
        assert!(three.threshold_chars < base.threshold_chars);
        assert!(three.max_growth_chars < base.max_growth_chars);
    }

    proptest! {
        #[test]
        fn sent_requests_always_fit(prompt in 0u64..5000, context in 64u64..8192,
                                    max in 1u32..4096, level in 0u8..=HARDER_LEVELS,
                                    droppable in 0usize..4) {
            let f = Fitting { prompt_tokens: prompt, context, max_tokens: max, level,
                              can_prepare_harder: true, droppable };
            match next(&f) {
                Step::Send { max_tokens } => {
                    prop_assert!(prompt + u64::from(max_tokens) <= context);
                    prop_assert!(max_tokens >= 1 && max_tokens <= max);
                }
                Step::Refuse { fits } => {
                    prop_assert!(droppable == 0 && level == HARDER_LEVELS);
                    prop_assert!(prompt > fits);
                }
                _ => prop_assert!(prompt + MIN_ANSWER_TOKENS.min(u64::from(max)) > context),
            }
        }
    }
}
