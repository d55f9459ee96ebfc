//! Terminal styling for the client commands: colour only on a terminal and
//! without `NO_COLOR`, and a spinner on standard error until the first token.

use std::io::{self, IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether to emit ANSI colour codes on one output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

/// True when the environment asks for no colour: `NO_COLOR` set to anything
/// non-empty (<https://no-color.org>) or `TERM=dumb`.
pub fn color_disabled_by_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

impl Style {
    /// Styling for standard output.
    pub fn stdout() -> Self {
        Self {
            color: io::stdout().is_terminal() && !color_disabled_by_env(),
        }
    }

    /// Styling for standard error.
    pub fn stderr() -> Self {
        Self {
            color: io::stderr().is_terminal() && !color_disabled_by_env(),
        }
    }

    /// Plain text, whatever the stream.
    #[cfg(test)]
    pub fn plain() -> Self {
        Self { color: false }
    }

    /// Whether colour codes are emitted.
    pub fn is_color(self) -> bool {
        self.color
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Dim (faint) text: secondary information.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Bold text.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Red text: errors.
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Green text: all is well.
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Yellow text: warnings.
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Cyan text: names and commands.
    pub fn cyan(self, text: &str) -> String {
        self.paint("36", text)
    }
}

/// An animated "thinking… 1.4s" line on standard error, shown only when
/// standard error is a terminal. [`Spinner::stop`] (or dropping it) erases it.
pub struct Spinner {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts a spinner with a label, or a no-op one when standard error is
    /// not a terminal.
    pub fn start(label: &str) -> Self {
        if !io::stderr().is_terminal() {
            return Self {
                stop: None,
                thread: None,
            };
        }
        let ascii = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let frames: &[&str] = if ascii {
            &["-", "\\", "|", "/"]
        } else {
            &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
        };
        let label = label.to_owned();
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut width = 0;
            for frame in frames.iter().cycle() {
                let line = format!("{frame} {label} {:.1}s", started.elapsed().as_secs_f64());
                width = width.max(line.chars().count());
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r{line}");
                let _ = err.flush();
                drop(err);
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            // Spaces rather than an erase sequence: works on every terminal.
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r{:width$}\r", "");
            let _ = err.flush();
        });
        Self {
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Stops the spinner and erases its line; returns once it is erased.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // Digits before the next comma: the leading group holds 1 to 3.
    let mut group = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    for (i, c) in digits.chars().enumerate() {
        out.push(c);
        group -= 1;
        if group == 0 && i + 1 < digits.len() {
            out.push(',');
            group = 3;
        }
    }
    out
}

/// Characters of `s` a terminal shows: colour sequences (`ESC [ … m`) take no room.
pub fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

/// Rows of cells as left-aligned columns separated by two spaces (no
/// trailing spaces). Widths count visible characters, so cells may be styled.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| visible_len(cell))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c].saturating_sub(visible_len(cell));
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_adds_no_codes() {
        let s = Style::plain();
        assert_eq!(s.dim("x"), "x");
        assert_eq!(s.red("x"), "x");
        assert!(!s.is_color());
    }

    #[test]
    fn colour_wraps_and_resets() {
        let s = Style { color: true };
        assert_eq!(s.dim("x"), "\x1b[2mx\x1b[0m");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(16_000), "16,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&[
            vec!["MODEL".into(), "LOADED".into()],
            vec!["smollm2".into(), "yes".into()],
        ]);
        assert_eq!(t, "MODEL    LOADED\nsmollm2  yes\n");
        let styled = Style { color: true };
        let t = table(&[
            vec![styled.green("ok"), "x".into()],
            vec!["long".into(), "y".into()],
        ]);
        assert_eq!(t, "\x1b[32mok\x1b[0m    x\nlong  y\n");
    }

    #[test]
    fn spinner_off_a_terminal_is_silent() {
        // Test runners capture standard error, so this is the no-op spinner.
        let mut s = Spinner::start("thinking…");
        s.stop();
        s.stop();
    }
}
