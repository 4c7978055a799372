//! Video decoding with FFmpeg into RGB pictures: on the GPU where one decodes (NVDEC, then
//! VAAPI), in software otherwise, or what `--decoder` forces; one line says which and why.
//! Hardware frames are copied back to memory for the window (softbuffer draws from memory).

use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;
use punktfunk_frame::gpu::{nvidia_driver, render_node};

pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// Packed RGB, `width * 3` bytes per row.
    pub rgb: Vec<u8>,
    /// What the decoder gave (FFmpeg's name: `yuv420p`, `yuv420p10le`, `yuv444p`, …): the
    /// bit depth and chroma the stream carried.
    pub pixel_format: &'static str,
}

/// Which decoder to use (`--decoder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    Auto,
    Software,
    Nvdec,
    Vaapi,
}

/// A GPU decoding device and the pixel format its frames come in.
struct Hardware {
    device: *mut ffi::AVBufferRef,
    format: ffi::AVPixelFormat,
}

impl Drop for Hardware {
    fn drop(&mut self) {
        // SAFETY: the reference av_hwdevice_ctx_create gave us; the codec holds its own.
        unsafe { ffi::av_buffer_unref(&mut self.device) };
    }
}

pub struct Decoder {
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(ffmpeg::software::scaling::Context, (u32, u32, ffmpeg::format::Pixel))>,
    frame: ffmpeg::frame::Video,
    /// A hardware frame copied to memory.
    copied: ffmpeg::frame::Video,
    hardware: Option<Hardware>,
}

// SAFETY: the device reference is only touched by the thread owning the decoder.
unsafe impl Send for Decoder {}

/// FFmpeg's get_format callback: the hardware format when the decoder offers it, otherwise
/// FFmpeg's own (software) pick.
unsafe extern "C" fn hardware_format(ctx: *mut ffi::AVCodecContext, formats: *const ffi::AVPixelFormat) -> ffi::AVPixelFormat {
    // SAFETY: FFmpeg passes its context and a list ending in AV_PIX_FMT_NONE; `opaque` holds
    // the wanted format, set before the codec opened.
    unsafe {
        let wanted = (*ctx).opaque as isize as i32;
        let mut p = formats;
        while *p != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
            if *p as i32 == wanted {
                return *p;
            }
            p = p.add(1);
        }
        ffi::avcodec_default_get_format(ctx, formats)
    }
}

impl Decoder {
    /// Opens the decoder `choice` asks for, with a one-line report of what was found.
    pub fn open(id: ffmpeg::codec::Id, choice: Choice) -> anyhow::Result<(Self, String)> {
        let order: &[Choice] = match choice {
            Choice::Auto => &[Choice::Nvdec, Choice::Vaapi, Choice::Software],
            Choice::Nvdec => &[Choice::Nvdec],
            Choice::Vaapi => &[Choice::Vaapi],
            Choice::Software => &[Choice::Software],
        };
        let mut skipped = Vec::new();
        for &c in order {
            match Self::new(id, c) {
                Ok(d) => {
                    let why = if choice == Choice::Auto { "best available" } else { "forced by --decoder" };
                    let mut line = format!("video decoder: {c:?} ({why})");
                    for (c, e) in &skipped {
                        line.push_str(&format!("; {c:?} unavailable: {e}"));
                    }
                    return Ok((d, line));
                }
                Err(e) => skipped.push((c, e)),
            }
        }
        let (c, e) = skipped.pop().expect("one decoder was tried");
        anyhow::bail!("no {c:?} decoder: {e}")
    }

    pub fn new(id: ffmpeg::codec::Id, choice: Choice) -> anyhow::Result<Self> {
        ffmpeg::init()?;
        // AV1: dav1d in software; FFmpeg's own AV1 decoder is the one with GPU acceleration.
        let codec = match (id, choice) {
            (ffmpeg::codec::Id::AV1, Choice::Nvdec | Choice::Vaapi) => ffmpeg::decoder::find_by_name("av1"),
            _ => ffmpeg::decoder::find(id),
        };
        let codec = codec.ok_or_else(|| anyhow::anyhow!("FFmpeg has no {id:?} decoder"))?;
        let mut ctx = ffmpeg::codec::Context::new_with_codec(codec);
        // Every access unit is a whole frame: no reordering delay, pictures out as they come.
        ctx.set_flags(ffmpeg::codec::Flags::LOW_DELAY);
        let hardware = match choice {
            Choice::Software | Choice::Auto => {
                // Slice threads (the host's encoder writes a slice per thread) add no delay;
                // frame threads would add a frame per thread.
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
                ctx.set_threading(ffmpeg::threading::Config { kind: ffmpeg::threading::Type::Slice, count: threads, ..Default::default() });
                None
            }
            Choice::Nvdec => {
                nvidia_driver().map_err(anyhow::Error::msg)?;
                Some(attach(&mut ctx, codec, ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA, None)?)
            }
            Choice::Vaapi => {
                let node = render_node().ok_or_else(|| anyhow::anyhow!("no DRM render node in /dev/dri"))?;
                Some(attach(&mut ctx, codec, ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI, Some(node))?)
            }
        };
        let decoder = ctx.decoder().video()?;
        Ok(Self { decoder, scaler: None, frame: ffmpeg::frame::Video::empty(), copied: ffmpeg::frame::Video::empty(), hardware })
    }

    /// Decodes one access unit; the pictures it completes go to `each`.
    pub fn decode(&mut self, data: &[u8], mut each: impl FnMut(Picture)) -> anyhow::Result<()> {
        self.decoder.send_packet(&ffmpeg::Packet::copy(data))?;
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            let on_gpu = self.hardware.as_ref().is_some_and(|h| unsafe { (*self.frame.as_ptr()).format } == h.format as i32);
            let frame = if on_gpu {
                // SAFETY: both frames are valid; FFmpeg allocates the destination's buffers.
                let r = unsafe { ffi::av_hwframe_transfer_data(self.copied.as_mut_ptr(), self.frame.as_ptr(), 0) };
                if r < 0 {
                    return Err(ffmpeg::Error::from(r).into());
                }
                &self.copied
            } else {
                &self.frame
            };
            let (w, h, fmt) = (frame.width(), frame.height(), frame.format());
            if self.scaler.as_ref().is_none_or(|(_, k)| *k != (w, h, fmt)) {
                let ctx = ffmpeg::software::scaling::Context::get(
                    fmt,
                    w,
                    h,
                    ffmpeg::format::Pixel::RGB24,
                    w,
                    h,
                    ffmpeg::software::scaling::Flags::BILINEAR,
                )?;
                self.scaler = Some((ctx, (w, h, fmt)));
            }
            let mut rgb = ffmpeg::frame::Video::empty();
            self.scaler.as_mut().expect("just made").0.run(frame, &mut rgb)?;
            let (stride, row) = (rgb.stride(0), w as usize * 3);
            let mut packed = Vec::with_capacity(row * h as usize);
            for y in 0..h as usize {
                packed.extend_from_slice(&rgb.data(0)[y * stride..y * stride + row]);
            }
            each(Picture { width: w, height: h, rgb: packed, pixel_format: fmt.descriptor().map_or("unknown", |d| d.name()) });
        }
        Ok(())
    }
}

/// Opens a hardware device of `kind` and has the codec decode on it.
fn attach(
    ctx: &mut ffmpeg::codec::Context,
    codec: ffmpeg::Codec,
    kind: ffi::AVHWDeviceType,
    node: Option<std::path::PathBuf>,
) -> anyhow::Result<Hardware> {
    // SAFETY: FFmpeg's documented hwaccel set-up, before the codec opens: the codec's
    // hardware configurations are read-only statics; the device reference is owned by
    // `Hardware` (released on drop, also on errors after this) and the codec gets its own.
    unsafe {
        let format = (0..)
            .map_while(|i| ffi::avcodec_get_hw_config(codec.as_ptr(), i).as_ref())
            .find(|c| c.methods & ffi::AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX as i32 != 0 && c.device_type == kind)
            .map(|c| c.pix_fmt)
            .ok_or_else(|| anyhow::anyhow!("this FFmpeg's {} decoder cannot use {kind:?}", codec.name()))?;
        let path = node.map(|n| std::ffi::CString::new(n.into_os_string().into_encoded_bytes())).transpose()?;
        let mut hw = Hardware { device: std::ptr::null_mut(), format };
        let r = ffi::av_hwdevice_ctx_create(
            &mut hw.device,
            kind,
            path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            std::ptr::null_mut(),
            0,
        );
        if r < 0 {
            anyhow::bail!("opening the device failed: {}", ffmpeg::Error::from(r));
        }
        let raw = ctx.as_mut_ptr();
        (*raw).hw_device_ctx = ffi::av_buffer_ref(hw.device);
        (*raw).opaque = format as i32 as isize as *mut std::ffi::c_void;
        (*raw).get_format = Some(hardware_format);
        Ok(hw)
    }
}

impl Picture {
    /// The pixel at (x, y) as (r, g, b); black outside the picture (or a short one).
    pub fn rgb_at(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.rgb.get(i..i + 3).map_or((0, 0, 0), |c| (c[0], c[1], c[2]))
    }

    /// Binary PPM (P6): what any image tool reads.
    pub fn ppm(&self) -> Vec<u8> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.rgb);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_says_what_it_found() {
        let (_, line) = Decoder::open(ffmpeg::codec::Id::H264, Choice::Auto).unwrap();
        println!("{line}");
        assert!(line.starts_with("video decoder: "));
        if nvidia_driver().is_err() && render_node().is_none() {
            assert!(line.starts_with("video decoder: Software (best available); Nvdec unavailable: no NVIDIA driver"), "{line}");
            assert!(line.contains("Vaapi unavailable: no DRM render node"), "{line}");
        }
    }

    #[test]
    fn a_forced_missing_gpu_decoder_is_an_error() {
        if render_node().is_none() {
            let e = Decoder::open(ffmpeg::codec::Id::HEVC, Choice::Vaapi).err().unwrap();
            assert!(e.to_string().contains("no Vaapi decoder: no DRM render node"), "{e}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = Decoder::new(ffmpeg::codec::Id::H264, Choice::Software).unwrap();
        for junk in [&[0u8, 0, 1, 0x65, 0xff, 0x12][..], &[0; 64], &[0xff; 3]] {
            let _ = d.decode(junk, |_| panic!("no picture from garbage"));
        }
    }
}
