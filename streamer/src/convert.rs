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
    let range = match colour.range {
        Range::Limited => YuvRange::Limited,
        Range::Full => YuvRange::Full,
    };
    let matrix = match colour.matrix {
        Matrix::Bt601 => YuvStandardMatrix::Bt601,
        Matrix::Bt709 => YuvStandardMatrix::Bt709,
    };
    let (w, h, src, stride) = (frame.width, frame.height, frame.data(), frame.stride as u32);
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
