//! The punktfunk/1 video sender: encode, then core's punktfunk/1 sender (GF(2^16) FEC,
//! AES-128-GCM, any frame size), then paced GSO batches (punktfunk-net) to the address the
//! client's data-plane hello came from. Runs on the sink's native thread like the
//! GameStream sender; a second thread listens for hellos.

use crate::audio::playout::Playout;
use crate::encode::{Codec, SessionEncoder};
use crate::frame::Frame;
use crate::gamestream::video::{SendError, SentFrame};
use crate::peer::Peer;
use punktfunk_core::control::messages::parse_hello;
use punktfunk_core::native::audio::{kind, AudioOpener, KIND_MIC};
use punktfunk_core::native::config::StreamConfig;
use punktfunk_core::native::sender::{Frame as NativeFrame, Sender};
use punktfunk_core::pacer::{Pacer, PacerConfig};
use punktfunk_net::{monotonic_us, DataSocket};
use serde::{Deserialize, Serialize};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the control connection negotiated for video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeVideoParams {
    pub codec: Codec,
    pub bitrate_bps: u64,
    pub fps_mhz: u32,
    pub shard_len: u32,
    pub fec_percent: u16,
    pub max_frame_len: u32,
    /// Host → client AES-128-GCM key (video and sound), fresh for this start.
    pub key: [u8; 16],
    /// Client → host key (the microphone).
    pub mic_key: [u8; 16],
    /// The token the client's hello carries.
    pub token: u64,
    pub encoder: String,
}

impl NativeVideoParams {
    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            shard_len: self.shard_len as usize,
            fec_percent: self.fec_percent,
            max_frame_len: self.max_frame_len as usize,
            key: Some(self.key),
            ..StreamConfig::default()
        }
    }
}

/// Listens on the data-plane socket until `stop`: hellos latch the client's address
/// (`on_latch` runs when it changes: the client needs a key frame); microphone datagrams from
/// that address go to the session's virtual microphone, when it has one.
pub fn listen_for_hellos(socket: UdpSocket, params: &NativeVideoParams, peer: Peer, stop: Arc<AtomicBool>, mic: Option<Arc<Playout>>, on_latch: impl Fn()) {
    let mut socket = match DataSocket::new(socket) {
        Ok(s) => s,
        Err(e) => return tracing::error!("data-plane socket: {e}"),
    };
    let mut opener = AudioOpener::new(&params.mic_key, KIND_MIC);
    while !stop.load(Ordering::Relaxed) {
        let _ = socket.recv(Duration::from_millis(200), |from, d| {
            if parse_hello(d) == Some(params.token) {
                if peer.set(from) {
                    tracing::info!(%from, "punktfunk/1 client latched");
                    on_latch();
                }
            } else if let Some(mic) = mic.as_ref().filter(|_| peer.get() == Some(from) && kind(d) == Some(KIND_MIC)) {
                if let Ok(packet) = opener.open(d) {
                    let _ = mic.push_opus(packet.opus);
                }
            }
        });
    }
}

pub struct NativeVideoSender {
    socket: DataSocket,
    peer: Peer,
    encoder: SessionEncoder,
    sender: Sender,
    pacer: Pacer,
    frame_id: u32,
}

impl NativeVideoSender {
    pub fn new(params: NativeVideoParams, socket: UdpSocket, peer: Peer, idr: Arc<AtomicBool>) -> Result<Self, SendError> {
        let sender = Sender::new(params.stream_config()).map_err(|e| SendError::Config(e.to_string()))?;
        let socket = DataSocket::new(socket).map_err(|e| SendError::Config(e.to_string()))?;
        if let Some(w) = socket.buffers().warning() {
            tracing::warn!("{w}");
        }
        let pacer = Pacer::new(PacerConfig::new(params.bitrate_bps, f64::from(params.fps_mhz) / 1000.0));
        let encoder = SessionEncoder::new(params.codec, params.fps_mhz, params.bitrate_bps, &params.encoder, idr);
        Ok(Self { socket, peer, encoder, sender, pacer, frame_id: 0 })
    }

    pub fn set_bitrate(&mut self, bps: u64) {
        self.encoder.set_bitrate(bps);
        self.pacer.set_bitrate(bps);
    }

    /// Encodes and sends one frame; without a client address yet it is skipped and the
    /// first frame the client sees is a key frame.
    pub fn send(&mut self, frame: &Frame) -> Result<Option<SentFrame>, SendError> {
        let Some(to) = self.peer.get() else {
            self.encoder.request_keyframe();
            return Ok(None);
        };
        let Some(encoded) = self.encoder.encode(frame)? else { return Ok(None) };
        let id = self.frame_id;
        self.frame_id = self.frame_id.wrapping_add(1);
        // The frame's submit time on the machine-wide monotonic clock: when the compositor
        // finished it, so the client's latency figure covers encoding too.
        let timestamp_us = monotonic_us().saturating_sub(frame.rendered_at.elapsed().as_micros() as u64);
        let data_datagrams = encoded.data.len().div_ceil(self.sender.config().shard_len).max(1);
        let datagrams = match self.sender.packetize(&NativeFrame { id, keyframe: encoded.keyframe, timestamp_us, data: &encoded.data }) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(id, "frame dropped: {e}");
                return Ok(None);
            }
        };
        let (count, drops_before) = (datagrams.count(), self.socket.send_drops);
        for batch in self.pacer.plan(Instant::now(), count, datagrams.datagram_len()) {
            let wait = batch.deadline.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            // Lost datagrams are counted by the socket; FEC or a key frame request recovers.
            if let Err(e) = self.socket.send(to, &datagrams.range(batch.range.start, batch.range.end)) {
                tracing::debug!("video datagrams not sent: {e}");
            }
        }
        Ok(Some(SentFrame {
            index: id,
            bytes: encoded.data.len(),
            datagrams: count,
            data_datagrams,
            unsent: (self.socket.send_drops - drops_before) as usize,
            keyframe: encoded.keyframe,
            host_latency: frame.rendered_at.elapsed(),
        }))
    }
}
