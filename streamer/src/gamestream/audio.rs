//! The GameStream audio sender: the session sink's samples, cut into packets, Opus-encoded
//! at the client's layout, then the core's RTP packetizer (AES-CBC, 4+2 FEC) and sent to
//! the address the client's audio pings come from (reference §9). One native thread; a
//! second only listens for pings.

use super::video::{listen_for_pings, Peer};
use crate::audio::encoder::AudioEncoder;
use crate::audio::framer::{Framer, SilenceGate};
use crate::audio::layout::{remix, Channels, OpusLayout};
use crate::audio::queue::{PcmQueue, Pop};
use crate::latency::LatencySamples;
use punktfunk_core::moonlight::audio::AudioPacketizer;
use serde::{Deserialize, Serialize};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the launch and the RTSP handshake negotiated for audio.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioParams {
    pub channels: Channels,
    /// The client asked for the high-quality surround layout.
    pub high_quality: bool,
    /// Packet duration: 5 or 10 ms.
    pub packet_ms: u32,
    /// (`rikey`, `rikeyid`) when audio encryption is on (always, with current clients).
    pub key: Option<([u8; 16], u32)>,
    pub ping_payload: Option<String>,
}

/// A stream's audio figures when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioStats {
    /// Opus packets sent.
    pub packets: u64,
    /// Datagrams sent, FEC included.
    pub datagrams: u64,
    /// Packets of silence held back by the gate.
    pub silent: u64,
    /// Sink chunks lost because the sender fell behind.
    pub dropped_chunks: u64,
    /// Sink chunk arrived → its packet's datagram sent, in µs.
    pub capture_to_send_us_p50: u32,
    pub capture_to_send_us_p99: u32,
}

/// Silence sent on after sound stops, so a word's tail is not cut.
const HANGOVER: Duration = Duration::from_millis(200);

pub struct AudioSender {
    stop: Arc<AtomicBool>,
    pcm: Arc<PcmQueue>,
    thread: Option<JoinHandle<AudioStats>>,
}

impl AudioSender {
    /// Starts sending what `pcm` carries (interleaved at the sink's layout, `source`).
    pub fn start(params: AudioParams, socket: UdpSocket, pcm: Arc<PcmQueue>, source: Channels) -> std::io::Result<Self> {
        let encoder = AudioEncoder::new(OpusLayout::new(params.channels, params.high_quality), params.packet_ms).map_err(std::io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let peer = Peer::default();
        let spawn = |name: &str, f: Box<dyn FnOnce() -> AudioStats + Send>| std::thread::Builder::new().name(name.into()).spawn(f);
        let (ping_socket, payload, ping_peer, ping_stop) = (socket.try_clone()?, params.ping_payload.clone(), peer.clone(), Arc::clone(&stop));
        spawn(
            "audio-pings",
            Box::new(move || {
                listen_for_pings(ping_socket, payload, ping_peer, ping_stop, || {});
                AudioStats::default()
            }),
        )
        ?;
        let queue = Arc::clone(&pcm);
        let thread = spawn("audio-send", Box::new(move || send_loop(&params, encoder, &socket, &queue, source, &peer)))?;
        Ok(Self { stop, pcm, thread: Some(thread) })
    }

    /// Stops both threads and returns the stream's figures.
    pub fn stop(mut self) -> AudioStats {
        self.halt()
    }

    fn halt(&mut self) -> AudioStats {
        self.stop.store(true, Ordering::Relaxed);
        self.pcm.close();
        let mut stats = self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default();
        stats.dropped_chunks = self.pcm.dropped();
        stats
    }
}

impl Drop for AudioSender {
    fn drop(&mut self) {
        self.halt();
    }
}

fn send_loop(params: &AudioParams, mut encoder: AudioEncoder, socket: &UdpSocket, pcm: &PcmQueue, source: Channels, peer: &Peer) -> AudioStats {
    let mut packetizer = AudioPacketizer::new(params.packet_ms, params.key);
    let mut framer = Framer::new(encoder.frame_samples());
    let mut gate = SilenceGate::new(HANGOVER.as_millis() as u32 / params.packet_ms.max(1));
    let (mut stats, mut latency, mut remixed) = (AudioStats::default(), LatencySamples::default(), Vec::new());
    loop {
        let chunk = match pcm.pop(Duration::from_millis(200)) {
            Pop::Chunk(c) => c,
            Pop::Empty => continue,
            Pop::Closed => break,
        };
        // Nothing to send to until the client pings.
        let Some(to) = peer.get() else { continue };
        remix(&chunk.samples, source, params.channels, &mut remixed);
        framer.push(&remixed, chunk.captured, |packet| {
            if !gate.admit(packet.samples, packetizer.at_block_start()) {
                stats.silent += 1;
                return;
            }
            let opus = match encoder.encode(packet.samples) {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!("audio: {e}");
                    return;
                }
            };
            let sent = packetizer.push(opus, |datagram| {
                // Best effort like video: a full socket buffer loses a packet, not the stream.
                if socket.send_to(datagram, to).is_ok() {
                    stats.datagrams += 1;
                }
            });
            match sent {
                Ok(()) => {
                    stats.packets += 1;
                    latency.record(packet.captured.elapsed());
                }
                Err(e) => tracing::warn!("audio: {e}"),
            }
        });
    }
    (stats.capture_to_send_us_p50, stats.capture_to_send_us_p99) = latency.take();
    stats
}
