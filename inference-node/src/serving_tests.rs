//! The node served in process on a real loopback socket with the real SmolLM2
//! model, for what needs a hand inside: a worker made to panic (the trigger is
//! compiled into unit tests only) and the registry's leases.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cerebrum_testkit::{KEY, ModelDir, SMOLLM, client};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::config::NodeConfig;
use crate::http::AppState;
use crate::server::build_state;

struct Served {
    url: String,
    state: AppState,
    _models: ModelDir,
}

async fn serve(tag: &str, extra: &[(&str, &str)]) -> Served {
    let models = ModelDir::new(tag);
    let dir = models.dir.to_string_lossy().into_owned();
    let mut env: BTreeMap<String, String> = [
        ("CEREBRUM_API_KEY", KEY),
        ("CEREBRUM_MODELS_DIR", dir.as_str()),
        ("CEREBRUM_DEFAULT_MODEL", SMOLLM),
        ("CEREBRUM_N_THREADS", "1"),
        ("CEREBRUM_RAM_FLOOR_MB", "256"),
        ("MAX_CPU_PERCENT", "100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let config = NodeConfig::resolve(None, &env, &Default::default()).unwrap();
    let state = build_state(config);
    let app = crate::app::router(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Served {
        url,
        state,
        _models: models,
    }
}

async fn open_stream(
    url: &str,
    path: &str,
    body: Value,
) -> impl futures::Stream<Item = String> + Unpin {
    let r = client()
        .post(format!("{url}{path}"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.bytes_stream()
        .eventsource()
        .map(|e| e.expect("sse").data)
        .boxed()
}

async fn get_json(url: &str, path: &str) -> Value {
    client()
        .get(format!("{url}{path}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn metrics(url: &str) -> String {
    client()
        .get(format!("{url}/metrics"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_ends_every_stream_with_an_error_and_the_model_comes_back() {
    let node = serve("panic", &[("CEREBRUM_PARALLEL", "2")]).await;
    // A long answer, decoding when the worker dies.
    let mut long = open_stream(
        &node.url,
        "/v1/inference/stream",
        json!({"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": 4000, "temperature": 0}),
    )
    .await;
    let first: Value = serde_json::from_str(&long.next().await.unwrap()).unwrap();
    assert!(first["token"].is_string(), "{first}");
    // A second request, on the OpenAI stream, whose first sample panics the worker.
    let trigger = format!("Hello {}", crate::engine::worker_panic_trigger());
    let mut doomed = open_stream(
        &node.url,
        "/v1/completions",
        json!({"prompt": trigger, "max_tokens": 20, "stream": true}),
    )
    .await;

    let mut tail = Vec::new();
    while let Some(e) = long.next().await {
        tail.push(e);
    }
    let last: Value = serde_json::from_str(tail.last().unwrap()).unwrap();
    assert_eq!(last["code"], "model_unavailable", "{last}");
    assert_eq!(last["done"], true, "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("crashed"),
        "{last}"
    );

    let mut openai = Vec::new();
    while let Some(e) = doomed.next().await {
        openai.push(e);
    }
    assert_eq!(openai.last().unwrap(), "[DONE]", "{openai:?}");
    let error: Value = serde_json::from_str(&openai[openai.len() - 2]).unwrap();
    assert_eq!(error["error"]["code"], "model_unavailable", "{openai:?}");

    // Nothing looks busy or loaded: the dead engine is out of every figure.
    let health = get_json(&node.url, "/health").await;
    assert_eq!(health["active_sequences"], 0, "{health}");
    assert_eq!(health["models_in_cache"], json!([]), "{health}");
    let m = metrics(&node.url).await;
    for gauge in [
        "cerebrum_node_active_sequences 0",
        "cerebrum_node_queued_requests 0",
        "cerebrum_node_loaded_models 0",
    ] {
        assert!(m.contains(gauge), "{gauge} not in:\n{m}");
    }

    // The next request loads the model afresh and is answered.
    let r: Value = client()
        .post(format!("{}/v1/inference", node.url))
        .header("x-api-key", KEY)
        .json(&json!({"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["result"].as_str().unwrap().contains("Paris"), "{r}");
    let m = metrics(&node.url).await;
    assert!(m.contains("cerebrum_node_model_loads_total 2"), "{m}");
    assert_eq!(node.state.registry.loaded(), vec![SMOLLM.to_string()]);
}

/// The race the lease closes: a request that has its engine but has not yet
/// submitted anything. The old registry handed out a bare `Arc<Engine>`, so an
/// unloader running at that moment saw an idle engine and unloaded it (the
/// request then ran on an unaccounted copy, and the next one loaded a second).
/// Here the lease is held across exactly that moment, deterministically.
#[tokio::test]
async fn a_request_holding_its_engine_is_counted_before_it_submits() {
    let node = serve("lease", &[]).await;
    let registry = &node.state.registry;
    let lease = registry.get(SMOLLM).await.unwrap();
    assert_eq!(lease.stats().leases(), 1);
    assert!(lease.stats().busy());
    assert_eq!(registry.unload_idle(Duration::ZERO), Vec::<String>::new());
    let refused = registry.unload(SMOLLM).unwrap_err();
    assert!(refused.contains("serving 1 request"), "{refused}");
    // /v1/cleanup is unload_idle(0) behind HTTP: it leaves it too.
    let cleanup: Value = client()
        .post(format!("{}/v1/cleanup", node.url))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleanup["unloaded"], json!([]), "{cleanup}");

    // A second lookup shares the engine (no second load) and counts itself.
    let second = registry.get(SMOLLM).await.unwrap();
    assert_eq!(second.stats().leases(), 2);
    drop(second);
    drop(lease);
    assert_eq!(
        registry.unload_idle(Duration::ZERO),
        vec![SMOLLM.to_string()]
    );
    let m = metrics(&node.url).await;
    assert!(m.contains("cerebrum_node_model_loads_total 1"), "{m}");
}

/// A chat of more than `MAX_MESSAGES` turns is refused before any rendering.
#[tokio::test]
async fn too_many_messages_are_refused_naming_the_field() {
    use cerebrum_shared::limits::MAX_MESSAGES;
    let node = serve("messages", &[]).await;
    let many = vec![json!({"role": "user", "content": ""}); MAX_MESSAGES + 1];
    for path in ["/v1/chat/completions", "/tokenize"] {
        let r = client()
            .post(format!("{}{path}", node.url))
            .header("x-api-key", KEY)
            .json(&json!({"messages": many}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{path}");
        let body: Value = r.json().await.unwrap();
        let field = if path == "/tokenize" {
            &body["field"]
        } else {
            &body["error"]["param"]
        };
        assert_eq!(field, "messages", "{path}: {body}");
        assert!(body.to_string().contains("at most 1024"), "{body}");
    }
    // Nothing was loaded to answer it.
    assert!(node.state.registry.loaded().is_empty());
}

struct FakeMemory {
    total: u64,
    available: u64,
}

impl crate::registry::MemoryProbe for FakeMemory {
    fn memory(&self) -> (u64, u64) {
        (self.total, self.available)
    }
}

/// The registry checks the real GGUF's estimate against the memory figures
/// before loading, and refuses with the numbers: 503 when it does not fit now,
/// 500 `model_load_failed` when it never can.
#[tokio::test]
async fn a_model_that_does_not_fit_is_refused_before_loading_with_the_numbers() {
    use cerebrum_shared::error::{ApiError, ErrorCode};

    use crate::engine::EngineOptions;
    use crate::registry::{ModelRegistry, RegistryError, build_catalog};
    const MIB: u64 = 1 << 20;
    let models = ModelDir::new("fit");
    let registry = |total: u64, available: u64| {
        ModelRegistry::new(
            build_catalog(&models.dir, &BTreeMap::new()),
            Some(SMOLLM.into()),
            EngineOptions {
                parallel: 2,
                context_size: 2048,
                n_threads: 1,
                n_batch: 512,
                prompt_cache: true,
            },
            1,
            256 * MIB,
            std::sync::Arc::new(FakeMemory { total, available }),
            Default::default(),
        )
    };
    // SmolLM2 with 2 x 2048: ~323 MiB (file 94 + KV 90 + margin 139).
    let now = registry(8192 * MIB, 500 * MIB);
    let Err(e) = now.get(SMOLLM).await else {
        panic!("loaded with 244 MiB to spare")
    };
    assert!(matches!(e, RegistryError::DoesNotFit(_)), "{e}");
    let msg = e.to_string();
    for figure in [
        "~323 MiB",
        "file 94",
        "KV cache 90",
        "2 slots x 2048 tokens",
        "500 MiB available",
        "256 MiB floor",
    ] {
        assert!(msg.contains(figure), "{figure} missing: {msg}");
    }
    let api = ApiError::from(e);
    assert_eq!((api.code, api.status), (ErrorCode::VpsOverloaded, 503));
    assert!(now.loading().is_empty() && now.loaded().is_empty());

    let never = registry(500 * MIB, 500 * MIB);
    let e = never.get(SMOLLM).await.err().expect("refused");
    assert!(e.to_string().contains("can never fit"), "{e}");
    let api = ApiError::from(e);
    assert_eq!((api.code, api.status), (ErrorCode::ModelLoadFailed, 500));

    // With room, it loads.
    let roomy = registry(8192 * MIB, 4096 * MIB);
    assert!(roomy.get(SMOLLM).await.is_ok());
}
