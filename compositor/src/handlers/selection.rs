//! The clipboard and primary selection: Wayland's data device and primary selection, wlr
//! data control (clipboard tools and managers such as wl-copy/wl-paste), and the bridge to
//! X11's selections through the X11 window manager, so that text copied in an X11 app
//! pastes in a Wayland app and back.
//!
//! A selection an X11 client owns is set on the seat as the compositor's own (its user data
//! says X11); Wayland clients read it through the window manager. A selection a Wayland
//! client owns is announced to X11 by the window manager, which then reads it for X11
//! clients through the seat.
//!
//! The streaming client's clipboard joins in: text it copied becomes the compositor's
//! selection (owner `Client`, offered to Wayland and X11 apps alike), and text an app
//! copies is read once the seat holds it and handed to the stream (`ClipboardSink`).

use crate::state::State;
use smithay::input::Seat;
use smithay::wayland::selection::data_device::{
    ClientDndGrabHandler, DataDeviceHandler, DataDeviceState, ServerDndGrabHandler, clear_data_device_selection,
    current_data_device_selection_userdata, request_data_device_client_selection, set_data_device_selection,
};
use smithay::wayland::selection::primary_selection::{
    PrimarySelectionHandler, PrimarySelectionState, clear_primary_selection, current_primary_selection_userdata,
    request_primary_client_selection, set_primary_selection,
};
use smithay::wayland::selection::wlr_data_control::{DataControlHandler, DataControlState};
use smithay::wayland::selection::{SelectionHandler, SelectionSource, SelectionTarget};
use smithay::xwayland::{X11Surface, X11Wm};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Who owns a selection the compositor holds on the seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectionOwner {
    X11,
    /// The streaming client, whose clipboard holds this text.
    Client(Arc<str>),
}

/// The types text is offered as (what wl-copy offers), the first one preferred when reading.
const TEXT_TYPES: [&str; 5] = ["text/plain;charset=utf-8", "UTF8_STRING", "text/plain", "STRING", "TEXT"];

/// How long a copying app gets to hand its text over.
const READ_WAIT: Duration = Duration::from_secs(2);

/// Copies read for the streaming client at once, at most.
const MAX_READS: usize = 4;

impl SelectionHandler for State {
    type SelectionUserData = SelectionOwner;

    /// A Wayland client set (or cleared) a selection: X11 clients see it, and the streaming
    /// client gets its text.
    fn new_selection(&mut self, target: SelectionTarget, source: Option<SelectionSource>, _seat: Seat<Self>) {
        let types = source.map(|s| s.mime_types());
        if target == SelectionTarget::Clipboard
            && let Some(types) = &types
        {
            self.share_clipboard_soon(types.clone());
        }
        if let Some(wm) = self.xwayland.wm.as_mut()
            && let Err(e) = claim_for_x11(wm, target, types)
        {
            tracing::warn!("{target:?} selection not offered to X11: {e}");
        }
    }

    /// A Wayland client reads a selection an X11 client owns.
    fn send_selection(&mut self, target: SelectionTarget, mime_type: String, fd: OwnedFd, _seat: Seat<Self>, owner: &SelectionOwner) {
        match owner {
            SelectionOwner::X11 => {
                if let Some(wm) = self.xwayland.wm.as_mut()
                    && let Err(e) = wm.send_selection(target, mime_type, fd, self.loop_handle.clone())
                {
                    tracing::warn!("X11 {target:?} selection not read: {e}");
                }
            }
            SelectionOwner::Client(text) => write_text(fd, Arc::clone(text)),
        }
    }
}

impl State {
    /// The streaming client copied `text`: the session's apps paste it.
    pub fn set_client_clipboard(&mut self, text: String) {
        set_data_device_selection(&self.dh, &self.seat, TEXT_TYPES.map(String::from).into(), SelectionOwner::Client(text.into()));
        self.offer_client_clipboard_to_x11();
    }

    /// X11 apps see the client's text as the clipboard (once Xwayland runs: also called then).
    pub fn offer_client_clipboard_to_x11(&mut self) {
        let client_owned = matches!(current_data_device_selection_userdata(&self.seat).as_deref(), Some(SelectionOwner::Client(_)));
        if let Some(wm) = self.xwayland.wm.as_mut()
            && client_owned
            && let Err(e) = claim_for_x11(wm, SelectionTarget::Clipboard, Some(TEXT_TYPES.map(String::from).into()))
        {
            tracing::warn!("the client's clipboard not offered to X11: {e}");
        }
    }

    /// An app took the clipboard offering `types`: once the seat holds it (after this
    /// request is handled), its text goes to the streaming client.
    fn share_clipboard_soon(&mut self, types: Vec<String>) {
        if self.clipboard_out.is_some() {
            self.loop_handle.insert_idle(move |state| state.share_clipboard(&types));
        }
    }

    /// Reads the clipboard's text (offered as `types`) on a thread and hands it to the
    /// stream (a few reads at once at most: an app copying in a loop gets no more threads).
    fn share_clipboard(&mut self, types: &[String]) {
        let Some(sink) = self.clipboard_out.clone() else { return };
        if self.clipboard_reads.load(Ordering::Relaxed) >= MAX_READS {
            return tracing::info!("a copy not shared: {MAX_READS} are being read");
        }
        let Some(mime_type) = TEXT_TYPES.iter().find(|t| types.iter().any(|o| o == *t)) else { return };
        let owner = current_data_device_selection_userdata(&self.seat).map(|o| o.clone());
        let (reader, writer) = match std::io::pipe() {
            Ok(pipe) => pipe,
            Err(e) => return tracing::warn!("clipboard not shared: {e}"),
        };
        let asked = match owner {
            // The client's own text, come back: nothing new for it.
            Some(SelectionOwner::Client(_)) => return,
            Some(SelectionOwner::X11) => match self.xwayland.wm.as_mut() {
                Some(wm) => wm
                    .send_selection(SelectionTarget::Clipboard, mime_type.to_string(), writer.into(), self.loop_handle.clone())
                    .map_err(|e| e.to_string()),
                None => return,
            },
            None => request_data_device_client_selection(&self.seat, mime_type.to_string(), writer.into()).map_err(|e| e.to_string()),
        };
        if let Err(e) = asked {
            return tracing::warn!("clipboard not shared: {e}");
        }
        let reads = Arc::clone(&self.clipboard_reads);
        reads.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new().name("clipboard-read".into()).spawn(move || {
            match read_text(reader, sink.max_len) {
                Ok(text) => {
                    let _ = sink.send.send(text);
                }
                Err(e) => tracing::info!("clipboard not shared: {e}"),
            }
            reads.fetch_sub(1, Ordering::Relaxed);
        });
        if let Err(e) = spawned {
            self.clipboard_reads.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("clipboard not shared: {e}");
        }
    }

    /// An X11 client took a selection, offering these types.
    pub(super) fn x11_selection(&mut self, target: SelectionTarget, mime_types: Vec<String>) {
        if target == SelectionTarget::Clipboard {
            self.share_clipboard_soon(mime_types.clone());
        }
        match target {
            SelectionTarget::Clipboard => set_data_device_selection(&self.dh, &self.seat, mime_types, SelectionOwner::X11),
            SelectionTarget::Primary => set_primary_selection(&self.dh, &self.seat, mime_types, SelectionOwner::X11),
        }
    }

    /// The X11 client's selection is gone; a Wayland client's taken since is left alone.
    pub(super) fn x11_selection_cleared(&mut self, target: SelectionTarget) {
        let x11 = |owner: Option<std::cell::Ref<'_, SelectionOwner>>| owner.is_some_and(|o| *o == SelectionOwner::X11);
        match target {
            SelectionTarget::Clipboard => {
                if x11(current_data_device_selection_userdata(&self.seat)) {
                    clear_data_device_selection(&self.dh, &self.seat);
                }
            }
            SelectionTarget::Primary => {
                if x11(current_primary_selection_userdata(&self.seat)) {
                    clear_primary_selection(&self.dh, &self.seat);
                }
            }
        }
    }

    /// An X11 client reads a Wayland client's selection, or the streaming client's (into `fd`).
    pub(super) fn read_for_x11(&mut self, target: SelectionTarget, mime_type: String, fd: OwnedFd) {
        if target == SelectionTarget::Clipboard
            && let Some(SelectionOwner::Client(text)) = current_data_device_selection_userdata(&self.seat).map(|o| o.clone())
        {
            return write_text(fd, text);
        }
        let read = match target {
            SelectionTarget::Clipboard => request_data_device_client_selection(&self.seat, mime_type, fd).map_err(|e| e.to_string()),
            SelectionTarget::Primary => request_primary_client_selection(&self.seat, mime_type, fd).map_err(|e| e.to_string()),
        };
        if let Err(e) = read {
            tracing::warn!("{target:?} selection not read for X11: {e}");
        }
    }
}

/// Makes the window manager own (or give up) an X11 selection for Wayland's, now.
/// Smithay 0.7's `X11Wm::new_selection` leaves its request unflushed: it would reach the X
/// server only with the WM's next request, after an X11 app's later copy, and take the
/// selection back from that app (its copy lost). An empty restacking is the one public call
/// that always flushes.
fn claim_for_x11(wm: &mut X11Wm, target: SelectionTarget, types: Option<Vec<String>>) -> Result<(), String> {
    wm.new_selection(target, types).map_err(|e| e.to_string())?;
    wm.update_stacking_order_upwards(std::iter::empty::<&X11Surface>()).map_err(|e| e.to_string())
}

/// Hands `text` to a pasting app on a thread: a pipe takes 64 KiB before its reader reads.
fn write_text(fd: OwnedFd, text: Arc<str>) {
    let spawned = std::thread::Builder::new().name("clipboard-write".into()).spawn(move || {
        let _ = std::fs::File::from(fd).write_all(text.as_bytes());
    });
    if let Err(e) = spawned {
        tracing::warn!("clipboard not pasted: {e}");
    }
}

/// An app's copied text, read until it closes its end: at most `max_len` bytes of UTF-8
/// within [`READ_WAIT`], else an error (a copy too long to share, or an app that hangs).
fn read_text(reader: std::io::PipeReader, max_len: usize) -> Result<String, String> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    fcntl(reader.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + READ_WAIT;
    let (mut text, mut chunk) = (Vec::new(), [0u8; 4096]);
    let mut reader = reader;
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if text.len() + n > max_len => return Err(format!("the copied text is longer than {max_len} bytes")),
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err("the copying app did not hand its text over in time".into());
                }
                let timeout = PollTimeout::from(left.as_millis().min(1000) as u16);
                poll(&mut [PollFd::new(reader.as_fd(), PollFlags::POLLIN)], timeout).map_err(|e| e.to_string())?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    String::from_utf8(text).map_err(|_| "the copied text is not UTF-8".into())
}

impl DataDeviceHandler for State {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.data_device
    }
}

impl ClientDndGrabHandler for State {}
impl ServerDndGrabHandler for State {}

impl PrimarySelectionHandler for State {
    fn primary_selection_state(&self) -> &PrimarySelectionState {
        &self.primary_selection
    }
}

impl DataControlHandler for State {
    fn data_control_state(&self) -> &DataControlState {
        &self.data_control
    }
}
