//! The encoder's lent surfaces (`punktfunk_frame::gpu`) as GLES render targets: each
//! plane's dmabuf imported through EGL, the frame's NV12 drawn straight into it by the
//! conversion pass, finished on the GPU before the encoder reads it. Nothing crosses to the
//! CPU.

use super::to_yuv::ToYuv;
use punktfunk_frame::gpu::{DRM_FORMAT_RG88, GpuLoan, GpuSurfaces};
use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags};
use smithay::backend::allocator::{Buffer, Fourcc, Modifier};
use smithay::backend::renderer::gles::GlesRenderer;
use smithay::backend::renderer::{Bind, Frame, Renderer};
use smithay::utils::Transform;
use std::ops::Range;

/// One set of surfaces, imported: per surface, its planes.
pub struct Imported {
    pub id: u64,
    planes: Vec<Vec<Dmabuf>>,
}

impl Imported {
    /// Imports every plane of every surface, each bound once as a render target (an import
    /// or a target the driver refuses shows here, not mid-stream).
    pub fn new(renderer: &mut GlesRenderer, surfaces: &GpuSurfaces) -> Result<Self, String> {
        let mut planes = Vec::new();
        for surface in &surfaces.surfaces {
            let mut imported = Vec::new();
            for p in surface {
                let fourcc = Fourcc::try_from(p.fourcc).map_err(|_| format!("unknown DRM format {:#x}", p.fourcc))?;
                let mut builder =
                    Dmabuf::builder((p.width as i32, p.height as i32), fourcc, Modifier::from(p.modifier), DmabufFlags::empty());
                builder.add_plane(p.fd.try_clone().map_err(|e| format!("duplicating a dmabuf fd: {e}"))?, 0, p.offset, p.pitch);
                let mut dmabuf = builder.build().ok_or("an empty dmabuf")?;
                renderer.bind(&mut dmabuf).map_err(|e| format!("drawing into a {fourcc:?} surface plane: {e}"))?;
                imported.push(dmabuf);
            }
            if imported.len() != 2 {
                return Err(format!("a surface of {} planes, not NV12's 2", imported.len()));
            }
            planes.push(imported);
        }
        Ok(Self { id: surfaces.id, planes })
    }

    /// Draws `rows` of the picture in texture `source` into the lent surface as NV12, and
    /// waits until the GPU has done so.
    pub fn draw(
        &mut self,
        renderer: &mut GlesRenderer,
        pass: &mut ToYuv,
        source: u32,
        loan: &GpuLoan,
        rows: Range<u32>,
    ) -> Result<(), String> {
        let s = loan.surfaces();
        let planes = self.planes.get_mut(loan.index()).filter(|_| s.id == self.id).ok_or("a loan of other surfaces")?;
        let mut finished = None;
        for (plane, dmabuf) in planes.iter_mut().enumerate() {
            let size = (dmabuf.width() as i32, dmabuf.height() as i32);
            let mut target = renderer.bind(dmabuf).map_err(|e| e.to_string())?;
            let mut frame = renderer.render(&mut target, size.into(), Transform::Normal).map_err(|e| e.to_string())?;
            // RG88 names NV12's chroma bytes the other way round: red is V.
            let swap_uv = s.surfaces[loan.index()][plane].fourcc == DRM_FORMAT_RG88;
            let drawn = frame
                .with_context(|gl| pass.draw_nv12_plane(gl, source, s.width, s.height, s.colour, plane, swap_uv, rows.clone()))
                .map_err(|e| e.to_string());
            finished = Some(frame.finish().map_err(|e| e.to_string())?);
            drawn??;
        }
        // The GPU runs both in order: the last one done means the surface is.
        finished.map_or(Ok(()), |sync| sync.wait().map_err(|_| "interrupted waiting for the GPU".into()))
    }
}
