//! The client's stream decoding (`cerebrum::client`): SSE framing fed in
//! arbitrary chunks, then each non-blank `data:` payload decoded as a Cerebrum
//! event (`decode_event`) or an OpenAI chunk (`decode_openai`, chat or text).
//!
//! Input: one byte (low 6 bits: how the stream is cut; top 2 bits: which
//! decoder), then the bytes the server sends.
//! Invariants: no panic; the same events however the bytes are cut; an error
//! event becomes an API error with an error status; `[DONE]` ends an OpenAI stream.
#![no_main]

use cerebrum::client::ClientError;
use cerebrum::client::stream::{Chunk, decode_event, decode_openai};
use cerebrum_fuzz::{chunks, split_first, sse_events};
use cerebrum_shared::openai::{ChatCompletionChunk, TextCompletion};
use libfuzzer_sys::fuzz_target;

fn check_api(e: &ClientError) {
    if let ClientError::Api(api) = e {
        assert!((400..600).contains(&api.status), "{api:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (mode, body) = split_first(data);
    let whole = sse_events(chunks(body, 0));
    let cut = sse_events(chunks(body, mode & 0x3f));
    assert_eq!(whole, cut, "the events depend on how the stream was cut");
    for payload in whole.0.iter().filter(|d| !d.trim().is_empty()) {
        let done = payload.trim() == "[DONE]";
        match mode >> 6 {
            0 | 1 => match decode_event(payload) {
                Ok(Chunk::Token(_) | Chunk::Done(_)) => {}
                Err(e) => check_api(&e),
            },
            2 => match decode_openai::<ChatCompletionChunk>(payload) {
                Ok(None) => assert!(done),
                Ok(Some(_)) => assert!(!done),
                Err(e) => check_api(&e),
            },
            _ => match decode_openai::<TextCompletion>(payload) {
                Ok(None) => assert!(done),
                Ok(Some(_)) => assert!(!done),
                Err(e) => check_api(&e),
            },
        }
    }
});
