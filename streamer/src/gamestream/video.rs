//! The GameStream video sender, the per-frame hot path of a Moonlight stream: encode, then
//! the core's packetizer (FEC, optional encryption), then paced UDP sends to the address the
//! client's pings came from (core/GAMESTREAM.md §8.1). Runs on the sink's native thread; a second
//! thread only listens for pings.

use crate::encode::{Choice, Codec, SessionEncoder};
use crate::frame::Frame;
use crate::latency::LatencySamples;
use crate::parity::Parity;
use crate::peer::LISTEN_POLL;
pub use crate::peer::Peer;
use crate::repair::Repairs;
use crate::stages::{StageClock, total};
use punktfunk_core::fec_tuner::{MAX_BURST_PARITY, ParityWhy};
use punktfunk_core::gamestream::annexb::without_sei;
use punktfunk_core::gamestream::video::{FRAME_HEADER_LEN, FrameType, PacketizerPosition, VideoConfig, VideoFrame, VideoPacketizer};
use punktfunk_core::pacer::{Pacer, PacerConfig};
use punktfunk_core::stages::Stages;
pub use punktfunk_core::stream::{VideoParams, VideoResume, VideoStats};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Which datagrams are this stream's pings.
#[derive(Clone, Debug, Default)]
pub struct Pings {
    /// `SS_PING` (payload + BE32 sequence) when the host handed out a payload, else the
    /// legacy 4-byte "PING".
    pub payload: Option<String>,
    /// The launching client's address, when known: pings from elsewhere are not its.
    pub client: Option<IpAddr>,
}

impl Pings {
    pub fn matches(&self, datagram: &[u8], from: SocketAddr) -> bool {
        let shaped = match &self.payload {
            Some(p) => datagram.len() == 20 && &datagram[..16] == p.as_bytes(),
            None => datagram == b"PING",
        };
        shaped && self.client.is_none_or(|ip| ip == from.ip())
    }
}

/// Listens for `pings` on `socket` until `stop`, latching the newest source into `peer`;
/// `on_latch` runs when the peer changes (the new peer needs a fresh key frame).
pub fn listen_for_pings(socket: UdpSocket, pings: Pings, peer: Peer, stop: Arc<AtomicBool>, on_latch: impl Fn()) {
    let _ = socket.set_read_timeout(Some(LISTEN_POLL));
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = socket.recv_from(&mut buf)
            && pings.matches(&buf[..n], from)
            && peer.set(from)
        {
            tracing::info!(%from, "video peer latched");
            on_latch();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Encode(#[from] crate::encode::EncodeError),
    #[error(transparent)]
    Packetize(#[from] punktfunk_core::gamestream::video::VideoError),
    #[error("stream setup: {0}")]
    Config(String),
}

/// Per-frame figures for the stream's statistics.
#[derive(Clone, Copy, Debug, Default)]
pub struct SentFrame {
    pub index: u32,
    pub bytes: usize,
    pub datagrams: usize,
    /// Of those, the data shards (the rest is FEC parity).
    pub data_datagrams: usize,
    /// Datagrams the kernel refused to send (lost before the wire).
    pub unsent: usize,
    pub keyframe: bool,
    /// A P-frame repairing a loss the client reported (from a picture before it).
    pub repair: bool,
    /// The app's commit of the frame's content → last datagram handed to the kernel, stage
    /// by stage.
    pub stages: Stages<Duration>,
    /// The FEC parity it went out with, in percent, and its blocks' least parity shards.
    pub fec_percent: u8,
    pub min_parity: u8,
    /// What last moved the parity, and the loss estimated then (‰ of datagrams).
    pub parity_why: ParityWhy,
    pub loss_permille: u16,
}

/// Accumulates [`SentFrame`]s into [`VideoStats`].
#[derive(Default)]
pub struct StatsRecorder {
    stats: VideoStats,
    latencies: LatencySamples,
    stages: Stages<LatencySamples>,
}

impl StatsRecorder {
    pub fn record(&mut self, sent: &SentFrame) {
        let s = &mut self.stats;
        s.frames += 1;
        s.keyframes += u64::from(sent.keyframe);
        s.repairs += u64::from(sent.repair);
        s.keyframe_bytes += if sent.keyframe { sent.bytes as u64 } else { 0 };
        s.repair_bytes += if sent.repair { sent.bytes as u64 } else { 0 };
        s.bytes += sent.bytes as u64;
        s.datagrams += sent.datagrams as u64;
        s.data_datagrams += sent.data_datagrams as u64;
        s.unsent += sent.unsent as u64;
        (s.fec_percent, s.min_parity, s.parity_why, s.loss_permille) =
            (sent.fec_percent, sent.min_parity, sent.parity_why, sent.loss_permille);
        self.latencies.record(total(&sent.stages));
        for (samples, took) in self.stages.each_mut().into_iter().zip(sent.stages.values()) {
            samples.record(took);
        }
    }

    /// The figures so far; starts over.
    pub fn take(&mut self) -> VideoStats {
        let mut stats = std::mem::take(&mut self.stats);
        let host = self.latencies.take();
        (stats.host_latency_us_mean, stats.host_latency_us_p50, stats.host_latency_us_p99) = (host.mean, host.p50, host.p99);
        let stages = Stages::from_values(self.stages.each_mut().map(LatencySamples::take));
        (stats.stages_mean_us, stats.stages_p50_us, stats.stages_p99_us) =
            (stages.map(|s| s.mean), stages.map(|s| s.p50), stages.map(|s| s.p99));
        stats
    }
}

/// Where a sender stands in its stream, so that one started again under the same key goes on
/// from there: frame numbers, RTP timestamps and sequence numbers, and IVs.
#[derive(Clone, Copy, Debug)]
pub struct VideoPosition {
    next_index: u32,
    epoch: Instant,
    packetizer: PacketizerPosition,
}

impl VideoPosition {
    fn from_resume(r: VideoResume) -> Self {
        let now = Instant::now();
        // RTP timestamps count 90 kHz ticks from the epoch.
        let epoch = now.checked_sub(Duration::from_micros(u64::from(r.rtp_timestamp) * 100 / 9)).unwrap_or(now);
        Self { next_index: r.next_index.max(1), epoch, packetizer: PacketizerPosition { seq: r.seq, iv_counter: r.iv_counter } }
    }
}

pub struct VideoSender {
    params: VideoParams,
    socket: UdpSocket,
    peer: Peer,
    encoder: SessionEncoder,
    packetizer: VideoPacketizer,
    pacer: Pacer,
    next_index: u32,
    epoch: Instant,
    send_errors: u64,
    /// The parity, moved by the loss the client reports.
    parity: Parity,
    /// The losses the client reported, and their repairs.
    repairs: Repairs,
}

impl VideoSender {
    /// A sender for a new stream, or one that goes on from `resume` (the same stream started
    /// again: the same key and ping payload).
    pub fn new(
        params: VideoParams,
        socket: UdpSocket,
        peer: Peer,
        idr: Arc<AtomicBool>,
        resume: Option<VideoPosition>,
    ) -> Result<Self, SendError> {
        // Blocks a burst took (Moonlight's FEC status) raise every block's least parity, as
        // punktfunk/1's do (a one-shard block's to 3 at most: the client derives parity from a
        // percentage of at most 255).
        let parity = Parity::new(params.bitrate_bps, params.fec_percent, params.fec_max_percent, params.min_parity, MAX_BURST_PARITY);
        // The parity a moving stream starts at, and the encoder's share of the budget beside it.
        let (fec_percent, bitrate_bps) = (parity.percent(), parity.encoder_bps());
        let config = VideoConfig { packet_size: params.packet_size, fec_percent, min_parity: params.min_parity, key: params.key };
        // Within this process a sender goes on from the last one's position; the first in the
        // next process of a stream from where the daemon says the last process stopped.
        let resume = resume.or_else(|| params.resume.map(VideoPosition::from_resume));
        let packetizer = match resume {
            Some(r) => VideoPacketizer::resume(config, r.packetizer)?,
            None => VideoPacketizer::new(config)?,
        };
        let fps = f64::from(params.refresh_mhz) / 1000.0;
        let pacer = Pacer::new(PacerConfig::new(bitrate_bps, fps).with_burst(params.pacing.burst(0.0)));
        let encoder = SessionEncoder::new(
            params.codec,
            params.format,
            params.refresh_mhz,
            bitrate_bps,
            params.encoder.parse().unwrap_or(Choice::Auto),
            idr,
        )
        .invalidating(params.invalidation);
        let (next_index, epoch) = resume.map_or((1, Instant::now()), |r| (r.next_index, r.epoch));
        Ok(Self {
            params,
            socket,
            peer,
            encoder,
            packetizer,
            pacer,
            next_index,
            epoch,
            send_errors: 0,
            parity,
            repairs: Repairs::default(),
        })
    }

    /// The client lost frames `first..=last` (see [`Repairs::invalidate`]); false for a
    /// report the last repair covers already.
    pub fn invalidate(&mut self, first: u32, last: u32) -> bool {
        self.repairs.invalidate(&mut self.encoder, first, last)
    }

    /// What the client reported of the link: it steers the parity.
    pub fn parity(&mut self) -> &mut Parity {
        &mut self.parity
    }

    /// Moves the parity where the client's losses say, and the encoder's share of the
    /// budget with it.
    fn retune(&mut self, now: Instant) {
        if let Some(percent) = self.parity.poll(now) {
            self.packetizer.set_fec_percent(percent);
        }
        if let Some(min_parity) = self.parity.min_parity() {
            self.packetizer.set_min_parity(min_parity);
        }
        if let Some(bps) = self.parity.retarget() {
            self.encoder.set_bitrate(bps);
            self.pacer.set_bitrate(bps);
        }
        self.pacer.set_burst(self.params.pacing.burst(self.parity.loss()));
    }

    pub fn params(&self) -> &VideoParams {
        &self.params
    }

    /// Where it stands, for a sender in the stream's next process.
    pub fn resume_point(&self) -> VideoResume {
        let p = self.packetizer.position();
        let rtp_timestamp = (self.epoch.elapsed().as_micros() * 9 / 100) as u32;
        VideoResume { next_index: self.next_index, rtp_timestamp, seq: p.seq, iv_counter: p.iv_counter }
    }

    /// Where it stands, for a sender that goes on from here.
    pub fn position(&self) -> VideoPosition {
        VideoPosition { next_index: self.next_index, epoch: self.epoch, packetizer: self.packetizer.position() }
    }

    /// A new budget, as the encoder's bitrate at the parity the stream started with.
    pub fn set_bitrate(&mut self, bps: u64) {
        self.parity.set_budget(bps);
        let bps = self.parity.encoder_bps();
        self.encoder.set_bitrate(bps);
        self.pacer.set_bitrate(bps);
    }

    /// Its encoder: what frames it would like, its surfaces, its name.
    pub fn encoder(&self) -> &SessionEncoder {
        &self.encoder
    }

    /// Encodes and sends one frame. Without a peer yet the frame is skipped, and the first
    /// frame a peer sees is an IDR (the client waits for one).
    pub fn send(&mut self, frame: Frame) -> Result<Option<SentFrame>, SendError> {
        let Some(peer) = self.peer.get() else {
            self.encoder.request_keyframe();
            return Ok(None);
        };
        let mut clock = StageClock::picked_up(&frame);
        let (rendered_at, committed_at, encoded) = (frame.rendered_at, frame.committed_at, self.encoder.encode(&frame)?);
        // The frame's buffer (or GPU surface) goes back before packetizing and pacing.
        drop(frame);
        let Some(encoded) = encoded else {
            return Ok(None);
        };
        clock.encoded(encoded.convert_us);
        let index = self.next_index;
        self.next_index = self.next_index.wrapping_add(1).max(1);
        let repair = self.repairs.sent(index, encoded.seq, encoded.keyframe);
        let rtp_timestamp = (rendered_at.saturating_duration_since(self.epoch).as_micros() * 9 / 100) as u32;
        // What Moonlight shows as the host's latency: from the app's commit, not the render.
        let latency_100us = (committed_at.elapsed().as_micros() / 100).min(u16::MAX as u128) as u16;
        // The client finds an H.264/HEVC key frame only if its slice starts in the first packet.
        let bitstream = match self.params.codec {
            Codec::H264 | Codec::Hevc if encoded.keyframe => without_sei(&encoded.data, self.params.codec == Codec::Hevc),
            _ => Cow::Borrowed(&encoded.data[..]),
        };
        let fec_percent = self.packetizer.config().fec_percent;
        let datagrams = match self.packetizer.packetize(&VideoFrame {
            index,
            rtp_timestamp,
            frame_type: match (encoded.keyframe, repair) {
                (true, _) => FrameType::Idr,
                (false, true) => FrameType::AfterInvalidation,
                (false, false) => FrameType::P,
            },
            latency_100us,
            bitstream: &bitstream,
        }) {
            Ok(d) => d,
            // Too big for four FEC blocks (a bitrate far beyond what was negotiated): the
            // client sees a lost frame and asks for a key frame.
            Err(e) => {
                tracing::warn!(index, "frame dropped: {e}");
                return Ok(None);
            }
        };
        let count = datagrams.count();
        let data_datagrams = (FRAME_HEADER_LEN + bitstream.len()).div_ceil(self.params.packet_size - 16);
        let errors_before = self.send_errors;
        clock.packetized();
        let (socket, send_errors) = (&self.socket, &mut self.send_errors);
        clock.send_paced(&mut self.pacer, count, datagrams.datagram_len(), |range| {
            for d in datagrams.iter().skip(range.start).take(range.len()) {
                // A datagram that cannot go out (full buffer, a firewall drop answered with
                // EPERM, ICMP unreachable reported as ECONNREFUSED) is lost like any other:
                // FEC or the client's IDR request recovers. The stream goes on.
                if let Err(e) = socket.send_to(d, peer) {
                    if send_errors.is_multiple_of(1000) {
                        tracing::warn!(errors = *send_errors + 1, "video datagram not sent: {e}");
                    }
                    *send_errors += 1;
                }
            }
        });
        let stages = clock.stages(Instant::now());
        Ok(Some(SentFrame {
            index,
            bytes: bitstream.len(),
            datagrams: count,
            data_datagrams,
            unsent: (self.send_errors - errors_before) as usize,
            keyframe: encoded.keyframe,
            repair,
            stages,
            fec_percent,
            min_parity: self.packetizer.config().min_parity,
            parity_why: self.parity.why(),
            loss_permille: self.parity.loss_permille(),
        }))
        .inspect(|_| {
            self.parity.sent(count, data_datagrams);
            self.retune(Instant::now());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_percentiles() {
        let mut r = StatsRecorder::default();
        for ms in 1..=100u64 {
            // The encode takes the frame's ms, the wait 0.5 ms more than the send's 0.5.
            let stages = Stages {
                wait: Duration::from_micros(ms * 500 + 500),
                encode: Duration::from_micros(ms * 500),
                send: Duration::from_micros(500),
                ..Stages::default()
            };
            r.record(&SentFrame {
                index: ms as u32,
                bytes: 10,
                datagrams: 2,
                data_datagrams: 1,
                unsent: 0,
                keyframe: ms == 1,
                repair: ms == 50,
                stages,
                fec_percent: 20,
                min_parity: 2,
                parity_why: ParityWhy::Fixed,
                loss_permille: 0,
            });
        }
        let s = r.take();
        assert_eq!((s.frames, s.keyframes, s.repairs, s.bytes, s.datagrams), (100, 1, 1, 1000, 200));
        assert_eq!((s.keyframe_bytes, s.repair_bytes), (10, 10));
        // Every frame took its 1..=100 ms plus 1 ms.
        assert_eq!((s.host_latency_us_mean, s.host_latency_us_p50, s.host_latency_us_p99), (51_500, 52_000, 100_000));
        assert_eq!(
            (s.stages_mean_us.wait, s.stages_mean_us.encode, s.stages_mean_us.send, s.stages_mean_us.queue),
            (25_750, 25_250, 500, 0)
        );
        assert_eq!((s.stages_p99_us.wait, s.stages_p99_us.encode), (50_000, 49_500));
        assert_eq!((s.stages_p50_us.wait, s.stages_p50_us.send), (26_000, 500));
        assert_eq!(s.stages_mean_us.values().iter().sum::<u32>(), s.host_latency_us_mean, "the stages' means add up");
        assert_eq!(r.take(), VideoStats::default());
    }

    #[test]
    fn pings() {
        let mut ss = b"0123456789ABCDEF".to_vec();
        ss.extend_from_slice(&7u32.to_be_bytes());
        let (client, other) = (SocketAddr::from(([10, 0, 0, 5], 4000)), SocketAddr::from(([10, 0, 0, 66], 4000)));
        let payload = |p: &str| Pings { payload: Some(p.into()), client: None };
        assert!(payload("0123456789ABCDEF").matches(&ss, client));
        assert!(!payload("0123456789ABCDEX").matches(&ss, client));
        assert!(!payload("0123456789ABCDEF").matches(b"PING", client));
        assert!(Pings::default().matches(b"PING", client));
        assert!(!Pings::default().matches(&ss, client));
        // The payload travels in clear: from another address it moves nothing.
        let launched = Pings { payload: Some("0123456789ABCDEF".into()), client: Some(client.ip()) };
        assert!(launched.matches(&ss, SocketAddr::from(([10, 0, 0, 5], 5000))), "any port of the client");
        assert!(!launched.matches(&ss, other));
    }
}
