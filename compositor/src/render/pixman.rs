//! The CPU engine: pixman draws straight into the pool buffer.

use super::{Compose, Overlay, RenderError};
use punktfunk_frame::PixelFormat;
use smithay::backend::renderer::Bind;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::reexports::pixman::{FormatCode, Image};
use smithay::utils::{Physical, Rectangle};

impl Compose for PixmanRenderer {
    type R = PixmanRenderer;

    fn renderer(&mut self) -> &mut PixmanRenderer {
        self
    }

    fn compose(
        &mut self,
        tracker: &mut OutputDamageTracker,
        age: usize,
        _slot: usize,
        elements: &[Overlay<Self>],
        out: &mut [u8],
        width: u32,
        height: u32,
        _format: PixelFormat,
    ) -> Result<Option<Vec<Rectangle<i32, Physical>>>, RenderError> {
        let fail = |e: String| RenderError::Pixman(e);
        let stride = width as usize * 4;
        if out.len() < stride * height as usize || out.as_ptr().align_offset(4) != 0 {
            return Err(fail("frame buffer too small or not 4-byte aligned".into()));
        }
        // SAFETY: `out` is `stride * height` bytes, 4-byte aligned, and outlives `image`,
        // which is dropped at the end of this block.
        let damage = unsafe {
            let mut image =
                Image::from_raw_mut(FormatCode::X8R8G8B8, width as usize, height as usize, out.as_mut_ptr().cast(), stride, false)
                    .map_err(|_| fail("cannot wrap frame buffer".into()))?;
            let mut target = self.bind(&mut image).map_err(|e| fail(e.to_string()))?;
            let result =
                tracker.render_output(self, &mut target, age, elements, [0.0, 0.0, 0.0, 1.0]).map_err(|e| fail(format!("{e:?}")))?;
            result.damage.cloned()
        };
        Ok(damage.filter(|d| !d.is_empty()))
    }
}
