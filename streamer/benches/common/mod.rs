//! What the streamer's benches share: a synthetic frame and median/p99.
// Each bench uses its own part of this module.
#![allow(dead_code)]

use punktfunk_streamer::{BufferPool, Frame, PixelFormat, Rect};
use std::time::Instant;

/// Frame `n` of a moving, textured pattern: a desktop/game-like load for the encoder.
pub fn frame(pool: &BufferPool, w: u32, h: u32, n: u64) -> Frame {
    let mut buffer = pool.take().expect("pool has room");
    let data = buffer.as_mut_slice();
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let v = (x + y + n as u32 * 6) as u8;
            data[i..i + 4].copy_from_slice(&[v, (x ^ y) as u8, (y / 4) as u8, 255]);
        }
    }
    Frame {
        seq: n,
        width: w,
        height: h,
        stride: w as usize * 4,
        format: PixelFormat::Bgrx8888,
        pixels: buffer.into(),
        damage: vec![Rect { x: 0, y: 0, width: w as i32, height: h as i32 }],
        render_started_at: Instant::now(),
        rendered_at: Instant::now(),
        committed_at: Instant::now(),
    }
}

/// Median and p99 of samples.
pub fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[((v.len() - 1) as f64 * 0.99) as usize])
}
