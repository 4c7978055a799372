//! The stream's output in a wlroots compositor, as a Wayland client of it: frames through
//! `zwlr_screencopy_manager_v1` into shared memory (a copy waits for the output's damage, so
//! a still desktop costs nothing; a redraw asks for one at once), input through the virtual
//! devices of [`Devices`], all on one connection and one thread.

use crate::devices::Devices;
use crate::pictures::Pictures;
use anyhow::Context;
use memmap2::MmapMut;
use punktfunk_core::mode::Mode;
use punktfunk_frame::{Mailbox, Rect, SourceCommand};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{wl_buffer, wl_output, wl_registry, wl_seat, wl_shm, wl_shm_pool};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::xdg::xdg_output::zv1::client::{zxdg_output_manager_v1, zxdg_output_v1};
use wayland_protocols_misc::zwp_virtual_keyboard_v1::client::{zwp_virtual_keyboard_manager_v1, zwp_virtual_keyboard_v1};
use wayland_protocols_wlr::screencopy::v1::client::{zwlr_screencopy_frame_v1, zwlr_screencopy_manager_v1};
use wayland_protocols_wlr::virtual_pointer::v1::client::{zwlr_virtual_pointer_manager_v1, zwlr_virtual_pointer_v1};

/// Copies that may fail in a row before the capture gives up.
const FAILURES: u32 = 20;

/// The capture of one output, and the devices that type and point into it.
pub struct Capture {
    conn: Connection,
    queue: EventQueue<State>,
    state: State,
    screencopy: zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1,
    output: wl_output::WlOutput,
    devices: Devices,
    interval: Duration,
}

struct State {
    shm: wl_shm::WlShm,
    /// Every output's name (xdg-output), by its index in the registry's list.
    names: Vec<Option<String>>,
    buffer: Option<ShmBuffer>,
    /// The shared-memory buffer the compositor offered for the copy in flight.
    buffer_offer: Option<(u32, u32, u32, u32)>,
    /// The copy in flight waits for damage.
    with_damage: bool,
    y_invert: bool,
    damage: Vec<Rect>,
    /// The copy in flight is over: ready (when the desktop presented what it shows), or
    /// failed (why).
    done: Option<Result<Instant, String>>,
}

/// Shared memory the compositor copies a frame into.
struct ShmBuffer {
    buffer: wl_buffer::WlBuffer,
    map: MmapMut,
    /// (width, height, stride, wl_shm format)
    shape: (u32, u32, u32, u32),
}

/// The largest output side a copy is made of (the modes a stream takes are smaller).
const MAX_SIDE: u32 = 16384;

/// wl_shm's ARGB8888 and XRGB8888: B, G, R, X in memory, what the encoders read.
const ARGB8888: u32 = 0;
const XRGB8888: u32 = 1;

impl Capture {
    /// Connects to the compositor (`$WAYLAND_DISPLAY`), finds the output `name`, and makes
    /// the virtual devices (keyboard `layout`, e.g. "us").
    pub fn connect(name: &str, mode: Mode, layout: &str) -> anyhow::Result<Self> {
        let conn = Connection::connect_to_env().context("connecting to the desktop's Wayland display")?;
        let (globals, mut queue) = registry_queue_init::<State>(&conn)?;
        let qh = queue.handle();
        let missing = |what: &str| format!("the desktop does not offer {what}");
        let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).context(missing("wl_shm"))?;
        let xdg: zxdg_output_manager_v1::ZxdgOutputManagerV1 = globals.bind(&qh, 2..=3, ()).context(missing("xdg-output (v2+)"))?;
        let outputs: Vec<wl_output::WlOutput> = globals.contents().with_list(|list| {
            list.iter()
                .filter(|g| g.interface == wl_output::WlOutput::interface().name)
                .map(|g| globals.registry().bind(g.name, g.version.min(4), &qh, ()))
                .collect()
        });
        for (i, output) in outputs.iter().enumerate() {
            xdg.get_xdg_output(output, &qh, i);
        }
        let mut state = State {
            shm,
            names: vec![None; outputs.len()],
            buffer: None,
            buffer_offer: None,
            with_damage: false,
            y_invert: false,
            damage: Vec::new(),
            done: None,
        };
        queue.roundtrip(&mut state)?;
        let output = state
            .names
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .map(|i| outputs[i].clone())
            .with_context(|| format!("the desktop has no output {name} (it has {:?})", state.names))?;
        let screencopy = globals.bind(&qh, 2..=3, ()).context(missing("wlr-screencopy (v2+)"))?;
        let seat: wl_seat::WlSeat = globals.bind(&qh, 1..=7, ()).context(missing("a seat"))?;
        let pointers: zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1 =
            globals.bind(&qh, 2..=2, ()).context(missing("wlr-virtual-pointer (v2)"))?;
        let keyboards: zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1 =
            globals.bind(&qh, 1..=1, ()).context(missing("virtual-keyboard"))?;
        let pointer = pointers.create_virtual_pointer_with_output(Some(&seat), Some(&output), &qh, ());
        let keyboard = keyboards.create_virtual_keyboard(&seat, &qh, ());
        let devices = Devices::new(pointer, keyboard, layout, (mode.width, mode.height))?;
        queue.roundtrip(&mut state)?;
        Ok(Self { conn, queue, state, screencopy, output, devices, interval: mode.frame_interval() })
    }

    /// Captures into `mailbox` until told to stop (or the compositor goes away), taking the
    /// pipeline's requests from `commands` (`wake` is readable when one is queued);
    /// `set_mode` switches the output's mode.
    pub fn run(
        mut self,
        mailbox: &Mailbox,
        commands: &Receiver<SourceCommand>,
        wake: &OwnedFd,
        mut set_mode: impl FnMut(Mode) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let qh = self.queue.handle();
        let mut pictures = Pictures::default();
        let (mut asked, mut force, mut next_due, mut failures) = (None::<Asked>, true, Instant::now(), 0);
        loop {
            while let Ok(command) = commands.try_recv() {
                match command {
                    SourceCommand::Input(event) => self.devices.input(event),
                    SourceCommand::SetMode(mode) => {
                        set_mode(mode)?;
                        self.devices.set_size((mode.width, mode.height));
                        self.interval = mode.frame_interval();
                        force = true;
                    }
                    SourceCommand::Redraw => force = true,
                    // The desktop's clipboard is its own in attach mode (not shared yet).
                    SourceCommand::Clipboard(_) => {}
                    SourceCommand::Stop => return Ok(()),
                }
            }
            // A copy waiting for damage makes way for one at once when a frame is due.
            if force && asked.as_ref().is_some_and(|a| a.damage) {
                asked.take().expect("checked").frame.destroy();
            }
            let now = Instant::now();
            if asked.is_none() && (force || now >= next_due) {
                let frame = self.screencopy.capture_output(1, &self.output, &qh, ());
                self.state.with_damage = !force;
                (self.state.damage, self.state.y_invert, self.state.done) = (Vec::new(), false, None);
                asked = Some(Asked { frame, damage: !force, since: now });
                force = false;
            }
            self.conn.flush()?;
            let limit = asked.is_none().then(|| next_due.saturating_duration_since(Instant::now()));
            crate::wayland_wait::wait(&mut self.queue, &mut self.state, Some(wake), limit)?;
            let Some(done) = self.state.done.take() else { continue };
            let a = asked.take().expect("a copy was asked for");
            a.frame.destroy();
            next_due = a.since + self.interval;
            let presented = match done {
                Ok(at) => at,
                Err(why) => {
                    failures += 1;
                    anyhow::ensure!(failures < FAILURES, "the desktop failed {FAILURES} copies in a row: {why}");
                    continue;
                }
            };
            failures = 0;
            let Some(buffer) = &self.state.buffer else { continue };
            let (width, height, stride, _) = buffer.shape;
            let flip = self.state.y_invert;
            let damage = match std::mem::take(&mut self.state.damage) {
                d if d.is_empty() || !a.damage || pictures.first() => None,
                d if flip => Some(d.into_iter().map(|r| Rect { y: height as i32 - r.y - r.height, ..r }).collect()),
                d => Some(d),
            };
            let row = |y: usize| &buffer.map[(if flip { height as usize - 1 - y } else { y }) * stride as usize..];
            // The desktop does not say when an app committed what changed; when it presented
            // the output is the earliest time it tells (latency figures count from there).
            // A picture the sink had no room for is dropped: the next is whole.
            if !pictures.offer(mailbox, (width, height), row, damage, presented) {
                force = true;
            }
        }
    }
}

/// A copy asked for: waiting for damage or not, and since when.
struct Asked {
    frame: zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1,
    damage: bool,
    since: Instant,
}

impl State {
    /// A buffer of the shape the compositor asked for, then the copy into it.
    fn copy(&mut self, frame: &zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1, qh: &QueueHandle<Self>, shape: (u32, u32, u32, u32)) {
        let (width, height, stride, format) = shape;
        // Sizes from the desktop bound our memory and every row we copy: checked first.
        let sane = (1..=MAX_SIDE).contains(&width)
            && (1..=MAX_SIDE).contains(&height)
            && u64::from(stride) >= u64::from(width) * 4
            && u64::from(stride) * u64::from(height) <= i32::MAX as u64;
        if !sane {
            self.done = Some(Err(format!("the desktop offers a {width}x{height} buffer of stride {stride}")));
            return;
        }
        if !matches!(format, ARGB8888 | XRGB8888) {
            self.done = Some(Err(format!("the desktop copies in wl_shm format {format:#x}, not XRGB8888")));
            return;
        }
        if self.buffer.as_ref().is_none_or(|b| b.shape != shape) {
            match ShmBuffer::new(&self.shm, qh, shape) {
                Ok(b) => self.buffer = Some(b),
                Err(e) => {
                    self.done = Some(Err(format!("shared memory for {height} rows of {stride} bytes: {e}")));
                    return;
                }
            }
        }
        let buffer = &self.buffer.as_ref().expect("made above").buffer;
        if self.with_damage {
            frame.copy_with_damage(buffer);
        } else {
            frame.copy(buffer);
        }
    }
}

/// The `Instant` of a CLOCK_MONOTONIC time (what Wayland's timestamps count), through the
/// clocks' distance now; a time in the future or unreadable clock is now.
fn monotonic_instant(at: Duration) -> Instant {
    let (now, mono) = (Instant::now(), nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC));
    let Ok(mono) = mono else { return now };
    let mono = Duration::new(mono.tv_sec() as u64, mono.tv_nsec() as u32);
    mono.checked_sub(at).and_then(|ago| now.checked_sub(ago)).unwrap_or(now)
}

impl ShmBuffer {
    fn new(shm: &wl_shm::WlShm, qh: &QueueHandle<State>, shape: (u32, u32, u32, u32)) -> anyhow::Result<Self> {
        let (width, height, stride, format) = shape;
        let len = stride as usize * height as usize;
        let fd = nix::sys::memfd::memfd_create(
            "punktfunk-attach",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
        )?;
        nix::unistd::ftruncate(&fd, len as i64)?;
        // The desktop gets the descriptor: it must not shrink the memory under our mapping.
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::F_SEAL_SHRINK | nix::fcntl::SealFlag::F_SEAL_SEAL))?;
        // SAFETY: a memfd of our own, sized above; the compositor writes it only between our
        // copy request and its `ready`, when we do not read it.
        let map = unsafe { MmapMut::map_mut(&fd)? };
        let pool = shm.create_pool(fd.as_fd(), len as i32, qh, ());
        let format = wl_shm::Format::try_from(format).unwrap_or(wl_shm::Format::Xrgb8888);
        let buffer = pool.create_buffer(0, width as i32, height as i32, stride as i32, format, qh, ());
        pool.destroy();
        Ok(Self { buffer, map, shape })
    }
}

impl Drop for ShmBuffer {
    fn drop(&mut self) {
        self.buffer.destroy();
    }
}

impl Dispatch<zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1, ()> for State {
    fn event(
        state: &mut Self,
        frame: &zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1,
        event: zwlr_screencopy_frame_v1::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        use zwlr_screencopy_frame_v1::Event;
        match event {
            Event::Buffer { format, width, height, stride } => {
                let format = match format {
                    WEnum::Value(f) => f as u32,
                    WEnum::Unknown(f) => f,
                };
                // Version 3 lists every buffer type, then says `buffer_done`: shm is enough.
                state.buffer_offer = Some((width, height, stride, format));
                if frame.version() < 3 {
                    state.copy(frame, qh, (width, height, stride, format));
                }
            }
            Event::BufferDone => {
                if let Some(shape) = state.buffer_offer.take() {
                    state.copy(frame, qh, shape);
                } else {
                    state.done = Some(Err("the desktop offers no shared-memory buffer".into()));
                }
            }
            Event::Flags { flags } => {
                state.y_invert = flags.into_result().is_ok_and(|f| f.contains(zwlr_screencopy_frame_v1::Flags::YInvert));
            }
            Event::Damage { x, y, width, height } => {
                state.damage.push(Rect { x: x as i32, y: y as i32, width: width as i32, height: height as i32 });
            }
            Event::Ready { tv_sec_hi, tv_sec_lo, tv_nsec } => {
                let secs = (u64::from(tv_sec_hi) << 32) | u64::from(tv_sec_lo);
                let presented = Duration::from_secs(secs).checked_add(Duration::from_nanos(u64::from(tv_nsec)));
                state.done = Some(Ok(presented.map_or_else(Instant::now, monotonic_instant)));
            }
            Event::Failed => state.done = Some(Err("the copy failed".into())),
            _ => {}
        }
    }
}

impl Dispatch<zxdg_output_v1::ZxdgOutputV1, usize> for State {
    fn event(
        state: &mut Self,
        _: &zxdg_output_v1::ZxdgOutputV1,
        event: zxdg_output_v1::Event,
        i: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zxdg_output_v1::Event::Name { name } = event
            && let Some(slot) = state.names.get_mut(*i)
        {
            *slot = Some(name);
        }
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
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

delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: ignore wl_output::WlOutput);
delegate_noop!(State: ignore wl_seat::WlSeat);
delegate_noop!(State: wl_shm_pool::WlShmPool);
delegate_noop!(State: ignore wl_buffer::WlBuffer);
delegate_noop!(State: zxdg_output_manager_v1::ZxdgOutputManagerV1);
delegate_noop!(State: zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1);
delegate_noop!(State: zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1);
delegate_noop!(State: zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1);
delegate_noop!(State: zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1);
delegate_noop!(State: zwp_virtual_keyboard_v1::ZwpVirtualKeyboardV1);
