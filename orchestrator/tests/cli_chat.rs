//! `cerebrum chat` driven through a pseudo-terminal, as a person would use
//! it, against a real stack with the real small model.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use rexpect::session::{Options, PtySession, spawn_with_options};
use serde_json::{Value, json};
use support::{Scratch, Stack, cli};

/// One REPL at a time: each forks a terminal, and their answers share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const PROMPT: &str = ">>> ";

/// The summary line of an answer in a conversation (`·` is not ASCII: any
/// separator will do, see [`on_pty`]).
const SUMMARY: &str = r"\d+ tokens? [^\r\n]*context [\d,]+/[\d,]+ [^\r\n ]+ [\d,]+ cached";

/// Text as rexpect reads it from the terminal: each byte a character.
fn on_pty(text: &str) -> String {
    text.bytes().map(char::from).collect()
}

/// Text rexpect read, back to what the program wrote.
fn from_pty(read: &str) -> String {
    let bytes: Vec<u8> = read
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("rexpect reads bytes"))
        .collect();
    String::from_utf8(bytes).expect("the chat writes UTF-8")
}

/// Starts `cerebrum chat` on a terminal, with its own home (for the history
/// file and the kept conversations) and no colour, and waits for the first prompt.
fn chat(stack: &Stack, home: &Scratch, args: &[&str]) -> PtySession {
    chat_env(stack, home, args, &[])
}

/// [`chat`] with more environment.
fn chat_env(stack: &Stack, home: &Scratch, args: &[&str], env: &[(&str, &Path)]) -> PtySession {
    let mut p = start(stack, home, args, env);
    p.exp_string(PROMPT).expect("first prompt");
    p
}

/// Starts `cerebrum chat` on a terminal and waits for its banner's title.
fn start(stack: &Stack, home: &Scratch, args: &[&str], env: &[(&str, &Path)]) -> PtySession {
    let mut cmd = Command::new(cli());
    cmd.arg("chat")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home.0)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("CEREBRUM_URL", &stack.url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let options = Options::default()
        .timeout_ms(Some(120_000))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(cmd, options).expect("spawn cerebrum chat on a pty");
    p.exp_string("Cerebrum chat").expect("banner");
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

/// One answered question, as the terminal showed it.
#[derive(Debug)]
struct Turn {
    /// The answer as shown, line ends as `\n`, ending with one.
    shown: String,
    /// Tokens the answer took.
    tokens: u64,
    /// The summary's context figures: tokens used and the model's length.
    used: u64,
    length: u64,
    /// The summary's cached prompt tokens.
    cached: u64,
}

/// Asks a question and reads the answer and its summary line.
fn ask(p: &mut PtySession, question: &str) -> Turn {
    enter(p, question);
    p.exp_string(question).expect("the question, echoed");
    let (before, summary) = p.exp_regex(SUMMARY).expect("the summary line");
    p.exp_string(PROMPT).expect("back at the prompt");
    let text = from_pty(&before).replace("\r\n", "\n");
    // The spinner (on the terminal's stderr) ends with a lone carriage
    // return, and the editor's Enter with a line end: the answer comes after.
    let after_spinner = text.rsplit('\r').next().unwrap_or_default();
    let shown = after_spinner.strip_prefix('\n').unwrap_or(after_spinner);
    let number = |s: &str| -> u64 {
        s.trim()
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("a number in {summary:?}"))
    };
    // `context 1,234/2,048 · 1,180 cached`
    let context = summary.split("context ").nth(1).expect("context figure");
    let words: Vec<&str> = context.split_whitespace().collect();
    let [fraction, _, cached, "cached"] = words[..] else {
        panic!("context figures in {summary:?}");
    };
    let (used, length) = fraction.split_once('/').expect("used/length");
    let tokens = summary.split_whitespace().next().expect("tokens");
    Turn {
        shown: shown.to_owned(),
        tokens: number(tokens),
        used: number(used),
        length: number(length),
        cached: number(cached),
    }
}

impl Turn {
    /// The prompt's tokens: all the model read before answering.
    fn prompt(&self) -> u64 {
        self.used - self.tokens
    }
}

/// How the terminal shows a kept answer: as is, ended with a line end.
fn as_shown(answer: &str) -> String {
    if answer.ends_with('\n') {
        answer.to_owned()
    } else {
        format!("{answer}\n")
    }
}

/// A JSON file's messages.
fn messages(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a JSON list: {e}\n{text}", path.display()))
}

/// `[role, content]` of each message.
fn turns(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            let field = |k: &str| {
                m[k].as_str()
                    .unwrap_or_else(|| panic!("{k} in {m}"))
                    .to_owned()
            };
            (field("role"), field("content"))
        })
        .collect()
}

/// The conversation files in a folder, oldest first by name.
fn kept(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in &files {
        assert_eq!(
            f.extension().and_then(|e| e.to_str()),
            Some("json"),
            "only conversation files, no temporary left: {files:?}"
        );
    }
    files
}

/// Where a home's conversations are kept by default.
fn default_store(home: &Scratch) -> PathBuf {
    home.join(".local/state/cerebrum/conversations")
}

/// Words in a text: a floor for its tokens (the tokenizer never joins words).
fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[test]
fn a_question_streams_an_answer_then_a_summary_line() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-answer", &[]);
    let home = Scratch::new("chat-answer-home");
    let mut p = chat(&stack, &home, &["--temperature", "0", "--max-tokens", "40"]);

    enter(&mut p, "What is the capital of Japan?");
    p.exp_string("Tokyo").expect("the answer streams");
    // The reduction comes from the orchestrator's x-cerebrum-preparation header.
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
    p.exp_string("(stopped; the question and its partial answer are left out of the conversation)")
        .expect("the answer stops, and the person is told it is not kept");
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
    let later = ask(&mut p, "What is the capital of Japan?");
    assert!(
        later.shown.contains("Tokyo"),
        "a later question is answered: {later:?}"
    );

    // The stopped question is not in the conversation: only the later turn is.
    let file = home.join("after-ctrl-c.json");
    enter(&mut p, &format!("/save {}", file.display()));
    p.exp_string("saved 2 messages").expect("saved");
    p.exp_string(PROMPT).expect("prompt");
    let saved = turns(&messages(&file));
    assert_eq!(
        saved[0],
        ("user".into(), "What is the capital of Japan?".into())
    );
    assert_eq!(saved[1].0, "assistant");
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

    // Asking sends the attachment; the summary line reports the same
    // reduction (from the orchestrator's x-cerebrum-preparation header).
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

#[test]
fn follow_ups_carry_the_conversation_and_save_writes_it_as_streamed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-memory", &[]);
    let home = Scratch::new("chat-memory-home");
    let mut p = chat(&stack, &home, &["--temperature", "0", "--max-tokens", "24"]);

    let first = ask(&mut p, "What is the capital of Japan?");
    assert!(first.shown.contains("Tokyo"), "{first:?}");
    assert_eq!(
        first.length, 2048,
        "the model card's context_length: {first:?}"
    );
    let second = ask(&mut p, "And of France?");
    assert!(
        second.prompt() >= first.used,
        "the second prompt held the whole first turn: {first:?} {second:?}"
    );
    assert!(
        second.cached * 2 >= first.used,
        "the first turn, sent back byte for byte, came mostly from the node's cache: {first:?} {second:?}"
    );

    let file = home.join("chat.json");
    enter(&mut p, &format!("/save {}", file.display()));
    p.exp_string(&format!("saved 4 messages to {}", file.display()))
        .expect("saved");
    p.exp_string(PROMPT).expect("prompt");
    let text = std::fs::read_to_string(&file).expect("the saved file");
    assert!(
        text.starts_with("[\n  {\n    \"role\": \"user\","),
        "pretty-printed: {text}"
    );
    let saved = turns(&messages(&file));
    let roles: Vec<&str> = saved.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user", "assistant"],
        "{saved:?}"
    );
    assert_eq!(saved[0].1, "What is the capital of Japan?");
    assert_eq!(saved[2].1, "And of France?");
    assert_eq!(as_shown(&saved[1].1), first.shown, "the answer as streamed");
    assert_eq!(
        as_shown(&saved[3].1),
        second.shown,
        "the answer as streamed"
    );

    // The kept copy, written after each answer, holds the same.
    let kept = kept(&default_store(&home));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(messages(&kept[0]), messages(&file));
    leave(p);
}

#[test]
fn load_sends_the_loaded_turns_and_save_round_trips_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-load", &[]);
    let home = Scratch::new("chat-load-home");
    let notes = "Notes from the trip. We flew from Lisbon to Tokyo on a Monday, stayed \
        five nights in Shinjuku, took the train to Kyoto, visited the temples in the \
        morning before the crowds, ate soba at a small place near the station, walked \
        along the river at night, bought tea for the family, and flew home from Osaka \
        on the Sunday after. The weather was mild and it rained only once.";
    let question_1 = format!("{notes}\n\nWhere did we fly from?");
    let pairs = [
        ("system", "You are a helpful assistant. Answer briefly."),
        ("user", question_1.as_str()),
        ("assistant", "You flew from Lisbon."),
    ];
    let loaded = Value::Array(
        pairs
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect(),
    );
    // Written as the chat writes: pretty, `role` before `content`.
    let loaded_text = format!(
        "[\n{}\n]\n",
        pairs
            .iter()
            .map(|(role, content)| format!(
                "  {{\n    \"role\": {},\n    \"content\": {}\n  }}",
                json!(role),
                json!(content)
            ))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let file = home.join("trip.json");
    std::fs::write(&file, &loaded_text).expect("write the conversation");
    let bad = home.join("bad.json");
    std::fs::write(
        &bad,
        "[\n  {\"role\": \"user\", \"content\": \"hi\"},\n  {\"role\": \"bot\", \"content\": \"hello\"}\n]\n",
    )
    .expect("write the bad file");
    let mut p = chat(&stack, &home, &["--temperature", "0", "--max-tokens", "24"]);

    enter(&mut p, &format!("/load {}", file.display()));
    p.exp_string("loaded 3 messages").expect("loaded");
    p.exp_string(PROMPT).expect("prompt");
    // A bad file says what and where, and leaves the conversation as it was.
    enter(&mut p, &format!("/load {}", bad.display()));
    p.exp_string("is not a conversation: unknown variant `bot`, expected one of `system`, `user`, `assistant` at line 3")
        .expect("what is wrong, and where");
    p.exp_string("the conversation is unchanged")
        .expect("unchanged");
    p.exp_string(PROMPT).expect("prompt");
    // Saved straight back: the same bytes.
    let copy = home.join("copy.json");
    enter(&mut p, &format!("/save {}", copy.display()));
    p.exp_string("saved 3 messages").expect("saved");
    p.exp_string(PROMPT).expect("prompt");
    assert_eq!(std::fs::read_to_string(&copy).expect("copy"), loaded_text);

    let question = "What city did we fly home from?";
    let turn = ask(&mut p, question);
    let loaded_words: u64 = turns(loaded.as_array().expect("list"))
        .iter()
        .map(|(_, c)| words(c))
        .sum();
    assert!(
        turn.prompt() >= loaded_words + words(question),
        "the request carried the loaded turns ({loaded_words} words): {turn:?}"
    );

    let out = home.join("out.json");
    enter(&mut p, &format!("/save {}", out.display()));
    p.exp_string("saved 5 messages").expect("saved");
    p.exp_string(PROMPT).expect("prompt");
    let saved = messages(&out);
    assert_eq!(
        saved[..3],
        loaded.as_array().expect("list")[..],
        "the loaded turns, unchanged"
    );
    let new = turns(&saved[3..]);
    assert_eq!(new[0], ("user".into(), question.into()));
    assert_eq!(new[1].0, "assistant");
    assert_eq!(as_shown(&new[1].1), turn.shown, "the answer as streamed");
    leave(p);
}

#[test]
fn continue_resumes_the_last_conversation() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-continue", &[]);
    let home = Scratch::new("chat-continue-home");
    let state = home.join("state");
    let env: &[(&str, &Path)] = &[("XDG_STATE_HOME", &state)];
    let store = state.join("cerebrum/conversations");
    let args = ["--temperature", "0", "--max-tokens", "24"];

    // Nothing to continue yet: said, and a new conversation starts.
    let mut cmd_args = args.to_vec();
    cmd_args.push("--continue");
    let mut p = start(&stack, &home, &cmd_args, env);
    p.exp_string(&format!(
        "no earlier conversation in {}; starting a new one",
        store.display()
    ))
    .expect("nothing to continue");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "/help");
    p.exp_string(&format!("Each conversation is kept in {}", store.display()))
        .expect("/help says where");
    p.exp_string(PROMPT).expect("prompt");
    let first = ask(&mut p, "What is the capital of Japan?");
    leave(p);
    let files = kept(&store);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(messages(&files[0]).len(), 2);

    let mut p = start(&stack, &home, &cmd_args, env);
    p.exp_string("resumed 2 messages from ").expect("resumed");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "/save");
    p.exp_string("/save FILE writes")
        .expect("nothing said yet in this session");
    p.exp_string(PROMPT).expect("prompt");
    let second = ask(&mut p, "And of France?");
    assert!(
        second.prompt() >= first.used,
        "the resumed history was sent: {first:?} {second:?}"
    );
    assert!(
        second.cached * 2 >= first.used,
        "as the first session sent it, so the node's cache served it: {first:?} {second:?}"
    );
    leave(p);

    // The resumed conversation went on in a file of its own; the first is as it was.
    let files = kept(&store);
    assert_eq!(files.len(), 2, "{files:?}");
    let sizes: Vec<usize> = files.iter().map(|f| messages(f).len()).collect();
    let longer = &files[sizes
        .iter()
        .position(|&n| n == 4)
        .expect("a file of 4 messages")];
    assert!(sizes.contains(&2), "{sizes:?}");
    let resumed = turns(&messages(longer));
    assert_eq!(resumed[0].1, "What is the capital of Japan?");
    assert_eq!(resumed[2].1, "And of France?");
}

#[test]
fn continue_says_what_it_resumed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Resuming needs no model: an orchestrator alone will do.
    let stack = Stack::without_node(&[]);
    let home = Scratch::new("chat-continue-banner-home");
    let store = default_store(&home);

    let mut p = start(&stack, &home, &["--continue"], &[]);
    p.exp_string(&format!(
        "no earlier conversation in {}; starting a new one",
        store.display()
    ))
    .expect("nothing to continue");
    leave(p);
    std::fs::create_dir_all(&store).expect("store");
    let older = json!([{"role": "user", "content": "old"}, {"role": "assistant", "content": "x"}]);
    let newer = json!([
        {"role": "user", "content": "What is the capital of Japan?"},
        {"role": "assistant", "content": "Tokyo."},
        {"role": "user", "content": "And of France?\nThanks."},
        {"role": "assistant", "content": "Paris."},
    ]);
    // The file written last wins; the names sort the other way, and do not decide.
    let newest = store.join("2000-01-01T00-00-00Z-2.json");
    for (name, body, secs) in [
        ("2099-01-01T00-00-00Z-1.json", &older, 1_000_000),
        ("2000-01-01T00-00-00Z-2.json", &newer, 2_000_000),
    ] {
        let path = store.join(name);
        std::fs::write(&path, body.to_string()).expect("write");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
            .expect("set the time");
    }

    let mut p = start(&stack, &home, &["--continue"], &[]);
    p.exp_string(&on_pty(&format!(
        "resumed 4 messages from {} (last question: \"And of France?…\")",
        newest.display()
    )))
    .expect("the banner says what was resumed");
    leave(p);

    // A broken latest file: said, and a new conversation starts.
    let broken = store.join("2001-01-01T00-00-00Z-3.json");
    std::fs::write(&broken, "[{\"role\": \"user\", \"content\": ").expect("write");
    let mut p = start(&stack, &home, &["--continue"], &[]);
    p.exp_string(&format!(
        "cannot continue: {} is not a conversation: EOF while parsing",
        broken.display()
    ))
    .expect("what is wrong with it");
    p.exp_string("starting a new conversation")
        .expect("a new one");
    leave(p);
}

#[test]
fn two_chats_at_once_keep_their_own_conversations_and_both_histories() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::live("chat-two", &[]);
    let home = Scratch::new("chat-two-home");
    let args = ["--temperature", "0", "--max-tokens", "16"];
    let mut a = chat(&stack, &home, &args);
    let mut b = chat(&stack, &home, &args);

    // Turns alternate: each chat writes its conversation and the shared
    // history file while the other is running.
    ask(&mut a, "What is the capital of Japan?");
    ask(&mut b, "What is the capital of Italy?");
    ask(&mut a, "And of France?");
    ask(&mut b, "And of Spain?");
    leave(a);
    leave(b);

    let files = kept(&default_store(&home));
    assert_eq!(files.len(), 2, "one file per chat: {files:?}");
    let mut questions: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let all = turns(&messages(f));
            let roles: Vec<&str> = all.iter().map(|(r, _)| r.as_str()).collect();
            assert_eq!(
                roles,
                ["user", "assistant", "user", "assistant"],
                "{}",
                f.display()
            );
            all.into_iter()
                .filter(|(r, _)| r == "user")
                .map(|(_, c)| c)
                .collect()
        })
        .collect();
    questions.sort();
    assert_eq!(
        questions,
        [
            ["What is the capital of Italy?", "And of Spain?"],
            ["What is the capital of Japan?", "And of France?"],
        ]
    );

    let history = std::fs::read_to_string(home.join(".cerebrum_history")).expect("history");
    for line in [
        "What is the capital of Japan?",
        "What is the capital of Italy?",
        "And of France?",
        "And of Spain?",
    ] {
        assert!(
            history.lines().any(|l| l == line),
            "{line:?} kept:\n{history}"
        );
    }
}

#[test]
fn a_conversation_near_the_context_says_so() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A small context: a few short turns fill most of it.
    let stack = Stack::live_with("chat-full", &[("CEREBRUM_CONTEXT_SIZE", "160")], &[]);
    let home = Scratch::new("chat-full-home");
    let mut p = chat(&stack, &home, &["--temperature", "0", "--max-tokens", "24"]);

    let mut previous = 0;
    let countries = [
        "Japan", "France", "Italy", "Spain", "Peru", "Chile", "Kenya",
    ];
    let warned = countries.iter().enumerate().find_map(|(i, country)| {
        let question = if i == 0 {
            format!("What is the capital of {country}?")
        } else {
            format!("And of {country}?")
        };
        enter(&mut p, &question);
        let (_, summary) = p.exp_regex(SUMMARY).expect("the summary line");
        let after = p.exp_string(PROMPT).expect("prompt");
        let context = summary.split("context ").nth(1).expect("context");
        let (used, length) = context
            .split_whitespace()
            .next()
            .and_then(|f| f.split_once('/'))
            .expect("used/length");
        let used: u64 = used.replace(',', "").parse().expect("used");
        assert_eq!(length, "160", "{summary}");
        assert!(
            used > previous,
            "each turn adds to the conversation: {summary}"
        );
        previous = used;
        let nearly_full = used * 100 >= 160 * 80;
        assert_eq!(
            after.contains("context nearly full"),
            nearly_full,
            "said from 80% on, not before: {summary}{after}"
        );
        nearly_full.then_some(after)
    });
    let warning = warned.expect("the conversation reached 80% of 160 tokens");
    assert!(
        warning.contains("/clear starts over"),
        "says what to do: {warning}"
    );
    enter(&mut p, "/clear");
    p.exp_regex(r"new conversation: forgot \d+ messages and 0 attached files")
        .expect("cleared");
    p.exp_string(PROMPT).expect("prompt");
    let fresh = ask(&mut p, "What is the capital of Japan?");
    assert!(fresh.used < 80, "a fresh conversation: {fresh:?}");
    leave(p);
}
