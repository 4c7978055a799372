//! The clipboard and primary selection: Wayland's data device and primary selection, wlr
//! data control (clipboard tools and managers such as wl-copy/wl-paste), and the bridge to
//! X11's selections through the X11 window manager, so that text copied in an X11 app
//! pastes in a Wayland app and back.
//!
//! A selection an X11 client owns is set on the seat as the compositor's own (its user data
//! says X11); Wayland clients read it through the window manager. A selection a Wayland
//! client owns is announced to X11 by the window manager, which then reads it for X11
//! clients through the seat.

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
use std::os::fd::OwnedFd;

/// Who owns a selection the compositor holds on the seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectionOwner {
    X11,
}

impl SelectionHandler for State {
    type SelectionUserData = SelectionOwner;

    /// A Wayland client set (or cleared) a selection: X11 clients see it.
    fn new_selection(&mut self, target: SelectionTarget, source: Option<SelectionSource>, _seat: Seat<Self>) {
        if let Some(wm) = self.xwayland.wm.as_mut()
            && let Err(e) = wm.new_selection(target, source.map(|s| s.mime_types()))
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
        }
    }
}

impl State {
    /// An X11 client took a selection, offering these types.
    pub(super) fn x11_selection(&mut self, target: SelectionTarget, mime_types: Vec<String>) {
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

    /// An X11 client reads a Wayland client's selection (into `fd`).
    pub(super) fn read_for_x11(&mut self, target: SelectionTarget, mime_type: String, fd: OwnedFd) {
        let read = match target {
            SelectionTarget::Clipboard => request_data_device_client_selection(&self.seat, mime_type, fd).map_err(|e| e.to_string()),
            SelectionTarget::Primary => request_primary_client_selection(&self.seat, mime_type, fd).map_err(|e| e.to_string()),
        };
        if let Err(e) = read {
            tracing::warn!("{target:?} selection not read for X11: {e}");
        }
    }
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
