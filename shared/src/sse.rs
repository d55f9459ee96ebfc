//! Server-Sent Events framing shared by both tiers.

/// The sentinel that ends an OpenAI stream (`data: [DONE]`).
pub const OPENAI_DONE: &str = "[DONE]";

/// Frames one JSON value as an SSE `data:` event, terminated by a blank line.
pub fn data_line(json: &str) -> String {
    format!("data: {json}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_data_event() {
        assert_eq!(data_line("{\"a\":1}"), "data: {\"a\":1}\n\n");
    }
}
