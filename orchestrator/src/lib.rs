//! Cerebrum orchestrator: the Pi tier between clients and the inference node.
//!
//! Table of contents (one line per module):
//! - [`prompt`]: pure prompt preparation — instruction extraction, chunking,
//!   dedup, code-aware ranking and assembly (`cerebrum prepare`).
//! - [`routing`]: pure: language (given or detected) → model.
//! - [`fit`]: pure: fitting a request to the model's context (prepare harder, drop old turns, clamp).
//! - [`config`]: settings from TOML, environment and flags, validated at start.
//! - [`app`]: the router and the whole middleware stack, in one place.
//! - [`layers`]: in-flight limit (load shed), rate limit, client keys.
//! - [`api`]: thin handlers for the Cerebrum and OpenAI APIs and the ops routes.
//! - [`upstream`]: the node client: keep-alive pool, circuit breaker, stream reader.
//! - [`state`]: the `AppState` every handler gets.
//! - [`metrics`]: `/metrics`, one `prometheus-client` registry.
//! - [`cpu`]: the Pi's CPU gauge.
//! - [`serve`]: `cerebrum serve`, graceful shutdown.
//! - [`client`]: typed client for every orchestrator route (what the CLI calls).
//! - [`openapi`]: `GET /openapi.json` and `/docs` (feature `openapi`).

pub mod api;
pub mod app;
pub mod client;
pub mod config;
pub mod cpu;
pub mod fit;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod prompt;
pub mod routing;
pub mod serve;
pub mod state;
pub mod upstream;
