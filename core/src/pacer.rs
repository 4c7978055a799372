//! Send pacing: turns "this frame has N datagrams" into batch send deadlines, so a frame
//! leaves as a smooth train instead of a burst that overflows switch and NIC queues.
//!
//! Rule: a frame's first `burst` datagrams leave at once (on a wired LAN a burst of that size
//! fits every queue on the way, and waiting would only add latency); the rest go out at
//! `burst_factor ×` the stream bitrate, but never take longer than `share` of the frame
//! interval (big key frames speed up to fit). Frames never overlap: a frame queued while the
//! previous one is still leaving starts after it.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct PacerConfig {
    pub bitrate_bps: u64,
    pub frame_interval: Duration,
    /// Share of the frame interval a frame may take at most (0 < share <= 1).
    pub share: f64,
    /// How much faster than the average bitrate a frame is sent.
    pub burst_factor: f64,
    /// Datagrams sent together per deadline (one sendmmsg / GSO call).
    pub batch: usize,
    /// Datagrams of a frame sent at once before pacing starts (0: pace them all).
    pub burst: usize,
}

/// Datagrams a wired link takes at once: about 90 kB, less than a socket's default send
/// buffer and a switch port's queue; a 720p60 P-frame at 10 Mbit/s is 15.
pub const WIRED_BURST: usize = 64;

impl PacerConfig {
    pub fn new(bitrate_bps: u64, fps: f64) -> Self {
        Self {
            bitrate_bps: bitrate_bps.max(1),
            frame_interval: Duration::from_secs_f64(1.0 / fps.max(1.0)),
            share: 0.5,
            burst_factor: 4.0,
            batch: 16,
            burst: 0,
        }
    }

    /// With the first `burst` datagrams of each frame sent at once.
    pub fn with_burst(self, burst: usize) -> Self {
        Self { burst, ..self }
    }
}

/// Send `range` of the frame's datagrams no earlier than `deadline`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub range: std::ops::Range<usize>,
    pub deadline: Instant,
}

pub struct Pacer {
    cfg: PacerConfig,
    busy_until: Option<Instant>,
}

impl Pacer {
    pub fn new(cfg: PacerConfig) -> Self {
        Self { cfg, busy_until: None }
    }

    pub fn set_bitrate(&mut self, bitrate_bps: u64) {
        self.cfg.bitrate_bps = bitrate_bps.max(1);
    }

    /// Datagrams of a frame sent at once from the next frame on.
    pub fn set_burst(&mut self, burst: usize) {
        self.cfg.burst = burst;
    }

    pub fn burst(&self) -> usize {
        self.cfg.burst
    }

    /// Plans a frame of `count` datagrams of `len` bytes that is ready at `now`.
    pub fn plan(&mut self, now: Instant, count: usize, len: usize) -> impl Iterator<Item = Batch> + use<> {
        let burst = self.cfg.burst.min(count);
        let paced = count - burst;
        let bits = (paced * len * 8) as f64;
        let at_rate = bits / (self.cfg.bitrate_bps as f64 * self.cfg.burst_factor.max(0.01));
        let cap = self.cfg.frame_interval.as_secs_f64() * self.cfg.share.clamp(0.0, 1.0);
        let duration = Duration::try_from_secs_f64(at_rate.min(cap)).unwrap_or(Duration::ZERO);
        let start = self.busy_until.filter(|&t| t > now).unwrap_or(now);
        self.busy_until = Some(start + duration);
        let per_datagram = if paced > 0 { duration / paced as u32 } else { Duration::ZERO };
        let batch = self.cfg.batch.max(1);
        (0..count.div_ceil(batch)).map(move |k| {
            let first = k * batch;
            let deadline = start + per_datagram * first.saturating_sub(burst) as u32;
            Batch { range: first..(first + batch).min(count), deadline }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_go_at_burst_rate_and_big_ones_fit_the_share() {
        // 20 Mbps, 60 fps: the average frame is 41.7 kB.
        let mut p = Pacer::new(PacerConfig::new(20_000_000, 60.0));
        let t0 = Instant::now();
        let b: Vec<Batch> = p.plan(t0, 32, 1300).collect();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].deadline, t0);
        // 32·1300·8 bits at 80 Mbps = 4.16 ms; the second batch starts halfway.
        let second = b[1].deadline - t0;
        assert!(second > Duration::from_micros(2000) && second < Duration::from_micros(2200), "{second:?}");

        // A 1.3 MB key frame would take 130 ms at 80 Mbps: capped at half of 16.7 ms.
        let t1 = t0 + Duration::from_secs(1);
        let b: Vec<Batch> = p.plan(t1, 1000, 1300).collect();
        let last = b.last().unwrap().deadline - t1;
        assert!(last <= Duration::from_micros(8334), "{last:?}");
        assert_eq!(b.last().unwrap().range.end, 1000);
    }

    #[test]
    fn a_burst_leaves_at_once_and_only_the_rest_is_paced() {
        let mut p = Pacer::new(PacerConfig::new(20_000_000, 60.0).with_burst(WIRED_BURST));
        let t0 = Instant::now();
        // A P-frame within the burst: every batch at once, and the next frame need not wait.
        assert!(p.plan(t0, 40, 1300).all(|b| b.deadline == t0));
        assert!(p.plan(t0, 10, 1300).all(|b| b.deadline == t0));
        // A key frame: its first 64 at once, the other 136 over what they take at 80 Mbps.
        let t1 = t0 + Duration::from_secs(1);
        let b: Vec<Batch> = p.plan(t1, 200, 1300).collect();
        assert!(b.iter().filter(|b| b.range.end <= WIRED_BURST).all(|b| b.deadline == t1));
        let last = b.last().unwrap().deadline - t1;
        // 136·1300·8 bits at 80 Mbps = 17.7 ms, capped at half of 16.7 ms; the last batch
        // (from datagram 192) starts at 128/136 of that.
        assert!(last > Duration::from_micros(7500) && last <= Duration::from_micros(8334), "{last:?}");
        // Without the burst (Wi-Fi), the same frame's second batch waits.
        let mut paced = Pacer::new(PacerConfig::new(20_000_000, 60.0));
        assert!(paced.plan(t1, 200, 1300).nth(1).unwrap().deadline > t1);
    }

    #[test]
    fn frames_queue_behind_the_previous_one() {
        let mut p = Pacer::new(PacerConfig::new(10_000_000, 60.0));
        let t0 = Instant::now();
        let _ = p.plan(t0, 100, 1300).count();
        let next: Vec<Batch> = p.plan(t0, 10, 1300).collect();
        assert!(next[0].deadline > t0);
    }
}
