//! The test pattern: what `punktfunk-test-pattern` draws and how to read it back from a
//! decoded video frame.
//!
//! Layout, in cells of `width / 64` pixels square:
//! - row 0: the frame counter, 32 bits MSB first (white = 1), then the same bits inverted
//!   (a check that the row was read correctly);
//! - row 1: when the app drew the frame ([`now_us`]: the machine's CLOCK_MONOTONIC, in µs),
//!   64 bits MSB first;
//! - everything below: a solid colour band with the counter in large digits.
//!
//! Cells are big and black/white so the pattern survives lossy encoding.
//!
//! With [`draw_moving`] (`--moving`), two parts over the band move as a game's picture does:
//! - a strip of grey bars across the picture's full width, rows `3/8 h .. h/2`, that scroll
//!   one bar ([`BAR`] pixels) a frame: what motion-compensated P-frames are made of. The
//!   bar at `x` in frame `counter` has grey level [`bar_level`]; a frame decoded from a
//!   picture other than the one its encoder referred to shows the bars of another frame
//!   ([`bars_match`] reads them; the Moonlight test client reads them the same way);
//! - a field of noise in the lower left quarter, new every frame: incompressible, so frames
//!   are as large as the bitrate allows (a busy game's are).

mod font;

/// The clock frames are stamped with: CLOCK_MONOTONIC in µs, the one every process of the
/// machine shares and the one a punktfunk/1 client's clock offset is measured against (so a
/// client on another machine can read the stamp in its own time).
pub fn now_us() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("the monotonic clock exists");
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}

/// Cells per row.
pub const CELLS: u32 = 64;

/// Pixel access for drawing and decoding: BGRX bytes (`wl_shm` XRGB8888, little-endian).
pub struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

impl Canvas<'_> {
    fn fill(&mut self, x0: u32, y0: u32, w: u32, h: u32, rgb: u32) {
        let px = [(rgb & 0xff) as u8, (rgb >> 8 & 0xff) as u8, (rgb >> 16 & 0xff) as u8, 0xff];
        for y in y0..(y0 + h).min(self.height) {
            let row = &mut self.data[y as usize * self.stride..];
            for x in x0..(x0 + w).min(self.width) {
                row[x as usize * 4..x as usize * 4 + 4].copy_from_slice(&px);
            }
        }
    }
}

fn cell_size(width: u32) -> u32 {
    (width / CELLS).max(1)
}

/// Draws frame `counter` over a band of `rgb` (0xRRGGBB), stamped with what `now` says once
/// the rest is drawn: the stamp is when the app's picture was done, so a slow draw (a debug
/// build fills 1080p in tens of ms) is not counted as the host's latency.
pub fn draw(c: &mut Canvas, counter: u32, rgb: u32, now: impl FnOnce() -> u64) {
    draw_band(c, counter, rgb);
    stamp(c, counter, now());
}

/// The band of `rgb` with the counter in large digits: all but the stamp's rows.
pub fn draw_band(c: &mut Canvas, counter: u32, rgb: u32) {
    let cell = cell_size(c.width);
    c.fill(0, 2 * cell, c.width, c.height.saturating_sub(2 * cell), rgb);
    let scale = (c.height / 40).clamp(1, 16);
    font::draw_number(c, counter, cell * 2, 3 * cell, scale, 0xffffff);
}

/// The stamp's rows: the counter and `now_us`.
pub fn stamp(c: &mut Canvas, counter: u32, now_us: u64) {
    let cell = cell_size(c.width);
    let bits = (u64::from(counter) << 32) | u64::from(!counter);
    for (row, value) in [(0, bits), (1, now_us)] {
        for i in 0..CELLS {
            let on = value >> (63 - i) & 1 == 1;
            c.fill(i * cell, row * cell, cell, cell, if on { 0xffffff } else { 0x000000 });
        }
    }
}

/// Width of a bar of the moving strip, and how far the strip scrolls a frame.
pub const BAR: u32 = 16;

/// The grey level of the moving strip at column `x` in frame `counter`: eight levels 32
/// apart, so that lossy encoding keeps each far from the next.
pub fn bar_level(x: u32, counter: u32) -> u8 {
    ((x / BAR + counter) % 8 * 32 + 16) as u8
}

/// Rows of the moving strip in a picture `height` rows high.
pub fn strip_rows(height: u32) -> std::ops::Range<u32> {
    height * 3 / 8..height / 2
}

/// Draws the moving parts of frame `counter` over the band ([`draw_band`]), before the stamp.
pub fn draw_moving(c: &mut Canvas, counter: u32) {
    let rows = strip_rows(c.height);
    for x0 in (0..c.width).step_by(BAR as usize) {
        let grey = u32::from(bar_level(x0, counter));
        c.fill(x0, rows.start, BAR, rows.len() as u32, grey * 0x010101);
    }
    // xorshift64, seeded by the counter: new noise every frame.
    let mut state = u64::from(counter).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for y in c.height / 2..c.height {
        let row = &mut c.data[y as usize * c.stride..];
        for px in row[..(c.width / 2) as usize * 4].chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            px.copy_from_slice(&(state | 0xff00_0000_ff00_0000).to_le_bytes());
        }
    }
}

/// Whether the moving strip of a decoded frame `width`×`height` shows frame `counter`'s bars:
/// every bar's centre within 12 levels of its grey.
pub fn bars_match(width: u32, height: u32, counter: u32, rgb_at: impl Fn(u32, u32) -> (u8, u8, u8)) -> bool {
    let y = (strip_rows(height).start + strip_rows(height).end) / 2;
    (0..width / BAR).all(|bar| {
        let x = bar * BAR + BAR / 2;
        let (r, g, b) = rgb_at(x, y);
        let luma = (u32::from(r) * 3 + u32::from(g) * 6 + u32::from(b)) / 10;
        luma.abs_diff(u32::from(bar_level(x, counter))) <= 12
    })
}

/// Reads (counter, timestamp_us) back; `None` if the check bits do not match. `rgb_at`
/// returns the pixel at (x, y) of a frame of `width` pixels.
///
/// The pointer may cover the first cells of both rows: the counter comes from its inverted
/// copy (the right half), checked against the low 24 bits of the first copy, and the
/// stamp's first 8 bits are dropped (they stay zero until the year 4253).
pub fn decode(width: u32, rgb_at: impl Fn(u32, u32) -> (u8, u8, u8)) -> Option<(u32, u64)> {
    let cell = cell_size(width);
    let read = |row: u32| {
        (0..CELLS).fold(0u64, |v, i| {
            let (r, g, b) = rgb_at(i * cell + cell / 2, row * cell + cell / 2);
            let luma = (u32::from(r) * 3 + u32::from(g) * 6 + u32::from(b)) / 10;
            v << 1 | u64::from(luma > 128)
        })
    };
    let bits = read(0);
    let counter = !(bits as u32);
    ((bits >> 32) as u32 & 0xff_ffff == counter & 0xff_ffff).then(|| (counter, read(1) & ((1 << 56) - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w`×`h` frame of the pattern, as `decode` reads it.
    fn drawn(w: u32, h: u32, counter: u32, stamp: u64, rgb: u32) -> impl Fn(u32, u32) -> (u8, u8, u8) {
        let mut buf = vec![0u8; (w * h * 4) as usize];
        draw(&mut Canvas { data: &mut buf, width: w, height: h, stride: w as usize * 4 }, counter, rgb, || stamp);
        move |x, y| {
            let i = (y * w + x) as usize * 4;
            (buf[i + 2], buf[i + 1], buf[i])
        }
    }

    #[test]
    fn draw_then_decode_round_trips() {
        let at = drawn(640, 360, 123_456, 1_763_000_000_123_456, 0xff00ff);
        assert_eq!(decode(640, &at), Some((123_456, 1_763_000_000_123_456)));
        assert_eq!(at(639, 359), (0xff, 0x00, 0xff), "colour band");
    }

    /// A pointer over the first two cells of both rows (white or black) changes nothing.
    #[test]
    fn a_pointer_over_the_first_cells_does_not_stop_the_decode() {
        let (w, cell) = (1280, cell_size(1280));
        let at = drawn(w, 720, 0xdead_beef, 1_763_000_000_123_456, 0x3080ff);
        for pointer in [255u8, 0] {
            let covered = |x: u32, y: u32| if x < 2 * cell && y < 2 * cell { (pointer, pointer, pointer) } else { at(x, y) };
            assert_eq!(decode(w, covered), Some((0xdead_beef, 1_763_000_000_123_456)));
        }
    }

    #[test]
    fn the_moving_strip_shows_its_own_frame_and_no_other() {
        let (w, h) = (640, 360);
        let mut buf = vec![0u8; (w * h * 4) as usize];
        let mut canvas = Canvas { data: &mut buf, width: w, height: h, stride: w as usize * 4 };
        draw_band(&mut canvas, 41, 0x3080ff);
        draw_moving(&mut canvas, 41);
        stamp(&mut canvas, 41, 7);
        let at = |x: u32, y: u32| {
            let i = (y * w + x) as usize * 4;
            (buf[i + 2], buf[i + 1], buf[i])
        };
        assert_eq!(decode(w, at), Some((41, 7)), "the moving parts leave the stamp alone");
        assert!(bars_match(w, h, 41, at));
        // Any of the seven frames before shows other bars (the eighth the same again).
        assert!((34..41).all(|other| !bars_match(w, h, other, at)));
        assert_eq!(at(w - 1, h - 1), (0x30, 0x80, 0xff), "the band's sampled quarter stays clear");
    }

    #[test]
    fn a_blank_frame_does_not_decode() {
        assert_eq!(decode(640, |_, _| (0, 0, 0)), None);
    }
}
