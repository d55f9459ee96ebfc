//! Runs the real `cerebrum prepare` binary: from a file, from stdin, with
//! `--json`, and on bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cerebrum");

/// A Python prompt of about 6 KB whose instruction names `apply_discount`.
fn prompt() -> String {
    let mut text = String::new();
    for i in 0..16 {
        text.push_str(&format!(
            "def report_section_{i}(rows, title=\"section {i}\"):\n    lines = [title.upper()]\n    for row in rows:\n        lines.append(f\"{{row.name}}: {{row.value_{i}}}\")\n    return \"\\n\".join(lines)\n\n"
        ));
    }
    text.push_str("def apply_discount(order, percent):\n    if percent < 0 or percent > 100:\n        raise ValueError(percent)\n    order.total = order.total * (100 - percent) / 100\n    return order\n\n");
    for i in 16..24 {
        text.push_str(&format!(
            "def report_section_{i}(rows, title=\"section {i}\"):\n    lines = [title.upper()]\n    for row in rows:\n        lines.append(f\"{{row.name}}: {{row.value_{i}}}\")\n    return \"\\n\".join(lines)\n\n"
        ));
    }
    text.push_str("# INSTRUCTION: make apply_discount round the total to cents\n");
    text
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("prompt_cli_{}_{name}", std::process::id()));
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cerebrum");
    {
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or_default())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait for cerebrum")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn check_prepared(text: &str) {
    assert!(
        text.starts_with(
            "# INSTRUCTION: make apply_discount round the total to cents\n\n```python\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "def apply_discount(order, percent):\n    if percent < 0 or percent > 100:\n        raise ValueError(percent)\n    order.total = order.total * (100 - percent) / 100\n    return order\n"
    ));
    assert!(text.contains("lines omitted …"));
    assert!(text.len() < prompt().len() / 2);
}

#[test]
fn prepare_from_file() {
    let path = temp_file("file.py", prompt().as_bytes());
    let out = run(&["prepare", path.to_str().expect("path")], None);
    assert!(out.status.success(), "{out:?}");
    check_prepared(&stdout(&out));
    let _ = std::fs::remove_file(path);
}

#[test]
fn prepare_from_stdin() {
    let out = run(&["prepare", "-"], Some(prompt().as_bytes()));
    assert!(out.status.success(), "{out:?}");
    check_prepared(&stdout(&out));
    // No FILE means stdin too.
    let out = run(&["prepare"], Some(prompt().as_bytes()));
    assert!(out.status.success(), "{out:?}");
    check_prepared(&stdout(&out));
}

#[test]
fn prepare_json() {
    let out = run(
        &["prepare", "--json", "--language", "py", "-"],
        Some(prompt().as_bytes()),
    );
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
    assert_eq!(v["applied"], true);
    assert_eq!(v["language"], "py");
    assert_eq!(
        v["instruction"],
        "# INSTRUCTION: make apply_discount round the total to cents"
    );
    let prompt_text = v["prompt"].as_str().expect("prompt string");
    assert!(prompt_text.contains("```py\ndef ") || prompt_text.contains("```py\n# … "));
    let stats = &v["stats"];
    assert_eq!(stats["original_chars"], prompt().chars().count());
    assert_eq!(stats["final_chars"], prompt_text.chars().count());
    assert!(
        stats["chunks_total"].as_u64().unwrap_or(0) >= stats["chunks_unique"].as_u64().unwrap_or(0)
    );
    assert!(stats["chunks_kept"].as_u64().unwrap_or(0) >= 1);
    assert!(stats["reduction_percent"].as_f64().unwrap_or(0.0) > 50.0);
    assert!(stats["elapsed_us"].is_u64());
    assert!(stats["skipped_reason"].is_null());
    let ranges = stats["kept_ranges"].as_array().expect("kept_ranges");
    assert!(!ranges.is_empty());
    for r in ranges {
        assert!(r["start"].as_u64() < r["end"].as_u64());
        assert!(r["start_line"].as_u64() <= r["end_line"].as_u64());
    }
}

#[test]
fn small_prompt_passes_through() {
    let out = run(&["prepare"], Some(b"print('hi')\n# TODO: greet by name\n"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "print('hi')\n# TODO: greet by name\n");
}

#[test]
fn missing_file_exits_2() {
    let out = run(&["prepare", "/nonexistent/cerebrum-prompt.txt"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /nonexistent/cerebrum-prompt.txt"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn invalid_utf8_exits_2() {
    let out = run(&["prepare", "-"], Some(b"def f():\n    return '\xff'\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid UTF-8"), "{err}");
    let path = temp_file("bad.txt", b"ok\xc3");
    let out = run(&["prepare", path.to_str().expect("path")], None);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_file(path);
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = run(&["prepare", "--bogus"], None);
    assert_eq!(out.status.code(), Some(2));
}
