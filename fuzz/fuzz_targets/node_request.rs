//! Request parsing for the node tier, without the node crate (it links
//! llama.cpp): arbitrary bodies parsed as the node's `ApiJson` does
//! (`cerebrum_shared::error::parse_json`) into each request type the node
//! accepts, then the text accessors its handlers call.
//!
//! Input: one byte choosing the type (`InferenceRequest`, `ChatCompletionRequest`,
//! `CompletionRequest`, `TokenizeRequest`), then the body.
//! Invariants: no panic; a refusal is 400 (unreadable) or 422 (wrong shape,
//! naming the field) and its code has that status; what parses, with finite
//! numbers (each within f32's range), survives being written and read again unchanged (the orchestrator
//! and the client send these types as they serialise them).
#![no_main]

use cerebrum_fuzz::split_first;
use cerebrum_shared::cerebrum::{InferenceRequest, TokenizeRequest};
use cerebrum_shared::error::{ApiError, parse_json};
use cerebrum_shared::openai::{ChatCompletionRequest, CompletionRequest};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn finite(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .is_none_or(|f| f.is_finite() && (f as f32).is_finite()),
        serde_json::Value::Array(a) => a.iter().all(finite),
        serde_json::Value::Object(o) => o.values().all(finite),
        _ => true,
    }
}

fn check<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    body: &[u8],
    inspect: impl Fn(&T),
) {
    match parse_json::<T>(body) {
        Err(e) => refusal(&e),
        Ok(req) => {
            inspect(&req);
            // A number past f32's range reads as infinity, which JSON writes as null:
            // the node refuses it (`validate::in_range_f32`), so it need not survive.
            if !serde_json::from_slice(body).is_ok_and(|v: serde_json::Value| finite(&v)) {
                return;
            }
            let written = serde_json::to_value(&req).expect("serialises");
            let again: T = parse_json(written.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("own output refused: {e:?}\n{written}"));
            assert_eq!(req, again, "changed by a round trip through {written}");
        }
    }
}

fn refusal(e: &ApiError) {
    assert!(e.status == 400 || e.status == 422, "{e:?}");
    assert_eq!(e.code.status(), e.status, "{e:?}");
}

fuzz_target!(|data: &[u8]| {
    let (choice, body) = split_first(data);
    match choice % 4 {
        0 => check::<InferenceRequest>(body, |_| {}),
        1 => check::<ChatCompletionRequest>(body, |r| {
            for m in &r.messages {
                let _ = m.text();
            }
            let _ = (r.sampling.max_tokens(), r.sampling.include_usage());
        }),
        2 => check::<CompletionRequest>(body, |r| {
            let _ = r.prompt.clone().into_vec();
        }),
        _ => check::<TokenizeRequest>(body, |_| {}),
    }
});
