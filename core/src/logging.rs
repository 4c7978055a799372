//! The one tracing set-up every punktfunk binary uses (the daemon, the stream process, the
//! client): human-readable lines on stderr, coloured only on a terminal, `RUST_LOG` to
//! choose what is shown (`info` when unset). The stream processes inherit the daemon's
//! stderr, so their lines land in the same journal. The daemon also keeps its latest lines
//! ([`recent`]) for its console.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber; call once, first thing in `main`.
pub fn init() {
    let stderr = std::io::stderr();
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&stderr))
        .init();
}

/// As [`init`], and keeps the latest lines (without colours) in [`recent`].
pub fn init_keeping_recent() {
    let stderr = std::io::stderr();
    let _ = RECENT.set(Recent::default());
    tracing_subscriber::registry()
        .with(filter())
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&stderr)))
        .with(tracing_subscriber::fmt::layer().with_writer(|| LineWriter(Vec::new())).with_ansi(false))
        .init();
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}

/// The lines kept…
const KEEP: usize = 500;
/// … each cut to this many bytes.
const LONGEST: usize = 2048;

static RECENT: OnceLock<Recent> = OnceLock::new();

/// The latest log lines, numbered from 1 in the order they were written.
#[derive(Default)]
pub struct Recent {
    lines: Mutex<(u64, VecDeque<(u64, String)>)>,
}

/// The latest lines, where [`init_keeping_recent`] keeps them.
pub fn recent() -> Option<&'static Recent> {
    RECENT.get()
}

impl Recent {
    /// The kept lines numbered above `seq`, oldest first.
    pub fn after(&self, seq: u64) -> Vec<(u64, String)> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.1.iter().filter(|(n, _)| *n > seq).cloned().collect()
    }

    fn push(&self, text: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut end = line.len().min(LONGEST);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            lines.0 += 1;
            let n = lines.0;
            lines.1.push_back((n, line[..end].to_owned()));
            if lines.1.len() > KEEP {
                lines.1.pop_front();
            }
        }
    }
}

/// One event's formatted text, kept when the formatter is done with it.
struct LineWriter(Vec<u8>);

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if let Some(recent) = RECENT.get() {
            recent.push(&String::from_utf8_lossy(&self.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_lines_numbered_and_bounded() {
        let recent = Recent::default();
        recent.push("first\nsecond\n");
        assert_eq!(recent.after(0), [(1, "first".to_owned()), (2, "second".to_owned())]);
        assert_eq!(recent.after(1), [(2, "second".to_owned())]);
        for i in 0..KEEP + 10 {
            recent.push(&format!("line {i}"));
        }
        let kept = recent.after(0);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept.last().unwrap().1, format!("line {}", KEEP + 9));
        recent.push(&"é".repeat(LONGEST));
        assert!(recent.after(0).last().unwrap().1.len() <= LONGEST, "long lines are cut, on a character boundary");
    }
}
