//! Repairing a frame the client lost, for both protocols: which of the encoder's pictures the
//! client's frame number names, whether a report tells of a new loss, and which frame goes
//! out as the repair. The client drops every frame after a loss until a repair, and keeps
//! reporting what it loses meanwhile; only a loss of the repair or of a frame after it needs
//! another.

use crate::encode::SessionEncoder;
use punktfunk_core::assembly::before;
use std::collections::VecDeque;

/// Frames whose numbers are kept: more than any encoder keeps pictures.
const SENT_KEPT: usize = 64;

#[derive(Default)]
pub struct Repairs {
    /// The frames recently sent: their numbers and the encoder's input sequence numbers.
    sent: VecDeque<(u32, u64)>,
    /// The next frame repairs a loss: the encoder forgot the pictures from it on.
    pending: bool,
    /// The last frame that repaired (a key frame or a repair): what the client reports of
    /// frames before it, the repair covers already.
    repaired_at: Option<u32>,
}

impl Repairs {
    /// The client lost frames `first..=last` and drops every frame until a repair: the
    /// encoder forgets the pictures from `first` on, so that the next frame refers only to
    /// one the client holds (a key frame where the encoder cannot, or keeps none that old).
    /// False for a report the last repair covers already: no new loss.
    pub fn invalidate(&mut self, encoder: &mut SessionEncoder, first: u32, last: u32) -> bool {
        // A repair not sent yet covers every later frame too, one sent the frames before it.
        if self.pending || self.repaired_at.is_some_and(|at| before(last, at)) {
            return false;
        }
        let seq = self.sent.iter().find(|(index, _)| *index == first).map(|&(_, seq)| seq);
        match seq {
            Some(seq) if encoder.invalidate_from(seq) => self.pending = true,
            _ => encoder.request_keyframe(),
        }
        true
    }

    /// Frame `index` went out, encoded from input frame `seq`: whether it is a repair (a
    /// P-frame from before the loss; a key frame repairs anything but is none).
    pub fn sent(&mut self, index: u32, seq: u64, keyframe: bool) -> bool {
        if self.sent.len() == SENT_KEPT {
            self.sent.pop_front();
        }
        self.sent.push_back((index, seq));
        let repair = std::mem::take(&mut self.pending) && !keyframe;
        if keyframe || repair {
            self.repaired_at = Some(index);
        }
        repair
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Backend, Choice, Codec, Format};
    use crate::frame::BufferPool;
    use crate::testing::grey_frame;
    use std::sync::Arc;

    /// A client's stream: a software H.264 encoder that keeps pictures, frames numbered from
    /// `index` (wrapping).
    struct Stream {
        encoder: SessionEncoder,
        pool: BufferPool,
        index: u32,
        seq: u64,
    }

    impl Stream {
        fn new(index: u32) -> Self {
            let choice = Choice::Only(Backend::Software);
            let encoder = SessionEncoder::new(Codec::H264, Format::default(), 60_000, 2_000_000, choice, Arc::default()).invalidating(true);
            Self { encoder, pool: BufferPool::new(64 * 64 * 4, 2), index, seq: 0 }
        }

        /// Sends the next frame: its number, and whether it went out as a key frame and as
        /// a repair.
        fn send(&mut self, repairs: &mut Repairs) -> (u32, bool, bool) {
            let frame = grey_frame(&self.pool, 64, 64, self.seq, self.seq as u8 * 7);
            let encoded = self.encoder.encode(&frame).unwrap().unwrap();
            let index = self.index;
            (self.index, self.seq) = (index.wrapping_add(1), self.seq + 1);
            (index, encoded.keyframe, repairs.sent(index, encoded.seq, encoded.keyframe))
        }
    }

    #[test]
    fn a_loss_is_repaired_once_and_reports_the_repair_covers_change_nothing() {
        let mut r = Repairs::default();
        // Numbers wrap past 0 between the loss and the repair.
        let mut s = Stream::new(u32::MAX - 5);
        let sent: Vec<_> = (0..8).map(|_| s.send(&mut r)).collect();
        assert!(sent[0].1 && sent[1..].iter().all(|&(_, key, repair)| !key && !repair), "a key frame, then P-frames");
        assert!(r.invalidate(&mut s.encoder, u32::MAX - 1, u32::MAX - 1), "a new loss");
        assert!(!r.invalidate(&mut s.encoder, u32::MAX, u32::MAX), "the repair on its way covers it");
        let (repair, key, repairs) = s.send(&mut r);
        assert!(!key && repairs, "the next frame is a P-frame that repairs");
        assert!(!r.invalidate(&mut s.encoder, 0, 1), "frames sent before the repair: covered");
        assert!(r.invalidate(&mut s.encoder, repair, repair), "the repair itself lost: a new loss");
        assert_eq!(s.send(&mut r), (repair + 1, false, true), "repaired from before the first loss");
        assert_eq!(s.send(&mut r), (repair + 2, false, false), "one repair per loss");
        // A frame the sender does not know (long gone): a key frame, which repairs too.
        assert!(r.invalidate(&mut s.encoder, 1000, 1000));
        assert_eq!(s.send(&mut r), (repair + 3, true, false), "a key frame is no repair");
        assert!(!r.invalidate(&mut s.encoder, repair + 2, repair + 2), "but covers what came before it");
    }
}
