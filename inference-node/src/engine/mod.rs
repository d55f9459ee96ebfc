//! The llama.cpp engine: one thread per loaded model owns its context and decodes
//! every live request together (continuous batching).
//!
//! A request is a [`GenerateRequest`]; [`Engine::submit`] returns a channel of
//! [`GenEvent`]s. Dropping the receiver cancels the sequence: the worker sees the
//! closed channel at its next step and stops decoding it.
//!
//! A slot keeps its KV cells after its request ends, and a new prompt takes the
//! free slot holding the longest common prefix with it ([`prefix`]): a follow-up
//! in a conversation prefills only what is new. A cancelled request keeps the
//! cells it had decoded (all complete); a failed decode clears its slot, so no
//! later prompt trusts cells that may be half-written.

pub mod prefix;
mod sampling;
pub mod text;
pub mod tokenizer;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

pub use sampling::SamplingParams;
pub use tokenizer::Tokenizer;

/// What to complete: a raw prompt, or a conversation rendered with the model's chat template.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Completed as-is.
    Text(String),
    /// `(role, content)` turns; the model's own template from the GGUF renders them.
    Chat(Vec<(String, String)>),
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Tokens to generate at most.
    pub max_tokens: u32,
    /// Sampler settings.
    pub sampling: SamplingParams,
    /// Generation ends before any of these strings.
    pub stop: Vec<String>,
    /// Reuse a cached prompt prefix (llama-server's `cache_prompt`); off: prefill all.
    pub cache_prompt: bool,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End-of-generation token or a stop sequence.
    Stop,
    /// `max_tokens` or the context's end.
    Length,
}

impl FinishReason {
    /// OpenAI's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Events of one request, in order: `Started`, any number of `Token`s, then `Finished` or `Failed`.
#[derive(Debug, Clone)]
pub enum GenEvent {
    /// The prompt was accepted and tokenized; decoding has begun.
    Started {
        /// Prompt length in tokens.
        prompt_tokens: u32,
        /// Of those, tokens reused from the slot's KV cache (not prefilled again).
        cached_tokens: u32,
    },
    /// New text (valid UTF-8, never empty).
    Token {
        /// The text.
        text: String,
        /// Tokens generated so far.
        total_tokens: u32,
    },
    /// Generation ended.
    Finished {
        /// Why.
        reason: FinishReason,
        /// Prompt tokens.
        prompt_tokens: u32,
        /// Of those, tokens reused from the KV cache.
        cached_tokens: u32,
        /// Generated tokens.
        completion_tokens: u32,
        /// From `Started` to the last token.
        elapsed: Duration,
    },
    /// Generation could not start or broke off.
    Failed(EngineError),
}

/// Failures of a request inside the engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The prompt does not fit the per-sequence context.
    #[error("prompt is {prompt_tokens} tokens but the context holds {context_tokens} per sequence")]
    PromptTooLong {
        /// Prompt tokens.
        prompt_tokens: u32,
        /// Context per sequence.
        context_tokens: u32,
    },
    /// Tokenizing left nothing to decode.
    #[error("prompt is empty after tokenization")]
    EmptyPrompt,
    /// The chat template failed to render.
    #[error("chat template failed: {0}")]
    Template(String),
    /// llama.cpp failed to decode.
    #[error("decode failed: {0}")]
    Decode(String),
    /// The model's worker thread is gone.
    #[error("model worker stopped")]
    WorkerGone,
}

/// A model failed to load.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The file is not a readable GGUF (corrupt, truncated, or an unsupported architecture).
    #[error("{path}: not a loadable GGUF model ({detail})")]
    BadModel {
        /// The file.
        path: PathBuf,
        /// What llama.cpp or the reader said.
        detail: String,
    },
    /// The context could not be created (usually memory).
    #[error("{path}: cannot create a context: {detail}")]
    Context {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The worker thread could not start.
    #[error("cannot start model worker: {0}")]
    Thread(String),
}

/// Settings for every engine of this node.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Sequences decoded together.
    pub parallel: u32,
    /// Context tokens per sequence.
    pub context_size: u32,
    /// Threads for llama.cpp.
    pub n_threads: u32,
    /// Largest batch of tokens per decode.
    pub n_batch: u32,
    /// Keep slots' KV cells between requests and reuse common prefixes.
    pub prompt_cache: bool,
}

/// Facts about a loaded model, for `/health`, `/v1/models` and logs.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The name it is served as.
    pub name: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// Parameters.
    pub n_params: u64,
    /// Context length the model was trained with.
    pub n_ctx_train: u32,
    /// Whether the GGUF carries a chat template.
    pub has_chat_template: bool,
    /// Seconds the load took.
    pub load_seconds: f64,
}

/// Live counters of one engine, read without waiting on the worker.
#[derive(Debug)]
pub struct EngineStats {
    /// Sequences decoding now.
    pub active: AtomicUsize,
    /// Requests waiting for a free sequence slot.
    pub queued: AtomicUsize,
    /// Requests completed (finished or failed).
    pub completed: AtomicU64,
    /// Tokens generated.
    pub tokens_generated: AtomicU64,
    last_done: Mutex<Instant>,
}

impl EngineStats {
    fn new() -> Self {
        Self {
            active: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            tokens_generated: AtomicU64::new(0),
            last_done: Mutex::new(Instant::now()),
        }
    }

    /// Whether anything is decoding or waiting.
    pub fn busy(&self) -> bool {
        self.active.load(Ordering::SeqCst) + self.queued.load(Ordering::SeqCst) > 0
    }

    /// Time since the last request completed (or since the load).
    pub fn idle_for(&self) -> Duration {
        self.last_done
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    fn mark_done(&self) {
        if let Ok(mut t) = self.last_done.lock() {
            *t = Instant::now();
        }
    }
}

struct Job {
    request: GenerateRequest,
    /// The prompt's tokens (tokenized by the caller, checked to fit).
    tokens: Vec<LlamaToken>,
    events: mpsc::UnboundedSender<GenEvent>,
}

/// A loaded model with its worker thread. Dropping the last handle lets the worker
/// finish what it is decoding and then free the model.
pub struct Engine {
    info: ModelInfo,
    tokenizer: Arc<Tokenizer>,
    stats: Arc<EngineStats>,
    jobs: std::sync::mpsc::Sender<Job>,
}

/// The process-wide llama.cpp backend (initialised once).
pub fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        // Only fails when already initialised, which OnceLock rules out.
        LlamaBackend::init().unwrap_or_else(|e| panic!("llama backend init: {e}"))
    })
}

impl Engine {
    /// Loads `path` and starts its worker thread. Blocks until the model is ready:
    /// call it from a blocking thread.
    pub fn load(name: &str, path: &Path, opts: EngineOptions) -> Result<Engine, LoadError> {
        let stats = Arc::new(EngineStats::new());
        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let worker_stats = stats.clone();
        let (name_owned, path_owned) = (name.to_string(), path.to_path_buf());
        std::thread::Builder::new()
            .name(format!("engine-{name}"))
            .spawn(move || {
                worker::run(
                    name_owned,
                    path_owned,
                    opts,
                    worker_stats,
                    jobs_rx,
                    ready_tx,
                )
            })
            .map_err(|e| LoadError::Thread(e.to_string()))?;
        let (info, tokenizer) = ready_rx
            .recv()
            .map_err(|_| LoadError::Thread("worker exited during load".into()))??;
        Ok(Engine {
            info,
            tokenizer,
            stats,
            jobs: jobs_tx,
        })
    }

    /// Tokenizes the prompt (on the calling thread: call it from a blocking
    /// thread) and queues the request; events arrive on the returned channel.
    /// Dropping it cancels. A prompt that is empty or does not fit is refused here.
    pub fn submit(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::UnboundedReceiver<GenEvent>, EngineError> {
        let tokens = self.tokenizer.prompt(&request.prompt)?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        if self
            .jobs
            .send(Job {
                request,
                tokens,
                events: tx,
            })
            .is_err()
        {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::WorkerGone);
        }
        Ok(rx)
    }

    /// The model's tokenizer (usable from any thread).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Live counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }
}
