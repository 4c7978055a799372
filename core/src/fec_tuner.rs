//! Parity that follows the link: from the datagrams sent and the losses the client reports,
//! the FEC percentage for the next frames, so that a block the client cannot rebuild stays
//! rarer than one in a thousand while no parity is wasted on a clean link. Sans-IO: fed
//! counts and `Instant`s, it answers with a percentage.
//!
//! Loss is estimated per window (half a second) as lost / sent datagrams and smoothed: it
//! rises at once (a loss the parity did not cover costs a key frame, a stutter) and falls
//! slowly (a link that lost once will likely lose again). Independent loss is assumed: the
//! parity is the smallest step at which more losses in one block than it has parity
//! (binomial tail) stay under the target.
//!
//! Bursts are not independent loss: a burst of `n` datagrams takes a block with fewer than
//! `n` parity shards whole, however little the link loses on average (a one-shard frame's
//! 1 + 2 datagrams, to a burst of 3). Where the client reports its longest burst, every block
//! gets at least that much parity while bursts that long were seen in the last few seconds.

use std::time::{Duration, Instant};

/// How long losses are counted before the estimate moves.
/// The most parity shards a tuned stream gives every block for a link that loses bursts, on
/// both protocols (punktfunk/1 in its blocks' layout, GameStream through the percentage the
/// client derives parity from).
pub const MAX_BURST_PARITY: u8 = 6;

const WINDOW: Duration = Duration::from_millis(500);
/// The chance of an unrecoverable block the parity aims under.
const TARGET: f64 = 1e-3;
/// Parity moves in steps of this many percent.
const STEP: u8 = 5;
/// How much of a window's lower estimate the smoothed one takes (it takes a higher one at
/// once).
const FALL: f64 = 0.2;
/// Windows a burst keeps the least parity up after it was last seen (5 s).
const BURST_HOLD: usize = 10;
/// Losses that call for more parity close the window at once once they are this many, of at
/// least [`EARLY_SENT`] datagrams: waiting the window out at the old parity loses frames
/// (at 60 fps half a second is 30 of them), and this many is no single unlucky datagram.
const EARLY_LOST: u64 = 8;
const EARLY_SENT: u64 = 100;
/// ...and once the window is this old: a client's report covers its last 200 ms or so, and
/// set against fewer datagrams than those it would overstate the loss (on a fast stream,
/// many times over).
const EARLY_AGE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunerConfig {
    /// Never less parity than this (single losses cost nothing), nor more than `max_percent`.
    pub min_percent: u8,
    pub max_percent: u8,
    /// Every block carries at least this many parity shards, whatever the percentage (a
    /// small frame's protection does not depend on it).
    pub min_parity: u8,
    /// The most parity shards every block may get for bursts (at or below `min_parity`:
    /// bursts are not followed).
    pub max_burst_parity: u8,
}

/// Why a stream's parity is what it is: the last thing that moved it (shown in status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParityWhy {
    /// As configured, and it does not move (the client cannot take a moving parity, or the
    /// configured ceiling is the floor).
    #[default]
    Fixed,
    /// Where the stream started, until the client's reports say what the link loses.
    Start,
    /// Set by the loss the client reports (raised for it, or held).
    Loss,
    /// Raised a step: a frame FEC could not rebuild (more lost than the estimate said).
    Unrecoverable,
    /// Lowered: the link loses less.
    Cleared,
}

impl ParityWhy {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Fixed => "fixed as configured",
            Self::Start => "where streams start, until the client reports",
            Self::Loss => "set by the loss the client reports",
            Self::Unrecoverable => "raised a step: a frame FEC could not rebuild",
            Self::Cleared => "lowered: the link loses less",
        }
    }
}

#[derive(Debug)]
pub struct FecTuner {
    config: TunerConfig,
    percent: u8,
    why: ParityWhy,
    /// The loss estimate (a fraction of datagrams).
    loss: f64,
    /// This window's datagrams sent and reported lost, data shards per block seen, and
    /// whether the client asked for a key frame (a block FEC could not rebuild).
    sent: u64,
    lost: u64,
    shards: u64,
    blocks: u64,
    unrecoverable: bool,
    window_start: Option<Instant>,
    /// The longest burst reported in this window and in each of the last [`BURST_HOLD`].
    burst: u8,
    bursts: [u8; BURST_HOLD],
}

impl FecTuner {
    pub fn new(config: TunerConfig, start_percent: u8) -> Self {
        let percent = start_percent.clamp(config.min_percent, config.max_percent.max(config.min_percent));
        Self {
            config,
            percent,
            why: ParityWhy::Start,
            loss: 0.0,
            sent: 0,
            lost: 0,
            shards: 0,
            blocks: 0,
            unrecoverable: false,
            window_start: None,
            burst: 0,
            bursts: [0; BURST_HOLD],
        }
    }

    /// Every block's least parity for the next frames: the configured one, or the longest
    /// recent burst (within `max_burst_parity`).
    pub fn min_parity(&self) -> u8 {
        let burst = self.bursts.iter().copied().max().unwrap_or(0).min(self.config.max_burst_parity);
        self.config.min_parity.max(burst)
    }

    /// Its limits.
    pub fn config(&self) -> &TunerConfig {
        &self.config
    }

    /// The parity for the next frames, in percent of their data shards.
    pub fn percent(&self) -> u8 {
        self.percent
    }

    /// What last moved the parity.
    pub fn why(&self) -> ParityWhy {
        self.why
    }

    /// The smoothed loss estimate, a fraction of datagrams.
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// A frame went out: `datagrams` in all, in blocks of about `data_per_block` data shards.
    pub fn sent(&mut self, datagrams: usize, data_per_block: usize) {
        self.sent += datagrams as u64;
        self.shards += data_per_block as u64;
        self.blocks += 1;
    }

    /// The client reported `datagrams` of a frame missing.
    pub fn lost(&mut self, datagrams: usize) {
        self.lost += datagrams as u64;
    }

    /// The client lost `datagrams` in a row (its longest run since its last report).
    pub fn burst(&mut self, datagrams: usize) {
        self.burst = self.burst.max(datagrams.min(usize::from(u8::MAX)) as u8);
    }

    /// The client could not rebuild a frame and asked for a key frame.
    pub fn unrecoverable(&mut self) {
        self.unrecoverable = true;
    }

    /// Closes the window when it is over, or at once when its losses call for more parity:
    /// the new percentage, when it changed.
    pub fn poll(&mut self, now: Instant) -> Option<u8> {
        let start = *self.window_start.get_or_insert(now);
        if self.sent == 0 {
            return None;
        }
        let measured = (self.lost as f64 / self.sent as f64).min(1.0);
        let data = (self.shards / self.blocks.max(1)).max(1) as usize;
        let age = now.saturating_duration_since(start);
        let early = age >= EARLY_AGE
            && self.lost >= EARLY_LOST
            && self.sent >= EARLY_SENT
            && measured > self.loss
            && self.parity_for(data, measured) > self.percent;
        if age < WINDOW && !early {
            return None;
        }
        self.bursts.rotate_right(1);
        self.bursts[0] = std::mem::take(&mut self.burst);
        self.loss = if measured >= self.loss { measured } else { self.loss + (measured - self.loss) * FALL };
        let (mut wanted, mut why) = (self.parity_for(data, self.loss), ParityWhy::Loss);
        if self.unrecoverable && wanted <= self.percent {
            // Lost more than the estimate says (a burst): one step more.
            (wanted, why) = (self.percent.saturating_add(STEP), ParityWhy::Unrecoverable);
        }
        let wanted = wanted.clamp(self.config.min_percent, self.config.max_percent.max(self.config.min_percent));
        (self.sent, self.lost, self.shards, self.blocks, self.unrecoverable) = (0, 0, 0, 0, false);
        self.window_start = Some(now);
        if self.why == ParityWhy::Start {
            // The client has reported: what the parity is now, its loss set.
            self.why = ParityWhy::Loss;
        }
        (wanted != self.percent).then(|| {
            self.why = if wanted < self.percent { ParityWhy::Cleared } else { why };
            self.percent = wanted;
            wanted
        })
    }

    /// The smallest step of parity that keeps a block of `data` shards under the target at
    /// `loss`.
    fn parity_for(&self, data: usize, loss: f64) -> u8 {
        let mut percent = self.config.min_percent;
        while percent < self.config.max_percent {
            // At 0 % blocks carry no parity at all, not even the least.
            let parity = match percent {
                0 => 0,
                p => (data * usize::from(p)).div_ceil(100).max(usize::from(self.min_parity())),
            };
            if unrecoverable(data, parity, loss) < TARGET {
                break;
            }
            percent = percent.saturating_add(STEP);
        }
        percent
    }
}

/// The chance that more than `parity` of `data + parity` datagrams are lost, each with
/// probability `p` (the binomial tail): a block the client cannot rebuild.
pub fn unrecoverable(data: usize, parity: usize, p: f64) -> f64 {
    let n = data + parity;
    if p <= 0.0 {
        return 0.0;
    }
    // P(X ≤ parity), term by term: C(n,i) p^i (1-p)^(n-i), built incrementally.
    let mut term = (1.0 - p).powi(n as i32);
    let mut kept = term;
    for i in 1..=parity.min(n) {
        term *= (n - i + 1) as f64 / i as f64 * p / (1.0 - p);
        kept += term;
    }
    (1.0 - kept).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: TunerConfig = TunerConfig { min_percent: 10, max_percent: 80, min_parity: 0, max_burst_parity: 0 };

    /// Feeds `windows` half-second windows of frames of `data` data shards at `loss`, with
    /// the losses a client would report; the percentages the tuner settled on.
    fn run(tuner: &mut FecTuner, start: Instant, windows: u32, data: usize, loss: f64) -> Instant {
        let mut now = start;
        for _ in 0..windows {
            let total = data + (data * usize::from(tuner.percent())).div_ceil(100);
            for _ in 0..30 {
                tuner.sent(total, data);
            }
            tuner.lost((30.0 * total as f64 * loss).round() as usize);
            now += WINDOW;
            tuner.poll(now);
        }
        now
    }

    #[test]
    fn the_binomial_tail_is_right() {
        assert_eq!(unrecoverable(10, 2, 0.0), 0.0);
        // One data shard and one parity at p: both lost.
        assert!((unrecoverable(1, 1, 0.1) - 0.01).abs() < 1e-12);
        // 2 of 2 with no parity: anything lost.
        assert!((unrecoverable(2, 0, 0.5) - 0.75).abs() < 1e-12);
        assert!(unrecoverable(20, 4, 0.05) < unrecoverable(20, 2, 0.05));
    }

    #[test]
    fn parity_rises_with_loss_and_falls_back_when_the_link_clears() {
        let mut tuner = FecTuner::new(CONFIG, 20);
        let start = Instant::now();
        assert_eq!(tuner.why(), ParityWhy::Start);
        let now = run(&mut tuner, start, 4, 20, 0.0);
        assert_eq!(tuner.percent(), 10, "a clean link needs only the floor");
        assert_eq!(tuner.why(), ParityWhy::Cleared);
        let now = run(&mut tuner, now, 4, 20, 0.10);
        assert_eq!(tuner.why(), ParityWhy::Loss);
        let at_ten = tuner.percent();
        assert!(at_ten >= 35, "10 % loss needs far more than 20 % parity: {at_ten}");
        assert!(unrecoverable(20, (20 * usize::from(at_ten)).div_ceil(100), tuner.loss()) < TARGET);
        // Falls, but slowly: a few clean windows later it is still up.
        let now = run(&mut tuner, now, 2, 20, 0.0);
        assert!(tuner.percent() > 10 && tuner.percent() < at_ten, "{}", tuner.percent());
        run(&mut tuner, now, 40, 20, 0.0);
        assert_eq!(tuner.percent(), 10);
    }

    #[test]
    fn a_key_frame_request_adds_a_step_and_the_ceiling_holds() {
        let mut tuner = FecTuner::new(CONFIG, 20);
        let start = Instant::now();
        tuner.poll(start);
        tuner.sent(24, 20);
        tuner.unrecoverable();
        assert_eq!(tuner.poll(start + WINDOW), Some(25), "one step above the parity that did not suffice");
        assert_eq!(tuner.why(), ParityWhy::Unrecoverable);
        run(&mut tuner, start + WINDOW, 10, 20, 0.6);
        assert_eq!(tuner.percent(), 80, "bounded by the configured ceiling");
        assert_eq!(FecTuner::new(CONFIG, 95).percent(), 80);
    }

    /// Frames of one or two data shards already carry the minimum parity: loss that it
    /// covers does not drive the percentage (and the encoder's budget) to the ceiling.
    #[test]
    fn small_frames_lean_on_the_minimum_parity() {
        let mut tuner = FecTuner::new(TunerConfig { min_parity: 2, ..CONFIG }, 20);
        run(&mut tuner, Instant::now(), 8, 1, 0.05);
        assert_eq!(tuner.percent(), 10, "1 data + 2 parity at 5 % loss fails 1 in 7000");
        let mut without = FecTuner::new(CONFIG, 20);
        run(&mut without, Instant::now(), 8, 1, 0.05);
        assert!(without.percent() > 50, "{}", without.percent());
    }

    /// A reported burst raises every block's least parity at the window's end, within the
    /// ceiling, and it falls back once bursts that long have not been seen for a while.
    #[test]
    fn bursts_raise_the_least_parity_for_a_while() {
        let config = TunerConfig { min_parity: 2, max_burst_parity: 6, ..CONFIG };
        let mut tuner = FecTuner::new(config, 20);
        let start = Instant::now();
        tuner.poll(start);
        tuner.sent(3, 1);
        tuner.burst(3);
        assert_eq!(tuner.min_parity(), 2, "not before the window ends");
        tuner.poll(start + WINDOW);
        assert_eq!(tuner.min_parity(), 3);
        tuner.burst(40);
        let now = run(&mut tuner, start + WINDOW, 1, 1, 0.0);
        assert_eq!(tuner.min_parity(), 6, "held to the ceiling");
        let now = run(&mut tuner, now, BURST_HOLD as u32 - 1, 1, 0.0);
        assert_eq!(tuner.min_parity(), 6, "still within the hold");
        run(&mut tuner, now, 1, 1, 0.0);
        assert_eq!(tuner.min_parity(), 2, "back once the bursts are old");
        let mut ignoring = FecTuner::new(TunerConfig { max_burst_parity: 0, ..config }, 20);
        ignoring.burst(5);
        run(&mut ignoring, start, 2, 1, 0.0);
        assert_eq!(ignoring.min_parity(), 2, "a tuner told not to follow bursts");
    }

    /// A stream that starts without FEC is not taken for one its least parity protects.
    #[test]
    fn no_parity_at_zero_percent() {
        let mut tuner = FecTuner::new(TunerConfig { min_percent: 0, min_parity: 2, ..CONFIG }, 0);
        run(&mut tuner, Instant::now(), 4, 1, 0.05);
        assert!(tuner.percent() > 0, "5 % loss on bare one-shard frames needs parity");
    }

    /// Loss that calls for more parity raises it as soon as there is enough of it, not at
    /// the window's end; a stray loss or two waits for the window.
    #[test]
    fn enough_loss_raises_the_parity_within_the_window() {
        let mut tuner = FecTuner::new(CONFIG, 20);
        let start = Instant::now();
        tuner.poll(start);
        for _ in 0..7 {
            tuner.sent(24, 20);
        }
        tuner.lost(17);
        assert_eq!(tuner.poll(start + EARLY_AGE / 2), None, "a report set against too few datagrams' time");
        let raised = tuner.poll(start + EARLY_AGE).expect("raised at once");
        assert!(raised >= 35, "{raised}");
        let mut calm = FecTuner::new(CONFIG, 20);
        calm.poll(start);
        for _ in 0..7 {
            calm.sent(24, 20);
        }
        calm.lost(2);
        assert_eq!(calm.poll(start + EARLY_AGE), None, "two of 168 wait for the window");
        assert!(calm.poll(start + WINDOW).is_some_and(|p| p <= 20), "nor more parity at its end");
    }

    #[test]
    fn nothing_moves_within_a_window_or_without_traffic() {
        let mut tuner = FecTuner::new(CONFIG, 20);
        let start = Instant::now();
        assert_eq!(tuner.poll(start), None);
        tuner.sent(12, 10);
        tuner.lost(6);
        assert_eq!(tuner.poll(start + WINDOW / 2), None);
        let mut idle = FecTuner::new(CONFIG, 20);
        idle.poll(start);
        assert_eq!(idle.poll(start + WINDOW * 4), None, "no datagrams, no verdict");
    }
}
