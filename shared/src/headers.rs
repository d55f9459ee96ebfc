//! Header names used across the tiers.

/// The node's API key header (the original's name).
pub const API_KEY: &str = "x-api-key";
/// Correlates one request through orchestrator and node logs.
pub const REQUEST_ID: &str = "x-request-id";
/// Sent by the node with every streamed or complete answer: which model served it.
pub const MODEL_USED: &str = "x-cerebrum-model";
/// Sent by the orchestrator with its OpenAI answers: what preparation did to
/// the prompt, as the JSON of [`crate::prepare::Preparation`].
pub const PREPARATION: &str = "x-cerebrum-preparation";

/// The key a request presents: `X-API-Key`, else `Authorization: Bearer …`
/// (both tiers accept either, so every OpenAI client can authenticate).
pub fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(API_KEY)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_either_header() {
        let mut h = http::HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented_key(&h), Some("abc"));
        h.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented_key(&h), Some("xyz"));
    }
}
