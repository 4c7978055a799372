//! The GPU engine: GLES on a GPU, opened through GBM on its DRM node (the one `--gpu` names,
//! or the first EGL finds), or on Mesa's software device where asked for. It composites into
//! textures on the GPU, then draws the frame straight into the encoder's surfaces where it
//! lends some on this GPU (VAAPI: `surfaces`), or reads what changed back into the pool
//! buffer: converted to the encoder's YUV on the GPU (`to_yuv`) when the encoder asks for it,
//! BGRX otherwise. It is what GPU clients need (their dmabufs are imported, not copied
//! through the CPU).

use super::egl_display::{DisplaySource, OpenedDisplay, display_sources};
use super::surfaces::Imported;
use super::to_yuv::ToYuv;
use super::{Compose, ConvertChoice, Overlay, RenderError};
use punktfunk_frame::Colour;
use punktfunk_frame::PixelFormat;
use punktfunk_frame::gpu::{GpuLoan, GpuSurfaces};
use punktfunk_frame::layout::{Layout, even_rows};
use smithay::backend::allocator::Fourcc;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::egl::EGLContext;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::gles::{Capability, GlesRenderer, GlesTexture};
use smithay::backend::renderer::{Bind, ExportMem, ImportDma, ImportMem, Offscreen};
use smithay::utils::{Buffer as BufferCoords, Physical, Rectangle, Size, Transform};
use smithay::wayland::dmabuf::{DmabufFeedback, DmabufFeedbackBuilder};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct Gles {
    renderer: GlesRenderer,
    /// Where frames are drawn: one target per pool buffer (by its slot), each holding the
    /// same frame as its buffer, so only what changed since is drawn and read back.
    targets: HashMap<usize, (GlesTexture, Size<i32, BufferCoords>)>,
    /// The colour conversion pass, where frames are converted on the GPU.
    to_yuv: Option<ToYuv>,
    /// The encoder's surfaces frames are drawn into, where it lends some.
    imported: Option<Imported>,
    /// A set of surfaces that could not be drawn into.
    refused: Option<u64>,
    /// The device, in words, for the log.
    pub device: String,
    /// A GPU's render node (none on the software device).
    node: Option<PathBuf>,
}

pub(super) fn fail(what: &str, e: impl std::fmt::Display) -> RenderError {
    RenderError::Gles(format!("{what}: {e}"))
}

impl Gles {
    /// GLES on the GPU at `gpu` (a DRM node, opened through GBM), else on the first GPU among
    /// EGL's devices; with `software`, on Mesa's software device (llvmpipe) when there is none.
    /// `convert` says where frames become YUV.
    pub fn open(software: bool, convert: ConvertChoice, gpu: Option<&Path>) -> Result<Self, RenderError> {
        // smithay loads libEGL on first use and panics if it is missing: look first.
        // SAFETY: loading the system's libEGL runs only its own initialisers.
        unsafe { libloading::Library::new("libEGL.so.1") }.map_err(|e| fail("no libEGL", e))?;
        let mut sources = display_sources(gpu, software)?.into_iter().peekable();
        loop {
            let source = sources.next().expect("display_sources() gives at least one");
            match Self::on(source, convert) {
                Ok(gles) => return Ok(gles),
                // A driver without GBM, or one that cannot draw or read back there.
                Err(e) if let Some(next) = sources.peek() => tracing::warn!("{e}: trying {} instead", next.name()),
                Err(e) => return Err(e),
            }
        }
    }

    /// GLES on the display `source` opens, proven on a first frame.
    fn on(source: DisplaySource, convert: ConvertChoice) -> Result<Self, RenderError> {
        let OpenedDisplay { display, node, name, software: soft } = source.open()?;
        let context = EGLContext::new(&display).map_err(|e| fail("EGL context", e))?;
        // SAFETY: the context is new and used on this thread only.
        let renderer = unsafe { GlesRenderer::new(context) }.map_err(|e| fail("GLES renderer", e))?;
        let on_gpu = match convert {
            ConvertChoice::Gpu => true,
            ConvertChoice::Cpu => false,
            // llvmpipe's shaders run on the CPU, slower than the CPU converter's SIMD.
            ConvertChoice::Auto => !soft,
        };
        let mut gles = Self { renderer, targets: HashMap::new(), to_yuv: None, imported: None, refused: None, device: name, node };
        gles.probe()?;
        if on_gpu {
            // Not having the pass costs speed, not the GPU: frames are then converted by the
            // encoder, whatever was asked for.
            match gles.conversion_pass() {
                Ok(pass) => gles.to_yuv = Some(pass),
                Err(e) => tracing::warn!("colour conversion stays on the CPU: {e}"),
            }
        }
        Ok(gles)
    }

    /// Builds the conversion pass and proves it on one small frame of a known colour against
    /// the exact values: a driver that gets it wrong converts nothing.
    fn conversion_pass(&mut self) -> Result<ToYuv, String> {
        const SIDE: u32 = 16;
        let instancing = self.renderer.capabilities().contains(&Capability::Instancing);
        let mut pass = self.renderer.with_context(|gl| ToYuv::new(gl, instancing)).map_err(|e| e.to_string())??;
        let (rgb, colour, layout) = ([255u8, 128, 0], Colour::default(), Layout::Nv12);
        let bgrx: Vec<u8> = std::iter::repeat_n([rgb[2], rgb[1], rgb[0], 255], (SIDE * SIDE) as usize).flatten().collect();
        let checked = self
            .renderer
            .import_memory(&bgrx, Fourcc::Argb8888, (SIDE as i32, SIDE as i32).into(), false)
            .map_err(|e| e.to_string())
            .and_then(|texture| {
                let mut out = vec![0u8; layout.frame_len(SIDE, SIDE)];
                let id = texture.tex_id();
                self.renderer
                    .with_context(|gl| pass.convert(gl, id, SIDE, SIDE, layout, colour, 0..SIDE, &mut out))
                    .map_err(|e| e.to_string())??;
                let c = colour.coefficients(8);
                let want = [0, 1, 2].map(|i| c.rows[i].iter().zip(rgb).map(|(k, v)| k * f64::from(v) / 255.0).sum::<f64>() + c.offsets[i]);
                // The first Y, then NV12's first U and V.
                let n = (SIDE * SIDE) as usize;
                let got = [out[0], out[n], out[n + 1]];
                match got.iter().zip(want).all(|(g, w)| (f64::from(*g) - w).abs() <= 1.0) {
                    true => Ok(()),
                    false => Err(format!("the GPU converted #ff8000 to Y U V {got:?}, not {want:.0?}")),
                }
            });
        if let Err(e) = checked {
            let _ = self.renderer.with_context(|gl| pass.destroy(gl));
            return Err(e);
        }
        Ok(pass)
    }

    /// Whether frames are converted to YUV here.
    pub fn converts(&self) -> bool {
        self.to_yuv.is_some()
    }

    /// Draws and reads back one small empty frame: a driver that cannot read frames back
    /// is of no use to the CPU encoders, and `auto` then falls back to pixman.
    fn probe(&mut self) -> Result<(), RenderError> {
        const SIDE: u32 = 16;
        let mut tracker = OutputDamageTracker::new((SIDE as i32, SIDE as i32), 1.0, Transform::Normal);
        let mut out = vec![0u8; (SIDE * SIDE * 4) as usize];
        self.compose(&mut tracker, 0, 0, &[], &mut out, SIDE, SIDE, PixelFormat::Bgrx8888)?;
        self.targets.clear();
        Ok(())
    }

    /// What linux-dmabuf offers clients: the formats this GPU imports, on its render node
    /// (how Mesa's Wayland EGL finds the GPU). `None` where there is none to offer.
    pub fn dmabuf_feedback(&self) -> Option<DmabufFeedback> {
        let formats = self.renderer.dmabuf_formats();
        let device = std::fs::metadata(self.node.as_ref()?).ok()?.rdev();
        formats.iter().next()?;
        DmabufFeedbackBuilder::new(device, formats).build().map_err(|e| tracing::warn!("dmabuf feedback: {e}")).ok()
    }

    /// Whether a client's dmabuf can be drawn.
    pub fn import_dmabuf(&mut self, dmabuf: &Dmabuf) -> bool {
        self.renderer.import_dmabuf(dmabuf, None).is_ok()
    }
}

impl Drop for Gles {
    fn drop(&mut self) {
        self.drop_conversion();
    }
}

impl Compose for Gles {
    type R = GlesRenderer;

    fn renderer(&mut self) -> &mut GlesRenderer {
        &mut self.renderer
    }

    fn compose(
        &mut self,
        tracker: &mut OutputDamageTracker,
        age: usize,
        slot: usize,
        elements: &[Overlay<GlesRenderer>],
        out: &mut [u8],
        width: u32,
        height: u32,
        format: PixelFormat,
    ) -> Result<Option<Vec<Rectangle<i32, Physical>>>, RenderError> {
        let Some((damage, rows)) = self.composite(tracker, age, slot, elements, width, height)? else { return Ok(None) };
        let (buffer, _) = self.targets.get_mut(&slot).expect("drawn into");
        // Read back only the rows drawn now: the rest of the pool buffer already matches.
        if let PixelFormat::Yuv { layout, colour } = format {
            let to_yuv = self.to_yuv.as_mut().ok_or_else(|| RenderError::Gles("asked for YUV without the conversion pass".into()))?;
            let (rows, source) = (even_rows(rows, height), buffer.tex_id());
            let converted = self
                .renderer
                .with_context(|gl| to_yuv.convert(gl, source, width, height, layout, colour, rows, out))
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            if let Err(e) = converted {
                // A driver that fails the pass once will again: the encoder converts from now
                // on (the renderer sees `converts()` turn false and draws BGRX in full).
                tracing::warn!("colour conversion on the GPU failed ({e}): converting on the CPU from now on");
                self.drop_conversion();
                return Err(fail("conversion", e));
            }
            return Ok(Some(damage));
        }
        let target = self.renderer.bind(buffer).map_err(|e| fail("binding the target", e))?;
        let region = Rectangle::new((0, rows.start as i32).into(), (width as i32, rows.len() as i32).into());
        let mapping = self.renderer.copy_framebuffer(&target, region, Fourcc::Argb8888).map_err(|e| fail("read-back", e))?;
        drop(target);
        let pixels = self.renderer.map_texture(&mapping).map_err(|e| fail("mapping the read-back", e))?;
        // Rows of `width * 4` bytes, in the pool buffer as read back.
        let (row, first, rows) = (width as usize * 4, rows.start as usize, rows.len());
        let (Some(src), Some(dst)) = (pixels.get(..row * rows), out.get_mut(row * first..row * (first + rows))) else {
            return Err(RenderError::Gles("read-back smaller than the frame".into()));
        };
        // Top row first, whatever `TextureMapping::flipped` says (always true for GLES):
        // smithay draws into offscreen targets upside down in GL's terms, which glReadPixels'
        // bottom-up order undoes. The test pattern's test checks the orientation.
        dst.copy_from_slice(src);
        Ok(Some(damage))
    }

    fn compose_into(
        &mut self,
        tracker: &mut OutputDamageTracker,
        age: usize,
        slot: usize,
        elements: &[Overlay<GlesRenderer>],
        loan: &GpuLoan,
    ) -> Result<Option<Vec<Rectangle<i32, Physical>>>, RenderError> {
        let (width, height) = (loan.surfaces().width, loan.surfaces().height);
        let Some((damage, rows)) = self.composite(tracker, age, slot, elements, width, height)? else { return Ok(None) };
        let source = self.targets.get(&slot).expect("drawn into").0.tex_id();
        let (Some(pass), Some(imported)) = (self.to_yuv.as_mut(), self.imported.as_mut()) else {
            return Err(RenderError::Gles("no surfaces to draw into".into()));
        };
        if let Err(e) = imported.draw(&mut self.renderer, pass, source, loan, even_rows(rows, height)) {
            // Drawn into once and failed: frames come back through the CPU from now on.
            tracing::warn!("drawing into the encoder's surfaces failed ({e}): frames are read back from now on");
            self.refused = Some(imported.id);
            self.imported = None;
            return Err(fail("drawing into the encoder's surface", e));
        }
        Ok(Some(damage))
    }
}

impl Gles {
    /// Composites `elements` into the target kept for pool buffer `slot` (as old as the
    /// buffer: `age` frames); returns what was drawn and the rows that covers, `None` if
    /// nothing changed.
    #[allow(clippy::type_complexity)]
    fn composite(
        &mut self,
        tracker: &mut OutputDamageTracker,
        age: usize,
        slot: usize,
        elements: &[Overlay<GlesRenderer>],
        width: u32,
        height: u32,
    ) -> Result<Option<(Vec<Rectangle<i32, Physical>>, std::ops::Range<u32>)>, RenderError> {
        let size: Size<i32, BufferCoords> = (width as i32, height as i32).into();
        let fresh = self.targets.get(&slot).is_none_or(|(_, s)| *s != size);
        if fresh {
            if self.targets.len() >= super::frames::POOL_BUFFERS {
                self.targets.clear(); // the pool was replaced (a mode change)
            }
            let buffer: GlesTexture = self.renderer.create_buffer(Fourcc::Abgr8888, size).map_err(|e| fail("render target", e))?;
            self.targets.insert(slot, (buffer, size));
        }
        let (buffer, _) = self.targets.get_mut(&slot).expect("made above");
        let mut target = self.renderer.bind(buffer).map_err(|e| fail("binding the target", e))?;
        // The target was drawn together with the pool buffer, so it is as old; a new one is
        // drawn in full.
        let age = if fresh { 0 } else { age };
        let result = tracker
            .render_output(&mut self.renderer, &mut target, age, elements, [0.0, 0.0, 0.0, 1.0])
            .map_err(|e| fail("rendering", format!("{e:?}")))?;
        let Some(damage) = result.damage.filter(|d| !d.is_empty()).cloned() else { return Ok(None) };
        let top = damage.iter().map(|r| r.loc.y).min().unwrap_or(0).clamp(0, size.h);
        let bottom = damage.iter().map(|r| r.loc.y + r.size.h).max().unwrap_or(0).clamp(top, size.h);
        Ok(Some((damage, top as u32..bottom as u32)))
    }

    /// Whether frames can be drawn straight into `surfaces` (imported once; a set that failed
    /// is not tried again).
    pub fn can_draw_into(&mut self, surfaces: &GpuSurfaces) -> bool {
        if self.to_yuv.is_none() || self.refused == Some(surfaces.id) {
            return false;
        }
        // Only on the GPU they are on (not llvmpipe, not across the bus to another GPU).
        let ours = self.node.as_ref().and_then(|n| std::fs::metadata(n).ok()).map(|m| m.rdev());
        if ours != Some(surfaces.device) {
            tracing::info!("the encoder's surfaces are on another device than GLES: frames are read back");
            self.refused = Some(surfaces.id);
            return false;
        }
        if self.imported.as_ref().is_some_and(|i| i.id == surfaces.id) {
            return true;
        }
        self.imported = None;
        match Imported::new(&mut self.renderer, surfaces) {
            Ok(imported) => {
                tracing::info!("drawing frames straight into the encoder's {} surfaces (no read-back, no upload)", surfaces.surfaces.len());
                self.imported = Some(imported);
                true
            }
            Err(e) => {
                tracing::warn!("the encoder's surfaces cannot be drawn into ({e}): frames are read back");
                self.refused = Some(surfaces.id);
                false
            }
        }
    }

    pub fn release_surfaces(&mut self) {
        self.imported = None;
    }

    fn drop_conversion(&mut self) {
        self.imported = None;
        if let Some(mut pass) = self.to_yuv.take() {
            let _ = self.renderer.with_context(|gl| pass.destroy(gl));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use punktfunk_frame::{BufferPool, Frame};
    use punktfunk_streamer::convert::{Matrix, Range, Yuv, bgrx_to_yuv};

    /// A `w`×`h` picture of `rgb(x, y)`: as a texture for the GPU, as a BGRX frame for the CPU.
    fn picture(gles: &mut Gles, w: u32, h: u32, rgb: impl Fn(u32, u32) -> [u8; 3]) -> (GlesTexture, Frame) {
        let bgrx: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let [r, g, b] = rgb(i % w, i / w);
                [b, g, r, 255]
            })
            .collect();
        let texture = gles.renderer.import_memory(&bgrx, Fourcc::Argb8888, (w as i32, h as i32).into(), false).unwrap();
        let mut buffer = BufferPool::new(bgrx.len(), 1).take().unwrap();
        buffer.as_mut_slice().copy_from_slice(&bgrx);
        let frame = Frame {
            seq: 1,
            width: w,
            height: h,
            stride: w as usize * 4,
            format: PixelFormat::Bgrx8888,
            pixels: buffer.into(),
            damage: vec![],
            render_started_at: std::time::Instant::now(),
            rendered_at: std::time::Instant::now(),
            committed_at: std::time::Instant::now(),
        };
        (texture, frame)
    }

    /// The GPU pass writes every layout as the CPU converter does, within a level or two (the
    /// CPU's fast 8-bit mode rounds coarser), padded rows (a width not a multiple of 8) and
    /// a partial update included. Runs on llvmpipe here, as on any GPU.
    #[test]
    fn gpu_conversion_matches_the_cpu_converter_in_every_layout() {
        let mut gles = Gles::open(true, ConvertChoice::Gpu, None).expect("GLES with the conversion pass (llvmpipe)");
        let (w, h) = (62u32, 36u32);
        let rgb = |x: u32, y: u32| [((x + y) * 3 % 256) as u8, (y * 7) as u8, (x * 5 % 256) as u8];
        let (texture, frame) = picture(&mut gles, w, h, rgb);
        let colours = [
            Colour::default(),
            Colour { matrix: Matrix::Bt601, range: Range::Full },
            Colour { matrix: Matrix::Bt2020, range: Range::Limited },
        ];
        for layout in [Layout::Nv12, Layout::I420, Layout::P010, Layout::I010, Layout::I444, Layout::I410] {
            for colour in colours {
                let geometry = layout.planes(w, h);
                let len = layout.frame_len(w, h);
                let (mut gpu, mut cpu) = (vec![0u8; len], vec![0u8; len]);
                let pass = gles.to_yuv.as_mut().unwrap();
                let id = texture.tex_id();
                gles.renderer.with_context(|gl| pass.convert(gl, id, w, h, layout, colour, 0..h, &mut gpu)).unwrap().unwrap();
                bgrx_to_yuv(&frame, colour, Yuv::in_buffer(layout, w, h, &mut cpu).unwrap()).unwrap();
                let tolerance = if layout.ten_bit() { 6 } else { 2 };
                for g in &geometry {
                    for row in 0..g.rows {
                        for i in (0..g.row_bytes).step_by(g.bytes_per_sample) {
                            let at = g.offset + row * g.stride + i;
                            let value = |b: &[u8]| {
                                if g.bytes_per_sample == 2 {
                                    i32::from(u16::from_le_bytes([b[at], b[at + 1]]) >> g.shift)
                                } else {
                                    i32::from(b[at])
                                }
                            };
                            let (a, b) = (value(&gpu), value(&cpu));
                            assert!((a - b).abs() <= tolerance, "{layout} {colour:?} {:?} row {row} byte {i}: GPU {a}, CPU {b}", g.samples);
                        }
                    }
                }
                // A band of rows only: the others keep what the buffer held.
                let mut partial = vec![0x55u8; len];
                gles.renderer.with_context(|gl| pass.convert(gl, id, w, h, layout, colour, 10..14, &mut partial)).unwrap().unwrap();
                let y = &geometry[0];
                assert!(partial[y.offset + 9 * y.stride..y.offset + 10 * y.stride].iter().all(|&b| b == 0x55), "{layout}: row 9 untouched");
                assert_eq!(
                    partial[y.offset + 10 * y.stride..y.offset + 14 * y.stride],
                    gpu[y.offset + 10 * y.stride..y.offset + 14 * y.stride],
                    "{layout}: rows 10..14 converted"
                );
                assert!(
                    partial[y.offset + 14 * y.stride..y.offset + 15 * y.stride].iter().all(|&b| b == 0x55),
                    "{layout}: row 14 untouched"
                );
            }
        }
    }

    /// A `--gpu` that is no GPU is refused with what it is, not taken for one.
    #[test]
    fn a_gpu_that_is_not_a_drm_node_is_refused_with_the_reason() {
        let err = |path: &str| Gles::open(false, ConvertChoice::Auto, Some(Path::new(path))).err().expect("refused").to_string();
        assert!(err("/dev/null").contains("not a DRM device: /dev/null"), "{}", err("/dev/null"));
        assert!(err("/nonexistent/renderD128").contains("opening /nonexistent/renderD128"), "{}", err("/nonexistent/renderD128"));
    }

    /// A pass that fails (here: a frame buffer too small for the picture) is dropped, and
    /// frames go back to BGRX for the encoder to convert, instead of failing every frame.
    #[test]
    fn a_failing_conversion_hands_conversion_back_to_the_cpu() {
        let mut gles = Gles::open(true, ConvertChoice::Gpu, None).expect("GLES with the conversion pass (llvmpipe)");
        let mut tracker = OutputDamageTracker::new((16, 16), 1.0, Transform::Normal);
        let nv12 = PixelFormat::Yuv { layout: Layout::Nv12, colour: Colour::default() };
        let mut out = vec![0u8; 8];
        assert!(gles.compose(&mut tracker, 0, 0, &[], &mut out, 16, 16, nv12).is_err());
        assert!(!gles.converts(), "the pass is gone");
    }

    /// NV12 drawn a sample per texel, as into an encoder's surface (R8 luma, GR88 chroma;
    /// here plain textures of those formats, which llvmpipe has and dmabufs need not), gives
    /// the CPU converter's planes, a band of rows included.
    #[test]
    fn nv12_planes_drawn_into_surface_targets_match_the_cpu_converter() {
        use smithay::backend::renderer::gles::ffi;
        let mut gles = Gles::open(true, ConvertChoice::Gpu, None).expect("GLES with the conversion pass (llvmpipe)");
        let (w, h) = (40u32, 24u32);
        let rgb = |x: u32, y: u32| [(x * 6) as u8, (y * 10) as u8, ((x * y) % 256) as u8];
        let (texture, frame) = picture(&mut gles, w, h, rgb);
        let colour = Colour { matrix: Matrix::Bt601, range: Range::Limited };
        let mut cpu = vec![0u8; Layout::Nv12.frame_len(w, h)];
        bgrx_to_yuv(&frame, colour, Yuv::in_buffer(Layout::Nv12, w, h, &mut cpu).unwrap()).unwrap();
        let (source, pass) = (texture.tex_id(), gles.to_yuv.as_mut().unwrap());
        // Per plane: its target's format and size, and the bytes of a sample position.
        for (plane, internal, format, (pw, ph), bytes) in
            [(0, ffi::R8, ffi::RED, (w, h), 1usize), (1, ffi::RG8, ffi::RG, (w / 2, h / 2), 2)]
        {
            let drawn = gles.renderer.with_context(|gl| unsafe {
                let (mut tex, mut fbo) = (0, 0);
                gl.GenTextures(1, &mut tex);
                gl.BindTexture(ffi::TEXTURE_2D, tex);
                gl.TexImage2D(ffi::TEXTURE_2D, 0, internal as i32, pw as i32, ph as i32, 0, format, ffi::UNSIGNED_BYTE, std::ptr::null());
                gl.GenFramebuffers(1, &mut fbo);
                gl.BindFramebuffer(ffi::FRAMEBUFFER, fbo);
                gl.FramebufferTexture2D(ffi::FRAMEBUFFER, ffi::COLOR_ATTACHMENT0, ffi::TEXTURE_2D, tex, 0);
                let mut read = |rows: std::ops::Range<u32>| {
                    pass.draw_nv12_plane(gl, source, w, h, colour, plane, false, rows).unwrap();
                    gl.BindFramebuffer(ffi::FRAMEBUFFER, fbo);
                    let mut rgba = vec![0u8; (pw * ph * 4) as usize];
                    gl.ReadPixels(0, 0, pw as i32, ph as i32, ffi::RGBA, ffi::UNSIGNED_BYTE, rgba.as_mut_ptr().cast());
                    rgba.chunks_exact(4).flat_map(|t| t[..bytes].to_vec()).collect::<Vec<u8>>()
                };
                gl.ClearColor(0.0, 0.0, 0.0, 0.0);
                gl.Clear(ffi::COLOR_BUFFER_BIT);
                let band = read(8..12);
                let full = read(0..h);
                gl.BindFramebuffer(ffi::FRAMEBUFFER, 0);
                gl.DeleteFramebuffers(1, &fbo);
                gl.DeleteTextures(1, &tex);
                (band, full)
            });
            let (band, full) = drawn.unwrap();
            let g = &Layout::Nv12.planes(w, h)[plane];
            let row = (pw as usize) * bytes;
            for (y, line) in full.chunks_exact(row).enumerate() {
                let want = &cpu[g.offset + y * g.stride..][..row];
                assert!(line.iter().zip(want).all(|(a, b)| a.abs_diff(*b) <= 2), "plane {plane} row {y}: GPU {line:?}, CPU {want:?}");
            }
            let sub = g.subsampling as usize;
            let (first, last) = (8 / sub, 12 / sub);
            for (y, line) in band.chunks_exact(row).enumerate() {
                let inside = (first..last).contains(&y);
                assert_eq!(line == &full[y * row..][..row], inside, "plane {plane} row {y}: drawn only within the band");
            }
        }
    }
}
