//! Who may use the node: a peer on loopback or the allow-list, holding the API key.
//!
//! `/health` is mounted outside this layer. Missing key → 401; wrong key or a
//! peer not allowed → 403. The key is compared in constant time.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cerebrum_shared::error::{ApiError, ErrorCode};

use crate::http::HttpError;
use crate::metrics::{Metrics, Rejection};

/// What the auth layer checks against.
#[derive(Clone)]
pub struct AuthPolicy {
    key: Arc<[u8]>,
    allowed_peers: Arc<[IpAddr]>,
    metrics: Arc<Metrics>,
}

impl AuthPolicy {
    /// A policy for one key and an allow-list (loopback is always allowed).
    pub fn new(key: &str, allowed_peers: &[IpAddr], metrics: Arc<Metrics>) -> Self {
        Self {
            key: key.as_bytes().into(),
            allowed_peers: allowed_peers.into(),
            metrics,
        }
    }

    /// Whether `peer` may connect at all.
    pub fn peer_allowed(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        peer.is_loopback() || self.allowed_peers.contains(&peer)
    }

    /// Checks the key in `X-API-Key` or `Authorization: Bearer`.
    pub fn check_key(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        cerebrum_service::keys::check(&[&*self.key], headers, "the node's key")
    }
}

/// The middleware: peer first, then key.
pub async fn require_key(
    State(policy): State<AuthPolicy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let dialect = crate::http::dialect_of(request.uri().path());
    if !policy.peer_allowed(peer.ip()) {
        policy.metrics.reject(Rejection::Auth);
        tracing::warn!(peer = %peer, "refused a peer that is not allow-listed");
        return HttpError(
            ApiError::new(
                ErrorCode::PeerNotAllowed,
                format!("peer {} is not allowed", peer.ip()),
            ),
            dialect,
        )
        .into_response();
    }
    if let Err(e) = policy.check_key(request.headers()) {
        policy.metrics.reject(Rejection::Auth);
        return HttpError(e, dialect).into_response();
    }
    next.run(request).await
}

/// Makes a new random key: 256 bits, URL-safe base64 without padding.
pub fn generate_key() -> Result<String, String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AuthPolicy {
        AuthPolicy::new(
            "s3cret-key-0123456789",
            &["100.64.0.7".parse().unwrap()],
            Arc::default(),
        )
    }

    #[test]
    fn loopback_and_allow_list_only() {
        let p = policy();
        assert!(p.peer_allowed("127.0.0.1".parse().unwrap()));
        assert!(p.peer_allowed("::1".parse().unwrap()));
        assert!(p.peer_allowed("::ffff:100.64.0.7".parse().unwrap()));
        assert!(!p.peer_allowed("100.64.0.8".parse().unwrap()));
    }

    #[test]
    fn key_matrix() {
        let p = policy();
        let mut h = HeaderMap::new();
        assert_eq!(p.check_key(&h).unwrap_err().status, 401);
        h.insert("x-api-key", "nope".parse().unwrap());
        assert_eq!(p.check_key(&h).unwrap_err().status, 403);
        h.insert("x-api-key", "s3cret-key-0123456789".parse().unwrap());
        assert!(p.check_key(&h).is_ok());
        let mut b = HeaderMap::new();
        b.insert(
            "authorization",
            "Bearer s3cret-key-0123456789".parse().unwrap(),
        );
        assert!(p.check_key(&b).is_ok());
    }

    #[test]
    fn generated_keys_are_long_and_url_safe() {
        let k = generate_key().unwrap();
        assert_eq!(k.len(), 43);
        assert!(
            k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(k, generate_key().unwrap());
    }
}
