//! The circuit breaker in front of the node: failsafe's state machine with a
//! consecutive-failures policy and a constant cooldown, plus an instrument that
//! remembers the state for `/health`, `/metrics` and `Retry-After`.
//!
//! # What the breaker is told
//!
//! Every generation asked of the node records exactly one [`Outcome`], once, by
//! whoever sees it end: the opening call when it fails before the first piece,
//! else the token stream (its end, its error, or its drop by a client that went
//! away). What each outcome does:
//!
//! | outcome | examples | breaker | counter |
//! |---|---|---|---|
//! | [`Outcome::Success`] | `[DONE]` read | success | `successful` |
//! | [`Outcome::NodeFault`] | refused or reset connection, connect timeout, 5xx other than 503, a stream that breaks off, garbage, an event over the size cap, an idle timeout mid-stream, a first-token timeout on an idle node | failure | `failed` |
//! | [`Outcome::Refused`] | the node answered 4xx (the request's fault) or 503 (overloaded: alive and protecting itself) | success (the link works) | `refused` |
//! | [`Outcome::Misconfigured`] | 401/403 (the node refuses our key or address), a 3xx redirect | untouched | `refused` |
//! | [`Outcome::Queued`] | a first-token timeout while the node is busy (below) | untouched | `queued_timeouts` |
//! | [`Outcome::Cancelled`] | the client hung up | untouched | `cancelled` |
//!
//! So `requests_sent = successful + failed + refused + queued_timeouts + cancelled`
//! once no generation is in flight.
//!
//! A misconfiguration is not a node failure: the node is up and answering, and
//! every call would get the same answer until the operator fixes it. Opening
//! the breaker would replace the precise `upstream_auth` answer (which names
//! the setting to fix) with `breaker_open`, and after the fix would keep
//! refusing for a cooldown. Nor is it a success: it must not close a half-open
//! breaker or reset the count of real failures.
//!
//! # First-token timeouts: queueing or failure
//!
//! The node serves a bounded number of sequences at once and queues the rest,
//! so a request can wait for its first token behind others on a node that is
//! perfectly healthy. A first-token timeout (no response headers, or no first
//! piece, within `first_token_timeout`) is [`Outcome::Queued`] when, at the
//! moment it fires, either
//!
//! 1. another generation of this orchestrator is in flight to the node (ours
//!    may have waited behind it), or
//! 2. the node's last health reading (the background probe, every 2 s) said it
//!    is busy: `available: false` (its guard refusing work for CPU or RAM), a
//!    status other than `healthy`/`ok`, or a model loading.
//!
//! Otherwise (nothing else of ours in flight and the node idle by its own
//! account, or its health unreadable) the node accepted work it had room for and
//! produced nothing: [`Outcome::NodeFault`]. A stuck node that keeps other
//! streams open is still caught: their idle timeouts count, as do failed probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::{Instrument, StateMachine, backoff};

pub use cerebrum_shared::cerebrum::BreakerState;

/// How one generation ended (see the module docs for what each one does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ended with `[DONE]`.
    Success,
    /// The node or the link failed it.
    NodeFault,
    /// The node answered an error that is the request's or its load's (4xx, 503).
    Refused,
    /// The node refused the orchestrator itself (401/403) or redirected it.
    Misconfigured,
    /// Its first token did not come in time while the node was busy.
    Queued,
    /// The client went away first.
    Cancelled,
}

#[derive(Debug)]
struct Observed {
    state: AtomicU8,
    opened_at_ms: AtomicU64,
    opens: AtomicU64,
    epoch: Instant,
}

#[derive(Debug, Clone)]
struct Recorder(Arc<Observed>);

impl Instrument for Recorder {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        let ms = self.0.epoch.elapsed().as_millis() as u64;
        self.0.opened_at_ms.store(ms, Ordering::SeqCst);
        self.0.state.store(1, Ordering::SeqCst);
        self.0.opens.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("circuit breaker open: node calls refused during the cooldown");
    }

    fn on_half_open(&self) {
        self.0.state.store(2, Ordering::SeqCst);
        tracing::info!("circuit breaker half-open: next call is a trial");
    }

    fn on_closed(&self) {
        if self.0.state.swap(0, Ordering::SeqCst) != 0 {
            tracing::info!("circuit breaker closed: node answering again");
        }
    }
}

/// The breaker; cheap to clone.
#[derive(Clone)]
pub struct Breaker {
    machine: StateMachine<ConsecutiveFailures<backoff::Constant>, Recorder>,
    observed: Arc<Observed>,
    cooldown: Duration,
}

impl Breaker {
    /// Opens after `threshold` consecutive failures, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        let observed = Arc::new(Observed {
            state: AtomicU8::new(0),
            opened_at_ms: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let machine = failsafe::Config::new()
            .failure_policy(consecutive_failures(threshold, backoff::constant(cooldown)))
            .instrument(Recorder(observed.clone()))
            .build();
        Self {
            machine,
            observed,
            cooldown,
        }
    }

    /// May a call go through now? (Moves an expired open breaker to half-open.)
    pub fn permit(&self) -> bool {
        self.machine.is_call_permitted()
    }

    /// Tells the state machine about one outcome.
    pub fn record(&self, outcome: Outcome) {
        match outcome {
            Outcome::Success | Outcome::Refused => self.success(),
            Outcome::NodeFault => self.failure(),
            Outcome::Misconfigured | Outcome::Queued | Outcome::Cancelled => {}
        }
    }

    /// Records a call that worked.
    pub fn success(&self) {
        self.machine.on_success();
    }

    /// Records a call that failed because of the node or the link.
    pub fn failure(&self) {
        self.machine.on_error();
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match self.observed.state.load(Ordering::SeqCst) {
            1 if self.retry_after_secs() == 0 => BreakerState::HalfOpen,
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// Whole seconds until the cooldown ends (at least 1 while open).
    pub fn retry_after_secs(&self) -> u64 {
        if self.observed.state.load(Ordering::SeqCst) != 1 {
            return 0;
        }
        let opened = Duration::from_millis(self.observed.opened_at_ms.load(Ordering::SeqCst));
        let now = self.observed.epoch.elapsed();
        let left = (opened + self.cooldown).saturating_sub(now);
        if left.is_zero() {
            0
        } else {
            // Rounded up: a client told to wait 0 s would retry into a refusal.
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        }
    }

    /// How many times it has opened.
    pub fn opens(&self) -> u64 {
        self.observed.opens.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_recovers_after_the_cooldown() {
        let b = Breaker::new(3, Duration::from_millis(200));
        for _ in 0..2 {
            assert!(b.permit());
            b.failure();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.permit());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.permit());
        assert!(b.retry_after_secs() >= 1);
        std::thread::sleep(Duration::from_millis(250));
        assert!(b.permit(), "trial call after the cooldown");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.opens(), 1);
    }

    #[test]
    fn a_failed_trial_opens_again() {
        let b = Breaker::new(1, Duration::from_millis(100));
        b.failure();
        assert!(!b.permit());
        std::thread::sleep(Duration::from_millis(150));
        assert!(b.permit());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.permit());
    }

    #[test]
    fn neutral_outcomes_neither_count_nor_reset_nor_decide_a_trial() {
        for neutral in [Outcome::Misconfigured, Outcome::Queued, Outcome::Cancelled] {
            let b = Breaker::new(2, Duration::from_millis(100));
            b.record(Outcome::NodeFault);
            b.record(neutral);
            assert_eq!(b.state(), BreakerState::Closed, "{neutral:?} is no failure");
            b.record(Outcome::NodeFault);
            assert_eq!(b.state(), BreakerState::Open, "{neutral:?} reset nothing");
            std::thread::sleep(Duration::from_millis(150));
            assert!(b.permit());
            b.record(neutral);
            assert_eq!(
                b.state(),
                BreakerState::HalfOpen,
                "{neutral:?} decided the trial"
            );
            b.record(Outcome::Refused);
            assert_eq!(b.state(), BreakerState::Closed, "the node answered");
        }
    }

    #[test]
    fn successes_reset_the_count() {
        let b = Breaker::new(2, Duration::from_secs(10));
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
