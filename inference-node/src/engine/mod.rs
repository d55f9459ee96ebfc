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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    /// The model's worker panicked while this request was queued or decoding.
    #[error(
        "the model worker crashed (a panic in the inference engine) and this request was lost; the model is reloaded on the next request"
    )]
    Crashed,
    /// The node is stopping and its grace period for open streams ran out.
    #[error(
        "the node is shutting down: this answer was cut off after the {grace_secs} s shutdown grace; retry"
    )]
    ShuttingDown {
        /// The grace open requests had.
        grace_secs: u64,
    },
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

/// Test seam: a text prompt containing this makes the worker panic at its first
/// sample, as a bug in the bindings would. Unit tests only.
#[cfg(test)]
pub(crate) fn worker_panic_trigger() -> &'static str {
    worker::PANIC_TRIGGER
}

/// Tokens per decode for `parallel` slots: 512, or one per slot when more.
pub fn n_batch(parallel: u32) -> u32 {
    512.max(parallel)
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
    /// Requests holding the engine (a registry lease), from lookup to the end of
    /// their response, whether or not the engine has seen them yet.
    leases: AtomicUsize,
    /// The worker is gone (it panicked): the registry loads the model afresh.
    dead: AtomicBool,
    last_done: Mutex<Instant>,
}

impl EngineStats {
    fn new() -> Self {
        Self {
            active: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            tokens_generated: AtomicU64::new(0),
            leases: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
            last_done: Mutex::new(Instant::now()),
        }
    }

    /// Whether any request holds the engine, is waiting in it or decoding.
    pub fn busy(&self) -> bool {
        self.leases.load(Ordering::SeqCst)
            + self.active.load(Ordering::SeqCst)
            + self.queued.load(Ordering::SeqCst)
            > 0
    }

    /// Requests holding a lease on the engine now.
    pub fn leases(&self) -> usize {
        self.leases.load(Ordering::SeqCst)
    }

    /// Whether the worker is gone (it panicked).
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Counts a lease; the registry calls it under its lock (see [`crate::registry::Lease`]).
    pub(crate) fn lease(&self) {
        self.leases.fetch_add(1, Ordering::SeqCst);
    }

    /// A lease ended: its request is done, so the idle clock restarts.
    pub(crate) fn release_lease(&self) {
        self.mark_done();
        self.leases.fetch_sub(1, Ordering::SeqCst);
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
    // Fields drop in order: the counters come back before the client hears.
    ticket: Ticket,
    events: EventSink,
}

/// Where a request's events go. A sink dropped before it sent `Finished` or
/// `Failed` (its job was dropped in a queue, or a panic unwound the worker that
/// held it) sends `Failed` itself, so no stream ends without saying what happened.
struct EventSink {
    tx: mpsc::UnboundedSender<GenEvent>,
    ended: bool,
}

impl EventSink {
    fn new(tx: mpsc::UnboundedSender<GenEvent>) -> Self {
        Self { tx, ended: false }
    }

    /// Sends an event; false when the client is gone.
    fn send(&mut self, event: GenEvent) -> bool {
        if matches!(event, GenEvent::Finished { .. } | GenEvent::Failed(_)) {
            self.ended = true;
        }
        self.tx.send(event).is_ok()
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        if !self.ended {
            let error = if std::thread::panicking() {
                EngineError::Crashed
            } else {
                EngineError::WorkerGone
            };
            let _ = self.tx.send(GenEvent::Failed(error));
        }
    }
}

/// One request's place in the engine's counters: queued from `submit` until a
/// slot takes it, then active until it ends. However it ends (finished,
/// cancelled, dropped in a queue, or unwound by a panic), dropping the ticket
/// undoes what it counted, so the engine never looks busy with work it lost.
struct Ticket {
    stats: Arc<EngineStats>,
    state: TicketState,
}

#[derive(PartialEq)]
enum TicketState {
    Queued,
    Active,
    Done,
}

impl Ticket {
    fn queue(stats: Arc<EngineStats>) -> Self {
        stats.queued.fetch_add(1, Ordering::SeqCst);
        Self {
            stats,
            state: TicketState::Queued,
        }
    }

    /// Taken into a slot.
    fn activate(&mut self) {
        if self.state == TicketState::Queued {
            // Active before not-queued, so the engine never looks idle in between.
            self.stats.active.fetch_add(1, Ordering::SeqCst);
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            self.state = TicketState::Active;
        }
    }

    /// Left its slot or the queue: not counted any more, completed, idle clock reset.
    fn finish(&mut self) {
        match self.state {
            TicketState::Queued => self.stats.queued.fetch_sub(1, Ordering::SeqCst),
            TicketState::Active => self.stats.active.fetch_sub(1, Ordering::SeqCst),
            TicketState::Done => return,
        };
        self.state = TicketState::Done;
        self.stats.completed.fetch_add(1, Ordering::Relaxed);
        self.stats.mark_done();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.finish();
    }
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
        let job = Job {
            request,
            tokens,
            ticket: Ticket::queue(self.stats.clone()),
            events: EventSink::new(tx),
        };
        if let Err(std::sync::mpsc::SendError(mut job)) = self.jobs.send(job) {
            // Dropped here: the ticket uncounts itself; the sink has nobody to tell.
            job.events.ended = true;
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
