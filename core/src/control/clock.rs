//! The offset between the host's clock and the client's, so a client on another machine can
//! turn a frame's host timestamp into its own time (end-to-end latency across machines).
//!
//! NTP's idea, reduced to what a LAN needs: the client stamps a `Ping` with its clock, the
//! host answers with the stamp and its own clock, and the client assumes the host read its
//! clock half-way through the round trip. The sample with the shortest round trip among the
//! recent ones has the least queueing in it, so its offset is the estimate (error ≤ RTT/2).

use std::collections::VecDeque;

/// Samples kept: at one ping a second, the last half minute.
const KEEP: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub rtt_us: u64,
    /// host clock − client clock, µs.
    pub offset_us: i64,
}

#[derive(Debug, Default)]
pub struct ClockSync {
    samples: VecDeque<Sample>,
}

impl ClockSync {
    /// Records one round trip: the client sent at `sent_us`, the host read `host_us`, the
    /// answer came back at `received_us` (client clock). Answers from the future are ignored.
    pub fn record(&mut self, sent_us: u64, host_us: u64, received_us: u64) -> Option<Sample> {
        let rtt_us = received_us.checked_sub(sent_us)?;
        let midpoint = sent_us as i128 + rtt_us as i128 / 2;
        let offset_us = i64::try_from(host_us as i128 - midpoint).ok()?;
        let sample = Sample { rtt_us, offset_us };
        if self.samples.len() == KEEP {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        Some(sample)
    }

    /// The best current estimate: the recent sample with the shortest round trip.
    pub fn best(&self) -> Option<Sample> {
        self.samples.iter().min_by_key(|s| s.rtt_us).copied()
    }

    /// A host timestamp in client time, if an offset is known.
    pub fn to_client(&self, host_us: u64) -> Option<u64> {
        let s = self.best()?;
        u64::try_from(host_us as i128 - s.offset_us as i128).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn symmetric_round_trips_give_the_exact_offset() {
        let mut c = ClockSync::default();
        // The host's clock is 5 s ahead; 400 µs each way.
        c.record(1_000_000, 6_000_400, 1_000_800).unwrap();
        assert_eq!(c.best(), Some(Sample { rtt_us: 800, offset_us: 5_000_000 }));
        assert_eq!(c.to_client(6_000_400), Some(1_000_400));
    }

    #[test]
    fn the_least_queued_sample_wins() {
        let mut c = ClockSync::default();
        c.record(0, 10_000 + 9_000, 10_000); // 9 ms stuck on the way out
        c.record(20_000, 20_000 + 250, 20_500);
        c.record(40_000, 40_000 + 100, 48_000); // 7.9 ms stuck on the way back
        assert_eq!(c.best().unwrap().offset_us, 0);
        assert!(c.record(5, 0, 4).is_none(), "an answer before the question is ignored");
    }

    proptest! {
        #[test]
        fn the_estimate_is_within_half_a_round_trip(offset in -1_000_000_000i64..1_000_000_000, out in 0u64..50_000, back in 0u64..50_000, start in 1_000_000_000u64..2_000_000_000) {
            let mut c = ClockSync::default();
            let host = (start as i64 + out as i64 + offset) as u64;
            let s = c.record(start, host, start + out + back).unwrap();
            prop_assert!((s.offset_us - offset).unsigned_abs() <= s.rtt_us / 2 + 1);
        }
    }
}
