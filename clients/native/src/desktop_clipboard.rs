//! The desktop's clipboard (arboard: X11, or Wayland's data control where the desktop offers
//! it) in step with the session's while a window streams with `--clipboard`.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How often the desktop's clipboard is looked at: neither X11 nor data control tells a
/// client that does not own the clipboard when it changes without more protocol than arboard
/// speaks.
const POLL: Duration = Duration::from_millis(500);

pub struct DesktopClipboard {
    to_desktop: mpsc::Sender<String>,
}

impl DesktopClipboard {
    /// Watches the desktop's clipboard on a thread: its text now, and each new text after,
    /// goes to `copied`; [`Self::set`] puts the session's text on it.
    pub fn start(copied: tokio::sync::mpsc::UnboundedSender<String>) -> anyhow::Result<Self> {
        let (to_desktop, from_session) = mpsc::channel::<String>();
        std::thread::Builder::new().name("clipboard".into()).spawn(move || {
            // Made here: arboard's clipboard stays on the thread that serves what it set.
            let mut clipboard = match arboard::Clipboard::new() {
                Ok(c) => c,
                Err(e) => return tracing::warn!("the desktop's clipboard is out of reach, not shared: {e}"),
            };
            let mut last: Option<String> = None;
            loop {
                match from_session.recv_timeout(POLL) {
                    Ok(text) => match clipboard.set_text(text.clone()) {
                        Ok(()) => last = Some(text),
                        Err(e) => tracing::warn!("the session's clipboard not set on the desktop: {e}"),
                    },
                    Err(RecvTimeoutError::Timeout) => {
                        let now = clipboard.get_text().ok();
                        if let Some(text) = now.filter(|t| last.as_ref() != Some(t)) {
                            last = Some(text.clone());
                            if copied.send(text).is_err() {
                                return;
                            }
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
        Ok(Self { to_desktop })
    }

    /// The session's clipboard holds `text`: so does the desktop's.
    pub fn set(&self, text: String) {
        let _ = self.to_desktop.send(text);
    }
}
