//! The FEC parity a video sender sends, moved with the loss its client reports
//! (`punktfunk_core::fec_tuner`), and the share of the client's bitrate budget that leaves
//! the encoder: parity counts against the budget, so the encoder's target falls when the
//! parity rises (the percentage, or the least parity every block gets while the client
//! reports bursts) and comes back when the link is clean. Both protocols' senders hold one.

use punktfunk_core::fec_tuner::{FecTuner, ParityWhy, TunerConfig};
use std::time::{Duration, Instant};

/// Key-frame requests this soon after a sender starts are the client starting, not loss.
const STARTUP_REQUESTS: Duration = Duration::from_secs(2);
/// A tuned stream's parity until the client's first reports say what the link loses
/// (within its ceiling): the first key frame, the costliest frame to lose, is protected, and
/// a clean link's first window (half a second) brings the parity down to the floor.
const CAUTIOUS_START: u8 = 50;
/// How much of the last frame's blocks the average block size takes in (about the last 16
/// frames count).
const BLOCK_AVERAGE: f64 = 1.0 / 16.0;
/// The encoder's target moves when the parity's share moves it by more than 1 in this many.
const RETARGET: u64 = 50;

pub struct Parity {
    /// `None`: the parity is fixed.
    tuner: Option<FecTuner>,
    /// The client's bitrate, parity included.
    budget_bps: u64,
    /// The parity the stream started with (and its floor).
    start_percent: u8,
    /// Every block's least parity as configured (more is for bursts).
    min_parity: u8,
    /// Data shards per block, on average over the last frames (0 before the first).
    block_data: f64,
    /// The encoder's target as last given out.
    target_bps: u64,
    started: Instant,
}

impl Parity {
    /// A sender starting at `percent` with `encoder_bps` for the encoder, moving up to
    /// `max_percent` (at or below `percent`: fixed) and never below `percent`: the tuner
    /// models independent loss, and bursts (which it does not see as such) need the parity
    /// the stream was configured with. Every block carries `min_parity`, or up to
    /// `max_burst_parity` where the client reports bursts.
    pub fn new(encoder_bps: u64, percent: u8, max_percent: u8, min_parity: u8, max_burst_parity: u8) -> Self {
        let limits = TunerConfig { min_percent: percent, max_percent, min_parity, max_burst_parity };
        let tuner = (max_percent > percent).then(|| FecTuner::new(limits, CAUTIOUS_START.clamp(percent, max_percent)));
        let budget_bps = with_parity(encoder_bps, percent);
        let mut parity =
            Self { tuner, budget_bps, start_percent: percent, min_parity, block_data: 0.0, target_bps: 0, started: Instant::now() };
        parity.target_bps = parity.encoder_bps();
        parity
    }

    /// A frame went out: `datagrams` in all, `data` of them data shards.
    pub fn sent(&mut self, datagrams: usize, data: usize) {
        if let Some(t) = self.tuner.as_mut() {
            // Frames past ~200 data shards are split into blocks of about equal size.
            let block = data.div_ceil(data.div_ceil(200).max(1));
            t.sent(datagrams, block);
            self.block_data = match self.block_data {
                0.0 => block as f64,
                average => average + (block as f64 - average) * BLOCK_AVERAGE,
            };
        }
    }

    /// The client reported `datagrams` lost.
    pub fn lost(&mut self, datagrams: usize) {
        if let Some(t) = self.tuner.as_mut() {
            t.lost(datagrams);
        }
    }

    /// The client lost `datagrams` in a row.
    pub fn burst(&mut self, datagrams: usize) {
        if let Some(t) = self.tuner.as_mut() {
            t.burst(datagrams);
        }
    }

    /// Every block's least parity for the next frames (`None`: as configured).
    pub fn min_parity(&self) -> Option<u8> {
        self.tuner.as_ref().map(FecTuner::min_parity)
    }

    /// The client asked for a key frame: a frame FEC could not rebuild (except the request
    /// every client makes as it starts).
    pub fn unrecoverable(&mut self) {
        if let Some(t) = self.tuner.as_mut().filter(|_| self.started.elapsed() > STARTUP_REQUESTS) {
            t.unrecoverable();
        }
    }

    /// A new budget, given as what the encoder gets at the parity the stream started with.
    pub fn set_budget(&mut self, encoder_bps: u64) {
        self.budget_bps = with_parity(encoder_bps, self.start_percent);
        self.target_bps = self.encoder_bps();
    }

    /// What the encoder gets at the parity now.
    pub fn encoder_bps(&self) -> u64 {
        self.budget_bps * 100 / (100 + u64::from(self.share()))
    }

    /// The encoder's new target when the parity's share of the budget moved it (by more than
    /// 1 in [`RETARGET`]).
    pub fn retarget(&mut self) -> Option<u64> {
        let bps = self.encoder_bps();
        (bps.abs_diff(self.target_bps) * RETARGET > self.target_bps).then(|| {
            self.target_bps = bps;
            bps
        })
    }

    /// The parity's share of the data, in percent: the percentage, or what the least parity
    /// for bursts adds to blocks of the average size where that is more (at most the
    /// ceiling: tiny frames, a still picture's, would otherwise starve the next moving one).
    fn share(&self) -> u8 {
        let Some(t) = self.tuner.as_ref() else { return self.start_percent };
        let burst = t.min_parity();
        if burst <= self.min_parity || self.block_data <= 0.0 {
            return t.percent();
        }
        let share = (f64::from(burst) * 100.0 / self.block_data).ceil().min(f64::from(t.config().max_percent)) as u8;
        t.percent().max(share)
    }

    /// What last moved the parity.
    pub fn why(&self) -> ParityWhy {
        self.tuner.as_ref().map_or(ParityWhy::Fixed, FecTuner::why)
    }

    /// The loss estimate, in ‰ of datagrams.
    pub fn loss_permille(&self) -> u16 {
        (self.loss() * 1000.0).round().clamp(0.0, 1000.0) as u16
    }

    /// The client's loss as the tuner estimates it (a fraction of datagrams; 0 with a
    /// fixed parity, which hears no losses).
    pub fn loss(&self) -> f64 {
        self.tuner.as_ref().map_or(0.0, FecTuner::loss)
    }

    /// The parity now, in percent.
    pub fn percent(&self) -> u8 {
        self.tuner.as_ref().map_or(self.start_percent, FecTuner::percent)
    }

    /// The new parity when it moved (then [`Parity::retarget`] has the encoder's target).
    pub fn poll(&mut self, now: Instant) -> Option<u8> {
        let percent = self.tuner.as_mut()?.poll(now)?;
        tracing::debug!(
            percent,
            kbps = self.encoder_bps() / 1000,
            loss = self.tuner.as_ref().map_or(0.0, FecTuner::loss),
            "FEC parity follows the link"
        );
        Some(percent)
    }
}

fn with_parity(encoder_bps: u64, percent: u8) -> u64 {
    encoder_bps * (100 + u64::from(percent)) / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_as_the_parity_moves() {
        let mut p = Parity::new(10_000_000, 20, 80, 2, 2);
        assert_eq!(p.percent(), CAUTIOUS_START, "cautious until the client reports");
        assert_eq!(p.encoder_bps(), 8_000_000, "the client's 12 Mbit/s, half again in parity");
        let start = Instant::now();
        p.poll(start);
        for _ in 0..30 {
            p.sent(24, 20);
        }
        p.lost(72);
        assert!(p.poll(start + Duration::from_secs(1)).is_some_and(|pct| pct > 20));
        let total = p.encoder_bps() * (100 + u64::from(p.percent())) / 100;
        assert!(total.abs_diff(12_000_000) < 1000, "encoder and parity share the client's 12 Mbit/s: {total}");
        // A clean link: down to the floor at the first window's end.
        let mut clean = Parity::new(10_000_000, 20, 80, 2, 2);
        clean.poll(start);
        clean.sent(24, 20);
        assert_eq!(clean.poll(start + Duration::from_secs(1)), Some(20));
        assert_eq!(clean.encoder_bps(), 10_000_000);
        let mut fixed = Parity::new(10_000_000, 20, 20, 2, 2);
        fixed.lost(1000);
        assert_eq!(fixed.poll(start + Duration::from_secs(9)), None);
        assert_eq!(fixed.percent(), 20);
    }

    #[test]
    fn parity_for_bursts_counts_against_the_budget_too() {
        let start = Instant::now();
        let mut p = Parity::new(10_000_000, 20, 80, 2, 6);
        p.poll(start);
        // A clean first window: the floor, 20 %; blocks of 15 data shards carry 3 parity.
        for _ in 0..30 {
            p.sent(18, 15);
        }
        assert_eq!(p.poll(start + Duration::from_millis(600)), Some(20));
        assert_eq!(p.retarget(), Some(10_000_000));
        // Bursts of 6: every block carries 6 parity shards, 40 % of 15, and the encoder's
        // share falls so that data and parity stay within the client's 12 Mbit/s.
        for _ in 0..30 {
            p.sent(21, 15);
        }
        p.burst(6);
        p.poll(start + Duration::from_millis(1200));
        assert_eq!(p.min_parity(), Some(6));
        let bps = p.retarget().expect("the target moves");
        assert_eq!(bps, 12_000_000 * 100 / 140);
        assert_eq!(p.retarget(), None, "given once");
        assert_eq!(p.percent(), 20, "the percentage itself holds");
    }
}
