//! Header names used across the tiers.

/// The node's API key header (the original's name).
pub const API_KEY: &str = "x-api-key";
/// Correlates one request through orchestrator and node logs.
pub const REQUEST_ID: &str = "x-request-id";
/// Sent by the node with every streamed or complete answer: which model served it.
pub const MODEL_USED: &str = "x-cerebrum-model";
