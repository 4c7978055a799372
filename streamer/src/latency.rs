//! Latency samples of a running stream, summarised as percentiles when it stops.

use std::time::Duration;

/// Keeps the newest [`Self::SAMPLES`] latencies (minutes of frames or packets): enough for
/// stable percentiles at a fixed memory cost.
#[derive(Default)]
pub struct LatencySamples {
    micros: Vec<u32>,
    seen: u64,
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
    }

    /// (p50, p99) in µs, 0 without samples; starts over.
    pub fn take(&mut self) -> (u32, u32) {
        let mut l = std::mem::take(&mut self.micros);
        self.seen = 0;
        l.sort_unstable();
        let at = |q: f64| l.get(((l.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        (at(0.5), at(0.99))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_what_was_recorded() {
        let mut s = LatencySamples::default();
        assert_eq!(s.take(), (0, 0));
        for us in (1..=100).rev() {
            s.record(Duration::from_micros(us));
        }
        assert_eq!(s.take(), (51, 99));
        assert_eq!(s.take(), (0, 0), "starts over");
    }
}
