//! What the unit tests share.

use crate::frame::{BufferPool, Frame, PixelFormat};
use std::time::Instant;

/// A BGRX frame `width`×`height` of one grey `level`, numbered `seq`, drawn just now.
pub fn grey_frame(pool: &BufferPool, width: u32, height: u32, seq: u64, level: u8) -> Frame {
    let mut buffer = pool.take().expect("a free buffer");
    buffer.as_mut_slice().fill(level);
    let now = Instant::now();
    Frame {
        seq,
        width,
        height,
        stride: width as usize * 4,
        format: PixelFormat::Bgrx8888,
        pixels: buffer.into(),
        damage: Vec::new(),
        render_started_at: now,
        rendered_at: now,
        committed_at: now,
    }
}
