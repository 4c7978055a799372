//! wl_compositor / wl_subcompositor / wl_shm: surface commits.

use crate::state::{ClientState, State};
use smithay::backend::renderer::utils::on_commit_buffer_handler;
use smithay::desktop::{PopupKind, WindowSurfaceType, layer_map_for_output};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, Resource};
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    CompositorClientState, CompositorHandler, CompositorState, get_parent, is_sync_subsurface, with_states,
};
use smithay::wayland::shell::wlr_layer::LayerSurfaceData;
use smithay::wayland::shm::{ShmHandler, ShmState};

impl CompositorHandler for State {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        if let Some(x) = client.get_data::<smithay::xwayland::XWaylandClientData>() {
            return &x.compositor_state;
        }
        &client.get_data::<ClientState>().expect("every client is inserted with ClientState").compositor
    }

    fn commit(&mut self, surface: &WlSurface) {
        on_commit_buffer_handler::<Self>(surface);
        if surface.client().is_some_and(|c| Some(&c) == self.xwayland.client.as_ref()) {
            self.xwayland.resolve(&self.dh);
        }
        if !is_sync_subsurface(surface) {
            let mut root = surface.clone();
            while let Some(parent) = get_parent(&root) {
                root = parent;
            }
            if let Some(window) = self.space.elements().find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &root)) {
                window.on_commit();
            }
        }
        // xdg clients wait for the initial configure after their first, buffer-less commit.
        if let Some(window) = self.space.elements().find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface)) {
            let toplevel = window.toplevel().expect("checked");
            if !toplevel.is_initial_configure_sent() {
                toplevel.send_configure();
            }
        }
        self.popups.commit(surface);
        if let Some(PopupKind::Xdg(popup)) = self.popups.find_popup(surface)
            && !popup.is_initial_configure_sent()
        {
            let _ = popup.send_configure();
        }
        self.commit_layer_surface(surface);
        // A synchronized subsurface's state shows with its parent's commit, not its own.
        if !is_sync_subsurface(surface) {
            self.last_commit = Some(std::time::Instant::now());
            if let Some(ping) = &self.render_ping {
                ping.ping();
            }
        }
    }
}

impl State {
    fn commit_layer_surface(&mut self, surface: &WlSurface) {
        let mut map = layer_map_for_output(&self.output);
        let Some(layer) = map.layer_for_surface(surface, WindowSurfaceType::TOPLEVEL).cloned() else { return };
        map.arrange();
        let sent = with_states(surface, |states| {
            states.data_map.get::<LayerSurfaceData>().map(|d| d.lock().expect("layer data").initial_configure_sent)
        });
        if sent == Some(false) {
            layer.layer_surface().send_configure();
        }
    }
}

impl BufferHandler for State {
    fn buffer_destroyed(&mut self, _buffer: &WlBuffer) {}
}

impl ShmHandler for State {
    fn shm_state(&self) -> &ShmState {
        &self.shm
    }
}
