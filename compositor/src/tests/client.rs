//! A Wayland client inside the test process: the fixture steps it in turn with the
//! compositor (it never blocks on the socket), and it draws one xdg window in flat colours
//! from shm buffers.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wayland_client::protocol::{wl_buffer, wl_callback, wl_compositor, wl_registry, wl_shm, wl_shm_pool, wl_surface};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, delegate_noop};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

pub struct Client {
    conn: Connection,
    queue: EventQueue<Seen>,
    qh: QueueHandle<Seen>,
    pub seen: Seen,
    window: Option<Window>,
}

/// What the client was told.
#[derive(Default)]
pub struct Seen {
    compositor: Option<wl_compositor::WlCompositor>,
    shm: Option<wl_shm::WlShm>,
    wm_base: Option<xdg_wm_base::XdgWmBase>,
    /// The size of the last toplevel configure (0×0: the client chooses).
    pub size: (i32, i32),
    /// Whether that configure announced fullscreen.
    pub fullscreen: bool,
    /// The xdg_surface configure not yet acknowledged.
    unacked: Option<u32>,
    pub configures: u32,
    /// Frame callbacks the compositor has sent.
    pub frames_done: u32,
    pub closed: bool,
}

struct Window {
    surface: wl_surface::WlSurface,
    xdg: xdg_surface::XdgSurface,
    toplevel: xdg_toplevel::XdgToplevel,
}

/// What a callback is for: a round-trip's `sync`, or a surface's frame.
pub enum Callback {
    Sync(Arc<AtomicBool>),
    Frame,
}

impl Client {
    /// A client on its end of a socket pair; its registry is asked for at once.
    pub fn new(stream: UnixStream) -> Self {
        let conn = Connection::from_socket(stream).expect("client connection");
        let queue = conn.new_event_queue();
        let qh = queue.handle();
        conn.display().get_registry(&qh, ());
        Self { conn, queue, qh, seen: Seen::default(), window: None }
    }

    /// Sends what is queued, reads what arrived (without waiting) and handles it.
    pub fn dispatch(&mut self) {
        self.conn.flush().expect("client flush");
        if let Some(guard) = self.conn.prepare_read() {
            match guard.read() {
                Ok(_) => {}
                Err(wayland_client::backend::WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client read: {e}"),
            }
        }
        self.queue.dispatch_pending(&mut self.seen).expect("client dispatch");
    }

    /// A `sync`: the flag is set once the compositor has handled everything sent before it.
    pub fn sync(&mut self) -> Arc<AtomicBool> {
        let done = Arc::new(AtomicBool::new(false));
        self.conn.display().sync(&self.qh, Callback::Sync(Arc::clone(&done)));
        done
    }

    /// Opens the window (its first commit asks for a configure).
    pub fn open_window(&mut self) {
        let compositor = self.seen.compositor.as_ref().expect("wl_compositor bound");
        let wm_base = self.seen.wm_base.as_ref().expect("xdg_wm_base bound");
        let surface = compositor.create_surface(&self.qh, ());
        let xdg = wm_base.get_xdg_surface(&surface, &self.qh, ());
        let toplevel = xdg.get_toplevel(&self.qh, ());
        toplevel.set_title("fixture".into());
        surface.commit();
        self.window = Some(Window { surface, xdg, toplevel });
    }

    /// Acknowledges the last configure and shows a buffer of its size (or `fallback` where
    /// the compositor left the size to the client) in one colour, asking for a frame callback.
    pub fn draw(&mut self, (r, g, b): (u8, u8, u8), fallback: (i32, i32)) {
        let window = self.window.as_ref().expect("a window");
        if let Some(serial) = self.seen.unacked.take() {
            window.xdg.ack_configure(serial);
        }
        let (w, h) = if self.seen.size.0 > 0 { self.seen.size } else { fallback };
        // XRGB8888 is little-endian: B, G, R, X in memory.
        let pixels: Vec<u8> = [b, g, r, 0xff].repeat((w * h) as usize);
        let fd = nix::sys::memfd::memfd_create(c"fixture", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).expect("memfd");
        let mut file = std::fs::File::from(fd);
        file.write_all(&pixels).expect("shm contents");
        let shm = self.seen.shm.as_ref().expect("wl_shm bound");
        let pool = shm.create_pool(file.as_fd(), pixels.len() as i32, &self.qh, ());
        let buffer = pool.create_buffer(0, w, h, w * 4, wl_shm::Format::Xrgb8888, &self.qh, ());
        pool.destroy();
        window.surface.attach(Some(&buffer), 0, 0);
        window.surface.damage_buffer(0, 0, w, h);
        window.surface.frame(&self.qh, Callback::Frame);
        window.surface.commit();
    }

    /// Closes the window (the client stays connected).
    pub fn close_window(&mut self) {
        if let Some(w) = self.window.take() {
            w.toplevel.destroy();
            w.xdg.destroy();
            w.surface.destroy();
        }
    }
}

impl Dispatch<wl_registry::WlRegistry, ()> for Seen {
    fn event(
        seen: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        let wl_registry::Event::Global { name, interface, .. } = event else { return };
        match interface.as_str() {
            "wl_compositor" => seen.compositor = Some(registry.bind(name, 4, qh, ())),
            "wl_shm" => seen.shm = Some(registry.bind(name, 1, qh, ())),
            "xdg_wm_base" => seen.wm_base = Some(registry.bind(name, 1, qh, ())),
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, Callback> for Seen {
    fn event(seen: &mut Self, _: &wl_callback::WlCallback, _: wl_callback::Event, data: &Callback, _: &Connection, _: &QueueHandle<Self>) {
        match data {
            Callback::Sync(done) => done.store(true, Ordering::Release),
            Callback::Frame => seen.frames_done += 1,
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for Seen {
    fn event(_: &mut Self, wm: &xdg_wm_base::XdgWmBase, event: xdg_wm_base::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for Seen {
    fn event(seen: &mut Self, _: &xdg_surface::XdgSurface, event: xdg_surface::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_surface::Event::Configure { serial } = event {
            seen.unacked = Some(serial);
            seen.configures += 1;
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for Seen {
    fn event(seen: &mut Self, _: &xdg_toplevel::XdgToplevel, event: xdg_toplevel::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match event {
            xdg_toplevel::Event::Configure { width, height, states } => {
                seen.size = (width, height);
                // The states are native-endian u32s.
                seen.fullscreen = states
                    .chunks_exact(4)
                    .any(|s| u32::from_ne_bytes(s.try_into().expect("4 bytes")) == xdg_toplevel::State::Fullscreen as u32);
            }
            xdg_toplevel::Event::Close => seen.closed = true,
            _ => {}
        }
    }
}

delegate_noop!(Seen: ignore wl_compositor::WlCompositor);
delegate_noop!(Seen: ignore wl_surface::WlSurface);
delegate_noop!(Seen: ignore wl_shm::WlShm);
delegate_noop!(Seen: ignore wl_shm_pool::WlShmPool);
delegate_noop!(Seen: ignore wl_buffer::WlBuffer);
