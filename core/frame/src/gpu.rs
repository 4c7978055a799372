//! Frames that never leave the GPU: an encoder that can (VAAPI) allocates the surfaces it
//! encodes from and lends them out as dmabufs, one per plane; the compositor draws each frame
//! straight into a free one and hands that back as the frame. No read-back, no upload.
//! Also where a GPU's render node is (the compositor and the encoder must use the same one),
//! and whether NVIDIA's driver is installed (NVENC, and NVDEC in the client).

use parking_lot::Mutex;
use punktfunk_core::colour::Colour;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One plane of a surface as a dmabuf (a DRM PRIME layer of one plane).
#[derive(Debug)]
pub struct DmabufPlane {
    pub fd: OwnedFd,
    /// DRM fourcc of the plane's layer: R8 for luma, GR88 for NV12's interleaved chroma.
    pub fourcc: u32,
    pub modifier: u64,
    pub offset: u32,
    pub pitch: u32,
    pub width: u32,
    pub height: u32,
}

/// DRM fourccs of NV12's planes exported as separate layers: luma, and chroma as GR88 (U in
/// the first byte, as NV12 has it) or, from some drivers, RG88 (the same bytes, named the
/// other way round: red is then the second byte).
pub const DRM_FORMAT_R8: u32 = u32::from_le_bytes(*b"R8  ");
pub const DRM_FORMAT_GR88: u32 = u32::from_le_bytes(*b"GR88");
pub const DRM_FORMAT_RG88: u32 = u32::from_le_bytes(*b"RG88");

/// The surfaces one encoder lends: NV12 (luma R8, chroma GR88) of one size, in the colour
/// the stream asked for.
#[derive(Debug)]
pub struct GpuSurfaces {
    /// Tells this set from any other (what was imported for an older one is stale).
    pub id: u64,
    /// The GPU they are on: its render node's device number (drawing into them from another
    /// GPU would cross the bus, if it worked at all).
    pub device: u64,
    pub width: u32,
    pub height: u32,
    pub colour: Colour,
    /// Per surface, its planes.
    pub surfaces: Vec<Vec<DmabufPlane>>,
    free: Mutex<Vec<usize>>,
}

impl GpuSurfaces {
    pub fn new(device: u64, width: u32, height: u32, colour: Colour, surfaces: Vec<Vec<DmabufPlane>>) -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let free = Mutex::new((0..surfaces.len()).rev().collect());
        Arc::new(Self { id: NEXT.fetch_add(1, Ordering::Relaxed), device, width, height, colour, surfaces, free })
    }

    /// A surface to draw the next frame into; `None` while every one is lent (the encoder
    /// is behind: the frame is skipped, as with a full buffer pool).
    pub fn take(self: &Arc<Self>) -> Option<GpuLoan> {
        let index = self.free.lock().pop()?;
        Some(GpuLoan(Arc::new(Loan { surfaces: Arc::clone(self), index })))
    }
}

/// A lent surface. Clones share it; it is free again when the last one is dropped (the
/// compositor's frame, and the encoder until that frame's packet is out).
#[derive(Clone, Debug)]
pub struct GpuLoan(Arc<Loan>);

#[derive(Debug)]
struct Loan {
    surfaces: Arc<GpuSurfaces>,
    index: usize,
}

impl GpuLoan {
    pub fn index(&self) -> usize {
        self.0.index
    }

    pub fn surfaces(&self) -> &Arc<GpuSurfaces> {
        &self.0.surfaces
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        self.surfaces.free.lock().push(self.index);
    }
}

/// The first DRM render node, or `PUNKTFUNK_VAAPI_DEVICE`.
pub fn render_node() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PUNKTFUNK_VAAPI_DEVICE") {
        return Some(p.into());
    }
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("renderD")))
        .collect();
    nodes.sort();
    nodes.into_iter().next()
}

/// The render node of the GPU whose DRM node (render or primary) `path` is, through sysfs;
/// `None` if it is no DRM device or has no render node.
pub fn render_node_of(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(path).ok()?.rdev();
    // Linux's dev_t: major in bits 8..20 and 32.., minor in bits 0..8 and 20..32.
    let (major, minor) = ((rdev >> 8) & 0xfff | (rdev >> 32) & !0xfff, rdev & 0xff | (rdev >> 12) & !0xff);
    let drm = PathBuf::from(format!("/sys/dev/char/{major}:{minor}/device/drm"));
    let name =
        std::fs::read_dir(drm).ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| n.starts_with("renderD"))?;
    Some(PathBuf::from("/dev/dri").join(name))
}

/// Whether NVIDIA's driver is installed. FFmpeg loads libcuda when a device opens; looking
/// first keeps the log quiet on machines without one (NVENC here, NVDEC in the client).
pub fn nvidia_driver() -> Result<(), String> {
    let found = [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
        "/usr/lib/libcuda.so.1",
        "/usr/lib/aarch64-linux-gnu/libcuda.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if found { Ok(()) } else { Err("no NVIDIA driver (libcuda.so.1 not found)".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surfaces(n: usize) -> Arc<GpuSurfaces> {
        GpuSurfaces::new(0, 64, 32, Colour::default(), (0..n).map(|_| Vec::new()).collect())
    }

    #[test]
    fn surfaces_are_lent_until_every_holder_lets_go() {
        let s = surfaces(2);
        let a = s.take().unwrap();
        let b = s.take().unwrap();
        assert_ne!(a.index(), b.index());
        assert!(s.take().is_none(), "both lent");
        let held = a.clone(); // the encoder keeps it until its packet is out
        drop(a);
        assert!(s.take().is_none(), "still held");
        drop(held);
        assert_eq!(s.take().map(|l| l.index()), Some(0), "back once the last holder let go");
        assert_ne!(surfaces(1).id, s.id, "each set is told apart");
        assert_eq!((DRM_FORMAT_R8, DRM_FORMAT_GR88, DRM_FORMAT_RG88), (0x2020_3852, 0x3838_5247, 0x3838_4752));
    }
}
