//! Per-sequence sampler settings and the llama.cpp sampler chain built from them.

use llama_cpp_2::sampling::LlamaSampler;

/// How many recent tokens the penalties look back over.
const PENALTY_LAST_N: i32 = 64;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f32,
    /// Nucleus mass; 1.0 = off, 0 = the most likely token only (greedy).
    pub top_p: f32,
    /// 0 = off.
    pub top_k: i32,
    /// Seed; a random one when absent.
    pub seed: Option<u64>,
    /// 1.0 = off.
    pub repeat_penalty: f32,
    /// 0 = off.
    pub frequency_penalty: f32,
    /// 0 = off.
    pub presence_penalty: f32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: cerebrum_shared::limits::DEFAULT_TEMPERATURE,
            top_p: 0.95,
            top_k: 40,
            seed: None,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
        }
    }
}

impl SamplingParams {
    /// Whether the most likely token is always taken: temperature 0, or a
    /// nucleus of mass 0 (OpenAI's `top_p: 0`, which llama.cpp also reads so).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_p <= 0.0
    }

    fn has_penalties(&self) -> bool {
        (self.repeat_penalty - 1.0).abs() > f32::EPSILON
            || self.frequency_penalty != 0.0
            || self.presence_penalty != 0.0
    }

    /// The llama.cpp chain: penalties, then greedy, or top-k → top-p → temperature → draw.
    pub(crate) fn build(&self, n_vocab: i32) -> LlamaSampler {
        let mut chain = Vec::with_capacity(5);
        if self.has_penalties() {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                PENALTY_LAST_N,
                self.repeat_penalty,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.is_greedy() {
            chain.push(LlamaSampler::greedy());
        } else {
            if self.top_k > 0 {
                chain.push(LlamaSampler::top_k(self.top_k));
            }
            if self.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(self.top_p, 1));
            }
            chain.push(LlamaSampler::temp(self.temperature));
            let seed = self.seed.map(|s| s as u32).unwrap_or_else(random_seed);
            chain.push(LlamaSampler::dist(seed));
        }
        LlamaSampler::chain_simple(chain)
    }
}

fn random_seed() -> u32 {
    let mut b = [0u8; 4];
    // Falls back to the clock if the OS has no randomness to give.
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return nanos;
    }
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use llama_cpp_2::token::LlamaToken;
    use llama_cpp_2::token::data::LlamaTokenData;
    use llama_cpp_2::token::data_array::LlamaTokenDataArray;

    use super::*;

    /// The token the chain picks from four candidates whose most likely is token 1.
    fn pick(params: &SamplingParams) -> i32 {
        let logits = [1.0, 2.0, 1.8, 0.5];
        let mut candidates = LlamaTokenDataArray::from_iter(
            logits
                .iter()
                .enumerate()
                .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
            false,
        );
        candidates.apply_sampler(&mut params.build(logits.len() as i32));
        candidates.selected_token().expect("a token is chosen").0
    }

    #[test]
    fn top_p_zero_always_takes_the_most_likely_token() {
        let base = SamplingParams {
            temperature: 1.5,
            top_k: 0,
            ..SamplingParams::default()
        };
        let greedy = (0..64).map(|seed| {
            pick(&SamplingParams {
                top_p: 0.0,
                seed: Some(seed),
                ..base
            })
        });
        assert!(greedy.into_iter().all(|t| t == 1));
        // The same draws with the nucleus open pick others too: top_p 0 is not "off".
        let open: std::collections::BTreeSet<i32> = (0..64)
            .map(|seed| {
                pick(&SamplingParams {
                    top_p: 1.0,
                    seed: Some(seed),
                    ..base
                })
            })
            .collect();
        assert!(open.len() > 1, "{open:?}");
    }

    #[test]
    fn top_k_one_and_temperature_zero_are_greedy_too() {
        for seed in 0..16 {
            let top_k = SamplingParams {
                temperature: 1.5,
                top_k: 1,
                top_p: 1.0,
                seed: Some(seed),
                ..SamplingParams::default()
            };
            assert_eq!(pick(&top_k), 1);
            let cold = SamplingParams {
                temperature: 0.0,
                ..top_k
            };
            assert_eq!(pick(&cold), 1);
        }
    }
}
