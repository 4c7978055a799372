//! Send pacing: turns "this frame has N datagrams" into batch send deadlines, so a frame
//! leaves as a smooth train instead of a burst that overflows switch and NIC queues.
//!
//! Rule: a frame goes out at `burst_factor ×` the stream bitrate, but never takes longer than
//! `share` of the frame interval (big key frames speed up to fit). Frames never overlap: a
//! frame queued while the previous one is still leaving starts after it.

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
}

impl PacerConfig {
    pub fn new(bitrate_bps: u64, fps: f64) -> Self {
        Self {
            bitrate_bps: bitrate_bps.max(1),
            frame_interval: Duration::from_secs_f64(1.0 / fps.max(1.0)),
            share: 0.5,
            burst_factor: 4.0,
            batch: 16,
        }
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

    /// Plans a frame of `count` datagrams of `len` bytes that is ready at `now`.
    pub fn plan(&mut self, now: Instant, count: usize, len: usize) -> impl Iterator<Item = Batch> + use<> {
        let bits = (count * len * 8) as f64;
        let at_rate = bits / (self.cfg.bitrate_bps as f64 * self.cfg.burst_factor.max(0.01));
        let cap = self.cfg.frame_interval.as_secs_f64() * self.cfg.share.clamp(0.0, 1.0);
        let duration = Duration::try_from_secs_f64(at_rate.min(cap)).unwrap_or(Duration::ZERO);
        let start = self.busy_until.filter(|&t| t > now).unwrap_or(now);
        self.busy_until = Some(start + duration);
        let per_datagram = if count > 0 { duration / count as u32 } else { Duration::ZERO };
        let batch = self.cfg.batch.max(1);
        (0..count.div_ceil(batch)).map(move |k| {
            let first = k * batch;
            Batch { range: first..(first + batch).min(count), deadline: start + per_datagram * first as u32 }
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
    fn frames_queue_behind_the_previous_one() {
        let mut p = Pacer::new(PacerConfig::new(10_000_000, 60.0));
        let t0 = Instant::now();
        let _ = p.plan(t0, 100, 1300).count();
        let next: Vec<Batch> = p.plan(t0, 10, 1300).collect();
        assert!(next[0].deadline > t0);
    }
}
