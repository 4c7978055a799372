//! The compositor's state: Smithay's protocol states, the one output, the windows.

use crate::launch::App;
use crate::xwayland::Xwayland;
use punktfunk_frame::Mode;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::desktop::{PopupManager, Space, Window};
use smithay::input::keyboard::XkbConfig;
use smithay::input::pointer::CursorImageStatus;
use smithay::input::{Seat, SeatState};
use smithay::output::{Mode as OutputMode, Output, PhysicalProperties, Scale, Subpixel};
use smithay::reexports::calloop::{LoopHandle, LoopSignal};
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::utils::{Clock, Monotonic, Transform};
use smithay::wayland::compositor::{CompositorClientState, CompositorState};
use smithay::wayland::cursor_shape::CursorShapeManagerState;
use smithay::wayland::dmabuf::DmabufState;
use smithay::wayland::fractional_scale::FractionalScaleManagerState;
use smithay::wayland::output::OutputManagerState;
use smithay::wayland::pointer_constraints::PointerConstraintsState;
use smithay::wayland::presentation::PresentationState;
use smithay::wayland::relative_pointer::RelativePointerManagerState;
use smithay::wayland::selection::data_device::DataDeviceState;
use smithay::wayland::selection::primary_selection::PrimarySelectionState;
use smithay::wayland::selection::wlr_data_control::DataControlState;
use smithay::wayland::shell::wlr_layer::WlrLayerShellState;
use smithay::wayland::shell::xdg::XdgShellState;
use smithay::wayland::shell::xdg::decoration::XdgDecorationState;
use smithay::wayland::shm::ShmState;
use smithay::wayland::viewporter::ViewporterState;
use smithay::wayland::xdg_activation::XdgActivationState;
use smithay::wayland::xwayland_shell::XWaylandShellState;

/// Per-client data Smithay needs.
#[derive(Default)]
pub struct ClientState {
    pub compositor: CompositorClientState,
}

impl ClientData for ClientState {
    fn initialized(&self, _: ClientId) {}
    fn disconnected(&self, id: ClientId, reason: DisconnectReason) {
        if let DisconnectReason::ProtocolError(e) = reason {
            tracing::warn!(?id, "client disconnected after a protocol error: {e}");
        }
    }
}

/// Whether the renderer can use a client's dmabuf.
pub type ImportCheck = Box<dyn FnMut(&Dmabuf) -> bool>;

/// linux-dmabuf: its state, and the renderer's import check once a GPU renderer offers it.
pub struct Dmabufs {
    pub state: DmabufState,
    pub import: Option<ImportCheck>,
}

pub struct State {
    pub dh: DisplayHandle,
    pub loop_handle: LoopHandle<'static, State>,
    pub loop_signal: LoopSignal,
    pub clock: Clock<Monotonic>,
    pub mode: Mode,
    pub output: Output,
    pub space: Space<Window>,
    pub popups: PopupManager,
    pub seat: Seat<State>,
    pub cursor: CursorImageStatus,
    /// The mode changed: the renderer must rebuild its buffers.
    pub mode_changed: bool,
    /// The next frame must be drawn in full ([`crate::Control::Redraw`]).
    pub redraw: bool,
    /// Counts window maps, so the most recently mapped window is known to be on top.
    stacking: u64,
    pub xwayland: Xwayland,
    /// The session command, once launched.
    pub app: Option<App>,
    /// Asks for a render as soon as one is due (on every commit).
    pub render_ping: Option<smithay::reexports::calloop::ping::Ping>,
    /// The newest commit since the last render: the content the next frame shows.
    pub last_commit: Option<std::time::Instant>,
    /// Where text the session's apps copy goes (the streaming client), if anywhere.
    pub clipboard_out: Option<crate::ClipboardSink>,
    /// Copies being read for the streaming client (each on a thread, bounded).
    pub clipboard_reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,

    pub compositor: CompositorState,
    pub shm: ShmState,
    pub dmabuf: Dmabufs,
    pub xdg_shell: XdgShellState,
    pub xdg_decoration: XdgDecorationState,
    pub layer_shell: WlrLayerShellState,
    pub seat_state: SeatState<State>,
    pub data_device: DataDeviceState,
    pub primary_selection: PrimarySelectionState,
    pub data_control: DataControlState,
    pub activation: XdgActivationState,
    pub presentation: PresentationState,
    pub xwayland_shell: XWaylandShellState,
}

/// Stored in a Wayland window's user data: its place in the stacking order, set when it was
/// mapped or last activated (see `State::next_stacking`).
pub struct MappedAt(pub std::cell::Cell<u64>);

/// Keyboard layout for the seat (xkb names; empty fields use the XKB_DEFAULT_* variables).
#[derive(Clone, Debug, Default)]
pub struct KeyboardLayout {
    pub layout: String,
    pub variant: String,
    pub options: Option<String>,
}

impl State {
    pub fn new(
        dh: DisplayHandle,
        loop_handle: LoopHandle<'static, State>,
        loop_signal: LoopSignal,
        mode: Mode,
        keyboard: &KeyboardLayout,
    ) -> anyhow::Result<Self> {
        let clock = Clock::<Monotonic>::new();
        let output = Output::new(
            "PUNKTFUNK-1".into(),
            PhysicalProperties { size: (0, 0).into(), subpixel: Subpixel::Unknown, make: "punktfunk".into(), model: "virtual".into() },
        );
        let _global = output.create_global::<State>(&dh);
        let mut space = Space::default();
        apply_mode(&output, mode);
        space.map_output(&output, (0, 0));

        let mut seat_state = SeatState::new();
        let mut seat = seat_state.new_wl_seat(&dh, "seat0");
        let xkb =
            XkbConfig { layout: &keyboard.layout, variant: &keyboard.variant, options: keyboard.options.clone(), ..Default::default() };
        seat.add_keyboard(xkb, 400, 30).map_err(|e| anyhow::anyhow!("keyboard layout {:?}: {e}", keyboard.layout))?;
        seat.add_pointer();
        seat.add_touch();

        OutputManagerState::new_with_xdg_output::<State>(&dh);
        ViewporterState::new::<State>(&dh);
        FractionalScaleManagerState::new::<State>(&dh);
        RelativePointerManagerState::new::<State>(&dh);
        PointerConstraintsState::new::<State>(&dh);
        CursorShapeManagerState::new::<State>(&dh);
        let primary_selection = PrimarySelectionState::new::<State>(&dh);
        Ok(Self {
            compositor: CompositorState::new::<State>(&dh),
            shm: ShmState::new::<State>(&dh, Vec::new()),
            dmabuf: Dmabufs { state: DmabufState::new(), import: None },
            xdg_shell: XdgShellState::new::<State>(&dh),
            xdg_decoration: XdgDecorationState::new::<State>(&dh),
            layer_shell: WlrLayerShellState::new::<State>(&dh),
            data_device: DataDeviceState::new::<State>(&dh),
            data_control: DataControlState::new::<State, _>(&dh, Some(&primary_selection), |_| true),
            primary_selection,
            activation: XdgActivationState::new::<State>(&dh),
            presentation: PresentationState::new::<State>(&dh, clock.id() as u32),
            seat_state,
            seat,
            cursor: CursorImageStatus::default_named(),
            mode_changed: false,
            redraw: false,
            stacking: 0,
            xwayland: Xwayland::default(),
            app: None,
            render_ping: None,
            clipboard_out: None,
            clipboard_reads: Default::default(),
            last_commit: None,
            xwayland_shell: XWaylandShellState::new::<State>(&dh),
            dh,
            loop_handle,
            loop_signal,
            clock,
            mode,
            output,
            space,
            popups: PopupManager::default(),
        })
    }

    /// A fresh stacking position: later-mapped windows are above earlier ones.
    pub fn next_stacking(&mut self) -> u64 {
        self.stacking += 1;
        self.stacking
    }

    /// Switches the output to a new mode and tells fullscreen clients their new size.
    pub fn set_mode(&mut self, mode: Mode) {
        if mode == self.mode {
            return;
        }
        tracing::info!(%mode, "output mode change");
        self.mode = mode;
        apply_mode(&self.output, mode);
        self.mode_changed = true;
        for w in self.space.elements() {
            if let Some(t) = w.toplevel() {
                t.with_pending_state(|s| s.size = Some((mode.width as i32, mode.height as i32).into()));
                t.send_pending_configure();
            }
        }
        let rect = smithay::utils::Rectangle::from_size((mode.width as i32, mode.height as i32).into());
        for w in self.xwayland.windows.iter().filter(|w| !w.surface.is_override_redirect()) {
            let _ = w.surface.configure(rect);
        }
    }
}

fn apply_mode(output: &Output, mode: Mode) {
    let m = OutputMode { size: (mode.width as i32, mode.height as i32).into(), refresh: mode.refresh_mhz as i32 };
    output.change_current_state(Some(m), Some(Transform::Normal), Some(Scale::Integer(1)), Some((0, 0).into()));
    output.set_preferred(m);
}
