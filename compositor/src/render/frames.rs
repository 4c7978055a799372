//! Everything about frames that is the same whichever engine draws them: the pool of
//! buffers and what each holds, damage, the scene last shown, the direct path's loans.

use super::scene::scene;
use super::{Compose, Overlay, RenderError, Stats};
use crate::cursor::Cursors;
use crate::direct::{self, ClientBuffer, Loans};
use crate::state::State;
use punktfunk_frame::gpu::GpuSurfaces;
use punktfunk_frame::layout::Layout;
use punktfunk_frame::{BufferPool, Frame, PixelFormat, Pixels, Rect};
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::element::{Element, Id};
use smithay::backend::renderer::utils::CommitCounter;
use smithay::backend::renderer::{RendererSuper, Texture};
use smithay::reexports::calloop::ping::Ping;
use smithay::utils::{Physical, Rectangle, Scale};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Frame buffers in flight: one being rendered, one waiting in the sink's mailbox, one
/// with the consumer (encoder).
pub(super) const POOL_BUFFERS: usize = 3;

/// Everything about frames that is the same whichever engine draws them.
pub(super) struct Frames {
    pub(super) damage: OutputDamageTracker,
    pub(super) pool: BufferPool,
    /// What the pool's buffers hold: BGRX, or the YUV the consumer asked for.
    pub(super) format: PixelFormat,
    /// The consumer's surfaces frames are drawn into instead, where the engine can.
    pub(super) surfaces: Option<Arc<GpuSurfaces>>,
    /// The frame each pool buffer last held, by buffer address: its age for damage tracking.
    pub(super) held: HashMap<usize, u64>,
    pub(super) seq: u64,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) show_cursor: bool,
    pub(super) cursors: Cursors,
    /// Whether to pass a client's buffer through when it is the whole frame.
    pub(super) direct: bool,
    /// Client buffers the consumer holds.
    pub(super) loans: Arc<Loans>,
    /// The last frame was passed through (pool buffers missed its changes).
    pub(super) passing: bool,
    /// The scene the last frame showed; `None`: the next frame is due whatever it shows.
    pub(super) shown: Option<SceneKey>,
}

/// What tells one scene from another: each element, its content's version, where it is and
/// how opaque, in stacking order. A frame is due only when this changes (a pool buffer
/// several frames old always has something to catch up on, which is no reason for a frame).
type SceneKey = Vec<(Id, CommitCounter, Rectangle<i32, Physical>, u32)>;

fn scene_key<E: Element>(elements: &[E]) -> SceneKey {
    elements.iter().map(|e| (e.id().clone(), e.current_commit(), e.geometry(Scale::from(1.0)), e.alpha().to_bits())).collect()
}

fn rect(r: &Rectangle<i32, Physical>) -> Rect {
    Rect { x: r.loc.x, y: r.loc.y, width: r.size.w, height: r.size.h }
}

impl Frames {
    pub fn new(state: &State, show_cursor: bool, direct: bool, returned: Ping) -> Self {
        let (width, height) = (state.mode.width, state.mode.height);
        Self {
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
        }
    }

    pub(super) fn render<C: Compose>(&mut self, engine: &mut C, state: &State, stats: &mut Stats) -> Result<Option<Frame>, RenderError>
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
                render_started_at: Instant::now(),
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
            render_started_at: Instant::now(),
            rendered_at: Instant::now(),
            committed_at: Instant::now(),
        }))
    }

    /// New buffers at the output's size, drawn in full.
    pub(super) fn resize(&mut self, state: &State) {
        (self.width, self.height) = (state.mode.width, state.mode.height);
        self.pool = BufferPool::new(self.format.frame_len(self.width, self.height), POOL_BUFFERS);
        self.passing = false;
        self.redraw(state);
    }

    /// The next frame is drawn in full and sent even if the scene did not change.
    pub(super) fn redraw(&mut self, state: &State) {
        self.start_afresh(state);
        self.shown = None;
    }

    /// Forgets what every buffer holds (after a frame the consumer never gets, or frames no
    /// buffer drew): the next frame is drawn in full.
    pub(super) fn start_afresh(&mut self, state: &State) {
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
            render_started_at: Instant::now(),
            rendered_at: Instant::now(),
            committed_at: Instant::now(),
        }))
    }
}
