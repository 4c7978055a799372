//! Datagrams the link lost, and the longest run of them lost in a row, told apart from
//! datagrams it only reordered: a missing sequence number counts as lost once [`REORDER`]
//! later ones have come (a datagram that jitter let others overtake arrives before that).
//! Without the wait, every datagram that overtook others looked like a burst the size of its
//! lead, and the sender raised its parity for losses that never happened.

/// How many newer datagrams may arrive before a missing one counts as lost.
pub const REORDER: u64 = 32;
/// Sequence numbers whose arrival is remembered: more than twice [`REORDER`], so a slot is
/// always settled before a later number takes it.
const RING: u64 = 128;

#[derive(Clone, Debug, Default)]
pub struct Bursts {
    /// Bit `seq % RING`: `seq` arrived (for numbers not yet settled).
    arrived: u128,
    /// One past the highest number seen.
    next: u64,
    /// Numbers below this are settled: arrived or lost for good.
    settled: u64,
    /// Lost in a row up to `settled`, and the longest such run since it was last taken.
    run: u64,
    longest: u64,
    /// Lost in all, every range together.
    lost: u64,
}

impl Bursts {
    /// A sender numbering from `start`: what the last one left unsettled is settled now (its
    /// stragglers are refused anyway), and nothing below `start` counts.
    pub fn restart(&mut self, start: u64) {
        self.settle_below(self.next);
        *self = Self { longest: self.longest, lost: self.lost, next: start, settled: start, ..Self::default() };
    }

    /// Datagram `seq` arrived.
    pub fn arrived(&mut self, seq: u64) {
        if seq < self.settled {
            return; // too late to count: settled as lost already, or before the range
        }
        if seq >= self.next {
            // Saturating: a stream without a key takes numbers nobody vouched for.
            let next = seq.saturating_add(1);
            self.settle_below(next.saturating_sub(REORDER));
            self.next = next;
        }
        self.arrived |= 1 << (seq % RING);
    }

    /// Datagrams lost for good so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The longest run lost since the last call (0: none); a run still going on counts
    /// whole at the next call.
    pub fn take_longest(&mut self) -> u64 {
        std::mem::take(&mut self.longest)
    }

    fn settle_below(&mut self, bound: u64) {
        // The unsettled numbers seen (at most REORDER of them): arrived or not.
        while self.settled < bound.min(self.next) {
            let bit = 1 << (self.settled % RING);
            self.run = if self.arrived & bit != 0 { 0 } else { self.run.saturating_add(1) };
            self.lost = self.lost.saturating_add(u64::from(self.arrived & bit == 0));
            self.longest = self.longest.max(self.run);
            self.arrived &= !bit;
            self.settled += 1;
        }
        // Numbers past the highest seen that settle now never arrived.
        if bound > self.settled {
            self.run = self.run.saturating_add(bound - self.settled);
            self.lost = self.lost.saturating_add(bound - self.settled);
            self.longest = self.longest.max(self.run);
            self.settled = bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `arrivals` in order, then `REORDER` more after the highest: every gap settled.
    fn longest(arrivals: impl IntoIterator<Item = u64>) -> u64 {
        let mut b = Bursts::default();
        let mut top = 0;
        for seq in arrivals {
            b.arrived(seq);
            top = top.max(seq + 1);
        }
        for seq in top..top + REORDER {
            b.arrived(seq);
        }
        b.take_longest()
    }

    #[test]
    fn a_burst_counts_once_it_settles() {
        let mut b = Bursts::default();
        for seq in (0..10).chain(13..20) {
            b.arrived(seq);
        }
        assert_eq!(b.take_longest(), 0, "10..13 may still come");
        for seq in 20..10 + REORDER {
            b.arrived(seq);
        }
        assert_eq!(b.take_longest(), 0, "one short of settling");
        b.arrived(13 + REORDER);
        assert_eq!((b.take_longest(), b.lost()), (3, 3));
        assert_eq!(b.take_longest(), 0, "taken");
    }

    #[test]
    fn reordered_datagrams_are_no_burst() {
        // Every fourth datagram overtakes the three before it.
        let order = (0..400u64).map(|i| if i % 4 == 3 { i - 3 } else { i + 1 });
        assert_eq!(longest(order), 0);
        let mut b = Bursts::default();
        for seq in (0..400u64).map(|i| if i % 4 == 3 { i - 3 } else { i + 1 }) {
            b.arrived(seq);
        }
        assert_eq!(b.lost(), 0, "nothing lost");
        // One that comes after REORDER newer ones counted as lost: too late.
        let late = (0..100u64).filter(|&s| s != 50).chain([50]);
        assert_eq!(longest(late), 1);
    }

    #[test]
    fn a_new_range_settles_the_last_and_starts_clean() {
        let mut b = Bursts::default();
        for seq in [0, 1, 5] {
            b.arrived(seq);
        }
        b.restart(1 << 20);
        assert_eq!(b.take_longest(), 3, "2..5 were lost with the old sender");
        for seq in (1 << 20) + 2..(1 << 20) + 2 + REORDER {
            b.arrived(seq);
        }
        assert_eq!(b.take_longest(), 2, "the new range's first two, not the jump");
        b.arrived(7);
        assert_eq!(b.take_longest(), 0, "the old range's straggler counts for nothing");
        assert_eq!(b.lost(), 5, "both ranges'");
    }

    #[test]
    fn a_long_silence_counts_whole() {
        assert_eq!(longest([0, 1, 1000]), 998);
    }

    #[test]
    fn numbers_at_the_end_of_the_range_saturate() {
        // Unauthenticated numbers (a stream without a key): the largest, twice, then small.
        let mut b = Bursts::default();
        for seq in [u64::MAX, u64::MAX, u64::MAX - 1, 3, u64::MAX / 2] {
            b.arrived(seq);
        }
        assert_eq!(b.lost(), u64::MAX - REORDER, "counted, not wrapped");
        assert_eq!(b.take_longest(), u64::MAX - REORDER);
        b.restart(0);
        b.arrived(u64::MAX);
        assert_eq!(b.lost(), u64::MAX, "saturated");
    }

    proptest! {
        /// Dropped numbers, the rest delivered with each moved up to REORDER / 2 places:
        /// the longest run reported is the longest run dropped.
        #[test]
        fn the_longest_run_dropped_whatever_the_jitter(
            dropped in proptest::collection::vec(any::<bool>(), 1..600),
            jitter in proptest::collection::vec(0..REORDER / 2, 600),
        ) {
            let mut sent: Vec<(u64, u64)> = (0..dropped.len() as u64)
                .filter(|&s| !dropped[s as usize])
                .map(|s| (s + jitter[s as usize], s))
                .collect();
            sent.sort();
            // Drops after the last delivered are not runs here: `longest` delivers them.
            let delivered = dropped.iter().rposition(|d| !d).map_or(0, |last| last + 1);
            let (mut want, mut run) = (0, 0);
            for &d in &dropped[..delivered] {
                run = if d { run + 1 } else { 0 };
                want = want.max(run);
            }
            prop_assert_eq!(longest(sent.into_iter().map(|(_, s)| s)), want);
        }
    }
}
