//! Sans-IO: cuts the sink's chunks (whatever size the graph's quantum gives) into packets of
//! exactly `packet_ms`, each stamped with when its last sample was captured, and gates
//! silence so a quiet session sends nothing.

use std::time::Instant;

/// One packet's worth of interleaved samples.
pub struct Packet<'a> {
    pub samples: &'a [f32],
    /// When the chunk that completed this packet arrived from the sink.
    pub captured: Instant,
}

pub struct Framer {
    frame_samples: usize,
    pending: Vec<f32>,
}

impl Framer {
    pub fn new(frame_samples: usize) -> Self {
        Self { frame_samples, pending: Vec::with_capacity(frame_samples * 4) }
    }

    /// Appends a chunk and calls `each` for every packet it completes.
    pub fn push(&mut self, chunk: &[f32], captured: Instant, mut each: impl FnMut(Packet<'_>)) {
        self.pending.extend_from_slice(chunk);
        let whole = self.pending.len() / self.frame_samples * self.frame_samples;
        for samples in self.pending[..whole].chunks_exact(self.frame_samples) {
            each(Packet { samples, captured });
        }
        self.pending.drain(..whole);
    }
}

/// Below this a sample counts as silence (−100 dBFS: dithered or denormal "silence" too).
const SILENT: f32 = 1e-5;

/// Lets packets through while there is sound and for `hangover` packets after it ends,
/// then holds them back until sound returns. Stops only at a FEC block boundary (the
/// caller says where it is) so no block is left half sent.
pub struct SilenceGate {
    hangover: u32,
    quiet: u32,
    closed: bool,
}

impl SilenceGate {
    pub fn new(hangover: u32) -> Self {
        Self { hangover, quiet: 0, closed: false }
    }

    pub fn admit(&mut self, samples: &[f32], at_block_start: bool) -> bool {
        if samples.iter().any(|s| s.abs() > SILENT) {
            (self.quiet, self.closed) = (0, false);
            return true;
        }
        self.quiet = self.quiet.saturating_add(1);
        if self.quiet > self.hangover && at_block_start {
            self.closed = true;
        }
        !self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn packets_are_the_input_cut_exactly(chunks in prop::collection::vec(1usize..700, 1..40)) {
            let mut framer = Framer::new(480);
            let (mut fed, mut got) = (Vec::new(), Vec::new());
            let now = Instant::now();
            for (i, len) in chunks.iter().enumerate() {
                let chunk: Vec<f32> = (0..*len).map(|j| (i * 1000 + j) as f32).collect();
                fed.extend_from_slice(&chunk);
                framer.push(&chunk, now, |p| {
                    assert_eq!(p.samples.len(), 480);
                    got.extend_from_slice(p.samples);
                });
            }
            prop_assert_eq!(got.len(), fed.len() / 480 * 480);
            prop_assert_eq!(&got[..], &fed[..got.len()]);
        }
    }

    #[test]
    fn gate_closes_after_the_hangover_at_a_block_start_and_reopens_on_sound() {
        let mut gate = SilenceGate::new(3);
        let (quiet, loud) = ([0.0f32; 4], [0.0, 0.5, 0.0, 0.0]);
        assert!(gate.admit(&loud, false));
        // Seq 1..: block starts at multiples of 4.
        let admitted: Vec<bool> = (1..12).map(|seq| gate.admit(&quiet, seq % 4 == 0)).collect();
        assert_eq!(admitted, [true, true, true, false, false, false, false, false, false, false, false]);
        assert!(gate.admit(&loud, false), "sound reopens at once");
    }
}
