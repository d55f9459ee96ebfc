//! Cerebrum orchestrator: the Pi tier between clients and the inference node.
//!
//! Table of contents (one line per module):
//! - [`prompt`]: pure prompt preparation — instruction extraction, chunking,
//!   dedup, code-aware ranking and assembly (`cerebrum prepare`).

pub mod prompt;
