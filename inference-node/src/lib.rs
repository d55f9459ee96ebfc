//! Cerebrum inference node: serves GGUF models through llama.cpp over HTTP and SSE.
//!
//! - [`config`]: settings from TOML, environment and flags, validated at start.
//! - [`app`]: the router and middleware stack, composed in one place.
//! - [`auth`]: peer allow-list and API key (a layer).
//! - [`guard`]: CPU/RAM admission decisions and the background sampler.
//! - [`registry`]: model names, lazy single-flight loading, idle unloading.
//! - [`engine`]: llama.cpp worker threads with continuous batching.
//! - [`http`]: thin handlers for the Cerebrum and OpenAI APIs.
//! - [`metrics`]: Prometheus counters.
//! - [`inspect`]: what a GGUF file holds and needs.
//! - [`fit`]: whether a model fits in memory before it is loaded.
//! - [`server`]: wiring it together and serving until SIGTERM.
//! - [`shutdown`]: the drain-then-cut phases open streams see on shutdown.
//! - [`openapi`]: `GET /openapi.json` and `/docs`, public (feature `openapi`).

pub mod app;
pub mod auth;
pub mod config;
pub mod engine;
pub mod fit;
pub mod guard;
pub mod http;
pub mod inspect;
pub mod metrics;
pub mod openapi;
pub mod registry;
pub mod server;
pub mod shutdown;

#[cfg(test)]
mod serving_tests;
