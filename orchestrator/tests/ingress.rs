//! The orchestrator's ingress against hostile or unlucky clients: slow senders
//! (slowloris) and stalled readers, made-up rate-limit keys, cross-site posts,
//! DNS rebinding, and who sees the node's file paths. In process (`oneshot`)
//! against a fake upstream, plus real sockets for what only a socket can show:
//! a client that never finishes its headers or its body.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use cerebrum::app::router_with_hosts;
use cerebrum::config::OrchestratorConfig;
use cerebrum::layers::host::AllowedHosts;
use cerebrum::serve::build_state;
use cerebrum_service::shutdown::{Serving, serve_until};
use cerebrum_shared::error::ErrorCode;
use cerebrum_testkit::fake::{Behaviour, FakeUpstream};
use cerebrum_testkit::router::{self as testkit, error_of, send};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

const COMPLETE: &str = r#"{"prompt":"def add(a, b):","max_tokens":8}"#;
const CHAT: &str = r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8}"#;
const LOCAL: [u8; 4] = [127, 0, 0, 1];
const REMOTE: [u8; 4] = [192, 168, 1, 50];
/// The machine name the tests' routers answer to.
const MACHINE: &str = "pi5";

mod inproc;
use inproc::{Stack, config, stack_on};

/// A router in front of a fake node, `tune` applied to its settings (tests
/// set bounds below the settings' one-second granularity there).
async fn stack_with(extra: &[(&str, &str)], tune: impl FnOnce(&mut OrchestratorConfig)) -> Stack {
    let fake = FakeUpstream::start().await;
    let mut cfg = config(&fake.url, extra);
    tune(&mut cfg);
    let hosts = AllowedHosts::new(&cfg.allowed_hosts, Some(MACHINE));
    let s = stack_on(fake, cfg, |state| router_with_hosts(state, hosts)).await;
    assert!(s.models_read, "the fake's model list was not read");
    s
}

async fn stack(extra: &[(&str, &str)]) -> Stack {
    stack_with(extra, |_| {}).await
}

fn body_for(path: &str) -> &'static str {
    if path.contains("chat") {
        CHAT
    } else if path == "/v1/prepare" {
        r#"{"prompt":"def add(a, b):"}"#
    } else {
        COMPLETE
    }
}

/// A POST from `peer` with exactly `headers` (no Content-Type unless given).
fn post_from(
    peer: [u8; 4],
    path: &str,
    body: impl Into<Body>,
    headers: &[(&str, &str)],
) -> axum::http::Request<Body> {
    let mut req = testkit::request(Method::POST, path, body, peer, &[]);
    req.headers_mut().remove("content-type");
    for (k, v) in headers {
        req.headers_mut().append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    req
}

fn json_post(
    path: &str,
    body: impl Into<Body>,
    headers: &[(&str, &str)],
) -> axum::http::Request<Body> {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    post_from(LOCAL, path, body, &all)
}

async fn check_error(
    app: &Router,
    req: axum::http::Request<Body>,
    status: u16,
    code: ErrorCode,
) -> (HeaderMap, String) {
    let path = req.uri().path().to_string();
    let (got, headers, bytes) = send(app, req).await;
    assert_eq!(
        got.as_u16(),
        status,
        "{path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let e = error_of(&path, got, &headers, &bytes);
    assert_eq!(e.code, code, "{path}: {}", e.message);
    (headers, e.message)
}

/// Whether `done` turns true within 20 s, checked every 10 ms without blocking
/// the runtime (the server and the watchdogs run on it).
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

// ---- 415: JSON routes take JSON only ---------------------------------------------

#[tokio::test]
async fn json_routes_refuse_other_media_types_with_415_before_the_node() {
    let s = stack(&[]).await;
    let paths = [
        "/v1/complete",
        "/v1/complete/stream",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/prepare",
    ];
    for path in paths {
        let body = body_for(path);
        for content_type in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let headers: Vec<(&str, &str)> = content_type
                .map(|t| ("content-type", t))
                .into_iter()
                .collect();
            let (_, message) = check_error(
                &s.app,
                post_from(LOCAL, path, body, &headers),
                415,
                ErrorCode::UnsupportedMediaType,
            )
            .await;
            assert!(message.contains("application/json"), "{path}: {message}");
        }
    }
    assert_eq!(s.fake.generations(), 0, "no refused body reached the node");
    for path in paths {
        let req = post_from(
            LOCAL,
            path,
            body_for(path),
            &[("content-type", "Application/JSON; charset=utf-8")],
        );
        let (status, _, bytes) = send(&s.app, req).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&bytes));
    }
    assert_eq!(
        s.fake.generations(),
        4,
        "the four inference routes reached it"
    );
}

// ---- 403: Host allow-list (DNS rebinding) ------------------------------------------

#[tokio::test]
async fn a_host_not_on_the_allow_list_is_refused_on_every_route_before_the_node() {
    let s = stack(&[]).await;
    for host in [
        "evil.example.com:7000",
        "pi5.evil.example",
        "localhost.evil.example",
    ] {
        for (method, path) in [
            (Method::POST, "/v1/complete"),
            (Method::POST, "/v1/chat/completions"),
            (Method::GET, "/v1/stats"),
            (Method::GET, "/health"),
        ] {
            let mut req = json_post(path, body_for(path), &[("host", host)]);
            *req.method_mut() = method;
            let (_, message) = check_error(&s.app, req, 403, ErrorCode::PeerNotAllowed).await;
            assert!(message.contains(host), "{message}");
            assert!(message.contains("CEREBRUM_ALLOWED_HOSTS"), "{message}");
        }
    }
    assert_eq!(s.fake.generations(), 0);
    for host in [
        "127.0.0.1:7000",
        "localhost:7000",
        "[::1]:7000",
        "192.168.1.20:7000",
        "pi5:7000",
        "pi5.local:7000",
        "PI5.tail1234.ts.net",
    ] {
        let req = json_post("/v1/complete", COMPLETE, &[("host", host)]);
        assert_eq!(send(&s.app, req).await.0, 200, "{host}");
    }
}

#[tokio::test]
async fn allowed_hosts_adds_names_and_a_star_allows_any() {
    let s = stack(&[("CEREBRUM_ALLOWED_HOSTS", "cerebrum.example.org")]).await;
    let req = json_post(
        "/v1/complete",
        COMPLETE,
        &[("host", "cerebrum.example.org")],
    );
    assert_eq!(send(&s.app, req).await.0, 200);
    let req = json_post("/v1/complete", COMPLETE, &[("host", "other.example.org")]);
    check_error(&s.app, req, 403, ErrorCode::PeerNotAllowed).await;

    let s = stack(&[("CEREBRUM_ALLOWED_HOSTS", "*")]).await;
    let req = json_post("/v1/complete", COMPLETE, &[("host", "other.example.org")]);
    assert_eq!(send(&s.app, req).await.0, 200);
}

// ---- Rate limit: keyed on the peer, not on keys the client makes up ----------------

#[tokio::test]
async fn made_up_keys_share_their_peers_bucket_and_a_configured_key_has_its_own() {
    let s = stack(&[
        ("CEREBRUM_RATE_LIMIT_PER_SECOND", "1"),
        ("CEREBRUM_RATE_LIMIT_BURST", "3"),
    ])
    .await;
    let mut passed = 0;
    for i in 0..200 {
        let key = format!("made-up-{i}");
        let req = post_from(
            REMOTE,
            "/v1/complete",
            COMPLETE,
            &[("content-type", "application/json"), ("x-api-key", &key)],
        );
        match send(&s.app, req).await.0.as_u16() {
            200 => passed += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(passed, 3, "one bucket for the peer, whatever key it sends");
    // Another peer has its own bucket.
    let req = post_from(
        [192, 168, 1, 51],
        "/v1/complete",
        COMPLETE,
        &[("content-type", "application/json")],
    );
    assert_eq!(send(&s.app, req).await.0, 200);

    // With client keys, a configured key is the client wherever it comes from.
    let s = stack(&[
        ("CEREBRUM_RATE_LIMIT_PER_SECOND", "1"),
        ("CEREBRUM_RATE_LIMIT_BURST", "1"),
        ("CEREBRUM_CLIENT_KEYS", "key-a,key-b"),
    ])
    .await;
    let with_key = |peer, key| {
        post_from(
            peer,
            "/v1/complete",
            COMPLETE,
            &[("content-type", "application/json"), ("x-api-key", key)],
        )
    };
    assert_eq!(send(&s.app, with_key(REMOTE, "key-a")).await.0, 200);
    let req = with_key([10, 0, 0, 9], "key-a");
    check_error(&s.app, req, 429, ErrorCode::RateLimited).await;
    assert_eq!(send(&s.app, with_key(REMOTE, "key-b")).await.0, 200);
}

// ---- /v1/stats: the node's file paths only for trusted callers ---------------------

/// A node whose `/v1/stats` names a file, as the real one does.
async fn node_with_stats() -> String {
    let stats = json!({
        "uptime_seconds": 1,
        "models": [{"name": "smollm2", "path": "/srv/cerebrum/models/smollm2.gguf", "parameters": 9}],
        "available_models": ["smollm2"],
    });
    let app = Router::new().route(
        "/v1/stats",
        axum::routing::get(move || async move { axum::Json(stats) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn stats(app: &Router, peer: [u8; 4], headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let req = testkit::request(Method::GET, "/v1/stats", "", peer, headers);
    let (status, _, bytes) = send(app, req).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn stats_show_the_nodes_file_paths_only_to_loopback_or_keyed_callers() {
    let url = node_with_stats().await;
    let open = |keys: &str| {
        let state = build_state(config(&url, &[("CEREBRUM_CLIENT_KEYS", keys)])).unwrap();
        router_with_hosts(state, AllowedHosts::new(&[], Some(MACHINE)))
    };
    let app = open("");
    let (status, remote) = stats(&app, REMOTE, &[]).await;
    assert_eq!(status, 200);
    let model = &remote["vps"]["models"][0];
    assert_eq!(model["name"], "smollm2", "{remote}");
    assert_eq!(model["parameters"], 9);
    assert!(model.get("path").is_none(), "a remote caller saw {model}");
    assert!(!remote.to_string().contains("/srv/"), "{remote}");
    let (_, local) = stats(&app, LOCAL, &[]).await;
    assert_eq!(
        local["vps"]["models"][0]["path"], "/srv/cerebrum/models/smollm2.gguf",
        "{local}"
    );

    let app = open("stats-key");
    assert_eq!(stats(&app, REMOTE, &[]).await.0, 401);
    let (status, keyed) = stats(&app, REMOTE, &[("x-api-key", "stats-key")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        keyed["vps"]["models"][0]["path"], "/srv/cerebrum/models/smollm2.gguf",
        "{keyed}"
    );
}

// ---- Slow senders and stalled readers, in process ----------------------------------

/// A body that sends `head`, then nothing, for ever.
fn stalled_body(head: &'static str) -> Body {
    Body::from_stream(
        futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(head.as_bytes()))])
            .chain(futures::stream::pending()),
    )
}

#[tokio::test]
async fn a_body_that_stalls_takes_no_permit_and_gets_408_in_the_paths_dialect() {
    let s = stack_with(&[("CEREBRUM_MAX_IN_FLIGHT", "1")], |c| {
        c.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    for path in ["/v1/complete", "/v1/chat/completions"] {
        let slow = tokio::spawn(s.app.clone().oneshot(json_post(
            path,
            stalled_body("{\"pro"),
            &[],
        )));
        // Meanwhile a complete request has the only in-flight slot to itself.
        let (status, _, _) = send(&s.app, json_post(path, body_for(path), &[])).await;
        assert_eq!(status, 200, "{path}: a slow sender held the permit");
        let res = slow.await.unwrap().unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(parts.status, 408, "{path}");
        assert_eq!(parts.headers["connection"], "close");
        let e = error_of(path, parts.status, &parts.headers, &bytes);
        assert_eq!(e.code, ErrorCode::RequestTimeout, "{path}");
        assert!(e.message.contains("0.3 s"), "{}", e.message);
    }
    assert_eq!(s.state.active(), 0);
    assert_eq!(
        s.fake.generations(),
        2,
        "only the complete requests reached the node"
    );
}

#[tokio::test]
async fn a_body_declared_or_sent_over_the_limit_is_refused_unread() {
    let s = stack(&[]).await;
    let limit = cerebrum_shared::limits::MAX_BODY_BYTES.to_string();
    let over = (cerebrum_shared::limits::MAX_BODY_BYTES + 1).to_string();
    // Declared too large: refused before a byte of it is read (the body never comes).
    let req = json_post(
        "/v1/complete",
        stalled_body("{"),
        &[("content-length", &over)],
    );
    let (headers, message) = check_error(&s.app, req, 413, ErrorCode::BodyTooLarge).await;
    assert!(message.contains(&limit), "{message}");
    assert_eq!(headers["connection"], "close");
}

#[tokio::test]
async fn a_stream_left_unread_loses_its_permit_but_waiting_on_the_node_does_not() {
    let s = stack_with(&[("CEREBRUM_MAX_IN_FLIGHT", "1")], |c| {
        c.stalled_reader_timeout = Duration::from_millis(300);
    })
    .await;
    s.fake.set(Behaviour::HoldAfterFirst);

    // A reader that keeps asking while the node holds the stream keeps its slot.
    let res = s
        .app
        .clone()
        .oneshot(json_post("/v1/complete/stream", COMPLETE, &[]))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut patient = res.into_body().into_data_stream();
    assert!(patient.next().await.unwrap().is_ok());
    let waiting = tokio::time::timeout(Duration::from_millis(1500), patient.next()).await;
    assert!(
        waiting.is_err(),
        "the stream was cut while the client waited on the node"
    );
    assert_eq!(s.state.active(), 1);
    drop(patient);
    assert_eq!(
        s.state.active(),
        0,
        "a client that leaves gives the slot back"
    );

    // A reader that takes a piece and stops asking loses the slot.
    let res = s
        .app
        .clone()
        .oneshot(json_post("/v1/complete/stream", COMPLETE, &[]))
        .await
        .unwrap();
    let mut stalled = res.into_body().into_data_stream();
    assert!(stalled.next().await.unwrap().is_ok());
    assert_eq!(s.state.active(), 1);
    assert!(
        eventually(|| s.state.active() == 0).await,
        "the stalled reader kept its slot"
    );
    // The slot serves another client, and the stalled one finds its stream cut.
    s.fake.set(Behaviour::Stream(vec!["ok".into()]));
    let (status, _, _) = send(&s.app, json_post("/v1/complete", COMPLETE, &[])).await;
    assert_eq!(status, 200);
    assert!(
        stalled.next().await.unwrap().is_err(),
        "ends as an error, not as complete"
    );
    assert!(stalled.next().await.is_none());
}

// ---- Slowloris on real sockets -----------------------------------------------------

/// Reads until the server closes the connection (or 30 s pass); what it sent.
async fn read_until_closed(conn: &mut TcpStream) -> Option<String> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&all).into_owned())
}

/// Whether the server has neither answered nor closed `conn` yet.
fn still_waiting(conn: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(conn.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn slow_clients_on_real_sockets_hold_no_slot_and_are_disconnected_after_their_bounds() {
    let bound = Duration::from_secs(3);
    let s = stack_with(&[("CEREBRUM_MAX_IN_FLIGHT", "2")], |c| {
        c.header_read_timeout = bound;
        c.body_read_timeout = bound;
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let serving = Serving {
        grace: Duration::from_secs(1),
        header_read_timeout: s.state.config.header_read_timeout,
    };
    tokio::spawn(serve_until(
        listener,
        s.app.clone(),
        serving,
        std::future::pending(),
    ));

    // Two clients send their headers and part of the body, then wait: as many as
    // there are in-flight slots.
    let head = format!(
        "POST /v1/complete HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{{\"prompt\":",
        COMPLETE.len()
    );
    let mut part_body = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(head.as_bytes()).await.unwrap();
        part_body.push(c);
    }
    // One sends half its headers, one nothing at all.
    let mut part_head = TcpStream::connect(addr).await.unwrap();
    part_head
        .write_all(b"POST /v1/complete HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-ty")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Both partial bodies are inside the server (their headers were read and routed).
    let requests = || s.state.metrics.requests.get();
    assert!(
        eventually(|| requests() == 2).await,
        "the two partial bodies did not reach the router"
    );

    // A third, normal client is served while they wait.
    let r = cerebrum_testkit::client()
        .post(format!("http://{addr}/v1/complete"))
        .header("content-type", "application/json")
        .body(COMPLETE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        s.state.active(),
        0,
        "the waiting clients hold no in-flight slot"
    );
    for c in part_body.iter().chain([&part_head, &silent]) {
        assert!(
            still_waiting(c),
            "a slow client was dropped before its bound"
        );
    }

    // After the bound: the partial bodies get 408 and are closed; the others are closed unanswered.
    for c in &mut part_body {
        let answer = read_until_closed(c)
            .await
            .expect("closed after the body bound");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    }
    for c in [&mut part_head, &mut silent] {
        let answer = read_until_closed(c)
            .await
            .expect("closed after the header bound");
        assert_eq!(answer, "", "no answer to a request that never was");
    }
    assert_eq!(
        s.fake.generations(),
        1,
        "only the complete request reached the node"
    );
}
