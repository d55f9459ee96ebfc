//! Harness for the client tests (`cli_*.rs`): the node and orchestrator come
//! from `cerebrum-testkit`; here are the `cerebrum` binary under test, a stack
//! as the client sees it (with or without a node), and scratch homes.

#![allow(dead_code)] // Each test file uses a part.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use cerebrum_testkit::{Node, Orchestrator, free_port, http_get, poll, tail};

/// The `cerebrum` binary under test.
pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cerebrum"))
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory named after the test.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cerebrum-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An orchestrator in front of a node (or of a port where nothing listens).
pub struct Stack {
    /// The orchestrator's base URL.
    pub url: String,
    // Fields drop in order: the orchestrator goes before its node.
    orchestrator: Orchestrator,
    node: Option<Node>,
}

impl Stack {
    /// The real node with SmolLM2 and an orchestrator in front of it, ready.
    pub fn live(tag: &str, orchestrator_env: &[(&str, &str)]) -> Stack {
        Self::live_with(tag, &[], orchestrator_env)
    }

    /// [`Stack::live`] with settings for the node too.
    pub fn live_with(
        tag: &str,
        node_env: &[(&str, &str)],
        orchestrator_env: &[(&str, &str)],
    ) -> Stack {
        let node = Node::start(&format!("cli-{tag}"), node_env);
        let node_url = node.url.clone();
        let stack = Self::over(&node_url, Some(node), orchestrator_env);
        assert!(
            stack.orchestrator.wait_ready(Duration::from_secs(60)),
            "the stack did not become ready:\n{}",
            stack.logs()
        );
        stack
    }

    /// An orchestrator whose node endpoint has nothing listening.
    pub fn without_node(orchestrator_env: &[(&str, &str)]) -> Stack {
        let closed = format!("http://127.0.0.1:{}", free_port());
        Self::over(&closed, None, orchestrator_env)
    }

    fn over(node_url: &str, node: Option<Node>, env: &[(&str, &str)]) -> Stack {
        let orchestrator = Orchestrator::start_logged(node_url, env);
        Stack {
            url: orchestrator.url.clone(),
            orchestrator,
            node,
        }
    }

    /// Sequences the node is generating now (its public `/health`).
    pub fn node_active_sequences(&self) -> u64 {
        let node = self.node.as_ref().expect("a stack with a node");
        let (status, body) = http_get(&node.url, "/health");
        assert_eq!(status, 200, "node /health: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("node /health is JSON");
        v["active_sequences"].as_u64().expect("active_sequences")
    }

    /// Polls until the node generates nothing; false on timeout.
    pub fn wait_node_idle(&self, timeout: Duration) -> bool {
        poll(timeout, Duration::from_millis(100), || {
            self.node_active_sequences() == 0
        })
    }

    /// Polls until the node generates at least one sequence; false on timeout.
    pub fn wait_node_busy(&self, timeout: Duration) -> bool {
        poll(timeout, Duration::from_millis(50), || {
            self.node_active_sequences() > 0
        })
    }

    /// The tails of both logs, for failure messages.
    pub fn logs(&self) -> String {
        let node = self.node.as_ref().map(Node::log).unwrap_or_default();
        let orchestrator = self.orchestrator.log();
        [("node.log", node), ("orchestrator.log", orchestrator)]
            .iter()
            .map(|(name, log)| format!("--- {name} ---\n{}\n", tail(log, 30)))
            .collect()
    }

    /// A `cerebrum` client command pointed at this stack, with a clean environment.
    pub fn client(&self, args: &[&str]) -> Command {
        client_command(&self.url, args)
    }
}

/// A `cerebrum` command with only PATH and `CEREBRUM_URL` set.
pub fn client_command(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(cli());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CEREBRUM_URL", url);
    cmd
}

/// A Python file of about 12,000 characters in which one function matters
/// to the question about `load_config`: preparation keeps little of it.
pub fn large_python_file() -> String {
    let mut text = String::new();
    for i in 0..120 {
        text.push_str(&format!(
            "def helper_{i}(values):\n    total = 0\n    for v in values:\n        total += v * {i}\n    return total\n\n"
        ));
    }
    text.push_str(
        "def load_config(path):\n    with open(path) as f:\n        return dict(line.split('=', 1) for line in f if '=' in line)\n",
    );
    text
}
