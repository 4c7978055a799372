//! `punktfunk-greeter [--title TEXT] [--env KEY=VALUE]… [--pass-env KEY]… -- SESSION…`:
//! greetd's greeter for
//! a stream. A fullscreen Wayland window asks for the user name and whatever PAM asks, and
//! starts SESSION as the user once PAM agrees (greetd runs it after this process exits).
//! Keyboard: type, Backspace, Enter to go on, Escape to start over.

use anyhow::Context;
use greetd_ipc::codec::SyncCodec;
use greetd_ipc::{Request, Response};
use memmap2::MmapMut;
use punktfunk_greeter::login::Login;
use punktfunk_greeter::screen::{Canvas, draw};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{wl_buffer, wl_callback, wl_compositor, wl_keyboard, wl_registry, wl_seat, wl_shm, wl_shm_pool, wl_surface};
use wayland_client::{Connection, Dispatch, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};
use xkbcommon::xkb;

fn main() -> anyhow::Result<()> {
    let mut title = "Log in".to_owned();
    let mut env = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--title" => title = args.next().context("--title TEXT")?,
            "--env" => env.push(args.next().context("--env KEY=VALUE")?),
            // A secret for the session (the stream's join ticket) comes through our own
            // environment, which other users cannot read, not the command line.
            "--pass-env" => {
                let key = args.next().context("--pass-env KEY")?;
                let value = std::env::var(&key).with_context(|| format!("--pass-env {key}: not in the environment"))?;
                env.push(format!("{key}={value}"));
            }
            "--" => break,
            _ => anyhow::bail!("usage: punktfunk-greeter [--title TEXT] [--env KEY=VALUE]… [--pass-env KEY]… -- SESSION…"),
        }
    }
    let session: Vec<String> = args.collect();
    anyhow::ensure!(!session.is_empty(), "no session command after --");
    let greetd = UnixStream::connect(std::env::var("GREETD_SOCK").context("GREETD_SOCK is not set: run me from greetd")?)
        .context("connecting to greetd")?;

    // greetd answers each request in turn, a failed password only after PAM's delay: its
    // own thread, so the screen stays live meanwhile; answers wake the loop through a pipe.
    let (requests, to_greetd) = mpsc::channel::<Request>();
    let (from_greetd, responses) = mpsc::channel::<std::io::Result<Response>>();
    let (wake, woken) = UnixStream::pair()?;
    std::thread::Builder::new().name("greetd".into()).spawn(move || {
        let (mut greetd, mut wake) = (greetd, wake);
        for request in to_greetd {
            let answer = request
                .write_to(&mut greetd)
                .map_err(std::io::Error::other)
                .and_then(|()| Response::read_from(&mut greetd).map_err(std::io::Error::other));
            let failed = answer.is_err();
            if from_greetd.send(answer).is_err() || wake.write_all(&[1]).is_err() || failed {
                return;
            }
        }
    })?;

    let conn = Connection::connect_to_env().context("connecting to the Wayland display")?;
    let (globals, mut queue) = registry_queue_init::<App>(&conn)?;
    let qh = queue.handle();
    let compositor: wl_compositor::WlCompositor = globals.bind(&qh, 4..=6, ())?;
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ())?;
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=6, ())?;
    let seat: wl_seat::WlSeat = globals.bind(&qh, 5..=7, ())?;
    let _keyboard = seat.get_keyboard(&qh, ());
    let surface = compositor.create_surface(&qh, ());
    let xdg = wm.get_xdg_surface(&surface, &qh, ());
    let toplevel = xdg.get_toplevel(&qh, ());
    toplevel.set_title(title.clone());
    toplevel.set_app_id("punktfunk-greeter".into());
    toplevel.set_fullscreen(None);
    surface.commit();

    let mut app = App {
        login: Login::new(session, env),
        typed: String::new(),
        size: None,
        pending: (0, 0),
        buffers: Vec::new(),
        closed: false,
        drawn: false,
        xkb: None,
    };
    let mut shown = None;
    while !app.closed && !app.login.is_done() {
        while let Some(request) = app.login.poll_request() {
            requests.send(request).context("greetd went away")?;
        }
        if let Some(size) = app.size {
            let now = (app.login.screen().clone(), app.typed.clone(), size);
            if shown.as_ref() != Some(&now) && app.present(&surface, &shm, &qh, &title)? {
                eprintln!("punktfunk-greeter: {}", describe(&now.0));
                shown = Some(now);
            }
        }
        queue.flush()?;
        // Sleep until the compositor or greetd says something.
        let Some(guard) = queue.prepare_read() else {
            queue.dispatch_pending(&mut app)?;
            continue;
        };
        let mut fds = [
            nix::poll::PollFd::new(guard.connection_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(woken.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE)?;
        let (wayland, news) = (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false));
        if wayland {
            match guard.read() {
                // Woken without a whole message yet.
                Err(wayland_client::backend::WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                read => {
                    read?;
                }
            }
        } else {
            drop(guard);
        }
        queue.dispatch_pending(&mut app)?;
        if news {
            let _ = (&woken).read(&mut [0; 64]);
            for answer in responses.try_iter() {
                app.login.handle(answer.context("talking to greetd")?);
            }
        }
    }
    if app.login.is_done() {
        eprintln!("punktfunk-greeter: session starting");
        // The stream shows our last frame ("Starting the session…") until the session's
        // own comes: wait (briefly) until the compositor has drawn it.
        let _drawn = surface.frame(&qh, ());
        surface.commit();
        let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
        while !app.drawn && std::time::Instant::now() < until && queue.roundtrip(&mut app).is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    Ok(())
}

/// One line for the log (greetd keeps the greeter's output), never what was typed.
fn describe(screen: &punktfunk_greeter::login::Screen) -> String {
    let message = screen.message.as_deref().map(|m| format!(" [{m}]")).unwrap_or_default();
    format!("prompt {:?}{}{message}", screen.prompt, if screen.busy { " (waiting)" } else { "" })
}

struct App {
    login: Login,
    typed: String,
    size: Option<(u32, u32)>,
    pending: (i32, i32),
    buffers: Vec<Buffer>,
    closed: bool,
    xkb: Option<xkb::State>,
    /// The compositor drew the last frame (its frame callback came).
    drawn: bool,
}

struct Buffer {
    buffer: wl_buffer::WlBuffer,
    map: MmapMut,
    busy: bool,
}

impl App {
    /// Draws the screen into a free buffer and shows it; false when none is free yet.
    fn present(
        &mut self,
        surface: &wl_surface::WlSurface,
        shm: &wl_shm::WlShm,
        qh: &QueueHandle<Self>,
        title: &str,
    ) -> anyhow::Result<bool> {
        let Some((w, h)) = self.size else { return Ok(false) };
        let stride = w as usize * 4;
        if self.buffers.first().is_none_or(|b| b.map.len() != stride * h as usize) {
            self.buffers = (0..2).map(|i| new_buffer(shm, qh, w, h, i)).collect::<anyhow::Result<_>>()?;
        }
        let (screen, typed) = (self.login.screen().clone(), self.typed.clone());
        let Some((i, buf)) = self.buffers.iter_mut().enumerate().find(|(_, b)| !b.busy) else { return Ok(false) };
        draw(&mut Canvas { data: &mut buf.map, width: w, height: h, stride }, title, &screen, &typed);
        buf.busy = true;
        surface.attach(Some(&self.buffers[i].buffer), 0, 0);
        surface.damage_buffer(0, 0, w as i32, h as i32);
        surface.commit();
        Ok(true)
    }

    fn key(&mut self, key: u32) {
        let Some(state) = self.xkb.as_ref() else { return };
        let code = xkb::Keycode::new(key + 8);
        let sym = state.key_get_one_sym(code);
        let screen_busy = self.login.screen().busy;
        match sym {
            xkb::Keysym::Return | xkb::Keysym::KP_Enter if !screen_busy => {
                let text = std::mem::take(&mut self.typed);
                self.login.submit(text);
            }
            xkb::Keysym::Escape => {
                self.typed.clear();
                self.login.cancel();
            }
            xkb::Keysym::BackSpace => {
                self.typed.pop();
            }
            _ if !screen_busy => self.typed.extend(state.key_get_utf8(code).chars().filter(|c| !c.is_control())),
            _ => {}
        }
    }
}

fn new_buffer(shm: &wl_shm::WlShm, qh: &QueueHandle<App>, w: u32, h: u32, index: usize) -> anyhow::Result<Buffer> {
    let len = w as usize * h as usize * 4;
    let fd = nix::sys::memfd::memfd_create(c"punktfunk-greeter", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let file = File::from(fd);
    file.set_len(len as u64)?;
    // SAFETY: the memfd is ours alone; the compositor only reads it.
    let map = unsafe { MmapMut::map_mut(&file)? };
    let pool = shm.create_pool(file.as_fd(), len as i32, qh, ());
    let buffer = pool.create_buffer(0, w as i32, h as i32, w as i32 * 4, wl_shm::Format::Xrgb8888, qh, index);
    pool.destroy();
    Ok(Buffer { buffer, map, busy: false })
}

/// The compositor's keymap, for turning key codes into characters.
fn keymap_state(fd: OwnedFd, size: u32) -> Option<xkb::State> {
    let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    // SAFETY: the compositor hands a keymap of `size` bytes in this descriptor (wl_keyboard).
    let keymap = unsafe { xkb::Keymap::new_from_fd(&context, fd, size as usize, xkb::KEYMAP_FORMAT_TEXT_V1, xkb::KEYMAP_COMPILE_NO_FLAGS) };
    Some(xkb::State::new(&keymap.ok()??))
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

impl Dispatch<wl_callback::WlCallback, ()> for App {
    fn event(app: &mut Self, _: &wl_callback::WlCallback, event: wl_callback::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let wl_callback::Event::Done { .. } = event {
            app.drawn = true;
        }
    }
}

delegate_noop!(App: ignore wl_compositor::WlCompositor);
delegate_noop!(App: ignore wl_shm::WlShm);
delegate_noop!(App: ignore wl_shm_pool::WlShmPool);
delegate_noop!(App: ignore wl_surface::WlSurface);
delegate_noop!(App: ignore wl_seat::WlSeat);

impl Dispatch<wl_keyboard::WlKeyboard, ()> for App {
    fn event(app: &mut Self, _: &wl_keyboard::WlKeyboard, event: wl_keyboard::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        match event {
            wl_keyboard::Event::Keymap { format: WEnum::Value(wl_keyboard::KeymapFormat::XkbV1), fd, size } => {
                app.xkb = keymap_state(fd, size);
            }
            wl_keyboard::Event::Modifiers { mods_depressed, mods_latched, mods_locked, group, .. } => {
                if let Some(state) = app.xkb.as_mut() {
                    state.update_mask(mods_depressed, mods_latched, mods_locked, 0, 0, group);
                }
            }
            wl_keyboard::Event::Key { key, state: WEnum::Value(wl_keyboard::KeyState::Pressed), .. } => app.key(key),
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
            app.size = Some(if w > 0 && h > 0 { (w as u32, h as u32) } else { (1280, 720) });
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
