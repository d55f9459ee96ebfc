//! The conversation a chat keeps: OpenAI chat messages, each question as it
//! was sent and each answer exactly as it streamed, never re-formatted (the
//! node reuses its cache for a prompt that repeats what it saw before). Read
//! from and written to JSON files in the OpenAI messages shape
//! (`[{"role": "user", "content": "…"}, …]`), written atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use cerebrum_shared::openai::ChatMessage;
use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message: a role and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: Role,
    /// The text, as sent or received.
    pub content: String,
}

/// The same messages wrapped as a request body (`{"messages": [...]}`), which
/// `/load` also accepts.
#[derive(Deserialize)]
struct Wrapped {
    messages: Vec<Message>,
}

/// The messages so far, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    messages: Vec<Message>,
}

impl Conversation {
    /// A conversation of these messages.
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages }
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether nothing was said yet.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The last question asked, if any.
    pub fn last_question(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }

    /// Adds a question and the whole answer it got, as one turn.
    pub fn push_turn(&mut self, question: &str, answer: &str) {
        for (role, content) in [(Role::User, question), (Role::Assistant, answer)] {
            self.messages.push(Message {
                role,
                content: content.to_owned(),
            });
        }
    }

    /// The messages to send with `question` as the next user turn.
    pub fn request_messages(&self, question: &str) -> Vec<ChatMessage> {
        self.messages
            .iter()
            .map(|m| ChatMessage::new(m.role.as_str(), &m.content))
            .chain([ChatMessage::new(Role::User.as_str(), question)])
            .collect()
    }

    /// The file's text: the messages as a pretty-printed JSON array.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.messages)
            .unwrap_or_else(|e| unreachable!("messages always serialize: {e}"));
        text.push('\n');
        text
    }

    /// Reads a file's text: a JSON array of messages (or a request body with
    /// `messages`). The error says where and what is wrong, as serde found it.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let messages = if text.trim_start().starts_with('{') {
            serde_json::from_str::<Wrapped>(text).map(|w| w.messages)
        } else {
            serde_json::from_str::<Vec<Message>>(text)
        };
        messages.map(Self::new).map_err(|e| {
            format!(
                "{e} (expected a JSON list of {{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": \"…\"}})"
            )
        })
    }

    /// Reads a conversation file; the error names it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let name = path.display();
        let text = fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        Self::from_json(&text).map_err(|e| format!("{name} is not a conversation: {e}"))
    }

    /// Writes the conversation to `path` atomically.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new
/// one, never a part: a temporary file in the same directory (named for this
/// process), flushed to disk, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let temp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written.and_then(|()| fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cerebrum-conversation-{tag}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    fn two_turns() -> Conversation {
        let mut c = Conversation::default();
        c.push_turn("What is 2+2?", "4.");
        c.push_turn("And \"3+3\"?\n```py\nprint(3+3)\n```", " 6\n\n");
        c
    }

    #[test]
    fn turns_become_the_messages_sent_next() {
        let c = two_turns();
        let sent = c.request_messages("Why?");
        let roles: Vec<&str> = sent.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            ["user", "assistant", "user", "assistant", "user"],
            "{sent:?}"
        );
        assert_eq!(sent[3].text(), " 6\n\n", "answers are kept byte for byte");
        assert_eq!(sent[4].text(), "Why?");
        assert_eq!(
            c.last_question(),
            Some("And \"3+3\"?\n```py\nprint(3+3)\n```")
        );
        assert_eq!(Conversation::default().last_question(), None);
    }

    #[test]
    fn the_file_is_the_openai_messages_shape_and_reads_back() {
        let c = two_turns();
        let text = c.to_json();
        let value: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value[0],
            serde_json::json!({"role": "user", "content": "What is 2+2?"})
        );
        assert_eq!(value[3]["content"], " 6\n\n");
        assert!(text.starts_with("[\n  {\n"), "pretty-printed: {text}");
        assert_eq!(Conversation::from_json(&text), Ok(c.clone()));
        // A request body's messages are taken too.
        let body = format!("{{\"model\": \"m\", \"messages\": {text}}}");
        assert_eq!(Conversation::from_json(&body), Ok(c));
    }

    #[test]
    fn a_bad_file_says_where_and_what() {
        let bad_role = "[\n  {\"role\": \"user\", \"content\": \"hi\"},\n  {\"role\": \"bot\", \"content\": \"yo\"}\n]";
        let e = Conversation::from_json(bad_role).unwrap_err();
        assert!(
            e.starts_with(
                "unknown variant `bot`, expected one of `system`, `user`, `assistant` at line 3"
            ),
            "{e}"
        );
        let no_content = "[{\"role\": \"user\"}]";
        let e = Conversation::from_json(no_content).unwrap_err();
        assert!(e.starts_with("missing field `content` at line 1"), "{e}");
        let not_text = "[{\"role\": \"user\", \"content\": 7}]";
        let e = Conversation::from_json(not_text).unwrap_err();
        assert!(
            e.starts_with("invalid type: integer `7`, expected a string at line 1"),
            "{e}"
        );
        let e = Conversation::from_json("").unwrap_err();
        assert!(e.starts_with("EOF while parsing"), "{e}");
        assert!(e.contains("expected a JSON list of"), "{e}");
        let e = Conversation::from_json("{\"model\": \"m\"}").unwrap_err();
        assert!(e.starts_with("missing field `messages`"), "{e}");
    }

    #[test]
    fn loading_names_the_file() {
        let dir = scratch("load");
        let path = dir.join("bad.json");
        fs::write(&path, "[{\"role\": \"robot\", \"content\": \"\"}]")
            .unwrap_or_else(|e| panic!("{e}"));
        let e = Conversation::load(&path).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "{} is not a conversation: unknown variant `robot`",
                path.display()
            )),
            "{e}"
        );
        let e = Conversation::load(&dir.join("missing.json")).unwrap_err();
        assert!(e.starts_with("cannot read "), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn saving_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = scratch("save");
        let path = dir.join("chat.json");
        fs::write(&path, "old").unwrap_or_else(|e| panic!("{e}"));
        let c = two_turns();
        c.save(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Conversation::load(&path), Ok(c));
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names, ["chat.json"]);
        // A directory that does not exist: an error, and nothing left behind.
        let e = Conversation::default()
            .save(&dir.join("no/such/dir.json"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let _ = fs::remove_dir_all(&dir);
    }
}
