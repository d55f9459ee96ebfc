//! Test harness shared by the workspace's tests and benches: real `cerebrum-node`
//! and `cerebrum serve` processes on loopback ports, with the real SmolLM2 model
//! fetched (once, cached) by the project's own `scripts/fetch-model`;
//! [`engines`], third-party engines (llama.cpp's `llama-server`) on loopback; and
//! [`openapi`], which holds a tier's answers and router against its OpenAPI document.

pub mod engines;
pub mod openapi;

pub mod dashboard;
pub mod fake;
pub mod router;

pub use engines::{LlamaServer, llama_cpp_python_path, llama_server_path};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The node API key every harness process uses.
pub const KEY: &str = "test-key-0123456789abcdef";
/// The name SmolLM2 is served as.
pub const SMOLLM: &str = "smollm2";
/// The name gemma-3-270m ([`gemma3_path`]) is served as.
pub const GEMMA3: &str = "gemma3";

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A binary of this workspace, next to the running test in the target directory.
/// Built (`cargo build --release -p PACKAGE`) when missing or older than the
/// sources, so no test skips for want of it and none runs a stale one.
pub fn workspace_binary(name: &str, package: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    let own = if package == "cerebrum-node" {
        "inference-node/src"
    } else {
        "orchestrator/src"
    };
    let dirs = ["shared/src", own];
    let newest_source = dirs
        .iter()
        .map(|d| newest_mtime(&workspace_root().join(d)))
        .max()
        .flatten();
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let stale = match (built, newest_source) {
        (Some(b), Some(src)) => b < src,
        (None, _) => true,
        (Some(_), None) => false,
    };
    if stale {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-q", "--release", "-p", package, "--bin", name])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    assert!(
        path.is_file(),
        "{} not found after building",
        path.display()
    );
    path
}

fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        let t = if p.is_dir() {
            newest_mtime(&p)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// Runs `scripts/SCRIPT ARGS` once per process (its log on stderr) and returns
/// the last line it prints on stdout, a path; panics naming the script when it
/// fails.
fn script_path(cell: &'static OnceLock<PathBuf>, script: &str, args: &[&str]) -> PathBuf {
    cell.get_or_init(|| {
        let out = Command::new(workspace_root().join("scripts").join(script))
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/{script}: {e}"));
        assert!(
            out.status.success(),
            "scripts/{script} {} failed ({}); its log is above",
            args.join(" "),
            out.status
        );
        let printed = String::from_utf8(out.stdout).expect("script output is UTF-8");
        PathBuf::from(printed.lines().last().unwrap_or_default().trim())
    })
    .clone()
}

/// A model file, fetched (once, cached) by `scripts/fetch-model NAME`.
fn fetched_model(cell: &'static OnceLock<PathBuf>, name: &str) -> PathBuf {
    let path = script_path(cell, "fetch-model", &[name]);
    assert!(
        path.is_file(),
        "fetch-model {name} printed {path:?}, which is not a file"
    );
    path
}

/// The SmolLM2 GGUF (SmolLM2-135M-Instruct Q4_1, 98 MB), fetched (once, cached)
/// by the project's own script.
pub fn smollm2_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    fetched_model(&PATH, "smollm2")
}

/// The gemma-3-270m GGUF (Q4_K_M, 253 MB), fetched (once, cached) by
/// `scripts/fetch-model gemma3`; served as [`GEMMA3`].
pub fn gemma3_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    fetched_model(&PATH, "gemma3")
}

/// A directory of models for one node: `smollm2.gguf` (a link to the real file)
/// plus extras ([`ModelDir::new`]), or only what is linked in ([`ModelDir::empty`]).
pub struct ModelDir {
    pub dir: PathBuf,
}

impl ModelDir {
    /// A directory serving SmolLM2 as [`SMOLLM`].
    pub fn new(tag: &str) -> Self {
        let models = Self::empty(tag);
        models.link(SMOLLM, &smollm2_path());
        models
    }

    /// A directory with no model in it (a node over it serves what is
    /// [`ModelDir::link`]ed in; give it `CEREBRUM_DEFAULT_MODEL` then).
    pub fn empty(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cerebrum-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// Serves the GGUF at `path` as model `name` (`NAME.gguf`, a link).
    pub fn link(&self, name: &str, path: &Path) -> &Self {
        std::os::unix::fs::symlink(path, self.dir.join(format!("{name}.gguf"))).unwrap();
        self
    }

    /// Adds another name for SmolLM2.
    pub fn alias(&self, name: &str) -> &Self {
        self.link(name, &smollm2_path())
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

/// A port free on loopback now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running node; killed on drop.
pub struct Node {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    models: ModelDir,
    env: Vec<(String, String)>,
}

impl Node {
    /// Starts a node with SmolLM2 as default model and the given extra environment.
    pub fn start(tag: &str, env: &[(&str, &str)]) -> Node {
        Self::start_with(ModelDir::new(tag), env)
    }

    /// Starts a node over a prepared model directory.
    pub fn start_with(models: ModelDir, env: &[(&str, &str)]) -> Node {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let port = free_port();
        let child = Self::spawn(&models, port, &env);
        Node {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            models,
            env,
        }
    }

    fn spawn(models: &ModelDir, port: u16, env: &[(String, String)]) -> Child {
        let mut cmd = Command::new(workspace_binary("cerebrum-node", "cerebrum-node"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CEREBRUM_API_KEY", KEY)
            .env("CEREBRUM_VPS_PORT", port.to_string())
            .env("CEREBRUM_MODELS_DIR", &models.dir)
            .env("CEREBRUM_DEFAULT_MODEL", SMOLLM)
            // One llama.cpp thread per node: tests run two at a time on two cores, and
            // oversubscribed llama.cpp threads spin at their barriers and crawl.
            .env("CEREBRUM_N_THREADS", "1")
            .env("CEREBRUM_RAM_FLOOR_MB", "256")
            .env("MAX_CPU_PERCENT", "100")
            .env("LOG_LEVEL", "info,llama-cpp-2=warn")
            .stdout(Stdio::null())
            .stderr(Self::log_file(models));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn cerebrum-node");
        wait_listening(port, "node");
        child
    }

    fn log_file(models: &ModelDir) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(models.dir.join("node.log"))
            .expect("open node.log")
    }

    /// What the node has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.models.dir.join("node.log")).unwrap_or_default()
    }

    /// Kills the node (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, after [`Node::kill`].
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.models, self.port, &self.env);
    }

    /// The node's models directory.
    pub fn models_dir(&self) -> &Path {
        &self.models.dir
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- node log (last lines) ---\n{}", tail(&self.log(), 40));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(port: u16, what: &str) {
    let listening = poll(Duration::from_secs(30), Duration::from_millis(50), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(listening, "{what} did not start listening on {port}");
}

/// Calls `done` every `every` until it returns true (then true) or `within` has
/// passed (then false). For tests without an async runtime.
pub fn poll(within: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(every);
    }
    false
}

/// A process's resident memory now (`VmRSS`) and its peak so far (`VmHWM`), in
/// KiB, from `/proc/PID/status`. Panics when the process is gone.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running `cerebrum serve`; killed on drop.
pub struct Orchestrator {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// Where its stderr goes, when not to the test's ([`Orchestrator::start_logged`]).
    log: Option<PathBuf>,
    /// Its config file ([`Orchestrator::start_with_config`]), removed on drop.
    config: Option<PathBuf>,
}

/// Where `cerebrum serve` finds its upstream.
enum Upstreams<'a> {
    /// The one-upstream shorthand: `--vps-endpoint URL` and `VPS_API_KEY` = [`KEY`].
    Shorthand(&'a str),
    /// `--config FILE`: whatever the file says.
    Config(&'a Path),
}

impl Orchestrator {
    /// Starts an orchestrator in front of `node_url` with extra environment.
    pub fn start(node_url: &str, env: &[(&str, &str)]) -> Orchestrator {
        Self::spawn(Upstreams::Shorthand(node_url), env, false)
    }

    /// As [`Orchestrator::start`], with its log in a file of its own (read by
    /// [`Orchestrator::log`], shown when a test panics, removed on drop) rather
    /// than on the test's stderr.
    pub fn start_logged(node_url: &str, env: &[(&str, &str)]) -> Orchestrator {
        Self::spawn(Upstreams::Shorthand(node_url), env, true)
    }

    /// Starts `cerebrum serve --config FILE` with `toml` as the file (its
    /// upstreams and keys come from there: no `--vps-endpoint`, no `VPS_API_KEY`)
    /// and extra environment; logged as by [`Orchestrator::start_logged`].
    pub fn start_with_config(toml: &str, env: &[(&str, &str)]) -> Orchestrator {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "cerebrum-test-orchestrator-{}-{n}.toml",
            std::process::id()
        ));
        std::fs::write(&path, toml).expect("write orchestrator config");
        Self::spawn(Upstreams::Config(&path), env, true)
    }

    fn spawn(upstreams: Upstreams, env: &[(&str, &str)], logged: bool) -> Orchestrator {
        let port = free_port();
        let log = logged.then(|| {
            std::env::temp_dir().join(format!(
                "cerebrum-test-orchestrator-{port}-{}.log",
                std::process::id()
            ))
        });
        let stderr = match &log {
            Some(path) => {
                Stdio::from(std::fs::File::create(path).expect("create orchestrator log"))
            }
            None => Stdio::inherit(),
        };
        let mut cmd = Command::new(workspace_binary("cerebrum", "cerebrum"));
        cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(stderr);
        let config = match upstreams {
            Upstreams::Shorthand(url) => {
                cmd.args(["--vps-endpoint", url])
                    .env("VPS_API_KEY", KEY)
                    // The routing table's names (qwen_7b…) are not served here: SmolLM2 stands in.
                    .env("CEREBRUM_FALLBACK_MODEL", SMOLLM);
                None
            }
            Upstreams::Config(file) => {
                cmd.arg("--config").arg(file);
                Some(file.to_path_buf())
            }
        };
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn cerebrum serve");
        let mut exited = None;
        let listening = poll(Duration::from_secs(30), Duration::from_millis(50), || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let orch = Orchestrator {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            log,
            config,
        };
        // Its log is shown as the panic unwinds (`Drop`), or is already on stderr.
        if let Some(status) = exited {
            panic!("cerebrum serve exited ({status}) before listening");
        }
        assert!(listening, "orchestrator did not start listening on {port}");
        orch
    }

    /// What it has logged so far (empty unless started by [`Orchestrator::start_logged`]).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Polls its `/health/ready` (blocking) until it answers 200; false on timeout.
    pub fn wait_ready(&self, within: Duration) -> bool {
        poll(within, Duration::from_millis(100), || {
            http_get(&self.url, "/health/ready").0 == 200
        })
    }
}

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.config {
            let _ = std::fs::remove_file(path);
        }
        if let Some(path) = &self.log {
            if std::thread::panicking() {
                eprintln!(
                    "--- orchestrator log (last lines) ---\n{}",
                    tail(&self.log(), 40)
                );
            }
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Anything with a base URL.
pub trait Server {
    /// `http://127.0.0.1:PORT`.
    fn url(&self) -> &str;
}

impl Server for Node {
    fn url(&self) -> &str {
        &self.url
    }
}

impl Server for Orchestrator {
    fn url(&self) -> &str {
        &self.url
    }
}

/// A client with a generous timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// POST JSON with the key; returns status, headers and the parsed body.
pub async fn post(
    node: &impl Server,
    path: &str,
    body: serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let r = client()
        .post(format!("{}{path}", node.url()))
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

/// GET with the key; status and parsed body.
pub async fn get(node: &impl Server, path: &str) -> (u16, serde_json::Value) {
    let r = client()
        .get(format!("{}{path}", node.url()))
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

/// `GET base+path` over plain HTTP/1.0, without the key and without an async
/// runtime: (status, body). Status 0 when nothing answers.
pub fn http_get(base: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
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

/// The Prometheus text of `/metrics`.
pub async fn metrics(node: &impl Server) -> String {
    client()
        .get(format!("{}/metrics", node.url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Reads one value from the Prometheus text: the series without labels, else
/// the sum of its labelled series (the orchestrator's per-upstream ones).
pub fn metric(text: &str, name: &str) -> f64 {
    let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(value)
    {
        return v;
    }
    let labelled: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(value)
        .collect();
    assert!(!labelled.is_empty(), "metric {name} not found in:\n{text}");
    labelled.iter().sum()
}

/// Streams an SSE endpoint and returns every `data:` payload.
pub async fn stream_events(node: &impl Server, path: &str, body: serde_json::Value) -> Vec<String> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let r = client()
        .post(format!("{}{path}", node.url()))
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

/// A fake systemd notification socket (`NOTIFY_SOCKET`), to test the readiness
/// and watchdog protocol of the binaries.
pub struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    /// Its path, to pass as `NOTIFY_SOCKET`.
    pub path: PathBuf,
}

impl NotifySocket {
    /// Binds a new socket in the temp directory.
    pub fn bind(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("cerebrum-notify-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Self { socket, path }
    }

    /// Messages received until `wanted` appears as a line, or the time runs out.
    pub fn wait_for(&self, wanted: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(|l| l == wanted);
                seen.push(msg);
                if hit {
                    return seen;
                }
            }
        }
        panic!("no {wanted} within {within:?}; got {seen:?}");
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends SIGTERM to a child process.
pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}
