//! The stream's monitor in a running Mutter (GNOME), over its session D-Bus API: a
//! RemoteDesktop session with a ScreenCast session tied to it records a *virtual* monitor
//! (`RecordVirtual`), which Mutter adds to the desktop once a PipeWire consumer negotiates
//! its size and maximum frame rate ([`crate::screencast`]); input goes in through the same
//! RemoteDesktop session; stopping it removes the monitor. Mutter binds the session to this
//! D-Bus connection, so the connection is held for the stream's life.

use anyhow::Context;
use punktfunk_core::input::InputEvent;
use punktfunk_core::mode::Mode;
use punktfunk_frame::SourceCommand;
use std::collections::HashMap;
use std::time::Duration;
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{OwnedObjectPath, Value};

const REMOTE_DESKTOP: &str = "org.gnome.Mutter.RemoteDesktop";
const SCREEN_CAST: &str = "org.gnome.Mutter.ScreenCast";
/// How long Mutter may take to make the monitor's PipeWire stream.
const STREAM_WAIT: Duration = Duration::from_secs(10);
/// How long any call into Mutter may take: a hung desktop fails the stream, never hangs it.
const CALL_WAIT: Duration = Duration::from_secs(5);
/// A scroll detent in the client's 1/120 units.
const DETENT: i32 = 120;
/// RecordVirtual's `cursor-mode`: the pointer drawn into the frames.
const CURSOR_EMBEDDED: u32 = 1;
const KEY_LEFTSHIFT: u32 = 42;

/// A virtual monitor streaming into a mailbox: its consumer goes first, then the monitor.
pub struct MutterStream {
    cast: crate::screencast::Screencast,
    monitor: MutterMonitor,
}

impl MutterStream {
    pub fn open(mode: Mode, mailbox: &punktfunk_frame::Mailbox) -> anyhow::Result<Self> {
        let monitor = MutterMonitor::create(mode)?;
        let cast = crate::screencast::Screencast::start(monitor.node, mode, mailbox.clone())?;
        Ok(Self { cast, monitor })
    }

    /// Streams until told to stop, taking the pipeline's requests from `commands`; a new
    /// mode is a new monitor (the old session stopped first).
    pub fn run(mut self, mailbox: &punktfunk_frame::Mailbox, commands: &crate::Commands) -> anyhow::Result<()> {
        use std::os::fd::AsFd;
        loop {
            // Woken by a command, or now and then to see whether Mutter ended the stream
            // (the user stopped sharing in GNOME's indicator, the shell restarted).
            let mut fds = [nix::poll::PollFd::new(commands.wake.as_fd(), nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(crate::LIVENESS_MS)) {
                // A signal: as a timeout.
                Err(nix::errno::Errno::EINTR) => {}
                polled => {
                    polled?;
                }
            }
            anyhow::ensure!(!self.cast.ended(), "GNOME ended the screencast (sharing was stopped, or the desktop went away)");
            let _ = nix::unistd::read(&commands.wake, &mut [0; 64]);
            while let Ok(command) = commands.queue.try_recv() {
                match command {
                    SourceCommand::Input(event) => self.monitor.input(event),
                    SourceCommand::SetMode(mode) => {
                        drop(self);
                        self = Self::open(mode, mailbox)?;
                    }
                    // Mutter sends a picture when the screen changes; the sink repeats the
                    // last one on a still screen.
                    SourceCommand::Redraw => {}
                    // The desktop's clipboard is its own in attach mode (not shared yet).
                    SourceCommand::Clipboard(_) => {}
                    SourceCommand::Stop => return Ok(()),
                }
            }
        }
    }
}

/// One virtual monitor of Mutter's, streamed and steered.
pub struct MutterMonitor {
    session: Proxy<'static>,
    /// The ScreenCast stream's object path: absolute pointer and touch positions name it.
    stream: String,
    /// The monitor's PipeWire node.
    pub node: u32,
    /// Scroll not yet a whole detent, per axis (vertical, horizontal).
    scrolled: [i32; 2],
    _connection: Connection,
}

impl MutterMonitor {
    /// Asks Mutter on the session bus for a virtual monitor of `mode` (it appears once the
    /// PipeWire stream `node` is consumed at that size).
    pub fn create(mode: Mode) -> anyhow::Result<Self> {
        let connection = zbus::blocking::connection::Builder::session()
            .and_then(|b| b.method_timeout(CALL_WAIT).build())
            .context("connecting to the session's D-Bus")?;
        let missing = |what: &str| format!("Mutter's {what} on the session bus (is this a GNOME session?)");
        let remote = Proxy::new(&connection, REMOTE_DESKTOP, "/org/gnome/Mutter/RemoteDesktop", REMOTE_DESKTOP)?;
        let session_path: OwnedObjectPath = remote.call("CreateSession", &()).with_context(|| missing("RemoteDesktop"))?;
        let session = Proxy::new_owned(connection.clone(), REMOTE_DESKTOP, session_path, format!("{REMOTE_DESKTOP}.Session"))?;
        let id: String = session.get_property("SessionId").context("the remote desktop session's id")?;

        let cast = Proxy::new(&connection, SCREEN_CAST, "/org/gnome/Mutter/ScreenCast", SCREEN_CAST)?;
        let tied = HashMap::from([("remote-desktop-session-id", Value::from(id))]);
        let cast_path: OwnedObjectPath = cast.call("CreateSession", &(tied,)).with_context(|| missing("ScreenCast"))?;
        let cast_session = Proxy::new(&connection, SCREEN_CAST, cast_path, format!("{SCREEN_CAST}.Session"))?;
        let properties = HashMap::from([("cursor-mode", Value::from(CURSOR_EMBEDDED))]);
        let stream_path: OwnedObjectPath = cast_session.call("RecordVirtual", &(properties,)).context("recording a virtual monitor")?;
        let stream = Proxy::new_owned(connection.clone(), SCREEN_CAST, stream_path.clone(), format!("{SCREEN_CAST}.Stream"))?;

        // The node is announced once the session starts: listen first. The waiting thread
        // ends with the signal or, failing that, when the session is stopped below.
        let mut added = stream.receive_signal("PipeWireStreamAdded")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("mutter-stream".into()).spawn(move || {
            let node = added.next().and_then(|m| m.body().deserialize::<u32>().ok());
            let _ = tx.send(node);
        })?;
        let started = session.call::<_, _, ()>("Start", &()).context("starting the remote desktop session");
        let node = started
            .and_then(|()| rx.recv_timeout(STREAM_WAIT).ok().flatten().context("Mutter made no PipeWire stream for the virtual monitor"));
        let node = match node {
            Ok(node) => node,
            Err(e) => {
                // Stopping the session closes the stream object: its signal iterator ends.
                let _ = session.call::<_, _, ()>("Stop", &());
                return Err(e);
            }
        };
        tracing::info!(node, width = mode.width, height = mode.height, "Mutter virtual monitor recording");
        let mut monitor = Self { session, stream: stream_path.to_string(), node, scrolled: [0; 2], _connection: connection };
        // Mutter makes the session's virtual pointer and keyboard at their first event, and
        // only then does the seat say it has them (a desktop without physical ones, as a
        // streaming box often is): apps bind them when told, so an early click or key
        // would be lost. The pointer to the monitor's middle and a tap of Shift make them now.
        let centre = (f64::from(mode.width) / 2.0, f64::from(mode.height) / 2.0);
        monitor.input(InputEvent::PointerMotion { x: centre.0, y: centre.1 });
        for pressed in [true, false] {
            monitor.input(InputEvent::Key { code: KEY_LEFTSHIFT, pressed });
        }
        Ok(monitor)
    }

    /// Injects one input event (a call that is not waited on: input keeps flowing while
    /// Mutter works).
    pub fn input(&mut self, event: InputEvent) {
        let stream = self.stream.as_str();
        let sent = match event {
            InputEvent::Key { code, pressed } => self.session.call_noreply("NotifyKeyboardKeycode", &(code, pressed)),
            InputEvent::Text(text) => text.chars().try_for_each(|c| {
                let keysym = xkbcommon::xkb::utf32_to_keysym(c as u32).raw();
                self.session.call_noreply("NotifyKeyboardKeysym", &(keysym, true))?;
                self.session.call_noreply("NotifyKeyboardKeysym", &(keysym, false))
            }),
            InputEvent::PointerMotion { x, y } => self.session.call_noreply("NotifyPointerMotionAbsolute", &(stream, x, y)),
            InputEvent::PointerRelative { dx, dy } => self.session.call_noreply("NotifyPointerMotionRelative", &(dx, dy)),
            InputEvent::Button { code, pressed } => {
                self.session.call_noreply("NotifyPointerButton", &(i32::try_from(code).unwrap_or(i32::MAX), pressed))
            }
            InputEvent::Scroll { vertical, v120 } => {
                // Mutter takes whole detents (axis 0 vertical, 1 horizontal; positive is down
                // or right, as ours); what is left of a detent waits for the next.
                let axis = usize::from(!vertical);
                self.scrolled[axis] = self.scrolled[axis].saturating_add(v120);
                let steps = self.scrolled[axis] / DETENT;
                self.scrolled[axis] -= steps * DETENT;
                if steps == 0 { Ok(()) } else { self.session.call_noreply("NotifyPointerAxisDiscrete", &(axis as u32, steps)) }
            }
            InputEvent::TouchDown { id, x, y } => self.session.call_noreply("NotifyTouchDown", &(stream, id, x, y)),
            InputEvent::TouchMotion { id, x, y } => self.session.call_noreply("NotifyTouchMotion", &(stream, id, x, y)),
            InputEvent::TouchUp { id } => self.session.call_noreply("NotifyTouchUp", &(id,)),
        };
        if let Err(e) = sent {
            tracing::warn!("input into Mutter: {e}");
        }
    }
}

impl Drop for MutterMonitor {
    /// Stopping the session removes the virtual monitor.
    fn drop(&mut self) {
        if let Err(e) = self.session.call::<_, _, ()>("Stop", &()) {
            tracing::warn!("stopping Mutter's remote desktop session: {e}");
        }
    }
}
