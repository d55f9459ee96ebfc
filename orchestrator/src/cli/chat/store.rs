//! Where conversations are kept between runs: one JSON file per conversation
//! under `$XDG_STATE_HOME/cerebrum/conversations/` (default
//! `~/.local/state/cerebrum/conversations/`), named for the process that
//! started it (its start time and pid), so two chats at once never write the
//! same file. `cerebrum chat --continue` takes the most recently written one.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::conversation::Conversation;

/// The folder under the state directory.
const SUBDIR: &str = "cerebrum/conversations";

/// The conversations folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The folder for these environment values: `$XDG_STATE_HOME/cerebrum/
    /// conversations` when that is an absolute path (the XDG rule), else
    /// `$HOME/.local/state/cerebrum/conversations`; `None` without either.
    pub fn locate(xdg_state_home: Option<OsString>, home: Option<OsString>) -> Option<Self> {
        let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
        let state = absolute(xdg_state_home)
            .or_else(|| absolute(home).map(|h| h.join(".local").join("state")))?;
        Some(Self {
            dir: state.join(SUBDIR),
        })
    }

    /// The folder this process's environment names.
    pub fn from_env() -> Option<Self> {
        Self::locate(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
    }

    /// A store in `dir` (tests).
    #[cfg(test)]
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the folder when missing, readable by its owner only
    /// (conversations hold the code people paste).
    pub fn create(&self) -> io::Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir)?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
    }

    /// The file of a process's `n`th conversation (1 for the first; `/clear`
    /// and `/load` start the next): `2025-06-01T12-30-05Z-4242.json`, then
    /// `…-4242-2.json`.
    pub fn session_file(&self, started: SystemTime, pid: u32, n: u32) -> PathBuf {
        let stamp = utc_stamp(
            started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        let name = if n <= 1 {
            format!("{stamp}-{pid}.json")
        } else {
            format!("{stamp}-{pid}-{n}.json")
        };
        self.dir.join(name)
    }

    /// The most recently written conversation file, if any (a missing
    /// folder has none). Temporary files of a write in progress are skipped.
    pub fn latest(&self) -> io::Result<Option<PathBuf>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut latest: Option<(SystemTime, PathBuf)> = None;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let candidate = (meta.modified()?, entry.path());
            // Equal times: the later name (started later) wins.
            if latest.as_ref().is_none_or(|best| candidate > *best) {
                latest = Some(candidate);
            }
        }
        Ok(latest.map(|(_, path)| path))
    }
}

/// Keeps one process's conversations: the current one in its own file,
/// rewritten after every answer; the next (after `/clear` or `/load`) in
/// another.
#[derive(Debug)]
pub struct Keeper {
    store: Option<Store>,
    /// When this process started, for its files' names.
    started: SystemTime,
    /// Which of this process's conversations is current (from 1).
    number: u32,
    /// The last write failed (said once, until a write works again).
    failing: bool,
}

impl Keeper {
    /// Keeps conversations in `store` (none without one), for a process
    /// started at `started`.
    pub fn new(store: Option<Store>, started: SystemTime) -> Self {
        Self {
            store,
            started,
            number: 1,
            failing: false,
        }
    }

    /// Where conversations are kept, if anywhere.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The current conversation's file.
    pub fn file(&self) -> Option<PathBuf> {
        let store = self.store.as_ref()?;
        Some(store.session_file(self.started, std::process::id(), self.number))
    }

    /// Writes the conversation to its file; a warning when that fails for
    /// the first time in a row.
    pub fn keep(&mut self, conversation: &Conversation) -> Option<String> {
        let (store, file) = (self.store.as_ref()?, self.file()?);
        match store.create().and_then(|()| conversation.save(&file)) {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(e) => (!std::mem::replace(&mut self.failing, true))
                .then(|| format!("cannot keep the conversation in {}: {e}", file.display())),
        }
    }

    /// The next conversation goes to a file of its own.
    pub fn next(&mut self) {
        self.number += 1;
    }
}

/// `2025-06-01T12-30-05Z` for Unix seconds (UTC; `-` for `:`, which some
/// file systems refuse).
pub fn utc_stamp(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::chat::conversation::write_atomic;
    use std::time::Duration;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cerebrum-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_folder_follows_xdg_then_home() {
        let at = |xdg: Option<&str>, home: Option<&str>| {
            Store::locate(xdg.map(OsString::from), home.map(OsString::from))
                .map(|s| s.dir().to_path_buf())
        };
        assert_eq!(
            at(Some("/x/state"), Some("/home/p")),
            Some(PathBuf::from("/x/state/cerebrum/conversations"))
        );
        assert_eq!(
            at(None, Some("/home/p")),
            Some(PathBuf::from("/home/p/.local/state/cerebrum/conversations"))
        );
        assert_eq!(
            at(Some("relative"), Some("/home/p")),
            Some(PathBuf::from("/home/p/.local/state/cerebrum/conversations")),
            "a relative XDG_STATE_HOME is ignored, as the spec says"
        );
        assert_eq!(at(Some(""), None), None);
    }

    #[test]
    fn files_are_named_by_start_time_pid_and_conversation() {
        let store = Store::at(PathBuf::from("/s"));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            store.session_file(t, 4242, 1),
            PathBuf::from("/s/2023-11-14T22-13-20Z-4242.json")
        );
        assert_eq!(
            store.session_file(t, 4242, 2),
            PathBuf::from("/s/2023-11-14T22-13-20Z-4242-2.json")
        );
        assert_eq!(utc_stamp(0), "1970-01-01T00-00-00Z");
        assert_eq!(utc_stamp(951_782_400), "2000-02-29T00-00-00Z");
        assert_eq!(utc_stamp(4_107_542_399), "2100-02-28T23-59-59Z");
    }

    #[test]
    fn each_conversation_is_kept_in_its_own_file_and_a_failure_is_said_once() {
        let dir = scratch("keeper");
        let started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut keeper = Keeper::new(Some(Store::at(dir.join("conversations"))), started);
        let mut c = Conversation::default();
        c.push_turn("a", "b");
        assert_eq!(keeper.keep(&c), None);
        let first = keeper.file().unwrap_or_else(|| panic!("a file"));
        assert_eq!(Conversation::load(&first), Ok(c.clone()));
        c.push_turn("c", "d");
        assert_eq!(keeper.keep(&c), None);
        assert_eq!(Conversation::load(&first), Ok(c.clone()), "rewritten whole");

        keeper.next();
        let second = keeper.file().unwrap_or_else(|| panic!("a file"));
        assert_ne!(first, second);
        let fresh = Conversation::default();
        assert_eq!(keeper.keep(&fresh), None);
        assert_eq!(
            Conversation::load(&first),
            Ok(c),
            "the earlier one is left as it was"
        );
        assert_eq!(Conversation::load(&second), Ok(fresh.clone()));

        // The folder cannot be made (a file is in the way): said once, then
        // again only after a write worked.
        let blocked = dir.join("blocked");
        fs::write(&blocked, "").unwrap_or_else(|e| panic!("{e}"));
        let mut keeper = Keeper::new(Some(Store::at(blocked.join("c"))), started);
        let warning = keeper.keep(&fresh).unwrap_or_else(|| panic!("a warning"));
        assert!(
            warning.starts_with("cannot keep the conversation in "),
            "{warning}"
        );
        assert_eq!(keeper.keep(&fresh), None, "not repeated");
        assert_eq!(
            Keeper::new(None, started).keep(&fresh),
            None,
            "nowhere to keep"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_latest_is_the_most_recently_written() {
        let dir = scratch("latest");
        let store = Store::at(dir.clone());
        assert_eq!(
            store.latest().ok(),
            Some(None),
            "no folder: nothing to resume"
        );
        store.create().unwrap_or_else(|e| panic!("{e}"));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o700), "private to its owner");
        assert_eq!(store.latest().ok(), Some(None), "empty folder");

        let mut c = Conversation::default();
        c.push_turn("a", "b");
        let older = dir.join("2030-01-01T00-00-00Z-1.json");
        let newer = dir.join("2020-01-01T00-00-00Z-2.json");
        for path in [&older, &newer] {
            c.save(path).unwrap_or_else(|e| panic!("{e}"));
        }
        // Times set outright: the file written last wins, whatever its name.
        let set = |path: &Path, secs: u64| {
            let file = fs::File::options()
                .write(true)
                .open(path)
                .unwrap_or_else(|e| panic!("{e}"));
            file.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
                .unwrap_or_else(|e| panic!("{e}"));
        };
        set(&older, 1_000);
        set(&newer, 2_000);
        // Neither a write in progress nor another kind of file counts.
        write_atomic(&dir.join("notes.txt"), b"x").unwrap_or_else(|e| panic!("{e}"));
        fs::write(dir.join(".2040-01-01T00-00-00Z-3.json.3.tmp"), "[")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.latest().ok(), Some(Some(newer.clone())));
        set(&older, 3_000);
        assert_eq!(store.latest().ok(), Some(Some(older)));
        let _ = fs::remove_dir_all(&dir);
    }
}
