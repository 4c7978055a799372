//! Latency samples of a running stream, summarised as percentiles when it stops.

use std::time::Duration;

/// Keeps the newest [`Self::SAMPLES`] latencies (minutes of frames or packets): enough for
/// stable percentiles at a fixed memory cost.
#[derive(Default)]
pub struct LatencySamples {
    micros: Vec<u32>,
    seen: u64,
    /// Of every sample since the last take (the mean covers them all, not just the kept).
    sum_us: u64,
}

/// What [`LatencySamples::take`] sums up, in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub mean: u32,
    pub p50: u32,
    pub p99: u32,
}

impl LatencySamples {
    const SAMPLES: usize = 16_384;

    pub fn record(&mut self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
        if self.micros.len() < Self::SAMPLES {
            self.micros.push(us);
        } else {
            self.micros[(self.seen % Self::SAMPLES as u64) as usize] = us;
        }
        self.seen += 1;
        self.sum_us += u64::from(us);
    }

    /// Mean, p50 and p99, 0 without samples; starts over.
    pub fn take(&mut self) -> Summary {
        let mut l = std::mem::take(&mut self.micros);
        let mean = (self.sum_us / self.seen.max(1)) as u32;
        (self.seen, self.sum_us) = (0, 0);
        l.sort_unstable();
        let at = |q: f64| l.get(((l.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        Summary { mean, p50: at(0.5), p99: at(0.99) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_what_was_recorded() {
        let mut s = LatencySamples::default();
        assert_eq!(s.take(), Summary::default());
        for us in (1..=100).rev() {
            s.record(Duration::from_micros(us));
        }
        assert_eq!(s.take(), Summary { mean: 50, p50: 51, p99: 99 });
        assert_eq!(s.take(), Summary::default(), "starts over");
    }
}
