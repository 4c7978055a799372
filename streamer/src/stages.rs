//! Timing a frame through the host's stages ([`Stages`]) as a sender handles it, and the
//! paced send both senders share (the pacer plans, this sleeps and counts the sleep).

use punktfunk_core::pacer::Pacer;
use punktfunk_core::stages::Stages;
use punktfunk_frame::Frame;
use std::ops::Range;
use std::time::{Duration, Instant};

/// The instants a frame passes, from the app's commit to the sender's pick-up, then each
/// step the sender takes.
#[derive(Clone, Copy, Debug)]
pub struct StageClock {
    committed: Instant,
    render_started: Instant,
    rendered: Instant,
    picked_up: Instant,
    encoded: Instant,
    convert: Duration,
    packetized: Instant,
    paced: Duration,
}

impl StageClock {
    /// The sender took `frame` now.
    pub fn picked_up(frame: &Frame) -> Self {
        let now = Instant::now();
        Self {
            committed: frame.committed_at,
            render_started: frame.render_started_at,
            rendered: frame.rendered_at,
            picked_up: now,
            encoded: now,
            convert: Duration::ZERO,
            packetized: now,
            paced: Duration::ZERO,
        }
    }

    /// Encoded now, `convert_us` of it converting.
    pub fn encoded(&mut self, convert_us: u32) {
        self.encoded = Instant::now();
        self.convert = Duration::from_micros(convert_us.into());
    }

    pub fn packetized(&mut self) {
        self.packetized = Instant::now();
    }

    /// The last datagram went to the kernel at `sent`: the frame's stages, which add up to
    /// `sent` − commit. Instants out of order (a source that stamps its own) count as no time.
    pub fn stages(&self, sent: Instant) -> Stages<Duration> {
        let mut at = [self.committed, self.render_started, self.rendered, self.picked_up, self.encoded, self.packetized, sent];
        for i in 1..at.len() {
            at[i] = at[i].max(at[i - 1]);
        }
        let span = |i: usize| at[i + 1] - at[i];
        let (encoding, sending) = (span(3), span(5));
        let convert = self.convert.min(encoding);
        let pacing = self.paced.min(sending);
        Stages {
            wait: span(0),
            render: span(1),
            queue: span(2),
            convert,
            encode: encoding - convert,
            packetize: span(4),
            pacing,
            send: sending - pacing,
        }
    }

    /// Sends a frame's `count` datagrams of `len` bytes as the pacer plans them, `send`
    /// taking each batch's range; counts the time spent waiting for the pacer.
    pub fn send_paced(&mut self, pacer: &mut Pacer, count: usize, len: usize, mut send: impl FnMut(Range<usize>)) {
        for batch in pacer.plan(Instant::now(), count, len) {
            let wait = batch.deadline.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
                self.paced += wait;
            }
            send(batch.range);
        }
    }
}

/// The whole of a frame's stages.
pub fn total(stages: &Stages<Duration>) -> Duration {
    stages.values().iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use punktfunk_core::pacer::PacerConfig;

    const MS: Duration = Duration::from_millis(1);

    fn clock_at(t0: Instant) -> StageClock {
        StageClock {
            committed: t0,
            render_started: t0,
            rendered: t0,
            picked_up: t0,
            encoded: t0,
            convert: Duration::ZERO,
            packetized: t0,
            paced: Duration::ZERO,
        }
    }

    #[test]
    fn stages_follow_each_other_and_add_up_to_the_whole() {
        let t0 = Instant::now();
        let mut clock = clock_at(t0);
        (clock.render_started, clock.rendered, clock.picked_up) = (t0 + 2 * MS, t0 + 3 * MS, t0 + 5 * MS);
        (clock.encoded, clock.convert, clock.packetized, clock.paced) = (t0 + 9 * MS, MS, t0 + 10 * MS, 3 * MS);
        let stages = clock.stages(t0 + 14 * MS);
        assert_eq!(stages.values(), [2 * MS, MS, 2 * MS, MS, 3 * MS, MS, 3 * MS, MS]);
        assert_eq!(total(&stages), 14 * MS);
        // A commit stamped after the render began (a capture's own clock) is no wait, and
        // the stages still add up to the time since the earliest instant.
        clock.committed = t0 + 4 * MS;
        let stages = clock.stages(t0 + 14 * MS);
        assert_eq!((stages.wait, stages.render, stages.queue), (Duration::ZERO, Duration::ZERO, MS));
        assert_eq!(total(&stages), 10 * MS);
    }

    #[test]
    fn the_paced_send_counts_its_waits() {
        let mut clock = clock_at(Instant::now());
        // 10 kB at 4 × 8 Mbit/s: 2.5 ms, one datagram per batch.
        let cfg = PacerConfig { batch: 1, ..PacerConfig::new(8_000_000, 10.0) };
        let mut pacer = Pacer::new(cfg.with_burst(0));
        let mut sent = Vec::new();
        clock.send_paced(&mut pacer, 10, 1000, |range| sent.extend(range));
        assert_eq!(sent, (0..10).collect::<Vec<_>>(), "every datagram, in order");
        assert!(clock.paced > Duration::ZERO, "a paced frame waits");
        let before = clock.paced;
        let mut burst = Pacer::new(cfg.with_burst(64));
        clock.send_paced(&mut burst, 10, 1000, |_| {});
        assert_eq!(clock.paced, before, "a burst does not");
    }
}
