//! Rendering the output: the scene composited into pooled frame buffers, damage-tracked, by
//! an engine chosen at start (pixman on the CPU, GLES on a GPU); a lone fullscreen client
//! buffer skips compositing (`crate::direct`). Each finished frame goes to the sink.

mod egl_display;
mod gles;
mod pixman;
mod scene;
mod surfaces;
mod to_yuv;

pub use scene::Overlay;

use crate::cursor::Cursors;
use crate::direct::{self, ClientBuffer, Loans};
use crate::state::State;
use punktfunk_frame::gpu::{GpuLoan, GpuSurfaces};
use punktfunk_frame::layout::Layout;
use punktfunk_frame::{BufferPool, Frame, PixelFormat, Pixels, Rect};
use scene::scene;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::element::{Element, Id};
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::utils::CommitCounter;
use smithay::backend::renderer::{ImportAll, ImportMem, Renderer as RendererTrait, RendererSuper, Texture};
use smithay::reexports::calloop::ping::Ping;
use smithay::utils::{Physical, Rectangle, Scale};
use smithay::wayland::dmabuf::DmabufFeedback;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const TIMINGS: usize = 1 << 16;

/// Frame buffers in flight: one being rendered, one waiting in the sink's mailbox, one
/// with the consumer (encoder).
const POOL_BUFFERS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("pixman: {0}")]
    Pixman(String),
    #[error("GLES: {0}")]
    Gles(String),
    #[error("damage tracking: {0}")]
    Damage(String),
}

/// Which engine composites, as asked for (`--renderer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineChoice {
    /// GLES on a GPU's render node when there is one, pixman otherwise.
    #[default]
    Auto,
    Pixman,
    /// GLES on a GPU, or on Mesa's software device (llvmpipe) where there is none.
    Gles,
}

impl std::str::FromStr for EngineChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "pixman" => Ok(Self::Pixman),
            "gles" => Ok(Self::Gles),
            _ => Err(format!("unknown renderer {s:?}: auto, pixman or gles")),
        }
    }
}

/// Where frames become the encoder's YUV (`--convert`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvertChoice {
    /// On the GPU when GLES renders on one; on the CPU (the encoder's converter) otherwise.
    #[default]
    Auto,
    /// In GLES, even on Mesa's software device.
    Gpu,
    Cpu,
}

impl std::str::FromStr for ConvertChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(format!("unknown conversion {s:?}: auto, gpu or cpu")),
        }
    }
}

/// The compositing engine.
pub enum Engine {
    Pixman(PixmanRenderer),
    Gles(Box<gles::Gles>),
}

impl Engine {
    /// Opens the engine `choice` asks for, on the GPU at DRM node `gpu` if one is named,
    /// converting frames where `convert` says, and says in one line what it found and why.
    pub fn open(choice: EngineChoice, convert: ConvertChoice, gpu: Option<&Path>) -> Result<Self, RenderError> {
        let pixman = |why: &str| {
            tracing::info!("renderer: pixman (CPU): {why}");
            PixmanRenderer::new().map(Self::Pixman).map_err(|e| RenderError::Pixman(e.to_string()))
        };
        match choice {
            EngineChoice::Pixman => pixman("asked for"),
            EngineChoice::Auto => match gles::Gles::open(false, convert, gpu) {
                Ok(g) => {
                    tracing::info!("renderer: GLES on {} (a GPU was found){}", g.device, converting(&g));
                    Ok(Self::Gles(Box::new(g)))
                }
                Err(e) => pixman(&format!("no GPU to render on ({e})")),
            },
            EngineChoice::Gles => {
                let g = gles::Gles::open(true, convert, gpu)?;
                tracing::info!("renderer: GLES on {} (asked for){}", g.device, converting(&g));
                Ok(Self::Gles(Box::new(g)))
            }
        }
    }

    /// linux-dmabuf's feedback, where the engine can take clients' dmabufs.
    pub fn dmabuf_feedback(&self) -> Option<DmabufFeedback> {
        match self {
            Self::Gles(g) => g.dmabuf_feedback(),
            Self::Pixman(_) => None,
        }
    }

    /// Whether frames leave the engine converted to the encoder's YUV.
    pub fn converts(&self) -> bool {
        matches!(self, Self::Gles(g) if g.converts())
    }

    /// Lets go of surfaces imported to draw into (their encoder is gone).
    pub fn release_surfaces(&mut self) {
        if let Self::Gles(g) = self {
            g.release_surfaces();
        }
    }

    /// Whether frames can be drawn straight into the encoder's `surfaces`.
    pub fn can_draw_into(&mut self, surfaces: &GpuSurfaces) -> bool {
        match self {
            Self::Gles(g) => g.can_draw_into(surfaces),
            Self::Pixman(_) => false,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Pixman(_) => "pixman",
            Self::Gles(_) => "gles",
        }
    }
}

fn converting(g: &gles::Gles) -> &'static str {
    if g.converts() { ", converting frames to YUV on it" } else { "" }
}

/// What an engine does its own way: composite into a pool buffer.
trait Compose {
    type R: RendererTrait + ImportAll + ImportMem;

    fn renderer(&mut self) -> &mut Self::R;

    /// Draws `elements` into `out` (the output's `width`×`height` in `format`: BGRX rows of
    /// `width * 4` bytes, or YUV planes where the engine converts), which holds what was
    /// drawn into it `age` frames ago (0: nothing usable); `slot` names the pool buffer, for
    /// engines that keep something per buffer. Returns what was drawn (at least what changed
    /// since the last frame), `None` if nothing changed (`out` is then untouched).
    #[allow(clippy::too_many_arguments)]
    fn compose(
        &mut self,
        tracker: &mut OutputDamageTracker,
        age: usize,
        slot: usize,
        elements: &[Overlay<Self::R>],
        out: &mut [u8],
        width: u32,
        height: u32,
        format: PixelFormat,
    ) -> Result<Option<Vec<Rectangle<i32, Physical>>>, RenderError>;

    /// The same into the encoder's surface `loan` (an engine that can: see
    /// [`Engine::can_draw_into`]).
    fn compose_into(
        &mut self,
        _tracker: &mut OutputDamageTracker,
        _age: usize,
        _slot: usize,
        _elements: &[Overlay<Self::R>],
        _loan: &GpuLoan,
    ) -> Result<Option<Vec<Rectangle<i32, Physical>>>, RenderError> {
        Err(RenderError::Pixman("pixman cannot draw into GPU surfaces".into()))
    }
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

/// Everything about frames that is the same whichever engine draws them.
struct Frames {
    damage: OutputDamageTracker,
    pool: BufferPool,
    /// What the pool's buffers hold: BGRX, or the YUV the consumer asked for.
    format: PixelFormat,
    /// The consumer's surfaces frames are drawn into instead, where the engine can.
    surfaces: Option<Arc<GpuSurfaces>>,
    /// The frame each pool buffer last held, by buffer address: its age for damage tracking.
    held: HashMap<usize, u64>,
    seq: u64,
    width: u32,
    height: u32,
    show_cursor: bool,
    cursors: Cursors,
    /// Whether to pass a client's buffer through when it is the whole frame.
    direct: bool,
    /// Client buffers the consumer holds.
    loans: Arc<Loans>,
    /// The last frame was passed through (pool buffers missed its changes).
    passing: bool,
    /// The scene the last frame showed; `None`: the next frame is due whatever it shows.
    shown: Option<SceneKey>,
}

/// What tells one scene from another: each element, its content's version, where it is and
/// how opaque, in stacking order. A frame is due only when this changes (a pool buffer
/// several frames old always has something to catch up on, which is no reason for a frame).
type SceneKey = Vec<(Id, CommitCounter, Rectangle<i32, Physical>, u32)>;

fn scene_key<E: Element>(elements: &[E]) -> SceneKey {
    elements.iter().map(|e| (e.id().clone(), e.current_commit(), e.geometry(Scale::from(1.0)), e.alpha().to_bits())).collect()
}

impl Renderer {
    /// `returned` is pinged whenever the consumer gives a client's buffer back.
    pub fn new(state: &State, engine: Engine, show_cursor: bool, direct: bool, returned: Ping) -> Self {
        let (width, height) = (state.mode.width, state.mode.height);
        let frames = Frames {
            damage: OutputDamageTracker::from_output(&state.output),
            pool: BufferPool::new(PixelFormat::Bgrx8888.frame_len(width, height), POOL_BUFFERS),
            format: PixelFormat::Bgrx8888,
            surfaces: None,
            held: HashMap::new(),
            seq: 0,
            width,
            height,
            show_cursor,
            cursors: Cursors::new(),
            direct,
            loans: Loans::new(returned),
            passing: false,
            shown: None,
        };
        Self { engine, frames, stats: Stats::default() }
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
        let f = &mut self.frames;
        (f.width, f.height) = (state.mode.width, state.mode.height);
        f.pool = BufferPool::new(f.format.frame_len(f.width, f.height), POOL_BUFFERS);
        f.passing = false;
        self.redraw(state);
    }

    /// Makes the next frame a full redraw, even if nothing changed (a new stream peer needs
    /// a complete key frame).
    pub fn redraw(&mut self, state: &State) {
        self.frames.damage = OutputDamageTracker::from_output(&state.output);
        self.frames.held.clear();
        self.frames.shown = None;
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

fn rect(r: &Rectangle<i32, Physical>) -> Rect {
    Rect { x: r.loc.x, y: r.loc.y, width: r.size.w, height: r.size.h }
}

impl Frames {
    fn render<C: Compose>(&mut self, engine: &mut C, state: &State, stats: &mut Stats) -> Result<Option<Frame>, RenderError>
    where
        <C::R as RendererSuper>::TextureId: Clone + Texture + Send + 'static,
    {
        let elements = scene(engine.renderer(), state, self.show_cursor.then_some(&mut self.cursors));
        let key = scene_key(&elements);
        if self.shown.as_ref() == Some(&key) {
            return Ok(None);
        }
        if self.direct
            && let Some((buffer, stride)) = direct::passthrough(&elements, engine.renderer(), self.width, self.height)
        {
            let full = Rect { x: 0, y: 0, width: self.width as i32, height: self.height as i32 };
            let (changed, _) = self.damage.damage_output(1, &elements).map_err(|e| RenderError::Damage(format!("{e:?}")))?;
            self.shown = Some(key);
            // Entering the direct path, the consumer's last frame was composited: send it all.
            let damage: Vec<Rect> = match (std::mem::replace(&mut self.passing, true), changed) {
                (false, _) => vec![full],
                (true, Some(d)) => d.iter().map(rect).collect(),
                (true, None) => return Ok(None),
            };
            self.seq += 1;
            stats.direct_frames += 1;
            let pixels = Pixels::Shared(Box::new(ClientBuffer::lend(buffer, &self.loans)));
            return Ok(Some(Frame {
                seq: self.seq,
                width: self.width,
                height: self.height,
                stride,
                format: PixelFormat::Bgrx8888,
                pixels,
                damage,
                rendered_at: Instant::now(),
                committed_at: Instant::now(),
            }));
        }
        if std::mem::take(&mut self.passing) {
            // What was passed through is in no buffer the engine drew: start afresh.
            self.start_afresh(state);
        }
        if let Some(surfaces) = self.surfaces.clone() {
            return self.render_into(engine, state, stats, elements, key, &surfaces);
        }
        let Some(mut buffer) = self.pool.take() else {
            stats.skipped += 1;
            return Ok(None);
        };
        let slot = buffer.as_slice().as_ptr() as usize;
        // Age 0 forces a full redraw; otherwise how many frames ago this buffer was drawn.
        let age = self.held.get(&slot).map_or(0, |&s| (self.seq + 1 - s) as usize);
        let format = self.format;
        let composed = engine
            .compose(&mut self.damage, age, slot, &elements, buffer.as_mut_slice(), self.width, self.height, format)
            .inspect_err(|_| self.start_afresh(state))?;
        self.shown = Some(key);
        let Some(damage) = composed else {
            return Ok(None); // nothing visible changed: the buffer goes back untouched
        };
        self.seq += 1;
        self.held.insert(slot, self.seq);
        if format != PixelFormat::Bgrx8888 {
            stats.converted_frames += 1;
        }
        Ok(Some(Frame {
            seq: self.seq,
            width: self.width,
            height: self.height,
            stride: format.stride(self.width, self.height),
            format,
            pixels: buffer.into(),
            damage: damage.iter().map(rect).collect(),
            rendered_at: Instant::now(),
            committed_at: Instant::now(),
        }))
    }
}

impl Frames {
    /// Forgets what every buffer holds (after a frame the consumer never gets, or frames no
    /// buffer drew): the next frame is drawn in full.
    fn start_afresh(&mut self, state: &State) {
        self.damage = OutputDamageTracker::from_output(&state.output);
        self.held.clear();
    }

    /// Draws the frame straight into a free surface of the consumer's.
    fn render_into<C: Compose>(
        &mut self,
        engine: &mut C,
        state: &State,
        stats: &mut Stats,
        elements: Vec<Overlay<C::R>>,
        key: SceneKey,
        surfaces: &Arc<GpuSurfaces>,
    ) -> Result<Option<Frame>, RenderError> {
        let Some(loan) = surfaces.take() else {
            stats.skipped += 1;
            return Ok(None);
        };
        // Slots of surfaces, apart from pool buffers' (their addresses).
        let slot = usize::MAX - loan.index();
        let age = self.held.get(&slot).map_or(0, |&s| (self.seq + 1 - s) as usize);
        let composed = engine.compose_into(&mut self.damage, age, slot, &elements, &loan).inspect_err(|_| self.start_afresh(state))?;
        self.shown = Some(key);
        let Some(damage) = composed else { return Ok(None) };
        self.seq += 1;
        self.held.insert(slot, self.seq);
        stats.converted_frames += 1;
        stats.zero_copy_frames += 1;
        let format = PixelFormat::Yuv { layout: Layout::Nv12, colour: surfaces.colour };
        let damage = damage.iter().map(rect).collect();
        Ok(Some(Frame {
            seq: self.seq,
            width: self.width,
            height: self.height,
            stride: 0,
            format,
            pixels: Pixels::Gpu(loan),
            damage,
            rendered_at: Instant::now(),
            committed_at: Instant::now(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{ConvertChoice, EngineChoice};

    #[test]
    fn renderer_names_parse_and_others_are_refused() {
        assert_eq!("auto".parse(), Ok(EngineChoice::Auto));
        assert_eq!("pixman".parse(), Ok(EngineChoice::Pixman));
        assert_eq!("gles".parse(), Ok(EngineChoice::Gles));
        assert!("vulkan".parse::<EngineChoice>().unwrap_err().contains("auto, pixman or gles"));
        assert_eq!("gpu".parse(), Ok(ConvertChoice::Gpu));
        assert_eq!("cpu".parse(), Ok(ConvertChoice::Cpu));
        assert!("fpga".parse::<ConvertChoice>().unwrap_err().contains("auto, gpu or cpu"));
    }
}
