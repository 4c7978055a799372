//! What a stream carries (codec, pixel format) and what each protocol negotiated for it: the
//! parameters the daemon hands a stream process, and the figures it reports back.

use crate::channels::Channels;
use crate::colour::{Colour, Matrix, Range};
use crate::native::config::StreamConfig;
use crate::pacer::WIRED_BURST;
use crate::stages::Stages;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Codec {
    H264,
    Hevc,
    Av1,
}

/// How the client wants its pictures: the YUV matrix and range it decodes with, 8 or 10 bits,
/// 4:2:0 or 4:4:4 chroma.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Format {
    pub colour: Colour,
    /// 10 bits (HEVC Main10, AV1): smoother gradients at the same bitrate.
    pub ten_bit: bool,
    /// Chroma at full resolution (H.264 High 4:4:4, HEVC RExt): sharp coloured text.
    #[serde(default)]
    pub yuv444: bool,
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Codec::H264 => "H.264",
            Codec::Hevc => "HEVC",
            Codec::Av1 => "AV1",
        })
    }
}

/// E.g. "10-bit 4:2:0, BT.709 limited range".
impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = if self.ten_bit { 10 } else { 8 };
        let chroma = if self.yuv444 { "4:4:4" } else { "4:2:0" };
        let matrix = match self.colour.matrix {
            Matrix::Bt601 => "BT.601",
            Matrix::Bt709 => "BT.709",
            Matrix::Bt2020 => "BT.2020",
        };
        let range = match self.colour.range {
            Range::Limited => "limited",
            Range::Full => "full",
        };
        write!(f, "{bits}-bit {chroma}, {matrix} {range} range")
    }
}

/// What the RTSP handshake negotiated for video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoParams {
    pub codec: Codec,
    /// From `encoderCscMode` and `dynamicRangeMode`.
    pub format: Format,
    pub bitrate_bps: u64,
    /// Frames a second in millihertz (59.94 Hz = 59940), like the output's refresh.
    pub refresh_mhz: u32,
    pub packet_size: usize,
    /// The parity to start with, in percent of a block's data shards.
    pub fec_percent: u8,
    /// The most parity the tuner may choose as the client reports loss; at or below
    /// `fec_percent` the parity stays fixed.
    #[serde(default)]
    pub fec_max_percent: u8,
    pub min_parity: u8,
    /// `rikey` when video encryption was negotiated.
    pub key: Option<[u8; 16]>,
    /// `X-SS-Ping-Payload`: pings carrying it latch the peer; otherwise any "PING" does.
    pub ping_payload: Option<String>,
    /// The launching client's address: pings count from it alone (the payload travels in
    /// clear, so by itself it would let anyone on the path redirect the stream).
    #[serde(default)]
    pub client: Option<IpAddr>,
    pub encoder: String,
    /// Where the stream's video stands, when another process of the same stream sent it
    /// before this one (a login hands the stream from the greeter to the user's session):
    /// it goes on from there.
    #[serde(default)]
    pub resume: Option<VideoResume>,
    #[serde(default)]
    pub pacing: Pacing,
    /// The client repairs lost frames by invalidating them (`Command::InvalidateFrames`):
    /// the encoder keeps older pictures to repair from.
    #[serde(default)]
    pub invalidation: bool,
}

/// How a frame's datagrams leave the host (`pacing` in the host's configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacing {
    /// Wired until the client reports loss, then paced (and back once the link is clean).
    #[default]
    Auto,
    /// A frame's first [`WIRED_BURST`] datagrams at once, only the rest paced: no wait for
    /// the frames of an ordinary stream.
    Wired,
    /// Every frame paced at 4× the bitrate within half a frame interval: no bursts for a
    /// Wi-Fi link's queues to drop.
    Wifi,
}

/// Loss (a fraction of datagrams) above which `auto` paces every frame.
const LOSSY: f64 = 0.002;

impl Pacing {
    /// Datagrams of a frame to send at once, with `loss` the client's loss as estimated.
    pub fn burst(self, loss: f64) -> usize {
        match self {
            Self::Wired => WIRED_BURST,
            Self::Auto if loss <= LOSSY => WIRED_BURST,
            Self::Auto | Self::Wifi => 0,
        }
    }
}

/// Where a GameStream video sender stands in its stream: what the next frame's number, RTP
/// timestamp, first sequence number and first AES-GCM IV counter are. A sender in the next
/// process of the stream goes on from here, so the client sees one stream and no IV
/// repeats under the stream's key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoResume {
    pub next_index: u32,
    pub rtp_timestamp: u32,
    pub seq: u32,
    pub iv_counter: u64,
}

impl VideoResume {
    /// Where the `process`-th process of a stream (counted from 1) starts, after the last
    /// one reported `last` (`stopped`: its exact end; otherwise a figure up to a second old,
    /// as a process that died left it). Frame numbers and RTP counters go on, past anything
    /// an unreported second could have sent. The IV counter starts at the process's own
    /// range (2^40 datagrams each), whatever was reported (a process may lie or have died
    /// mid-second): no process reuses another's IVs under the stream's key.
    pub fn for_process(last: Option<(Self, bool)>, process: u32, refresh_mhz: u32) -> Self {
        const IV_SPAN: u32 = 40;
        let mut next = last.map(|(r, _)| r).unwrap_or(Self { next_index: 1, ..Self::default() });
        if let Some((_, false)) = last {
            let frames = refresh_mhz.div_ceil(1000).max(1) * 2;
            next.next_index = next.next_index.wrapping_add(frames).max(1);
            next.rtp_timestamp = next.rtp_timestamp.wrapping_add(2 * 90_000);
            next.seq = next.seq.wrapping_add(4096);
        }
        next.iv_counter = u64::from(process) << IV_SPAN;
        next
    }
}

/// A stream's figures when it stops, for the daemon's status and the benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoStats {
    pub frames: u64,
    pub keyframes: u64,
    /// P-frames that repaired a loss the client reported, from a picture it still held
    /// (reference frame invalidation; the other repairs are key frames).
    #[serde(default)]
    pub repairs: u64,
    /// Of `bytes`, what the key frames and the repairs took.
    #[serde(default)]
    pub keyframe_bytes: u64,
    #[serde(default)]
    pub repair_bytes: u64,
    pub bytes: u64,
    pub datagrams: u64,
    pub data_datagrams: u64,
    pub unsent: u64,
    /// The FEC parity last sent, in percent (it follows the link's loss).
    #[serde(default)]
    pub fec_percent: u8,
    /// The parity shards every block last carried at least (raised for a link that loses
    /// bursts).
    #[serde(default)]
    pub min_parity: u8,
    /// What last moved the parity, and the loss the host estimates from the client's
    /// reports, in ‰ of datagrams.
    #[serde(default)]
    pub parity_why: crate::fec_tuner::ParityWhy,
    #[serde(default)]
    pub loss_permille: u16,
    /// The app's commit of the frame's content → last datagram sent, in µs.
    pub host_latency_us_p50: u32,
    pub host_latency_us_p99: u32,
    #[serde(default)]
    pub host_latency_us_mean: u32,
    /// Where that time went: each stage's mean (they add up to the mean above), p50 and p99.
    #[serde(default)]
    pub stages_mean_us: Stages<u32>,
    #[serde(default)]
    pub stages_p50_us: Stages<u32>,
    #[serde(default)]
    pub stages_p99_us: Stages<u32>,
}

/// A running video stream's figures over its last window (about a second), reported while
/// it streams.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveVideo {
    pub window_ms: u32,
    pub stats: VideoStats,
}

impl LiveVideo {
    /// Frames sent per second.
    pub fn fps(&self) -> f64 {
        self.stats.frames as f64 * 1000.0 / f64::from(self.window_ms.max(1))
    }

    /// Video sent, FEC parity included, in kbit/s.
    pub fn kbps(&self) -> u64 {
        self.stats.bytes * 8 / u64::from(self.window_ms.max(1))
    }
}

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
    /// As [`VideoParams::client`].
    #[serde(default)]
    pub client: Option<IpAddr>,
    /// Where the stream's audio stands, when another process of the same stream sent it
    /// before this one (a login's hand-over): its sequence numbers, which make the IVs, go on.
    #[serde(default)]
    pub resume: Option<crate::gamestream::audio::AudioPosition>,
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

/// What the control connection negotiated for video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeVideoParams {
    pub codec: Codec,
    pub format: Format,
    pub bitrate_bps: u64,
    pub refresh_mhz: u32,
    pub shard_len: u32,
    pub fec_percent: u16,
    /// The most parity the sender may move to as the client reports loss; 0: fixed.
    #[serde(default)]
    pub fec_max_percent: u16,
    pub max_frame_len: u32,
    /// Host → client AES-128-GCM key (video and sound), fresh for this start.
    pub key: [u8; 16],
    /// Client → host key (the hello and the microphone).
    pub mic_key: [u8; 16],
    /// Names this start (for the daemon; the data plane authenticates with `mic_key`).
    pub token: u64,
    pub encoder: String,
    #[serde(default)]
    pub pacing: Pacing,
    /// Where this process goes on with the stream (a login stream's later process, under the
    /// same keys); `None`: a fresh start.
    #[serde(default)]
    pub resume: Option<NativeResume>,
    /// The client reports lost frames and drops frames until a repair
    /// (`Command::InvalidateFrames`): the encoder keeps older pictures to repair from, and
    /// repairs go out flagged.
    #[serde(default)]
    pub invalidation: bool,
}

/// Where a punktfunk/1 stream stands when the next process of a login stream goes on with it
/// under the same keys: the client keeps its connection, receiver and decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeResume {
    /// The next frame's id: ids only rise (a receiver takes an older one for a late frame).
    pub next_frame: u32,
    /// The first sequence number of this process's video and sound datagrams: the start of
    /// its own range ([`crate::native::config::SEQ_RANGE_BITS`]), whatever was reported.
    #[serde(default)]
    pub seq: u64,
    /// The newest hello and microphone datagrams the last process took: the next takes only
    /// later ones (no replay of what the last one played).
    pub hello_seen: Option<u64>,
    pub mic_seen: Option<u64>,
}

/// Frame ids a punktfunk/1 stream skips after a process that died: more than a receiver
/// counts as lost frames (it takes a longer jump for a restart).
const RESTART_JUMP: u32 = 256;
/// The most hellos and microphone packets a client sends in a second.
const HELLOS_A_SECOND: u64 = 10;
const MIC_PACKETS_A_SECOND: u64 = 400;

impl NativeResume {
    /// Where the `process`-th process of a stream (counted from 1, below 2^16) starts, after
    /// the last one reported `last` (`stopped`: its exact end; otherwise up to a second old,
    /// as a process that died left it: frame ids jump past what it may have sent since).
    pub fn for_process(last: Option<(Self, bool)>, process: u32, refresh_mhz: u32) -> Self {
        let mut next = last.map(|(r, _)| r).unwrap_or_default();
        if let Some((_, false)) = last {
            // Past two seconds of frames, and far enough that the receiver takes the jump
            // for a restart rather than counting the frames between as lost.
            next.next_frame = next.next_frame.wrapping_add((refresh_mhz.div_ceil(1000) * 2).max(RESTART_JUMP));
            // Past what the client may have sent the dead process in its unreported second
            // (hellos at most 10 a second, microphone packets at most 400): none of it can be
            // replayed into the next one; the client's next datagrams pass within a second.
            next.hello_seen = next.hello_seen.map(|s| s.saturating_add(HELLOS_A_SECOND));
            next.mic_seen = next.mic_seen.map(|s| s.saturating_add(MIC_PACKETS_A_SECOND));
        }
        next.seq = u64::from(process) << crate::native::config::SEQ_RANGE_BITS;
        next
    }
}

impl NativeVideoParams {
    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            shard_len: self.shard_len as usize,
            fec_percent: self.fec_percent,
            max_fec_percent: self.fec_max_percent,
            max_frame_len: self.max_frame_len as usize,
            key: Some(self.key),
            ..StreamConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{NativeResume, VideoResume};

    #[test]
    fn each_process_of_a_native_stream_numbers_in_its_own_range_and_goes_on_with_the_frames() {
        let first = NativeResume::for_process(None, 1, 60_000);
        assert_eq!((first.next_frame, first.seq, first.mic_seen), (0, 1 << 48, None));
        let left = NativeResume { next_frame: 900, seq: 12, hello_seen: Some(30), mic_seen: Some(5000) };
        let next = NativeResume::for_process(Some((left, true)), 2, 60_000);
        assert_eq!(next, NativeResume { seq: 2 << 48, ..left }, "a clean hand-over goes on exactly; the range is its own");
        let after_crash = NativeResume::for_process(Some((left, false)), 3, 60_000);
        assert!(after_crash.next_frame >= 900 + 120 && after_crash.seq == 3 << 48);
        assert!(after_crash.hello_seen > left.hello_seen && after_crash.mic_seen > left.mic_seen, "nothing the dead one took replays");
    }

    #[test]
    fn each_process_of_a_stream_has_its_own_ivs_and_goes_on_with_the_frames() {
        let first = VideoResume::for_process(None, 1, 60_000);
        assert_eq!((first.next_index, first.iv_counter), (1, 1 << 40));
        // A clean hand-over goes on exactly where the last process stopped.
        let left = VideoResume { next_index: 900, rtp_timestamp: 1_350_000, seq: 70_000, iv_counter: (1 << 40) + 70_000 };
        let next = VideoResume::for_process(Some((left, true)), 2, 60_000);
        assert_eq!((next.next_index, next.rtp_timestamp, next.seq), (900, 1_350_000, 70_000));
        assert_eq!(next.iv_counter, 2 << 40, "the next process's IVs are its own, past the last one's");
        // A process that died reported a second ago at best: frames and sequence numbers
        // jump past what it may have sent since.
        let after_crash = VideoResume::for_process(Some((left, false)), 2, 60_000);
        assert!(after_crash.next_index >= 900 + 60 && after_crash.seq > 70_000 && after_crash.rtp_timestamp > 1_350_000 + 90_000);
        assert!(after_crash.iv_counter >= 2 << 40);
        // A process that reports an IV counter beyond its range cannot push the next one's.
        let lying = VideoResume { iv_counter: u64::MAX - 1, ..left };
        assert_eq!(VideoResume::for_process(Some((lying, true)), 3, 60_000).iv_counter, 3 << 40);
        // Counters wrap as on the wire; frame number 0 is never used.
        let wrapped = VideoResume::for_process(Some((VideoResume { next_index: u32::MAX - 10, ..left }, false)), 3, 60_000);
        assert!(wrapped.next_index >= 1 && wrapped.next_index < 200);
    }
}
