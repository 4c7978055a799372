//! Which EGL display GLES runs on: the GPU's DRM node through GBM (never as DRM master), the
//! GPU as an EGL device (drivers without GBM), or Mesa's software device where asked for.

use super::RenderError;
use super::egl_device::Device;
use super::gles::fail;
use smithay::backend::allocator::gbm::GbmDevice;
use smithay::backend::drm::{DrmNode, NodeType};
use smithay::backend::egl::EGLDisplay;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where an EGL display for GLES can come from.
pub(super) enum DisplaySource {
    /// Through GBM on a DRM node (render or primary).
    Gbm(PathBuf),
    /// EGL's own device (drivers without GBM; Mesa's software device).
    Device(Device),
}

/// The sources to try, best first: the GPU at `gpu`, or else the first GPU among EGL's
/// devices, through GBM on its node, then as the EGL device itself; then, with `software`,
/// Mesa's software device.
pub(super) fn display_sources(gpu: Option<&Path>, software: bool) -> Result<Vec<DisplaySource>, RenderError> {
    let devices = match Device::enumerate() {
        Ok(devices) => devices,
        Err(e) if gpu.is_some() => {
            tracing::warn!("EGL devices: {e}");
            Vec::new()
        }
        Err(e) => return Err(fail("EGL devices", e)),
    };
    let (hardware, soft): (Vec<Device>, Vec<Device>) = devices.into_iter().partition(|d| !d.is_software());
    let rdev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.rdev());
    let (node, device) = match gpu {
        // The EGL device of the named GPU is the one on the same render node.
        Some(path) => {
            let render = DrmNode::from_path(path).ok().and_then(|n| n.dev_path_with_type(NodeType::Render)).and_then(|p| rdev(&p));
            let device = hardware.into_iter().find(|d| d.render_node().and_then(|p| rdev(&p)).is_some_and(|r| Some(r) == render));
            (Some(path.to_path_buf()), device)
        }
        None => {
            let device = hardware.into_iter().next();
            (device.as_ref().and_then(Device::render_node), device)
        }
    };
    let sources: Vec<DisplaySource> = node
        .map(DisplaySource::Gbm)
        .into_iter()
        .chain(device.map(DisplaySource::Device))
        .chain(soft.into_iter().next().filter(|_| software).map(DisplaySource::Device))
        .collect();
    match sources.is_empty() {
        true => Err(RenderError::Gles("no GPU among the EGL devices".into())),
        false => Ok(sources),
    }
}

/// An EGL display, opened.
pub(super) struct OpenedDisplay {
    pub display: EGLDisplay,
    /// The GPU's render node (none for the software device).
    pub node: Option<PathBuf>,
    /// The device, in words, for the log.
    pub name: String,
    pub software: bool,
}

impl DisplaySource {
    pub fn name(&self) -> String {
        match self {
            Self::Gbm(path) => path.display().to_string(),
            Self::Device(d) if d.is_software() => "Mesa's software device".into(),
            Self::Device(_) => "the GPU as an EGL device".into(),
        }
    }

    pub fn open(self) -> Result<OpenedDisplay, RenderError> {
        match self {
            Self::Gbm(path) => {
                let at = |what: &str| format!("{what} {}", path.display());
                let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).map_err(|e| fail(&at("opening"), e))?;
                let node = DrmNode::from_file(&file).map_err(|e| fail(&at("not a DRM device:"), e))?;
                let render = node.dev_path_with_type(NodeType::Render).unwrap_or_else(|| path.clone());
                // The file itself, not smithay's DrmDeviceFd: that one would try to become DRM
                // master of the node, which a renderer has no business holding.
                let gbm = GbmDevice::new(file).map_err(|e| fail(&at("GBM on"), e))?;
                // SAFETY: the GBM device is new and moves into the display, which keeps it
                // alive.
                let display = unsafe { EGLDisplay::new(gbm) }.map_err(|e| fail(&at("EGL on"), e))?;
                Ok(OpenedDisplay { display, node: Some(render), name: path.display().to_string(), software: false })
            }
            Self::Device(device) => {
                let soft = device.is_software();
                let node = (!soft).then(|| device.render_node()).flatten();
                let name = match (&node, soft) {
                    (_, true) => "Mesa's software device (llvmpipe)".to_string(),
                    (Some(path), false) => format!("{} (EGL device)", path.display()),
                    (None, false) => "a GPU without a render node".to_string(),
                };
                // SAFETY: the device came from EGL's own enumeration; the renderer keeps the
                // display alive through its context.
                let display = unsafe { EGLDisplay::new(device) }.map_err(|e| fail("EGL display", e))?;
                Ok(OpenedDisplay { display, node, name, software: soft })
            }
        }
    }
}
