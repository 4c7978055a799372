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

    /// Packets sent regardless of sound when a stream starts: moonlight-common-c drops the
    /// first 500 ms of audio packets it receives (taking them for a backlog the host built
    /// up before it listened), so a session silent at the start would lose the first half
    /// second of its first sound; silence is sent for that (and 100 ms more) instead.
    /// punktfunk/1 clients play every packet.
    fn primer(&self, packet_ms: u32) -> u32 {
        match self {
            Self::GameStream(_) => 600 / packet_ms.max(1),
            Self::Native(_) => 0,
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
    encoder: AudioEncoder,
    wire: Wire,
    packet_ms: u32,
    socket: &UdpSocket,
    pcm: &PcmQueue,
    (source, target): (Channels, Channels),
    peer: &Peer,
) -> (AudioStats, Wire) {
    let mut framer = Framer::new(encoder.frame_samples());
    let mut gate = SilenceGate::new(HANGOVER.as_millis() as u32 / packet_ms.max(1));
    let silence = vec![0f32; encoder.frame_samples()];
    let mut primer = wire.primer(packet_ms);
    // When the primer began (the client was first heard), and its length then.
    let mut priming: Option<(Instant, u32)> = None;
    let mut out = Packets { encoder, wire, socket, stats: AudioStats::default(), latency: LatencySamples::default() };
    let mut remixed = Vec::new();
    loop {
        // While the primer lasts, time the session spends without sound (its PipeWire graph
        // idles while nothing plays) is sent as silence, a packet per packet's time: waits
        // are half a packet longer than that, so a capture cycle that comes a little late is
        // not taken for an idle graph.
        let to = peer.get();
        let wait = match primer > 0 && to.is_some() {
            true => Duration::from_micros(u64::from(packet_ms) * 1500),
            false => Duration::from_millis(200),
        };
        let chunk = match pcm.pop(wait) {
            Pop::Chunk(c) => c,
            Pop::Empty => {
                if let Some(to) = to.filter(|_| primer > 0) {
                    let (since, length) = *priming.get_or_insert((Instant::now(), primer));
                    let due = (since.elapsed().as_millis() as u32 / packet_ms.max(1) + 1).min(length);
                    while length - primer < due && out.send(&silence, None, to) {
                        primer -= 1;
                    }
                }
                continue;
            }
            Pop::Closed => break,
        };
        // Nothing to send to until the client is heard from.
        let Some(to) = to else { continue };
        remix(&chunk.samples, source, target, &mut remixed);
        framer.push(&remixed, chunk.captured, |packet| {
            if primer == 0 && !gate.admit(packet.samples, out.wire.at_block_start()) {
                out.stats.silent += 1;
                return;
            }
            if out.send(packet.samples, Some(packet.captured), to) {
                primer = primer.saturating_sub(1);
            }
        });
    }
    let Packets { wire, mut stats, mut latency, .. } = out;
    let latency = latency.take();
    (stats.capture_to_send_us_p50, stats.capture_to_send_us_p99) = (latency.p50, latency.p99);
    (stats, wire)
}

/// Encodes and sends packets, counting them.
struct Packets<'a> {
    encoder: AudioEncoder,
    wire: Wire,
    socket: &'a UdpSocket,
    stats: AudioStats,
    latency: LatencySamples,
}

impl Packets<'_> {
    /// Sends one packet of `samples` (captured at `captured`; `None` for silence made here)
    /// to `to`; false if it could not be encoded or framed.
    fn send(&mut self, samples: &[f32], captured: Option<Instant>, to: std::net::SocketAddr) -> bool {
        let opus = match self.encoder.encode(samples) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("audio: {e}");
                return false;
            }
        };
        let (socket, stats) = (self.socket, &mut self.stats);
        let sent = self.wire.send(opus, captured.unwrap_or_else(Instant::now), |datagram| {
            // Best effort like video: a full socket buffer loses a packet, not the stream.
            if socket.send_to(datagram, to).is_ok() {
                stats.datagrams += 1;
            }
        });
        if sent {
            self.stats.packets += 1;
            if let Some(captured) = captured {
                self.latency.record(captured.elapsed());
            }
        }
        sent
    }
}
