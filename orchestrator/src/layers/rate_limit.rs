//! Optional per-client rate limit (governor). Off by default; over the limit →
//! 429 with `Retry-After`.
//!
//! A client is a configured client key it presents, else its address (an IPv6
//! address by its /64, what one host is usually given): a key the client makes
//! up is not a client, or every request could bring a fresh bucket. The map of
//! buckets is pruned every [`PRUNE_EVERY`] checks of the buckets back at full
//! (governor's `retain_recent`), so it holds the clients seen within about
//! `burst / rate` seconds plus at most `PRUNE_EVERY` more, whatever they send.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, ErrorCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::api::HttpError;
use crate::layers::outcome::CountedElsewhere;
use crate::state::{AppState, Metrics};

/// Checks between two prunings of the bucket map.
pub const PRUNE_EVERY: u32 = 1024;

/// Whom a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// The configured client key at this index.
    Key(usize),
    /// An IPv4 address, or an IPv6 /64.
    Address(IpAddr),
}

/// The keyed limiter, its clock and the configured keys.
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<Client>>,
    clock: DefaultClock,
    keys: Arc<Vec<String>>,
    checks: Arc<AtomicU32>,
}

impl ClientRateLimit {
    /// `per_second` requests a second with bursts of `burst`, clients told
    /// apart by `keys` (the configured client keys) or address; `None` when off (0).
    pub fn new(per_second: u32, burst: u32, keys: &[String]) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            clock: DefaultClock::default(),
            keys: Arc::new(keys.to_vec()),
            checks: Arc::new(AtomicU32::new(0)),
        })
    }

    /// The client a request from `peer` presenting `key` counts as.
    pub fn client(&self, key: Option<&str>, peer: IpAddr) -> Client {
        if let Some(i) = key.and_then(|k| self.keys.iter().position(|c| c == k)) {
            return Client::Key(i);
        }
        Client::Address(match peer.to_canonical() {
            IpAddr::V6(v6) => {
                let net = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(net))
            }
            v4 => v4,
        })
    }

    /// `Ok` or the seconds to wait.
    pub fn check(&self, client: &Client) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        self.limiter.check_key(client).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets the buckets that are back at full.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Buckets held now.
    pub fn clients(&self) -> usize {
        self.limiter.len()
    }
}

/// The middleware (added only when a limit is configured).
pub async fn limit(
    State((state, limiter)): State<(AppState, ClientRateLimit)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let key = crate::layers::client_auth::presented_key(request.headers());
    let client = limiter.client(key, peer.ip());
    if let Err(wait) = limiter.check(&client) {
        Metrics::inc(&state.metrics.rate_limited);
        let e = ApiError::unavailable(
            ErrorCode::RateLimited,
            format!("too many requests; retry in {wait} s"),
            wait.max(1),
        );
        let mut response =
            HttpError(e, crate::api::dialect_of(request.uri().path())).into_response();
        response.extensions_mut().insert(CountedElsewhere);
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn off_when_zero_and_limits_per_client() {
        assert!(ClientRateLimit::new(0, 5, &[]).is_none());
        let l = ClientRateLimit::new(1, 2, &[]).unwrap();
        let a = l.client(None, ip("10.0.0.1"));
        assert!(l.check(&a).is_ok());
        assert!(l.check(&a).is_ok());
        assert!(l.check(&a).unwrap_err() >= 1);
        let b = l.client(None, ip("10.0.0.2"));
        assert!(l.check(&b).is_ok(), "another client has its own budget");
    }

    #[test]
    fn invented_keys_from_one_peer_share_its_bucket_and_the_map_stays_small() {
        let l = ClientRateLimit::new(1, 5, &[]).unwrap();
        let passed = (0..10_000)
            .filter(|i| {
                let c = l.client(Some(&format!("invented-{i}")), ip("192.168.1.9"));
                l.check(&c).is_ok()
            })
            .count();
        assert_eq!(passed, 5, "one bucket: the burst, then 429");
        assert_eq!(l.clients(), 1);
    }

    #[test]
    fn a_configured_key_is_its_own_client_wherever_it_comes_from() {
        let keys = ["k-one".to_string(), "k-two".to_string()];
        let l = ClientRateLimit::new(1, 1, &keys).unwrap();
        assert_eq!(l.client(Some("k-two"), ip("10.0.0.1")), Client::Key(1));
        assert_eq!(
            l.client(Some("k-two"), ip("10.0.0.2")),
            l.client(Some("k-two"), ip("10.0.0.1"))
        );
        assert_eq!(
            l.client(Some("made-up"), ip("10.0.0.1")),
            Client::Address(ip("10.0.0.1"))
        );
    }

    #[test]
    fn an_ipv6_host_is_its_64_and_a_mapped_ipv4_is_the_ipv4() {
        let l = ClientRateLimit::new(1, 1, &[]).unwrap();
        assert_eq!(
            l.client(None, ip("2001:db8:1:2:aaaa::1")),
            l.client(None, ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            l.client(None, ip("2001:db8:1:2::1")),
            l.client(None, ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            l.client(None, ip("::ffff:10.0.0.1")),
            Client::Address(ip("10.0.0.1"))
        );
    }

    #[test]
    fn buckets_back_at_full_are_pruned() {
        // 1000/s: a bucket is full again 1 ms after its one request.
        let l = ClientRateLimit::new(1000, 1, &[]).unwrap();
        for i in 0..1000u32 {
            let c = Client::Address(IpAddr::from(i.to_be_bytes()));
            assert!(l.check(&c).is_ok());
        }
        assert_eq!(l.clients(), 1000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        l.prune();
        assert_eq!(l.clients(), 0);
    }
}
