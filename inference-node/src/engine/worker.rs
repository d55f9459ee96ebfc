//! The worker thread of one model: owns the llama model and context, admits
//! requests into free sequence slots, and decodes all live sequences in one batch
//! per step (continuous batching, like llama-server's slots).

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::prefix::{self, SlotCache};
use super::text::{StopMatcher, Utf8Assembler};
use super::tokenizer::Tokenizer;
use super::{
    EngineError, EngineOptions, EngineStats, FinishReason, GenEvent, Job, LoadError, ModelInfo,
};

/// One request occupying a sequence slot.
struct Sequence {
    slot: i32,
    job: Job,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens already in the KV cache (reused ones included).
    prefilled: usize,
    /// Prompt tokens reused from the slot's cache.
    cached: usize,
    /// Generated tokens fed back into the KV cache, in order.
    fed: Vec<LlamaToken>,
    /// Next position to write.
    pos: i32,
    sampler: LlamaSampler,
    utf8: Utf8Assembler,
    stop: StopMatcher,
    generated: u32,
    /// The last sampled token, fed back in the next step.
    last: Option<LlamaToken>,
    /// Index in the current batch whose logits this sequence samples from.
    logits_at: Option<i32>,
    started: Instant,
}

enum Outcome {
    Finished(FinishReason),
    Failed(EngineError),
}

pub(super) fn run(
    name: String,
    path: PathBuf,
    opts: EngineOptions,
    stats: Arc<EngineStats>,
    jobs: Receiver<Job>,
    ready: SyncSender<Result<(ModelInfo, Arc<Tokenizer>), LoadError>>,
) {
    let t0 = Instant::now();
    let backend = super::backend();
    let model = match LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default()) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            let _ = ready.send(Err(LoadError::BadModel {
                path,
                detail: e.to_string(),
            }));
            return;
        }
    };
    let n_ctx_total = opts.context_size.saturating_mul(opts.parallel);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx_total))
        .with_n_seq_max(opts.parallel)
        // One KV stream per slot, as llama-server's default: slots keep their cells
        // between requests (the prefix cache), and with a unified pool every
        // sequence's attention would also run over the other slots' kept cells.
        // Measured on the session benchmark (BENCHMARKS.md).
        .with_kv_unified(false)
        // Sliding-window layers (gemma) keep every cell, not only the last window
        // as llama-server's do: `keep_prefix` trims a slot to any common prefix,
        // and a windowed cache would already have dropped cells that prefix's
        // follow-up attends to. Costs 120 MiB for gemma-3-270m at 4 × 2,048 cells
        // (BENCHMARKS.md).
        .with_swa_full(true)
        .with_n_batch(opts.n_batch)
        .with_n_ubatch(opts.n_batch)
        .with_n_threads(opts.n_threads as i32)
        .with_n_threads_batch(opts.n_threads as i32);
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(LoadError::Context {
                path,
                detail: e.to_string(),
            }));
            return;
        }
    };
    // Per-sequence context: the pool holds context_size cells for each slot, and
    // no sequence may grow past context_size, so none can starve the others.
    let ctx_per_seq = opts.context_size.min(ctx.n_ctx()).max(1);
    let tokenizer = Arc::new(Tokenizer::new(model.clone(), ctx_per_seq));
    let info = ModelInfo {
        name: name.clone(),
        path: path.clone(),
        n_params: model.n_params(),
        n_ctx_train: model.n_ctx_train(),
        has_chat_template: tokenizer.has_chat_template(),
        load_seconds: t0.elapsed().as_secs_f64(),
    };
    tracing::info!(model = %name, path = %path.display(), load_seconds = info.load_seconds,
        params = info.n_params, ctx_per_seq, slots = opts.parallel, "model loaded");
    if ready.send(Ok((info, tokenizer))).is_err() {
        return;
    }

    let worker = Worker {
        model: &model,
        ctx_per_seq,
        slots: opts.parallel as usize,
        n_batch: opts.n_batch as usize,
        prompt_cache: opts.prompt_cache,
        stats,
    };
    // A panic inside the bindings must not take the process down. Unwinding marks
    // the engine dead (`DeadOnPanic`), then drops
    // every job the worker held, queued or decoding: each one's ticket uncounts it
    // and its event sink tells its client (`EngineError::Crashed`). The registry
    // loads a dead engine's model afresh for the next request.
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        worker.serve(&mut ctx, jobs)
    }));
    match served {
        Ok(()) => tracing::info!(model = %name, "model unloaded"),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(model = %name, panic = %what,
                "model worker panicked; its requests were failed and the next request reloads the model");
        }
    }
}

/// Test seam: a prompt containing this makes the worker panic at its first
/// sample, as a bug in the bindings would. Compiled into unit tests only.
#[cfg(test)]
pub(crate) const PANIC_TRIGGER: &str = "\u{1}cerebrum-test-panic-the-worker\u{1}";

/// Marks the engine dead when dropped by a panic's unwinding.
struct DeadOnPanic<'a>(&'a EngineStats);

impl Drop for DeadOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.dead.store(true, Ordering::SeqCst);
        }
    }
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx_per_seq: u32,
    slots: usize,
    n_batch: usize,
    prompt_cache: bool,
    stats: Arc<EngineStats>,
}

/// What each slot's cells hold, and the clock for least-recently-used.
struct Slots {
    caches: Vec<SlotCache<LlamaToken>>,
    clock: u64,
}

impl Worker<'_> {
    fn serve(&self, ctx: &mut LlamaContext<'_>, jobs: Receiver<Job>) {
        let mut pending: VecDeque<Job> = VecDeque::new();
        let mut live: Vec<Sequence> = Vec::with_capacity(self.slots);
        let mut slots = Slots {
            caches: vec![SlotCache::default(); self.slots],
            clock: 0,
        };
        let mut batch = LlamaBatch::new(self.n_batch, self.slots as i32);
        let mut open = true;
        // Declared last, so a panic drops it first: the engine is marked dead
        // before any of its requests hears of the crash.
        let _dead_on_panic = DeadOnPanic(&self.stats);
        loop {
            // Intake: sleep when there is nothing to do, otherwise just drain.
            if live.is_empty() && pending.is_empty() {
                if !open {
                    return;
                }
                match jobs.recv() {
                    Ok(job) => pending.push_back(job),
                    Err(_) => return,
                }
            }
            loop {
                match jobs.try_recv() {
                    Ok(job) => pending.push_back(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            self.admit(&mut pending, &mut live, &mut slots, ctx);

            // Cancel sequences whose client went away.
            let mut i = 0;
            while i < live.len() {
                if live[i].job.events.is_closed() {
                    let seq = live.swap_remove(i);
                    tracing::debug!(slot = seq.slot, "sequence cancelled by client");
                    self.release(ctx, &mut slots, seq, None);
                } else {
                    i += 1;
                }
            }
            if live.is_empty() {
                continue;
            }

            self.fill_batch(&mut batch, &mut live);
            let step = Instant::now();
            let decoded = ctx.decode(&mut batch);
            tracing::trace!(
                tokens = batch.n_tokens(),
                live = live.len(),
                us = step.elapsed().as_micros() as u64,
                "decode step"
            );
            if let Err(e) = decoded {
                tracing::error!(error = %e, "llama decode failed");
                for seq in live.drain(..) {
                    self.release(
                        ctx,
                        &mut slots,
                        seq,
                        Some(Outcome::Failed(EngineError::Decode(e.to_string()))),
                    );
                }
                continue;
            }

            let mut i = 0;
            while i < live.len() {
                match self.sample(ctx, &mut live[i]) {
                    Some(outcome) => {
                        let seq = live.swap_remove(i);
                        self.release(ctx, &mut slots, seq, Some(outcome));
                    }
                    None => i += 1,
                }
            }
        }
    }

    /// Moves waiting jobs into free slots, tokenizing their prompts. Each takes
    /// the free slot whose cells share the longest prefix with its prompt, and
    /// keeps that prefix (see [`prefix`]).
    fn admit(
        &self,
        pending: &mut VecDeque<Job>,
        live: &mut Vec<Sequence>,
        slots: &mut Slots,
        ctx: &mut LlamaContext<'_>,
    ) {
        while live.len() < self.slots {
            let Some(mut job) = pending.pop_front() else {
                return;
            };
            job.ticket.activate();
            if job.events.is_closed() {
                // The ticket counts it completed as it drops.
                continue;
            }
            // Tokenized by the caller, off this thread.
            let prompt = std::mem::take(&mut job.tokens);
            let busy: Vec<usize> = live.iter().map(|s| s.slot as usize).collect();
            let free = slots
                .caches
                .iter()
                .enumerate()
                .filter(|(i, _)| !busy.contains(i));
            let reuse = self.prompt_cache && job.request.cache_prompt;
            let choice = prefix::choose(free, &busy, &prompt, reuse)
                .unwrap_or(prefix::Choice { slot: 0, reuse: 0 });
            let slot = choice.slot as i32;
            let cached = self.keep_prefix(ctx, &mut slots.caches[choice.slot], slot, choice.reuse);
            slots.clock += 1;
            slots.caches[choice.slot].last_used = slots.clock;
            tracing::debug!(
                slot,
                prompt_tokens = prompt.len(),
                cached,
                "sequence admitted"
            );
            let _ = job.events.send(GenEvent::Started {
                prompt_tokens: prompt.len() as u32,
                cached_tokens: cached as u32,
            });
            let sampler = job.request.sampling.build(self.model.n_vocab());
            let stop = StopMatcher::new(job.request.stop.clone());
            live.push(Sequence {
                slot,
                job,
                prompt,
                prefilled: cached,
                cached,
                fed: Vec::new(),
                pos: cached as i32,
                sampler,
                utf8: Utf8Assembler::default(),
                stop,
                generated: 0,
                last: None,
                logits_at: None,
                started: Instant::now(),
            });
        }
    }

    /// Keeps the first `reuse` cells of `slot` and removes the rest; returns how
    /// many are kept. A model whose memory cannot remove part of a sequence
    /// (recurrent state) clears it whole and keeps none. Sliding-window layers
    /// can, exactly, because the context keeps all their cells (`with_swa_full`).
    fn keep_prefix(
        &self,
        ctx: &mut LlamaContext<'_>,
        cache: &mut SlotCache<LlamaToken>,
        slot: i32,
        reuse: usize,
    ) -> usize {
        let kept = reuse > 0
            && matches!(
                ctx.clear_kv_cache_seq(Some(slot as u32), Some(reuse as u32), None),
                Ok(true)
            );
        if kept {
            cache.tokens.truncate(reuse);
            return reuse;
        }
        // Full removals always succeed.
        let _ = ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
        cache.tokens.clear();
        0
    }

    /// One token per decoding sequence, then prompt chunks while the batch has room.
    fn fill_batch(&self, batch: &mut LlamaBatch, live: &mut [Sequence]) {
        batch.clear();
        // In slot order: with one KV stream per slot, llama.cpp puts sequences into
        // one micro-batch only as a run of consecutive ids in batch order
        // (`split_equal`, sequential), so four streams added as 2, 0, 3, 1 cost two
        // graph computes a step instead of one (SmolLM2, 4 streams: 29 ms a step
        // before, as llama-server's ~22 ms after; BENCHMARKS.md, engines).
        live.sort_unstable_by_key(|seq| seq.slot);
        let mut room = self.n_batch;
        for seq in live.iter_mut() {
            seq.logits_at = None;
            if let Some(token) = seq.last {
                // Batch capacity is n_batch >= slots, so this cannot overflow.
                if batch.add(token, seq.pos, &[seq.slot], true).is_ok() {
                    seq.logits_at = Some(batch.n_tokens() - 1);
                    seq.pos += 1;
                    seq.fed.push(token);
                    room -= 1;
                }
            }
        }
        for seq in live.iter_mut() {
            if seq.last.is_some() || room == 0 {
                continue;
            }
            let remaining = seq.prompt.len() - seq.prefilled;
            let take = remaining.min(room);
            for k in 0..take {
                let idx = seq.prefilled + k;
                let is_last = idx + 1 == seq.prompt.len();
                if batch
                    .add(seq.prompt[idx], seq.pos, &[seq.slot], is_last)
                    .is_err()
                {
                    break;
                }
                seq.pos += 1;
                if is_last {
                    seq.logits_at = Some(batch.n_tokens() - 1);
                }
            }
            seq.prefilled += take;
            room -= take;
        }
    }

    /// Samples the next token of a sequence that has logits this step.
    fn sample(&self, ctx: &LlamaContext<'_>, seq: &mut Sequence) -> Option<Outcome> {
        let idx = seq.logits_at?;
        #[cfg(test)]
        if let super::Prompt::Text(t) = &seq.job.request.prompt
            && t.contains(PANIC_TRIGGER)
        {
            panic!("test-triggered worker panic");
        }
        let vocab = self.model.vocab();
        let token = seq.sampler.sample(ctx, idx);
        seq.generated += 1;
        self.stats.tokens_generated.fetch_add(1, Ordering::Relaxed);
        if vocab.is_eog(token) {
            return Some(Outcome::Finished(FinishReason::Stop));
        }
        let piece = vocab.token_to_piece(token, false, None);
        let text = seq.utf8.push(&piece);
        let out = seq.stop.push(&text);
        if !out.emit.is_empty() {
            let event = GenEvent::Token {
                text: out.emit,
                total_tokens: seq.generated,
            };
            if !seq.job.events.send(event) {
                return Some(Outcome::Failed(EngineError::WorkerGone));
            }
        }
        if out.stopped {
            return Some(Outcome::Finished(FinishReason::Stop));
        }
        if seq.generated >= seq.job.request.max_tokens || seq.pos as u32 >= self.ctx_per_seq {
            return Some(Outcome::Finished(FinishReason::Length));
        }
        seq.last = Some(token);
        None
    }

    /// Ends a sequence and tells its client how. Its slot keeps the cells it
    /// decoded for the next prompt that shares them, unless decoding failed.
    fn release(
        &self,
        ctx: &mut LlamaContext<'_>,
        slots: &mut Slots,
        mut seq: Sequence,
        outcome: Option<Outcome>,
    ) {
        let cache = &mut slots.caches[seq.slot as usize];
        cache.tokens.clear();
        let decoded = !matches!(outcome, Some(Outcome::Failed(EngineError::Decode(_))));
        if decoded && self.prompt_cache {
            // Every token added to a batch so far was decoded: the last decode succeeded.
            cache.tokens.extend_from_slice(&seq.prompt[..seq.prefilled]);
            cache.tokens.extend_from_slice(&seq.fed);
            // Trust only what llama.cpp agrees it holds.
            let reach = ctx.kv_cache_seq_pos_max(seq.slot) + 1;
            if reach != cache.tokens.len() as i32 {
                tracing::warn!(
                    slot = seq.slot,
                    ours = cache.tokens.len(),
                    reach,
                    "KV cells and token list disagree; clearing the slot"
                );
                cache.tokens.clear();
            }
        }
        if cache.tokens.is_empty() {
            let _ = ctx.clear_kv_cache_seq(Some(seq.slot as u32), None, None);
        }
        // Counters first: a client that hears "finished" and at once asks to
        // unload or evict the model must find it idle.
        seq.job.ticket.finish();
        match outcome {
            Some(Outcome::Finished(reason)) => {
                let mut tail = seq.utf8.finish();
                let stopped = seq.stop.push(&tail);
                tail = stopped.emit;
                if !stopped.stopped {
                    tail.push_str(&seq.stop.finish());
                }
                if !tail.is_empty() {
                    let _ = seq.job.events.send(GenEvent::Token {
                        text: tail,
                        total_tokens: seq.generated,
                    });
                }
                let _ = seq.job.events.send(GenEvent::Finished {
                    reason,
                    prompt_tokens: seq.prompt.len() as u32,
                    cached_tokens: seq.cached as u32,
                    completion_tokens: seq.generated,
                    elapsed: seq.started.elapsed(),
                });
            }
            Some(Outcome::Failed(e)) => {
                let _ = seq.job.events.send(GenEvent::Failed(e));
            }
            None => {}
        }
    }
}
