//! VAAPI surfaces for the encoder: a device, a pool of surfaces that CPU frames are uploaded
//! into, and surfaces lent to the compositor as dmabufs (exported as DRM PRIME, a layer per
//! plane) so it can draw frames into them on the GPU and nothing is copied.

use super::EncodeError;
use crate::convert::Colour;
use crate::gpu::{DRM_FORMAT_GR88, DRM_FORMAT_R8, DRM_FORMAT_RG88, DmabufPlane, GpuSurfaces};
use ffmpeg_next::{ffi, format, frame};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// Surfaces lent to the compositor: as many as frames in flight (one drawn, one waiting,
/// one encoding).
const LENT: usize = 3;

pub(super) struct HwFrames {
    device: *mut ffi::AVBufferRef,
    /// The render node's device number.
    node: u64,
    pub(super) frames: *mut ffi::AVBufferRef,
    surface: frame::Video,
    /// The lent surfaces' frames (index = the loan's) and their description.
    lent: Option<(Vec<frame::Video>, Arc<GpuSurfaces>)>,
}

impl HwFrames {
    pub(super) fn vaapi(width: u32, height: u32, sw_format: format::Pixel) -> Result<Self, EncodeError> {
        let node = super::select::render_node().ok_or(EncodeError::Unavailable("VAAPI (no /dev/dri render node)"))?;
        let rdev = std::fs::metadata(&node).map(|m| m.rdev()).unwrap_or(0);
        let path = std::ffi::CString::new(node.into_os_string().into_encoded_bytes())
            .map_err(|_| EncodeError::Unavailable("VAAPI (bad device path)"))?;
        // SAFETY: FFmpeg's documented hwcontext sequence; every reference taken here is
        // released in Drop, also on the error paths (fields start null).
        unsafe {
            let mut hw =
                Self { device: std::ptr::null_mut(), node: rdev, frames: std::ptr::null_mut(), surface: frame::Video::empty(), lent: None };
            let r = ffi::av_hwdevice_ctx_create(
                &mut hw.device,
                ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
                path.as_ptr(),
                std::ptr::null_mut(),
                0,
            );
            if r < 0 {
                return Err(ffmpeg_next::Error::from(r).into());
            }
            hw.frames = ffi::av_hwframe_ctx_alloc(hw.device);
            if hw.frames.is_null() {
                return Err(ffmpeg_next::Error::Other { errno: ffmpeg_next::util::error::ENOMEM }.into());
            }
            let ctx = (*hw.frames).data.cast::<ffi::AVHWFramesContext>();
            (*ctx).format = ffi::AVPixelFormat::AV_PIX_FMT_VAAPI;
            (*ctx).sw_format = sw_format.into();
            (*ctx).width = width as i32;
            (*ctx).height = height as i32;
            // Some drivers need a fixed pool: uploads and the encoder's input, plus the lent.
            (*ctx).initial_pool_size = (4 + LENT) as i32;
            let r = ffi::av_hwframe_ctx_init(hw.frames);
            if r < 0 {
                return Err(ffmpeg_next::Error::from(r).into());
            }
            Ok(hw)
        }
    }

    /// Uploads a CPU frame into a surface from the pool.
    pub(super) fn upload(&mut self, cpu: &frame::Video) -> Result<&frame::Video, EncodeError> {
        // SAFETY: `surface` is an AVFrame we own; the pool outlives it.
        unsafe {
            ffi::av_frame_unref(self.surface.as_mut_ptr());
            let r = ffi::av_hwframe_get_buffer(self.frames, self.surface.as_mut_ptr(), 0);
            if r < 0 {
                return Err(ffmpeg_next::Error::from(r).into());
            }
            let r = ffi::av_hwframe_transfer_data(self.surface.as_mut_ptr(), cpu.as_ptr(), 0);
            if r < 0 {
                return Err(ffmpeg_next::Error::from(r).into());
            }
            (*self.surface.as_mut_ptr()).pts = (*cpu.as_ptr()).pts;
            (*self.surface.as_mut_ptr()).pict_type = (*cpu.as_ptr()).pict_type;
        }
        Ok(&self.surface)
    }

    /// Takes `LENT` NV12 surfaces from the pool and exports them as dmabufs for the compositor
    /// to draw `width`×`height` frames in `colour` into.
    pub(super) fn lend(&mut self, width: u32, height: u32, colour: Colour) -> Result<Arc<GpuSurfaces>, EncodeError> {
        let (mut frames, mut surfaces) = (Vec::new(), Vec::new());
        for _ in 0..LENT {
            let mut surface = frame::Video::empty();
            let mut drm = frame::Video::empty();
            // SAFETY: FFmpeg's hwframe map sequence on frames we own; the descriptor is read
            // while `drm` (the mapping) lives, and its fds are duplicated before it goes.
            unsafe {
                let r = ffi::av_hwframe_get_buffer(self.frames, surface.as_mut_ptr(), 0);
                if r < 0 {
                    return Err(ffmpeg_next::Error::from(r).into());
                }
                (*drm.as_mut_ptr()).format = ffi::AVPixelFormat::AV_PIX_FMT_DRM_PRIME as i32;
                let flags = ffi::AV_HWFRAME_MAP_READ as i32 | ffi::AV_HWFRAME_MAP_WRITE as i32;
                let r = ffi::av_hwframe_map(drm.as_mut_ptr(), surface.as_ptr(), flags);
                if r < 0 {
                    return Err(ffmpeg_next::Error::from(r).into());
                }
                let descriptor = (*drm.as_ptr()).data[0].cast::<ffi::AVDRMFrameDescriptor>();
                surfaces.push(nv12_planes(&*descriptor, width, height)?);
            }
            frames.push(surface);
        }
        let surfaces = GpuSurfaces::new(self.node, width, height, colour, surfaces);
        self.lent = Some((frames, Arc::clone(&surfaces)));
        Ok(surfaces)
    }

    /// The frame of lent surface `index` of set `id`, to encode from.
    pub(super) fn lent_frame(&mut self, id: u64, index: usize) -> Option<&mut frame::Video> {
        self.lent.as_mut().filter(|(_, s)| s.id == id)?.0.get_mut(index)
    }

    pub(super) fn lent(&self) -> Option<&Arc<GpuSurfaces>> {
        self.lent.as_ref().map(|(_, s)| s)
    }
}

impl Drop for HwFrames {
    fn drop(&mut self) {
        self.lent = None; // the surfaces go back to the pool before it goes
        // SAFETY: both are null or references we own.
        unsafe {
            ffi::av_buffer_unref(&mut self.frames);
            ffi::av_buffer_unref(&mut self.device);
        }
    }
}

/// An exported NV12 surface's planes, each its own layer (R8 luma, GR88 or RG88 chroma) and
/// one plane, as FFmpeg exports VAAPI surfaces; the fds are duplicated (the mapping closes
/// its own). Any other layout is refused.
fn nv12_planes(d: &ffi::AVDRMFrameDescriptor, width: u32, height: u32) -> Result<Vec<DmabufPlane>, EncodeError> {
    let layers = d.layers.get(..d.nb_layers.max(0) as usize).unwrap_or(&[]);
    let formats: Vec<u32> = layers.iter().map(|l| l.format).collect();
    let nv12 = matches!(formats.as_slice(), [DRM_FORMAT_R8, DRM_FORMAT_GR88 | DRM_FORMAT_RG88]);
    if !nv12 || layers.iter().any(|l| l.nb_planes != 1) {
        return Err(EncodeError::Unsupported("the VAAPI driver exports NV12 surfaces in a layout not handled (want R8 + GR88 layers)"));
    }
    let objects = d.objects.get(..d.nb_objects.max(0) as usize).unwrap_or(&[]);
    layers
        .iter()
        .zip([(width, height), (width / 2, height / 2)])
        .map(|(layer, (width, height))| {
            let plane = &layer.planes[0];
            let object = usize::try_from(plane.object_index)
                .ok()
                .and_then(|i| objects.get(i))
                .ok_or(EncodeError::Unsupported("a DRM plane names no object"))?;
            if object.fd < 0 {
                return Err(EncodeError::Unsupported("a DRM object without an fd"));
            }
            // SAFETY: the fd is open while the mapping lives, which outlasts this call.
            let fd = unsafe { BorrowedFd::borrow_raw(object.fd) }
                .try_clone_to_owned()
                .map_err(|e| EncodeError::Probe(format!("duplicating a dmabuf fd: {e}")))?;
            let (offset, pitch) = (u32::try_from(plane.offset), u32::try_from(plane.pitch));
            let (Ok(offset), Ok(pitch)) = (offset, pitch) else {
                return Err(EncodeError::Unsupported("a DRM plane's offset or pitch out of range"));
            };
            Ok(DmabufPlane { fd, fourcc: layer.format, modifier: object.format_modifier, offset, pitch, width, height })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn descriptor(fd: i32, formats: &[u32]) -> ffi::AVDRMFrameDescriptor {
        // SAFETY: a plain C struct of integers, for which zero is valid.
        let mut d: ffi::AVDRMFrameDescriptor = unsafe { std::mem::zeroed() };
        d.nb_objects = 1;
        d.objects[0].fd = fd;
        d.objects[0].format_modifier = 0x0100_0000_0000_0001;
        d.nb_layers = formats.len() as i32;
        for (i, f) in formats.iter().enumerate() {
            d.layers[i].format = *f;
            d.layers[i].nb_planes = 1;
            d.layers[i].planes[0].offset = (i * 4096) as isize;
            d.layers[i].planes[0].pitch = 256;
        }
        d
    }

    #[test]
    fn an_exported_nv12_surface_becomes_two_dmabuf_planes_and_other_layouts_are_refused() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let planes = nv12_planes(&descriptor(file.as_raw_fd(), &[DRM_FORMAT_R8, DRM_FORMAT_GR88]), 64, 32).unwrap();
        let got: Vec<_> = planes.iter().map(|p| (p.fourcc, p.offset, p.pitch, p.width, p.height, p.modifier)).collect();
        assert_eq!(
            got,
            [(DRM_FORMAT_R8, 0, 256, 64, 32, 0x0100_0000_0000_0001), (DRM_FORMAT_GR88, 4096, 256, 32, 16, 0x0100_0000_0000_0001)]
        );
        assert!(planes.iter().all(|p| p.fd.as_raw_fd() != file.as_raw_fd()), "fds are duplicated");
        // One NV12 layer of two planes, a missing fd, a plane naming no object: refused.
        assert!(nv12_planes(&descriptor(file.as_raw_fd(), &[DRM_FORMAT_R8, DRM_FORMAT_RG88]), 64, 32).is_ok(), "chroma named RG88");
        assert!(nv12_planes(&descriptor(file.as_raw_fd(), &[u32::from_le_bytes(*b"NV12")]), 64, 32).is_err());
        assert!(nv12_planes(&descriptor(-1, &[DRM_FORMAT_R8, DRM_FORMAT_GR88]), 64, 32).is_err());
        let mut stray = descriptor(file.as_raw_fd(), &[DRM_FORMAT_R8, DRM_FORMAT_GR88]);
        stray.layers[1].planes[0].object_index = 3;
        assert!(nv12_planes(&stray, 64, 32).is_err());
        stray.nb_layers = 9;
        assert!(nv12_planes(&stray, 64, 32).is_err(), "a corrupt count is no panic");
    }
}
