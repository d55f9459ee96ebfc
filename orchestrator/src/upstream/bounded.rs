//! How much of the node's answer the orchestrator will hold: the node is
//! trusted to speak the protocol, not to be small. Each cap is written here once.

use bytes::Bytes;
use futures::{Stream, StreamExt};

/// The largest SSE event (its lines up to the blank line that ends it) read
/// from the node. A token chunk is a few hundred bytes; an event over this
/// ends the stream with an error instead of growing a buffer.
pub const MAX_SSE_EVENT_BYTES: usize = 1 << 20;

/// The most of a non-2xx body read from the node: error bodies are a few
/// hundred bytes; the rest is not read.
pub const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// The most of a JSON answer (`/v1/models`, `/health`, `/v1/stats`,
/// `/tokenize`) read from the node.
pub const MAX_JSON_BODY_BYTES: usize = 1 << 20;

/// Counts the bytes of the SSE event being read and says when it is over
/// [`MAX_SSE_EVENT_BYTES`]. Lines end in `\n`, `\r\n` or `\r` (the SSE
/// grammar); a blank line ends the event.
#[derive(Debug, Default, Clone)]
pub struct EventGuard {
    /// Bytes of the current event, line ends included (a blank line's own
    /// end may be counted into the next event: a byte or two, never more).
    event: usize,
    /// Whether the current line has no bytes yet.
    line_empty: bool,
    /// Whether the last byte was `\r` (a `\n` after it ends no new line).
    after_cr: bool,
    /// Whether anything was read (the first line starts empty).
    started: bool,
}

impl EventGuard {
    /// Feeds a chunk; `Err` with the size reached when the event is over the cap.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), usize> {
        if !self.started {
            self.started = true;
            self.line_empty = true;
        }
        for &b in chunk {
            match b {
                b'\n' if self.after_cr => {
                    // The second byte of a CRLF: no new line, but a byte held.
                    self.after_cr = false;
                    self.event += 1;
                }
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    if self.line_empty {
                        // A blank line: the event ended.
                        self.event = 0;
                    } else {
                        self.event += 1;
                    }
                    self.line_empty = true;
                }
                _ => {
                    self.after_cr = false;
                    self.line_empty = false;
                    self.event += 1;
                }
            }
            if self.event > MAX_SSE_EVENT_BYTES {
                return Err(self.event);
            }
        }
        Ok(())
    }
}

/// The node's body as a byte stream that ends with an error at the first event
/// over [`MAX_SSE_EVENT_BYTES`] (the SSE parser behind it then holds at most
/// that plus one chunk).
pub fn capped_events<S, E>(body: S) -> impl Stream<Item = Result<Bytes, String>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    // The state: the guard, and whether the cap was hit (then the stream ends).
    body.scan((EventGuard::default(), false), |(guard, over), chunk| {
        let item = if *over {
            None
        } else {
            Some(match chunk {
                Ok(bytes) => match guard.feed(&bytes) {
                    Ok(()) => Ok(bytes),
                    Err(n) => {
                        *over = true;
                        Err(format!(
                            "an SSE event of over {n} bytes (the limit is {MAX_SSE_EVENT_BYTES})"
                        ))
                    }
                },
                Err(e) => Err(e.to_string()),
            })
        };
        futures::future::ready(item)
    })
}

/// Reads at most `cap` bytes of a body, and whether that was all of it (the
/// rest is left unread; the connection goes with the response). `Err` is the
/// transport's error.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<(Bytes, bool), reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - out.len();
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((Bytes::from(out), false));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((Bytes::from(out), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(chunks: &[&[u8]]) -> Result<(), usize> {
        let mut g = EventGuard::default();
        chunks.iter().try_for_each(|c| g.feed(c))
    }

    #[test]
    fn small_events_pass_whatever_the_line_ends() {
        let event = format!("data: {}\n\n", "x".repeat(1000));
        let many = event.repeat(4 * MAX_SSE_EVENT_BYTES / 1000);
        assert!(fed(&[many.as_bytes()]).is_ok());
        let crlf = event
            .replace('\n', "\r\n")
            .repeat(4 * MAX_SSE_EVENT_BYTES / 1000);
        assert!(fed(&[crlf.as_bytes()]).is_ok());
        let cr = event
            .replace('\n', "\r")
            .repeat(4 * MAX_SSE_EVENT_BYTES / 1000);
        assert!(fed(&[cr.as_bytes()]).is_ok());
    }

    #[test]
    fn a_line_or_an_event_over_the_cap_is_refused_across_chunks() {
        let half = vec![b'x'; MAX_SSE_EVENT_BYTES / 2 + 1];
        assert_eq!(
            fed(&[b"data: ", &half, &half]),
            Err(MAX_SSE_EVENT_BYTES + 1)
        );
        // Many short lines with no blank line between them are one event.
        let lines = "data: 0123456789\n".repeat(MAX_SSE_EVENT_BYTES / 17 + 1);
        assert!(fed(&[lines.as_bytes()]).is_err());
        // A CRLF is one line end, not a blank line.
        let crlf = "data: 0123456789\r\n".repeat(MAX_SSE_EVENT_BYTES / 18 + 1);
        assert!(fed(&[crlf.as_bytes()]).is_err());
    }

    #[tokio::test]
    async fn the_capped_stream_ends_at_the_first_oversized_event() {
        let big = Bytes::from(vec![b'y'; MAX_SSE_EVENT_BYTES + 10]);
        let chunks: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from_static(b"data: 1\n\n")),
            Ok(big),
            Ok(Bytes::from_static(b"data: never read\n\n")),
        ];
        let out: Vec<_> = capped_events(futures::stream::iter(chunks)).collect().await;
        assert_eq!(out.len(), 2, "nothing after the error");
        assert!(out[0].is_ok());
        assert!(out[1].as_ref().unwrap_err().contains("SSE event"));
    }
}
