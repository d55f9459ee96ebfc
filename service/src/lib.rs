//! What both Cerebrum servers share beyond the protocol (`cerebrum-shared`).
//!
//! - [`http`]: the one [`http::HttpError`] that turns an `ApiError` into a response
//!   in the route's dialect, the [`http::ApiJson`] extractor that routes every body
//!   rejection into it, and the JSON 404/405 fallbacks.
//! - [`docs`]: `/openapi.json` and `/docs` (each tier brings its document).
//! - [`keys`]: the API-key check both tiers use (constant time, 401/403).
//! - [`layers`]: the request-id and access-log layers both stacks start with, and
//!   the one log line per request.
//! - [`logging`]: `RUST_LOG`/`LOG_LEVEL`, `LOG_FORMAT=json`, no colour or second
//!   timestamp in the journal; what handlers learn of a request.
//! - [`metrics`]: the per-request Prometheus series both tiers export.
//! - [`shutdown`]: SIGTERM handling and `serve_with_grace` (bounded drain).
//! - [`notify`]: systemd readiness and watchdog (both binaries run as `Type=notify`).
//! - [`settings`](mod@settings): each binary's settings declared once (TOML key, environment
//!   variable, flag, default, help), read with file < environment < flag.
//! - [`config`]: the error a bad setting stops start-up with.

pub mod config;
pub mod docs;
pub mod http;
pub mod keys;
pub mod layers;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod settings;
pub mod shutdown;
