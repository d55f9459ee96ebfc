//! `GET /openapi.json` (the node's OpenAPI 3.1 document) and `GET /docs` (a page
//! listing it). Both are public, like `/health`, and mounted outside the key
//! and allow-list layer: they describe the open-source API and reveal no key,
//! model path or figure.
//!
//! The document is generated from the wire types (utoipa) and the route table
//! below by [`api`], at test time: `inference-node/openapi.json` is that output,
//! committed and embedded, so the server runs no generator. Behind the
//! `openapi` cargo feature (default on). The route table is the one list of the
//! router's operations: the `openapi` integration test holds it against
//! `app.rs` and the committed document against it.

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
    use cerebrum_shared::limits::MAX_TOKENS_NODE;
    use cerebrum_shared::openapi::{Access, Api, NamedSchema, Operation, Success};
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

    /// What a generation can answer beyond its body's 400/413/422: a prompt over
    /// the context or a chat template failure 400, no such model 404, a prompt over
    /// `max_prompt_bytes` 413, a model that failed to load or decode 500, and
    /// 503 (with `Retry-After`) when the guard refuses or the worker is gone.
    const GENERATION: &[u16] = &[400, 404, 413, 500, 503];

    /// The node's API.
    pub fn api() -> Api {
        use Success::{Document, Events, Html, Json, JsonOrEvents, Metrics};
        let key = Access::Key;
        let operations = vec![
            Operation::post("/v1/inference", "inference", Json("InferenceResponse"))
                .doc(CEREBRUM, "Complete a raw prompt",
                    "The prompt is completed as-is (no chat template); the answer comes when generation ends.")
                .access(key)
                .request("InferenceRequest")
                .errors(GENERATION),
            Operation::post("/v1/inference/stream", "inference_stream", Events("StreamEvent"))
                .doc(CEREBRUM, "Complete a raw prompt, streamed",
                    "Server-Sent Events: `{token, total_tokens}` events, then one `{done: true, …}` or, \
                     when generation fails midway, `{error, code, message, done: true}`.")
                .access(key)
                .request("InferenceRequest")
                .errors(GENERATION),
            Operation::post("/v1/chat/completions", "chat_completions", JsonOrEvents("ChatCompletion", "ChatCompletionChunk"))
                .doc(OPENAI, "Chat completion (OpenAI)",
                    "The model's chat template applies; `stream: true` answers `chat.completion.chunk` \
                     events and `data: [DONE]`.")
                .access(key)
                .request("ChatCompletionRequest")
                .errors(GENERATION),
            Operation::post("/v1/completions", "completions", JsonOrEvents("TextCompletion", "TextCompletion"))
                .doc(OPENAI, "Text completion (OpenAI)", "OpenAI's legacy completions, one prompt per request.")
                .access(key)
                .request("CompletionRequest")
                .errors(GENERATION),
            Operation::post("/tokenize", "tokenize", Json("TokenizeResponse"))
                .doc(OPS, "Count the tokens of a prompt or a conversation",
                    "Exactly one of `content` (a raw prompt) and `messages` (rendered with the model's \
                     chat template, as for generation); states the per-request context. Loads the \
                     model when it is not loaded.")
                .access(key)
                .request("TokenizeRequest")
                .errors(&[404, 413, 500, 503]),
            Operation::get("/v1/models", "models", Json("ModelsResponse"))
                .doc(OPS, "Models this node serves", "OpenAI's `data` and the Cerebrum keys.")
                .access(key),
            Operation::post("/v1/unload/{model}", "unload", Json("Unloaded"))
                .doc(OPS, "Unload a model",
                    "400 when the name is not UTF-8; 404 when it is not loaded; 409 while it is serving.")
                .access(key)
                .errors(&[400, 404, 409]),
            Operation::post("/v1/cleanup", "cleanup", Json("CleanedUp"))
                .doc(OPS, "Unload every model that is not serving", "")
                .access(key),
            Operation::get("/v1/stats", "stats", Json("NodeStats"))
                .doc(OPS, "Models, counters, resources and settings", "")
                .access(key),
            Operation::get("/metrics", "metrics", Metrics)
                .doc(OPS, "Prometheus metrics", "")
                .access(key),
            Operation::get("/health", "health", Json("NodeHealth"))
                .doc(OPS, "Health (always 200, public)",
                    "Answered from cached figures, never waiting behind inference; `available` says \
                     whether a request would be admitted now."),
            Operation::get("/openapi.json", "openapi", Document).doc(OPS, "This document (public)", ""),
            Operation::get("/docs", "docs", Html).doc(OPS, "This document as a page (public)", ""),
        ];
        Api {
            title: "Cerebrum inference node",
            version: env!("CARGO_PKG_VERSION"),
            description: "The VPS tier: GGUF models through llama.cpp, as the Cerebrum node API and the \
                OpenAI API. Every route but `/health` and these documents needs the node's key (as \
                `X-API-Key` or `Authorization: Bearer`) and a peer on loopback or the allow-list \
                (403 otherwise). Every answer carries `X-Request-ID`.",
            openai_max_tokens: MAX_TOKENS_NODE,
            operations,
            schemas: schemas(),
            refinements: Vec::new(),
        }
    }

    fn schemas() -> Vec<NamedSchema> {
        fn add<T: ToSchema>(v: &mut Vec<NamedSchema>) {
            v.push((T::name().into_owned(), T::schema()));
            T::schemas(v);
        }
        let mut v = Vec::new();
        add::<Unloaded>(&mut v);
        add::<CleanedUp>(&mut v);
        add::<NodeStats>(&mut v);
        v
    }

    // The shapes the admin handlers build with `json!`, for the document only
    // (the `openapi` test and `scripts/api-fuzz` check the real answers against them).

    /// `POST /v1/unload/{model}`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct Unloaded {
        /// `"unloaded"`.
        status: String,
        /// The model.
        model: String,
    }

    /// `POST /v1/cleanup`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct CleanedUp {
        /// `"ok"`.
        status: String,
        /// The models unloaded.
        unloaded: Vec<String>,
    }

    /// `GET /v1/stats`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct NodeStats {
        /// Seconds since start.
        uptime_seconds: u64,
        /// Loaded models.
        models: Vec<LoadedModel>,
        /// Every model name the node can serve.
        available_models: Vec<String>,
        /// System CPU busy %.
        cpu_usage_percent: f32,
        /// The node's own CPU busy %.
        cpu_own_percent: f32,
        /// Available RAM.
        ram_available_gb: f64,
        /// The admission guard's limits.
        limits: GuardLimits,
        /// Sequences decoded together per model.
        parallel: u32,
        /// Context tokens per sequence.
        context_size: u32,
        /// Idle time before a model is unloaded.
        idle_unload_seconds: u64,
    }

    /// One loaded model in `GET /v1/stats`.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct LoadedModel {
        /// The name it is served as.
        name: String,
        /// The GGUF file.
        path: String,
        /// Parameters.
        parameters: u64,
        /// Seconds the load took.
        load_seconds: f64,
        /// Whether the GGUF carries a chat template.
        has_chat_template: bool,
        /// Sequences decoding now.
        active_sequences: u64,
        /// Requests waiting for a slot.
        queued: u64,
        /// Requests completed.
        completed: u64,
        /// Tokens generated.
        tokens_generated: u64,
        /// Seconds since the last request.
        idle_seconds: f64,
    }

    /// The admission guard's limits.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct GuardLimits {
        /// CPU busy % from other processes above which work is refused.
        max_cpu_percent: f32,
        /// Available RAM below which work is refused, MiB.
        ram_floor_mb: u64,
    }
}
