//! Per-sequence sampler settings and the llama.cpp sampler chain built from them.

use llama_cpp_2::sampling::LlamaSampler;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f32,
    /// Nucleus mass; 1.0 = off.
    pub top_p: f32,
    /// 0 = off.
    pub top_k: i32,
    /// Seed; a random one when absent.
    pub seed: Option<u64>,
    /// 1.0 = off.
    pub repeat_penalty: f32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: cerebrum_shared::limits::DEFAULT_TEMPERATURE,
            top_p: 0.95,
            top_k: 40,
            seed: None,
            repeat_penalty: 1.0,
        }
    }
}

impl SamplingParams {
    /// The llama.cpp chain: penalties, then greedy, or top-k → top-p → temperature → draw.
    pub(crate) fn build(&self, n_vocab: i32) -> LlamaSampler {
        let mut chain = Vec::with_capacity(5);
        if (self.repeat_penalty - 1.0).abs() > f32::EPSILON {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                64,
                self.repeat_penalty,
                0.0,
                0.0,
            ));
        }
        if self.temperature <= 0.0 {
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
