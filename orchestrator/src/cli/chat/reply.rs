//! One turn of the conversation: the messages go to `POST /v1/chat/completions`
//! streamed with usage, the answer is printed as it arrives and kept exactly
//! as received, and the figures for the summary come back with it.

use std::io::Write;

use cerebrum::client::Client;
use cerebrum_shared::openai::{
    ChatCompletionRequest, ChatMessage, OpenAiSampling, StreamOptions, Usage,
};
use cerebrum_shared::prepare::Preparation;

use super::super::answer::{AnswerError, Printer, Settings, Summary, reduction_text};

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The answer's text: every chunk's content, in order, unchanged.
    pub text: String,
    /// Tokens, speed, time, model and (when the server said) the reduction.
    pub summary: Summary,
    /// The final usage chunk's counts, when the server sent them.
    pub usage: Option<Usage>,
    /// Why the preparation header could not be read, when it could not.
    pub header_problem: Option<String>,
}

/// The request for `messages` with the session's settings: streamed, with
/// the usage chunk at the end.
pub fn request(settings: &Settings, messages: Vec<ChatMessage>) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: settings.model.clone(),
        messages,
        sampling: OpenAiSampling {
            max_tokens: Some(settings.max_tokens),
            temperature: Some(settings.temperature),
            stream: true,
            stream_options: Some(StreamOptions {
                include_usage: true,
            }),
            ..OpenAiSampling::default()
        },
    }
}

/// Streams the answer to `request` into `out` behind a spinner, a token at a
/// time, and ends it with a newline. Dropping the future part-way (Ctrl-C)
/// drops the connection, and with it the generation.
pub async fn stream_reply(
    client: &Client,
    request: &ChatCompletionRequest,
    out: &mut dyn Write,
) -> Result<Reply, AnswerError> {
    let mut printer = Printer::start(out);
    let mut stream = match client.chat_stream(request).await {
        Ok(stream) => stream,
        Err(e) => {
            printer.abandon();
            return Err(e.into());
        }
    };
    let (preparation, header_problem) = match stream.preparation() {
        Ok(p) => (p, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut text = String::new();
    let mut model = None;
    let mut usage = None;
    loop {
        let chunk = match stream.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                printer.abandon();
                return Err(e.into());
            }
        };
        if model.is_none() && !chunk.model.is_empty() {
            model = Some(chunk.model);
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
        for choice in chunk.choices {
            if let Some(piece) = choice.delta.content {
                printer.token(&piece)?;
                text.push_str(&piece);
            }
        }
    }
    let summary = printer.finish(usage.map(|u| u.completion_tokens), None)?;
    Ok(Reply {
        text,
        summary: Summary {
            model,
            reduction: preparation.as_ref().map(reduction_of),
            ..summary
        },
        usage,
        header_problem,
    })
}

/// The summary's words for what preparation did.
fn reduction_of(p: &Preparation) -> String {
    reduction_text(p.applied.then_some(&p.stats))
}
