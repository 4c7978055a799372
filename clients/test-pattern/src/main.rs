//! `punktfunk-test-pattern [--color RRGGBB] [--frames N] [--still-after N] [--input-log FILE]
//! [--strict] [--moving]`: a Wayland client that draws the test pattern (see the library docs) once per
//! frame callback, at whatever size the compositor configures, double-buffered; it exits
//! after `--frames`, and stops drawing (a still picture, the window open) after
//! `--still-after`, but for one frame after each press (an editor showing a typed key).
//!
//! `--strict` fails (exit 3) when a frame callback arrives while both buffers are still with
//! the compositor, as weston's demo clients abort: a compositor must give one back first.
//! `--moving` adds the scrolling bars and the noise (see the library docs).
//!
//! Input makes itself seen: every key or button press swaps the band's colour for its
//! complement (visible in the stream), and with `--input-log` every keyboard and pointer
//! event is written to FILE, one line each (`key 30 down`, `button 272 up`, `motion X Y`,
//! `scroll vertical V`), so tests can check what arrived.

use anyhow::Context;
use memmap2::MmapMut;
use punktfunk_test_pattern::{Canvas, draw_band, draw_moving, now_us, stamp};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_keyboard, wl_pointer, wl_registry, wl_seat, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{Connection, Dispatch, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

struct Buffer {
    buffer: wl_buffer::WlBuffer,
    map: MmapMut,
    busy: bool,
}

#[derive(Default)]
struct App {
    /// Size from the last toplevel configure (0 = our choice).
    pending: (i32, i32),
    /// Size to draw at, set once the surface has been configured.
    size: Option<(u32, u32)>,
    buffers: Vec<Buffer>,
    frame_due: bool,
    closed: bool,
    /// Presses so far: an odd count shows the complementary colour.
    presses: u32,
    log: Option<File>,
    /// A frame callback found both buffers busy.
    starved: bool,
    /// The seat's keyboard and pointer, taken once the seat says it has them (asking a seat
    /// for one it lacks is an error some compositors do not survive).
    keyboard: Option<wl_keyboard::WlKeyboard>,
    pointer: Option<wl_pointer::WlPointer>,
}

impl App {
    fn log(&mut self, line: std::fmt::Arguments) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut color = 0xff00ff;
    let mut frames = u32::MAX;
    let mut still_after = u32::MAX;
    let mut log = None;
    let mut strict = false;
    let mut moving = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--color" => color = u32::from_str_radix(&args.next().context("--color RRGGBB")?, 16).context("--color RRGGBB")?,
            "--frames" => frames = args.next().context("--frames N")?.parse().context("--frames N")?,
            "--still-after" => still_after = args.next().context("--still-after N")?.parse().context("--still-after N")?,
            "--input-log" => log = Some(File::create(args.next().context("--input-log FILE")?).context("creating the input log")?),
            "--strict" => strict = true,
            "--moving" => moving = true,
            _ => {
                anyhow::bail!(
                    "usage: punktfunk-test-pattern [--color RRGGBB] [--frames N] [--still-after N] [--input-log FILE] [--strict] [--moving]"
                )
            }
        }
    }
    let conn = Connection::connect_to_env().context("connecting to the Wayland display")?;
    let (globals, mut queue) = registry_queue_init::<App>(&conn)?;
    let qh = queue.handle();
    let compositor: wl_compositor::WlCompositor = globals.bind(&qh, 4..=6, ())?;
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ())?;
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=6, ())?;
    let _seat: wl_seat::WlSeat = globals.bind(&qh, 5..=7, ())?;
    let surface = compositor.create_surface(&qh, ());
    let xdg = wm.get_xdg_surface(&surface, &qh, ());
    let toplevel = xdg.get_toplevel(&qh, ());
    toplevel.set_title("punktfunk test pattern".into());
    toplevel.set_app_id("punktfunk-test-pattern".into());
    surface.commit();

    let mut app = App { log, ..App::default() };
    let mut counter = 0u32;
    let mut drawn_presses = 0;
    while !app.closed && counter < frames {
        queue.blocking_dispatch(&mut app)?;
        if strict && app.starved {
            eprintln!("punktfunk-test-pattern: a frame callback found both buffers busy");
            std::process::exit(3);
        }
        let Some((w, h)) = app.size else { continue };
        // Still after `still_after` frames, except that a press is shown once (an editor
        // showing a typed key on a still screen).
        let still = counter >= still_after && app.presses == drawn_presses;
        if (!app.frame_due && counter > 0) || still {
            continue;
        }
        let stride = w as usize * 4;
        if app.buffers.first().is_none_or(|b| b.map.len() != stride * h as usize) {
            app.buffers = (0..2).map(|i| new_buffer(&shm, &qh, w, h, i)).collect::<anyhow::Result<_>>()?;
        }
        let Some((i, buf)) = app.buffers.iter_mut().enumerate().find(|(_, b)| !b.busy) else { continue };
        let band = if app.presses % 2 == 1 { !color & 0xffffff } else { color };
        let mut canvas = Canvas { data: &mut buf.map, width: w, height: h, stride };
        draw_band(&mut canvas, counter, band);
        if moving {
            draw_moving(&mut canvas, counter);
        }
        // Last: the stamp says when the whole picture was done.
        stamp(&mut canvas, counter, now_us());
        buf.busy = true;
        surface.attach(Some(&app.buffers[i].buffer), 0, 0);
        surface.damage_buffer(0, 0, w as i32, h as i32);
        surface.frame(&qh, ());
        surface.commit();
        app.frame_due = false;
        (counter, drawn_presses) = (counter + 1, app.presses);
    }
    Ok(())
}

fn new_buffer(shm: &wl_shm::WlShm, qh: &QueueHandle<App>, w: u32, h: u32, index: usize) -> anyhow::Result<Buffer> {
    let len = w as usize * h as usize * 4;
    let fd = nix::sys::memfd::memfd_create(c"punktfunk-pattern", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let file = File::from(fd);
    file.set_len(len as u64)?;
    // SAFETY: the memfd is ours alone; the compositor only reads it.
    let map = unsafe { MmapMut::map_mut(&file)? };
    let pool = shm.create_pool(file.as_fd(), len as i32, qh, ());
    let buffer = pool.create_buffer(0, w as i32, h as i32, w as i32 * 4, wl_shm::Format::Xrgb8888, qh, index);
    pool.destroy();
    Ok(Buffer { buffer, map, busy: false })
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for App {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for App {
    fn event(app: &mut Self, seat: &wl_seat::WlSeat, event: wl_seat::Event, _: &(), _: &Connection, qh: &QueueHandle<Self>) {
        let wl_seat::Event::Capabilities { capabilities: WEnum::Value(caps) } = event else { return };
        if caps.contains(wl_seat::Capability::Keyboard) && app.keyboard.is_none() {
            app.keyboard = Some(seat.get_keyboard(qh, ()));
        }
        if caps.contains(wl_seat::Capability::Pointer) && app.pointer.is_none() {
            app.pointer = Some(seat.get_pointer(qh, ()));
        }
    }
}

delegate_noop!(App: ignore wl_compositor::WlCompositor);
delegate_noop!(App: ignore wl_shm::WlShm);
delegate_noop!(App: ignore wl_shm_pool::WlShmPool);
delegate_noop!(App: ignore wl_surface::WlSurface);

fn pressed<T>(state: WEnum<T>, down: T) -> bool
where
    T: PartialEq,
{
    matches!(state, WEnum::Value(s) if s == down)
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for App {
    fn event(app: &mut Self, _: &wl_keyboard::WlKeyboard, event: wl_keyboard::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let wl_keyboard::Event::Key { key, state, .. } = event {
            let down = pressed(state, wl_keyboard::KeyState::Pressed);
            app.presses += u32::from(down);
            app.log(format_args!("key {key} {}", if down { "down" } else { "up" }));
        }
    }
}

impl Dispatch<wl_pointer::WlPointer, ()> for App {
    fn event(app: &mut Self, _: &wl_pointer::WlPointer, event: wl_pointer::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match event {
            wl_pointer::Event::Button { button, state, .. } => {
                let down = pressed(state, wl_pointer::ButtonState::Pressed);
                app.presses += u32::from(down);
                app.log(format_args!("button {button} {}", if down { "down" } else { "up" }));
            }
            wl_pointer::Event::Motion { surface_x, surface_y, .. } => app.log(format_args!("motion {surface_x:.1} {surface_y:.1}")),
            wl_pointer::Event::Axis { axis, value, .. } => {
                let which = if pressed(axis, wl_pointer::Axis::VerticalScroll) { "vertical" } else { "horizontal" };
                app.log(format_args!("scroll {which} {value:.1}"));
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, usize> for App {
    fn event(app: &mut Self, _: &wl_buffer::WlBuffer, event: wl_buffer::Event, index: &usize, _: &Connection, _: &QueueHandle<Self>) {
        if let wl_buffer::Event::Release = event
            && let Some(b) = app.buffers.get_mut(*index)
        {
            b.busy = false;
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for App {
    fn event(app: &mut Self, _: &wl_callback::WlCallback, event: wl_callback::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let wl_callback::Event::Done { .. } = event {
            app.starved |= !app.buffers.is_empty() && app.buffers.iter().all(|b| b.busy);
            app.frame_due = true;
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for App {
    fn event(_: &mut Self, wm: &xdg_wm_base::XdgWmBase, event: xdg_wm_base::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for App {
    fn event(app: &mut Self, xdg: &xdg_surface::XdgSurface, event: xdg_surface::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_surface::Event::Configure { serial } = event {
            xdg.ack_configure(serial);
            let (w, h) = app.pending;
            app.size = Some(if w > 0 && h > 0 { (w as u32, h as u32) } else { (640, 480) });
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for App {
    fn event(app: &mut Self, _: &xdg_toplevel::XdgToplevel, event: xdg_toplevel::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match event {
            xdg_toplevel::Event::Configure { width, height, .. } => app.pending = (width, height),
            xdg_toplevel::Event::Close => app.closed = true,
            _ => {}
        }
    }
}
