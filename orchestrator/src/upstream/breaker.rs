//! The circuit breaker in front of the node: failsafe's state machine with a
//! consecutive-failures policy and a constant cooldown, plus an instrument that
//! remembers the state for `/health`, `/metrics` and `Retry-After`.
//!
//! What counts as a failure is decided by the caller (see `upstream`): connection
//! errors, timeouts, 5xx answers other than an overloaded 503, and streams that
//! break off. A client that hangs up is not the node's fault and counts for nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::{Instrument, StateMachine, backoff};

pub use cerebrum_shared::cerebrum::BreakerState;

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
    fn successes_reset_the_count() {
        let b = Breaker::new(2, Duration::from_secs(10));
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
