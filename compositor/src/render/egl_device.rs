//! EGL's devices (the GPUs, and Mesa's software device), enumerated here rather than with
//! smithay's `EGLDevice::enumerate`: that one insists on the split extension names
//! (`EGL_EXT_device_enumeration` and `_query`), while NVIDIA's driver (580, seen on an H200
//! without DRM nodes) advertises only `EGL_EXT_device_base`, which the EGL registry defines
//! as both together. A display opens on a device through `EGL_EXT_platform_device`.

use smithay::backend::egl::ffi;
use smithay::backend::egl::native::{EGLNativeDisplay, EGLPlatform};
use std::ffi::{CStr, c_void};
use std::path::PathBuf;

/// More than any machine has; EGL's count is not trusted for an allocation.
const MAX_DEVICES: usize = 64;

/// One of EGL's devices.
pub(super) struct Device {
    handle: ffi::egl::types::EGLDeviceEXT,
    extensions: Vec<String>,
    /// Its render node, asked once: EGL reports a failed query as an error in the log, and
    /// a GPU in a container may have the extension but no node.
    node: Option<PathBuf>,
}

// SAFETY: an EGLDeviceEXT is a handle EGL keeps valid for the life of the process, usable
// from any thread.
unsafe impl Send for Device {}

impl Device {
    /// EGL's devices, in EGL's order.
    pub fn enumerate() -> Result<Vec<Device>, String> {
        let client = ffi::make_sure_egl_is_loaded().map_err(|e| e.to_string())?;
        let has = |e: &str| client.iter().any(|s| s == e);
        let listable = has("EGL_EXT_device_base") || (has("EGL_EXT_device_enumeration") && has("EGL_EXT_device_query"));
        if !listable {
            return Err("EGL cannot list its devices (no EGL_EXT_device_base or EGL_EXT_device_enumeration)".into());
        }
        let mut handles: Vec<ffi::egl::types::EGLDeviceEXT> = vec![std::ptr::null(); MAX_DEVICES];
        let mut count = 0;
        // SAFETY: EGL writes at most `MAX_DEVICES` handles into a buffer of that many, and
        // their number into `count`.
        let listed = unsafe { ffi::egl::QueryDevicesEXT(MAX_DEVICES as i32, handles.as_mut_ptr(), &mut count) };
        if listed != ffi::egl::TRUE {
            return Err("eglQueryDevicesEXT failed".into());
        }
        handles.truncate(usize::try_from(count).unwrap_or(0).min(MAX_DEVICES));
        Ok(handles
            .into_iter()
            .map(|handle| {
                // SAFETY: the handle came from EGL's own list just now.
                let extensions = unsafe { query_string(handle, ffi::egl::EXTENSIONS as i32) }.unwrap_or_default();
                let extensions: Vec<String> = extensions.split_whitespace().map(str::to_owned).collect();
                let node = extensions
                    .iter()
                    .any(|e| e == "EGL_EXT_device_drm_render_node")
                    // SAFETY: as above, and the device has the extension to answer.
                    .then(|| unsafe { query_string(handle, ffi::egl::DRM_RENDER_NODE_FILE_EXT as i32) })
                    .flatten()
                    .map(PathBuf::from);
                Device { handle, extensions, node }
            })
            .collect())
    }

    /// Mesa's software rasterizer (llvmpipe), not a GPU.
    pub fn is_software(&self) -> bool {
        self.extensions.iter().any(|e| e == "EGL_MESA_device_software")
    }

    /// The device's render node, where it has one (a data-centre GPU in a container may not).
    pub fn render_node(&self) -> Option<PathBuf> {
        self.node.clone()
    }
}

impl EGLNativeDisplay for Device {
    fn supported_platforms(&self) -> Vec<EGLPlatform<'_>> {
        let none = vec![ffi::egl::NONE as ffi::EGLint];
        vec![EGLPlatform::new(
            ffi::egl::PLATFORM_DEVICE_EXT,
            "PLATFORM_DEVICE_EXT",
            self.handle as *mut c_void,
            none,
            &["EGL_EXT_platform_device"],
        )]
    }

    /// A device's display has no window surfaces; the renderer draws into its own targets.
    fn surface_type(&self) -> ffi::EGLint {
        ffi::egl::STREAM_BIT_KHR as ffi::EGLint
    }
}

/// `eglQueryDeviceStringEXT`, as an owned string.
///
/// # Safety
/// `device` must be one of EGL's devices.
unsafe fn query_string(device: ffi::egl::types::EGLDeviceEXT, name: i32) -> Option<String> {
    // SAFETY: the caller passes a device of EGL's; EGL returns null or a string it keeps.
    let raw = unsafe { ffi::egl::QueryDeviceStringEXT(device, name) };
    // SAFETY: non-null, it is a NUL-terminated string that outlives this call.
    (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) }.to_string_lossy().into_owned())
}
