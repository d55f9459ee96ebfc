//! The node's panels of the Grafana dashboard (`deploy/grafana/cerebrum.json`)
//! against what a real node exports once it has served a streamed answer with
//! the real model: every series they query shows in its `/metrics`.

use cerebrum_testkit::dashboard::{exported, queried};
use cerebrum_testkit::*;
use serde_json::json;

#[tokio::test]
async fn every_node_panel_queries_a_series_it_exports() {
    let node = Node::start("dashboard", &[]);
    let events = stream_events(
        &node,
        "/v1/chat/completions",
        json!({"model": SMOLLM, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "stream": true}),
    )
    .await;
    assert!(events.last().is_some_and(|e| e == "[DONE]"), "{events:?}");
    let text = metrics(&node).await;
    let have = exported(&text);
    let wanted = queried(true);
    assert!(wanted.len() >= 12, "the node's panels query {wanted:?}");
    let missing: Vec<_> = wanted.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "panels query {missing:?}, not in:\n{text}"
    );
    for series in [
        r#"cerebrum_node_time_to_first_token_seconds_count{model="smollm2"} 1"#,
        r#"cerebrum_node_queue_wait_seconds_count{model="smollm2"} 1"#,
        r#"cerebrum_node_generated_tokens_total{model="smollm2"} 4"#,
        r#"cerebrum_node_http_request_duration_seconds_count{route="/v1/chat/completions",status="200"} 1"#,
    ] {
        assert!(text.contains(series), "{series} not in:\n{text}");
    }
}
