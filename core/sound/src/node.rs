//! A PipeWire node served on its own thread: a session's virtual sink (its apps play into
//! it) or virtual source (they record from it), or an app's stream: the client's player
//! and microphone. When the node or the PipeWire daemon goes away
//! the thread connects again with backoff, under the same name, until the node is dropped.

use parking_lot::{Condvar, Mutex};
use pipewire as pw;
use pw::spa;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use punktfunk_core::channels::{Channels, RATE};

/// Takes a cycle's captured samples.
pub type CaptureFn = Box<dyn FnMut(&[f32]) + Send>;
/// Fills a cycle's buffer with samples to play.
pub type PlayFn = Box<dyn FnMut(&mut [f32]) + Send>;

/// What the node does with each graph cycle's samples (interleaved f32, on the node's thread).
pub enum Io {
    /// A sink: the samples the session's apps played.
    Capture(CaptureFn),
    /// A source: fill the buffer with what the session's apps will record.
    Play(PlayFn),
}

pub struct NodeSpec {
    /// `node.name`: what `PULSE_SINK`, `PULSE_SOURCE` and `PIPEWIRE_NODE` name.
    pub name: String,
    pub description: String,
    pub channels: Channels,
    /// Graph cycle the node asks for, in samples at 48 kHz (240 = 5 ms).
    pub quantum: u32,
    /// An app's stream instead of a device apps connect to: a player ([`Io::Play`]) or a
    /// recorder ([`Io::Capture`]) that PipeWire connects to the default output or input.
    pub app_stream: bool,
    /// With `app_stream`: the node to connect to instead of the default (`target.object`).
    pub target: Option<String>,
    /// With `app_stream` and [`Io::Capture`]: record what the default output plays (its
    /// monitor, following the default as it changes) instead of an input: a desktop's sound.
    pub capture_sink: bool,
}

#[derive(Default)]
struct NodeState {
    /// The node's id while it is registered.
    id: Option<u32>,
    /// The last attempt to reach PipeWire failed.
    unreachable: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<NodeState>,
    changed: Condvar,
    stopping: AtomicBool,
    /// Wakes the current main loop so it sees `stopping`.
    wake: Mutex<Option<pw::channel::Sender<()>>>,
    reconnects: std::sync::atomic::AtomicU32,
}

/// The node; dropping it removes it from the graph.
pub struct VirtualNode {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    name: String,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl VirtualNode {
    pub fn spawn(spec: NodeSpec, io: Io) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let name = spec.name.clone();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name(format!("pw-{}", spec.name)).spawn(move || serve(spec, io, thread_shared))?;
        Ok(Self { shared, thread: Some(thread), name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's id in the graph, once it is registered.
    pub fn id(&self) -> Option<u32> {
        self.shared.lock().id
    }

    /// Waits until the node is in the graph (so apps started now find it), or PipeWire
    /// turned out unreachable: a host without it does not wait for nothing.
    pub fn wait_ready(&self, timeout: Duration) -> Option<u32> {
        let mut state = self.shared.lock();
        self.shared.changed.wait_while_for(&mut state, |s| s.id.is_none() && !s.unreachable, timeout);
        state.id
    }

    /// How often the node had to be created again.
    pub fn reconnects(&self) -> u32 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn lock(&self) -> parking_lot::MutexGuard<'_, NodeState> {
        self.state.lock()
    }

    fn update(&self, f: impl FnOnce(&mut NodeState)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

impl Drop for VirtualNode {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(wake) = self.shared.wake.lock().as_ref() {
            let _ = wake.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(spec: NodeSpec, io: Io, shared: Arc<Shared>) {
    pw::init();
    let io = Rc::new(RefCell::new(io));
    let mut backoff = BACKOFF_MIN;
    let mut warned = false;
    while !shared.stopping.load(Ordering::Acquire) {
        let started = Instant::now();
        let outcome = run_once(&spec, &io, &shared);
        shared.update(|s| (s.id, s.unreachable) = (None, outcome.is_err()));
        match outcome {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(node = spec.name, "PipeWire: {e}; the session has no audio until it is reachable (retrying)");
                warned = true;
            }
            Err(e) => tracing::debug!(node = spec.name, "PipeWire: {e}"),
        }
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        // A node that ran a while was fine; one that keeps failing is retried less often.
        backoff = if started.elapsed() > BACKOFF_MAX { BACKOFF_MIN } else { (backoff * 2).min(BACKOFF_MAX) };
        shared.reconnects.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + backoff;
        while Instant::now() < deadline && !shared.stopping.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Connects, creates the node and runs until it or the daemon goes away, or until stopped.
fn run_once(spec: &NodeSpec, io: &Rc<RefCell<Io>>, shared: &Arc<Shared>) -> Result<(), pw::Error> {
    let mainloop = pw::main_loop::MainLoopRc::new(None)?;
    let context = pw::context::ContextRc::new(&mainloop, None)?;
    let core = context.connect_rc(None)?;

    let (wake, woken) = pw::channel::channel::<()>();
    let quit = mainloop.clone();
    let _woken = woken.attach(mainloop.loop_(), move |()| quit.quit());
    *shared.wake.lock() = Some(wake);
    if shared.stopping.load(Ordering::Acquire) {
        return Ok(());
    }

    let quit = mainloop.clone();
    let name = spec.name.clone();
    let _core = core
        .add_listener_local()
        .error(move |id, _seq, res, message| {
            if id == pw::core::PW_ID_CORE {
                tracing::warn!(node = name, res, "PipeWire connection lost: {message}");
                quit.quit();
            }
        })
        .register();

    let capture = matches!(*io.borrow(), Io::Capture(_));
    let channels = spec.channels.count();
    let mut props = pw::properties::properties! {
        *pw::keys::MEDIA_TYPE => "Audio",
        *pw::keys::MEDIA_CLASS => match (capture, spec.app_stream) {
            (true, false) => "Audio/Sink",
            (false, false) => "Audio/Source",
            (true, true) => "Stream/Input/Audio",
            (false, true) => "Stream/Output/Audio",
        },
        *pw::keys::NODE_NAME => spec.name.as_str(),
        *pw::keys::NODE_DESCRIPTION => spec.description.as_str(),
        *pw::keys::NODE_LATENCY => format!("{}/{RATE}", spec.quantum),
        *pw::keys::AUDIO_CHANNELS => channels.to_string(),
        "audio.position" => spec.channels.positions().join(","),
    };
    if let Some(target) = spec.target.as_deref().filter(|_| spec.app_stream) {
        props.insert("target.object", target);
    }
    if spec.capture_sink && spec.app_stream && capture {
        props.insert("stream.capture.sink", "true");
    }
    let stream = pw::stream::StreamRc::new(core.clone(), &spec.name, props)?;

    let (quit, state_shared, name) = (mainloop.clone(), Arc::clone(shared), spec.name.clone());
    let (io, mut scratch) = (Rc::clone(io), Vec::<f32>::new());
    let _listener = stream
        .add_local_listener_with_user_data(())
        .state_changed(move |stream, _, _, new| match new {
            pw::stream::StreamState::Paused | pw::stream::StreamState::Streaming => {
                if state_shared.lock().id.is_none() {
                    tracing::info!(node = name, id = stream.node_id(), "session audio node ready");
                    state_shared.update(|s| (s.id, s.unreachable) = (Some(stream.node_id()), false));
                }
            }
            pw::stream::StreamState::Error(e) => {
                tracing::warn!(node = name, "audio node failed: {e}");
                quit.quit();
            }
            pw::stream::StreamState::Unconnected => {
                tracing::warn!(node = name, "audio node was removed");
                quit.quit();
            }
            pw::stream::StreamState::Connecting => {}
        })
        .process(move |stream, _| {
            let Some(mut buffer) = stream.dequeue_buffer() else { return };
            let requested = buffer.requested() as usize;
            let Some(data) = buffer.datas_mut().first_mut() else { return };
            let stride = 4 * channels;
            match &mut *io.borrow_mut() {
                Io::Capture(consume) => {
                    let chunk = data.chunk();
                    let (offset, size) = (chunk.offset() as usize, chunk.size() as usize);
                    let Some(bytes) = data.data() else { return };
                    let Some(bytes) = bytes.get(offset..offset.saturating_add(size)) else { return };
                    // Copied out rather than cast: mapped memory need not be f32-aligned.
                    scratch.clear();
                    scratch.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                    scratch.truncate(scratch.len() / channels * channels);
                    consume(&scratch);
                }
                Io::Play(fill) => {
                    let Some(bytes) = data.data() else { return };
                    let mut frames = bytes.len() / stride;
                    if requested > 0 {
                        frames = frames.min(requested);
                    }
                    scratch.clear();
                    scratch.resize(frames * channels, 0.0);
                    fill(&mut scratch);
                    for (dst, s) in bytes.chunks_exact_mut(4).zip(&scratch) {
                        dst.copy_from_slice(&s.to_le_bytes());
                    }
                    let chunk = data.chunk_mut();
                    *chunk.offset_mut() = 0;
                    *chunk.stride_mut() = stride as i32;
                    *chunk.size_mut() = (frames * stride) as u32;
                }
            }
        })
        .register()?;

    let format = format_pod(spec.channels);
    let mut params = [spa::pod::Pod::from_bytes(&format).expect("a serialized pod")];
    let direction = if capture { spa::utils::Direction::Input } else { spa::utils::Direction::Output };
    let flags = if spec.app_stream {
        pw::stream::StreamFlags::MAP_BUFFERS | pw::stream::StreamFlags::AUTOCONNECT
    } else {
        pw::stream::StreamFlags::MAP_BUFFERS
    };
    stream.connect(direction, None, flags, &mut params)?;
    mainloop.run();
    let _ = stream.disconnect();
    Ok(())
}

/// The one format the node takes: f32 interleaved at 48 kHz in Moonlight's channel order.
/// PipeWire converts whatever the apps play into it.
fn format_pod(channels: Channels) -> Vec<u8> {
    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(RATE);
    info.set_channels(channels.count() as u32);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    let ids = [
        spa::sys::SPA_AUDIO_CHANNEL_FL,
        spa::sys::SPA_AUDIO_CHANNEL_FR,
        spa::sys::SPA_AUDIO_CHANNEL_FC,
        spa::sys::SPA_AUDIO_CHANNEL_LFE,
        spa::sys::SPA_AUDIO_CHANNEL_RL,
        spa::sys::SPA_AUDIO_CHANNEL_RR,
        spa::sys::SPA_AUDIO_CHANNEL_SL,
        spa::sys::SPA_AUDIO_CHANNEL_SR,
    ];
    position[..channels.count()].copy_from_slice(&ids[..channels.count()]);
    info.set_position(position);
    let object = spa::pod::Object { type_: spa::sys::SPA_TYPE_OBJECT_Format, id: spa::sys::SPA_PARAM_EnumFormat, properties: info.into() };
    spa::pod::serialize::PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &spa::pod::Value::Object(object))
        .expect("a format pod serializes")
        .0
        .into_inner()
}
