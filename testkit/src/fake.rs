//! An in-process fake upstream (an OpenAI-compatible node) on a loopback port,
//! for tests that need the node to do what the real one will not: answer an
//! exact error, hold a stream open until told, or break a stream part-way.
//! Everything else is tested against the real node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cerebrum_shared::cerebrum::{ModelsResponse, NodeHealth};
use cerebrum_shared::openai::{ChunkShaper, ObjectKind, Usage};
use tokio::sync::watch;

/// What the fake answers to a generation (`/v1/chat/completions`, `/v1/completions`).
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Streams these pieces, then `stop`, usage and `[DONE]`.
    Stream(Vec<String>),
    /// Answers this status, body and optional `Retry-After` at once.
    Status {
        /// HTTP status.
        status: u16,
        /// Body, sent as JSON.
        body: String,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Streams one piece, then waits until [`FakeUpstream::release`], then ends well.
    HoldAfterFirst,
    /// Streams one piece, then breaks the connection.
    BreakAfterFirst,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    models: Mutex<Vec<String>>,
    generations: AtomicUsize,
    bodies: Mutex<Vec<serde_json::Value>>,
    release: watch::Sender<bool>,
}

/// The fake node; stops with the test's runtime.
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeUpstream {
    /// Starts on a free loopback port, streaming `["Hello", " world"]` and serving
    /// one model, `fake-model`.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour::Stream(vec!["Hello".into(), " world".into()])),
            models: Mutex::new(vec!["fake-model".into()]),
            generations: AtomicUsize::new(0),
            bodies: Mutex::new(Vec::new()),
            release: watch::channel(false).0,
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/v1/models", get(models))
            .route(
                "/v1/chat/completions",
                post(|s, b| generate(s, b, ObjectKind::Chat)),
            )
            .route(
                "/v1/completions",
                post(|s, b| generate(s, b, ObjectKind::Text)),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    /// What generations answer from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// The model names `/v1/models` lists.
    pub fn set_models(&self, names: &[&str]) {
        *self.shared.models.lock().unwrap() = names.iter().map(|s| s.to_string()).collect();
    }

    /// Generations asked of the fake so far.
    pub fn generations(&self) -> usize {
        self.shared.generations.load(Ordering::SeqCst)
    }

    /// The bodies of the generations asked so far, in order.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.shared.bodies.lock().unwrap().clone()
    }

    /// Lets every held stream finish.
    pub fn release(&self) {
        self.shared.release.send_replace(true);
    }
}

type State = axum::extract::State<Arc<Shared>>;

async fn health() -> axum::Json<NodeHealth> {
    axum::Json(NodeHealth {
        status: "healthy".into(),
        available: true,
        reason: None,
        cpu_usage_percent: 1.0,
        cpu_other_percent: 1.0,
        ram_available_gb: 1.0,
        ram_used_gb: 1.0,
        models_in_cache: vec![],
        models_loading: vec![],
        active_sequences: 0,
        context_length: None,
        uptime_seconds: 1,
    })
}

async fn models(axum::extract::State(s): State) -> axum::Json<ModelsResponse> {
    let names = s.models.lock().unwrap().clone();
    axum::Json(ModelsResponse::new(
        names,
        vec![],
        Default::default(),
        "fake",
    ))
}

async fn generate(axum::extract::State(s): State, body: Bytes, kind: ObjectKind) -> Response {
    s.generations.fetch_add(1, Ordering::SeqCst);
    let json = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
    let model = json["model"].as_str().unwrap_or_default().to_string();
    s.bodies.lock().unwrap().push(json);
    let behaviour = s.behaviour.lock().unwrap().clone();
    let mut shaper = ChunkShaper::new(kind, format!("{}-fake", kind.id_prefix()), model);
    let frame = |json: String| Ok::<_, std::io::Error>(Bytes::from(format!("data: {json}\n\n")));
    let body = match behaviour {
        Behaviour::Status {
            status,
            body,
            retry_after,
        } => {
            let mut r = (
                StatusCode::from_u16(status).unwrap(),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return r;
        }
        Behaviour::Stream(pieces) => {
            let n = pieces.len() as u64;
            let mut frames: Vec<_> = pieces.into_iter().map(|p| frame(shaper.text(p))).collect();
            frames.push(frame(shaper.finish("stop")));
            frames.push(frame(shaper.usage(Usage::new(3, n))));
            frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
            Body::from_stream(futures::stream::iter(frames))
        }
        Behaviour::HoldAfterFirst => {
            let first = frame(shaper.text("held".into()));
            let finish = frame(shaper.finish("stop"));
            let mut release = s.release.subscribe();
            let rest = async move {
                let _ = release.wait_for(|r| *r).await;
                futures::stream::iter(vec![finish, Ok(Bytes::from_static(b"data: [DONE]\n\n"))])
            };
            use futures::StreamExt;
            Body::from_stream(
                futures::stream::iter(vec![first]).chain(futures::stream::once(rest).flatten()),
            )
        }
        Behaviour::BreakAfterFirst => {
            let first = frame(shaper.text("partial".into()));
            // Give the first piece time to reach the client, then break.
            let broken = async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                Err(std::io::Error::other("fake upstream breaks the stream"))
            };
            use futures::StreamExt;
            Body::from_stream(
                futures::stream::iter(vec![first]).chain(futures::stream::once(broken)),
            )
        }
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}
