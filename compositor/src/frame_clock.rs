//! When to render and when to send frame callbacks, fed the time explicitly (so pacing is
//! tested without a clock or a server).
//!
//! Frames render on a timer at the output's refresh: no vblank to wait for. Frame callbacks
//! go out not right after a render but as late as the clients' measured drawing time allows,
//! so what they draw is fresh when the next render picks it up (the idea of sway's
//! `max_render_time`).

use std::time::{Duration, Instant};

/// Margin between a client's expected commit and the render that should pick it up: the
/// compositor's own lateness in waking (the estimate already covers the client's jitter).
pub const COMMIT_MARGIN: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub struct FrameClock {
    next_render: Instant,
    /// When to send this cycle's frame callbacks (`None`: sent).
    callbacks_at: Option<Instant>,
    /// When the last callbacks went out, until the first commit after them.
    callbacks_sent: Option<Instant>,
    /// How long clients took from frame callback to commit, the last [`SAMPLES`] cycles: the
    /// longest is the estimate. A slow frame counts at once and for those cycles only (a
    /// slowly decaying average held a client's first slow draws over for ~40 frames, each
    /// waiting for a render scheduled late for it).
    samples: [Duration; SAMPLES],
    next_sample: usize,
}

/// Cycles the drawing-time estimate remembers (about 130 ms at 60 Hz).
const SAMPLES: usize = 8;

impl FrameClock {
    /// A clock whose first render is one `interval` after `now`, callbacks due at once.
    pub fn new(now: Instant, interval: Duration) -> Self {
        Self {
            next_render: now + interval,
            callbacks_at: Some(now),
            callbacks_sent: None,
            samples: [Duration::ZERO; SAMPLES],
            next_sample: 0,
        }
    }

    pub fn render_due(&self, now: Instant) -> bool {
        self.next_render <= now
    }

    /// A frame was rendered at `now`: the next one is an `interval` on (skipping ahead
    /// after a slow frame instead of bursting to catch up), this cycle's callbacks are
    /// scheduled to leave the clients their drawing time before it.
    pub fn rendered(&mut self, now: Instant, interval: Duration) {
        self.next_render += interval;
        if self.next_render <= now {
            self.next_render = now + interval;
        }
        let lead = (self.client_time() + COMMIT_MARGIN).min(interval);
        self.callbacks_at = Some(self.next_render - lead);
    }

    /// This cycle's callbacks are due (the caller adds whether clients may have them yet).
    pub fn callbacks_due(&self, now: Instant) -> bool {
        self.callbacks_at.is_some_and(|at| at <= now)
    }

    pub fn callbacks_sent(&mut self, now: Instant) {
        self.callbacks_at = None;
        self.callbacks_sent = Some(now);
    }

    /// A surface committed at `now`: the first commit after the callbacks measures the
    /// clients' drawing time.
    pub fn committed(&mut self, now: Instant) {
        if let Some(sent) = self.callbacks_sent.take() {
            self.samples[self.next_sample] = now.saturating_duration_since(sent);
            self.next_sample = (self.next_sample + 1) % SAMPLES;
        }
    }

    /// When to wake next: the callbacks' time or the render's, whichever is first; callbacks
    /// held back (`held`: a client's buffers are all with the consumer) wait for a render or
    /// for the buffer to come back, which wakes the loop itself.
    pub fn next_wake(&self, now: Instant, held: bool) -> Instant {
        match self.callbacks_at {
            Some(at) if at > now || !held => at.min(self.next_render),
            _ => self.next_render,
        }
    }

    /// The clients' measured drawing time.
    fn client_time(&self) -> Duration {
        self.samples.iter().copied().max().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const FRAME: Duration = Duration::from_micros(16_667);

    #[test]
    fn renders_at_the_refresh_and_skips_ahead_after_a_slow_frame() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, FRAME);
        assert!(!clock.render_due(t0) && clock.render_due(t0 + FRAME));
        clock.rendered(t0 + FRAME, FRAME);
        assert!(!clock.render_due(t0 + FRAME + FRAME - MS) && clock.render_due(t0 + 2 * FRAME));
        // A render that ran three intervals late: the next is one interval after it, not
        // three renders in a burst.
        let late = t0 + 5 * FRAME;
        clock.rendered(late, FRAME);
        assert!(!clock.render_due(late + FRAME - MS) && clock.render_due(late + FRAME));
    }

    #[test]
    fn callbacks_leave_the_clients_their_measured_drawing_time() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, FRAME);
        assert!(clock.callbacks_due(t0), "the first callbacks go at once");
        clock.callbacks_sent(t0);
        clock.committed(t0 + 5 * MS);
        assert_eq!(clock.client_time(), 5 * MS, "a slower client is believed at once");
        clock.rendered(t0 + FRAME, FRAME);
        // The next render is at 2 frames: callbacks 5 ms + the margin before it.
        let at = t0 + 2 * FRAME - 5 * MS - COMMIT_MARGIN;
        assert!(!clock.callbacks_due(at - MS) && clock.callbacks_due(at));
        assert_eq!(clock.next_wake(t0 + FRAME, false), at);
        // Faster commits keep the slow one's estimate while it is among the last cycles',
        // then lower it at once; only the first commit after callbacks counts.
        for cycle in 1..SAMPLES {
            clock.callbacks_sent(at);
            clock.committed(at + MS);
            clock.committed(at + 10 * MS);
            assert_eq!(clock.client_time(), 5 * MS, "cycle {cycle}: the slow draw is remembered");
        }
        clock.callbacks_sent(at);
        clock.committed(at + MS);
        assert_eq!(clock.client_time(), MS, "eight fast cycles later it is forgotten");
    }

    #[test]
    fn a_client_slower_than_the_refresh_gets_callbacks_right_after_the_render() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, FRAME);
        clock.callbacks_sent(t0);
        clock.committed(t0 + 40 * MS);
        clock.rendered(t0 + FRAME, FRAME);
        assert!(clock.callbacks_due(t0 + FRAME), "the lead is capped at one interval");
    }

    #[test]
    fn held_callbacks_wait_for_the_render_or_a_returned_buffer() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, FRAME);
        clock.callbacks_sent(t0);
        clock.rendered(t0 + FRAME, FRAME);
        let due = t0 + 2 * FRAME - COMMIT_MARGIN;
        assert_eq!(clock.next_wake(due, false), due, "due and free: now");
        assert_eq!(clock.next_wake(due, true), t0 + 2 * FRAME, "due but held: not before the render");
        assert_eq!(clock.next_wake(due - MS, true), due, "not due yet: wake when it is");
    }
}
