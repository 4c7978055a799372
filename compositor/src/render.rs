//! CPU rendering: pixman composites the space into pooled frame buffers, damage-tracked, and
//! each finished frame goes to the sink; a lone fullscreen client buffer skips compositing
//! (`direct`).

use crate::state::State;
use punktfunk_streamer::{BufferPool, Frame, PixelFormat, Pixels, Rect};
use smithay::backend::renderer::damage::OutputDamageTracker;
use crate::cursor::Cursors;
use smithay::backend::renderer::element::memory::MemoryRenderBufferRenderElement;
use smithay::backend::renderer::element::surface::{render_elements_from_surface_tree, WaylandSurfaceRenderElement};
use smithay::backend::renderer::element::{render_elements, Kind};
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::Bind;
use crate::state::MappedAt;
use smithay::backend::renderer::element::AsRenderElements;
use smithay::desktop::{layer_map_for_output, LayerSurface};
use smithay::utils::Scale;
use smithay::wayland::shell::wlr_layer::Layer;
use smithay::input::pointer::{CursorImageStatus, CursorImageSurfaceData};
use smithay::reexports::pixman::{FormatCode, Image};
use smithay::wayland::compositor::with_states;
use crate::direct::{self, Loans};
use smithay::reexports::calloop::ping::Ping;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const TIMINGS: usize = 1 << 16;

render_elements! {
    /// What a frame is made of: surfaces (windows of both kinds, layer surfaces, client
    /// cursors) and images (themed cursors).
    pub Overlay<=PixmanRenderer>;
    Surface=WaylandSurfaceRenderElement<PixmanRenderer>,
    Image=MemoryRenderBufferRenderElement<PixmanRenderer>,
}

/// Frame buffers in flight: one being rendered, one waiting in the sink's mailbox, one
/// with the consumer (encoder).
const POOL_BUFFERS: usize = 3;

pub struct Renderer {
    pixman: PixmanRenderer,
    damage: OutputDamageTracker,
    pool: BufferPool,
    /// The frame each pool buffer last held, by buffer address: its age for damage tracking.
    held: HashMap<usize, u64>,
    seq: u64,
    width: u32,
    height: u32,
    /// Frames not rendered because every buffer was still with the consumer.
    pub skipped: u64,
    /// Time spent in `render`, µs: calls that composited a frame, that passed a client's
    /// buffer through, and that found nothing to draw. The first `TIMINGS` of each are kept,
    /// for benchmarks.
    pub frame_us: Vec<u32>,
    pub direct_us: Vec<u32>,
    pub idle_us: Vec<u32>,
    /// Frames that were a client's buffer passed through.
    pub direct_frames: u64,
    pub show_cursor: bool,
    cursors: Cursors,
    /// Whether to pass a client's buffer through when it is the whole frame.
    direct: bool,
    /// Client buffers the consumer holds.
    loans: Arc<Loans>,
    /// The last frame was passed through (pool buffers missed its changes).
    passing: bool,
    /// `State::buffer_commits` when the last client buffer was lent.
    lent_at_commit: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("pixman: {0}")]
    Pixman(String),
}

impl Renderer {
    /// `returned` is pinged whenever the consumer gives a client's buffer back.
    pub fn new(state: &State, show_cursor: bool, direct: bool, returned: Ping) -> Result<Self, RenderError> {
        let (width, height) = (state.mode.width, state.mode.height);
        Ok(Self {
            pixman: PixmanRenderer::new().map_err(|e| RenderError::Pixman(e.to_string()))?,
            damage: OutputDamageTracker::from_output(&state.output),
            pool: BufferPool::new(width as usize * height as usize * 4, POOL_BUFFERS),
            held: HashMap::new(),
            seq: 0,
            width,
            height,
            skipped: 0,
            frame_us: Vec::new(),
            direct_us: Vec::new(),
            idle_us: Vec::new(),
            direct_frames: 0,
            show_cursor,
            cursors: Cursors::new(),
            direct,
            loans: Loans::new(returned),
            passing: false,
            lent_at_commit: 0,
        })
    }

    /// Follows a mode change: new buffers, full redraw.
    pub fn resize(&mut self, state: &State) {
        self.width = state.mode.width;
        self.height = state.mode.height;
        self.damage = OutputDamageTracker::from_output(&state.output);
        self.pool = BufferPool::new(self.width as usize * self.height as usize * 4, POOL_BUFFERS);
        self.held.clear();
        self.passing = false;
    }

    /// The consumer holds a client buffer that is no longer the client's current one (an
    /// older frame's, or the last one since replaced by a commit): a client that
    /// double-buffers has none free to draw into until it comes back.
    pub fn backlogged(&self, state: &State) -> bool {
        match self.loans.out() {
            0 => false,
            1 => state.buffer_commits != self.lent_at_commit,
            _ => true,
        }
    }

    /// Makes the next frame a full redraw, even if nothing changed (a new stream peer needs
    /// a complete key frame).
    pub fn redraw(&mut self, state: &State) {
        self.damage = OutputDamageTracker::from_output(&state.output);
        self.held.clear();
    }

    /// Renders the output if anything changed. `None`: nothing changed, or no free buffer.
    pub fn render(&mut self, state: &State) -> Result<Option<Frame>, RenderError> {
        let start = Instant::now();
        let frame = self.render_inner(state)?;
        let us = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let log = match frame.as_ref().map(|f| &f.pixels) {
            Some(Pixels::Pooled(_)) => &mut self.frame_us,
            Some(Pixels::Shared(_)) => &mut self.direct_us,
            None => &mut self.idle_us,
        };
        if log.len() < TIMINGS {
            log.push(us);
        }
        Ok(frame)
    }

    fn render_inner(&mut self, state: &State) -> Result<Option<Frame>, RenderError> {
        let elements = self.scene(state);
        if self.direct
            && let Some((buffer, stride)) = direct::passthrough(&elements, &mut self.pixman, self.width, self.height, &self.loans)
        {
            let full = [Rect { x: 0, y: 0, width: self.width as i32, height: self.height as i32 }];
            let (changed, _) = self.damage.damage_output(1, &elements).map_err(|e| RenderError::Pixman(format!("{e:?}")))?;
            // Entering the direct path, the consumer's last frame was composited: send it all.
            let damage: Vec<Rect> = match (std::mem::replace(&mut self.passing, true), changed) {
                (false, _) => full.to_vec(),
                (true, Some(d)) => d.iter().map(|r| Rect { x: r.loc.x, y: r.loc.y, width: r.size.w, height: r.size.h }).collect(),
                (true, None) => return Ok(None),
            };
            self.seq += 1;
            self.direct_frames += 1;
            self.lent_at_commit = state.buffer_commits;
            return Ok(Some(Frame { seq: self.seq, width: self.width, height: self.height, stride, format: PixelFormat::Bgrx8888, pixels: Pixels::Shared(Box::new(buffer)), damage, rendered_at: Instant::now() }));
        }
        if std::mem::take(&mut self.passing) {
            self.held.clear(); // the pool buffers missed what was passed through: redraw fully
        }
        let Some(mut buffer) = self.pool.take() else {
            self.skipped += 1;
            return Ok(None);
        };
        let key = buffer.as_slice().as_ptr() as usize;
        // Age 0 forces a full redraw; otherwise how many frames ago this buffer was drawn.
        let age = self.held.get(&key).map_or(0, |&s| (self.seq + 1 - s) as usize);
        let stride = self.width as usize * 4;
        let ptr = buffer.as_mut_slice().as_mut_ptr();
        if ptr.align_offset(4) != 0 {
            return Err(RenderError::Pixman("frame buffer is not 4-byte aligned".into()));
        }
        // SAFETY: `buffer` is `stride * height` bytes, 4-byte aligned, and outlives `image`,
        // which is dropped at the end of this block before the buffer is handed on.
        let damage = unsafe {
            let mut image = Image::from_raw_mut(FormatCode::X8R8G8B8, self.width as usize, self.height as usize, ptr.cast(), stride, false)
                .map_err(|_| RenderError::Pixman("cannot wrap frame buffer".into()))?;
            let mut target = self.pixman.bind(&mut image).map_err(|e| RenderError::Pixman(e.to_string()))?;
            let result = self.damage.render_output(&mut self.pixman, &mut target, age, &elements, [0.0, 0.0, 0.0, 1.0]).map_err(|e| RenderError::Pixman(format!("{e:?}")))?;
            result.damage.cloned()
        };
        let Some(damage) = damage.filter(|d| !d.is_empty()) else {
            return Ok(None); // nothing changed: the buffer goes back untouched
        };
        self.seq += 1;
        self.held.insert(key, self.seq);
        Ok(Some(Frame {
            seq: self.seq,
            width: self.width,
            height: self.height,
            stride,
            format: PixelFormat::Bgrx8888,
            pixels: buffer.into(),
            damage: damage.iter().map(|r| Rect { x: r.loc.x, y: r.loc.y, width: r.size.w, height: r.size.h }).collect(),
            rendered_at: Instant::now(),
        }))
    }

    /// Everything on the output, topmost first: the cursor, top and overlay layer surfaces,
    /// the windows — Wayland and X11 in one stacking order (`State::next_stacking`: the newest
    /// or last activated on top) — then bottom and background layers.
    fn scene(&mut self, state: &State) -> Vec<Overlay> {
        let mut elements = if self.show_cursor { self.cursor_elements(state) } else { Vec::new() };
        let layers = layer_map_for_output(&state.output);
        let layer = |pixman: &mut PixmanRenderer, surface: &LayerSurface| -> Vec<Overlay> {
            let Some(geometry) = layers.layer_geometry(surface) else { return Vec::new() };
            AsRenderElements::<PixmanRenderer>::render_elements::<WaylandSurfaceRenderElement<PixmanRenderer>>(surface, pixman, geometry.loc.to_physical(1), Scale::from(1.0), 1.0)
                .into_iter()
                .map(Overlay::Surface)
                .collect()
        };
        let (lower, upper): (Vec<&LayerSurface>, Vec<&LayerSurface>) = layers.layers().rev().partition(|s| matches!(s.layer(), Layer::Background | Layer::Bottom));
        for surface in upper {
            elements.extend(layer(&mut self.pixman, surface));
        }

        let mut windows: Vec<(u64, Vec<Overlay>)> = Vec::new();
        for w in state.space.elements() {
            let (Some(at), Some(loc)) = (w.user_data().get::<MappedAt>(), state.space.element_location(w)) else { continue };
            let loc = (loc - w.geometry().loc).to_physical(1);
            let drawn = AsRenderElements::<PixmanRenderer>::render_elements::<WaylandSurfaceRenderElement<PixmanRenderer>>(w, &mut self.pixman, loc, Scale::from(1.0), 1.0);
            windows.push((at.0.get(), drawn.into_iter().map(Overlay::Surface).collect()));
        }
        for (wl, loc, w) in state.xwayland.visible() {
            let drawn = render_elements_from_surface_tree(&mut self.pixman, wl, loc.to_physical(1), 1.0, 1.0, Kind::Unspecified);
            windows.push((w.mapped_at, drawn.into_iter().map(Overlay::Surface).collect()));
        }
        windows.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        elements.extend(windows.into_iter().flat_map(|(_, e)| e));

        for surface in lower {
            elements.extend(layer(&mut self.pixman, surface));
        }
        elements
    }

    /// The cursor at the pointer: the client's surface, or the themed image it named.
    fn cursor_elements(&mut self, state: &State) -> Vec<Overlay> {
        let Some(pointer) = state.seat.get_pointer() else { return Vec::new() };
        let at = pointer.current_location();
        match &state.cursor {
            CursorImageStatus::Hidden => Vec::new(),
            CursorImageStatus::Surface(surface) => {
                let hotspot = with_states(surface, |s| {
                    s.data_map.get::<CursorImageSurfaceData>().map(|d| d.lock().expect("cursor data").hotspot).unwrap_or_default()
                });
                let loc = (at - hotspot.to_f64()).to_physical(1.0).to_i32_round();
                render_elements_from_surface_tree(&mut self.pixman, surface, loc, 1.0, 1.0, Kind::Cursor).into_iter().map(Overlay::Surface).collect()
            }
            CursorImageStatus::Named(icon) => {
                let image = self.cursors.image(*icon);
                let loc = (at - image.hotspot.to_f64()).to_physical(1.0);
                match MemoryRenderBufferRenderElement::from_buffer(&mut self.pixman, loc, &image.buffer, None, None, None, Kind::Cursor) {
                    Ok(e) => vec![Overlay::Image(e)],
                    Err(e) => {
                        tracing::warn!("cursor image: {e}");
                        Vec::new()
                    }
                }
            }
        }
    }
}
