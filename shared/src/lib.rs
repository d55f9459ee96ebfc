//! Wire types both Cerebrum tiers speak.
//!
//! This crate is the protocol: it depends on no server framework and no llama, so
//! the orchestrator (which must cross-build for ARM in minutes) and the inference
//! node share one definition of every body they exchange.
//!
//! - [`cerebrum`]: the original Cerebrum API (orchestrator and node shapes).
//! - [`openai`]: the OpenAI chat/completions API subset both tiers serve.
//! - [`config`]: the config error and TOML/environment reading both binaries use.
//! - [`error`]: the error envelope and the typed body-parsing errors.
//! - [`headers`]: header names.
//! - [`sse`]: helpers to frame Server-Sent Events.
//! - [`validate`]: range checks that name the offending field.
//! - [`service`]: systemd readiness and watchdog notifications (both binaries run as `Type=notify`).

pub mod cerebrum;
pub mod config;
pub mod error;
pub mod headers;
pub mod openai;
pub mod service;
pub mod sse;
pub mod validate;

/// Seconds since the Unix epoch as a float, the `timestamp` both APIs report.
pub fn unix_timestamp() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
