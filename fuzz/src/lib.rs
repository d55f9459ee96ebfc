//! What the fuzz targets share: delivering bytes as a live SSE stream would
//! (in chunks of varying size), and reading the events back.

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::StreamExt;

/// `bytes` cut into chunks whose sizes (1 to 16 bytes) follow `seed`; one
/// chunk when `seed` is 0. Network reads cut a stream anywhere: inside a
/// line, between `\r` and `\n`, inside a UTF-8 character.
pub fn chunks(bytes: &[u8], seed: u8) -> Vec<Bytes> {
    if seed == 0 {
        return vec![Bytes::copy_from_slice(bytes)];
    }
    let mut out = Vec::new();
    let mut state = u32::from(seed);
    let mut at = 0;
    while at < bytes.len() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = ((state >> 16) % 16 + 1) as usize;
        let end = (at + len).min(bytes.len());
        out.push(Bytes::copy_from_slice(&bytes[at..end]));
        at = end;
    }
    out
}

/// The `data` of every SSE event read from `chunks`, and whether the reader
/// ended with an error (it reads on past none: a reader stops at its first).
pub fn sse_events(chunks: Vec<Bytes>) -> (Vec<String>, bool) {
    futures::executor::block_on(async {
        let mut events =
            futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>))
                .eventsource();
        let mut out = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(e) => out.push(e.data),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    })
}

/// Splits fuzz input into a leading byte and the rest.
pub fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, &[]),
    }
}
