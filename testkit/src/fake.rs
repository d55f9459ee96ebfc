//! An in-process fake upstream (an OpenAI-compatible node) on a loopback port,
//! for tests that need the node to do what the real one will not: answer an
//! exact error, hold a stream open until told, break a stream part-way, or
//! misbehave on command (slow, stalled, garbage, truncated, enormous, reset,
//! redirecting, refusing the key). Everything else is tested against the real node.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use cerebrum_shared::cerebrum::{ModelsResponse, NodeHealth};
use cerebrum_shared::error::{ApiError, Dialect, ErrorCode};
use cerebrum_shared::openai::{ChunkShaper, ObjectKind, Usage};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
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
    /// Sends nothing, not even the response headers, for this long; then
    /// streams `["Hello", " world"]` and ends well.
    SlowFirstByte(Duration),
    /// Streams one piece, then nothing more; the connection stays open.
    StallAfterFirst,
    /// Sends this line as the first event's data (it is not JSON), then `[DONE]`.
    Garbage(String),
    /// Streams these pieces, then ends the body cleanly without `[DONE]`.
    Truncated(Vec<String>),
    /// Streams one piece, then one `data:` line of this many bytes that never
    /// ends, then stalls. [`FakeUpstream::streamed_bytes`] says how much of it
    /// was taken off the fake.
    EnormousLine(usize),
    /// Streams one piece, then resets the connection (RST: `SO_LINGER` 0 and close).
    ResetAfterFirst,
    /// Answers this 3xx with `Location`.
    Redirect {
        /// The status.
        status: u16,
        /// Where to.
        location: String,
    },
}

/// How the fake's auth gate (like the node's, on every route but `/health`) refuses.
#[derive(Debug, Clone, Default)]
pub enum Gate {
    /// Everyone is let in.
    #[default]
    Open,
    /// This key is required (missing → 401 `missing_api_key`, wrong → 403 `invalid_api_key`).
    Key(String),
    /// Every caller is refused 403 `peer_not_allowed`.
    PeerNotAllowed,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its path.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    models: Mutex<Vec<String>>,
    health: Mutex<NodeHealth>,
    gate: Mutex<Gate>,
    generations: AtomicUsize,
    bodies: Mutex<Vec<serde_json::Value>>,
    received: Mutex<Vec<Received>>,
    streamed: Arc<AtomicUsize>,
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
            health: Mutex::new(healthy()),
            gate: Mutex::new(Gate::Open),
            generations: AtomicUsize::new(0),
            bodies: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            streamed: Arc::new(AtomicUsize::new(0)),
            release: watch::channel(false).0,
        });
        let gated = Router::new()
            .route("/v1/models", get(models))
            .route(
                "/v1/chat/completions",
                post(|s, c, b| generate(s, c, b, ObjectKind::Chat)),
            )
            .route(
                "/v1/completions",
                post(|s, c, b| generate(s, c, b, ObjectKind::Text)),
            )
            .route_layer(axum::middleware::from_fn_with_state(shared.clone(), gate));
        let app = Router::new()
            .route("/health", get(health))
            .merge(gated)
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                FakeListener(listener),
                app.into_make_service_with_connect_info::<ResetSwitch>(),
            )
            .await
        });
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

    /// What `/health` says from now on: its status word, whether it admits
    /// work, and the models it is loading.
    pub fn set_health(&self, status: &str, available: bool, loading: &[&str]) {
        let mut h = self.shared.health.lock().unwrap();
        h.status = status.into();
        h.available = available;
        h.models_loading = loading.iter().map(|s| s.to_string()).collect();
    }

    /// Who the auth gate lets in from now on.
    pub fn set_gate(&self, gate: Gate) {
        *self.shared.gate.lock().unwrap() = gate;
    }

    /// Generations asked of the fake so far.
    pub fn generations(&self) -> usize {
        self.shared.generations.load(Ordering::SeqCst)
    }

    /// The bodies of the generations asked so far, in order.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.shared.bodies.lock().unwrap().clone()
    }

    /// Every request received so far (any path, before the gate), in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Bytes of [`Behaviour::EnormousLine`] bodies taken off the fake so far.
    pub fn streamed_bytes(&self) -> usize {
        self.shared.streamed.load(Ordering::SeqCst)
    }

    /// Lets every held stream finish.
    pub fn release(&self) {
        self.shared.release.send_replace(true);
    }
}

fn healthy() -> NodeHealth {
    NodeHealth {
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
    }
}

/// The listener: plain TCP, with a switch per connection that makes its close a reset.
struct FakeListener(TcpListener);

impl axum::serve::Listener for FakeListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((io, addr)) => {
                    let reset = ResetSwitch(Arc::new(AtomicBool::new(false)));
                    return (Conn { io, reset }, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Set by a handler: when its connection closes, it closes with a reset.
#[derive(Clone)]
struct ResetSwitch(Arc<AtomicBool>);

impl Connected<IncomingStream<'_, FakeListener>> for ResetSwitch {
    fn connect_info(stream: IncomingStream<'_, FakeListener>) -> Self {
        stream.io().reset.clone()
    }
}

/// An accepted connection.
struct Conn {
    io: TcpStream,
    reset: ResetSwitch,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.reset.0.load(Ordering::SeqCst) {
            // Closing a socket with a zero linger sends RST instead of FIN.
            let _ = self.io.set_zero_linger();
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

type State = axum::extract::State<Arc<Shared>>;

async fn record(axum::extract::State(s): State, request: Request, next: Next) -> Response {
    s.received.lock().unwrap().push(Received {
        path: request.uri().path().to_string(),
        headers: request.headers().clone(),
    });
    next.run(request).await
}

/// The node's auth layer, as the gate is set.
async fn gate(axum::extract::State(s): State, request: Request, next: Next) -> Response {
    let gate = s.gate.lock().unwrap().clone();
    let refusal = match gate {
        Gate::Open => None,
        Gate::PeerNotAllowed => Some(ApiError::new(
            ErrorCode::PeerNotAllowed,
            "peer 127.0.0.1 is not allowed",
        )),
        Gate::Key(key) => match cerebrum_shared::headers::presented_key(request.headers()) {
            None => Some(ApiError::new(
                ErrorCode::MissingApiKey,
                "send the node's key as X-API-Key or Authorization: Bearer",
            )),
            Some(k) if k == key => None,
            Some(_) => Some(ApiError::new(
                ErrorCode::InvalidApiKey,
                "the API key does not match",
            )),
        },
    };
    match refusal {
        None => next.run(request).await,
        Some(e) => (
            e.status_code(),
            [(header::CONTENT_TYPE, "application/json")],
            e.body(Dialect::OpenAi).to_string(),
        )
            .into_response(),
    }
}

async fn health(axum::extract::State(s): State) -> axum::Json<NodeHealth> {
    axum::Json(s.health.lock().unwrap().clone())
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

async fn generate(
    axum::extract::State(s): State,
    ConnectInfo(reset): ConnectInfo<ResetSwitch>,
    body: Bytes,
    kind: ObjectKind,
) -> Response {
    s.generations.fetch_add(1, Ordering::SeqCst);
    let json = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
    let model = json["model"].as_str().unwrap_or_default().to_string();
    s.bodies.lock().unwrap().push(json);
    let behaviour = s.behaviour.lock().unwrap().clone();
    let mut shaper = ChunkShaper::new(kind, format!("{}-fake", kind.id_prefix()), model);
    let frame = |json: String| Ok::<_, std::io::Error>(Bytes::from(format!("data: {json}\n\n")));
    let done = || Ok::<_, std::io::Error>(Bytes::from_static(b"data: [DONE]\n\n"));
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
        Behaviour::Redirect { status, location } => {
            return Response::builder()
                .status(status)
                .header(header::LOCATION, location)
                .body(Body::empty())
                .unwrap();
        }
        Behaviour::Stream(pieces) => {
            let n = pieces.len() as u64;
            let mut frames: Vec<_> = pieces.into_iter().map(|p| frame(shaper.text(p))).collect();
            frames.push(frame(shaper.finish("stop")));
            frames.push(frame(shaper.usage(Usage::new(3, n))));
            frames.push(done());
            Body::from_stream(futures::stream::iter(frames))
        }
        Behaviour::SlowFirstByte(delay) => {
            tokio::time::sleep(delay).await;
            let frames = vec![
                frame(shaper.text("Hello".into())),
                frame(shaper.text(" world".into())),
                frame(shaper.finish("stop")),
                done(),
            ];
            Body::from_stream(futures::stream::iter(frames))
        }
        Behaviour::HoldAfterFirst => {
            let first = frame(shaper.text("held".into()));
            let finish = frame(shaper.finish("stop"));
            let mut release = s.release.subscribe();
            let rest = async move {
                let _ = release.wait_for(|r| *r).await;
                futures::stream::iter(vec![finish, done()])
            };
            Body::from_stream(
                futures::stream::iter(vec![first]).chain(futures::stream::once(rest).flatten()),
            )
        }
        Behaviour::StallAfterFirst => {
            let first = frame(shaper.text("stalled".into()));
            Body::from_stream(futures::stream::iter(vec![first]).chain(futures::stream::pending()))
        }
        Behaviour::Garbage(line) => {
            let garbage = Ok(Bytes::from(format!("data: {line}\n\n")));
            Body::from_stream(futures::stream::iter(vec![garbage, done()]))
        }
        Behaviour::Truncated(pieces) => {
            let frames: Vec<_> = pieces.into_iter().map(|p| frame(shaper.text(p))).collect();
            Body::from_stream(futures::stream::iter(frames))
        }
        Behaviour::EnormousLine(size) => {
            const CHUNK: usize = 64 << 10;
            let first = frame(shaper.text("big".into()));
            let streamed = s.streamed.clone();
            let line = futures::stream::unfold(0usize, move |sent| {
                let streamed = streamed.clone();
                async move {
                    if sent >= size {
                        return None;
                    }
                    let n = CHUNK.min(size - sent);
                    let mut chunk = vec![b'x'; n];
                    if sent == 0 {
                        chunk[..6].copy_from_slice(b"data: ");
                    }
                    streamed.fetch_add(n, Ordering::SeqCst);
                    Some((Ok(Bytes::from(chunk)), sent + n))
                }
            });
            Body::from_stream(
                futures::stream::iter(vec![first])
                    .chain(line)
                    .chain(futures::stream::pending()),
            )
        }
        Behaviour::ResetAfterFirst => {
            let first = frame(shaper.text("partial".into()));
            let reset = async move {
                // Give the first piece time to reach the client, then reset.
                tokio::time::sleep(Duration::from_millis(100)).await;
                reset.0.store(true, Ordering::SeqCst);
                Err(std::io::Error::other("fake upstream resets the connection"))
            };
            Body::from_stream(
                futures::stream::iter(vec![first]).chain(futures::stream::once(reset)),
            )
        }
        Behaviour::BreakAfterFirst => {
            let first = frame(shaper.text("partial".into()));
            // Give the first piece time to reach the client, then break.
            let broken = async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(std::io::Error::other("fake upstream breaks the stream"))
            };
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
