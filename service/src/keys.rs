//! API keys, checked the same way on both tiers: the key a request presents
//! (`X-API-Key`, else `Authorization: Bearer`) must be one of the accepted keys,
//! compared in constant time. Missing → 401, wrong → 403.

use axum::http::HeaderMap;
use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_shared::headers::presented_key;
use subtle::ConstantTimeEq;

/// Whether `presented` is one of `accepted`, in time that does not depend on
/// which key matched or where a comparison failed.
pub fn matches<K: AsRef<[u8]>>(accepted: &[K], presented: &str) -> bool {
    accepted.iter().fold(false, |found, k| {
        found | bool::from(k.as_ref().ct_eq(presented.as_bytes()))
    })
}

/// Checks the request's key against `accepted`; `hint` tells the caller which
/// key is meant (it ends the 401's message).
pub fn check<K: AsRef<[u8]>>(
    accepted: &[K],
    headers: &HeaderMap,
    hint: &str,
) -> Result<(), ApiError> {
    match presented_key(headers) {
        None => Err(ApiError::new(
            ErrorCode::MissingApiKey,
            format!("send {hint} as X-API-Key or Authorization: Bearer"),
        )),
        Some(k) if matches(accepted, k) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidApiKey,
            "the API key does not match",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_accepted_key_in_either_header() {
        let keys = ["alpha-key", "beta-key"];
        assert!(matches(&keys, "beta-key"));
        assert!(!matches(&keys, "beta-ke"));
        assert!(!matches::<&str>(&[], "x"));
        let mut h = HeaderMap::new();
        assert_eq!(
            check(&keys, &h, "k").unwrap_err().code,
            ErrorCode::MissingApiKey
        );
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            check(&keys, &h, "k").unwrap_err().code,
            ErrorCode::InvalidApiKey
        );
        h.insert("x-api-key", "alpha-key".parse().unwrap());
        assert!(check(&keys, &h, "k").is_ok());
    }
}
