//! The audio sender of either protocol, on its own native thread: the session sink's
//! samples, remixed to the stream's layout, cut into packets, silence held back, Opus at the
//! layout the client decodes, then the protocol's wire format ([`Wire`]) to the client's
//! latched address.

use super::encoder::AudioEncoder;
use super::framer::{Framer, SilenceGate};
use super::layout::{Channels, OpusLayout, remix};
use super::queue::{PcmQueue, Pop};
use crate::latency::LatencySamples;
use crate::peer::{Listener, Peer};
use punktfunk_core::gamestream::audio::{AudioPacketizer, AudioPosition};
use punktfunk_core::native::audio::AudioSealer;
pub use punktfunk_core::stream::AudioStats;
use std::net::UdpSocket;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the Opus packets travel.
pub enum Wire {
    /// GameStream RTP: AES-CBC, 4+2 FEC blocks.
    GameStream(Box<AudioPacketizer>),
    /// punktfunk/1 audio datagrams: AES-GCM, one per packet.
    Native(AudioSealer),
}

impl Wire {
    /// Where a pause for silence may start without leaving a FEC block half sent.
    fn at_block_start(&self) -> bool {
        match self {
            Self::GameStream(p) => p.at_block_start(),
            Self::Native(_) => true,
        }
    }

    /// Where a GameStream packetizer stopped (punktfunk/1 keys every start afresh).
    fn position(&self) -> Option<AudioPosition> {
        match self {
            Self::GameStream(p) => Some(p.position()),
            Self::Native(_) => None,
        }
    }

    /// Hands the packet's datagrams to `send`; false if the packet could not be framed.
    fn send(&mut self, opus: &[u8], captured: Instant, mut send: impl FnMut(&[u8])) -> bool {
        match self {
            Self::GameStream(p) => p.push(opus, send).map_err(|e| tracing::warn!("audio: {e}")).is_ok(),
            Self::Native(s) => {
                let timestamp_us = punktfunk_net::monotonic_us().saturating_sub(captured.elapsed().as_micros() as u64);
                s.seal(opus, timestamp_us).map(&mut send).is_some()
            }
        }
    }
}

/// Silence sent on after sound stops, so a word's tail is not cut.
const HANGOVER: Duration = Duration::from_millis(200);

pub struct AudioSender {
    /// The thread that hears the client for this sender (GameStream's pings), stopped first.
    listener: Option<Listener>,
    pcm: Arc<PcmQueue>,
    peer: Peer,
    thread: Option<JoinHandle<(AudioStats, Wire)>>,
}

impl AudioSender {
    /// Starts sending what `pcm` carries (interleaved at the sink's layout, `source`) as
    /// `layout` in packets of `packet_ms`, to whatever address `peer` holds.
    pub fn start(
        layout: OpusLayout,
        packet_ms: u32,
        wire: Wire,
        socket: UdpSocket,
        peer: Peer,
        pcm: Arc<PcmQueue>,
        source: Channels,
    ) -> std::io::Result<Self> {
        let encoder = AudioEncoder::new(layout, packet_ms).map_err(std::io::Error::other)?;
        let queue = Arc::clone(&pcm);
        let target = layout.channels;
        let thread = std::thread::Builder::new().name("audio-send".into()).spawn({
            let peer = peer.clone();
            move || send_loop(encoder, wire, packet_ms, &socket, &queue, (source, target), &peer)
        })?;
        Ok(Self { listener: None, pcm, peer, thread: Some(thread) })
    }

    /// Where the sound goes: the client's address, once it made itself known.
    pub fn peer(&self) -> Option<std::net::SocketAddr> {
        self.peer.get()
    }

    /// Stops and joins `listener` when the sender stops.
    pub fn with_listener(mut self, listener: Listener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Stops the sender; returns the stream's figures and, for GameStream, where its
    /// packetizer stopped (for a sender that goes on under the same key).
    pub fn stop(mut self) -> (AudioStats, Option<AudioPosition>) {
        self.halt()
    }

    fn halt(&mut self) -> (AudioStats, Option<AudioPosition>) {
        self.listener = None;
        self.pcm.close();
        let (mut stats, position) = match self.thread.take().and_then(|t| t.join().ok()) {
            Some((stats, wire)) => (stats, wire.position()),
            None => (AudioStats::default(), None),
        };
        stats.dropped_chunks = self.pcm.dropped();
        (stats, position)
    }
}

impl Drop for AudioSender {
    fn drop(&mut self) {
        self.halt();
    }
}

fn send_loop(
    mut encoder: AudioEncoder,
    mut wire: Wire,
    packet_ms: u32,
    socket: &UdpSocket,
    pcm: &PcmQueue,
    (source, target): (Channels, Channels),
    peer: &Peer,
) -> (AudioStats, Wire) {
    let mut framer = Framer::new(encoder.frame_samples());
    let mut gate = SilenceGate::new(HANGOVER.as_millis() as u32 / packet_ms.max(1));
    let (mut stats, mut latency, mut remixed) = (AudioStats::default(), LatencySamples::default(), Vec::new());
    loop {
        let chunk = match pcm.pop(Duration::from_millis(200)) {
            Pop::Chunk(c) => c,
            Pop::Empty => continue,
            Pop::Closed => break,
        };
        // Nothing to send to until the client is heard from.
        let Some(to) = peer.get() else { continue };
        remix(&chunk.samples, source, target, &mut remixed);
        framer.push(&remixed, chunk.captured, |packet| {
            if !gate.admit(packet.samples, wire.at_block_start()) {
                stats.silent += 1;
                return;
            }
            let opus = match encoder.encode(packet.samples) {
                Ok(o) => o,
                Err(e) => return tracing::warn!("audio: {e}"),
            };
            let sent = wire.send(opus, packet.captured, |datagram| {
                // Best effort like video: a full socket buffer loses a packet, not the stream.
                if socket.send_to(datagram, to).is_ok() {
                    stats.datagrams += 1;
                }
            });
            if sent {
                stats.packets += 1;
                latency.record(packet.captured.elapsed());
            }
        });
    }
    (stats.capture_to_send_us_p50, stats.capture_to_send_us_p99) = latency.take();
    (stats, wire)
}
