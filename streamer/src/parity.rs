//! The FEC parity a video sender sends, moved with the loss its client reports
//! (`punktfunk_core::fec_tuner`), and the share of the client's bitrate budget that leaves
//! the encoder: parity counts against the budget, so the encoder's target falls when the
//! parity rises and comes back when the link is clean. Both protocols' senders hold one.

use punktfunk_core::fec_tuner::{FecTuner, ParityWhy, TunerConfig};
use std::time::{Duration, Instant};

/// Key-frame requests this soon after a sender starts are the client starting, not loss.
const STARTUP_REQUESTS: Duration = Duration::from_secs(2);
/// A tuned stream's parity until the client's first reports say what the link loses
/// (within its ceiling): the first key frame, the costliest frame to lose, is protected, and
/// a clean link's first window (half a second) brings the parity down to the floor.
const CAUTIOUS_START: u8 = 50;

pub struct Parity {
    /// `None`: the parity is fixed.
    tuner: Option<FecTuner>,
    /// The client's bitrate, parity included.
    budget_bps: u64,
    /// The parity the stream started with (and its floor).
    start_percent: u8,
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
        Self { tuner, budget_bps: with_parity(encoder_bps, percent), start_percent: percent, started: Instant::now() }
    }

    /// A frame went out: `datagrams` in all, `data` of them data shards.
    pub fn sent(&mut self, datagrams: usize, data: usize) {
        if let Some(t) = self.tuner.as_mut() {
            // Frames past ~200 data shards are split into blocks of about equal size.
            t.sent(datagrams, data.div_ceil(data.div_ceil(200).max(1)));
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
    }

    /// What the encoder gets at the parity now.
    pub fn encoder_bps(&self) -> u64 {
        self.budget_bps * 100 / (100 + u64::from(self.percent()))
    }

    /// What last moved the parity.
    pub fn why(&self) -> ParityWhy {
        self.tuner.as_ref().map_or(ParityWhy::Fixed, FecTuner::why)
    }

    /// The loss estimate, in ‰ of datagrams.
    pub fn loss_permille(&self) -> u16 {
        (self.loss() * 1000.0).round().clamp(0.0, 1000.0) as u16
    }

    /// The parity now, in percent.
    /// The client's loss as the tuner estimates it (a fraction of datagrams; 0 with a
    /// fixed parity, which hears no losses).
    pub fn loss(&self) -> f64 {
        self.tuner.as_ref().map_or(0.0, FecTuner::loss)
    }

    pub fn percent(&self) -> u8 {
        self.tuner.as_ref().map_or(self.start_percent, FecTuner::percent)
    }

    /// The new parity when it moved (then [`Parity::encoder_bps`] moved too).
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
}
