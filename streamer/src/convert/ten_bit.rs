//! 8-bit BGRX → 10 bits: I010 (4:2:0) for x265, P010 (4:2:0) for NVENC and VAAPI, I410 (4:4:4).
//!
//! The `yuv` crate converts to 10 bits only from 10-bit RGBA, and its P010 output has no SIMD
//! path (2.6 ms a 1080p frame here against 0.75 ms for I010). So a band of rows at a time is
//! swapped to RGBX, widened to RGBA10 (v·1023/255 as `v << 2 | v >> 6`, exact at 0 and 255),
//! converted to I010 by the crate's SIMD kernels, and for P010 packed from a scratch band
//! (shifted to the high bits, chroma interleaved). The scratch stays in the cache.
//!
//! The crate's 10-bit kernels are right only on AVX2: yuv 0.8.20's SSE4.1 and scalar paths
//! were measured up to 18 and 168 code values off (its 8-bit ones are fine). Other CPUs
//! (older and low-power x86 such as the Celerons of small home servers, ARM) get the plain
//! kernel here instead (`Kernel::Exact`).

use super::{Colour, ConvertError, Plane, Yuv, yuv_enums};
use std::cell::RefCell;
use yuv::{BufferStoreMut, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// The crate's RGBA10 → planar 10-bit conversions (I010, I410).
type Planar = fn(&mut YuvPlanarImageMut<u16>, &[u16], u32, YuvRange, YuvStandardMatrix) -> Result<(), yuv::YuvError>;

/// What turns a band of RGBA10 into 10-bit planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kernel {
    /// The crate's, with AVX2.
    Simd,
    /// Ours, scalar: exact on every CPU.
    Exact,
}

impl Kernel {
    pub(super) fn for_this_cpu() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Simd;
        }
        Kernel::Exact
    }

    /// Converts the `w`×`n` RGBA10 band into `planes` (chroma subsampled by `sub`: 1 or 2).
    fn run(self, rgba: &[u16], w: usize, n: usize, colour: Colour, sub: usize, planes: Planes<'_>) -> Result<(), ConvertError> {
        if self == Kernel::Exact {
            exact(rgba, w, n, colour, sub, planes);
            return Ok(());
        }
        let (range, matrix) = yuv_enums(colour);
        let to = if sub == 1 { yuv::rgba10_to_i410 as Planar } else { yuv::rgba10_to_i010 as Planar };
        let Planes { y, u, v } = planes;
        let (y_plane, u_plane, v_plane) = (BufferStoreMut::Borrowed(y.0), BufferStoreMut::Borrowed(u.0), BufferStoreMut::Borrowed(v.0));
        let (y_stride, u_stride, v_stride) = (y.1 as u32, u.1 as u32, v.1 as u32);
        let mut image = YuvPlanarImageMut { y_plane, y_stride, u_plane, u_stride, v_plane, v_stride, width: w as u32, height: n as u32 };
        to(&mut image, rgba, (w * 4) as u32, range, matrix).map_err(|e| ConvertError(e.to_string()))
    }
}

/// A band's three 10-bit planes, each with its stride in samples.
struct Planes<'p> {
    y: (&'p mut [u16], usize),
    u: (&'p mut [u16], usize),
    v: (&'p mut [u16], usize),
}

/// RGBA10 to 10-bit planes, one sample at a time: each chroma sample from the mean of the
/// `sub`×`sub` pixels it covers, as the GPU's pass and the SIMD kernel compute them.
fn exact(rgba: &[u16], w: usize, n: usize, colour: Colour, sub: usize, planes: Planes<'_>) {
    let c = colour.coefficients(10);
    let rows = c.rows.map(|r| r.map(|k| (k / 1023.0) as f32));
    let (offsets, max) = (c.offsets.map(|o| o as f32 + 0.5), c.max as f32);
    let code = |i: usize, [r, g, b]: [f32; 3]| (rows[i][0] * r + rows[i][1] * g + rows[i][2] * b + offsets[i]).clamp(0.0, max) as u16;
    let px = |x: usize, y: usize| {
        let p = &rgba[(y * w + x) * 4..];
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    };
    let Planes { y: (luma, ys), u: (u, us), v: (v, vs) } = planes;
    for row in 0..n {
        for x in 0..w {
            luma[row * ys + x] = code(0, px(x, row));
        }
    }
    let scale = 1.0 / (sub * sub) as f32;
    for cy in 0..n / sub {
        for cx in 0..w / sub {
            let mut sum = [0f32; 3];
            for (dx, dy) in (0..sub).flat_map(|dy| (0..sub).map(move |dx| (dx, dy))) {
                let p = px(cx * sub + dx, cy * sub + dy);
                sum.iter_mut().zip(p).for_each(|(s, p)| *s += p);
            }
            let mean = sum.map(|s| s * scale);
            (u[cy * us + cx], v[cy * vs + cx]) = (code(1, mean), code(2, mean));
        }
    }
}

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

pub(super) fn convert(
    kernel: Kernel,
    src: &[u8],
    src_stride: usize,
    w: usize,
    h: usize,
    colour: Colour,
    mut out: Yuv<'_>,
) -> Result<(), ConvertError> {
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
            let wide = &s.wide[..w * 4 * n];
            let (cw, cn) = (w / 2, n / 2);
            match &mut out {
                Yuv::I010 { y, u, v } | Yuv::I410 { y, u, v } => {
                    // Chroma: the band's rows at full width (4:4:4), or half of both (4:2:0).
                    let (sub, c_first, c_rows, c_width) = if four_four_four { (1, first, n, w) } else { (2, first / 2, cn, cw) };
                    let (y, u, v) = (band(y, first, n, w)?, band(u, c_first, c_rows, c_width)?, band(v, c_first, c_rows, c_width)?);
                    kernel.run(wide, w, n, colour, sub, Planes { y, u, v })?;
                }
                Yuv::P010 { y, uv } => {
                    s.y.resize(w * n, 0);
                    s.u.resize(cw * cn, 0);
                    s.v.resize(cw * cn, 0);
                    let planes = Planes { y: (&mut s.y[..], w), u: (&mut s.u[..], cw), v: (&mut s.v[..], cw) };
                    kernel.run(wide, w, n, colour, 2, planes)?;
                    // The crate writes little-endian samples; so does P010.
                    let high = |v: u16| (u16::from_le(v) << 6).to_le();
                    let (out_y, y_stride) = band(y, first, n, w)?;
                    for (from, to) in s.y.chunks_exact(w).zip(out_y.chunks_mut(y_stride)) {
                        to.iter_mut().zip(from).for_each(|(t, f)| *t = high(*f));
                    }
                    let (out_uv, uv_stride) = band(uv, first / 2, cn, w)?;
                    for ((u, v), to) in s.u.chunks_exact(cw).zip(s.v.chunks_exact(cw)).zip(out_uv.chunks_mut(uv_stride)) {
                        for ((u, v), t) in u.iter().zip(v).zip(to.chunks_exact_mut(2)) {
                            t.copy_from_slice(&[high(*u), high(*v)]);
                        }
                    }
                }
                Yuv::Nv12 { .. } | Yuv::I420 { .. } | Yuv::I444 { .. } => {
                    return Err(ConvertError("an 8-bit layout given to the 10-bit converter".into()));
                }
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
fn band<'p>(p: &'p mut Plane<'_>, first: usize, n: usize, width: usize) -> Result<(&'p mut [u16], usize), ConvertError> {
    if p.stride < width * 2 {
        return Err(ConvertError(format!("a plane row of {} bytes holds fewer than {width} samples", p.stride)));
    }
    let bytes = p.data.get_mut(first * p.stride..(first + n) * p.stride).ok_or_else(|| ConvertError("output plane too small".into()))?;
    match bytemuck::try_cast_slice_mut::<u8, u16>(bytes) {
        Ok(samples) if p.stride.is_multiple_of(2) => Ok((samples, p.stride / 2)),
        _ => Err(ConvertError("a 16-bit plane must be 2-byte aligned with an even stride".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{Matrix, Range};

    /// Both kernels against each other and against the exact values: the scalar one is what
    /// CPUs without AVX2 get, where the crate's kernels were 18 (SSE4.1) to 168 (scalar) code
    /// values off. Every layout, a width that is no multiple of any vector, two bands.
    #[test]
    fn the_scalar_kernel_is_exact_and_agrees_with_the_simd_one() {
        let (w, h) = (50usize, 20usize);
        let rgb = |x: usize, y: usize| [((x + y) * 3 % 256) as u8, (y * 7 % 256) as u8, (x * 5 % 256) as u8];
        let bgrx: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let [r, g, b] = rgb(i % w, i / w);
                [b, g, r, 255]
            })
            .collect();
        let kernels: &[Kernel] = if Kernel::for_this_cpu() == Kernel::Simd { &[Kernel::Exact, Kernel::Simd] } else { &[Kernel::Exact] };
        for colour in [
            Colour::default(),
            Colour { matrix: Matrix::Bt2020, range: Range::Full },
            Colour { matrix: Matrix::Bt601, range: Range::Limited },
        ] {
            let c = colour.coefficients(10);
            // Of the samples widened to 10 bits, as the kernels get them.
            let wide = |v: u8| f64::from(u16::from(v) << 2 | u16::from(v) >> 6) / 1023.0;
            let code = |i: usize, p: [f64; 3]| (c.rows[i].iter().zip(p).map(|(k, v)| k * v).sum::<f64>() + c.offsets[i]).clamp(0.0, c.max);
            let mean = |x: usize, y: usize, sub: usize| {
                let px: Vec<[u8; 3]> = (0..sub * sub).map(|i| rgb(x * sub + i % sub, y * sub + i / sub)).collect();
                [0, 1, 2].map(|k| px.iter().map(|p| wide(p[k])).sum::<f64>() / (sub * sub) as f64)
            };
            for sub in [1, 2] {
                let (cw, ch) = (w / sub, h / sub);
                let mut outputs = Vec::new();
                for &kernel in kernels {
                    let (mut y, mut u, mut v) = (vec![0u8; w * h * 2], vec![0u8; cw * ch * 2], vec![0u8; cw * ch * 2]);
                    fn plane(data: &mut [u8], samples: usize) -> Plane<'_> {
                        Plane { data, stride: samples * 2 }
                    }
                    let out = if sub == 1 {
                        Yuv::I410 { y: plane(&mut y, w), u: plane(&mut u, w), v: plane(&mut v, w) }
                    } else {
                        Yuv::I010 { y: plane(&mut y, w), u: plane(&mut u, cw), v: plane(&mut v, cw) }
                    };
                    convert(kernel, &bgrx, w * 4, w, h, colour, out).unwrap();
                    let samples = |b: &[u8]| b.chunks_exact(2).map(|s| u16::from_le_bytes([s[0], s[1]])).collect::<Vec<u16>>();
                    outputs.push((kernel, samples(&y), samples(&u), samples(&v)));
                }
                let (_, y, u, v) = &outputs[0];
                for (i, got) in y.iter().enumerate() {
                    let want = code(0, rgb(i % w, i / w).map(wide));
                    assert!((f64::from(*got) - want).abs() <= 0.51, "{colour:?} 1/{sub}: Y {got}, exactly {want:.2}");
                }
                for (i, (gu, gv)) in u.iter().zip(v).enumerate() {
                    let m = mean(i % cw, i / cw, sub);
                    let (wu, wv) = (code(1, m), code(2, m));
                    assert!(
                        (f64::from(*gu) - wu).abs() <= 0.51 && (f64::from(*gv) - wv).abs() <= 0.51,
                        "{colour:?} 1/{sub}: U V {gu} {gv}, exactly {wu:.2} {wv:.2}"
                    );
                }
                if let Some((_, sy, su, sv)) = outputs.get(1) {
                    let off = |a: &[u16], b: &[u16]| a.iter().zip(b).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
                    assert!(
                        off(y, sy) <= 2 && off(u, su) <= 3 && off(v, sv) <= 3,
                        "{colour:?} 1/{sub}: SIMD differs by {} {} {}",
                        off(y, sy),
                        off(u, su),
                        off(v, sv)
                    );
                }
            }
        }
    }
}
