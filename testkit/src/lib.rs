//! Test harness: real `cerebrum-node` processes on loopback with the real SmolLM2 model.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const KEY: &str = "test-key-0123456789abcdef";
pub const SMOLLM: &str = "smollm2";

/// The SmolLM2 GGUF, fetched (once, cached) by the project's own script.
pub fn smollm2_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-model");
        let out = Command::new(script)
            .arg("smollm2")
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/fetch-model");
        assert!(out.status.success(), "scripts/fetch-model failed");
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(
            path.is_file(),
            "fetch-model printed {path:?}, which is not a file"
        );
        path
    })
    .clone()
}

/// A directory of models for one node: `smollm2.gguf` (a link to the real file) plus extras.
pub struct ModelDir {
    pub dir: PathBuf,
}

impl ModelDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cerebrum-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(smollm2_path(), dir.join(format!("{SMOLLM}.gguf"))).unwrap();
        Self { dir }
    }

    /// Adds another name for the same model file.
    pub fn alias(&self, name: &str) -> &Self {
        std::os::unix::fs::symlink(smollm2_path(), self.dir.join(format!("{name}.gguf"))).unwrap();
        self
    }

    /// Writes a file into the directory.
    pub fn write(&self, name: &str, bytes: &[u8]) -> &Self {
        std::fs::write(self.dir.join(name), bytes).unwrap();
        self
    }
}

impl Drop for ModelDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running node; killed on drop.
pub struct Node {
    pub child: Child,
    pub url: String,
    pub port: u16,
    _models: ModelDir,
}

impl Node {
    /// Starts a node with SmolLM2 as default model and the given extra environment.
    pub fn start(tag: &str, env: &[(&str, &str)]) -> Node {
        Self::start_with(ModelDir::new(tag), env)
    }

    pub fn start_with(models: ModelDir, env: &[(&str, &str)]) -> Node {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cerebrum-node"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CEREBRUM_API_KEY", KEY)
            .env("CEREBRUM_VPS_PORT", port.to_string())
            .env("CEREBRUM_MODELS_DIR", &models.dir)
            .env("CEREBRUM_DEFAULT_MODEL", SMOLLM)
            .env("CEREBRUM_N_THREADS", "2")
            .env("CEREBRUM_RAM_FLOOR_MB", "256")
            .env("MAX_CPU_PERCENT", "100")
            .env("LOG_LEVEL", "info,llama-cpp-2=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn cerebrum-node");
        let node = Node {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            _models: models,
        };
        node.wait_ready();
        node
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not start listening on {}", self.port);
    }

    pub fn models_dir(&self) -> &Path {
        &self._models.dir
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// POST JSON with the key; returns status, headers and the parsed body.
pub async fn post(
    node: &Node,
    path: &str,
    body: serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let r = client()
        .post(format!("{}{path}", node.url))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, headers, json)
}

pub async fn get(node: &Node, path: &str) -> (u16, serde_json::Value) {
    let r = client()
        .get(format!("{}{path}", node.url))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

pub async fn metrics(node: &Node) -> String {
    client()
        .get(format!("{}/metrics", node.url))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Reads one value from the Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} not found in:\n{text}"))
}

/// Streams an SSE endpoint and returns every `data:` payload.
pub async fn stream_events(node: &Node, path: &str, body: serde_json::Value) -> Vec<String> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let r = client()
        .post(format!("{}{path}", node.url))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "stream refused");
    let mut events = r.bytes_stream().eventsource();
    let mut out = Vec::new();
    while let Some(ev) = events.next().await {
        out.push(ev.expect("sse parse").data);
    }
    out
}

/// Joins the text of Cerebrum stream events and returns (text, final event).
pub fn cerebrum_text(events: &[String]) -> (String, serde_json::Value) {
    let mut text = String::new();
    let mut last = serde_json::Value::Null;
    for e in events {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        if let Some(t) = v.get("token").and_then(|t| t.as_str()) {
            text.push_str(t);
        } else {
            last = v;
        }
    }
    (text, last)
}
