//! The node's shutdown, in phases every request can see: serving; draining (the
//! stop signal came: no new work, open streams may finish); cut (the grace ran
//! out: open streams end now with an error event, and `[DONE]` on OpenAI streams,
//! instead of being dropped mid-answer when the server stops).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Where shutdown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Normal work.
    Serving,
    /// Stop signalled: new work is refused, open work may finish.
    Draining,
    /// The grace is over: open work ends now.
    Cut,
}

/// The shared shutdown state; cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<Phase>>,
    grace: Duration,
}

impl Shutdown {
    /// Serving, with `grace` for open work once the stop signal comes.
    pub fn new(grace: Duration) -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(Phase::Serving)),
            grace,
        }
    }

    /// How long open work may run after the stop signal.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// Stop signalled.
    pub fn drain(&self) {
        self.tx.send_if_modified(|p| advance(p, Phase::Draining));
    }

    /// The grace is over.
    pub fn cut(&self) {
        self.tx.send_if_modified(|p| advance(p, Phase::Cut));
    }

    /// Resolves once open work must end.
    pub fn when_cut(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|p| *p == Phase::Cut).await;
        }
    }

    /// Drains on `signal`, cuts `grace` later: the stop future for the server.
    pub async fn run_on(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.drain();
        tracing::info!(
            grace_s = self.grace.as_secs_f64(),
            "stop signal: refusing new work; open streams may finish"
        );
        tokio::spawn(async move {
            tokio::time::sleep(self.grace).await;
            tracing::warn!(
                grace_s = self.grace.as_secs_f64(),
                "shutdown grace over: ending the open streams with an error event"
            );
            self.cut();
        });
    }
}

fn advance(phase: &mut Phase, to: Phase) -> bool {
    if *phase < to {
        *phase = to;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward_and_cut_wakes_waiters() {
        let s = Shutdown::new(Duration::from_secs(1));
        let cut = tokio::spawn(s.when_cut());
        s.drain();
        assert_eq!(s.phase(), Phase::Draining);
        assert!(!cut.is_finished());
        s.cut();
        s.drain();
        assert_eq!(s.phase(), Phase::Cut);
        tokio::time::timeout(Duration::from_secs(5), cut)
            .await
            .expect("woken")
            .unwrap();
    }
}
