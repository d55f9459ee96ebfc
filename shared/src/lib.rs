//! The Cerebrum protocol: every body both tiers and the client exchange.
//!
//! This crate depends on no runtime, server framework, TOML or llama, so the
//! orchestrator (which must cross-build for ARM in minutes), the inference node
//! and the client share one definition of each type; client/server drift is a
//! compile error.
//!
//! - [`cerebrum`]: the original Cerebrum API (orchestrator and node shapes, health).
//! - [`openai`]: the OpenAI chat/completions API subset both tiers serve, and the stream shaper.
//! - [`prepare`]: what prompt preparation did (`/v1/prepare`, `preparation`).
//! - [`error`]: error codes, the envelope in both dialects, reading errors back, body parsing.
//! - [`limits`]: request defaults and limits.
//! - [`headers`]: header names.
//! - [`sse`]: helpers to frame Server-Sent Events.
//! - [`validate`]: range checks that name the offending field.

pub mod cerebrum;
pub mod error;
pub mod headers;
pub mod limits;
pub mod openai;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod prepare;
pub mod sse;
pub mod validate;

/// Seconds since the Unix epoch as a float, the `timestamp` both APIs report.
pub fn unix_timestamp() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
