//! `cerebrum chat` driven through a pseudo-terminal, as a person would use
//! it, against a real stack with the real small model.

mod support;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use rexpect::session::{Options, PtySession, spawn_with_options};
use support::{Scratch, Stack, cli};

/// One REPL at a time: each forks a terminal, and their answers share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const PROMPT: &str = ">>> ";

/// Starts `cerebrum chat` on a terminal, with its own home (for the history
/// file) and no colour, and waits for the first prompt.
fn chat(stack: &Stack, home: &Scratch, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(cli());
    cmd.arg("chat")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home.0)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("CEREBRUM_URL", &stack.url);
    let options = Options::default()
        .timeout_ms(Some(120_000))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(cmd, options).expect("spawn cerebrum chat on a pty");
    p.exp_string("Cerebrum chat").expect("banner");
    p.exp_string(PROMPT).expect("first prompt");
    p
}

/// Types a line and presses Enter.
fn enter(p: &mut PtySession, line: &str) {
    p.send(line).expect("type");
    p.send("\r").expect("enter");
    p.flush().expect("flush");
}

/// Leaves with Ctrl-D and checks the exit status.
fn leave(mut p: PtySession) {
    p.send_control('d').expect("Ctrl-D");
    p.exp_eof().expect("chat ends on Ctrl-D");
    let status = format!("{:?}", p.process().wait().expect("wait"));
    assert!(
        status.starts_with("Exited(") && status.ends_with(", 0)"),
        "chat exits 0: {status}"
    );
}

#[test]
fn a_question_streams_an_answer_then_a_summary_line() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-answer", &[]);
    let home = Scratch::new("chat-answer-home");
    let mut p = chat(&stack, &home, &["--temperature", "0", "--max-tokens", "40"]);

    enter(&mut p, "What is the capital of Japan?");
    p.exp_string("Tokyo").expect("the answer streams");
    let (_, summary) = p
        .exp_regex(r"\d+ tokens? [^\r\n]*smollm2 [^\r\n]* no reduction")
        .expect("summary line");
    assert!(summary.contains("smollm2"), "{summary}");
    p.exp_string(PROMPT).expect("back at the prompt");

    // A """ block is one question, however many lines.
    enter(&mut p, "\"\"\"");
    enter(&mut p, "What is the capital");
    enter(&mut p, "of Japan?");
    enter(&mut p, "\"\"\"");
    p.exp_string("Tokyo").expect("the block's answer");
    p.exp_regex(r"\d+ tokens? [^\r\n]* tok/s ")
        .expect("summary line");
    p.exp_string(PROMPT).expect("prompt");

    // So is a paste (bracketed, as terminals send it) that spans lines.
    p.send("\x1b[200~What is the capital\nof Japan?\x1b[201~")
        .expect("paste");
    p.send("\r").expect("enter");
    p.flush().expect("flush");
    p.exp_string("Tokyo").expect("the paste's answer");
    p.exp_regex(r"\d+ tokens? [^\r\n]* tok/s ")
        .expect("summary line");
    p.exp_string(PROMPT).expect("prompt");

    // Slash commands.
    enter(&mut p, "/models");
    p.exp_string("smollm2").expect("/models lists the model");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "/health");
    p.exp_string("healthy").expect("/health");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "/temperature 3");
    p.exp_string("outside 0..=2")
        .expect("bad values are refused");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "/quit");
    p.exp_eof().expect("/quit leaves");
    let status = format!("{:?}", p.process().wait().expect("wait"));
    assert!(status.ends_with(", 0)"), "chat exits 0: {status}");
}

#[test]
fn ctrl_c_stops_the_answer_frees_the_node_and_keeps_the_repl() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-ctrl-c", &[]);
    let home = Scratch::new("chat-ctrl-c-home");
    let mut p = chat(
        &stack,
        &home,
        &["--temperature", "0", "--max-tokens", "2048"],
    );

    // Counting goes on for a long time at temperature 0.
    enter(&mut p, "1, 2, 3, 4, 5, 6,");
    assert!(
        stack.wait_node_busy(Duration::from_secs(60)),
        "{}",
        stack.logs()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        stack.node_active_sequences() > 0,
        "still generating before Ctrl-C"
    );
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("(stopped)").expect("the answer stops");
    p.exp_string(PROMPT).expect("still in the REPL");
    assert!(
        stack.wait_node_idle(Duration::from_secs(10)),
        "the node's sequence is freed\n{}",
        stack.logs()
    );

    // Ctrl-C at the prompt does not leave either; the REPL still answers.
    p.send_control('c').expect("Ctrl-C at the prompt");
    p.exp_string("(Ctrl-D or /quit leaves)")
        .expect("a hint, not an exit");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "/max_tokens 20");
    p.exp_string("max_tokens: 20").expect("setting changed");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "What is the capital of Japan?");
    p.exp_regex(r"\d+ tokens? [^\r\n]* tok/s ")
        .expect("a later question is answered");
    p.exp_string(PROMPT).expect("prompt");
    leave(p);
}

#[test]
fn history_persists_across_runs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Settings and history need no model: an orchestrator alone will do.
    let stack = Stack::without_node(&[]);
    let home = Scratch::new("chat-history-home");

    let mut p = chat(&stack, &home, &[]);
    enter(&mut p, "/max_tokens 77");
    p.exp_string("max_tokens: 77").expect("set");
    p.exp_string(PROMPT).expect("prompt");
    leave(p);
    let history =
        std::fs::read_to_string(home.join(".cerebrum_history")).expect("history file written");
    assert!(history.contains("/max_tokens 77"), "{history}");

    // A new run: Up brings the line back, Enter runs it again.
    let mut p = chat(&stack, &home, &[]);
    p.send("\x1b[A").expect("Up");
    p.send("\r").expect("Enter");
    p.flush().expect("flush");
    p.exp_string("max_tokens: 77")
        .expect("the previous run's line, recalled");
    p.exp_string(PROMPT).expect("prompt");
    leave(p);
}

#[test]
fn prepare_on_a_large_file_shows_the_reduction_and_the_answer_reports_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-prepare", &[]);
    let home = Scratch::new("chat-prepare-home");
    let file = home.join("config_tools.py");
    std::fs::write(&file, support::large_python_file()).expect("write the file");
    let mut p = chat(&stack, &home, &["--temperature", "0", "--max-tokens", "24"]);

    enter(&mut p, &format!("/file {}", file.display()));
    p.exp_string("attached").expect("attached");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "/prepare What does load_config return?");
    p.exp_string("would send").expect("the prepared prompt");
    p.exp_string("def load_config(path):")
        .expect("the function that matters is kept");
    let (_, figures) = p
        .exp_regex(r"reduction (\d+)% \([\d,]+ [^ ]+ [\d,]+ chars\)")
        .expect("the reduction");
    let percent: u32 = figures
        .trim_start_matches("reduction ")
        .split('%')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a percentage");
    assert!(
        percent >= 30,
        "a 12,000-character file is cut well down: {figures}"
    );
    p.exp_string(PROMPT).expect("prompt");

    // Asking sends the attachment; the summary line reports the same reduction.
    enter(&mut p, "What does load_config return?");
    p.exp_regex(r"\d+ tokens? [^\r\n]*reduction \d+% ")
        .expect("summary with the reduction");
    p.exp_string(PROMPT).expect("prompt");
    leave(p);
}

#[test]
fn colour_on_a_terminal_unless_no_color_is_set() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::without_node(&[]);
    let home = Scratch::new("chat-colour-home");
    for no_color in [false, true] {
        let mut cmd = Command::new(cli());
        cmd.arg("chat")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home.0)
            .env("TERM", "xterm")
            .env("CEREBRUM_URL", &stack.url);
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        // Raw bytes: the escape sequences are what is checked.
        let options = Options::default().timeout_ms(Some(60_000));
        let mut p = spawn_with_options(cmd, options).expect("spawn cerebrum chat on a pty");
        let banner = p.exp_string("Ctrl-D leaves.").expect("banner");
        let bold = "\x1b[1m";
        assert_eq!(
            banner.contains(bold),
            !no_color,
            "NO_COLOR={no_color}: {banner:?}"
        );
        assert_eq!(banner.contains("\x1b[2m"), !no_color, "dim: {banner:?}");
        leave(p);
    }
}
