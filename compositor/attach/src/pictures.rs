//! A desktop's BGRx pictures into the stream: each copied row by row into the stream's
//! buffer pool (the desktop's memory stays the desktop's) and offered to the mailbox.

use punktfunk_frame::{BufferPool, Frame, Mailbox, PixelFormat, Rect};
use std::time::Instant;

/// Pictures the sink may hold at once.
const POOL: usize = 3;

/// The pictures of one capture: their pool and numbering.
#[derive(Default)]
pub struct Pictures {
    pool: Option<BufferPool>,
    seq: u64,
}

impl Pictures {
    /// No picture offered yet.
    pub fn first(&self) -> bool {
        self.seq == 0
    }

    /// Offers a `width`×`height` picture whose row `y` is `row(y)` (at least `width`·4
    /// bytes); `damage` is where it changed (`None`: everywhere), `committed_at` the earliest
    /// the desktop tells of when it drew. False when the sink still holds every buffer: the
    /// picture is dropped (the next one must be whole).
    pub fn offer<'a>(
        &mut self,
        mailbox: &Mailbox,
        (width, height): (u32, u32),
        row: impl Fn(usize) -> &'a [u8],
        damage: Option<Vec<Rect>>,
        committed_at: Instant,
    ) -> bool {
        let stride = width as usize * 4;
        let len = stride * height as usize;
        let pool = match &mut self.pool {
            Some(p) if p.buffer_len() == len => p,
            slot => slot.insert(BufferPool::new(len, POOL)),
        };
        let Some(mut pixels) = pool.take() else { return false };
        for (y, out) in pixels.as_mut_slice().chunks_exact_mut(stride).enumerate() {
            out.copy_from_slice(&row(y)[..stride]);
        }
        self.seq += 1;
        let whole = Rect { x: 0, y: 0, width: width as i32, height: height as i32 };
        let now = Instant::now();
        mailbox.offer(Frame {
            seq: self.seq,
            width,
            height,
            stride,
            format: PixelFormat::Bgrx8888,
            pixels: pixels.into(),
            damage: damage.unwrap_or_else(|| vec![whole]),
            render_started_at: now,
            rendered_at: now,
            committed_at,
        });
        true
    }
}
