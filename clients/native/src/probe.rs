//! The latency probe: glass-to-glass latency on the user's own network. A host app entry
//! running `punktfunk-test-pattern` draws each frame's draw time (the host's monotonic clock)
//! into the picture; read back from the decoded picture here and moved into this machine's
//! clock through the offset the control connection measures (within half a ping's round
//! trip), it gives draw → first datagram and draw → decoded for every picture, with no clock
//! sync beyond our own pings. Pictures of any other app carry no stamp and are not counted.

use crate::decode::Picture;
use serde::Serialize;

/// Samples kept: about 18 minutes at 60 fps; older ones make way (memory stays bounded).
const KEEP: usize = 1 << 16;

/// Pictures of a stream's start left out of the steady figures: the first key frame, and
/// the app, encoder and decoder warming up.
pub const WARM_UP: usize = 30;

/// The test pattern's moving strip (`--moving` on the host), checked on every stamped
/// picture: a picture decoded from a reference the decoder lacks shows other frames' bars.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Bars {
    pub checked: u64,
    /// Pictures that showed other bars than their own frame's.
    pub wrong: u64,
    /// The most of those in a row.
    pub longest_wrong_run: u64,
    #[serde(skip)]
    run: u64,
}

impl Bars {
    fn check(&mut self, p: &Picture, counter: u32) {
        self.checked += 1;
        self.run = if punktfunk_test_pattern::bars_match(p.width, p.height, counter, |x, y| p.rgb_at(x, y)) { 0 } else { self.run + 1 };
        self.wrong += u64::from(self.run > 0);
        self.longest_wrong_run = self.longest_wrong_run.max(self.run);
    }
}

#[derive(Default)]
pub struct Probe {
    /// Per stamped picture: its draw (the host's clock), its frame's first datagram (None:
    /// not seen) and its decode (this machine's clock); µs. The clocks' offset is applied
    /// at the end, with the best recent estimate (of the last ~30 pings): the first ones can
    /// be far off (a ping answered while the host was busy starting the stream). Drift
    /// between two machines' clocks over a long probe shows in its early samples.
    samples: Vec<(u64, Option<u64>, u64)>,
    /// The moving strip, when checked.
    bars: Option<Bars>,
}

/// Percentiles of a set of durations, µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50_us: i64,
    pub p99_us: i64,
}

impl Percentiles {
    pub fn of(mut v: Vec<i64>) -> Self {
        v.sort_unstable();
        let at = |q: f64| v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        Self { n: v.len(), p50_us: at(0.5), p99_us: at(0.99) }
    }
}

/// What the probe measured, in `stats.json` as `probe`.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    pub draw_to_first_datagram: Percentiles,
    pub draw_to_decoded: Percentiles,
    /// The same after the first [`WARM_UP`] pictures.
    pub steady_draw_to_first_datagram: Percentiles,
    pub steady_draw_to_decoded: Percentiles,
}

impl Probe {
    /// A probe that checks the moving strip too.
    pub fn checking_bars() -> Self {
        Self { bars: Some(Bars::default()), ..Self::default() }
    }

    pub fn bars(&self) -> Option<Bars> {
        self.bars
    }

    /// A decoded picture: its frame's first datagram came at `first_us` (None: unknown) and
    /// it was decoded at `decoded_us`, both on this machine's monotonic clock.
    pub fn picture(&mut self, p: &Picture, first_us: Option<u64>, decoded_us: u64) {
        let Some((counter, drawn)) = punktfunk_test_pattern::decode(p.width, |x, y| p.rgb_at(x, y)) else { return };
        if let Some(bars) = self.bars.as_mut() {
            bars.check(p, counter);
        }
        if self.samples.len() == KEEP {
            self.samples.drain(..KEEP / 2);
        }
        self.samples.push((drawn, first_us, decoded_us));
    }

    /// The figures, once a picture carried a stamp, with the host's clock `offset_us` ahead
    /// of this one.
    pub fn figures(&self, offset_us: i64) -> Option<Figures> {
        let since_draw = |drawn: u64, t: u64| (t as i64).saturating_sub((drawn as i64).saturating_sub(offset_us));
        let wire = |from: usize| {
            Percentiles::of(self.samples.iter().skip(from).filter_map(|&(drawn, first, _)| Some(since_draw(drawn, first?))).collect())
        };
        let decoded = |from: usize| Percentiles::of(self.samples.iter().skip(from).map(|&(drawn, _, at)| since_draw(drawn, at)).collect());
        (!self.samples.is_empty()).then(|| Figures {
            draw_to_first_datagram: wire(0),
            draw_to_decoded: decoded(0),
            steady_draw_to_first_datagram: wire(WARM_UP),
            steady_draw_to_decoded: decoded(WARM_UP),
        })
    }
}

impl Figures {
    /// One line for the user, with how far the clocks' offset may be off.
    pub fn summary(&self, clock_rtt_us: Option<u64>) -> String {
        let ms = |us: i64| us as f64 / 1000.0;
        let (d, w) = (self.steady_draw_to_decoded, self.steady_draw_to_first_datagram);
        let clock = clock_rtt_us.map_or("unknown".into(), |rtt| format!("±{:.2} ms", rtt as f64 / 2000.0));
        format!(
            "latency probe, {} pictures after the first {WARM_UP}: app's draw → decoded here p50 {:.2} ms, p99 {:.2} ms; → first datagram here p50 {:.2} ms, p99 {:.2} ms (clocks matched to {clock})",
            d.n,
            ms(d.p50_us),
            ms(d.p99_us),
            ms(w.p50_us),
            ms(w.p99_us)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use punktfunk_test_pattern::{Canvas, draw};

    /// A decoded picture of the pattern drawn at `drawn_us`.
    fn picture(drawn_us: u64) -> Picture {
        let (width, height) = (640u32, 360u32);
        let mut bgrx = vec![0u8; (width * height * 4) as usize];
        draw(&mut Canvas { data: &mut bgrx, width, height, stride: width as usize * 4 }, 7, 0x3080ff, || drawn_us);
        let rgb = bgrx.chunks_exact(4).flat_map(|px| [px[2], px[1], px[0]]).collect();
        Picture { width, height, rgb, pixel_format: "yuv420p" }
    }

    #[test]
    fn the_stamp_moves_into_this_machines_clock() {
        let mut probe = Probe::default();
        // The host's clock is 5 s ahead: drawn at 105 s host time is 100 s here.
        probe.picture(&picture(105_000_000), Some(100_004_000), 100_012_000);
        let f = probe.figures(5_000_000).unwrap();
        assert_eq!(f.draw_to_decoded, Percentiles { n: 1, p50_us: 12_000, p99_us: 12_000 });
        assert_eq!(f.draw_to_first_datagram, Percentiles { n: 1, p50_us: 4_000, p99_us: 4_000 });
        assert_eq!(f.steady_draw_to_decoded.n, 0, "the first pictures are the warm-up");
    }

    #[test]
    fn pictures_without_a_stamp_are_not_counted() {
        let mut probe = Probe::default();
        for rgb in [[0u8; 3], [255; 3], [48, 128, 255]] {
            let p = Picture { width: 320, height: 200, rgb: rgb.repeat(320 * 200), pixel_format: "yuv420p" };
            probe.picture(&p, None, 1);
        }
        assert!(probe.figures(0).is_none());
        // A picture smaller than its width says (a broken decode) reads as no stamp.
        probe.picture(&Picture { width: 640, height: 360, rgb: vec![255; 30], pixel_format: "yuv420p" }, None, 1);
        assert!(probe.figures(0).is_none());
    }

    #[test]
    fn the_steady_figures_leave_out_the_warm_up_and_memory_stays_bounded() {
        let mut probe = Probe::default();
        let p = picture(1_000);
        for i in 0..WARM_UP as u64 {
            probe.picture(&p, None, 1_000 + 50_000 + i);
        }
        for _ in 0..100 {
            probe.picture(&p, None, 1_000 + 5_000);
        }
        let f = probe.figures(0).unwrap();
        assert_eq!((f.steady_draw_to_decoded.n, f.steady_draw_to_decoded.p99_us), (100, 5_000));
        assert_eq!((f.draw_to_decoded.n, f.draw_to_first_datagram.n), (WARM_UP + 100, 0));
        for _ in 0..KEEP {
            probe.picture(&p, None, 2_000);
        }
        assert!(probe.samples.len() <= KEEP);
    }
}
