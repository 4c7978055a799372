//! The GPU engine: GLES on an EGL device. It composites into renderbuffers on the GPU and
//! reads what changed back into the pool buffer for the CPU encoders. It is what GPU clients
//! need (their dmabufs are imported, not copied through the CPU); handing the GPU buffer to
//! NVENC/VAAPI without the read-back is the zero-copy step still to come.

use super::{Compose, Overlay, RenderError};
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::Fourcc;
use smithay::backend::egl::{EGLContext, EGLDevice, EGLDisplay};
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::gles::{GlesRenderbuffer, GlesRenderer};
use smithay::backend::renderer::{Bind, ExportMem, ImportDma, Offscreen};
use smithay::utils::{Buffer as BufferCoords, Physical, Rectangle, Size, Transform};
use smithay::wayland::dmabuf::{DmabufFeedback, DmabufFeedbackBuilder};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

pub struct Gles {
    renderer: GlesRenderer,
    /// Where frames are drawn: one target per pool buffer (by its slot), each holding the
    /// same frame as its buffer, so only what changed since is drawn and read back.
    targets: HashMap<usize, (GlesRenderbuffer, Size<i32, BufferCoords>)>,
    /// The device, in words, for the log.
    pub device: String,
    /// A GPU's render node (none on the software device).
    node: Option<PathBuf>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> RenderError {
    RenderError::Gles(format!("{what}: {e}"))
}

impl Gles {
    /// GLES on a GPU's EGL device; with `software`, on Mesa's software device (llvmpipe)
    /// when there is no GPU.
    pub fn open(software: bool) -> Result<Self, RenderError> {
        // smithay loads libEGL on first use and panics if it is missing: look first.
        // SAFETY: loading the system's libEGL runs only its own initialisers.
        unsafe { libloading::Library::new("libEGL.so.1") }.map_err(|e| fail("no libEGL", e))?;
        let devices: Vec<EGLDevice> = EGLDevice::enumerate().map_err(|e| fail("EGL devices", e))?.collect();
        let (hardware, soft): (Vec<EGLDevice>, Vec<EGLDevice>) = devices.into_iter().partition(|d| !d.is_software());
        let device = hardware.into_iter().next().or_else(|| soft.into_iter().next().filter(|_| software)).ok_or_else(|| RenderError::Gles("no GPU among the EGL devices".into()))?;
        let node = (!device.is_software()).then(|| device.render_device_path().ok()).flatten();
        let name = match (&node, device.is_software()) {
            (_, true) => "Mesa's software device (llvmpipe)".to_string(),
            (Some(path), false) => path.display().to_string(),
            (None, false) => "a GPU without a render node".to_string(),
        };
        // SAFETY: the device came from EGL's own enumeration; the renderer keeps the display
        // alive through its context.
        let display = unsafe { EGLDisplay::new(device) }.map_err(|e| fail("EGL display", e))?;
        let context = EGLContext::new(&display).map_err(|e| fail("EGL context", e))?;
        // SAFETY: the context is new and used on this thread only.
        let renderer = unsafe { GlesRenderer::new(context) }.map_err(|e| fail("GLES renderer", e))?;
        let mut gles = Self { renderer, targets: HashMap::new(), device: name, node };
        gles.probe()?;
        Ok(gles)
    }

    /// Draws and reads back one small empty frame: a driver that cannot read frames back
    /// is of no use to the CPU encoders, and `auto` then falls back to pixman.
    fn probe(&mut self) -> Result<(), RenderError> {
        const SIDE: u32 = 16;
        let mut tracker = OutputDamageTracker::new((SIDE as i32, SIDE as i32), 1.0, Transform::Normal);
        let mut out = vec![0u8; (SIDE * SIDE * 4) as usize];
        self.compose(&mut tracker, 0, 0, &[], &mut out, SIDE, SIDE, SIDE as usize * 4)?;
        self.targets.clear();
        Ok(())
    }

    /// What linux-dmabuf offers clients: the formats this GPU imports, on its render node
    /// (how Mesa's Wayland EGL finds the GPU). `None` where there is none to offer.
    pub fn dmabuf_feedback(&self) -> Option<DmabufFeedback> {
        let formats = self.renderer.dmabuf_formats();
        let device = std::fs::metadata(self.node.as_ref()?).ok()?.rdev();
        if formats.iter().next().is_none() {
            return None;
        }
        DmabufFeedbackBuilder::new(device, formats).build().map_err(|e| tracing::warn!("dmabuf feedback: {e}")).ok()
    }

    /// Whether a client's dmabuf can be drawn.
    pub fn import_dmabuf(&mut self, dmabuf: &Dmabuf) -> bool {
        self.renderer.import_dmabuf(dmabuf, None).is_ok()
    }
}

impl Compose for Gles {
    type R = GlesRenderer;

    fn renderer(&mut self) -> &mut GlesRenderer {
        &mut self.renderer
    }

    fn compose(&mut self, tracker: &mut OutputDamageTracker, age: usize, slot: usize, elements: &[Overlay<GlesRenderer>], out: &mut [u8], width: u32, height: u32, stride: usize) -> Result<Option<Vec<Rectangle<i32, Physical>>>, RenderError> {
        let size: Size<i32, BufferCoords> = (width as i32, height as i32).into();
        let fresh = self.targets.get(&slot).is_none_or(|(_, s)| *s != size);
        if fresh {
            if self.targets.len() >= super::POOL_BUFFERS {
                self.targets.clear(); // the pool was replaced (a mode change)
            }
            let buffer: GlesRenderbuffer = self.renderer.create_buffer(Fourcc::Abgr8888, size).map_err(|e| fail("render target", e))?;
            self.targets.insert(slot, (buffer, size));
        }
        let (buffer, _) = self.targets.get_mut(&slot).expect("made above");
        let mut target = self.renderer.bind(buffer).map_err(|e| fail("binding the target", e))?;
        // The target was drawn together with the pool buffer, so it is as old; a new one is
        // drawn in full.
        let age = if fresh { 0 } else { age };
        let result = tracker.render_output(&mut self.renderer, &mut target, age, elements, [0.0, 0.0, 0.0, 1.0]).map_err(|e| fail("rendering", format!("{e:?}")))?;
        let Some(damage) = result.damage.filter(|d| !d.is_empty()).cloned() else { return Ok(None) };
        // Read back only the rows drawn now: the rest of the pool buffer already matches.
        let top = damage.iter().map(|r| r.loc.y).min().unwrap_or(0).clamp(0, size.h);
        let bottom = damage.iter().map(|r| r.loc.y + r.size.h).max().unwrap_or(0).clamp(top, size.h);
        let region = Rectangle::new((0, top).into(), (size.w, bottom - top).into());
        let mapping = self.renderer.copy_framebuffer(&target, region, Fourcc::Argb8888).map_err(|e| fail("read-back", e))?;
        drop(target);
        let pixels = self.renderer.map_texture(&mapping).map_err(|e| fail("mapping the read-back", e))?;
        let (row, first, rows) = (width as usize * 4, top as usize, (bottom - top) as usize);
        if pixels.len() < row * rows || out.len() < stride * (first + rows) {
            return Err(RenderError::Gles("read-back smaller than the frame".into()));
        }
        // Top row first, whatever `TextureMapping::flipped` says (always true for GLES):
        // smithay draws into offscreen targets upside down in GL's terms, which glReadPixels'
        // bottom-up order undoes. The test pattern's test checks the orientation.
        for (y, line) in (first..).zip(pixels.chunks_exact(row).take(rows)) {
            out[y * stride..y * stride + row].copy_from_slice(line);
        }
        Ok(Some(damage))
    }
}
