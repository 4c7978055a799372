//! Which engine composites (pixman on the CPU, GLES on a GPU), as asked for and as found,
//! and what each engine does its own way ([`Compose`]).

use super::gles;
use super::{Overlay, RenderError};
use punktfunk_frame::PixelFormat;
use punktfunk_frame::gpu::{GpuLoan, GpuSurfaces};
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::{ImportAll, ImportMem, Renderer as RendererTrait};
use smithay::utils::{Physical, Rectangle};
use smithay::wayland::dmabuf::DmabufFeedback;
use std::path::Path;

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

    /// The GPU `renderer = auto` renders on (at DRM node `gpu` if one is named), in words
    /// with how frames become YUV; why none, where none opens. For `punktfunk doctor`.
    pub fn probe_gpu(gpu: Option<&Path>) -> Result<String, RenderError> {
        gles::Gles::open(false, ConvertChoice::Auto, gpu).map(|g| format!("GLES on {}{}", g.device, converting(&g)))
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
pub(super) trait Compose {
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
