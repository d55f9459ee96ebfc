//! Third-party engines behind the orchestrator: llama.cpp's own `llama-server`,
//! built (once, cached) by the project's `scripts/build-llama-server`, run on a
//! loopback port with a real GGUF.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{Server, free_port, http_get, poll, script_path, tail};

/// The `llama-server` binary, built (once, cached under
/// `~/.cache/cerebrum/peers`) by `scripts/build-llama-server`: a no-op when
/// cached, about 4 minutes on two cores when not.
pub fn llama_server_path() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let path = script_path(&BIN, "build-llama-server", &[]).join("llama-server");
    assert!(
        path.is_file(),
        "scripts/build-llama-server left no {}",
        path.display()
    );
    path
}

/// The Python of a virtualenv holding llama-cpp-python's own OpenAI server (the
/// original Cerebrum's engine), installed (once, cached under
/// `~/.cache/cerebrum/peers`) by `scripts/build-llama-cpp-python`: a no-op when
/// cached, about 4 minutes on two cores when not. Run it as
/// `PYTHON -m llama_cpp.server`.
pub fn llama_cpp_python_path() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let path = script_path(&BIN, "build-llama-cpp-python", &[]);
    assert!(
        path.is_file(),
        "scripts/build-llama-cpp-python left no {}",
        path.display()
    );
    path
}

/// Slots (`--parallel`) every harness llama-server runs.
pub const LLAMA_SLOTS: usize = 2;
/// Its whole context (`-c`), shared by the slots: 1024 tokens each.
pub const LLAMA_CONTEXT: usize = 2048;
/// How long it may take to load its model and answer `/health` 200.
const LOAD_WITHIN: Duration = Duration::from_secs(120);

/// A running `llama-server` serving one model under one name; killed on drop.
pub struct LlamaServer {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// The one model name it serves (`--alias`).
    pub alias: String,
    args: Vec<OsString>,
    log: PathBuf,
}

impl LlamaServer {
    /// Starts `llama-server -m MODEL --alias ALIAS [--api-key KEY]` on a free
    /// loopback port (one thread, [`LLAMA_SLOTS`] slots, [`LLAMA_CONTEXT`]
    /// tokens of context, no web UI) and waits until its `/health` answers 200,
    /// which it does once the model is loaded (503 "Loading model" before).
    pub fn start(model: &Path, alias: &str, api_key: Option<&str>) -> LlamaServer {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "cerebrum-test-llama-server-{port}-{}.log",
            std::process::id()
        ));
        let args = Self::args(model, alias, port, api_key);
        let mut server = LlamaServer {
            child: Self::spawn(&args, &log),
            url: format!("http://127.0.0.1:{port}"),
            port,
            alias: alias.to_string(),
            args,
            log,
        };
        server.wait_loaded();
        server
    }

    fn args(model: &Path, alias: &str, port: u16, api_key: Option<&str>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--model".into(), model.into()];
        for arg in [
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            // One thread: tests run two at a time on two cores (see `Node::spawn`).
            "--threads",
            "1",
            "--threads-batch",
            "1",
            "--ctx-size",
            &LLAMA_CONTEXT.to_string(),
            "--parallel",
            &LLAMA_SLOTS.to_string(),
            "--no-webui",
            "--log-colors",
            "off",
        ] {
            args.push(arg.into());
        }
        if let Some(key) = api_key {
            args.extend(["--api-key".into(), key.into()]);
        }
        args
    }

    fn spawn(args: &[OsString], log: &Path) -> Child {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open llama-server log");
        Command::new(llama_server_path())
            .args(args)
            // Its LLAMA_ARG_* variables must not leak in from the test's environment.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::from(file.try_clone().expect("clone log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn llama-server")
    }

    /// Polls `/health` (open without the key) until 200; panics with the log
    /// when the process exits or the model is not loaded in time.
    fn wait_loaded(&mut self) {
        let mut exited = None;
        let loaded = poll(LOAD_WITHIN, Duration::from_millis(50), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                exited = Some(status);
                return true;
            }
            http_get(&self.url, "/health").0 == 200
        });
        if let Some(status) = exited {
            panic!(
                "llama-server exited ({status}) before loading its model; its log:\n{}",
                tail(&self.log(), 40)
            );
        }
        assert!(
            loaded,
            "llama-server on {} did not load its model within {LOAD_WITHIN:?}; its log:\n{}",
            self.port,
            tail(&self.log(), 40)
        );
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again as it was, on the same port, after [`LlamaServer::kill`];
    /// returns once its model is loaded.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.args, &self.log);
        self.wait_loaded();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- llama-server log (last lines) ---\n{}",
                tail(&self.log(), 40)
            );
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Server for LlamaServer {
    fn url(&self) -> &str {
        &self.url
    }
}
