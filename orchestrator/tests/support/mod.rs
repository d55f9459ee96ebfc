//! Harness for the client tests (`cli_*.rs`): a real `cerebrum-node` with the
//! real SmolLM2 model and a real `cerebrum serve` on loopback ports, the
//! `cerebrum` binary under test, and a tiny HTTP GET for checking the node.

#![allow(dead_code)] // Each test file uses a part.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The node key the harness uses.
pub const KEY: &str = "cli-test-key-0123456789abcdef";

/// The `cerebrum` binary under test.
pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cerebrum"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The node binary next to this test's target directory, built when missing.
pub fn node_binary() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().expect("current_exe");
    // target/release/deps/<test> → target/release/cerebrum-node
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join("cerebrum-node");
    if !path.is_file() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "cerebrum-node"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build -p cerebrum-node");
        assert!(status.success(), "cargo build -p cerebrum-node failed");
    }
    assert!(path.is_file(), "{} missing after building", path.display());
    path
}

/// The SmolLM2 GGUF, fetched once (and cached) by `scripts/fetch-model`.
pub fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new(workspace_root().join("scripts/fetch-model"))
            .arg("smollm2")
            .env_remove("CEREBRUM_MODELS_DIR")
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/fetch-model");
        assert!(out.status.success(), "scripts/fetch-model failed");
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.is_file(), "fetch-model printed {path:?}, not a file");
        path
    })
    .clone()
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
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

/// A node (optional) and an orchestrator in front of it.
pub struct Stack {
    /// The orchestrator's base URL.
    pub url: String,
    /// The node's base URL (nothing listens there in [`Stack::without_node`]).
    pub node_url: String,
    orchestrator: Option<Proc>,
    node: Option<Proc>,
    /// Logs, models.
    pub dir: Scratch,
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port}");
}

fn log_file(dir: &Scratch, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).expect("create log file")
}

impl Stack {
    /// The real node with SmolLM2 and an orchestrator in front of it, ready.
    pub fn live(tag: &str, orchestrator_env: &[(&str, &str)]) -> Stack {
        let dir = Scratch::new(tag);
        let models = dir.join("models");
        std::fs::create_dir_all(&models).expect("models dir");
        std::os::unix::fs::symlink(model_path(), models.join("smollm2.gguf"))
            .expect("link the model");
        let node_port = free_port();
        let node = Command::new(node_binary())
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CEREBRUM_API_KEY", KEY)
            .env("CEREBRUM_VPS_PORT", node_port.to_string())
            .env("CEREBRUM_MODELS_DIR", &models)
            .env("CEREBRUM_DEFAULT_MODEL", "smollm2")
            .env("CEREBRUM_N_THREADS", "2")
            .env("CEREBRUM_RAM_FLOOR_MB", "256")
            .env("MAX_CPU_PERCENT", "100")
            .env("LOG_LEVEL", "info,llama-cpp-2=warn")
            .stdout(Stdio::null())
            .stderr(log_file(&dir, "node.log"))
            .spawn()
            .expect("spawn cerebrum-node");
        let node = Proc(node);
        wait_listening(node_port, "cerebrum-node");
        let mut stack = Self::orchestrator(
            dir,
            &format!("http://127.0.0.1:{node_port}"),
            orchestrator_env,
        );
        stack.node = Some(node);
        stack.wait_ready();
        stack
    }

    /// An orchestrator whose node endpoint has nothing listening.
    pub fn without_node(tag: &str, orchestrator_env: &[(&str, &str)]) -> Stack {
        let node_url = format!("http://127.0.0.1:{}", free_port());
        Self::orchestrator(Scratch::new(tag), &node_url, orchestrator_env)
    }

    fn orchestrator(dir: Scratch, node_url: &str, env: &[(&str, &str)]) -> Stack {
        let port = free_port();
        let mut cmd = Command::new(cli());
        cmd.args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--vps-endpoint",
            node_url,
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VPS_API_KEY", KEY)
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "orchestrator.log"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = Proc(cmd.spawn().expect("spawn cerebrum serve"));
        wait_listening(port, "cerebrum serve");
        Stack {
            url: format!("http://127.0.0.1:{port}"),
            node_url: node_url.to_owned(),
            orchestrator: Some(child),
            node: None,
            dir,
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(&self.url, "/health/ready").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the stack did not become ready:\n{}", self.logs());
    }

    /// Sequences the node is generating now (its public `/health`).
    pub fn node_active_sequences(&self) -> u64 {
        let (status, body) = http_get(&self.node_url, "/health");
        assert_eq!(status, 200, "node /health: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("node /health is JSON");
        v["active_sequences"].as_u64().expect("active_sequences")
    }

    /// Polls until the node generates nothing; false on timeout.
    pub fn wait_node_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.node_active_sequences() == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Polls until the node generates at least one sequence; false on timeout.
    pub fn wait_node_busy(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.node_active_sequences() > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The tails of both logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["node.log", "orchestrator.log"] {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            out.push_str(&format!("--- {name} ---\n{}\n", tail.join("\n")));
        }
        out
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

/// `GET base+path` over plain HTTP/1.0: (status, body). Status 0 when nothing answers.
pub fn http_get(base: &str, path: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let Ok(mut stream) = TcpStream::connect(host) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
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
