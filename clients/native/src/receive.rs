//! The data plane on the client, on a native thread: hellos to the host until video arrives,
//! then video datagrams → core's receiver (authentication, FEC, reassembly) → decoder, and
//! sound datagrams → authentication → Opus. The microphone, if any, goes up from the same
//! socket.

use crate::decode::{Decoder, Picture};
use crate::mic::{self, Mic};
use crate::probe::{self, Percentiles, Probe};
use punktfunk_core::control::messages::{ReceiveStats, Started};
use punktfunk_core::native::audio::{AudioOpener, AudioSealer, KIND_HELLO, KIND_SOUND, kind};
use punktfunk_core::native::config::{SEQ_RANGE_BITS, StreamConfig};
use punktfunk_core::native::header::Header;
use punktfunk_core::native::receiver::{FrameEvent, Receiver};
use punktfunk_core::native::recovery::{Ask, Recovery, Verdict};
use punktfunk_net::{DataSocket, monotonic_us};
use serde::Serialize;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// What the receiving side saw, written as `stats.json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub frames_decoded: u64,
    pub frames_received: u64,
    pub frames_lost: u64,
    /// Frames that needed FEC.
    pub frames_recovered: u64,
    pub datagrams: u64,
    pub datagrams_invalid: u64,
    pub keyframe_requests: u64,
    /// Losses reported for a repair (to a host that repairs), and the repairs that ended a
    /// wait.
    pub repair_requests: u64,
    pub repairs: u64,
    /// Frames that arrived while a loss was not repaired: not decoded (they refer to it).
    pub frames_dropped: u64,
    /// The app's commit on the host → frame reassembled here, µs, through the clock offset
    /// the control connection measures (frames before the first answer are not counted).
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
    /// Picture sizes seen, in order of first appearance (a renegotiated mode shows here).
    pub sizes: Vec<(u32, u32)>,
    /// Pixel formats of the decoded pictures (bit depth, chroma), in order of first appearance.
    pub pixel_formats: Vec<String>,
    pub first_picture_ms: u64,
    /// Sound packets decoded, and how many never came (gaps in their sequence).
    pub audio_packets: u64,
    pub audio_lost: u64,
    /// Host clock − client clock (µs), as last estimated, and the round trip of the ping
    /// it came from (the estimate is within half of it).
    pub clock_offset_us: Option<i64>,
    pub clock_rtt_us: Option<u64>,
    /// Which decoder ran, and why.
    pub decoder: String,
    /// A frame lost (or refused by the decoder) noticed → the next picture decoded (a repair
    /// or a key frame): how long the picture stood still, per loss (µs).
    pub recovery: Option<Percentiles>,
    /// The test pattern's moving strip (`--check-bars`).
    pub bars: Option<probe::Bars>,
    /// The app's draw → here, for a stream of the test pattern (the latency probe).
    pub probe: Option<probe::Figures>,
    /// When the first sound packet with something audible in it arrived (µs of
    /// CLOCK_REALTIME): a tone's onset at the client.
    pub sound_onset_us: Option<u64>,
}

/// Nothing from the host for this long: hellos go out often again.
const QUIET: Duration = Duration::from_millis(300);

/// Losses whose recovery time [`Stats::recovery`] counts at most.
const MAX_RECOVERIES: usize = 4096;
/// How soon a report follows new loss (the host raises its parity on it).
const REPORT_ON_LOSS: Duration = Duration::from_millis(200);

/// When each recent frame's first datagram arrived, by frame id (a small ring: frames are
/// reassembled within a few frames of their first datagram).
struct FirstArrivals([(u32, u64); 32]);

impl FirstArrivals {
    /// Notes a datagram of frame `id` arriving now, if it is the frame's first.
    fn note(&mut self, id: u32) {
        let slot = &mut self.0[id as usize % 32];
        if slot.0 != id || slot.1 == 0 {
            *slot = (id, monotonic_us());
        }
    }

    fn of(&self, id: u32) -> Option<u64> {
        let (at, t) = self.0[id as usize % 32];
        (at == id && t != 0).then_some(t)
    }
}

fn realtime_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Commit → reassembled (µs, sorted) of `reassembled` frames (the host's stamp, the time
/// here), through the clocks' offset as now estimated; none before the first estimate.
fn latencies(reassembled: &[(u64, u64)], offset: &Offset) -> Vec<u64> {
    let offset = offset.load(Ordering::Relaxed);
    if offset == UNKNOWN_OFFSET {
        return Vec::new();
    }
    // The host picks the stamp: saturating, never overflowing.
    let mut v: Vec<u64> = reassembled
        .iter()
        .map(|&(stamp, here)| (here as i64).saturating_sub((stamp as i64).saturating_sub(offset)).max(0) as u64)
        .collect();
    v.sort_unstable();
    v
}

/// The host − client clock offset, shared with the control connection that measures it.
pub type Offset = Arc<AtomicI64>;
/// [`Offset`]'s value until the first measurement.
pub const UNKNOWN_OFFSET: i64 = i64::MIN;

pub enum Event {
    Picture(Picture),
    /// The figures so far, once a second (for the host).
    Progress(ReceiveStats),
    /// Decoded sound: interleaved stereo at 48 kHz.
    Sound(Vec<f32>),
    /// A frame was lost or refused: what to ask the host for.
    Ask(Ask),
}

/// Asks the host to mend a loss, counted.
fn ask(ask: Ask, stats: &mut Stats, on: &mut impl FnMut(Event)) {
    match ask {
        Ask::Repair { .. } => stats.repair_requests += 1,
        Ask::Keyframe => stats.keyframe_requests += 1,
    }
    on(Event::Ask(ask));
}

/// What the receiver works with on this machine.
pub struct Local {
    pub decoder: Decoder,
    /// Reads the test pattern's stamps (and bars) from the pictures.
    pub probe: Probe,
    pub mic: Option<mic::Source>,
}

/// Receives until `stop`, calling `on` for each decoded picture and each loss. Returns the
/// figures.
pub fn run(
    host: SocketAddr,
    started: &Started,
    local: Local,
    offset: Offset,
    stop: Arc<AtomicBool>,
    mut on: impl FnMut(Event),
) -> anyhow::Result<Stats> {
    let Local { mut decoder, mut probe, mic } = local;
    let bind: SocketAddr = if host.is_ipv6() { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
    let mut socket = DataSocket::new(UdpSocket::bind(bind)?)?;
    if let Some(w) = socket.buffers().warning() {
        tracing::warn!("{w}");
    }
    let to = SocketAddr::new(host.ip(), started.data_port);
    let _mic = mic.map(|source| Mic::start(source, socket.socket().try_clone()?, to, started.mic_key, Arc::clone(&stop))).transpose()?;
    let cfg = StreamConfig {
        shard_len: started.shard_len as usize,
        fec_percent: started.fec_percent,
        max_fec_percent: started.fec_max_percent,
        max_frame_len: started.max_frame_len as usize,
        key: Some(started.key),
        ..StreamConfig::default()
    };
    let mut receiver = Receiver::new(cfg)?;
    let mut sound = AudioOpener::new(&started.key, KIND_SOUND);
    let mut hellos = AudioSealer::new(&started.mic_key, KIND_HELLO);
    let mut opus = opus::Decoder::new(48_000, opus::Channels::Stereo)?;
    let mut next_sound: Option<u64> = None;
    // Per reassembled frame: the host's commit stamp and when it was reassembled here (the
    // clocks' offset is applied when the figures are made: early estimates can be far off).
    let (mut stats, mut reassembled) = (Stats::default(), Vec::<(u64, u64)>::new());
    let (begin, mut last_hello, mut last_heard) = (Instant::now(), None::<Instant>, None::<Instant>);
    let (mut refused, mut first_error) = (0u64, None::<String>);
    let (mut last_report, mut reported_missing) = (Instant::now(), 0);
    let mut firsts = FirstArrivals([(0, 0); 32]);
    // After a loss, frames wait for its repair (a key frame, from a host that does not
    // repair); how long each wait lasted (µs).
    let (mut recovery, mut recoveries) = (Recovery::new(started.repairs), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        if let Some(a) = recovery.poll(monotonic_us()) {
            ask(a, &mut stats, &mut on);
        }
        // Once a second, and sooner when datagrams went missing since the last report: the
        // host's parity follows the loss reported, and frames are lost while it waits.
        let missing = receiver.packets_missing();
        let due = if missing > reported_missing { REPORT_ON_LOSS } else { Duration::from_secs(1) };
        if last_report.elapsed() >= due {
            (last_report, reported_missing) = (Instant::now(), missing);
            let recent = latencies(&reassembled[reassembled.len().saturating_sub(240)..], &offset);
            on(Event::Progress(ReceiveStats {
                frames_received: stats.frames_received,
                frames_lost: stats.frames_lost,
                frames_recovered: stats.frames_recovered,
                datagrams: stats.datagrams,
                audio_packets: stats.audio_packets,
                video_lost: missing,
                video_burst: receiver.take_longest_gap(),
                latency_us_p50: recent.get(recent.len() / 2).copied().unwrap_or(0),
            }));
        }
        // Tell the host where to send video: often while nothing comes (before the first
        // frame, and while a login stream goes on in its next process, which waits for a
        // hello), then once a second so a changed address (a NAT rebinding) is followed and
        // the path stays open.
        let quiet = last_heard.is_none_or(|t| t.elapsed() > QUIET);
        let every = if quiet { Duration::from_millis(100) } else { Duration::from_secs(1) };
        if last_hello.is_none_or(|t| t.elapsed() > every) {
            if let Some(h) = hellos.seal(&[], monotonic_us()) {
                socket.socket().send_to(h, to)?;
            }
            last_hello = Some(Instant::now());
        }
        socket.recv(Duration::from_millis(50), |from, d| {
            if from.ip() != host.ip() {
                return;
            }
            last_heard = Some(Instant::now());
            stats.datagrams += 1;
            if kind(d) == Some(KIND_SOUND) {
                if let Ok(p) = sound.open(d) {
                    // A login stream's next process numbers in a range of its own: no gap.
                    let expected = next_sound.filter(|n| n >> SEQ_RANGE_BITS == p.seq >> SEQ_RANGE_BITS).unwrap_or(p.seq);
                    stats.audio_lost += p.seq.saturating_sub(expected);
                    next_sound = Some(next_sound.map_or(p.seq + 1, |n| n.max(p.seq + 1)));
                    let mut pcm = vec![0f32; 48 * 120 * 2];
                    if let Ok(n) = opus.decode_float(p.opus, &mut pcm, false) {
                        stats.audio_packets += 1;
                        pcm.truncate(n * 2);
                        if stats.sound_onset_us.is_none() && pcm.iter().any(|s| s.abs() > 0.1) {
                            stats.sound_onset_us = Some(realtime_us());
                        }
                        on(Event::Sound(pcm));
                    }
                }
                return;
            }
            // Read before authentication, for the figures only.
            if let Ok(h) = Header::parse(d) {
                firsts.note(h.frame);
            }
            let _ = receiver.push(d, |e| match e {
                FrameEvent::Frame { id, keyframe, repair, timestamp_us, recovered_shards, data } => {
                    stats.frames_received += 1;
                    stats.frames_recovered += u64::from(recovered_shards > 0);
                    reassembled.push((timestamp_us, monotonic_us()));
                    if reassembled.len() >= 1 << 17 {
                        // Figures over the recent past; memory stays bounded.
                        reassembled.drain(..1 << 16);
                    }
                    let mut waited_since = recovery.waiting_since();
                    if recovery.arrived(id, keyframe, repair) == Verdict::Drop {
                        stats.frames_dropped += 1;
                        return;
                    }
                    let decoded = decoder.decode(data, |p| {
                        stats.frames_decoded += 1;
                        if let Some(since) = waited_since.take() {
                            stats.repairs += u64::from(!keyframe);
                            if recoveries.len() < MAX_RECOVERIES {
                                recoveries.push(monotonic_us().saturating_sub(since) as i64);
                            }
                        }
                        probe.picture(&p, firsts.of(id), monotonic_us());
                        if stats.first_picture_ms == 0 {
                            stats.first_picture_ms = begin.elapsed().as_millis() as u64;
                        }
                        if !stats.sizes.contains(&(p.width, p.height)) {
                            stats.sizes.push((p.width, p.height));
                        }
                        if !stats.pixel_formats.iter().any(|f| f == p.pixel_format) {
                            stats.pixel_formats.push(p.pixel_format.to_owned());
                        }
                        on(Event::Picture(p));
                    });
                    if let Err(e) = decoded {
                        refused += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        ask(recovery.refused(monotonic_us()), &mut stats, &mut on);
                    }
                }
                FrameEvent::Lost { id } => {
                    stats.frames_lost += 1;
                    if let Some(a) = recovery.lost(id, monotonic_us()) {
                        ask(a, &mut stats, &mut on);
                    }
                }
            });
        })?;
    }
    if let Some(first) = first_error {
        tracing::warn!(count = refused, first, "frames the decoder refused");
    }
    stats.datagrams_invalid = receiver.stats().packets_invalid;
    stats.recovery = (!recoveries.is_empty()).then(|| Percentiles::of(recoveries));
    stats.bars = probe.bars();
    let all = latencies(&reassembled, &offset);
    let at = |q: f64| all.get(((all.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    (stats.latency_us_p50, stats.latency_us_p99) = (at(0.5), at(0.99));
    let offset = offset.load(Ordering::Relaxed);
    stats.probe = probe.figures(if offset == UNKNOWN_OFFSET { 0 } else { offset });
    Ok(stats)
}
