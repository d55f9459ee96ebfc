//! Reading the node's OpenAI token stream: one [`Piece`] per chunk, with the
//! idle timeout between chunks, events capped in size, and the stream's one
//! outcome recorded when it ends (or when it is dropped unfinished).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cerebrum_shared::openai::Usage;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde_json::Value;

use super::bounded::capped_events;
use super::{Attempt, Outcome, UpstreamError};

/// One thing the node said.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// New text.
    Text(String),
    /// The end, with what the node reported.
    Finished {
        /// `"stop"` or `"length"`.
        finish_reason: String,
        /// Prompt tokens, if the node said.
        prompt_tokens: Option<u64>,
        /// Generated tokens, if the node said.
        completion_tokens: Option<u64>,
        /// Prompt tokens the node reused from its KV cache, if it said.
        cached_tokens: Option<u64>,
    },
}

type Events = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

/// A live stream from the node. Dropping it closes the connection, which makes
/// the node cancel the sequence (and records the generation as cancelled).
pub struct TokenStream {
    events: Events,
    buffered: Option<Piece>,
    idle: Duration,
    attempt: Attempt,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    started: Instant,
    done: bool,
}

impl TokenStream {
    /// Wraps a 2xx response; nothing is read yet.
    pub(super) fn new(response: reqwest::Response, idle: Duration, attempt: Attempt) -> Self {
        let events = capped_events(response.bytes_stream())
            .eventsource()
            .map(|r| r.map_err(|e| e.to_string()))
            .boxed();
        TokenStream {
            events,
            buffered: None,
            idle,
            attempt,
            finish_reason: None,
            usage: None,
            started: Instant::now(),
            done: false,
        }
    }

    /// Reads up to the first piece and keeps it for [`TokenStream::next`]. A
    /// failure is returned unrecorded: the caller records it.
    pub(super) async fn read_first(&mut self) -> Result<(), UpstreamError> {
        match self.read().await {
            Ok(piece) => {
                self.buffered = Some(piece);
                Ok(())
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// The generation's ledger entry.
    pub(super) fn attempt(&mut self) -> &mut Attempt {
        &mut self.attempt
    }

    /// The next piece; `None` after `Finished` or an error.
    pub async fn next(&mut self) -> Option<Result<Piece, UpstreamError>> {
        if let Some(p) = self.buffered.take() {
            return Some(Ok(p));
        }
        if self.done {
            return None;
        }
        let result = match tokio::time::timeout(self.idle, self.read()).await {
            Ok(r) => r,
            Err(_) => Err(UpstreamError::Timeout(format!(
                "no token for {} s",
                self.idle.as_secs()
            ))),
        };
        if let Err(e) = &result {
            self.done = true;
            tracing::warn!(error = %e, "node stream failed");
            if let Some(outcome) = e.outcome() {
                self.attempt.settle(outcome);
            }
        }
        Some(result)
    }

    /// Reads to the next piece. Records only a success (`[DONE]`).
    async fn read(&mut self) -> Result<Piece, UpstreamError> {
        loop {
            let event = match self.events.next().await {
                None => {
                    return Err(UpstreamError::Broken(
                        "the node closed the stream before [DONE]".into(),
                    ));
                }
                Some(Err(e)) => return Err(UpstreamError::Broken(e)),
                Some(Ok(ev)) => ev,
            };
            match parse_chunk(&event.data)? {
                Chunk::Done => {
                    self.done = true;
                    self.attempt
                        .stats
                        .inference_micros
                        .fetch_add(self.started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    self.attempt.settle(Outcome::Success);
                    if let Some(u) = self.usage {
                        cerebrum_service::logging::record_tokens(
                            Some(u.prompt_tokens),
                            u.prompt_tokens_details.map(|d| d.cached_tokens),
                            u.completion_tokens,
                        );
                    }
                    return Ok(Piece::Finished {
                        finish_reason: self.finish_reason.take().unwrap_or_else(|| "stop".into()),
                        prompt_tokens: self.usage.map(|u| u.prompt_tokens),
                        completion_tokens: self.usage.map(|u| u.completion_tokens),
                        cached_tokens: self
                            .usage
                            .and_then(|u| u.prompt_tokens_details)
                            .map(|d| d.cached_tokens),
                    });
                }
                Chunk::Data {
                    text,
                    finish,
                    usage,
                } => {
                    if finish.is_some() {
                        self.finish_reason = finish;
                    }
                    if usage.is_some() {
                        self.usage = usage;
                    }
                    if let Some(t) = text.filter(|t| !t.is_empty()) {
                        self.attempt.stats.tokens.fetch_add(1, Ordering::Relaxed);
                        return Ok(Piece::Text(t));
                    }
                }
            }
        }
    }
}

/// What one `data:` payload of the node's stream says.
#[derive(Debug)]
pub enum Chunk {
    /// `[DONE]`: the stream's end.
    Done,
    /// A chunk: new text, the finish reason, the usage (each when present).
    Data {
        /// New text.
        text: Option<String>,
        /// `"stop"` or `"length"`.
        finish: Option<String>,
        /// Token counts.
        usage: Option<Usage>,
    },
}

/// One `data:` payload of an OpenAI stream (chat or text completion). Pure
/// (public for the fuzz target `fuzz/fuzz_targets/relay_sse.rs`).
pub fn parse_chunk(data: &str) -> Result<Chunk, UpstreamError> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(Chunk::Done);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| UpstreamError::Protocol(format!("not JSON ({e}): {:.80}", data)))?;
    if let Some(err) = v.get("error") {
        let msg = err["message"]
            .as_str()
            .or(err.as_str())
            .unwrap_or("error event")
            .to_string();
        return Err(UpstreamError::Broken(msg));
    }
    let choice = &v["choices"][0];
    let text = choice["delta"]["content"]
        .as_str()
        .or(choice["text"].as_str())
        .map(str::to_string);
    let finish = choice["finish_reason"].as_str().map(str::to_string);
    // Engines that omit a count (or the whole usage) still stream: missing counts read as 0.
    let usage = v["usage"].as_object().map(|u| Usage {
        prompt_tokens: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        completion_tokens: u
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        total_tokens: u.get("total_tokens").and_then(Value::as_u64).unwrap_or(0),
        prompt_tokens_details: u
            .get("prompt_tokens_details")
            .and_then(|d| serde_json::from_value(d.clone()).ok()),
    });
    if text.is_none() && finish.is_none() && usage.is_none() && v.get("choices").is_none() {
        return Err(UpstreamError::Protocol(format!(
            "not an OpenAI chunk: {:.80}",
            data
        )));
    }
    Ok(Chunk::Data {
        text,
        finish,
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chat_and_text_chunks() {
        let Chunk::Data { text, .. } = parse_chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(text.as_deref(), Some("Hi"));
        let Chunk::Data { text, finish, .. } =
            parse_chunk(r#"{"choices":[{"index":0,"text":" there","finish_reason":"length"}]}"#)
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (text.as_deref(), finish.as_deref()),
            (Some(" there"), Some("length"))
        );
        let Chunk::Data { usage, .. } = parse_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
        )
        .unwrap() else {
            panic!()
        };
        let usage = usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 4));
        assert_eq!(usage.cached_tokens(), 0);
        let Chunk::Data { usage, .. } = parse_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":4,"total_tokens":34,"prompt_tokens_details":{"cached_tokens":25}}}"#,
        )
        .unwrap() else {
            panic!("not data");
        };
        assert_eq!(usage.unwrap().cached_tokens(), 25);
        assert!(matches!(parse_chunk("[DONE]"), Ok(Chunk::Done)));
    }

    #[test]
    fn garbage_and_errors_are_failures() {
        assert!(matches!(
            parse_chunk("hello"),
            Err(UpstreamError::Protocol(_))
        ));
        assert!(matches!(
            parse_chunk(r#"{"foo":1}"#),
            Err(UpstreamError::Protocol(_))
        ));
        assert!(matches!(
            parse_chunk(r#"{"error":{"message":"decode failed"}}"#),
            Err(UpstreamError::Broken(m)) if m == "decode failed"
        ));
    }
}
