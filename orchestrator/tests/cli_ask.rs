//! `cerebrum ask`, `health` and `models` as scripts use them: pipes, stdout,
//! stderr and exit codes, against a real stack with the real small model
//! (and against stacks that cannot serve, for the error paths).

mod support;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use cerebrum_testkit::free_port;
use support::{Stack, client_command};

fn run(mut cmd: std::process::Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run cerebrum")
}

fn run_with_stdin(mut cmd: std::process::Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cerebrum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for cerebrum")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn ask_streams_the_answer_to_stdout_and_the_summary_to_stderr() {
    let stack = Stack::live("ask-stream", &[]);
    let out = run(stack.client(&[
        "ask",
        "--max-tokens",
        "30",
        "--temperature",
        "0",
        "What is the capital of Japan?",
    ]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        code(&out),
        0,
        "stdout: {stdout}\nstderr: {stderr}\n{}",
        stack.logs()
    );
    assert!(stdout.contains("Tokyo"), "{stdout}");
    assert!(
        stdout.ends_with('\n'),
        "the answer ends with a newline: {stdout:?}"
    );
    // The summary: tokens, tok/s, time, model, reduction; plain (not a terminal).
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(summary.contains(" tokens · "), "{stderr}");
    assert!(summary.contains("smollm2"), "{stderr}");
    assert!(summary.contains("no reduction"), "{stderr}");
    assert!(
        !stderr.contains('\x1b') && !stdout.contains('\x1b'),
        "no colour off a terminal"
    );

    // --quiet leaves the summary out; --no-stream prints the same kind of answer at once.
    let out = run(stack.client(&[
        "ask",
        "--no-stream",
        "--quiet",
        "--max-tokens",
        "30",
        "--temperature",
        "0",
        "What is the capital of Japan?",
    ]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Tokyo"));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn ask_reads_piped_stdin_and_prints_json() {
    let stack = Stack::live("ask-stdin", &[]);
    // Piped text with no PROMPT is the whole prompt.
    let out = run_with_stdin(
        stack.client(&["ask", "--max-tokens", "30", "--temperature", "0"]),
        "What is the capital of Japan?\n",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Tokyo"), "{}", text(&out.stdout));

    // With a PROMPT, piped code is attached; --json prints the server's response object.
    let code_text = "def square(x):\n    return x * x\n";
    let out = run_with_stdin(
        stack.client(&[
            "ask",
            "--json",
            "--max-tokens",
            "24",
            "What does this function return?",
        ]),
        code_text,
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(v["model_used"], "smollm2", "{v}");
    assert_eq!(v["source"], "vps");
    assert_eq!(v["language"], "python", "detected from the piped code");
    assert!(v["tokens_generated"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert!(v["result"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
}

#[test]
fn health_and_models_on_a_live_stack() {
    let stack = Stack::live("health-live", &[]);
    let out = run(stack.client(&["health"]));
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!("Cerebrum at {}: healthy", stack.url)),
        "{stdout}"
    );
    assert!(stdout.contains("breaker       closed"), "{stdout}");

    let out = run(stack.client(&["health", "--json"]));
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["status"], "healthy", "{v}");

    let out = run(stack.client(&["models"]));
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(stdout.starts_with("MODEL"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("smollm2")), "{stdout}");

    let out = run(stack.client(&["models", "--json"]));
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["object"], "list");
    assert_eq!(v["available_models"][0], "smollm2", "{v}");
}

#[test]
fn a_busy_orchestrator_is_exit_4_with_a_retry_hint() {
    let stack = Stack::live("ask-busy", &[("CEREBRUM_MAX_IN_FLIGHT", "1")]);
    // A long generation holds the only slot.
    let mut long = stack.client(&[
        "ask",
        "--quiet",
        "--max-tokens",
        "2048",
        "--temperature",
        "0",
        "1, 2, 3, 4, 5, 6,",
    ]);
    let long = support::Proc(
        long.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the long ask"),
    );
    assert!(
        stack.wait_node_busy(Duration::from_secs(60)),
        "{}",
        stack.logs()
    );

    let out = run(stack.client(&["ask", "Hello"]));
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 4, "{stderr}");
    assert!(stderr.contains("busy"), "{stderr}");
    assert!(stderr.contains("retry in"), "{stderr}");

    // The client going away ends the generation on the node.
    drop(long);
    assert!(
        stack.wait_node_idle(Duration::from_secs(10)),
        "{}",
        stack.logs()
    );
}

#[test]
fn errors_a_person_understands_with_exit_codes_scripts_rely_on() {
    // Nothing listens: 3.
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run(client_command(&url, &["ask", "Hello"]));
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 3, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach {url}: is `cerebrum serve` running?")),
        "{stderr}"
    );
    let out = run(client_command(&url, &["health", "--json"]));
    assert_eq!(code(&out), 3);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("JSON even when unreachable");
    assert_eq!(v["status"], "unreachable");

    // The node is down: 4, then the breaker opens: still 4, and it says so.
    let stack = Stack::without_node(&[
        ("CEREBRUM_BREAKER_THRESHOLD", "1"),
        ("CEREBRUM_BREAKER_COOLDOWN_SECS", "60"),
        ("CEREBRUM_MAX_PROMPT_CHARS", "200"),
    ]);
    let out = run(stack.client(&["ask", "Hello"]));
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 4, "{stderr}");
    assert!(
        stderr.contains("the inference node is unavailable"),
        "{stderr}"
    );
    let out = run(stack.client(&["ask", "Hello"]));
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 4, "{stderr}");
    assert!(stderr.contains("circuit breaker is open"), "{stderr}");
    assert!(stderr.contains("retry in"), "{stderr}");
    let out = run(stack.client(&["health"]));
    assert_eq!(code(&out), 4, "health fails when the stack cannot serve");
    assert!(
        text(&out.stdout).contains("degraded"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("cannot serve now"),
        "{}",
        text(&out.stderr)
    );

    // Too large: 5.
    let out = run(stack.client(&["ask", &"x".repeat(300)]));
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 5, "{stderr}");
    assert!(stderr.contains("prompt too large"), "{stderr}");

    // Usage: 2.
    let out = run(stack.client(&["ask"]));
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("no prompt"),
        "{}",
        text(&out.stderr)
    );
    let out = run(stack.client(&["ask", "--max-tokens", "0", "Hello"]));
    assert_eq!(code(&out), 2);
    let out = run(stack.client(&["ask", "--file", "/nonexistent/cerebrum.py", "Hello"]));
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("/nonexistent/cerebrum.py"));
    let out = run(client_command("ftp://example", &["ask", "Hello"]));
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));

    // A server with client keys: no key is refused (5) with a hint; the key
    // from CEREBRUM_CLIENT_KEY is sent as X-API-Key.
    let keyed = Stack::without_node(&[("CEREBRUM_CLIENT_KEYS", "client-key-1")]);
    let out = run(keyed.client(&["ask", "Hello"]));
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 5, "{stderr}");
    assert!(
        stderr.contains("Missing API key") && stderr.contains("CEREBRUM_CLIENT_KEY"),
        "{stderr}"
    );
    // The node's variable is not read (not sent, even when it holds a client
    // key), and the client says so.
    let mut old_name = keyed.client(&["ask", "Hello"]);
    old_name.env("CEREBRUM_API_KEY", "client-key-1");
    let out = run(old_name);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 5, "{stderr}");
    assert!(
        stderr.contains("CEREBRUM_API_KEY is set but not read"),
        "{stderr}"
    );
    let mut with_key = keyed.client(&["ask", "Hello"]);
    with_key.env("CEREBRUM_CLIENT_KEY", "client-key-1");
    let out = run(with_key);
    assert_eq!(
        code(&out),
        4,
        "past the key check, on to the (absent) node: {}",
        text(&out.stderr)
    );
    let out = run(keyed.client(&["ask", "--key", "wrong", "Hello"]));
    assert_eq!(code(&out), 5, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Invalid API key"),
        "{}",
        text(&out.stderr)
    );

    // The codes are documented where scripts' authors look.
    let out = run(client_command(&url, &["ask", "--help"]));
    let help = text(&out.stdout);
    assert!(help.contains("Exit codes:"), "{help}");
    for line in [
        "3  cannot reach",
        "4  the stack cannot serve",
        "5  the request was refused",
    ] {
        assert!(help.contains(line), "{line} in {help}");
    }
}
