//! Cross-cutting concerns, one file each, composed in `app.rs`.

pub mod client_auth;
pub mod host;
pub mod in_flight;
pub mod outcome;
pub mod rate_limit;
