//! The client's side of mending a lost frame: every frame after it is dropped, not decoded,
//! until one that refers to nothing the loss took, so the decoder never shows a picture made
//! from a reference it lacks. With `repairs` agreed at the start, the loss is reported to
//! the host by number and the host answers with a repair (`FLAG_REPAIR`), a P-frame from a
//! picture before the loss; otherwise, or where only that helps, a key frame is asked for.
//! Sans-IO: fed frame events and the time, it says what to decode and what to ask the host.

use crate::assembly::before;

/// Waiting this long, ask for a key frame (and again each time as long): the answer was
/// lost and its loss went unseen (nothing after it arrived), or the host never answered.
pub const PATIENCE_US: u64 = 500_000;

/// What the receiver does with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Decode,
    /// It refers to a picture the decoder lacks.
    Drop,
}

/// What to tell the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Frames `first..=last` were lost: repair from an older picture.
    Repair { first: u32, last: u32 },
    /// Only a key frame helps (the decoder refused a frame, or no repair came in time).
    Keyframe,
}

#[derive(Clone, Copy, Debug)]
struct Waiting {
    /// The newest frame lost: a repair after it refers to nothing lost.
    newest_lost: u32,
    /// Only a key frame ends the wait (the decoder's state is unknown, or no repairs).
    keyframe_only: bool,
    since_us: u64,
    /// When the host was last asked for a key frame in this wait.
    asked_keyframe_us: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Recovery {
    /// The host repairs (agreed at the start).
    repairs: bool,
    waiting: Option<Waiting>,
    /// The newest frame handed to the decoder.
    newest_decoded: Option<u32>,
}

impl Recovery {
    /// `repairs`: the host agreed to repair reported losses.
    pub fn new(repairs: bool) -> Self {
        Self { repairs, waiting: None, newest_decoded: None }
    }

    /// Frame `id` will never arrive: what to ask the host (`None`: a frame older than one
    /// already decoded, gone unnoticed). Each loss is reported, even while a repair is on
    /// its way: the repair itself may be the frame lost.
    pub fn lost(&mut self, id: u32, now_us: u64) -> Option<Ask> {
        if self.newest_decoded.is_some_and(|d| !before(d, id)) {
            return None;
        }
        let w = self.wait(id, !self.repairs, now_us);
        if before(w.newest_lost, id) {
            w.newest_lost = id;
        }
        if w.keyframe_only {
            w.asked_keyframe_us = Some(now_us);
            return Some(Ask::Keyframe);
        }
        Some(Ask::Repair { first: id, last: id })
    }

    /// The decoder refused a frame: only a key frame mends it.
    pub fn refused(&mut self, now_us: u64) -> Ask {
        let w = self.wait(self.newest_decoded.unwrap_or(0), true, now_us);
        (w.keyframe_only, w.asked_keyframe_us) = (true, Some(now_us));
        Ask::Keyframe
    }

    fn wait(&mut self, newest_lost: u32, keyframe_only: bool, now_us: u64) -> &mut Waiting {
        self.waiting.get_or_insert(Waiting { newest_lost, keyframe_only, since_us: now_us, asked_keyframe_us: None })
    }

    /// Frame `id` arrived whole: decode it, or drop it while a loss is not repaired.
    pub fn arrived(&mut self, id: u32, keyframe: bool, repair: bool) -> Verdict {
        if let Some(w) = self.waiting {
            let repairs = repair && !w.keyframe_only && before(w.newest_lost, id);
            if !keyframe && !repairs {
                return Verdict::Drop;
            }
            self.waiting = None;
        }
        self.newest_decoded = Some(id);
        Verdict::Decode
    }

    /// Whether frames are being dropped, and since when (µs).
    pub fn waiting_since(&self) -> Option<u64> {
        self.waiting.map(|w| w.since_us)
    }

    /// A key frame to ask for: the wait, or the last ask in it, is [`PATIENCE_US`] old.
    pub fn poll(&mut self, now_us: u64) -> Option<Ask> {
        let w = self.waiting.as_mut()?;
        if now_us.saturating_sub(w.asked_keyframe_us.unwrap_or(w.since_us)) < PATIENCE_US {
            return None;
        }
        w.asked_keyframe_us = Some(now_us);
        Some(Ask::Keyframe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_after_a_loss_wait_for_its_repair() {
        let mut r = Recovery::new(true);
        assert_eq!(r.arrived(0, true, false), Verdict::Decode);
        assert_eq!(r.arrived(1, false, false), Verdict::Decode);
        assert_eq!(r.lost(2, 10), Some(Ask::Repair { first: 2, last: 2 }));
        assert_eq!(r.waiting_since(), Some(10));
        // Frames made from the lost one are not decoded.
        assert_eq!(r.arrived(3, false, false), Verdict::Drop);
        assert_eq!(r.lost(4, 20), Some(Ask::Repair { first: 4, last: 4 }));
        // A repair made before the newest loss may refer to it: not yet.
        assert_eq!(r.arrived(4, false, true), Verdict::Drop);
        assert_eq!(r.arrived(5, false, false), Verdict::Drop);
        assert_eq!(r.arrived(6, false, true), Verdict::Decode);
        assert_eq!(r.waiting_since(), None);
        assert_eq!(r.arrived(7, false, false), Verdict::Decode);
        // A late report of a frame older than one decoded changes nothing.
        assert_eq!(r.lost(5, 30), None);
        assert_eq!(r.arrived(8, false, false), Verdict::Decode);
    }

    #[test]
    fn a_key_frame_ends_any_wait_and_a_refused_frame_waits_for_one() {
        let mut r = Recovery::new(true);
        r.arrived(0, true, false);
        r.lost(1, 0);
        assert_eq!(r.arrived(2, true, false), Verdict::Decode);
        assert_eq!(r.refused(5), Ask::Keyframe);
        // A repair refers to pictures the refused frame may have broken.
        assert_eq!(r.arrived(3, false, true), Verdict::Drop);
        assert_eq!(r.lost(4, 6), Some(Ask::Keyframe), "the key frame asked for may be the frame lost");
        assert_eq!(r.arrived(5, true, false), Verdict::Decode);
    }

    #[test]
    fn without_repairs_every_loss_asks_for_a_key_frame_and_only_one_ends_the_wait() {
        let mut r = Recovery::new(false);
        r.arrived(0, true, false);
        assert_eq!(r.lost(1, 0), Some(Ask::Keyframe));
        assert_eq!(r.arrived(2, false, false), Verdict::Drop);
        assert_eq!(r.lost(3, 0), Some(Ask::Keyframe));
        assert_eq!(r.arrived(4, false, true), Verdict::Drop);
        assert_eq!(r.arrived(5, true, false), Verdict::Decode);
        assert_eq!(r.arrived(6, false, false), Verdict::Decode);
    }

    #[test]
    fn a_wait_that_goes_unanswered_asks_for_a_key_frame_again_and_again() {
        let mut r = Recovery::new(true);
        r.arrived(u32::MAX, true, false);
        // Ids wrap: frame 0 comes after u32::MAX.
        assert!(r.lost(0, 1_000).is_some());
        assert_eq!(r.poll(1_000 + PATIENCE_US - 1), None);
        assert_eq!(r.poll(1_000 + PATIENCE_US), Some(Ask::Keyframe));
        assert_eq!(r.poll(1_000 + PATIENCE_US * 2 - 1), None);
        assert_eq!(r.poll(1_000 + PATIENCE_US * 2), Some(Ask::Keyframe));
        assert_eq!(r.arrived(1, false, true), Verdict::Decode, "a repair after the loss still ends the wait");
        assert_eq!(r.poll(1_000 + PATIENCE_US * 9), None);
    }
}
