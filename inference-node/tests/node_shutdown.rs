//! SIGTERM with streams open, on the real process and model: the node refuses
//! new work, lets streams run for the grace, then ends each with an error event
//! (and `[DONE]` on OpenAI streams) and exits within grace + flush.

use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};

async fn open(node: &Node, path: &str, body: Value) -> futures::stream::BoxStream<'static, String> {
    let r = client()
        .post(format!("{}{path}", node.url))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.bytes_stream()
        .eventsource()
        .map(|e| {
            e.map(|e| e.data)
                .unwrap_or_else(|e| format!("<broken: {e}>"))
        })
        .boxed()
}

#[tokio::test]
async fn sigterm_ends_open_streams_with_an_error_event_and_exits_within_the_bound() {
    let mut node = Node::start(
        "shutdown",
        &[
            ("CEREBRUM_SHUTDOWN_GRACE_SECS", "2"),
            ("CEREBRUM_PARALLEL", "2"),
        ],
    );
    let long = |stream: bool| json!({"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": 4000, "temperature": 0, "stream": stream});
    let mut cerebrum = open(&node, "/v1/inference/stream", long(false)).await;
    let mut openai = open(&node, "/v1/completions", long(true)).await;
    // Both are generating.
    assert!(cerebrum.next().await.unwrap().contains("token"));
    assert!(openai.next().await.unwrap().contains("choices"));

    terminate(&node.child);
    let signalled = Instant::now();
    // New work is refused at once while the open streams go on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = match client()
        .post(format!("{}/v1/inference", node.url))
        .header("x-api-key", KEY)
        .json(&json!({"prompt": "Hi", "max_tokens": 2}))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    };
    // The listener is closed once draining starts; a request that still gets in is refused.
    assert!(
        status == 503 || status == 0,
        "a new request during shutdown got {status}: {body}"
    );

    let (mut c_tail, mut o_tail) = (Vec::new(), Vec::new());
    while let Some(e) = cerebrum.next().await {
        c_tail.push(e);
    }
    while let Some(e) = openai.next().await {
        o_tail.push(e);
    }
    let cut_after = signalled.elapsed();
    assert!(
        cut_after >= Duration::from_secs(2),
        "streams ended before the grace: {cut_after:?}"
    );
    let last: Value = serde_json::from_str(c_tail.last().unwrap()).unwrap();
    assert_eq!(last["code"], "vps_unavailable", "{last}");
    assert_eq!(last["done"], true, "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("shutting down"),
        "{last}"
    );
    assert_eq!(o_tail.last().unwrap(), "[DONE]", "{o_tail:?}");
    let error: Value = serde_json::from_str(&o_tail[o_tail.len() - 2]).unwrap();
    assert_eq!(error["error"]["code"], "vps_unavailable", "{error}");

    // And the process is gone within grace + flush (2 s + 2 s), with a margin.
    let exited = poll(Duration::from_secs(8), Duration::from_millis(50), || {
        matches!(node.child.try_wait(), Ok(Some(_)))
    });
    assert!(
        exited,
        "node still running {:?} after SIGTERM",
        signalled.elapsed()
    );
    eprintln!(
        "streams cut {cut_after:?} after SIGTERM; process exited by {:?}",
        signalled.elapsed()
    );
}
