//! The chat's slash commands: one enum, each command with its help text
//! (`/help` is generated from it), and the pure parse of a typed line.

use std::borrow::Cow;

use cerebrum_shared::limits::MAX_TOKENS_ORCHESTRATOR as MAX_TOKENS;

use super::super::ask::parse_temperature;

/// A setting as a command gives it: shown, back to automatic, or set.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// No argument: show the setting.
    Show,
    /// `auto` (or `-`): let the server decide.
    Auto,
    /// This value.
    Set(String),
}

impl Choice {
    fn parse(arg: &str) -> Self {
        match arg {
            "" => Choice::Show,
            "auto" | "-" => Choice::Auto,
            value => Choice::Set(value.to_owned()),
        }
    }
}

/// A slash command, with its argument parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `/model [NAME|auto]`.
    Model(Choice),
    /// `/language [L|auto]`.
    Language(Choice),
    /// `/max_tokens [N]`: `None` shows it.
    MaxTokens(Option<u32>),
    /// `/temperature [T]`: `None` shows it.
    Temperature(Option<f32>),
    /// `/file [PATH]`: attach a file; `None` lists the attachments.
    File(Option<String>),
    /// `/clear`: start over (forget the conversation and the attachments).
    Clear,
    /// `/save FILE`: write the conversation to a file; `None` says where it is kept.
    Save(Option<String>),
    /// `/load FILE`: replace the conversation with a file's; `None` asks for the file.
    Load(Option<String>),
    /// `/prepare [QUESTION]`: what would be sent.
    Prepare(String),
    /// `/health`.
    Health,
    /// `/models`.
    Models,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// How `/help` shows a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Help {
    /// `/model`.
    pub name: &'static str,
    /// Other names it answers to.
    pub aliases: &'static [&'static str],
    /// Its arguments (`[NAME|auto]`).
    pub usage: &'static str,
    /// What it does.
    pub text: Cow<'static, str>,
}

impl Command {
    /// Every command once, in `/help` order (with placeholder arguments).
    pub const ALL: [Command; 13] = [
        Command::Model(Choice::Show),
        Command::Language(Choice::Show),
        Command::MaxTokens(None),
        Command::Temperature(None),
        Command::File(None),
        Command::Clear,
        Command::Save(None),
        Command::Load(None),
        Command::Prepare(String::new()),
        Command::Health,
        Command::Models,
        Command::Help,
        Command::Quit,
    ];

    /// Its name, arguments and help text.
    pub fn help(&self) -> Help {
        let (name, aliases, usage, text): (_, &'static [&'static str], _, Cow<'static, str>) =
            match self {
                Command::Model(_) => (
                    "/model",
                    &[],
                    "[NAME|auto]",
                    "show or set the model (auto: routed by language)".into(),
                ),
                Command::Language(_) => (
                    "/language",
                    &[],
                    "[L|auto]",
                    "show or set the code language (auto: from files or detected)".into(),
                ),
                Command::MaxTokens(_) => (
                    "/max_tokens",
                    &[],
                    "[N]",
                    format!("show or set the longest answer, in tokens (1-{MAX_TOKENS})").into(),
                ),
                Command::Temperature(_) => (
                    "/temperature",
                    &[],
                    "[T]",
                    "show or set the sampling temperature (0-2; 0 is greedy)".into(),
                ),
                Command::File(_) => (
                    "/file",
                    &[],
                    "PATH",
                    "attach a file to the next question (alone: list attachments)".into(),
                ),
                Command::Clear => (
                    "/clear",
                    &[],
                    "",
                    "start over: forget the conversation and attached files".into(),
                ),
                Command::Save(_) => (
                    "/save",
                    &[],
                    "FILE",
                    "write the conversation to FILE (JSON chat messages)".into(),
                ),
                Command::Load(_) => (
                    "/load",
                    &[],
                    "FILE",
                    "replace the conversation with the one in FILE".into(),
                ),
                Command::Prepare(_) => (
                    "/prepare",
                    &[],
                    "[QUESTION]",
                    "show what would be sent, and how much preparation cut".into(),
                ),
                Command::Health => ("/health", &[], "", "can the stack serve now?".into()),
                Command::Models => ("/models", &[], "", "the models the node serves".into()),
                Command::Help => ("/help", &["/?"], "", "this list".into()),
                Command::Quit => (
                    "/quit",
                    &["/exit", "/bye"],
                    "",
                    "leave (so does Ctrl-D)".into(),
                ),
            };
        Help {
            name,
            aliases,
            usage,
            text,
        }
    }

    /// Reads a typed line: `None` when it is a question (it does not start
    /// with `/`, or spans lines), else the command or why it is not one.
    pub fn parse(line: &str) -> Option<Result<Command, String>> {
        let line = line.trim();
        if !line.starts_with('/') || line.contains('\n') {
            return None;
        }
        let (name, arg) = match line.split_once(char::is_whitespace) {
            Some((name, arg)) => (name, arg.trim()),
            None => (line, ""),
        };
        let found = Self::ALL.into_iter().find(|c| {
            let help = c.help();
            help.name == name || help.aliases.contains(&name)
        });
        Some(match found {
            Some(command) => command.with_arg(arg),
            None => Err(format!("unknown command {name}; /help lists the commands")),
        })
    }

    /// This command with `arg` read into it (commands without arguments ignore it).
    fn with_arg(self, arg: &str) -> Result<Command, String> {
        let given = (!arg.is_empty()).then_some(arg);
        Ok(match self {
            Command::Model(_) => Command::Model(Choice::parse(arg)),
            Command::Language(_) => Command::Language(Choice::parse(arg)),
            Command::MaxTokens(_) => Command::MaxTokens(
                given
                    .map(|a| match a.parse::<u32>() {
                        Ok(n) if (1..=MAX_TOKENS).contains(&n) => Ok(n),
                        _ => Err(format!(
                            "max_tokens must be a whole number from 1 to {MAX_TOKENS}"
                        )),
                    })
                    .transpose()?,
            ),
            Command::Temperature(_) => Command::Temperature(
                given
                    .map(|a| parse_temperature(a).map_err(|e| format!("temperature: {e}")))
                    .transpose()?,
            ),
            Command::File(_) => Command::File(given.map(unquote)),
            Command::Save(_) => Command::Save(given.map(unquote)),
            Command::Load(_) => Command::Load(given.map(unquote)),
            Command::Prepare(_) => Command::Prepare(arg.to_owned()),
            other => other,
        })
    }
}

/// A path as typed, without the quotes around it.
fn unquote(arg: &str) -> String {
    arg.trim_matches(|c| c == '"' || c == '\'').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Option<Result<Command, String>> {
        Command::parse(line)
    }

    #[test]
    fn questions_are_not_commands() {
        assert_eq!(parsed("What is 2+2?"), None);
        assert_eq!(
            parsed("/model\nsecond line"),
            None,
            "a pasted block is a question"
        );
    }

    #[test]
    fn settings_are_shown_reset_or_set() {
        assert_eq!(parsed("/model"), Some(Ok(Command::Model(Choice::Show))));
        assert_eq!(
            parsed("  /model auto "),
            Some(Ok(Command::Model(Choice::Auto)))
        );
        assert_eq!(
            parsed("/language rust"),
            Some(Ok(Command::Language(Choice::Set("rust".into()))))
        );
        assert_eq!(
            parsed("/language -"),
            Some(Ok(Command::Language(Choice::Auto)))
        );
        assert_eq!(
            parsed("/max_tokens 77"),
            Some(Ok(Command::MaxTokens(Some(77))))
        );
        assert_eq!(parsed("/max_tokens"), Some(Ok(Command::MaxTokens(None))));
        assert_eq!(
            parsed("/temperature 0"),
            Some(Ok(Command::Temperature(Some(0.0))))
        );
    }

    #[test]
    fn bad_values_say_what_is_allowed() {
        for bad in ["/max_tokens 0", "/max_tokens 4096", "/max_tokens many"] {
            assert_eq!(
                parsed(bad),
                Some(Err(
                    "max_tokens must be a whole number from 1 to 2048".into()
                )),
                "{bad}"
            );
        }
        assert_eq!(
            parsed("/temperature 3"),
            Some(Err("temperature: 3 is outside 0..=2".into()))
        );
        assert_eq!(
            parsed("/frobnicate x"),
            Some(Err(
                "unknown command /frobnicate; /help lists the commands".into()
            ))
        );
    }

    #[test]
    fn arguments_and_aliases() {
        assert_eq!(
            parsed("/file \"my file.py\""),
            Some(Ok(Command::File(Some("my file.py".into()))))
        );
        assert_eq!(parsed("/file"), Some(Ok(Command::File(None))));
        assert_eq!(
            parsed("/save 'chat one.json'"),
            Some(Ok(Command::Save(Some("chat one.json".into()))))
        );
        assert_eq!(parsed("/save"), Some(Ok(Command::Save(None))));
        assert_eq!(
            parsed("/load ~/c.json"),
            Some(Ok(Command::Load(Some("~/c.json".into()))))
        );
        assert_eq!(
            parsed("/prepare What does f do?"),
            Some(Ok(Command::Prepare("What does f do?".into())))
        );
        assert_eq!(
            parsed("/clear now"),
            Some(Ok(Command::Clear)),
            "argument ignored"
        );
        for quit in ["/quit", "/exit", "/bye"] {
            assert_eq!(parsed(quit), Some(Ok(Command::Quit)), "{quit}");
        }
        assert_eq!(parsed("/?"), Some(Ok(Command::Help)));
    }

    #[test]
    fn every_command_is_listed_once_and_parses_by_its_name() {
        let names: Vec<&str> = Command::ALL.iter().map(|c| c.help().name).collect();
        for (i, command) in Command::ALL.iter().enumerate() {
            let help = command.help();
            assert!(!names[i + 1..].contains(&help.name), "{} twice", help.name);
            assert!(!help.text.is_empty());
            let back = Command::parse(help.name).and_then(Result::ok);
            assert_eq!(
                back.map(|c| c.help().name),
                Some(help.name),
                "{} parses back",
                help.name
            );
        }
    }
}
