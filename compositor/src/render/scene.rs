//! What a frame is made of, topmost first, for whichever renderer draws it.

use crate::cursor::Cursors;
use crate::state::{MappedAt, State};
use smithay::backend::renderer::element::memory::MemoryRenderBufferRenderElement;
use smithay::backend::renderer::element::surface::{WaylandSurfaceRenderElement, render_elements_from_surface_tree};
use smithay::backend::renderer::element::{AsRenderElements, Kind, render_elements};
use smithay::backend::renderer::{ImportAll, ImportMem, Renderer, Texture};
use smithay::desktop::{LayerSurface, layer_map_for_output};
use smithay::input::pointer::{CursorImageStatus, CursorImageSurfaceData};
use smithay::utils::Scale;
use smithay::wayland::compositor::with_states;
use smithay::wayland::shell::wlr_layer::Layer;

render_elements! {
    /// What a frame is made of: surfaces (windows of both kinds, layer surfaces, client
    /// cursors) and images (themed cursors).
    pub Overlay<R> where R: ImportAll + ImportMem;
    Surface=WaylandSurfaceRenderElement<R>,
    Image=MemoryRenderBufferRenderElement<R>,
}

/// Everything on the output, topmost first: the cursor (unless hidden), top and overlay
/// layer surfaces, the windows — Wayland and X11 in one stacking order
/// (`State::next_stacking`: the newest or last activated on top) — then bottom and
/// background layers.
pub fn scene<R>(renderer: &mut R, state: &State, cursor: Option<&mut Cursors>) -> Vec<Overlay<R>>
where
    R: Renderer + ImportAll + ImportMem,
    R::TextureId: Clone + Texture + Send + 'static,
{
    let mut elements = cursor.map_or_else(Vec::new, |c| cursor_elements(renderer, state, c));
    let layers = layer_map_for_output(&state.output);
    let layer = |renderer: &mut R, surface: &LayerSurface| -> Vec<Overlay<R>> {
        let Some(geometry) = layers.layer_geometry(surface) else { return Vec::new() };
        AsRenderElements::<R>::render_elements::<WaylandSurfaceRenderElement<R>>(
            surface,
            renderer,
            geometry.loc.to_physical(1),
            Scale::from(1.0),
            1.0,
        )
        .into_iter()
        .map(Overlay::Surface)
        .collect()
    };
    let (lower, upper): (Vec<&LayerSurface>, Vec<&LayerSurface>) =
        layers.layers().rev().partition(|s| matches!(s.layer(), Layer::Background | Layer::Bottom));
    for surface in upper {
        elements.extend(layer(renderer, surface));
    }

    let mut windows: Vec<(u64, Vec<Overlay<R>>)> = Vec::new();
    for w in state.space.elements() {
        let (Some(at), Some(loc)) = (w.user_data().get::<MappedAt>(), state.space.element_location(w)) else { continue };
        let loc = (loc - w.geometry().loc).to_physical(1);
        let drawn = AsRenderElements::<R>::render_elements::<WaylandSurfaceRenderElement<R>>(w, renderer, loc, Scale::from(1.0), 1.0);
        windows.push((at.0.get(), drawn.into_iter().map(Overlay::Surface).collect()));
    }
    for (wl, loc, w) in state.xwayland.visible() {
        let drawn = render_elements_from_surface_tree(renderer, wl, loc.to_physical(1), 1.0, 1.0, Kind::Unspecified);
        windows.push((w.mapped_at, drawn.into_iter().map(Overlay::Surface).collect()));
    }
    windows.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    elements.extend(windows.into_iter().flat_map(|(_, e)| e));

    for surface in lower {
        elements.extend(layer(renderer, surface));
    }
    elements
}

/// The cursor at the pointer: the client's surface, or the themed image it named.
fn cursor_elements<R>(renderer: &mut R, state: &State, cursors: &mut Cursors) -> Vec<Overlay<R>>
where
    R: Renderer + ImportAll + ImportMem,
    R::TextureId: Clone + Texture + Send + 'static,
{
    let Some(pointer) = state.seat.get_pointer() else { return Vec::new() };
    let at = pointer.current_location();
    match &state.cursor {
        CursorImageStatus::Hidden => Vec::new(),
        CursorImageStatus::Surface(surface) => {
            let hotspot = with_states(surface, |s| {
                s.data_map.get::<CursorImageSurfaceData>().map(|d| d.lock().expect("cursor data").hotspot).unwrap_or_default()
            });
            let loc = (at - hotspot.to_f64()).to_physical(1.0).to_i32_round();
            render_elements_from_surface_tree(renderer, surface, loc, 1.0, 1.0, Kind::Cursor).into_iter().map(Overlay::Surface).collect()
        }
        CursorImageStatus::Named(icon) => {
            let image = cursors.image(*icon);
            let loc = (at - image.hotspot.to_f64()).to_physical(1.0);
            match MemoryRenderBufferRenderElement::from_buffer(renderer, loc, &image.buffer, None, None, None, Kind::Cursor) {
                Ok(e) => vec![Overlay::Image(e)],
                Err(e) => {
                    tracing::warn!("cursor image: {e}");
                    Vec::new()
                }
            }
        }
    }
}
