//! A finished frame: pixels, what changed, and when.

use crate::gpu::GpuLoan;
use crate::layout::{Layout, PlaneGeometry, Samples, sample_at};
use parking_lot::Mutex;
use punktfunk_core::colour::Colour;
use std::sync::Arc;
use std::time::Instant;

/// Pixel layouts the compositor renders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PixelFormat {
    /// 32 bits per pixel, bytes B, G, R, X in memory (DRM XRGB8888, pixman x8r8g8b8).
    #[default]
    Bgrx8888,
    /// Converted already (by the compositor's GPU engine) into the layout and colour the
    /// encoder reads, so it only copies: planes as [`Layout::planes`] places them.
    Yuv { layout: Layout, colour: Colour },
}

impl PixelFormat {
    /// Bytes per row of a rendered frame's first plane (its pixels, or its luma).
    pub fn stride(self, width: u32, height: u32) -> usize {
        match self {
            Self::Bgrx8888 => width as usize * 4,
            Self::Yuv { layout, .. } => layout.planes(width, height)[0].stride,
        }
    }

    /// Bytes of a `width`×`height` frame rendered in this format.
    pub fn frame_len(self, width: u32, height: u32) -> usize {
        match self {
            Self::Bgrx8888 => width as usize * height as usize * 4,
            Self::Yuv { layout, .. } => layout.frame_len(width, height),
        }
    }
}

/// A damaged rectangle in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// One finished frame in CPU memory. Dropping it releases its pixels: a pool buffer goes
/// back to its pool, a client's buffer back to the client.
#[derive(Debug)]
pub struct Frame {
    /// +1 per rendered frame, starting at 1.
    pub seq: u64,
    pub width: u32,
    pub height: u32,
    /// Bytes per row (of the luma plane, for a YUV frame).
    pub stride: usize,
    pub format: PixelFormat,
    pub pixels: Pixels,
    /// What changed since the previous frame (the whole frame for the first one). Pixels
    /// outside it are unchanged: encoders convert only the damaged rows.
    pub damage: Vec<Rect>,
    /// When the render that made it began (the compositor's frame clock picked it up).
    pub render_started_at: Instant,
    /// When rendering finished.
    pub rendered_at: Instant,
    /// When an app committed the newest content this frame shows (the render's start
    /// otherwise, a frame redrawn with nothing new): where the latency the host reports starts.
    pub committed_at: Instant,
}

impl Frame {
    /// Runs `f` on the frame's bytes (`stride * height`, or more).
    pub fn with_data<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, PixelsGone> {
        match &self.pixels {
            Pixels::Pooled(b) => Ok(f(b.as_slice())),
            Pixels::Shared(shared) => {
                let (mut f, mut out) = (Some(f), None);
                shared.read(&mut |bytes| out = f.take().map(|f| f(bytes)));
                out.ok_or(PixelsGone)
            }
            Pixels::Gpu(_) => Err(PixelsGone),
        }
    }

    /// The frame's planes: one for BGRX, as its layout places them for YUV.
    pub fn planes(&self) -> Vec<PlaneGeometry> {
        match self.format {
            PixelFormat::Bgrx8888 => {
                let (rows, row_bytes) = (self.height as usize, self.width as usize * 4);
                vec![PlaneGeometry {
                    samples: Samples::Bgrx,
                    offset: 0,
                    stride: self.stride,
                    rows,
                    row_bytes,
                    bytes_per_sample: 4,
                    shift: 0,
                    subsampling: 1,
                }]
            }
            PixelFormat::Yuv { layout, .. } => layout.planes(self.width, self.height),
        }
    }

    /// The pixel at (x, y) as (r, g, b) (converted back from YUV within a level or two);
    /// black where it cannot be read.
    pub fn rgb_at(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let black = (0, 0, 0);
        if x >= self.width || y >= self.height {
            return black;
        }
        let read = |d: &[u8]| match self.format {
            PixelFormat::Bgrx8888 => {
                let i = y as usize * self.stride + x as usize * 4;
                d.get(i..i + 4).map(|p| (p[2], p[1], p[0]))
            }
            PixelFormat::Yuv { layout, colour } => {
                let planes = layout.planes(self.width, self.height);
                let [luma, u, v] = match planes.as_slice() {
                    [y, uv] => [(y, 0), (uv, 0), (uv, 1)],
                    [y, u, v] => [(y, 0), (u, 0), (v, 0)],
                    _ => return None,
                };
                let mut yuv = [0.0; 3];
                for (out, (plane, which)) in yuv.iter_mut().zip([luma, u, v]) {
                    *out = f64::from(sample_at(d, plane, x, y, which)?);
                }
                Some(colour.to_rgb(if layout.ten_bit() { 10 } else { 8 }, yuv))
            }
        };
        self.with_data(|d| read(d).unwrap_or(black)).unwrap_or(black)
    }
}

/// Where a frame's pixels are.
#[derive(Debug)]
pub enum Pixels {
    /// A pool buffer the compositor rendered into.
    Pooled(PooledBuffer),
    /// Memory the compositor did not draw: a client's buffer passed through as it is (the
    /// direct path), given back when the frame is dropped.
    Shared(Box<dyn SharedPixels>),
    /// A surface of the encoder's the compositor drew into on the GPU (NV12 in the
    /// frame's colour): no CPU can read it.
    Gpu(GpuLoan),
}

impl From<PooledBuffer> for Pixels {
    fn from(b: PooledBuffer) -> Self {
        Self::Pooled(b)
    }
}

/// Memory owned elsewhere that a frame may read while it lives. Read through a call rather
/// than a slice: the owner may have to lock or remap it for the duration (a client's shm
/// pool can be resized under us).
pub trait SharedPixels: Send + std::fmt::Debug {
    /// Calls `f` once with the bytes, unless they cannot be read (then not at all).
    fn read(&self, f: &mut dyn FnMut(&[u8]));
}

/// A frame's memory could not be read: a shared frame's owner broke it, or it is on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the frame's pixels can no longer be read")]
pub struct PixelsGone;

/// Reusable frame buffers of one size. The compositor renders into a buffer taken from the
/// pool; the sink drops the frame when done and the buffer comes back. A bounded number of
/// buffers means a slow consumer makes the compositor skip frames instead of queueing them.
#[derive(Clone, Debug)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    len: usize,
    capacity: usize,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    free: Vec<Vec<u8>>,
    /// Buffers on loan.
    outstanding: usize,
}

impl BufferPool {
    /// A pool of at most `capacity` buffers of `len` bytes, allocated on first use.
    pub fn new(len: usize, capacity: usize) -> Self {
        Self { inner: Arc::new(PoolInner { len, capacity, state: Mutex::new(PoolState::default()) }) }
    }

    pub fn buffer_len(&self) -> usize {
        self.inner.len
    }

    /// A buffer, or `None` if all `capacity` buffers are still with consumers.
    /// A recycled buffer keeps its old content (renderers use that for damage tracking).
    pub fn take(&self) -> Option<PooledBuffer> {
        let mut state = self.inner.state.lock();
        let buf = match state.free.pop() {
            Some(b) => b,
            None if state.outstanding < self.inner.capacity => vec![0; self.inner.len],
            None => return None,
        };
        state.outstanding += 1;
        Some(PooledBuffer { buf: Some(buf), pool: Arc::clone(&self.inner) })
    }
}

/// A buffer on loan from a [`BufferPool`].
#[derive(Debug)]
pub struct PooledBuffer {
    buf: Option<Vec<u8>>,
    pool: Arc<PoolInner>,
}

impl PooledBuffer {
    pub fn as_slice(&self) -> &[u8] {
        self.buf.as_deref().expect("present until drop")
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.buf.as_deref_mut().expect("present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            let mut state = self.pool.state.lock();
            state.outstanding -= 1;
            state.free.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory lent by someone else, readable until `broken`.
    #[derive(Debug)]
    struct Lent {
        bytes: Vec<u8>,
        broken: bool,
    }

    impl SharedPixels for Lent {
        fn read(&self, f: &mut dyn FnMut(&[u8])) {
            if !self.broken {
                f(&self.bytes);
            }
        }
    }

    fn shared(broken: bool) -> Frame {
        let bytes = vec![1, 2, 3, 0, 4, 5, 6, 0];
        Frame {
            seq: 1,
            width: 2,
            height: 1,
            stride: 8,
            format: PixelFormat::Bgrx8888,
            pixels: Pixels::Shared(Box::new(Lent { bytes, broken })),
            damage: Vec::new(),
            render_started_at: Instant::now(),
            rendered_at: Instant::now(),
            committed_at: Instant::now(),
        }
    }

    #[test]
    fn shared_pixels_read_in_place_and_broken_ones_say_so() {
        let frame = shared(false);
        assert_eq!(frame.rgb_at(1, 0), (6, 5, 4));
        assert_eq!(frame.with_data(|d| d.len()), Ok(8));
        let broken = shared(true);
        assert_eq!(broken.with_data(|d| d.len()), Err(PixelsGone));
        assert_eq!(broken.rgb_at(1, 0), (0, 0, 0), "unreadable pixels read as black, not a panic");
        assert_eq!(frame.rgb_at(5, 0), (0, 0, 0), "outside the frame too");
    }

    #[test]
    fn pool_lends_at_most_capacity_and_recycles() {
        let pool = BufferPool::new(16, 2);
        let mut a = pool.take().unwrap();
        a.as_mut_slice()[0] = 7;
        let _b = pool.take().unwrap();
        assert!(pool.take().is_none(), "both buffers are out");
        drop(a);
        let again = pool.take().unwrap();
        assert_eq!(again.as_slice()[0], 7, "a recycled buffer keeps its content");
    }
}
