//! Several upstreams in process (`oneshot`), each a fake on loopback: which
//! upstream a model's requests reach, least loaded first, failover before the
//! first byte, per-upstream breakers, the fallback upstream, and what
//! `/health`, `/health/ready` and `/metrics` say of each. Real engines behind
//! real processes are in `engines.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use cerebrum::app::router;
use cerebrum::config::OrchestratorConfig;
use cerebrum::serve::build_state;
use cerebrum::state::AppState;
use cerebrum::upstream::BreakerState;
use cerebrum_shared::cerebrum::{OrchestratorHealth, UpstreamKind, VpsAuth};
use cerebrum_shared::error::{ApiError, ErrorCode};
use cerebrum_testkit::fake::{Behaviour, FakeUpstream, Gate};
use cerebrum_testkit::router::{error_of, request, send};
use serde_json::{Value, json};
use tower::ServiceExt;

const COOLDOWN_SECS: u64 = 1;

/// One upstream of a test: its name, the models its fake lists, its role.
struct Spec {
    name: &'static str,
    models: &'static [&'static str],
    extra: &'static str,
}

fn spec(name: &'static str, models: &'static [&'static str]) -> Spec {
    Spec {
        name,
        models,
        extra: "",
    }
}

struct Pool {
    app: Router,
    state: AppState,
    fakes: Vec<FakeUpstream>,
}

impl Pool {
    fn fake(&self, name: &str) -> &FakeUpstream {
        let i = self
            .state
            .upstreams
            .all()
            .iter()
            .position(|u| u.name() == name)
            .unwrap();
        &self.fakes[i]
    }
}

/// An orchestrator in front of one fake per spec, configured through
/// `CEREBRUM_UPSTREAMS`, with every upstream's health and models read.
async fn pool(specs: &[Spec], env: &[(&str, &str)]) -> Pool {
    let mut fakes = Vec::new();
    let mut entries = Vec::new();
    for s in specs {
        let fake = FakeUpstream::start().await;
        fake.set_models(s.models);
        entries.push(format!(
            r#"{{name = "{}", endpoint = "{}", key = "k"{}}}"#,
            s.name, fake.url, s.extra
        ));
        fakes.push(fake);
    }
    let mut vars: BTreeMap<String, String> = [
        ("CEREBRUM_UPSTREAMS", format!("[{}]", entries.join(", "))),
        ("CEREBRUM_BREAKER_THRESHOLD", "1".into()),
        ("CEREBRUM_BREAKER_COOLDOWN_SECS", COOLDOWN_SECS.to_string()),
        ("CEREBRUM_CONNECT_TIMEOUT_SECS", "1".into()),
        ("CEREBRUM_MAX_IN_FLIGHT", "8".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in env {
        vars.insert(k.to_string(), v.to_string());
    }
    let config = OrchestratorConfig::resolve(None, &vars, &Default::default()).unwrap();
    let state = build_state(config).unwrap();
    state.upstreams.refresh().await;
    Pool {
        app: router(state.clone()),
        state,
        fakes,
    }
}

fn chat(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        .to_string()
}

async fn post_chat(app: &Router, model: &str) -> (StatusCode, ApiError, Value) {
    let path = "/v1/chat/completions";
    let (status, headers, body) = send(
        app,
        request(Method::POST, path, chat(model), [127, 0, 0, 1], &[]),
    )
    .await;
    if status == StatusCode::OK {
        let v: Value = serde_json::from_slice(&body).unwrap();
        return (status, ApiError::new(ErrorCode::Internal, ""), v);
    }
    (status, error_of(path, status, &headers, &body), Value::Null)
}

async fn get_json(app: &Router, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request(Method::GET, path, "", [127, 0, 0, 1], &[])).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `name{upstream="u"}` from `/metrics`.
async fn per_upstream(app: &Router, name: &str, upstream: &str) -> f64 {
    let (_, _, body) = send(
        app,
        request(Method::GET, "/metrics", "", [127, 0, 0, 1], &[]),
    )
    .await;
    let text = String::from_utf8_lossy(&body).to_string();
    let series = format!("{name}{{upstream=\"{upstream}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

fn failing(status: u16) -> Behaviour {
    Behaviour::Status {
        status,
        body: ApiError::new(ErrorCode::Internal, "it broke")
            .body(cerebrum_shared::error::Dialect::OpenAi)
            .to_string(),
        retry_after: None,
    }
}

#[tokio::test]
async fn each_model_goes_to_an_upstream_that_serves_it() {
    let p = pool(&[spec("a", &["m1"]), spec("b", &["m2", "m3"])], &[]).await;
    for model in ["m1", "m2", "m1", "m3"] {
        let (status, e, v) = post_chat(&p.app, model).await;
        assert_eq!(status, 200, "{model}: {e}");
        assert_eq!(v["model"], model);
    }
    assert_eq!(
        (p.fake("a").generations(), p.fake("b").generations()),
        (2, 2)
    );
    // Served nowhere: 404 naming the model and what each upstream serves.
    let (status, e, _) = post_chat(&p.app, "m9").await;
    assert_eq!(
        (status, e.code),
        (StatusCode::NOT_FOUND, ErrorCode::ModelNotFound)
    );
    assert!(
        e.message
            .starts_with("model 'm9' is not served by any upstream: a (http://127.0.0.1:")
            && e.message.contains(") serves m1; b (http://127.0.0.1:")
            && e.message.contains(") serves m2, m3."),
        "{}",
        e.message
    );
    // /v1/models merges both lists.
    let (status, list) = get_json(&p.app, "/v1/models").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m1", "m2", "m3"], "{list}");
}

#[tokio::test]
async fn equal_upstreams_share_the_work_and_the_least_loaded_goes_first() {
    let p = pool(&[spec("a", &["m"]), spec("b", &["m"])], &[]).await;
    for _ in 0..4 {
        assert_eq!(post_chat(&p.app, "m").await.0, 200);
    }
    assert_eq!(
        (p.fake("a").generations(), p.fake("b").generations()),
        (2, 2),
        "rotating among equals"
    );

    // A stream held open on one upstream: the next requests go to the other.
    for f in &p.fakes {
        f.set(Behaviour::HoldAfterFirst);
    }
    let stream =
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true})
            .to_string();
    let held = p
        .app
        .clone()
        .oneshot(request(
            Method::POST,
            "/v1/chat/completions",
            stream,
            [127, 0, 0, 1],
            &[],
        ))
        .await
        .unwrap();
    assert_eq!(held.status(), 200);
    let busy = p
        .state
        .upstreams
        .all()
        .iter()
        .find(|u| u.in_flight() == 1)
        .expect("one holds it")
        .name()
        .to_string();
    let idle = if busy == "a" { "b" } else { "a" };
    for f in &p.fakes {
        f.set(Behaviour::Stream(vec!["ok".into()]));
    }
    let before = p.fake(idle).generations();
    for _ in 0..3 {
        assert_eq!(post_chat(&p.app, "m").await.0, 200);
    }
    assert_eq!(
        p.fake(idle).generations(),
        before + 3,
        "all went to the idle one"
    );
    for f in &p.fakes {
        f.release();
    }
    drop(held);
}

#[tokio::test]
async fn capacity_counts_slots_and_weight() {
    // "big" has 4 slots: it takes four held streams before "small" takes a second.
    let p = pool(
        &[
            Spec {
                name: "small",
                models: &["m"],
                extra: "",
            },
            Spec {
                name: "big",
                models: &["m"],
                extra: ", slots = 4",
            },
        ],
        &[],
    )
    .await;
    for f in &p.fakes {
        f.set(Behaviour::HoldAfterFirst);
    }
    let stream =
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true})
            .to_string();
    let mut held = Vec::new();
    for _ in 0..5 {
        let r = p
            .app
            .clone()
            .oneshot(request(
                Method::POST,
                "/v1/chat/completions",
                stream.clone(),
                [127, 0, 0, 1],
                &[],
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        held.push(r);
    }
    let load: Vec<usize> = p
        .state
        .upstreams
        .all()
        .iter()
        .map(|u| u.in_flight())
        .collect();
    assert_eq!(load, [1, 4], "small, big");
    for f in &p.fakes {
        f.release();
    }
}

#[tokio::test]
async fn a_failure_before_the_first_byte_moves_to_the_next_upstream() {
    let p = pool(&[spec("a", &["m"]), spec("b", &["m"])], &[]).await;
    p.fake("a").set(failing(500));
    p.fake("b").set(failing(500));
    // Whichever is tried first fails; the other answers once healed.
    p.fake("b").set(Behaviour::Stream(vec!["from b".into()]));
    for _ in 0..3 {
        let (status, e, v) = post_chat(&p.app, "m").await;
        assert_eq!(status, 200, "{e}");
        assert_eq!(v["choices"][0]["message"]["content"], "from b");
    }
    // a failed once (threshold 1): its breaker opened and it was not asked again.
    assert_eq!(p.fake("a").generations(), 1);
    assert_eq!(
        p.state.upstreams.named("a").unwrap().breaker.state(),
        BreakerState::Open
    );
    assert_eq!(
        per_upstream(&p.app, "cerebrum_upstream_failures_total", "a").await,
        1.0
    );
    assert_eq!(
        per_upstream(&p.app, "cerebrum_upstream_success_total", "b").await,
        3.0
    );
    assert_eq!(
        per_upstream(&p.app, "cerebrum_breaker_open", "a").await,
        1.0
    );
    assert_eq!(
        per_upstream(&p.app, "cerebrum_upstream_ready", "a").await,
        0.0
    );
    assert_eq!(
        per_upstream(&p.app, "cerebrum_upstream_ready", "b").await,
        1.0
    );
    // The readiness of the whole: b can serve.
    assert_eq!(get_json(&p.app, "/health/ready").await.0, 200);
    let (_, h) = get_json(&p.app, "/health").await;
    let h: OrchestratorHealth = serde_json::from_value(h).unwrap();
    assert_eq!(h.status, "degraded", "a primary is not ready");
    assert_eq!(h.vps_status, "healthy", "the summary is the ready one");
    let a = &h.upstreams[0];
    assert_eq!(
        (a.name.as_str(), a.ready, a.breaker),
        ("a", false, BreakerState::Open)
    );
    assert!(a.breaker_retry_after_seconds >= 1);
    assert!(h.upstreams[1].ready);
}

#[tokio::test]
async fn a_request_the_upstream_refuses_as_bad_is_not_sent_elsewhere() {
    let p = pool(&[spec("a", &["m"]), spec("b", &["m"])], &[]).await;
    for f in &p.fakes {
        f.set(Behaviour::Status {
            status: 422,
            body: ApiError::new(ErrorCode::InvalidRequest, "bad temperature")
                .body(cerebrum_shared::error::Dialect::OpenAi)
                .to_string(),
            retry_after: None,
        });
    }
    let (status, e, _) = post_chat(&p.app, "m").await;
    assert_eq!((status.as_u16(), e.code), (422, ErrorCode::InvalidRequest));
    assert!(e.message.contains("bad temperature"), "{}", e.message);
    let sent = p.fake("a").generations() + p.fake("b").generations();
    assert_eq!(
        sent, 1,
        "the client's own error is not retried on another upstream"
    );
}

#[tokio::test]
async fn every_breaker_open_is_a_503_with_the_soonest_retry() {
    let p = pool(&[spec("a", &["m"]), spec("b", &["m"])], &[]).await;
    for f in &p.fakes {
        f.set(failing(500));
    }
    let (status, e, _) = post_chat(&p.app, "m").await;
    assert_eq!(
        status.as_u16(),
        500,
        "both tried, the last failure passed on: {e}"
    );
    assert!(
        e.message.starts_with("upstream '"),
        "names the upstream: {}",
        e.message
    );
    assert_eq!(p.fake("a").generations() + p.fake("b").generations(), 2);
    let path = "/v1/chat/completions";
    let (status, headers, body) = send(
        &p.app,
        request(Method::POST, path, chat("m"), [127, 0, 0, 1], &[]),
    )
    .await;
    let e = error_of(path, status, &headers, &body);
    assert_eq!((status.as_u16(), e.code), (503, ErrorCode::BreakerOpen));
    assert_eq!(headers["retry-after"], COOLDOWN_SECS.to_string());
    assert_eq!(
        p.fake("a").generations() + p.fake("b").generations(),
        2,
        "nothing sent"
    );
    let (status, v) = get_json(&p.app, "/health/ready").await;
    assert_eq!(status, 503);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("no upstream is ready: a "),
        "{v}"
    );
}

#[tokio::test]
async fn the_fallback_takes_over_when_the_primary_fails_and_gives_it_back_when_healed() {
    let p = pool(
        &[
            spec("main", &["m"]),
            Spec {
                name: "spare",
                models: &["m"],
                extra: ", fallback = true",
            },
        ],
        &[],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(post_chat(&p.app, "m").await.0, 200);
    }
    assert_eq!(
        (p.fake("main").generations(), p.fake("spare").generations()),
        (3, 0),
        "the fallback idles"
    );
    // main fails: the failing request moves to the spare, and the next go straight there.
    p.fake("main").set(failing(502));
    for _ in 0..3 {
        let (status, e, _) = post_chat(&p.app, "m").await;
        assert_eq!(status, 200, "{e}");
    }
    assert_eq!(
        (p.fake("main").generations(), p.fake("spare").generations()),
        (4, 3)
    );
    let (_, h) = get_json(&p.app, "/health").await;
    assert_eq!(h["status"], "degraded");
    assert_eq!(
        get_json(&p.app, "/health/ready").await.0,
        200,
        "the spare serves"
    );
    // Healed: after the cooldown the trial goes to main, and main keeps the work.
    p.fake("main").set(Behaviour::Stream(vec!["back".into()]));
    tokio::time::sleep(Duration::from_millis(COOLDOWN_SECS * 1000 + 100)).await;
    for _ in 0..3 {
        let (status, e, v) = post_chat(&p.app, "m").await;
        assert_eq!(status, 200, "{e}");
        assert_eq!(v["choices"][0]["message"]["content"], "back");
    }
    assert_eq!(
        (p.fake("main").generations(), p.fake("spare").generations()),
        (7, 3)
    );
    assert_eq!(
        p.state.upstreams.named("main").unwrap().breaker.state(),
        BreakerState::Closed
    );
}

#[tokio::test]
async fn the_fallback_model_answers_for_a_route_no_upstream_serves() {
    let p = pool(
        &[spec("a", &["small"])],
        &[("CEREBRUM_FALLBACK_MODEL", "small")],
    )
    .await;
    let body = json!({"prompt": "def f(): pass", "language": "rust", "max_tokens": 4}).to_string();
    let (status, _, bytes) = send(
        &p.app,
        request(Method::POST, "/v1/complete", body, [127, 0, 0, 1], &[]),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["model_used"], "small");
    // A typed name no route knows is still refused.
    let (status, e, _) = post_chat(&p.app, "gtp-4").await;
    assert_eq!((status.as_u16(), e.code), (404, ErrorCode::ModelNotFound));
}

#[tokio::test]
async fn an_openai_upstream_is_ready_when_its_model_list_answers_with_the_key() {
    let p = pool(
        &[Spec {
            name: "engine",
            models: &["m"],
            extra: r#", kind = "openai""#,
        }],
        &[],
    )
    .await;
    let engine = p.state.upstreams.first();
    assert!(engine.is_ready());
    let r = engine.report();
    assert_eq!(
        (r.kind, r.status.as_str(), r.models.as_slice()),
        (UpstreamKind::OpenAi, "ok", &["m".to_string()][..])
    );
    // Its /health is never read: the fake's says "unhealthy", and it stays ready.
    p.fakes[0].set_health("unhealthy", false, &[]);
    engine.refresh_health().await;
    assert!(engine.is_ready());
    assert!(
        !p.fakes[0].received().iter().any(|r| r.path == "/health"),
        "openai kind never asks /health"
    );
    // A key it refuses: reachable, not ready, and /health/ready says why.
    p.fakes[0].set_gate(Gate::Key("other".into()));
    engine.refresh_health().await;
    assert!(!engine.is_ready());
    assert_eq!(engine.auth().0, VpsAuth::Refused);
    let (status, v) = get_json(&p.app, "/health/ready").await;
    assert_eq!(
        (status.as_u16(), v["code"].as_str()),
        (503, Some("upstream_auth")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("upstream 'engine' refuses the orchestrator's key"),
        "{v}"
    );
}

#[tokio::test]
async fn an_auto_upstream_is_what_its_health_says() {
    // The fake answers /health like a Cerebrum node (with `available`).
    let p = pool(&[spec("node", &["m"])], &[]).await;
    let u = p.state.upstreams.first();
    assert_eq!(u.kind(), UpstreamKind::CerebrumNode);
    p.fakes[0].set_health("overloaded", false, &[]);
    u.refresh_health().await;
    assert!(
        !u.is_ready(),
        "a node that says it is not available is not ready"
    );
    let (status, v) = get_json(&p.app, "/health/ready").await;
    assert_eq!(
        (status.as_u16(), v["code"].as_str()),
        (503, Some("vps_overloaded")),
        "{v}"
    );
}

#[tokio::test]
async fn an_upstream_whose_list_is_unknown_is_not_asked_on_the_request_path() {
    // An upstream that accepts connections and never answers (a hung host).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    let fake = FakeUpstream::start().await;
    fake.set_models(&["m"]);
    let upstreams = format!(
        r#"[{{name = "live", endpoint = "{}"}}, {{name = "hung", endpoint = "http://{addr}"}}]"#,
        fake.url
    );
    let vars: BTreeMap<String, String> = [("CEREBRUM_UPSTREAMS".to_string(), upstreams)].into();
    let state = build_state(OrchestratorConfig::resolve(None, &vars, &Default::default()).unwrap())
        .unwrap();
    let live = state.upstreams.named("live").unwrap();
    live.refresh_health().await;
    assert!(live.refresh_models().await);
    let app = router(state.clone());
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        let (status, e, _) = post_chat(&app, "m").await;
        assert_eq!(status, 200, "{e}");
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the hung upstream's model list was asked while requests waited"
    );
    assert_eq!(fake.generations(), 3);
}

/// A server that answers like vLLM (`/health` an empty 200) or Ollama (no
/// `/health`): only `/v1/models` says what it serves.
async fn engine_like(empty_health: bool) -> String {
    use axum::routing::get;
    let mut app = Router::new().route(
        "/v1/models",
        get(|| async {
            axum::Json(json!({"object": "list", "data": [{"id": "m", "object": "model"}]}))
        }),
    );
    if empty_health {
        app = app.route("/health", get(|| async { "" }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn vllm_and_ollama_style_upstreams_are_ready_by_their_model_list() {
    for (engine, empty_health) in [("vllm", true), ("ollama", false)] {
        let url = engine_like(empty_health).await;
        let vars: BTreeMap<String, String> = [("VPS_ENDPOINT".to_string(), url)].into();
        let state =
            build_state(OrchestratorConfig::resolve(None, &vars, &Default::default()).unwrap())
                .unwrap();
        let u = state.upstreams.first();
        u.refresh_health().await;
        assert_eq!(u.kind(), UpstreamKind::OpenAi, "{engine}");
        assert!(u.is_ready(), "{engine}: {:?}", u.report());
        assert_eq!(u.models(), Some(vec!["m".to_string()]), "{engine}");
        let app = router(state.clone());
        let (status, v) = get_json(&app, "/health/ready").await;
        assert_eq!(status, 200, "{engine}: {v}");
        let (_, h) = get_json(&app, "/health").await;
        assert_eq!(h["status"], "healthy", "{engine}: {h}");
        assert_eq!(h["upstreams"][0]["kind"], "openai", "{engine}: {h}");
    }
}
