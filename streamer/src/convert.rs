//! BGRX → 4:2:0 (NV12 or I420) on the CPU with the `yuv` crate's SIMD kernels (swscale's default path took
//! ~11 ms a 1080p frame here; see BENCHMARKS.md).

use crate::frame::Frame;
use yuv::{BufferStoreMut, YuvBiPlanarImageMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// The YUV matrix the client decodes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
}

/// Whether luma spans 16..235 (limited, the video default) or 0..255.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Limited,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colour {
    pub matrix: Matrix,
    pub range: Range,
}

impl Default for Colour {
    fn default() -> Self {
        Self { matrix: Matrix::Bt709, range: Range::Limited }
    }
}

/// One plane of an output image.
pub struct Plane<'a> {
    pub data: &'a mut [u8],
    /// Bytes per row.
    pub stride: usize,
}

/// 4:2:0 output, in the layout the encoder takes: NV12 (x264, VAAPI, NVENC) or planar I420
/// (x265).
pub enum Yuv420<'a> {
    Nv12 { y: Plane<'a>, uv: Plane<'a> },
    I420 { y: Plane<'a>, u: Plane<'a>, v: Plane<'a> },
}

#[derive(Debug, thiserror::Error)]
#[error("colour conversion: {0}")]
pub struct ConvertError(String);

fn plane(p: Plane<'_>) -> (BufferStoreMut<'_, u8>, u32) {
    (BufferStoreMut::Borrowed(p.data), p.stride as u32)
}

/// Converts a whole BGRX frame (even width and height) into 4:2:0.
pub fn bgrx_to_yuv420(frame: &Frame, colour: Colour, out: Yuv420<'_>) -> Result<(), ConvertError> {
    bgrx_rows_to_yuv420(frame, colour, out, 0..frame.height)
}

/// The rows of the frame that its damage touches, widened to even rows (4:2:0 pairs them);
/// `None` if nothing is damaged.
pub fn damaged_rows(frame: &Frame) -> Option<std::ops::Range<u32>> {
    let (mut lo, mut hi) = (frame.height, 0);
    for r in &frame.damage {
        lo = lo.min(r.y.clamp(0, frame.height as i32) as u32);
        hi = hi.max((r.y + r.height).clamp(0, frame.height as i32) as u32);
    }
    (lo < hi).then(|| (lo & !1)..(hi + 1).min(frame.height) & !1)
}

/// Converts only `rows` (even bounds) into the matching rows of `out`; the rest of `out`
/// keeps what it held (the previous frame).
pub fn bgrx_rows_to_yuv420(frame: &Frame, colour: Colour, out: Yuv420<'_>, rows: std::ops::Range<u32>) -> Result<(), ConvertError> {
    if !rows.start.is_multiple_of(2) || !rows.end.is_multiple_of(2) || rows.end > frame.height || rows.start >= rows.end {
        return Err(ConvertError(format!("rows {rows:?} of a {}-row frame", frame.height)));
    }
    let (y0, h) = (rows.start as usize, rows.end - rows.start);
    let (n, c0, cn) = (h as usize, y0 / 2, h as usize / 2);
    let out = match out {
        Yuv420::Nv12 { y, uv } => Yuv420::Nv12 { y: rows_of(y, y0, n)?, uv: rows_of(uv, c0, cn)? },
        Yuv420::I420 { y, u, v } => Yuv420::I420 { y: rows_of(y, y0, n)?, u: rows_of(u, c0, cn)?, v: rows_of(v, c0, cn)? },
    };
    frame
        .with_data(|data| {
            let src = data.get(y0 * frame.stride..(y0 + n) * frame.stride).ok_or_else(|| ConvertError("frame smaller than its size".into()))?;
            convert(src, frame.stride, frame.width, h, colour, out)
        })
        .map_err(|e| ConvertError(e.to_string()))?
}

/// Exactly `n` rows of a plane from row `first` (chroma planes have half as many rows).
fn rows_of(p: Plane<'_>, first: usize, n: usize) -> Result<Plane<'_>, ConvertError> {
    let range = first * p.stride..(first + n) * p.stride;
    let data = p.data.get_mut(range).ok_or_else(|| ConvertError("output plane too small".into()))?;
    Ok(Plane { data, stride: p.stride })
}

fn convert(src: &[u8], src_stride: usize, w: u32, h: u32, colour: Colour, out: Yuv420<'_>) -> Result<(), ConvertError> {
    let range = match colour.range {
        Range::Limited => YuvRange::Limited,
        Range::Full => YuvRange::Full,
    };
    let matrix = match colour.matrix {
        Matrix::Bt601 => YuvStandardMatrix::Bt601,
        Matrix::Bt709 => YuvStandardMatrix::Bt709,
    };
    let stride = src_stride as u32;
    let mode = YuvConversionMode::Fast;
    let result = match out {
        Yuv420::Nv12 { y, uv } => {
            let ((y_plane, y_stride), (uv_plane, uv_stride)) = (plane(y), plane(uv));
            let mut image = YuvBiPlanarImageMut { y_plane, y_stride, uv_plane, uv_stride, width: w, height: h };
            yuv::bgra_to_yuv_nv12(&mut image, src, stride, range, matrix, mode)
        }
        Yuv420::I420 { y, u, v } => {
            let ((y_plane, y_stride), (u_plane, u_stride), (v_plane, v_stride)) = (plane(y), plane(u), plane(v));
            let mut image = YuvPlanarImageMut { y_plane, y_stride, u_plane, u_stride, v_plane, v_stride, width: w, height: h };
            yuv::bgra_to_yuv420(&mut image, src, stride, range, matrix, mode)
        }
    };
    result.map_err(|e| ConvertError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufferPool, PixelFormat, Rect};

    fn frame(pool: &BufferPool, w: u32, h: u32, fill: u8, damage: Vec<Rect>) -> Frame {
        let mut buffer = pool.take().unwrap();
        buffer.as_mut_slice().fill(fill);
        Frame { seq: 1, width: w, height: h, stride: w as usize * 4, format: PixelFormat::Bgrx8888, pixels: buffer.into(), damage, rendered_at: std::time::Instant::now() }
    }

    #[test]
    fn converting_damaged_rows_matches_a_full_conversion_there_and_keeps_the_rest() {
        let (w, h) = (64u32, 32u32);
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        let (mut y, mut uv) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h / 2) as usize]);
        let planes = |y: &mut Vec<u8>, uv: &mut Vec<u8>| {
            // Reborrow as the enum each call wants.
            let (y, uv) = (y.as_mut_slice() as *mut [u8], uv.as_mut_slice() as *mut [u8]);
            unsafe { Yuv420::Nv12 { y: Plane { data: &mut *y, stride: 64 }, uv: Plane { data: &mut *uv, stride: 64 } } }
        };
        let dark = frame(&pool, w, h, 10, vec![]);
        bgrx_to_yuv420(&dark, Colour::default(), planes(&mut y, &mut uv)).unwrap();
        let dark_y = y[0];
        drop(dark);
        let bright = frame(&pool, w, h, 250, vec![Rect { x: 3, y: 7, width: 5, height: 4 }]);
        let rows = damaged_rows(&bright).unwrap();
        assert_eq!(rows, 6..12);
        bgrx_rows_to_yuv420(&bright, Colour::default(), planes(&mut y, &mut uv), rows).unwrap();
        assert_eq!(y[5 * 64], dark_y, "row 5 untouched");
        assert!(y[6 * 64] > 200 && y[11 * 64] > 200, "rows 6..12 converted");
        assert_eq!(y[12 * 64], dark_y, "row 12 untouched");
        assert!(damaged_rows(&frame(&pool, w, h, 0, vec![])).is_none());
        assert!(bgrx_rows_to_yuv420(&bright, Colour::default(), planes(&mut y, &mut uv), 1..3).is_err());
    }
}
