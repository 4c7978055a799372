//! Converted pictures as frames: the YUV layouts the encoders take and where each plane lies
//! in a frame buffer (the matrix and range arithmetic is core's `colour`).

/// A YUV layout an encoder reads (see [`super::Yuv`] for which encoder takes which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Nv12,
    I420,
    P010,
    I010,
    I444,
    I410,
}

/// What one plane's samples are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Samples {
    Y,
    U,
    V,
    /// U and V interleaved (NV12's and P010's second plane).
    Uv,
    /// Not YUV: the pixels of a BGRX frame, 4 bytes each.
    Bgrx,
}

/// One plane of a frame in a [`Layout`]: planes lie back to back in the frame's buffer, each
/// row padded to a multiple of 4 bytes (a GPU writes them as 32-bit texels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneGeometry {
    pub samples: Samples,
    /// Where the plane starts in the buffer.
    pub offset: usize,
    pub stride: usize,
    pub rows: usize,
    /// Bytes of picture in a row (the rest of the stride is padding).
    pub row_bytes: usize,
    /// 1 or 2 (16-bit little-endian samples).
    pub bytes_per_sample: usize,
    /// Where the value sits in a 16-bit sample: P010 keeps it in the top 10 bits.
    pub shift: u32,
    /// Picture pixels per sample across and down: 2 for 4:2:0 chroma, else 1.
    pub subsampling: u32,
}

impl Layout {
    pub fn ten_bit(self) -> bool {
        matches!(self, Self::P010 | Self::I010 | Self::I410)
    }

    /// The planes of a `width`×`height` picture (even sizes) in this layout.
    pub fn planes(self, width: u32, height: u32) -> Vec<PlaneGeometry> {
        let (w, h) = (width as usize, height as usize);
        let bytes = if self.ten_bit() { 2 } else { 1 };
        let shift = if self == Self::P010 { 6 } else { 0 };
        let sub = if matches!(self, Self::I444 | Self::I410) { 1 } else { 2 };
        let chroma: &[Samples] = match self {
            Self::Nv12 | Self::P010 => &[Samples::Uv],
            _ => &[Samples::U, Samples::V],
        };
        let mut offset = 0;
        std::iter::once(Samples::Y)
            .chain(chroma.iter().copied())
            .map(|samples| {
                let (sub, per_sample) = match samples {
                    Samples::Y | Samples::Bgrx => (1, 1),
                    Samples::Uv => (sub, 2),
                    Samples::U | Samples::V => (sub, 1),
                };
                let row_bytes = w / sub * per_sample * bytes;
                let (stride, rows) = (row_bytes.next_multiple_of(4), h / sub);
                let plane =
                    PlaneGeometry { samples, offset, stride, rows, row_bytes, bytes_per_sample: bytes, shift, subsampling: sub as u32 };
                offset += stride * rows;
                plane
            })
            .collect()
    }

    /// Bytes of a `width`×`height` frame in this layout.
    pub fn frame_len(self, width: u32, height: u32) -> usize {
        self.planes(width, height).last().map_or(0, |p| p.offset + p.stride * p.rows)
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// `rows` widened to whole pairs of rows (a 4:2:0 chroma row covers two), within `height`
/// (even).
pub fn even_rows(rows: std::ops::Range<u32>, height: u32) -> std::ops::Range<u32> {
    (rows.start & !1)..(rows.end + 1).min(height) & !1
}

/// The sample of `plane` at picture pixel (x, y), as a code value; `None` outside `data`.
pub fn sample_at(data: &[u8], plane: &PlaneGeometry, x: u32, y: u32, which: usize) -> Option<u16> {
    let (sx, sy) = ((x / plane.subsampling) as usize, (y / plane.subsampling) as usize);
    let per = if plane.samples == Samples::Uv { 2 } else { 1 };
    let at = plane.offset + sy * plane.stride + (sx * per + which) * plane.bytes_per_sample;
    let bytes = data.get(at..at + plane.bytes_per_sample)?;
    Some(match bytes {
        [b] => u16::from(*b),
        [lo, hi] => u16::from_le_bytes([*lo, *hi]) >> plane.shift,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use punktfunk_core::colour::{Colour, Matrix, Range};

    proptest! {
        /// Any even size: planes follow one another without overlap or gap, rows hold the
        /// picture and are padded to whole texels, and reading any pixel stays in the frame.
        #[test]
        fn planes_tile_the_frame(w in 1u32..2200, h in 1u32..1300, layout in 0usize..6, x in 0u32..4400, y in 0u32..2600) {
            let (w, h) = (w * 2, h * 2);
            let layout = [Layout::Nv12, Layout::I420, Layout::P010, Layout::I010, Layout::I444, Layout::I410][layout];
            let planes = layout.planes(w, h);
            let mut end = 0;
            for p in &planes {
                prop_assert_eq!(p.offset, end);
                prop_assert!(p.stride >= p.row_bytes && p.stride % 4 == 0 && p.stride - p.row_bytes < 4);
                prop_assert_eq!(p.rows as u32 * p.subsampling, h);
                end = p.offset + p.stride * p.rows;
            }
            prop_assert_eq!(end, layout.frame_len(w, h));
            let data = vec![0u8; end];
            let (x, y) = (x % w, y % h);
            for p in &planes {
                prop_assert!(sample_at(&data, p, x, y, 0).is_some());
            }
        }
    }

    #[test]
    fn planes_lie_back_to_back_with_rows_padded_to_four_bytes() {
        let p = Layout::Nv12.planes(6, 4);
        assert_eq!(
            p.iter().map(|p| (p.samples, p.offset, p.stride, p.rows, p.row_bytes)).collect::<Vec<_>>(),
            [(Samples::Y, 0, 8, 4, 6), (Samples::Uv, 32, 8, 2, 6)]
        );
        let p = Layout::I420.planes(1366, 768);
        assert_eq!((p[1].row_bytes, p[1].stride, p[2].offset), (683, 684, 1368 * 768 + 684 * 384));
        let p = Layout::P010.planes(8, 2);
        assert_eq!((p[0].row_bytes, p[1].row_bytes, p[1].rows, p[0].shift), (16, 16, 1, 6));
        assert_eq!(Layout::I410.frame_len(4, 2), 3 * 8 * 2);
        assert_eq!(Layout::I444.planes(4, 2).iter().map(|p| p.subsampling).collect::<Vec<_>>(), [1, 1, 1]);
    }

    #[test]
    fn coefficients_and_their_inverse_round_trip() {
        for matrix in [Matrix::Bt601, Matrix::Bt709, Matrix::Bt2020] {
            for range in [Range::Limited, Range::Full] {
                for bits in [8, 10] {
                    let colour = Colour { matrix, range };
                    let c = colour.coefficients(bits);
                    for rgb in [(255u8, 128u8, 0u8), (0, 0, 0), (255, 255, 255), (12, 200, 99)] {
                        let v = [rgb.0, rgb.1, rgb.2].map(|c| f64::from(c) / 255.0);
                        let yuv = [0, 1, 2].map(|i| (c.rows[i].iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() + c.offsets[i]).round());
                        let back = colour.to_rgb(bits, yuv);
                        let off = [(back.0, rgb.0), (back.1, rgb.1), (back.2, rgb.2)].iter().map(|(a, b)| a.abs_diff(*b)).max().unwrap();
                        assert!(off <= 2, "{colour:?} {bits} bits: {rgb:?} -> {yuv:?} -> {back:?}");
                    }
                }
            }
        }
        // BT.709 limited 8-bit white and black.
        let c = Colour::default().coefficients(8);
        assert!((c.rows[0].iter().sum::<f64>() + c.offsets[0] - 235.0).abs() < 1e-9 && c.offsets == [16.0, 128.0, 128.0]);
    }
}
