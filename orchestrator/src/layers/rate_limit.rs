//! Optional per-client rate limit (governor), keyed by client key, else peer
//! address. Off by default; over the limit → 429 with `Retry-After`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, ErrorCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::api::HttpError;
use crate::state::{AppState, Metrics};

/// The keyed limiter and its clock.
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl ClientRateLimit {
    /// `per_second` requests a second with bursts of `burst`; `None` when off (0).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            clock: DefaultClock::default(),
        })
    }

    /// `Ok` or the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.limiter
            .check_key(&key.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
    }
}

/// The middleware (added only when a limit is configured).
pub async fn limit(
    State((state, limiter)): State<(AppState, ClientRateLimit)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let key = crate::layers::client_auth::presented_key(request.headers())
        .map(|k| format!("key:{k}"))
        .unwrap_or_else(|| format!("ip:{}", peer.ip()));
    if let Err(wait) = limiter.check(&key) {
        Metrics::inc(&state.metrics.rate_limited);
        let e = ApiError::unavailable(
            ErrorCode::RateLimited,
            format!("too many requests; retry in {wait} s"),
            wait.max(1),
        );
        return HttpError(e, crate::api::dialect_of(request.uri().path())).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_when_zero_and_limits_per_key() {
        assert!(ClientRateLimit::new(0, 5).is_none());
        let l = ClientRateLimit::new(1, 2).unwrap();
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert!(l.check("a").unwrap_err() >= 1);
        assert!(l.check("b").is_ok(), "another client has its own budget");
    }
}
