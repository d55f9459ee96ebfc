//! The orchestrator's reader of the node's OpenAI token stream: the SSE
//! framing it uses (eventsource-stream) fed in arbitrary chunks, then
//! `cerebrum::upstream::relay::parse_chunk` on every `data:` payload.
//!
//! Input: one byte choosing how the stream is cut into reads, then the bytes
//! the node sends.
//! Invariants: no panic; the same events however the bytes are cut; `[DONE]`
//! (and only it) ends the stream; a payload that is not JSON is an error.
#![no_main]

use cerebrum::upstream::relay::{Chunk, parse_chunk};
use cerebrum_fuzz::{chunks, split_first, sse_events};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (seed, body) = split_first(data);
    let whole = sse_events(chunks(body, 0));
    let cut = sse_events(chunks(body, seed));
    assert_eq!(whole, cut, "the events depend on how the stream was cut");
    for payload in &whole.0 {
        let parsed = parse_chunk(payload);
        let is_done = payload.trim() == "[DONE]";
        assert_eq!(matches!(parsed, Ok(Chunk::Done)), is_done, "{payload:?}");
        if !is_done && serde_json::from_str::<serde_json::Value>(payload.trim()).is_err() {
            assert!(parsed.is_err(), "not JSON but accepted: {payload:?}");
        }
    }
});
