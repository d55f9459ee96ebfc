//! HTTP handlers (thin) and the one place engine and registry errors become responses.

pub mod admin;
pub mod cerebrum;
pub mod openai;
pub mod tokenize;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use cerebrum_shared::error::{ApiError, ErrorCode};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::NodeConfig;
use crate::engine::{EngineError, FinishReason, GenEvent, GenerateRequest};
use crate::fit::Unfit;
use crate::guard::{AdmissionGuard, Refusal};
use crate::metrics::{Metrics, Rejection};
use crate::registry::{Lease, ModelRegistry, RegistryError};
use crate::shutdown::{Phase, Shutdown};

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// Validated settings.
    pub config: Arc<NodeConfig>,
    /// Models.
    pub registry: ModelRegistry,
    /// CPU/RAM admission.
    pub guard: AdmissionGuard,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Start time, for uptime.
    pub started: Instant,
    /// Shutdown phases: new work is refused while draining; open streams end when cut.
    pub shutdown: Shutdown,
}

pub use cerebrum_service::http::{ApiJson, HttpError};
pub use cerebrum_shared::error::dialect_of;

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::Unknown { .. } | RegistryError::NoDefault { .. } => {
                ApiError::new(ErrorCode::ModelNotFound, e.to_string())
            }
            RegistryError::DoesNotFit(Unfit::Now { .. }) => {
                ApiError::unavailable(ErrorCode::VpsOverloaded, e.to_string(), 30).with_hint(
                    e.to_string(),
                    "Unload other models (POST /v1/cleanup) or free memory on the VPS",
                )
            }
            RegistryError::DoesNotFit(Unfit::Never { .. }) => {
                ApiError::new(ErrorCode::ModelLoadFailed, e.to_string()).with_hint(
                    e.to_string(),
                    "Serve a smaller model or quantization, lower CEREBRUM_PARALLEL or CEREBRUM_CONTEXT_SIZE, or raise the memory limit (docs/deploy.md)",
                )
            }
            RegistryError::AllBusy { .. } => {
                ApiError::unavailable(ErrorCode::VpsOverloaded, e.to_string(), 5)
                    .with_hint(e.to_string(), "Retry shortly")
            }
            RegistryError::Load(_) => ApiError::new(ErrorCode::ModelLoadFailed, e.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::PromptTooLong { .. } => {
                ApiError::new(ErrorCode::PromptTooLong, e.to_string())
            }
            EngineError::EmptyPrompt | EngineError::Template(_) => {
                ApiError::bad_request(e.to_string())
            }
            EngineError::Decode(_) => ApiError::new(ErrorCode::InferenceFailed, e.to_string()),
            EngineError::WorkerGone | EngineError::Crashed => {
                ApiError::unavailable(ErrorCode::ModelUnavailable, e.to_string(), 1)
            }
            EngineError::ShuttingDown { .. } => {
                ApiError::unavailable(ErrorCode::VpsUnavailable, e.to_string(), 5)
            }
        }
    }
}

fn refusal_error(r: Refusal) -> ApiError {
    ApiError::unavailable(ErrorCode::VpsOverloaded, r.reason.clone(), r.retry_after)
        .with_hint(r.reason, r.suggestion)
}

/// A generation that has started: its prompt was accepted by the engine.
pub struct Generation {
    /// Model serving it.
    pub model: String,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Token events until `Finished`/`Failed`. Dropping it cancels the sequence.
    pub events: Events,
}

/// A generation's events, ending with exactly one `Finished` or `Failed` whatever
/// happens: a worker that vanishes without a word gives `WorkerGone`, a shutdown
/// whose grace ran out gives `ShuttingDown`. Holds the request's lease on the
/// engine until the response is over.
pub struct Events {
    rx: UnboundedReceiver<GenEvent>,
    cut: BoxFuture<'static, ()>,
    grace_secs: u64,
    ended: bool,
    _lease: Lease,
}

impl Stream for Events {
    type Item = GenEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<GenEvent>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let event = match this.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => event,
            Poll::Ready(None) => GenEvent::Failed(EngineError::WorkerGone),
            Poll::Pending => match this.cut.poll_unpin(cx) {
                Poll::Ready(()) => GenEvent::Failed(EngineError::ShuttingDown {
                    grace_secs: this.grace_secs,
                }),
                Poll::Pending => return Poll::Pending,
            },
        };
        this.ended = matches!(event, GenEvent::Finished { .. } | GenEvent::Failed(_));
        if let GenEvent::Finished {
            prompt_tokens,
            cached_tokens,
            completion_tokens,
            ..
        } = &event
        {
            // On the request's log line and metrics (polled inside its scope).
            cerebrum_service::logging::record_tokens(
                Some(u64::from(*prompt_tokens)),
                Some(u64::from(*cached_tokens)),
                u64::from(*completion_tokens),
            );
        }
        Poll::Ready(Some(event))
    }
}

impl AppState {
    /// Admission, model lookup (loading it if needed), submit, and wait for the
    /// engine to accept the prompt, so every refusal is still a status code.
    pub async fn start(
        &self,
        model: Option<&str>,
        request: GenerateRequest,
    ) -> Result<Generation, ApiError> {
        let name = self.registry.resolve_name(model).inspect_err(|_| {
            self.metrics.reject(Rejection::BadRequest);
        })?;
        if self.shutdown.phase() != Phase::Serving {
            return Err(ApiError::unavailable(
                ErrorCode::VpsUnavailable,
                "the node is shutting down and takes no new work; retry",
                5,
            ));
        }
        if let Err(refusal) = self.guard.check() {
            self.metrics.reject(refusal.kind);
            tracing::warn!(reason = %refusal.reason, "admission refused");
            return Err(refusal_error(refusal));
        }
        let lease = self.registry.get(&name).await.inspect_err(|e| match e {
            RegistryError::DoesNotFit(_) => self.metrics.reject(Rejection::Memory),
            RegistryError::AllBusy { .. } => self.metrics.reject(Rejection::Busy),
            _ => {}
        })?;
        // Rendering the chat template and tokenizing take milliseconds (more for a
        // long conversation): keep them off the async workers and off the engine
        // thread, which decodes every live stream.
        let submitted = {
            let engine = lease.engine().clone();
            tokio::task::spawn_blocking(move || engine.submit(request))
                .await
                .map_err(|_| EngineError::WorkerGone)?
        };
        let rx = submitted.inspect_err(|e| {
            if matches!(e, EngineError::WorkerGone) {
                self.registry.forget(&name);
            }
        })?;
        self.metrics.inference();
        let mut events = Events {
            rx,
            cut: self.shutdown.when_cut().boxed(),
            grace_secs: self.shutdown.grace().as_secs(),
            ended: false,
            _lease: lease,
        };
        let submitted_at = std::time::Instant::now();
        match events.next().await {
            Some(GenEvent::Started {
                prompt_tokens,
                cached_tokens,
            }) => {
                cerebrum_service::logging::record_prompt(
                    u64::from(prompt_tokens),
                    u64::from(cached_tokens),
                );
                cerebrum_service::logging::record_queue_wait(submitted_at.elapsed());
                cerebrum_service::logging::record_model(&name);
                Ok(Generation {
                    model: name,
                    prompt_tokens,
                    events,
                })
            }
            Some(GenEvent::Failed(e)) => Err(e.into()),
            _ => Err(EngineError::WorkerGone.into()),
        }
    }
}

/// A finished, non-streamed generation.
pub struct Completed {
    /// The text.
    pub text: String,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Of those, reused from the KV cache.
    pub cached_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Why it ended.
    pub reason: FinishReason,
    /// Seconds.
    pub seconds: f64,
}

impl Generation {
    /// Waits for the whole answer.
    pub async fn collect(mut self) -> Result<Completed, ApiError> {
        let mut text = String::new();
        while let Some(event) = self.events.next().await {
            match event {
                GenEvent::Token { text: t, .. } => text.push_str(&t),
                GenEvent::Finished {
                    reason,
                    prompt_tokens,
                    cached_tokens,
                    completion_tokens,
                    elapsed,
                } => {
                    return Ok(Completed {
                        text,
                        prompt_tokens,
                        cached_tokens,
                        completion_tokens,
                        reason,
                        seconds: elapsed.as_secs_f64(),
                    });
                }
                GenEvent::Failed(e) => return Err(e.into()),
                GenEvent::Started { .. } => {}
            }
        }
        Err(EngineError::WorkerGone.into())
    }
}
