//! BGRX → YUV on the CPU with the `yuv` crate's SIMD kernels (swscale's default path took
//! ~11 ms a 1080p frame here; see BENCHMARKS.md): 8-bit NV12, I420 or I444, and 10-bit
//! P010, I010 or I410 (`ten_bit`).

mod ten_bit;

pub use punktfunk_core::colour::{Colour, Matrix, Range};
pub use punktfunk_frame::layout::{self, Layout, even_rows};

use crate::frame::{Frame, PixelFormat};
use yuv::{BufferStoreMut, YuvBiPlanarImageMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// One plane of an output image.
pub struct Plane<'a> {
    pub data: &'a mut [u8],
    /// Bytes per row.
    pub stride: usize,
}

/// The output, in the layout the encoder takes. 4:2:0: NV12 (x264, VAAPI, NVENC) or planar
/// I420 (x265); for 10 bits, P010 (NVENC, VAAPI: 16-bit little-endian samples, the value in
/// the top 10 bits) or I010 (x265's `yuv420p10le`: planar, the value in the low 10 bits).
/// 4:4:4 (full-resolution chroma, for sharp coloured text): planar I444, or I410 at 10 bits
/// (16-bit samples, the value in the low bits).
pub enum Yuv<'a> {
    Nv12 { y: Plane<'a>, uv: Plane<'a> },
    I420 { y: Plane<'a>, u: Plane<'a>, v: Plane<'a> },
    P010 { y: Plane<'a>, uv: Plane<'a> },
    I010 { y: Plane<'a>, u: Plane<'a>, v: Plane<'a> },
    I444 { y: Plane<'a>, u: Plane<'a>, v: Plane<'a> },
    I410 { y: Plane<'a>, u: Plane<'a>, v: Plane<'a> },
}

impl Yuv<'_> {
    pub fn layout(&self) -> Layout {
        match self {
            Yuv::Nv12 { .. } => Layout::Nv12,
            Yuv::I420 { .. } => Layout::I420,
            Yuv::P010 { .. } => Layout::P010,
            Yuv::I010 { .. } => Layout::I010,
            Yuv::I444 { .. } => Layout::I444,
            Yuv::I410 { .. } => Layout::I410,
        }
    }
}

impl<'a> Yuv<'a> {
    /// The planes of a frame buffer in `layout`, where [`Layout::planes`] places them.
    pub fn in_buffer(layout: Layout, width: u32, height: u32, buffer: &'a mut [u8]) -> Result<Self, ConvertError> {
        if buffer.len() < layout.frame_len(width, height) {
            return Err(ConvertError(format!("a {}-byte buffer for a {width}x{height} {layout} frame", buffer.len())));
        }
        let mut rest = buffer;
        let mut planes = layout.planes(width, height).into_iter().map(|g| {
            let (data, tail) = std::mem::take(&mut rest).split_at_mut(g.stride * g.rows);
            rest = tail;
            Plane { data, stride: g.stride }
        });
        let mut next = || planes.next().expect("two or three planes per layout");
        let (y, second) = (next(), next());
        Ok(match layout {
            Layout::Nv12 => Yuv::Nv12 { y, uv: second },
            Layout::P010 => Yuv::P010 { y, uv: second },
            Layout::I420 => Yuv::I420 { y, u: second, v: next() },
            Layout::I010 => Yuv::I010 { y, u: second, v: next() },
            Layout::I444 => Yuv::I444 { y, u: second, v: next() },
            Layout::I410 => Yuv::I410 { y, u: second, v: next() },
        })
    }

    /// The planes in [`Layout::planes`]' order.
    fn into_planes(self) -> Vec<Plane<'a>> {
        match self {
            Yuv::Nv12 { y, uv } | Yuv::P010 { y, uv } => vec![y, uv],
            Yuv::I420 { y, u, v } | Yuv::I010 { y, u, v } | Yuv::I444 { y, u, v } | Yuv::I410 { y, u, v } => vec![y, u, v],
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("colour conversion: {0}")]
pub struct ConvertError(String);

fn plane(p: Plane<'_>) -> (BufferStoreMut<'_, u8>, u32) {
    (BufferStoreMut::Borrowed(p.data), p.stride as u32)
}

/// Converts a whole BGRX frame (even width and height).
pub fn bgrx_to_yuv(frame: &Frame, colour: Colour, out: Yuv<'_>) -> Result<(), ConvertError> {
    bgrx_rows_to_yuv(frame, colour, out, 0..frame.height)
}

/// The rows of the frame that its damage touches, widened to even rows (4:2:0 pairs them);
/// `None` if nothing is damaged.
pub fn damaged_rows(frame: &Frame) -> Option<std::ops::Range<u32>> {
    let (mut lo, mut hi) = (frame.height, 0);
    for r in &frame.damage {
        lo = lo.min(r.y.clamp(0, frame.height as i32) as u32);
        hi = hi.max((r.y + r.height).clamp(0, frame.height as i32) as u32);
    }
    (lo < hi).then(|| even_rows(lo..hi, frame.height))
}

/// Brings `rows` (even bounds) of `out` up to date from `frame`: converted from BGRX, or
/// copied from a frame converted already (the GPU engine's), which must be in `out`'s layout
/// and `colour`. The rest of `out` keeps what it held (the previous frame).
pub fn frame_rows_to_yuv(frame: &Frame, colour: Colour, out: Yuv<'_>, rows: std::ops::Range<u32>) -> Result<(), ConvertError> {
    match frame.format {
        PixelFormat::Bgrx8888 => bgrx_rows_to_yuv(frame, colour, out, rows),
        PixelFormat::Yuv { layout, colour: c } if layout == out.layout() && c == colour => copy_rows(frame, out, rows),
        PixelFormat::Yuv { layout, colour: c } => Err(ConvertError(format!("a {layout} {c:?} frame for {} {colour:?}", out.layout()))),
    }
}

fn check_rows(frame: &Frame, rows: &std::ops::Range<u32>) -> Result<(), ConvertError> {
    if !rows.start.is_multiple_of(2) || !rows.end.is_multiple_of(2) || rows.end > frame.height || rows.start >= rows.end {
        return Err(ConvertError(format!("rows {rows:?} of a {}-row frame", frame.height)));
    }
    Ok(())
}

/// Copies `rows` of a converted frame, plane by plane (the chroma rows under them for 4:2:0).
fn copy_rows(frame: &Frame, out: Yuv<'_>, rows: std::ops::Range<u32>) -> Result<(), ConvertError> {
    check_rows(frame, &rows)?;
    let planes = frame.planes();
    let short = || ConvertError("plane smaller than the frame".into());
    frame
        .with_data(|data| {
            for (from, to) in planes.iter().zip(out.into_planes()) {
                let sub = from.subsampling as usize;
                for row in rows.start as usize / sub..rows.end as usize / sub {
                    let src = data.get(from.offset + row * from.stride..).and_then(|d| d.get(..from.row_bytes)).ok_or_else(short)?;
                    let dst = to.data.get_mut(row * to.stride..).and_then(|d| d.get_mut(..from.row_bytes)).ok_or_else(short)?;
                    dst.copy_from_slice(src);
                }
            }
            Ok(())
        })
        .map_err(|e| ConvertError(e.to_string()))?
}

/// Converts only `rows` (even bounds) of a BGRX frame into the matching rows of `out`; the
/// rest of `out` keeps what it held (the previous frame).
pub fn bgrx_rows_to_yuv(frame: &Frame, colour: Colour, out: Yuv<'_>, rows: std::ops::Range<u32>) -> Result<(), ConvertError> {
    check_rows(frame, &rows)?;
    if frame.format != PixelFormat::Bgrx8888 {
        return Err(ConvertError(format!("a {:?} frame is not BGRX", frame.format)));
    }
    let (y0, h) = (rows.start as usize, rows.end - rows.start);
    let (n, c0, cn) = (h as usize, y0 / 2, h as usize / 2);
    let out = match out {
        Yuv::Nv12 { y, uv } => Yuv::Nv12 { y: rows_of(y, y0, n)?, uv: rows_of(uv, c0, cn)? },
        Yuv::I420 { y, u, v } => Yuv::I420 { y: rows_of(y, y0, n)?, u: rows_of(u, c0, cn)?, v: rows_of(v, c0, cn)? },
        Yuv::P010 { y, uv } => Yuv::P010 { y: rows_of(y, y0, n)?, uv: rows_of(uv, c0, cn)? },
        Yuv::I010 { y, u, v } => Yuv::I010 { y: rows_of(y, y0, n)?, u: rows_of(u, c0, cn)?, v: rows_of(v, c0, cn)? },
        Yuv::I444 { y, u, v } => Yuv::I444 { y: rows_of(y, y0, n)?, u: rows_of(u, y0, n)?, v: rows_of(v, y0, n)? },
        Yuv::I410 { y, u, v } => Yuv::I410 { y: rows_of(y, y0, n)?, u: rows_of(u, y0, n)?, v: rows_of(v, y0, n)? },
    };
    frame
        .with_data(|data| {
            let src =
                data.get(y0 * frame.stride..(y0 + n) * frame.stride).ok_or_else(|| ConvertError("frame smaller than its size".into()))?;
            convert(src, frame.stride, frame.width, h, colour, out)
        })
        .map_err(|e| ConvertError(e.to_string()))?
}

/// Exactly `n` rows of a plane from row `first` (4:2:0 chroma planes have half as many rows).
fn rows_of(p: Plane<'_>, first: usize, n: usize) -> Result<Plane<'_>, ConvertError> {
    let range = first * p.stride..(first + n) * p.stride;
    let data = p.data.get_mut(range).ok_or_else(|| ConvertError("output plane too small".into()))?;
    Ok(Plane { data, stride: p.stride })
}

/// [`bgrx_to_yuv`] for a 10-bit layout with the scalar kernel, whatever this CPU has: what
/// CPUs without AVX2 run (for the benchmark).
#[doc(hidden)]
pub fn bgrx_to_ten_bit_scalar(frame: &Frame, colour: Colour, out: Yuv<'_>) -> Result<(), ConvertError> {
    if frame.format != PixelFormat::Bgrx8888 {
        return Err(ConvertError(format!("a {:?} frame is not BGRX", frame.format)));
    }
    frame
        .with_data(|data| {
            ten_bit::convert(ten_bit::Kernel::Exact, data, frame.stride, frame.width as usize, frame.height as usize, colour, out)
        })
        .map_err(|e| ConvertError(e.to_string()))?
}

/// The `yuv` crate's names for a colour's range and matrix.
fn yuv_enums(colour: Colour) -> (YuvRange, YuvStandardMatrix) {
    let range = match colour.range {
        Range::Limited => YuvRange::Limited,
        Range::Full => YuvRange::Full,
    };
    let matrix = match colour.matrix {
        Matrix::Bt601 => YuvStandardMatrix::Bt601,
        Matrix::Bt709 => YuvStandardMatrix::Bt709,
        Matrix::Bt2020 => YuvStandardMatrix::Bt2020,
    };
    (range, matrix)
}

fn convert(src: &[u8], src_stride: usize, w: u32, h: u32, colour: Colour, out: Yuv<'_>) -> Result<(), ConvertError> {
    let (range, matrix) = yuv_enums(colour);
    let stride = src_stride as u32;
    let mode = YuvConversionMode::Fast;
    let four_four_four = matches!(out, Yuv::I444 { .. });
    let result = match out {
        Yuv::Nv12 { y, uv } => {
            let ((y_plane, y_stride), (uv_plane, uv_stride)) = (plane(y), plane(uv));
            let mut image = YuvBiPlanarImageMut { y_plane, y_stride, uv_plane, uv_stride, width: w, height: h };
            yuv::bgra_to_yuv_nv12(&mut image, src, stride, range, matrix, mode)
        }
        Yuv::I420 { y, u, v } | Yuv::I444 { y, u, v } => {
            let to = if four_four_four { yuv::bgra_to_yuv444 } else { yuv::bgra_to_yuv420 };
            let ((y_plane, y_stride), (u_plane, u_stride), (v_plane, v_stride)) = (plane(y), plane(u), plane(v));
            let mut image = YuvPlanarImageMut { y_plane, y_stride, u_plane, u_stride, v_plane, v_stride, width: w, height: h };
            to(&mut image, src, stride, range, matrix, mode)
        }
        ten_bit => return ten_bit::convert(ten_bit::Kernel::for_this_cpu(), src, src_stride, w as usize, h as usize, colour, ten_bit),
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
        Frame {
            seq: 1,
            width: w,
            height: h,
            stride: w as usize * 4,
            format: PixelFormat::Bgrx8888,
            pixels: buffer.into(),
            damage,
            render_started_at: std::time::Instant::now(),
            rendered_at: std::time::Instant::now(),
            committed_at: std::time::Instant::now(),
        }
    }

    #[test]
    fn converting_damaged_rows_matches_a_full_conversion_there_and_keeps_the_rest() {
        let (w, h) = (64u32, 32u32);
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        let (mut y, mut uv) = (vec![0u8; (w * h) as usize], vec![0u8; (w * h / 2) as usize]);
        let planes = |y: &mut Vec<u8>, uv: &mut Vec<u8>| {
            // Reborrow as the enum each call wants.
            let (y, uv) = (y.as_mut_slice() as *mut [u8], uv.as_mut_slice() as *mut [u8]);
            unsafe { Yuv::Nv12 { y: Plane { data: &mut *y, stride: 64 }, uv: Plane { data: &mut *uv, stride: 64 } } }
        };
        let dark = frame(&pool, w, h, 10, vec![]);
        bgrx_to_yuv(&dark, Colour::default(), planes(&mut y, &mut uv)).unwrap();
        let dark_y = y[0];
        drop(dark);
        let bright = frame(&pool, w, h, 250, vec![Rect { x: 3, y: 7, width: 5, height: 4 }]);
        let rows = damaged_rows(&bright).unwrap();
        assert_eq!(rows, 6..12);
        bgrx_rows_to_yuv(&bright, Colour::default(), planes(&mut y, &mut uv), rows).unwrap();
        assert_eq!(y[5 * 64], dark_y, "row 5 untouched");
        assert!(y[6 * 64] > 200 && y[11 * 64] > 200, "rows 6..12 converted");
        assert_eq!(y[12 * 64], dark_y, "row 12 untouched");
        assert!(damaged_rows(&frame(&pool, w, h, 0, vec![])).is_none());
        assert!(bgrx_rows_to_yuv(&bright, Colour::default(), planes(&mut y, &mut uv), 1..3).is_err());
    }

    #[test]
    fn converted_frames_are_copied_row_band_by_row_band_and_only_into_their_own_layout() {
        let (w, h) = (10u32, 8u32);
        let format = PixelFormat::Yuv { layout: Layout::I420, colour: Colour::default() };
        let pool = BufferPool::new(format.frame_len(w, h), 1);
        let mut buffer = pool.take().unwrap();
        // Each byte is its plane's number times 100 plus its row there.
        for (i, g) in Layout::I420.planes(w, h).iter().enumerate() {
            for row in 0..g.rows {
                buffer.as_mut_slice()[g.offset + row * g.stride..][..g.stride].fill((i * 100 + row) as u8);
            }
        }
        let f = Frame {
            seq: 1,
            width: w,
            height: h,
            stride: 12,
            format,
            pixels: buffer.into(),
            damage: vec![],
            render_started_at: std::time::Instant::now(),
            rendered_at: std::time::Instant::now(),
            committed_at: std::time::Instant::now(),
        };
        let (mut y, mut u, mut v) = (vec![0u8; 16 * 8], vec![0u8; 8 * 4], vec![0u8; 8 * 4]);
        let out = |y: &mut Vec<u8>, u: &mut Vec<u8>, v: &mut Vec<u8>| {
            let (y, u, v) = (y.as_mut_slice() as *mut [u8], u.as_mut_slice() as *mut [u8], v.as_mut_slice() as *mut [u8]);
            // SAFETY: three distinct vectors, reborrowed for one call each.
            unsafe {
                Yuv::I420 {
                    y: Plane { data: &mut *y, stride: 16 },
                    u: Plane { data: &mut *u, stride: 8 },
                    v: Plane { data: &mut *v, stride: 8 },
                }
            }
        };
        frame_rows_to_yuv(&f, Colour::default(), out(&mut y, &mut u, &mut v), 2..6).unwrap();
        assert_eq!(&y[16..26], &[0; 10], "row 1 untouched");
        assert_eq!(&y[32..42], &[2; 10]);
        assert_eq!(&y[5 * 16..5 * 16 + 10], &[5; 10]);
        assert_eq!(y[5 * 16 + 10], 0, "padding past the picture is not copied");
        assert_eq!(&y[6 * 16..6 * 16 + 10], &[0; 10], "row 6 untouched");
        assert_eq!((&u[8..13], &v[16..21], u[0], v[24]), (&[101u8; 5][..], &[202u8; 5][..], 0, 0), "chroma rows 1 and 2 only");
        // Another layout or colour is refused.
        assert!(frame_rows_to_yuv(&f, Colour { matrix: Matrix::Bt601, range: Range::Limited }, out(&mut y, &mut u, &mut v), 0..8).is_err());
        let (mut y2, mut uv) = (vec![0u8; 80], vec![0u8; 40]);
        assert!(
            frame_rows_to_yuv(
                &f,
                Colour::default(),
                Yuv::Nv12 { y: Plane { data: &mut y2, stride: 10 }, uv: Plane { data: &mut uv, stride: 10 } },
                0..8
            )
            .is_err()
        );
    }

    #[test]
    fn ten_bit_layouts_hold_the_picture_in_ten_bits() {
        let (w, h) = (48u32, 36u32);
        let rgb = |x: u32, y: u32| [((x + y) * 3) as f64, (y * 7) as f64, (x * 5) as f64];
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        let mut buffer = pool.take().unwrap();
        for (i, px) in buffer.as_mut_slice().chunks_exact_mut(4).enumerate() {
            let [r, g, b] = rgb(i as u32 % w, i as u32 / w);
            px.copy_from_slice(&[b as u8, g as u8, r as u8, 255]);
        }
        let f = Frame {
            seq: 1,
            width: w,
            height: h,
            stride: w as usize * 4,
            format: PixelFormat::Bgrx8888,
            pixels: buffer.into(),
            damage: vec![],
            render_started_at: std::time::Instant::now(),
            rendered_at: std::time::Instant::now(),
            committed_at: std::time::Instant::now(),
        };
        let (n, c) = ((w * h) as usize, (w * h / 4) as usize);
        for (colour, kr, kb) in
            [(Colour::default(), 0.2126, 0.0722), (Colour { matrix: Matrix::Bt2020, range: Range::Full }, 0.2627, 0.0593)]
        {
            // The exact values, in 10 bits: luma per pixel, chroma of each 2x2 block's mean.
            let full = colour.range == Range::Full;
            let yuv = |[r, g, b]: [f64; 3]| {
                let y = kr * r + (1.0 - kr - kb) * g + kb * b;
                let (u, v) = ((b - y) / (2.0 * (1.0 - kb)), (r - y) / (2.0 * (1.0 - kr)));
                // Full range spans 0..=1023, limited range is 8-bit limited range times 4.
                let (ys, cs, y0) =
                    if full { (1023.0 / 255.0, 1023.0 / 255.0, 0.0) } else { (4.0 * 219.0 / 255.0, 4.0 * 224.0 / 255.0, 64.0) };
                [y0 + y * ys, 512.0 + u * cs, 512.0 + v * cs]
            };
            let block = |x: u32, y: u32| {
                let px = [rgb(2 * x, 2 * y), rgb(2 * x + 1, 2 * y), rgb(2 * x, 2 * y + 1), rgb(2 * x + 1, 2 * y + 1)];
                yuv([0, 1, 2].map(|k| px.iter().map(|p| p[k]).sum::<f64>() / 4.0))
            };
            let close = |got: u16, want: f64| (f64::from(got) - want).abs() <= 3.0;
            // Planar, value in the low bits (x265).
            let (mut y, mut u, mut v) = (vec![0u16; n], vec![0u16; c], vec![0u16; c]);
            bgrx_to_yuv(&f, colour, Yuv::I010 { y: b(&mut y, w), u: b(&mut u, w / 2), v: b(&mut v, w / 2) }).unwrap();
            for (i, got) in y.iter().enumerate() {
                let want = yuv(rgb(i as u32 % w, i as u32 / w))[0];
                assert!(close(*got, want), "{colour:?}: Y {got}, want {want:.1}");
            }
            for (i, (gu, gv)) in u.iter().zip(&v).enumerate() {
                let want = block(i as u32 % (w / 2), i as u32 / (w / 2));
                assert!(close(*gu, want[1]) && close(*gv, want[2]), "{colour:?}: U V {gu} {gv}, want {want:.1?}");
            }
            // Bi-planar, value in the high bits (NVENC, VAAPI): the same samples, shifted.
            let (mut py, mut puv) = (vec![0u16; n], vec![0u16; 2 * c]);
            bgrx_to_yuv(&f, colour, Yuv::P010 { y: b(&mut py, w), uv: b(&mut puv, w) }).unwrap();
            let near = |p: u16, i: u16| p & 63 == 0 && (i32::from(p >> 6) - i32::from(i)).abs() <= 1;
            assert!(py.iter().zip(&y).all(|(p, i)| near(*p, *i)));
            assert!(puv.chunks_exact(2).zip(u.iter().zip(&v)).all(|(p, (u, v))| near(p[0], *u) && near(p[1], *v)));
            // Rows too short for the width are an error, not a truncated picture.
            assert!(bgrx_to_yuv(&f, colour, Yuv::P010 { y: b(&mut py, w / 2), uv: b(&mut puv, w) }).is_err());
        }
    }

    #[test]
    fn four_four_four_keeps_each_pixels_colour() {
        // Red and blue in a one-pixel checkerboard: 4:2:0 would average them to purple.
        let (w, h) = (16u32, 8u32);
        let pool = BufferPool::new((w * h * 4) as usize, 2);
        let mut buffer = pool.take().unwrap();
        for (i, px) in buffer.as_mut_slice().chunks_exact_mut(4).enumerate() {
            let red = (i as u32 % w + i as u32 / w).is_multiple_of(2);
            px.copy_from_slice(if red { &[0, 0, 255, 255] } else { &[255, 0, 0, 255] });
        }
        let f = Frame {
            seq: 1,
            width: w,
            height: h,
            stride: w as usize * 4,
            format: PixelFormat::Bgrx8888,
            pixels: buffer.into(),
            damage: vec![],
            render_started_at: std::time::Instant::now(),
            rendered_at: std::time::Instant::now(),
            committed_at: std::time::Instant::now(),
        };
        let n = (w * h) as usize;
        // BT.709 limited: red is Cb 102 Cr 240, blue Cb 240 Cr 118.
        let want = |i: usize| if (i as u32 % w + i as u32 / w).is_multiple_of(2) { (102.0, 240.0) } else { (240.0, 118.0) };
        let (mut y, mut u, mut v) = (vec![0u8; n], vec![0u8; n], vec![0u8; n]);
        let s = w as usize;
        bgrx_to_yuv(
            &f,
            Colour::default(),
            Yuv::I444 { y: Plane { data: &mut y, stride: s }, u: Plane { data: &mut u, stride: s }, v: Plane { data: &mut v, stride: s } },
        )
        .unwrap();
        for (i, (u, v)) in u.iter().zip(&v).enumerate() {
            let (cb, cr) = want(i);
            assert!((f64::from(*u) - cb).abs() <= 2.0 && (f64::from(*v) - cr).abs() <= 2.0, "pixel {i}: Cb {u} Cr {v}, want {cb} {cr}");
        }
        let (mut y, mut u, mut v) = (vec![0u16; n], vec![0u16; n], vec![0u16; n]);
        bgrx_to_yuv(&f, Colour::default(), Yuv::I410 { y: b(&mut y, w), u: b(&mut u, w), v: b(&mut v, w) }).unwrap();
        for (i, (u, v)) in u.iter().zip(&v).enumerate() {
            let (cb, cr) = want(i);
            assert!((f64::from(*u) / 4.0 - cb).abs() <= 1.0 && (f64::from(*v) / 4.0 - cr).abs() <= 1.0, "10-bit pixel {i}: Cb {u} Cr {v}");
        }
    }

    /// A plane of 16-bit samples, `samples` to a row.
    fn b(data: &mut [u16], samples: u32) -> Plane<'_> {
        // SAFETY: any u16 slice is a valid u8 slice of twice the length.
        let data = unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr().cast(), data.len() * 2) };
        Plane { data, stride: samples as usize * 2 }
    }
}
