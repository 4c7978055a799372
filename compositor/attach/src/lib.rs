//! punktfunk-attach: attach mode, a stream of a virtual output inside the user's running
//! desktop instead of a fresh headless session. The desktop makes an output of the
//! client's exact mode for the stream; frames come from it and input goes into it, and the
//! output goes away with the stream. A frame source like the headless compositor: frames go
//! to the stream's [`Mailbox`], requests come as [`SourceCommand`]s.
//!
//! - [`sway`]: the output, through sway's IPC (`create_output`, custom modes).
//! - [`capture`]: frames (wlr-screencopy) and input (virtual pointer and keyboard) as a
//!   Wayland client of the desktop; any wlroots compositor that offers those protocols.
//! - [`mutter`]: GNOME's virtual monitor and its input, through Mutter's RemoteDesktop and
//!   ScreenCast D-Bus API; [`screencast`]: its frames, a PipeWire consumer whose format
//!   offer sizes the monitor.
//! - [`kwin`]: Plasma's virtual output, through KWin's screencast protocol (frames again
//!   through [`screencast`]), and its fake input.

pub mod capture;
mod devices;
pub mod kwin;
pub mod mutter;
mod pictures;
pub mod screencast;
pub mod sway;
mod wayland_wait;

use anyhow::Context;
use punktfunk_core::mode::Mode;
use punktfunk_frame::{Mailbox, SourceCommand, SourceControl};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// The desktops attach mode can add an output to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Desktop {
    Sway,
    Mutter,
    Kwin,
}

impl Desktop {
    /// `auto` finds the running desktop from its environment (sway's socket, GNOME or KDE
    /// in `XDG_CURRENT_DESKTOP`); `sway`, `gnome` (or `mutter`) and `kde` (or `plasma`,
    /// `kwin`) name it.
    pub fn find(choice: &str) -> anyhow::Result<Self> {
        let desktop = std::env::var("XDG_CURRENT_DESKTOP").unwrap_or_default();
        let named = |name: &str| desktop.split(':').any(|d| d.eq_ignore_ascii_case(name));
        match choice {
            "sway" => Ok(Self::Sway),
            "gnome" | "mutter" => Ok(Self::Mutter),
            "kde" | "plasma" | "kwin" => Ok(Self::Kwin),
            "auto" if std::env::var_os("SWAYSOCK").is_some() => Ok(Self::Sway),
            "auto" if named("gnome") => Ok(Self::Mutter),
            "auto" if named("kde") => Ok(Self::Kwin),
            "auto" => anyhow::bail!(
                "no desktop to attach to: SWAYSOCK is not set (sway) and XDG_CURRENT_DESKTOP names neither GNOME nor KDE; {} is not supported yet",
                if desktop.is_empty() { "this desktop".into() } else { desktop }
            ),
            other => anyhow::bail!("attach = {other:?}: expected auto, sway, gnome or kde"),
        }
    }
}

/// Streams a new output of `desktop` at `mode` into `mailbox` until told to stop; `ready`
/// is called once the output is there and captured.
pub fn run(desktop: Desktop, mode: Mode, layout: &str, mailbox: &Mailbox, commands: Commands, ready: impl FnOnce()) -> anyhow::Result<()> {
    match desktop {
        Desktop::Sway => {
            let mut output = sway::SwayOutput::create(mode)?;
            let capture = capture::Capture::connect(&output.name, mode, layout).context("attaching to sway")?;
            ready();
            capture.run(mailbox, &commands.queue, &commands.wake, |m| output.set_mode(m))
        }
        Desktop::Mutter => {
            let stream = mutter::MutterStream::open(mode, mailbox)?;
            ready();
            stream.run(mailbox, &commands)
        }
        Desktop::Kwin => {
            let stream = kwin::KwinStream::open(mode, layout, mailbox)?;
            ready();
            stream.run(layout, mailbox, &commands)
        }
    }
}

/// How often a source that waits for commands looks whether the desktop ended its stream.
const LIVENESS_MS: u16 = 250;

/// How the pipeline reaches an attached source: a bounded queue and a pipe that wakes the
/// source's loop.
pub struct Control {
    queue: SyncSender<SourceCommand>,
    wake: Arc<OwnedFd>,
}

/// The source's end of [`Control`].
pub struct Commands {
    queue: Receiver<SourceCommand>,
    wake: OwnedFd,
}

/// A control channel holding up to `capacity` commands.
pub fn control_channel(capacity: usize) -> std::io::Result<(Control, Commands)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    let (queue, rx) = std::sync::mpsc::sync_channel(capacity);
    Ok((Control { queue, wake: Arc::new(write) }, Commands { queue: rx, wake: read }))
}

impl Control {
    fn woken(&self, queued: bool) -> bool {
        if queued {
            // A full pipe already wakes the loop.
            let _ = nix::unistd::write(&*self.wake, &[1]);
        }
        queued
    }
}

impl SourceControl for Control {
    fn send(&self, command: SourceCommand) -> bool {
        let queued = self.queue.send(command).is_ok();
        self.woken(queued)
    }

    fn try_send(&self, command: SourceCommand) -> bool {
        let queued = !matches!(self.queue.try_send(command), Err(TrySendError::Full(_) | TrySendError::Disconnected(_)));
        self.woken(queued)
    }
}
