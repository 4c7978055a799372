//! The X11 window manager's policy: every normal X11 window is fullscreen on the output;
//! X11's selections bridged to Wayland's (`selection`).

use crate::state::State;
use crate::xwayland::X11Window;
use smithay::utils::{Logical, Rectangle};
use smithay::wayland::selection::SelectionTarget;
use smithay::wayland::xwayland_shell::{XWaylandShellHandler, XWaylandShellState};
use smithay::xwayland::xwm::{Reorder, ResizeEdge, XwmId};
use smithay::xwayland::{X11Surface, X11Wm, XwmHandler};
use std::os::fd::OwnedFd;

impl XwmHandler for State {
    fn xwm_state(&mut self, _xwm: XwmId) -> &mut X11Wm {
        self.xwayland.wm.as_mut().expect("X11 events only arrive once the WM runs")
    }

    fn new_window(&mut self, _xwm: XwmId, _window: X11Surface) {}

    fn new_override_redirect_window(&mut self, _xwm: XwmId, _window: X11Surface) {}

    fn map_window_request(&mut self, _xwm: XwmId, window: X11Surface) {
        if let Err(e) = window.set_mapped(true) {
            tracing::warn!("mapping X11 window: {e}");
            return;
        }
        let _ = window.set_fullscreen(true);
        let _ = window.configure(self.output_rect());
        self.track_x11(window);
    }

    fn mapped_override_redirect_window(&mut self, _xwm: XwmId, window: X11Surface) {
        // Menus and tooltips place themselves.
        self.track_x11(window);
    }

    fn unmapped_window(&mut self, _xwm: XwmId, window: X11Surface) {
        self.xwayland.remove(&window);
        if !window.is_override_redirect() {
            let _ = window.set_mapped(false);
        }
    }

    fn destroyed_window(&mut self, _xwm: XwmId, window: X11Surface) {
        self.xwayland.remove(&window);
    }

    fn configure_request(
        &mut self,
        _xwm: XwmId,
        window: X11Surface,
        _x: Option<i32>,
        _y: Option<i32>,
        _w: Option<u32>,
        _h: Option<u32>,
        _reorder: Option<Reorder>,
    ) {
        // Normal windows stay fullscreen whatever they ask for.
        let _ = window.configure(self.output_rect());
    }

    fn configure_notify(&mut self, _xwm: XwmId, _window: X11Surface, _geometry: Rectangle<i32, Logical>, _above: Option<u32>) {}

    fn resize_request(&mut self, _xwm: XwmId, _window: X11Surface, _button: u32, _edge: ResizeEdge) {}

    fn move_request(&mut self, _xwm: XwmId, _window: X11Surface, _button: u32) {}

    /// X11 clients read the clipboard whenever they like, as on any X server (and as data
    /// control lets Wayland clients): a session's apps are its one user's.
    fn allow_selection_access(&mut self, _xwm: XwmId, _selection: SelectionTarget) -> bool {
        true
    }

    fn send_selection(&mut self, _xwm: XwmId, selection: SelectionTarget, mime_type: String, fd: OwnedFd) {
        self.read_for_x11(selection, mime_type, fd);
    }

    fn new_selection(&mut self, _xwm: XwmId, selection: SelectionTarget, mime_types: Vec<String>) {
        self.x11_selection(selection, mime_types);
    }

    fn cleared_selection(&mut self, _xwm: XwmId, selection: SelectionTarget) {
        self.x11_selection_cleared(selection);
    }
}

impl XWaylandShellHandler for State {
    fn xwayland_shell_state(&mut self) -> &mut XWaylandShellState {
        &mut self.xwayland_shell
    }
}

impl State {
    fn output_rect(&self) -> Rectangle<i32, Logical> {
        Rectangle::from_size((self.mode.width as i32, self.mode.height as i32).into())
    }

    fn track_x11(&mut self, surface: X11Surface) {
        self.xwayland.remove(&surface);
        let mapped_at = self.next_stacking();
        self.xwayland.windows.push(X11Window { surface, wl: None, mapped_at });
        self.xwayland.resolve(&self.dh);
    }
}
