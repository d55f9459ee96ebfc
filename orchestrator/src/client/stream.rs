//! Reading Server-Sent Events answers: the Cerebrum stream (tokens, then a
//! `done` or error event) and OpenAI streams (chunks until `[DONE]`). An error
//! event becomes an [`ApiError`], as an error response would.

use std::marker::PhantomData;
use std::pin::Pin;

use cerebrum_shared::cerebrum::{StreamDone, StreamEvent, StreamToken};
use cerebrum_shared::error::{ApiError, ErrorCode, OpenAiErrorBody};
use cerebrum_shared::headers::PREPARATION;
use cerebrum_shared::prepare::Preparation;
use cerebrum_shared::sse::OPENAI_DONE;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use super::ClientError;

type Events = Pin<
    Box<
        dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

/// The `data:` payloads of an SSE response, and whether the stream has ended.
struct DataLines {
    events: Events,
    finished: bool,
}

impl DataLines {
    fn new(response: reqwest::Response) -> Self {
        Self {
            events: Box::pin(response.bytes_stream().eventsource()),
            finished: false,
        }
    }

    /// The next non-blank `data:` payload; `Ok(None)` once finished. The
    /// connection closing before the stream's last event is an error.
    async fn next(&mut self) -> Result<Option<String>, ClientError> {
        while !self.finished {
            match self.events.next().await {
                None => {
                    self.finished = true;
                    return Err(ClientError::Broken(
                        "the connection closed before the answer was complete".into(),
                    ));
                }
                Some(Err(e)) => {
                    self.finished = true;
                    return Err(ClientError::Broken(e.to_string()));
                }
                Some(Ok(event)) if event.data.trim().is_empty() => {}
                Some(Ok(event)) => return Ok(Some(event.data)),
            }
        }
        Ok(None)
    }
}

/// One piece of a Cerebrum answer stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// One token's text.
    Token(StreamToken),
    /// The final event: totals, model, preparation figures.
    Done(Box<StreamDone>),
}

/// What one Cerebrum event means: a chunk, or the error that ended the stream.
pub fn decode_event(data: &str) -> Result<Chunk, ClientError> {
    let event: StreamEvent = serde_json::from_str(data)
        .map_err(|e| ClientError::Protocol(format!("stream event {data:?}: {e}")))?;
    match event {
        StreamEvent::Token(t) => Ok(Chunk::Token(t)),
        StreamEvent::Done(d) => Ok(Chunk::Done(Box::new(d))),
        StreamEvent::Error(e) => Err(ClientError::Api(e.to_api_error())),
    }
}

/// An open `/v1/complete/stream` answer. Dropping it closes the connection,
/// which makes the orchestrator stop the generation on the node.
pub struct CompleteStream {
    lines: DataLines,
}

impl CompleteStream {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            lines: DataLines::new(response),
        }
    }

    /// The next piece: `Ok(None)` after the final event. An error event ends
    /// the stream as [`ClientError::Api`].
    pub async fn next(&mut self) -> Result<Option<Chunk>, ClientError> {
        let Some(data) = self.lines.next().await? else {
            return Ok(None);
        };
        let chunk = decode_event(&data);
        if !matches!(chunk, Ok(Chunk::Token(_))) {
            self.lines.finished = true;
        }
        chunk.map(Some)
    }
}

/// What one OpenAI stream line means: `None` for `[DONE]`, a chunk, or the
/// error chunk `{"error": {...}}` that ended the stream.
pub fn decode_openai<T: DeserializeOwned>(data: &str) -> Result<Option<T>, ClientError> {
    if data.trim() == OPENAI_DONE {
        return Ok(None);
    }
    if let Ok(body) = serde_json::from_str::<OpenAiErrorBody>(data) {
        // The stream was answered 200; the code's own status tells its class.
        let status = body
            .error
            .code
            .unwrap_or(ErrorCode::StreamingFailed)
            .status();
        return Err(ClientError::Api(ApiError::from_body(
            status,
            None,
            data.as_bytes(),
        )));
    }
    serde_json::from_str(data)
        .map(Some)
        .map_err(|e| ClientError::Protocol(format!("stream chunk {data:?}: {e}")))
}

/// An open OpenAI stream (`/v1/chat/completions` or `/v1/completions` with
/// `stream: true`): chunks of type `T` until `[DONE]`. Dropping it closes the
/// connection and stops the generation. The response's headers stay readable
/// ([`OpenAiStream::headers`], [`OpenAiStream::preparation`]).
pub struct OpenAiStream<T> {
    headers: HeaderMap,
    lines: DataLines,
    chunk: PhantomData<fn() -> T>,
}

impl<T> OpenAiStream<T> {
    /// The response's headers, as the server sent them.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// What preparation did to the prompt, from the orchestrator's
    /// `x-cerebrum-preparation` header: `Ok(None)` when the header is absent
    /// (an older server, or a node answering directly).
    pub fn preparation(&self) -> Result<Option<Preparation>, ClientError> {
        preparation_of(&self.headers)
    }
}

/// The [`Preparation`] a response's `x-cerebrum-preparation` header carries;
/// `Ok(None)` without the header, [`ClientError::Protocol`] when it is not
/// that JSON.
pub fn preparation_of(headers: &HeaderMap) -> Result<Option<Preparation>, ClientError> {
    let Some(value) = headers.get(PREPARATION) else {
        return Ok(None);
    };
    serde_json::from_slice(value.as_bytes())
        .map(Some)
        .map_err(|e| ClientError::Protocol(format!("header {PREPARATION}: {e}")))
}

impl<T: DeserializeOwned> OpenAiStream<T> {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            headers: response.headers().clone(),
            lines: DataLines::new(response),
            chunk: PhantomData,
        }
    }

    /// The next chunk: `Ok(None)` after `[DONE]`. An error chunk ends the
    /// stream as [`ClientError::Api`].
    pub async fn next(&mut self) -> Result<Option<T>, ClientError> {
        let Some(data) = self.lines.next().await? else {
            return Ok(None);
        };
        let decoded = decode_openai(&data);
        if !matches!(decoded, Ok(Some(_))) {
            self.lines.finished = true;
        }
        decoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerebrum_shared::cerebrum::StreamError;
    use cerebrum_shared::error::{Dialect, to_json};
    use cerebrum_shared::openai::{ChatCompletionChunk, ChunkShaper, ObjectKind, Usage};

    #[test]
    fn cerebrum_events_become_chunks() {
        let token = to_json(&StreamToken {
            token: "To".into(),
            total_tokens: 1,
        });
        assert!(matches!(decode_event(&token), Ok(Chunk::Token(t)) if t.token == "To"));
        let done = r#"{"done":true,"total_tokens":3,"inference_time":0.5,"model":"smollm2"}"#;
        assert!(
            matches!(decode_event(done), Ok(Chunk::Done(d)) if d.model.as_deref() == Some("smollm2"))
        );
        assert!(matches!(
            decode_event("not json"),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn a_cerebrum_error_event_is_an_api_error_with_its_code() {
        // What the orchestrator's relay sends when the node fails mid-answer.
        let sent = ApiError::new(ErrorCode::VpsTimeout, "no token for 30 s");
        let data = to_json(&StreamError::from(&sent));
        match decode_event(&data) {
            Err(ClientError::Api(e)) => {
                assert_eq!((e.code, e.status), (ErrorCode::VpsTimeout, 504));
                assert_eq!(e.message, "no token for 30 s");
            }
            other => panic!("{other:?}"),
        }
        // An older server's event without a code: the stream failed.
        let e = decode_event(r#"{"error":"Streaming failed","message":"x","done":true}"#);
        assert!(matches!(e, Err(ClientError::Api(a)) if a.code == ErrorCode::StreamingFailed));
    }

    #[test]
    fn openai_lines_are_chunks_until_done() {
        let mut shaper = ChunkShaper::new(ObjectKind::Chat, "chatcmpl-1".into(), "m".into());
        let chunk: Option<ChatCompletionChunk> =
            decode_openai(&shaper.text("Hi".into())).unwrap_or_else(|e| panic!("{e}"));
        let chunk = chunk.unwrap_or_else(|| panic!("a chunk"));
        assert_eq!(chunk.choices[0].delta.content.as_deref(), Some("Hi"));
        let usage: Option<ChatCompletionChunk> =
            decode_openai(&shaper.usage(Usage::new(1, 2))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(usage.and_then(|u| u.usage).map(|u| u.total_tokens), Some(3));
        assert!(matches!(
            decode_openai::<ChatCompletionChunk>(OPENAI_DONE),
            Ok(None)
        ));
    }

    #[test]
    fn the_preparation_header_is_read_when_sent() {
        let mut headers = HeaderMap::new();
        assert_eq!(preparation_of(&headers), Ok(None), "absent: nothing to say");
        let sent = r#"{"applied":true,"original_chars":12000,"final_chars":3000,"chunks_total":20,"chunks_unique":10,"chunks_kept":4,"reduction_percent":75.0,"elapsed_us":300,"kept_ranges":[],"skipped_reason":null}"#;
        headers.insert(PREPARATION, sent.parse().unwrap_or_else(|e| panic!("{e}")));
        let read = preparation_of(&headers)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("present"));
        assert!(read.applied);
        assert_eq!(read.stats.final_chars, 3000);
        headers.insert(
            PREPARATION,
            "{\"applied\":".parse().unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(
            matches!(preparation_of(&headers), Err(ClientError::Protocol(m)) if m.starts_with("header x-cerebrum-preparation: ")),
        );
    }

    #[test]
    fn an_openai_error_chunk_is_an_api_error_with_its_code() {
        let sent = ApiError::new(ErrorCode::StreamingFailed, "the stream broke off: eof");
        let data = sent.body(Dialect::OpenAi).to_string();
        match decode_openai::<ChatCompletionChunk>(&data) {
            Err(ClientError::Api(e)) => {
                assert_eq!((e.code, e.status), (ErrorCode::StreamingFailed, 502));
                assert_eq!(e.message, "the stream broke off: eof");
            }
            other => panic!("{other:?}"),
        }
    }
}
