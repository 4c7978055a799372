//! Rendering the output: the scene composited into pooled frame buffers, damage-tracked, by
//! an engine chosen at start (pixman on the CPU, GLES on a GPU); a lone fullscreen client
//! buffer skips compositing (`crate::direct`). Each finished frame goes to the sink.

mod egl_device;
mod egl_display;
mod engine;
mod frames;
mod gles;
mod pixman;
mod scene;
mod surfaces;
mod to_yuv;

pub use engine::{ConvertChoice, Engine, EngineChoice};
pub use scene::Overlay;

use crate::direct;
use crate::state::State;
use engine::Compose;
use frames::Frames;
use punktfunk_frame::gpu::GpuSurfaces;
use punktfunk_frame::{Frame, PixelFormat, Pixels};
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::reexports::calloop::ping::Ping;
use std::sync::Arc;
use std::time::Instant;

const TIMINGS: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("pixman: {0}")]
    Pixman(String),
    #[error("GLES: {0}")]
    Gles(String),
    #[error("damage tracking: {0}")]
    Damage(String),
}

/// How rendering went, for the session's outcome and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Frames not rendered because every buffer was still with the consumer.
    pub skipped: u64,
    /// Frames that were a client's buffer passed through.
    pub direct_frames: u64,
    /// Frames the engine converted to YUV.
    pub converted_frames: u64,
    /// Of those, frames drawn straight into the encoder's surfaces.
    pub zero_copy_frames: u64,
    /// Time spent in `render`, µs: calls that composited a frame, that passed a client's
    /// buffer through, and that found nothing to draw. The first `TIMINGS` of each are kept.
    pub frame_us: Vec<u32>,
    pub direct_us: Vec<u32>,
    pub idle_us: Vec<u32>,
}

pub struct Renderer {
    engine: Engine,
    frames: Frames,
    pub stats: Stats,
}

impl Renderer {
    /// `returned` is pinged whenever the consumer gives a client's buffer back.
    pub fn new(state: &State, engine: Engine, show_cursor: bool, direct: bool, returned: Ping) -> Self {
        Self { engine, frames: Frames::new(state, show_cursor, direct, returned), stats: Stats::default() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether a client's dmabuf can be drawn.
    pub fn import_dmabuf(&mut self, dmabuf: &Dmabuf) -> bool {
        match &mut self.engine {
            Engine::Gles(g) => g.import_dmabuf(dmabuf),
            Engine::Pixman(_) => false,
        }
    }

    /// Follows a mode change: new buffers, full redraw.
    pub fn resize(&mut self, state: &State) {
        self.frames.resize(state);
    }

    /// Makes the next frame a full redraw, even if nothing changed (a new stream peer needs
    /// a complete key frame).
    pub fn redraw(&mut self, state: &State) {
        self.frames.redraw(state);
    }

    /// The consumer holds a client buffer that is no longer the client's current one (an
    /// older frame's, or the last one since replaced by a commit): a client that
    /// double-buffers has none free to draw into until it comes back.
    pub fn backlogged(&self, state: &State) -> bool {
        self.frames.loans.lent().iter().any(|b| !direct::is_current(state, b))
    }

    /// Renders the output if anything changed: into the consumer's `surfaces` where the
    /// engine can draw into them, else as `wants` (the consumer's format) where the engine
    /// converts, else BGRX. `None`: nothing changed, or no free buffer.
    pub fn render(&mut self, state: &State, wants: PixelFormat, surfaces: Option<Arc<GpuSurfaces>>) -> Result<Option<Frame>, RenderError> {
        let fits = |s: &GpuSurfaces| (s.width, s.height) == (state.mode.width, state.mode.height);
        let surfaces = surfaces.filter(|s| fits(s) && self.engine.can_draw_into(s));
        let format = if self.engine.converts() { wants } else { PixelFormat::Bgrx8888 };
        let id = |s: &Option<Arc<GpuSurfaces>>| s.as_ref().map(|s| s.id);
        if format != self.frames.format || id(&surfaces) != id(&self.frames.surfaces) {
            // The buffers hold another format, or other buffers are drawn into now: new ones,
            // drawn in full.
            if surfaces.is_none() {
                self.engine.release_surfaces();
            }
            (self.frames.format, self.frames.surfaces) = (format, surfaces);
            self.resize(state);
        }
        let start = Instant::now();
        let frame = match &mut self.engine {
            Engine::Pixman(p) => self.frames.render(p, state, &mut self.stats),
            Engine::Gles(g) => self.frames.render(g.as_mut(), state, &mut self.stats),
        }?;
        let us = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let log = match frame.as_ref().map(|f| &f.pixels) {
            Some(Pixels::Pooled(_) | Pixels::Gpu(_)) => &mut self.stats.frame_us,
            Some(Pixels::Shared(_)) => &mut self.stats.direct_us,
            None => &mut self.stats.idle_us,
        };
        if log.len() < TIMINGS {
            log.push(us);
        }
        Ok(frame)
    }
}
