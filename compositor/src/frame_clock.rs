//! When to render and when to send frame callbacks, fed the time explicitly (so pacing is
//! tested without a clock or a server).
//!
//! Frames render on a timer at the output's refresh: no vblank to wait for. Frame callbacks
//! go out not right after a render but as late as the clients' measured drawing time allows,
//! so what they draw is fresh when the next render picks it up (the idea of sway's
//! `max_render_time`). Each cycle has one render, at the first of: the first commit after
//! the cycle's callbacks (composed when the app commits, as gamescope does, so a frame waits
//! for no tick, early or late), or the tick, for whatever else changed (the pointer, a client
//! that draws without callbacks). The callbacks keep the client's cadence: one frame per
//! refresh interval. A second client's commit in the same cycle waits for the next render.

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
    /// This cycle's callbacks went out and nothing has rendered since: a commit renders at
    /// once, or the tick does.
    slot_open: bool,
    /// A commit rendered since the last tick: the next tick has nothing of its own to do
    /// (what else changed goes with the next render).
    commit_rendered: bool,
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
            slot_open: false,
            commit_rendered: false,
        }
    }

    pub fn render_due(&self, now: Instant) -> bool {
        self.next_render <= now
    }

    /// The tick came at `now` (`produced`: its render made a frame; if not, a commit still
    /// renders at once until the next callbacks): the next tick is an `interval` on
    /// (skipping ahead after a slow frame instead of bursting to catch up), this cycle's
    /// callbacks are scheduled to leave the clients their drawing time before it.
    pub fn rendered(&mut self, now: Instant, interval: Duration, produced: bool) {
        self.slot_open &= !produced;
        self.commit_rendered = false;
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
        self.slot_open = true;
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

    /// This cycle has no frame yet: a commit renders at once.
    pub fn slot_open(&self) -> bool {
        self.slot_open
    }

    /// A commit's render made this cycle's frame.
    pub fn slot_taken(&mut self) {
        (self.slot_open, self.commit_rendered) = (false, true);
    }

    /// The tick renders, unless a commit rendered since the last one (a cycle whose
    /// callbacks are held back still renders at its ticks).
    pub fn tick_renders(&self) -> bool {
        !self.commit_rendered
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
        clock.rendered(t0 + FRAME, FRAME, true);
        assert!(!clock.render_due(t0 + FRAME + FRAME - MS) && clock.render_due(t0 + 2 * FRAME));
        // A render that ran three intervals late: the next is one interval after it, not
        // three renders in a burst.
        let late = t0 + 5 * FRAME;
        clock.rendered(late, FRAME, true);
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
        clock.rendered(t0 + FRAME, FRAME, true);
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
        clock.rendered(t0 + FRAME, FRAME, true);
        assert!(clock.callbacks_due(t0 + FRAME), "the lead is capped at one interval");
    }

    #[test]
    fn one_render_per_cycle_at_the_first_commit_or_else_the_tick() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, FRAME);
        assert!(!clock.slot_open(), "nothing to render before the first callbacks");
        clock.callbacks_sent(t0);
        assert!(clock.slot_open(), "the callbacks went out: the first commit renders at once");
        clock.slot_taken();
        assert!(!clock.slot_open() && !clock.tick_renders(), "later commits of the cycle, and its tick, wait for the next");
        clock.rendered(t0 + FRAME, FRAME, false);
        assert!(!clock.slot_open() && !clock.render_due(t0 + 2 * FRAME - MS), "the tick keeps the cadence");
        assert!(clock.tick_renders(), "without callbacks sent (held back), ticks render");
        // A cycle without a commit: its tick renders (the pointer moved) ...
        clock.callbacks_sent(t0 + 2 * FRAME - 5 * MS);
        clock.rendered(t0 + 2 * FRAME, FRAME, true);
        assert!(!clock.slot_open(), "the tick made the cycle's frame");
        // ... or finds nothing, and a late commit still renders at once.
        clock.callbacks_sent(t0 + 3 * FRAME - 5 * MS);
        clock.rendered(t0 + 3 * FRAME, FRAME, false);
        assert!(clock.slot_open(), "a commit after an empty tick is not held for the next one");
    }

    #[test]
    fn held_callbacks_wait_for_the_render_or_a_returned_buffer() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, FRAME);
        clock.callbacks_sent(t0);
        clock.rendered(t0 + FRAME, FRAME, true);
        let due = t0 + 2 * FRAME - COMMIT_MARGIN;
        assert_eq!(clock.next_wake(due, false), due, "due and free: now");
        assert_eq!(clock.next_wake(due, true), t0 + 2 * FRAME, "due but held: not before the render");
        assert_eq!(clock.next_wake(due - MS, true), due, "not due yet: wake when it is");
    }
}
