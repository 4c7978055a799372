//! A session's audio devices: a sink its apps play into (captured for the stream) and a
//! microphone they record from (fed by the client). Both live as long as the session; the
//! apps find them through the environment [`SessionAudio::env`] gives them. In attach mode
//! the desktop's own output is captured instead ([`SessionAudio::desktop`]).

use super::layout::Channels;
use super::node::{Io, NodeSpec, VirtualNode};
use super::playout::{CHANNELS, Playout};
use super::queue::{Chunk, PcmQueue};
use parking_lot::Mutex;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 5 ms cycles: the capture side of the latency budget.
const QUANTUM: u32 = 240;
/// Chunks held for a sender that fell behind (≈ 160 ms at 5 ms).
const QUEUE_CHUNKS: usize = 32;

type Tap = Arc<Mutex<Option<Arc<PcmQueue>>>>;

pub struct SessionAudio {
    channels: Channels,
    tap: Tap,
    mic: Arc<Playout>,
    // Dropped last: the nodes leave the graph with the session.
    sink: VirtualNode,
    source: VirtualNode,
}

/// Whether a PipeWire answers where this process's PipeWire clients look for one
/// (`XDG_RUNTIME_DIR`, which the daemon sets for streams when it runs a private one).
pub fn pipewire_reachable() -> bool {
    std::env::var_os("XDG_RUNTIME_DIR")
        .is_some_and(|dir| std::os::unix::net::UnixStream::connect(std::path::Path::new(&dir).join("pipewire-0")).is_ok())
}

impl SessionAudio {
    /// Creates the session's nodes, named after `id`, and waits up to `ready` for them to
    /// be in the graph so that apps started next find them. Without PipeWire the nodes keep
    /// trying in the background and the session runs silent.
    pub fn start(id: &str, channels: Channels, ready: Duration) -> std::io::Result<Self> {
        let sink = NodeSpec {
            name: format!("punktfunk.{id}.sink"),
            description: format!("punktfunk stream ({id})"),
            channels,
            quantum: QUANTUM,
            app_stream: false,
            target: None,
            capture_sink: false,
        };
        Self::with_sink(id, sink, ready)
    }

    /// The sound of a running desktop (attach mode): what its default output plays is
    /// recorded (following the default as the user changes it), and the client's microphone
    /// is a source its apps can pick.
    pub fn desktop(id: &str, channels: Channels, ready: Duration) -> std::io::Result<Self> {
        let monitor = NodeSpec {
            name: format!("punktfunk.{id}.capture"),
            description: format!("punktfunk stream of this desktop ({id})"),
            channels,
            quantum: QUANTUM,
            app_stream: true,
            target: None,
            capture_sink: true,
        };
        Self::with_sink(id, monitor, ready)
    }

    /// `sink` (what is captured for the stream) and the microphone.
    fn with_sink(id: &str, sink: NodeSpec, ready: Duration) -> std::io::Result<Self> {
        let (tap, channels): (Tap, _) = (Arc::default(), sink.channels);
        let capture_tap = Arc::clone(&tap);
        let capture = Io::Capture(Box::new(move |samples| {
            if let Some(q) = capture_tap.lock().as_ref() {
                q.push(Chunk { samples: samples.to_vec(), captured: Instant::now() });
            }
        }));
        let sink = VirtualNode::spawn(sink, capture)?;
        let mic = Arc::new(Playout::new().map_err(std::io::Error::other)?);
        let play_mic = Arc::clone(&mic);
        let source = VirtualNode::spawn(
            NodeSpec {
                name: format!("punktfunk.{id}.mic"),
                description: format!("punktfunk microphone ({id})"),
                channels: Channels::Stereo,
                quantum: QUANTUM,
                app_stream: false,
                target: None,
                capture_sink: false,
            },
            Io::Play(Box::new(move |out| play_mic.fill(out))),
        )?;
        debug_assert_eq!(CHANNELS, Channels::Stereo.count());
        let deadline = Instant::now() + ready;
        for node in [&sink, &source] {
            if !ready.is_zero() && node.wait_ready(deadline.saturating_duration_since(Instant::now())).is_none() {
                tracing::warn!(node = node.name(), "audio node not ready in {ready:?}: apps may start before it exists");
            }
        }
        Ok(Self { channels, tap, mic, sink, source })
    }

    /// The layout of the sink (what the session's apps see).
    pub fn channels(&self) -> Channels {
        self.channels
    }

    /// Environment for the session's apps: PulseAudio clients (most games) play into the
    /// sink and record from the microphone. Native PipeWire and ALSA clients honour only
    /// one `PIPEWIRE_NODE` for both directions, so it names the sink: game sound matters
    /// more than a microphone for them.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("PULSE_SINK", self.sink.name().into()),
            ("PULSE_SOURCE", self.source.name().into()),
            ("PIPEWIRE_NODE", self.sink.name().into()),
        ]
    }

    /// Starts handing the sink's chunks to a new consumer (replacing any earlier one, whose
    /// queue is closed).
    pub fn subscribe(&self) -> Arc<PcmQueue> {
        let q = Arc::new(PcmQueue::new(QUEUE_CHUNKS));
        if let Some(old) = self.tap.lock().replace(Arc::clone(&q)) {
            old.close();
        }
        q
    }

    /// Stops handing chunks over; the consumer's queue is closed.
    pub fn unsubscribe(&self) {
        if let Some(old) = self.tap.lock().take() {
            old.close();
        }
    }

    pub fn mic(&self) -> &Arc<Playout> {
        &self.mic
    }

    pub fn sink_node(&self) -> &VirtualNode {
        &self.sink
    }

    pub fn source_node(&self) -> &VirtualNode {
        &self.source
    }
}

impl Drop for SessionAudio {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}
