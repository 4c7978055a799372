//! 8-bit BGRX → 10 bits: I010 (4:2:0) for x265, P010 (4:2:0) for NVENC and VAAPI, I410 (4:4:4).
//!
//! The `yuv` crate converts to 10 bits only from 10-bit RGBA, and its P010 output has no SIMD
//! path (2.6 ms a 1080p frame here against 0.75 ms for I010). So a band of rows at a time is
//! swapped to RGBX, widened to RGBA10 (v·1023/255 as `v << 2 | v >> 6`, exact at 0 and 255),
//! converted to I010 by the crate's SIMD kernels, and for P010 packed from a scratch band
//! (shifted to the high bits, chroma interleaved). The scratch stays in the cache.

use super::{ConvertError, Plane, Yuv};
use std::cell::RefCell;
use yuv::{BufferStoreMut, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// The crate's RGBA10 → planar 10-bit conversions (I010, I410).
type Planar = fn(&mut YuvPlanarImageMut<u16>, &[u16], u32, YuvRange, YuvStandardMatrix) -> Result<(), yuv::YuvError>;

/// Rows per band (1080p: 240 KiB of RGBA10).
const BAND_ROWS: usize = 16;

#[derive(Default)]
struct Scratch {
    rgbx: Vec<u32>,
    wide: Vec<u16>,
    /// I010 planes of one band, for P010.
    y: Vec<u16>,
    u: Vec<u16>,
    v: Vec<u16>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

pub(super) fn convert(src: &[u8], src_stride: usize, w: usize, h: usize, range: YuvRange, matrix: YuvStandardMatrix, mut out: Yuv<'_>) -> Result<(), ConvertError> {
    let err = |e: yuv::YuvError| ConvertError(e.to_string());
    if w == 0 || !w.is_multiple_of(2) {
        return Err(ConvertError(format!("width {w}: 10-bit output wants an even, non-zero width")));
    }
    let four_four_four = matches!(out, Yuv::I410 { .. });
    SCRATCH.with_borrow_mut(|s| {
        s.rgbx.resize(w * BAND_ROWS, 0);
        s.wide.resize(w * 4 * BAND_ROWS, 0);
        for first in (0..h).step_by(BAND_ROWS) {
            let n = BAND_ROWS.min(h - first);
            for (row, rgbx) in s.rgbx.chunks_exact_mut(w).take(n).enumerate() {
                let at = (first + row) * src_stride;
                let line = src.get(at..at + w * 4).ok_or_else(|| ConvertError("frame smaller than its size".into()))?;
                swap_red_blue(line, rgbx);
            }
            let bytes: &[u8] = bytemuck::cast_slice(&s.rgbx[..w * n]);
            for (b, v) in bytes.iter().zip(s.wide.iter_mut()) {
                *v = u16::from(*b) << 2 | u16::from(*b) >> 6;
            }
            let (wide, wide_stride) = (&s.wide[..w * 4 * n], (w * 4) as u32);
            let (cw, cn) = (w / 2, n / 2);
            match &mut out {
                Yuv::I010 { y, u, v } | Yuv::I410 { y, u, v } => {
                    // Chroma: the band's rows at full width (4:4:4), or half of both (4:2:0).
                    let (to, c_first, c_rows, c_width) = if four_four_four { (yuv::rgba10_to_i410 as Planar, first, n, w) } else { (yuv::rgba10_to_i010 as Planar, first / 2, cn, cw) };
                    let (y_plane, y_stride) = band(y, first, n, w)?;
                    let (u_plane, u_stride) = band(u, c_first, c_rows, c_width)?;
                    let (v_plane, v_stride) = band(v, c_first, c_rows, c_width)?;
                    let (y_plane, u_plane, v_plane) = (BufferStoreMut::Borrowed(y_plane), BufferStoreMut::Borrowed(u_plane), BufferStoreMut::Borrowed(v_plane));
                    let mut image = YuvPlanarImageMut { y_plane, y_stride, u_plane, u_stride, v_plane, v_stride, width: w as u32, height: n as u32 };
                    to(&mut image, wide, wide_stride, range, matrix).map_err(err)?;
                }
                Yuv::P010 { y, uv } => {
                    s.y.resize(w * n, 0);
                    s.u.resize(cw * cn, 0);
                    s.v.resize(cw * cn, 0);
                    let (y_plane, u_plane, v_plane) = (BufferStoreMut::Borrowed(&mut s.y[..]), BufferStoreMut::Borrowed(&mut s.u[..]), BufferStoreMut::Borrowed(&mut s.v[..]));
                    let mut image = YuvPlanarImageMut { y_plane, y_stride: w as u32, u_plane, u_stride: cw as u32, v_plane, v_stride: cw as u32, width: w as u32, height: n as u32 };
                    yuv::rgba10_to_i010(&mut image, wide, wide_stride, range, matrix).map_err(err)?;
                    // The crate writes little-endian samples; so does P010.
                    let high = |v: u16| (u16::from_le(v) << 6).to_le();
                    let (out_y, y_stride) = band(y, first, n, w)?;
                    for (from, to) in s.y.chunks_exact(w).zip(out_y.chunks_mut(y_stride as usize)) {
                        to.iter_mut().zip(from).for_each(|(t, f)| *t = high(*f));
                    }
                    let (out_uv, uv_stride) = band(uv, first / 2, cn, w)?;
                    for ((u, v), to) in s.u.chunks_exact(cw).zip(s.v.chunks_exact(cw)).zip(out_uv.chunks_mut(uv_stride as usize)) {
                        for ((u, v), t) in u.iter().zip(v).zip(to.chunks_exact_mut(2)) {
                            t.copy_from_slice(&[high(*u), high(*v)]);
                        }
                    }
                }
                Yuv::Nv12 { .. } | Yuv::I420 { .. } | Yuv::I444 { .. } => return Err(ConvertError("an 8-bit layout given to the 10-bit converter".into())),
            }
        }
        Ok(())
    })
}

/// One BGRX row as RGBX words (in memory order), 4 bytes at a time.
fn swap_red_blue(line: &[u8], rgbx: &mut [u32]) {
    let swap = |p: u32| ((p & 0xff00_ff00) | (p >> 16 & 0xff) | (p & 0xff) << 16).to_le();
    match bytemuck::try_cast_slice::<u8, u32>(line) {
        // Aligned (pool and client buffers are): whole words, which the compiler vectorizes.
        Ok(words) => words.iter().zip(rgbx).for_each(|(p, o)| *o = swap(u32::from_le(*p))),
        Err(_) => line.chunks_exact(4).zip(rgbx).for_each(|(c, o)| *o = swap(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
    }
}

/// `n` rows of a 16-bit plane from row `first`, as samples, and its stride in samples (at
/// least `width`).
fn band<'p>(p: &'p mut Plane<'_>, first: usize, n: usize, width: usize) -> Result<(&'p mut [u16], u32), ConvertError> {
    if p.stride < width * 2 {
        return Err(ConvertError(format!("a plane row of {} bytes holds fewer than {width} samples", p.stride)));
    }
    let bytes = p.data.get_mut(first * p.stride..(first + n) * p.stride).ok_or_else(|| ConvertError("output plane too small".into()))?;
    match bytemuck::try_cast_slice_mut::<u8, u16>(bytes) {
        Ok(samples) if p.stride.is_multiple_of(2) => Ok((samples, (p.stride / 2) as u32)),
        _ => Err(ConvertError("a 16-bit plane must be 2-byte aligned with an even stride".into())),
    }
}
