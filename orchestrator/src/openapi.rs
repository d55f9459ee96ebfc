//! `GET /openapi.json` (the orchestrator's OpenAPI 3.1 document) and `GET /docs`
//! (a page listing it), both public like `/health`: they say what the open
//! source already says, and a browser must be able to read them.
//!
//! The document is generated from the wire types (utoipa) and the route table
//! below by [`api`], at test time: `orchestrator/openapi.json` is that output,
//! committed (API changes show in review) and embedded. Serving it runs nothing
//! at start-up and no code but a copy on its own route. What it costs the
//! stripped x86_64 binary (with vs `--no-default-features`): 103,464 bytes in
//! the `dist` profile, 148,544 in `release`, nearly all the JSON and the page;
//! generating the document in the server instead cost 591,256 (`release`).
//! Behind the `openapi` cargo feature (default on; `--no-default-features`
//! leaves both routes out). The route table is the one list of the router's operations:
//! the `openapi` integration test holds it against `app.rs` and the committed
//! document against it.

use axum::Router;

/// The two routes (none without the `openapi` feature).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    #[cfg(feature = "openapi")]
    return document::routes();
    #[cfg(not(feature = "openapi"))]
    Router::new()
}

#[cfg(feature = "openapi")]
pub use document::{DOCUMENT, api};

#[cfg(feature = "openapi")]
mod document {
    use axum::Router;
    use cerebrum_shared::limits::MAX_TOKENS_ORCHESTRATOR;
    use cerebrum_shared::openapi::{Access, Api, ErrorBody, Operation, Success};
    use utoipa::ToSchema;

    pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
        cerebrum_service::docs::routes(DOCUMENT)
    }

    /// The served document: `openapi.json` beside `Cargo.toml`, which [`api`]
    /// generates from the types (the `openapi` test fails while it is stale, and
    /// rewrites it with `CEREBRUM_UPDATE_OPENAPI=1`). Embedded, so the server
    /// runs no generator: [`api`] and utoipa's code are not in the binary.
    pub const DOCUMENT: &str = include_str!("../openapi.json");

    const CEREBRUM: &str = "Cerebrum API";
    const OPENAI: &str = "OpenAI API";
    const OPS: &str = "Operations";

    /// What an inference route can answer beyond its body's 400/413/422: the
    /// node's 400 (prompt over its context), no such model 404, the prompt over
    /// `max_prompt_chars` 413, 429 (when a rate limit is set), the node's 500s
    /// passed on, a broken stream 502, busy/down/paused 503, a node timeout 504.
    const INFERENCE: &[u16] = &[400, 404, 413, 429, 500, 502, 503, 504];
    /// A body that did not arrive within `body_read_timeout_secs`: 408.
    const SLOW_BODY: &[u16] = &[408];
    /// A call to the node that failed: unreadable 502, unreachable 503, too slow 504.
    const UPSTREAM: &[u16] = &[502, 503, 504];

    /// The orchestrator's API.
    pub fn api() -> Api {
        use Success::{Document, Events, Html, Json, JsonOrEvents, Metrics};
        let key = Access::OptionalKey;
        let operations = vec![
            Operation::post("/v1/complete", "complete", Json("CompleteResponse"))
                .doc(CEREBRUM, "Complete a prompt (the original Cerebrum API)",
                    "Prepares large code prompts (see `preparation`), routes by `language` (or `model`) \
                     to a model the node serves, and answers when generation ends.")
                .access(key)
                .request("CompleteRequest")
                .errors(SLOW_BODY)
                .errors(INFERENCE),
            Operation::post("/v1/complete/stream", "complete_stream", Events("StreamEvent"))
                .doc(CEREBRUM, "Complete a prompt, streamed",
                    "As `/v1/complete`, as Server-Sent Events: `{token, total_tokens}` events, then one \
                     `{done: true, …}` or, when generation fails midway, `{error, code, message, done: true}`.")
                .access(key)
                .request("CompleteRequest")
                .errors(SLOW_BODY)
                .errors(INFERENCE),
            Operation::post("/v1/chat/completions", "chat_completions", JsonOrEvents("ChatCompletion", "ChatCompletionChunk"))
                .doc(OPENAI, "Chat completion (OpenAI)",
                    "OpenAI's chat completions; `stream: true` answers `chat.completion.chunk` events and \
                     `data: [DONE]`. The system messages are the instruction when a code prompt is prepared.")
                .access(key)
                .request("ChatCompletionRequest")
                .errors(SLOW_BODY)
                .errors(INFERENCE),
            Operation::post("/v1/completions", "completions", JsonOrEvents("TextCompletion", "TextCompletion"))
                .doc(OPENAI, "Text completion (OpenAI)", "OpenAI's legacy completions, one prompt per request.")
                .access(key)
                .request("CompletionRequest")
                .errors(SLOW_BODY)
                .errors(INFERENCE),
            Operation::post("/v1/prepare", "prepare", Json("PreparedPrompt"))
                .doc(CEREBRUM, "Prepare a prompt without inference",
                    "What would be sent to the model for this prompt, and the figures (a dry run).")
                .access(key)
                .request("PrepareRequest")
                .errors(SLOW_BODY),
            Operation::get("/v1/models", "models", Json("ModelsResponse"))
                .doc(OPS, "Models the node serves",
                    "The node's list, passed through: OpenAI's `data` and the Cerebrum keys. Its failures \
                     are answered in OpenAI's shape.")
                .access(key)
                .errors_in(ErrorBody::OpenAi, &[401, 403])
                .errors_in(ErrorBody::OpenAi, UPSTREAM),
            Operation::get("/health", "health", Json("OrchestratorHealth"))
                .doc(OPS, "Health (always 200)",
                    "`status` is `healthy` when a request could be served now, else `degraded`; answered \
                     from cached figures, never waiting on the node."),
            Operation::get("/health/ready", "ready", Json("Ready"))
                .doc(OPS, "Readiness", "200 when a request could be served now; 503 (with `Retry-After`) when not.")
                .errors(&[503]),
            Operation::get("/v1/stats", "stats", Json("OrchestratorStats"))
                .doc(OPS, "Counters of the orchestrator, and the node's",
                    "The node's figures without the places on its disk (`path`, `*_path`, `*_dir`, \
                     `*_file`) unless the caller presented a client key or is on this machine (loopback).")
                .access(key),
            Operation::get("/v1/vps/health", "vps_health", Json("NodeHealth"))
                .doc(OPS, "The node's own health", "The node's `GET /health`, passed through.")
                .access(key)
                .errors(UPSTREAM),
            Operation::post("/v1/vps/health", "vps_health_post", Json("NodeHealth"))
                .doc(OPS, "The node's own health (POST, as the original accepted)", "As `GET /v1/vps/health`.")
                .access(key)
                .errors(UPSTREAM),
            Operation::get("/metrics", "metrics", Metrics)
                .doc(OPS, "Prometheus metrics", "")
                .access(key),
            Operation::get("/openapi.json", "openapi", Document).doc(OPS, "This document", ""),
            Operation::get("/docs", "docs", Html).doc(OPS, "This document as a page", ""),
        ];
        Api {
            title: "Cerebrum orchestrator",
            version: env!("CARGO_PKG_VERSION"),
            description: "The Pi tier: the original Cerebrum API and the OpenAI API in front of an \
                inference node, with prompt preparation, routing, load shedding and a circuit breaker. \
                Client keys are optional (`client_keys`); when set, every route but the health checks \
                and these documents needs one. JSON bodies must be sent as `application/json` (415 \
                otherwise). A request whose `Host` is not an IP address, `localhost` or one of the \
                machine's names (or `allowed_hosts`) is refused with 403 `peer_not_allowed` on every \
                route (DNS rebinding). Every answer carries `X-Request-ID`.",
            openai_max_tokens: MAX_TOKENS_ORCHESTRATOR,
            operations,
            schemas: schemas(),
            refinements: vec![],
        }
    }

    fn schemas() -> Vec<cerebrum_shared::openapi::NamedSchema> {
        fn add<T: ToSchema>(v: &mut Vec<cerebrum_shared::openapi::NamedSchema>) {
            v.push((T::name().into_owned(), T::schema()));
            T::schemas(v);
        }
        let mut v = Vec::new();
        add::<cerebrum_shared::prepare::PrepareRequest>(&mut v);
        add::<OrchestratorStats>(&mut v);
        v
    }

    // The shapes `GET /v1/stats` builds with `json!`, for the document only (the
    // `openapi` test checks the real answer against them).

    /// `GET /v1/stats`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct OrchestratorStats {
        /// The orchestrator's counters.
        cm4: OrchestratorCounters,
        /// The node's `GET /v1/stats`, or `{"error": "…"}` when it could not be read.
        #[schema(value_type = Object)]
        vps: serde_json::Value,
    }

    /// The orchestrator's counters.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct OrchestratorCounters {
        /// Seconds since start.
        uptime_seconds: u64,
        /// Inference requests in flight.
        active_count: u64,
        /// `closed`, `open` or `half_open`.
        breaker: String,
        /// Prompts cut down by preparation.
        prompts_prepared: u64,
        /// Characters preparation removed.
        chars_saved: u64,
        /// Calls to the node.
        vps_client: NodeCallCounters,
    }

    /// Calls to the node.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct NodeCallCounters {
        /// Generations asked for.
        requests_sent: u64,
        /// Generations that ended well.
        successful: u64,
        /// Generations failed by the node or the link.
        failed: u64,
        /// `100 × successful / requests_sent`.
        success_rate_percent: f64,
        /// Mean time of a successful generation.
        avg_inference_time_seconds: f64,
    }
}
