//! The Grafana dashboard (`deploy/grafana/cerebrum.json`) against what the
//! orchestrator really exports: every series its panels query shows in
//! `/metrics` once a streamed and a whole answer have gone through. The
//! node's panels are checked by `inference-node/tests/dashboard.rs`.

use std::collections::BTreeMap;

use axum::http::Method;
use cerebrum::app::router;
use cerebrum::config::OrchestratorConfig;
use cerebrum::serve::build_state;
use cerebrum_testkit::dashboard::{dashboard, exported, queried};
use cerebrum_testkit::fake::FakeUpstream;
use cerebrum_testkit::router::{request, send};
use serde_json::json;

#[tokio::test]
async fn every_orchestrator_panel_queries_a_series_it_exports() {
    let fake = FakeUpstream::start().await;
    let env: BTreeMap<String, String> = [
        ("VPS_ENDPOINT".to_string(), fake.url.clone()),
        (
            "CEREBRUM_FALLBACK_MODEL".to_string(),
            "fake-model".to_string(),
        ),
    ]
    .into();
    let state =
        build_state(OrchestratorConfig::resolve(None, &env, &Default::default()).unwrap()).unwrap();
    state.upstreams.refresh().await;
    let app = router(state);
    let peer = [127, 0, 0, 1];
    for stream in [true, false] {
        let body = json!({"messages": [{"role": "user", "content": "hi"}], "stream": stream, "max_tokens": 4});
        let (status, _, _) = send(
            &app,
            request(
                Method::POST,
                "/v1/chat/completions",
                body.to_string(),
                peer,
                &[],
            ),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, headers, body) = send(&app, request(Method::GET, "/metrics", "", peer, &[])).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8_lossy(&body);
    let have = exported(&text);
    let wanted = queried(false);
    assert!(
        wanted.len() >= 15,
        "the orchestrator's panels query {wanted:?}"
    );
    let missing: Vec<_> = wanted.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "panels query {missing:?}, not in:\n{text}"
    );
    // Labels the panels group by are there.
    for series in [
        r#"cerebrum_http_request_duration_seconds_count{route="/v1/chat/completions",status="200"} 2"#,
        r#"cerebrum_time_to_first_token_seconds_count{model="fake-model"} 1"#,
        r#"cerebrum_upstream_ready{upstream="vps"} 1"#,
    ] {
        assert!(text.contains(series), "{series} not in:\n{text}");
    }
}

#[test]
fn the_dashboard_is_importable() {
    let d = dashboard();
    assert_eq!(d["uid"], "cerebrum");
    let panels = d["panels"].as_array().unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "ids are unique: {p}");
        assert!(p["gridPos"]["w"].as_u64().is_some(), "{p}");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{p}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{p}");
        assert!(
            targets
                .iter()
                .all(|t| t["expr"].as_str().is_some_and(|e| e.contains("cerebrum_"))),
            "{p}"
        );
    }
    assert_eq!(d["templating"]["list"][0]["type"], "datasource");
}
