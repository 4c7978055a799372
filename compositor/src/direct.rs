//! The direct path (ARCHITECTURE.md §3): when the whole frame is one client's shm buffer, exactly
//! the output's size, unscaled and untransformed, that buffer is the frame. Nothing is
//! composited or copied: the encoder reads the client's memory, and the client gets its
//! buffer back when the encoder is done with the frame.
//!
//! Alpha does not stop it: wl_shm's ARGB is premultiplied, so compositing it over the
//! output's opaque black background gives exactly its colour bytes, which is what the
//! encoder reads from it anyway.

use crate::render::Overlay;
use crate::state::State;
use parking_lot::Mutex;
use punktfunk_frame::SharedPixels;
use smithay::backend::renderer::element::{Element, RenderElement, UnderlyingStorage};
use smithay::backend::renderer::utils::{Buffer, RendererSurfaceStateUserData};
use smithay::backend::renderer::{ImportAll, ImportMem, Renderer, Texture};
use smithay::desktop::layer_map_for_output;
use smithay::reexports::calloop::ping::Ping;
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_shm;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Buffer as BufferCoords, Physical, Rectangle, Scale, Transform};
use smithay::wayland::compositor::{SurfaceData, TraversalAction, with_surface_tree_downward};
use smithay::wayland::shm::with_buffer_contents;
use std::sync::Arc;

/// A client's buffer on loan to the frame consumer.
#[derive(Debug)]
pub struct ClientBuffer {
    /// `None` once given back.
    buffer: Option<Buffer>,
    loans: Arc<Loans>,
}

/// The client buffers the consumer holds, and who to wake when one comes back.
#[derive(Debug)]
pub struct Loans {
    lent: Mutex<Vec<WlBuffer>>,
    returned: Ping,
}

impl Loans {
    pub fn new(returned: Ping) -> Arc<Self> {
        Arc::new(Self { lent: Mutex::new(Vec::new()), returned })
    }

    pub fn lent(&self) -> Vec<WlBuffer> {
        self.lent.lock().clone()
    }
}

impl ClientBuffer {
    pub fn lend(buffer: Buffer, loans: &Arc<Loans>) -> Self {
        loans.lent.lock().push(WlBuffer::clone(&buffer));
        Self { buffer: Some(buffer), loans: Arc::clone(loans) }
    }
}

impl Drop for ClientBuffer {
    fn drop(&mut self) {
        // Dropping the clone queues wl_buffer.release (smithay sends it when the last clone
        // goes) before the loan ends: a client must never see a frame callback that the
        // loan's end let through before the release it was waiting for.
        let Some(buffer) = self.buffer.take() else { return };
        let wl = WlBuffer::clone(&buffer);
        drop(buffer);
        let mut lent = self.loans.lent.lock();
        if let Some(i) = lent.iter().position(|b| *b == wl) {
            lent.swap_remove(i);
        }
        drop(lent);
        self.loans.returned.ping();
    }
}

/// Whether `buffer` is still some surface's current buffer: a client cannot draw into it
/// anyway, so the consumer holding it takes nothing from the client.
pub fn is_current(state: &State, buffer: &WlBuffer) -> bool {
    let mut found = false;
    let mut check = |_: &WlSurface, states: &SurfaceData| {
        found |= states
            .data_map
            .get::<RendererSurfaceStateUserData>()
            .is_some_and(|s| s.lock().expect("surface state").buffer().is_some_and(|b| *b == *buffer));
    };
    for w in state.space.elements() {
        w.with_surfaces(&mut check);
    }
    for layer in layer_map_for_output(&state.output).layers() {
        layer.with_surfaces(&mut check);
    }
    for (wl, _, _) in state.xwayland.visible() {
        with_surface_tree_downward(wl, (), |_, _, _| TraversalAction::DoChildren(()), |s, states, _| check(s, states), |_, _, _| true);
    }
    found
}

impl SharedPixels for ClientBuffer {
    fn read(&self, f: &mut dyn FnMut(&[u8])) {
        // smithay holds the pool's map locked for the call and turns a client's truncated
        // file (SIGBUS) into an error.
        let Some(buffer) = &self.buffer else { return };
        let _ = with_buffer_contents(buffer, |ptr, len, data| {
            let start = usize::try_from(data.offset).unwrap_or(usize::MAX);
            let size = data.stride as usize * data.height as usize;
            if start.checked_add(size).is_some_and(|end| end <= len) {
                // SAFETY: smithay checked the buffer lies within the pool when it was created,
                // and checked again here; the map stays valid while this closure runs.
                f(unsafe { std::slice::from_raw_parts(ptr.add(start), size) });
            }
        });
    }
}

/// The buffer to pass through and its stride, if the topmost of `elements` is a surface
/// whose XRGB/ARGB shm buffer covers the `width`×`height` output one to one, and nothing
/// else shows: it is the only element, or it is opaque and hides the rest.
pub fn passthrough<R>(elements: &[Overlay<R>], renderer: &mut R, width: u32, height: u32) -> Option<(Buffer, usize)>
where
    R: Renderer + ImportAll + ImportMem,
    R::TextureId: Clone + Texture + Send + 'static,
{
    let Some(Overlay::Surface(top)) = elements.first() else { return None };
    let output = Rectangle::<i32, Physical>::from_size((width as i32, height as i32).into());
    let one_to_one = top.geometry(Scale::from(1.0)) == output
        && top.src() == Rectangle::<f64, BufferCoords>::from_size((f64::from(width), f64::from(height)).into())
        && top.transform() == Transform::Normal
        && top.alpha() == 1.0;
    if !one_to_one {
        return None;
    }
    let Some(UnderlyingStorage::Wayland(buffer)) = top.underlying_storage(renderer) else { return None };
    let (stride, format) = with_buffer_contents(buffer, |_, _, data| {
        ((data.width, data.height) == (width as i32, height as i32)).then_some((data.stride as usize, data.format))
    })
    .ok()??;
    let hides_the_rest = format == wl_shm::Format::Xrgb8888 || top.opaque_regions(Scale::from(1.0)).iter().any(|r| r.contains_rect(output));
    let shows_alone = elements.len() == 1 || hides_the_rest;
    (matches!(format, wl_shm::Format::Xrgb8888 | wl_shm::Format::Argb8888) && shows_alone).then(|| (buffer.clone(), stride))
}
