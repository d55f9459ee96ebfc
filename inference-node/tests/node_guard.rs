//! The CPU guard, in its own test binary so no other test's node loads the CPU meanwhile.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cerebrum_testkit::*;
use serde_json::json;

struct Burners(Vec<Child>);

impl Drop for Burners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_health(node: &Node, want_available: bool, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, h) = get(node, "/health").await;
        if h["available"] == want_available {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "health never became available={want_available}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn own_inference_never_trips_the_cpu_guard_but_other_load_does() {
    let node = Node::start(
        "cpuguard",
        &[("MAX_CPU_PERCENT", "50"), ("CEREBRUM_N_THREADS", "2")],
    );

    // 1. The node's own generation keeps both cores busy; it must still admit work.
    let long = client()
        .post(format!("{}/v1/inference/stream", node.url))
        .header("x-api-key", KEY)
        .json(&json!({"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": 4000, "temperature": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, h) = get(&node, "/health").await;
    let total = h["cpu_usage_percent"].as_f64().unwrap();
    assert!(
        total > 50.0,
        "the test did not load the CPU (total {total}%): {h}"
    );
    assert_eq!(h["available"], true, "own inference tripped the guard: {h}");
    let (s, _, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "Hi", "max_tokens": 3}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    drop(long);

    // 2. Other processes burning both cores: refused with a reason, then admitted again.
    let burners = Burners(
        (0..2)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let h = wait_health(&node, false, Duration::from_secs(15)).await;
    assert_eq!(h["status"], "overloaded");
    let (s, headers, b) = post(
        &node,
        "/v1/inference",
        json!({"prompt": "Hi", "max_tokens": 3}),
    )
    .await;
    assert_eq!(s, 503, "{b}");
    assert!(
        b["reason"].as_str().unwrap().contains("other processes"),
        "{b}"
    );
    assert_eq!(headers["retry-after"], "5");
    drop(burners);
    wait_health(&node, true, Duration::from_secs(15)).await;
    let m = metrics(&node).await;
    assert!(
        metric_line(&m, "cerebrum_node_rejections_total{reason=\"cpu\"}") >= 1.0,
        "{m}"
    );
}

fn metric_line(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
