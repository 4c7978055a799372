//! The stream's output in a running KWin (Plasma), as a Wayland client of it: KWin's own
//! screencast protocol (`zkde_screencast_unstable_v1`) makes a *virtual* output of the
//! client's size and hands its pictures over PipeWire ([`crate::screencast`]); input goes in
//! through `org_kde_kwin_fake_input` in the desktop's coordinates (the output's place among
//! the others, from xdg-output); closing the screencast removes the output.
//!
//! Both protocols are KWin's restricted ones: it offers them only to a program whose
//! desktop file (found by the program's path) lists them in `X-KDE-Wayland-Interfaces`;
//! the packages ship one for `punktfunk-stream`. KWin makes virtual outputs on its DRM
//! backend (Plasma 5.27 on real hardware) and, from Plasma 6, on every backend.

use crate::Commands;
use crate::devices::{keymap, type_text};
use crate::screencast::Screencast;
use anyhow::Context;
use punktfunk_core::input::InputEvent;
use punktfunk_core::mode::Mode;
use punktfunk_frame::{Mailbox, SourceCommand};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use wayland_client::globals::{GlobalList, GlobalListContents, registry_queue_init};
use wayland_client::protocol::{wl_callback, wl_output, wl_registry};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, delegate_noop};
use wayland_protocols::xdg::xdg_output::zv1::client::{zxdg_output_manager_v1, zxdg_output_v1};
use wayland_protocols_plasma::fake_input::client::org_kde_kwin_fake_input::OrgKdeKwinFakeInput;
use wayland_protocols_plasma::screencast::v1::client::{zkde_screencast_stream_unstable_v1, zkde_screencast_unstable_v1};
use xkbcommon::xkb;

/// How long KWin may take to make the output and its PipeWire stream.
const CREATE_WAIT: Duration = Duration::from_secs(10);
/// Where KWin makes virtual outputs: said when it made none.
const WHERE_VIRTUAL: &str = "KWin makes them on real displays from Plasma 5.27, and on every backend from Plasma 6";
/// The screencast's pointer mode: drawn into the pictures.
const POINTER_EMBEDDED: u32 = 2;
/// Scroll distance of one wheel detent, in surface units (libinput's).
const DETENT: f64 = 15.0;
/// wl_pointer's axes, as fake input names them.
const AXIS_VERTICAL: u32 = 0;
const AXIS_HORIZONTAL: u32 = 1;

/// A connection to KWin: its outputs (names and places, kept up to date) and its fake
/// input device.
pub struct Kwin {
    conn: Connection,
    globals: GlobalList,
    queue: EventQueue<State>,
    state: State,
    input: FakeInput,
}

struct State {
    xdg: zxdg_output_manager_v1::ZxdgOutputManagerV1,
    /// Every output's xdg-output name and logical position, by its registry name (outputs
    /// come and go: a stream's own appears after it is asked for).
    outputs: Vec<Output>,
    /// What the screencast said: its PipeWire node, or that it failed (why).
    stream: Option<Result<u32, String>>,
    /// KWin closed the screencast (the output went, the desktop is ending).
    closed: bool,
    /// Round trips KWin answered.
    synced: u64,
}

struct Output {
    global: u32,
    output: wl_output::WlOutput,
    xdg: zxdg_output_v1::ZxdgOutputV1,
    name: Option<String>,
    /// Its place and size among the desktop's outputs, in logical units.
    position: (i32, i32),
    size: (i32, i32),
}

/// Why KWin hides a protocol from a program.
fn restricted(what: &str) -> String {
    let exe = std::env::current_exe().map_or_else(|_| "this program".into(), |p| p.display().to_string());
    format!(
        "KWin does not offer {what} to {exe}: it shows it only to programs whose desktop file lists it in \
         X-KDE-Wayland-Interfaces, matching the program by the path in Exec (the packages install \
         punktfunk-stream.desktop for /usr/bin/punktfunk-stream)"
    )
}

/// How long KWin may take to answer a round trip: a stalled desktop fails the stream.
const ROUNDTRIP_WAIT: Duration = Duration::from_secs(5);

impl Kwin {
    /// Connects to KWin (`$WAYLAND_DISPLAY`) and authenticates for fake input. `layout` is
    /// the desktop keyboard's layout (typed text becomes its key chords).
    pub fn connect(layout: &str) -> anyhow::Result<Self> {
        let conn = Connection::connect_to_env().context("connecting to KWin's Wayland display")?;
        let (globals, queue) = registry_queue_init::<State>(&conn)?;
        let qh = queue.handle();
        let fake: OrgKdeKwinFakeInput =
            globals.bind(&qh, 4..=5, ()).with_context(|| restricted("fake input (org_kde_kwin_fake_input v4+)"))?;
        let xdg = globals.bind(&qh, 2..=3, ()).context("KWin does not offer xdg-output (v2+)")?;
        let mut state = State { xdg, outputs: Vec::new(), stream: None, closed: false, synced: 0 };
        globals.contents().with_list(|list| {
            for g in list.iter().filter(|g| g.interface == wl_output::WlOutput::interface().name) {
                state.add_output(globals.registry(), g.name, g.version, &qh);
            }
        });
        fake.authenticate("punktfunk".into(), "input from the client streaming this desktop".into());
        let input = FakeInput { device: fake, keymap: keymap(layout)? };
        let mut kwin = Self { conn, globals, queue, state, input };
        kwin.roundtrip()?;
        Ok(kwin)
    }

    /// Waits until KWin has answered everything asked so far (outputs' names and places
    /// included), within [`ROUNDTRIP_WAIT`].
    fn roundtrip(&mut self) -> anyhow::Result<()> {
        let asked = self.state.synced;
        self.conn.display().sync(&self.queue.handle(), ());
        let deadline = Instant::now() + ROUNDTRIP_WAIT;
        while self.state.synced == asked {
            anyhow::ensure!(Instant::now() < deadline, "KWin did not answer in {} s", ROUNDTRIP_WAIT.as_secs());
            self.conn.flush()?;
            self.wait(None, deadline.saturating_duration_since(Instant::now()))?;
        }
        Ok(())
    }

    /// The outputs' names, as KWin lists them (xdg-output).
    pub fn outputs(&self) -> Vec<String> {
        self.state.outputs.iter().filter_map(|o| o.name.clone()).collect()
    }

    /// Sends `event` to `output`: its positions are that output's pixels (at scale 1,
    /// pixels are logical units); its corner is where the desktop has it now (the user
    /// may arrange the outputs meanwhile).
    pub fn input(&mut self, output: &str, event: InputEvent) -> anyhow::Result<()> {
        let Some(o) = self.state.outputs.iter().find(|o| o.name.as_deref() == Some(output)) else {
            // Never onto another monitor of the user's.
            tracing::warn!(output, "KWin no longer lists the stream's output: input dropped");
            return Ok(());
        };
        self.input.send(event, o.position, o.size);
        self.conn.flush().context("KWin's Wayland connection")
    }

    /// Reads and dispatches what KWin sent, waiting up to `limit` (or for `wake`).
    fn wait(&mut self, wake: Option<&OwnedFd>, limit: Duration) -> anyhow::Result<()> {
        crate::wayland_wait::wait(&mut self.queue, &mut self.state, wake, Some(limit))
    }
}

/// A virtual output of KWin's streaming into a mailbox, steered through fake input.
pub struct KwinStream {
    kwin: Kwin,
    /// The consumer: dropped before the screencast is closed.
    cast: Option<Screencast>,
    stream: zkde_screencast_stream_unstable_v1::ZkdeScreencastStreamUnstableV1,
    /// The output's name, as KWin lists it.
    output: String,
}

impl KwinStream {
    /// Asks KWin for a virtual output of `mode` and consumes its stream into `mailbox`;
    /// returns once the first picture came.
    pub fn open(mode: Mode, layout: &str, mailbox: &Mailbox) -> anyhow::Result<Self> {
        let kwin = Kwin::connect(layout)?;
        let screencast: zkde_screencast_unstable_v1::ZkdeScreencastUnstableV1 = kwin
            .globals
            .bind(&kwin.queue.handle(), 2..=4, ())
            .with_context(|| restricted("its screencast protocol (zkde_screencast_unstable_v1 v2+)"))?;
        let before = kwin.outputs();
        // Unique among this host's streams: KWin names the output after it.
        static STREAMS: AtomicU32 = AtomicU32::new(0);
        let name = format!("punktfunk-{}-{}", std::process::id(), STREAMS.fetch_add(1, Ordering::Relaxed));
        let (width, height) = (i32::try_from(mode.width)?, i32::try_from(mode.height)?);
        let qh = kwin.queue.handle();
        let stream = if screencast.version() >= 4 {
            let description = format!("punktfunk stream ({}x{})", mode.width, mode.height);
            screencast.stream_virtual_output_with_description(name.clone(), description, width, height, 1.0, POINTER_EMBEDDED, &qh, ())
        } else {
            screencast.stream_virtual_output(name.clone(), width, height, 1.0, POINTER_EMBEDDED, &qh, ())
        };
        // Closed again on every way out below.
        let mut this = Self { kwin, cast: None, stream, output: String::new() };
        let deadline = Instant::now() + CREATE_WAIT;
        let node = loop {
            match this.kwin.state.stream.take() {
                Some(Ok(node)) => break node,
                Some(Err(why)) => anyhow::bail!("KWin could not make a virtual output: {why} ({WHERE_VIRTUAL})"),
                None if this.kwin.state.closed => anyhow::bail!("KWin closed the virtual output's stream at once ({WHERE_VIRTUAL})"),
                // KWin 5.27 on a backend without virtual outputs says nothing at all.
                None if Instant::now() >= deadline => {
                    anyhow::bail!("KWin made no virtual output in {} s ({WHERE_VIRTUAL})", CREATE_WAIT.as_secs())
                }
                None => this.kwin.wait(None, deadline.saturating_duration_since(Instant::now()))?,
            }
        };
        // The output is announced as a new wl_output; its xdg-output name and place follow.
        this.kwin.roundtrip()?;
        this.kwin.roundtrip()?;
        let outputs = this.kwin.outputs();
        this.output = outputs
            .iter()
            .find(|n| n.contains(&name))
            .or_else(|| outputs.iter().find(|n| !before.contains(n)))
            .cloned()
            .context("KWin streams a virtual output but lists no new output (input would have nowhere to go)")?;
        tracing::info!(node, output = this.output, width, height, "KWin virtual output streaming");
        this.cast = Some(Screencast::start(node, mode, mailbox.clone())?);
        Ok(this)
    }

    /// Streams until told to stop, taking the pipeline's requests from `commands`; a new
    /// mode is a new output (the old one closed first).
    pub fn run(mut self, layout: &str, mailbox: &Mailbox, commands: &Commands) -> anyhow::Result<()> {
        loop {
            self.kwin.wait(Some(&commands.wake), Duration::from_millis(crate::LIVENESS_MS.into()))?;
            anyhow::ensure!(
                !self.kwin.state.closed && !self.cast.as_ref().is_some_and(Screencast::ended),
                "KWin ended the screencast (the output was removed, or the desktop went away)"
            );
            while let Ok(command) = commands.queue.try_recv() {
                match command {
                    SourceCommand::Input(event) => self.kwin.input(&self.output, event)?,
                    SourceCommand::SetMode(mode) => {
                        drop(self);
                        self = Self::open(mode, layout, mailbox)?;
                    }
                    // KWin sends a picture when the output changed; the sink repeats the last
                    // one on a still screen.
                    SourceCommand::Redraw => {}
                    // The desktop's clipboard is its own in attach mode (not shared yet).
                    SourceCommand::Clipboard(_) => {}
                    SourceCommand::Stop => return Ok(()),
                }
            }
        }
    }
}

impl Drop for KwinStream {
    /// The consumer goes, then the screencast: KWin removes the output.
    fn drop(&mut self) {
        self.cast.take();
        self.stream.close();
        let _ = self.kwin.conn.flush();
    }
}

/// KWin's fake input device: keys as evdev codes, positions in the desktop's logical
/// coordinates.
struct FakeInput {
    device: OrgKdeKwinFakeInput,
    keymap: xkb::Keymap,
}

impl FakeInput {
    /// Sends `event`, whose positions are the output's pixels, to the output at `place`
    /// of `size` (its scale is 1: pixels are logical units); a position beyond the output
    /// is taken to its edge, never onto a neighbouring monitor.
    fn send(&self, event: InputEvent, place: (i32, i32), size: (i32, i32)) {
        let d = &self.device;
        let state = u32::from;
        let at = |x: f64, y: f64| {
            let inside = |v: f64, len: i32| v.clamp(0.0, f64::from(len.max(1) - 1));
            (f64::from(place.0) + inside(x, size.0), f64::from(place.1) + inside(y, size.1))
        };
        match event {
            InputEvent::Key { code, pressed } => d.keyboard_key(code, state(pressed)),
            InputEvent::Text(text) => type_text(&self.keymap, &text, |code, pressed| d.keyboard_key(code, state(pressed))),
            InputEvent::PointerMotion { x, y } => {
                let (x, y) = at(x, y);
                d.pointer_motion_absolute(x, y);
            }
            InputEvent::PointerRelative { dx, dy } => d.pointer_motion(dx, dy),
            InputEvent::Button { code, pressed } => d.button(code, state(pressed)),
            InputEvent::Scroll { vertical, v120 } => {
                d.axis(if vertical { AXIS_VERTICAL } else { AXIS_HORIZONTAL }, f64::from(v120) / 120.0 * DETENT);
            }
            InputEvent::TouchDown { id, x, y } => {
                let (x, y) = at(x, y);
                d.touch_down(id, x, y);
                d.touch_frame();
            }
            InputEvent::TouchMotion { id, x, y } => {
                let (x, y) = at(x, y);
                d.touch_motion(id, x, y);
                d.touch_frame();
            }
            InputEvent::TouchUp { id } => {
                d.touch_up(id);
                d.touch_frame();
            }
        }
    }
}

impl State {
    fn add_output(&mut self, registry: &wl_registry::WlRegistry, global: u32, version: u32, qh: &QueueHandle<Self>) {
        let output: wl_output::WlOutput = registry.bind(global, version.min(4), qh, ());
        let xdg = self.xdg.get_xdg_output(&output, qh, global);
        self.outputs.push(Output { global, output, xdg, name: None, position: (0, 0), size: (0, 0) });
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        state: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        match event {
            wl_registry::Event::Global { name, interface, version } if interface == wl_output::WlOutput::interface().name => {
                state.add_output(registry, name, version, qh);
            }
            wl_registry::Event::GlobalRemove { name } => state.outputs.retain(|o| {
                let gone = o.global == name;
                if gone {
                    o.xdg.destroy();
                    if o.output.version() >= 3 {
                        o.output.release();
                    }
                }
                !gone
            }),
            _ => {}
        }
    }
}

impl Dispatch<zxdg_output_v1::ZxdgOutputV1, u32> for State {
    fn event(
        state: &mut Self,
        _: &zxdg_output_v1::ZxdgOutputV1,
        event: zxdg_output_v1::Event,
        global: &u32,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let Some(output) = state.outputs.iter_mut().find(|o| o.global == *global) else { return };
        match event {
            zxdg_output_v1::Event::Name { name } => output.name = Some(name),
            zxdg_output_v1::Event::LogicalPosition { x, y } => output.position = (x, y),
            zxdg_output_v1::Event::LogicalSize { width, height } => output.size = (width, height),
            _ => {}
        }
    }
}

impl Dispatch<zkde_screencast_stream_unstable_v1::ZkdeScreencastStreamUnstableV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &zkde_screencast_stream_unstable_v1::ZkdeScreencastStreamUnstableV1,
        event: zkde_screencast_stream_unstable_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zkde_screencast_stream_unstable_v1::Event;
        match event {
            Event::Created { node } => state.stream = Some(Ok(node)),
            Event::Failed { error } => state.stream = Some(Err(error)),
            Event::Closed => state.closed = true,
            _ => {}
        }
    }
}

delegate_noop!(State: ignore wl_output::WlOutput);

impl Dispatch<wl_callback::WlCallback, ()> for State {
    fn event(state: &mut Self, _: &wl_callback::WlCallback, event: wl_callback::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let wl_callback::Event::Done { .. } = event {
            state.synced += 1;
        }
    }
}
delegate_noop!(State: zxdg_output_manager_v1::ZxdgOutputManagerV1);
delegate_noop!(State: zkde_screencast_unstable_v1::ZkdeScreencastUnstableV1);
delegate_noop!(State: OrgKdeKwinFakeInput);
