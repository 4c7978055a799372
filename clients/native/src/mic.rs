//! The microphone uplink: mono Opus in 10 ms packets, sealed for the client → host direction
//! and sent from the data-plane socket (the host takes microphone datagrams only from the
//! address its video goes to). The samples come from a PipeWire recording stream (the
//! default input, or a named source), or from a sine for checks without a microphone.

use punktfunk_core::channels::Channels;
use punktfunk_core::native::audio::{AudioSealer, KIND_MIC};
use punktfunk_net::monotonic_us;
use punktfunk_sound::node::{Io, NodeSpec, VirtualNode};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// 10 ms at 48 kHz: low delay, and Opus' voice mode is efficient at it.
const PACKET: usize = 480;

#[derive(Clone, Debug)]
pub enum Source {
    /// A PipeWire source by `node.name`; the default input when `None`.
    Capture(Option<String>),
    /// A sine of this frequency.
    Tone(f32),
}

/// Encodes, seals and sends whole packets of mono samples.
struct Uplink {
    encoder: opus::Encoder,
    sealer: AudioSealer,
    socket: UdpSocket,
    to: SocketAddr,
    pending: Vec<f32>,
}

impl Uplink {
    fn push(&mut self, mono: impl IntoIterator<Item = f32>) {
        self.pending.extend(mono);
        let mut at = 0;
        while self.pending.len() - at >= PACKET {
            let packet = &self.pending[at..at + PACKET];
            at += PACKET;
            if let Ok(opus) = self.encoder.encode_vec_float(packet, 1500)
                && let Some(d) = self.sealer.seal(&opus, monotonic_us())
            {
                // A full socket buffer drops this packet; Opus on the host conceals it.
                let _ = self.socket.send_to(d, self.to);
            }
        }
        self.pending.drain(..at);
    }
}

/// The running uplink; dropping it stops capture.
pub struct Mic {
    _node: Option<VirtualNode>,
}

impl Mic {
    pub fn start(source: Source, socket: UdpSocket, to: SocketAddr, key: [u8; 16], stop: Arc<AtomicBool>) -> anyhow::Result<Self> {
        let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
        let mut uplink = Uplink { encoder, sealer: AudioSealer::new(&key, KIND_MIC), socket, to, pending: Vec::with_capacity(4 * PACKET) };
        match source {
            Source::Capture(target) => {
                let spec = NodeSpec {
                    name: "punktfunk-client.mic".into(),
                    description: "punktfunk microphone uplink".into(),
                    channels: Channels::Stereo,
                    quantum: PACKET as u32,
                    app_stream: true,
                    target,
                    capture_sink: false,
                };
                // Runs on the node's thread, once per graph cycle: the stereo pair, averaged.
                let capture =
                    Io::Capture(Box::new(move |stereo: &[f32]| uplink.push(stereo.chunks_exact(2).map(|lr| (lr[0] + lr[1]) * 0.5))));
                let node = VirtualNode::spawn(spec, capture)?;
                if node.wait_ready(Duration::from_secs(3)).is_none() {
                    tracing::warn!("the microphone is not recording yet (is PipeWire running?); it starts when it can");
                }
                Ok(Self { _node: Some(node) })
            }
            Source::Tone(hz) => {
                std::thread::Builder::new().name("microphone".into()).spawn(move || {
                    let start = Instant::now();
                    for packet in 0u64.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let first = packet * PACKET as u64;
                        uplink.push((first..first + PACKET as u64).map(|i| (i as f32 * hz / 48_000.0 * std::f32::consts::TAU).sin() * 0.5));
                        std::thread::sleep((start + Duration::from_millis(10 * (packet + 1))).saturating_duration_since(Instant::now()));
                    }
                })?;
                Ok(Self { _node: None })
            }
        }
    }
}
