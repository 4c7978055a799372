//! X11 apps through Xwayland. Debian 12's Xwayland (22.1.9) predates xwayland_shell, so
//! Smithay never links an X11 window to its wl_surface: we resolve the legacy
//! `WL_SURFACE_ID` ourselves and render, focus and pace those surfaces directly.

use crate::state::State;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, DisplayHandle, Resource};
use smithay::utils::{Logical, Point};
use smithay::xwayland::{X11Surface, X11Wm, XWayland, XWaylandEvent};
use std::ffi::OsString;

/// One mapped X11 window.
pub struct X11Window {
    pub surface: X11Surface,
    /// Its wl_surface, once Xwayland has told us which one it is.
    pub wl: Option<WlSurface>,
    /// When it was mapped, to find the topmost window (see `State::stacking`).
    pub mapped_at: u64,
}

/// Xwayland's client and window manager, and the mapped X11 windows, bottom to top.
#[derive(Default)]
pub struct Xwayland {
    pub wm: Option<X11Wm>,
    pub client: Option<Client>,
    pub windows: Vec<X11Window>,
}

impl Xwayland {
    /// Links windows to their wl_surfaces (the legacy WL_SURFACE_ID may arrive before the
    /// surface is created, so this is retried on every commit and frame).
    #[allow(deprecated)] // wl_surface_id is the legacy path itself
    pub fn resolve(&mut self, dh: &DisplayHandle) {
        let Some(client) = &self.client else { return };
        for w in &mut self.windows {
            if w.wl.as_ref().is_some_and(|s| s.is_alive()) {
                continue;
            }
            w.wl = w.surface.wl_surface().or_else(|| {
                let id = w.surface.wl_surface_id()?;
                client.object_from_protocol_id::<WlSurface>(dh, id).ok()
            });
        }
    }

    /// Visible X11 surfaces, topmost first, with their positions.
    pub fn visible(&self) -> impl Iterator<Item = (&WlSurface, Point<i32, Logical>, &X11Window)> {
        self.windows.iter().rev().filter_map(|w| Some((w.wl.as_ref()?, w.surface.geometry().loc, w)))
    }

    pub fn remove(&mut self, surface: &X11Surface) {
        self.windows.retain(|w| &w.surface != surface);
    }
}

/// Starts Xwayland; once it is ready the window manager starts and `on_ready` gets the
/// DISPLAY to give X11 apps (`None` if Xwayland failed: the session goes on without X).
pub fn spawn(state: &mut State, on_ready: impl FnOnce(&mut State, Option<OsString>) + 'static) {
    let x11_unix = std::path::Path::new("/tmp/.X11-unix");
    if !x11_unix.exists() {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let _ = std::fs::DirBuilder::new().mode(0o1777).create(x11_unix);
        let _ = std::fs::set_permissions(x11_unix, std::fs::Permissions::from_mode(0o1777));
    }
    let spawned = XWayland::spawn(
        &state.dh,
        None,
        std::iter::empty::<(OsString, OsString)>(),
        true,
        std::process::Stdio::null(),
        std::process::Stdio::null(),
        |_| (),
    );
    let (xwayland, client) = match spawned {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("cannot start Xwayland ({e}); X11 apps will not run");
            return on_ready(state, None);
        }
    };
    state.xwayland.client = Some(client.clone());
    let on_ready = std::rc::Rc::new(std::cell::RefCell::new(Some(on_ready)));
    let ready = std::rc::Rc::clone(&on_ready);
    let inserted = state.loop_handle.insert_source(xwayland, move |event, _, state: &mut State| {
        let display = match event {
            XWaylandEvent::Ready { x11_socket, display_number } => {
                match X11Wm::start_wm(state.loop_handle.clone(), x11_socket, client.clone()) {
                    Ok(wm) => {
                        state.xwayland.wm = Some(wm);
                        state.offer_client_clipboard_to_x11();
                        tracing::info!(display_number, "Xwayland ready");
                        Some(OsString::from(format!(":{display_number}")))
                    }
                    Err(e) => {
                        tracing::error!("X11 window manager: {e}");
                        None
                    }
                }
            }
            XWaylandEvent::Error => {
                tracing::error!("Xwayland failed to start; X11 apps will not run");
                None
            }
        };
        if let Some(f) = ready.borrow_mut().take() {
            f(state, display);
        }
    });
    if let Err(e) = inserted {
        tracing::error!("Xwayland event source: {e}");
        if let Some(f) = on_ready.borrow_mut().take() {
            f(state, None);
        }
    }
}
