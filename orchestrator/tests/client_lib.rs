//! The typed client library (`cerebrum::client`) against a real stack: every
//! route once, each answer read as its protocol type, and errors read back as
//! their `ErrorCode` (from an error response in either dialect, and from the
//! error event that ends a stream).

mod support;

use std::time::Duration;

use cerebrum::client::{Chunk, Client, ClientError};
use cerebrum_shared::cerebrum::{BreakerState, CompleteRequest, SamplingExtras};
use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_shared::openai::{
    ChatCompletionRequest, ChatMessage, CompletionRequest, OneOrMany, OpenAiSampling, StreamOptions,
};
use cerebrum_testkit::{Node, Orchestrator, SMOLLM, free_port};

const QUESTION: &str = "What is the capital of Japan?";

fn complete_request(prompt: &str, max_tokens: u32) -> CompleteRequest {
    CompleteRequest {
        prompt: prompt.into(),
        language: "python".into(),
        max_tokens,
        temperature: 0.0,
        model: None,
        stop: None,
        sampling: SamplingExtras::default(),
    }
}

fn chat_request(model: Option<&str>) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: model.map(str::to_owned),
        messages: vec![ChatMessage::new("user", QUESTION)],
        sampling: OpenAiSampling {
            max_tokens: Some(30),
            temperature: Some(0.0),
            stream_options: Some(StreamOptions {
                include_usage: true,
            }),
            ..OpenAiSampling::default()
        },
    }
}

fn completion_request() -> CompletionRequest {
    CompletionRequest {
        model: None,
        prompt: OneOrMany::One("The capital of Japan is".into()),
        sampling: OpenAiSampling {
            max_tokens: Some(8),
            temperature: Some(0.0),
            ..OpenAiSampling::default()
        },
    }
}

/// The server's error, or a panic naming what came instead.
fn api_error<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ApiError {
    match result {
        Err(ClientError::Api(e)) => e,
        other => panic!("expected an error response, got {other:?}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn every_route_answers_its_protocol_type() {
    let mut node = Node::start("client-lib", &[]);
    let orchestrator = Orchestrator::start_logged(&node.url, &[]);
    assert!(
        orchestrator.wait_ready(Duration::from_secs(60)),
        "{}",
        orchestrator.log()
    );
    let client = Client::new(&orchestrator.url).expect("client");
    let rt = runtime();

    // Health, readiness, models.
    let health = rt.block_on(client.health()).expect("health");
    assert!(health.is_healthy(), "{health:?}");
    assert!(health.vps_connected && health.vps_available, "{health:?}");
    assert_eq!(health.breaker, BreakerState::Closed);
    assert!(rt.block_on(client.ready()).expect("ready").ready);
    let models = rt.block_on(client.models()).expect("models");
    assert_eq!(models.object, "list");
    assert!(
        models.available_models.iter().any(|m| m == SMOLLM),
        "{models:?}"
    );
    assert!(models.data.iter().any(|card| card.id == SMOLLM));

    // Preparation cuts a large file down to what the question needs.
    let file = support::large_python_file();
    let prompt = format!("What does load_config return?\n\n```python\n{file}```");
    let plan = rt
        .block_on(client.prepare(&prompt, Some("python"), None))
        .expect("prepare");
    assert!(plan.applied, "{:?}", plan.stats);
    assert!(plan.stats.reduction_percent >= 30.0, "{:?}", plan.stats);
    assert!(plan.prompt.contains("def load_config(path):"));
    assert_eq!(plan.language.as_deref(), Some("python"));

    // The whole answer at once.
    let answer = rt
        .block_on(client.complete(&complete_request(QUESTION, 30)))
        .expect("complete");
    assert!(answer.result.contains("Tokyo"), "{answer:?}");
    assert_eq!(answer.model_used, SMOLLM);
    assert_eq!(answer.source, "vps");
    assert!(answer.tokens_generated > 0);

    // The same, streamed: tokens, then the final event, then nothing.
    let (text, done) = rt.block_on(async {
        let mut stream = client
            .complete_stream(&complete_request(QUESTION, 30))
            .await
            .expect("complete_stream");
        let mut text = String::new();
        let mut tokens = 0;
        loop {
            match stream.next().await.expect("a stream event") {
                Some(Chunk::Token(t)) => {
                    tokens += 1;
                    assert_eq!(t.total_tokens, tokens, "tokens are counted in order");
                    text.push_str(&t.token);
                }
                Some(Chunk::Done(done)) => {
                    assert!(
                        matches!(stream.next().await, Ok(None)),
                        "nothing after done"
                    );
                    return (text, done);
                }
                None => panic!("the stream ended without its final event"),
            }
        }
    });
    assert!(text.contains("Tokyo"), "{text}");
    assert!(done.done && done.total_tokens > 0, "{done:?}");
    assert_eq!(done.model.as_deref(), Some(SMOLLM));
    assert!(done.preparation.is_some_and(|p| !p.applied));

    // The node, through the orchestrator, has the model loaded now.
    let node_health = rt.block_on(client.node_health()).expect("node health");
    assert!(node_health.available, "{node_health:?}");
    assert!(
        node_health.models_in_cache.iter().any(|m| m == SMOLLM),
        "{node_health:?}"
    );

    // OpenAI chat, whole and streamed.
    let chat = rt.block_on(client.chat(&chat_request(None))).expect("chat");
    assert_eq!(chat.object, "chat.completion");
    assert_eq!(chat.model, SMOLLM);
    assert!(
        chat.choices[0].message.content.contains("Tokyo"),
        "{chat:?}"
    );
    assert!(chat.usage.completion_tokens > 0);
    let chunks = rt.block_on(async {
        let mut stream = client
            .chat_stream(&chat_request(None))
            .await
            .expect("chat_stream");
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await.expect("a chunk") {
            chunks.push(chunk);
        }
        chunks
    });
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c.choices.first())
        .filter_map(|c| c.delta.content.as_deref())
        .collect();
    assert!(streamed.contains("Tokyo"), "{streamed}");
    assert!(
        chunks.iter().all(|c| c.id == chunks[0].id),
        "one id per stream"
    );
    assert!(
        chunks
            .iter()
            .any(|c| c.choices.first().is_some_and(|c| c.finish_reason.is_some()))
    );
    let usage = chunks.last().and_then(|c| c.usage).expect("a usage chunk");
    assert!(usage.completion_tokens > 0, "{usage:?}");

    // OpenAI text completions, whole and streamed.
    let completion = rt
        .block_on(client.completions(&completion_request()))
        .expect("completions");
    assert_eq!(completion.object, "text_completion");
    assert!(!completion.choices[0].text.is_empty(), "{completion:?}");
    assert!(completion.usage.is_some_and(|u| u.completion_tokens > 0));
    let streamed = rt.block_on(async {
        let mut stream = client
            .completions_stream(&completion_request())
            .await
            .expect("completions_stream");
        let mut text = String::new();
        while let Some(chunk) = stream.next().await.expect("a chunk") {
            text.extend(chunk.choices.iter().map(|c| c.text.as_str()));
        }
        text
    });
    assert_eq!(streamed, completion.choices[0].text, "same greedy text");

    // Counters.
    let metrics = rt.block_on(client.metrics()).expect("metrics");
    assert!(
        metrics.contains("cerebrum_http_requests_total"),
        "{metrics}"
    );
    let stats = rt.block_on(client.stats()).expect("stats");
    assert_eq!(stats["cm4"]["breaker"], "closed", "{stats}");

    // Refusals, read back from both dialects to their codes.
    let e = api_error(rt.block_on(client.complete(&complete_request(QUESTION, 5000))));
    assert_eq!((e.code, e.status), (ErrorCode::InvalidRequest, 422), "{e}");
    assert_eq!(e.field.as_deref(), Some("max_tokens"));
    let mut unknown = complete_request(QUESTION, 8);
    unknown.model = Some("no-such-model".into());
    let e = api_error(rt.block_on(client.complete(&unknown)));
    assert_eq!((e.code, e.status), (ErrorCode::ModelNotFound, 404), "{e}");
    let e = api_error(rt.block_on(client.chat(&chat_request(Some("no-such-model")))));
    assert_eq!((e.code, e.status), (ErrorCode::ModelNotFound, 404), "{e}");
    assert!(e.message.contains("no-such-model"), "{e}");

    // A node that dies mid-answer: the stream's error event is an ApiError.
    let e = rt.block_on(async {
        let mut stream = client
            .complete_stream(&complete_request("1, 2, 3, 4, 5, 6,", 2048))
            .await
            .expect("complete_stream");
        assert!(matches!(stream.next().await, Ok(Some(Chunk::Token(_)))));
        node.kill();
        loop {
            match stream.next().await {
                Ok(Some(Chunk::Token(_))) => {}
                other => return api_error(other),
            }
        }
    });
    assert_eq!(e.code, ErrorCode::StreamingFailed, "{e}");
}

#[test]
fn transport_failures_are_told_apart() {
    let rt = runtime();
    let url = format!("http://127.0.0.1:{}", free_port());
    let client = Client::new(&url).expect("client");
    match rt.block_on(client.health()) {
        Err(ClientError::Unreachable { url: at, detail }) => {
            assert_eq!(at, url);
            assert!(detail.contains("refused"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Client::new("ftp://example"),
        Err(ClientError::BadUrl { .. })
    ));
}
