//! punktfunk-compositor: a headless Smithay compositor that streams one output.
//!
//! One process per stream: a virtual output at exactly the client's mode, Wayland clients
//! (and the session command) rendered on a timer at the output's refresh, each finished frame
//! handed to a [`FrameSink`] on its own thread, input injected natively into the seat.
//! See ARCHITECTURE.md for where this sits in the process model.

mod cursor;
mod direct;
mod frame_clock;
mod handlers;
mod input;
mod launch;
mod output;
mod render;
mod socket;
pub mod state;
#[cfg(test)]
mod tests;
mod xwayland;

pub use input::InputEvent;
pub use punktfunk_frame::Mode;
pub use punktfunk_frame::{Frame, FrameSink, Pixels};
pub use render::{ConvertChoice, EngineChoice};
pub use state::KeyboardLayout;

/// The GPU sessions render on (GLES), in words, or why there is none: see
/// `render::Engine::probe_gpu`.
pub fn probe_gpu(gpu: Option<&std::path::Path>) -> Result<String, String> {
    render::Engine::probe_gpu(gpu).map_err(|e| e.to_string())
}

use crate::frame_clock::FrameClock;
use crate::launch::App;
use crate::output::FrameOutput;
use crate::render::{Engine, Renderer};
use crate::socket::{bind_socket, runtime_dir};
use crate::state::{ClientState, State};
use anyhow::Context;
use punktfunk_frame::{Mailbox, SinkThread};
use smithay::reexports::calloop::channel::{self, Channel};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::ping;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{EventLoop, Interest, Mode as TriggerMode, PostAction};
use smithay::reexports::wayland_server::Display;
use std::cell::RefCell;
use std::ffi::OsString;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    /// The session command (`-- steam -gamepadui`); empty: run until stopped.
    pub command: Vec<OsString>,
    /// Socket name in the runtime directory; `None` picks a free `punktfunk-N`.
    pub socket_name: Option<String>,
    /// Where the socket lives; `None`: `XDG_RUNTIME_DIR`, or a private directory made for it.
    pub runtime_dir: Option<PathBuf>,
    /// Composite the client's cursor into frames.
    pub show_cursor: bool,
    /// Hand a client's buffer that is the whole frame to the sink as it is, uncomposited.
    pub direct: bool,
    /// What composites frames: pixman on the CPU, GLES on a GPU.
    pub renderer: EngineChoice,
    /// Where frames become the encoder's YUV: on the GPU (GLES) or in the encoder (CPU).
    pub convert: ConvertChoice,
    /// The GPU to render on, as a DRM node (`/dev/dri/renderD129`); `None`: the first one.
    pub gpu: Option<PathBuf>,
    pub keyboard: KeyboardLayout,
    /// Run Xwayland so X11 apps work (DISPLAY is set for the command).
    pub xwayland: bool,
    /// Forward SIGINT/SIGTERM/SIGHUP to the session (for the binary; off when embedded).
    pub handle_signals: bool,
    /// More environment for the session command (the session's audio devices).
    pub env: Vec<(&'static str, OsString)>,
    /// Told once whether the session command started (its pid) or why it could not.
    pub launched: Option<std::sync::mpsc::Sender<Result<u32, String>>>,
    /// Told the text the session's apps copy to the clipboard.
    pub clipboard: Option<ClipboardSink>,
}

impl Config {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            command: Vec::new(),
            socket_name: None,
            runtime_dir: None,
            show_cursor: true,
            direct: true,
            renderer: EngineChoice::Auto,
            convert: ConvertChoice::Auto,
            gpu: None,
            keyboard: KeyboardLayout::default(),
            xwayland: true,
            handle_signals: false,
            env: Vec::new(),
            launched: None,
            clipboard: None,
        }
    }
}

/// Requests to a running compositor, from the stream's pipeline or a test: a frame source's.
pub use punktfunk_frame::SourceCommand as Control;

/// How a session ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The session command's exit code (128 + signal if killed); `None` if stopped first.
    pub exit_code: Option<i32>,
    pub frames: u64,
    /// The engine that composited them (`pixman`, `gles`).
    pub renderer: &'static str,
    /// Of those, frames that were a client's buffer passed through (the direct path).
    pub direct: u64,
    /// Of those, frames the engine converted to the sink's YUV (on the GPU).
    pub converted: u64,
    /// Of those, frames drawn straight into the sink's GPU surfaces (zero-copy).
    pub zero_copy: u64,
    /// Frames not rendered because the sink still held every buffer.
    pub skipped: u64,
    /// Frames rendered but replaced in the sink's mailbox before it took them (the sink
    /// was slower than the refresh); the sink saw `frames - dropped`.
    pub dropped: u64,
    /// Render times in µs of frames composited, of frames passed through, and of refreshes
    /// with nothing to draw.
    pub frame_us: Vec<u32>,
    pub direct_us: Vec<u32>,
    pub idle_us: Vec<u32>,
}

/// A channel to drive a running session with (the daemon's commands, a test's input).
pub fn control_channel() -> (channel::Sender<Control>, ControlChannel) {
    channel::channel()
}

/// The receiving end of a control channel, for [`run`].
pub type ControlChannel = Channel<Control>;

/// A sender into a bounded control channel: when the session's loop stops taking commands,
/// senders wait (or `try_send` fails) instead of the queue growing without end.
pub struct BoundedControl(channel::SyncSender<Control>);

impl punktfunk_frame::SourceControl for BoundedControl {
    fn send(&self, command: Control) -> bool {
        self.0.send(command).is_ok()
    }

    fn try_send(&self, command: Control) -> bool {
        self.0.try_send(command).is_ok()
    }
}

/// A control channel holding at most `capacity` commands.
pub fn bounded_control_channel(capacity: usize) -> (BoundedControl, ControlChannel) {
    let (tx, rx) = channel::sync_channel(capacity);
    (BoundedControl(tx), rx)
}

/// Runs a session until its command's process group is gone or `Stop` arrives, its frames
/// going to `sink` on a thread of its own that ends with the session.
pub fn run(config: Config, sink: impl FrameSink, control: Option<ControlChannel>) -> anyhow::Result<Outcome> {
    let sink = SinkThread::spawn(sink);
    let outcome = run_into(config, sink.mailbox(), control);
    let finished = sink.finish().context("frame sink");
    let outcome = outcome?;
    finished?;
    Ok(outcome)
}

/// Runs a session as one frame source of a longer stream: its frames go to `mailbox`, whose
/// sink outlives it (the next source delivers to the same sink, so the client's stream goes
/// on across the change).
pub fn run_into(config: Config, mailbox: &Mailbox, control: Option<ControlChannel>) -> anyhow::Result<Outcome> {
    Compositor::new(&config, mailbox, control, Pacing::Timer)?.run()
}

/// Where the text an app copies goes: copies longer than `max_len` bytes (or not UTF-8 text)
/// are not sent.
#[derive(Clone, Debug)]
pub struct ClipboardSink {
    pub send: std::sync::mpsc::Sender<String>,
    pub max_len: usize,
}

/// Who says when frames are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// A timer at the output's refresh (`frame_clock`).
    Timer,
    /// The caller, frame by frame (the test fixture).
    #[cfg_attr(not(test), allow(dead_code))]
    Caller,
}

/// A compositor set up and ready: its event loop, state and frame output. [`run_into`] runs
/// one until its session ends; the in-crate test fixture steps one instead.
pub(crate) struct Compositor {
    pub event_loop: EventLoop<'static, State>,
    pub state: State,
    pub frames: Rc<RefCell<FrameOutput>>,
    outcome: Rc<RefCell<Outcome>>,
    dropped_before: u64,
}

impl Compositor {
    pub fn new(config: &Config, mailbox: &Mailbox, control: Option<ControlChannel>, pacing: Pacing) -> anyhow::Result<Self> {
        let event_loop: EventLoop<'static, State> = EventLoop::try_new().context("event loop")?;
        let display: Display<State> = Display::new().context("wayland display")?;
        let mut state = State::new(display.handle(), event_loop.handle(), event_loop.get_signal(), config.mode, &config.keyboard)?;
        state.clipboard_out = config.clipboard.clone();
        let handle = event_loop.handle();

        // Signals arrive through signal-hook's self-pipe on a small thread and are forwarded to
        // the session's process group (not through signalfd: that needs the signals blocked,
        // and a blocked mask is inherited by every child we start).
        if config.handle_signals {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let (tx, rx) = channel::channel::<i32>();
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).context("signal handlers")?;
            std::thread::Builder::new().name("signals".into()).spawn(move || {
                for sig in signals.forever() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            })?;
            handle
                .insert_source(rx, |event, _, state: &mut State| {
                    let channel::Event::Msg(sig) = event else { return };
                    match &state.app {
                        Some(app) => app.signal(nix::sys::signal::Signal::try_from(sig).unwrap_or(nix::sys::signal::Signal::SIGTERM)),
                        None => state.loop_signal.stop(),
                    }
                })
                .map_err(|e| anyhow::anyhow!("signal source: {e}"))?;
        }

        let runtime_dir = match &config.runtime_dir {
            Some(d) => d.clone(),
            None => runtime_dir()?,
        };
        let (socket, socket_name) = bind_socket(&runtime_dir, config.socket_name.as_deref())?;
        handle
            .insert_source(Generic::new(socket, Interest::READ, TriggerMode::Level), |_, socket, state: &mut State| {
                while let Some(stream) = socket.accept()? {
                    if let Err(e) = state.dh.insert_client(stream, Arc::new(ClientState::default())) {
                        tracing::warn!("rejecting client: {e}");
                    }
                }
                Ok(PostAction::Continue)
            })
            .map_err(|e| anyhow::anyhow!("socket source: {e}"))?;
        handle
            .insert_source(Generic::new(display, Interest::READ, TriggerMode::Level), |_, display, state: &mut State| {
                // SAFETY: the display is never dropped while the source is registered.
                if let Err(e) = unsafe { display.get_mut().dispatch_clients(state) } {
                    tracing::error!("dispatching clients: {e}");
                }
                Ok(PostAction::Continue)
            })
            .map_err(|e| anyhow::anyhow!("display source: {e}"))?;
        tracing::info!(mode = %config.mode, socket = %socket_name, "compositor ready");

        let outcome = Rc::new(RefCell::new(Outcome::default()));
        let dropped_before = mailbox.dropped();
        if let Some(control) = control {
            handle
                .insert_source(control, |event, _, state: &mut State| match event {
                    channel::Event::Msg(Control::Input(e)) => state.inject(e),
                    channel::Event::Msg(Control::SetMode(m)) => state.set_mode(m),
                    channel::Event::Msg(Control::Redraw) => state.redraw = true,
                    channel::Event::Msg(Control::Clipboard(text)) => state.set_client_clipboard(text),
                    channel::Event::Msg(Control::Stop) => state.loop_signal.stop(),
                    channel::Event::Closed => {}
                })
                .map_err(|e| anyhow::anyhow!("control source: {e}"))?;
        }

        // Frames: rendered on a timer at the output's refresh, no vblank to wait for.
        let (returned, returned_source) = ping::make_ping().context("release ping")?;
        let frames = Rc::new(RefCell::new(FrameOutput {
            renderer: Renderer::new(
                &state,
                Engine::open(config.renderer, config.convert, config.gpu.as_deref())?,
                config.show_cursor,
                config.direct,
                returned,
            ),
            mailbox: mailbox.clone(),
            presented: 0,
            clock: FrameClock::new(Instant::now(), state.mode.frame_interval()),
        }));
        let feedback = frames.borrow().renderer.engine().dmabuf_feedback();
        if let Some(feedback) = feedback {
            state.dmabuf.state.create_global_with_default_feedback::<State>(&state.dh, &feedback);
            let import_frames = Rc::clone(&frames);
            state.dmabuf.import = Some(Box::new(move |d| import_frames.try_borrow_mut().is_ok_and(|mut f| f.renderer.import_dmabuf(d))));
            tracing::info!("linux-dmabuf offered: GPU clients render on the GPU");
        }
        // Pacing (`frame_clock`): renders on a timer at the output's refresh, frame callbacks as
        // late as the clients' measured drawing time allows; commits measure that time, and
        // a cycle's first commit is rendered at once.
        let (ping, ping_source) = ping::make_ping().context("commit ping")?;
        state.render_ping = Some(ping);
        let ping_frames = Rc::clone(&frames);
        handle
            .insert_source(ping_source, move |_, _, state: &mut State| ping_frames.borrow_mut().committed(state))
            .map_err(|e| anyhow::anyhow!("commit ping source: {e}"))?;
        let returned_frames = Rc::clone(&frames);
        handle
            .insert_source(returned_source, move |_, _, state: &mut State| returned_frames.borrow_mut().returned(state))
            .map_err(|e| anyhow::anyhow!("release ping source: {e}"))?;
        if pacing == Pacing::Timer {
            let timer_frames = Rc::clone(&frames);
            handle
                .insert_source(Timer::from_deadline(Instant::now() + state.mode.frame_interval()), move |_, _, state: &mut State| {
                    TimeoutAction::ToInstant(timer_frames.borrow_mut().wake(state))
                })
                .map_err(|e| anyhow::anyhow!("frame timer: {e}"))?;
        }

        // The session command starts once Xwayland is up, so it gets a DISPLAY too.
        let (exit_tx, exit_rx) = channel::channel::<i32>();
        let exit_outcome = Rc::clone(&outcome);
        handle
            .insert_source(exit_rx, move |event, _, state: &mut State| {
                if let channel::Event::Msg(code) = event {
                    tracing::info!(code, "session command exited");
                    exit_outcome.borrow_mut().exit_code = Some(code);
                    state.loop_signal.stop();
                }
            })
            .map_err(|e| anyhow::anyhow!("exit source: {e}"))?;
        let (command, launched) = (config.command.clone(), config.launched.clone());
        let mut env = vec![("WAYLAND_DISPLAY", OsString::from(&socket_name)), ("XDG_RUNTIME_DIR", runtime_dir.clone().into_os_string())];
        env.extend(config.env.iter().cloned());
        let mut launch = move |state: &mut State, display: Option<OsString>| {
            if command.is_empty() {
                return;
            }
            env.extend(display.map(|d| ("DISPLAY", d)));
            let tx = exit_tx.clone();
            match App::spawn(&command, &env, move |code| {
                let _ = tx.send(code);
            }) {
                Ok(app) => {
                    if let Some(l) = &launched {
                        let _ = l.send(Ok(app.pid()));
                    }
                    state.app = Some(app);
                }
                Err(e) => {
                    tracing::error!(command = ?command, "cannot start the session command: {e}");
                    if let Some(l) = &launched {
                        let _ = l.send(Err(format!("cannot start {}: {e}", command[0].to_string_lossy())));
                    }
                    let _ = exit_tx.send(127);
                }
            }
        };
        if config.xwayland {
            xwayland::spawn(&mut state, launch);
        } else {
            launch(&mut state, None);
        }

        Ok(Self { event_loop, state, frames, outcome, dropped_before })
    }

    /// Runs until the session's command exits or `Stop` arrives.
    pub fn run(mut self) -> anyhow::Result<Outcome> {
        let Self { event_loop, state, frames, outcome, dropped_before } = &mut self;
        event_loop.run(None, state, |state| {
            let _ = state.dh.flush_clients();
        })?;
        if let Some(app) = &state.app
            && outcome.borrow().exit_code.is_none()
        {
            app.terminate(Duration::from_secs(3));
        }
        let mut frames = frames.borrow_mut();
        let mut o = outcome.borrow().clone();
        o.dropped = frames.mailbox.dropped() - *dropped_before;
        o.frames = frames.presented;
        o.renderer = frames.renderer.engine().name();
        let stats = &mut frames.renderer.stats;
        o.direct = stats.direct_frames;
        o.converted = stats.converted_frames;
        o.zero_copy = stats.zero_copy_frames;
        o.skipped = stats.skipped;
        o.frame_us = std::mem::take(&mut stats.frame_us);
        o.direct_us = std::mem::take(&mut stats.direct_us);
        o.idle_us = std::mem::take(&mut stats.idle_us);
        Ok(o)
    }
}
