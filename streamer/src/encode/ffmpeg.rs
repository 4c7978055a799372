//! Encoders through FFmpeg: libx264/libx265 on the CPU, NVENC and VAAPI on GPUs. All tuned
//! for latency: no B-frames, no lookahead, an infinite GOP with IDR on demand, CBR with
//! about one frame of VBV.
//!
//! GPU encoders take CPU frames for now (NVENC uploads system memory itself; VAAPI frames
//! are uploaded through a hardware frames pool). Zero-copy dmabuf import comes with the
//! compositor's GPU render path.

use super::{Backend, Codec, EncodeError, EncodedFrame, EncoderConfig, VideoEncoder};
use crate::convert::{bgrx_rows_to_yuv420, damaged_rows, Matrix, Plane, Range, Yuv420};
use crate::frame::Frame;
use ffmpeg_next::{codec, encoder, ffi, format, frame, picture, threading, Dictionary, Packet};
use std::time::Instant;

pub struct FfmpegEncoder {
    config: EncoderConfig,
    backend: Backend,
    encoder: encoder::video::Encoder,
    input: frame::Video,
    hw: Option<HwFrames>,
    /// The input frame holds a complete converted picture.
    primed: bool,
    packet: Packet,
    name: &'static str,
}

// SAFETY: the FFmpeg context and frames are only ever used from the thread that owns the
// encoder; nothing in them is shared.
unsafe impl Send for FfmpegEncoder {}

impl FfmpegEncoder {
    pub fn new(backend: Backend, config: EncoderConfig) -> Result<Self, EncodeError> {
        ffmpeg_next::init()?;
        // FFmpeg's per-encoder statistics on stderr are noise in a streaming host.
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
        if !config.width.is_multiple_of(2) || !config.height.is_multiple_of(2) {
            return Err(EncodeError::OddSize(config.width, config.height));
        }
        // x264, NVENC and VAAPI read NV12; x265 only takes planar 4:2:0.
        let (name, pixel) = match (backend, config.codec) {
            (Backend::Software, Codec::H264) => ("libx264", format::Pixel::NV12),
            (Backend::Software, Codec::Hevc) => ("libx265", format::Pixel::YUV420P),
            (Backend::Nvenc, Codec::H264) => ("h264_nvenc", format::Pixel::NV12),
            (Backend::Nvenc, Codec::Hevc) => ("hevc_nvenc", format::Pixel::NV12),
            (Backend::Vaapi, Codec::H264) => ("h264_vaapi", format::Pixel::NV12),
            (Backend::Vaapi, Codec::Hevc) => ("hevc_vaapi", format::Pixel::NV12),
        };
        let found = encoder::find_by_name(name).ok_or(EncodeError::Unavailable(name))?;
        let mut video = codec::context::Context::new_with_codec(found).encoder().video()?;
        video.set_width(config.width);
        video.set_height(config.height);
        video.set_format(pixel);
        video.set_time_base((1000, config.fps_mhz as i32));
        video.set_frame_rate(Some((config.fps_mhz as i32, 1000)));
        video.set_max_b_frames(0);
        video.set_gop(u32::MAX >> 1);
        video.set_colorspace(match config.colour.matrix {
            Matrix::Bt601 => ffmpeg_next::color::Space::BT470BG,
            Matrix::Bt709 => ffmpeg_next::color::Space::BT709,
        });
        video.set_color_range(match config.colour.range {
            Range::Limited => ffmpeg_next::color::Range::MPEG,
            Range::Full => ffmpeg_next::color::Range::JPEG,
        });
        video.set_threading(threading::Config { kind: threading::Type::Slice, count: config.threads, ..Default::default() });
        set_rate(&mut video, config.bitrate_bps, config.fps_mhz);
        let hw = match backend {
            Backend::Vaapi => {
                let hw = HwFrames::vaapi(config.width, config.height)?;
                video.set_format(format::Pixel::VAAPI);
                // SAFETY: the context takes its own reference to the frames pool.
                unsafe { (*video.as_mut_ptr()).hw_frames_ctx = ffi::av_buffer_ref(hw.frames) };
                Some(hw)
            }
            _ => None,
        };
        let encoder = video.open_with(options(backend, &config))?;
        Ok(Self { input: frame::Video::new(pixel, config.width, config.height), config, backend, encoder, hw, primed: false, packet: Packet::empty(), name })
    }
}

/// The latency settings, in each encoder's own option names.
fn options(backend: Backend, config: &EncoderConfig) -> Dictionary<'static> {
    let mut opts = Dictionary::new();
    let ir = config.intra_refresh;
    match (backend, config.codec) {
        (Backend::Software, codec) => {
            opts.set("preset", "ultrafast");
            opts.set("tune", "zerolatency");
            opts.set("forced-idr", "1");
            if codec == Codec::H264 {
                opts.set("x264-params", if ir { "intra-refresh=1:repeat-headers=1" } else { "repeat-headers=1" });
            } else {
                // Frame threads would hold frames back: one in, one out.
                opts.set("x265-params", if ir { "intra-refresh=1:repeat-headers=1:frame-threads=1:log-level=warning" } else { "repeat-headers=1:frame-threads=1:log-level=warning" });
            }
        }
        (Backend::Nvenc, _) => {
            opts.set("preset", "p1");
            opts.set("tune", "ull");
            opts.set("zerolatency", "1");
            opts.set("delay", "0");
            opts.set("rc", "cbr");
            opts.set("forced-idr", "1");
            if ir {
                opts.set("intra-refresh", "1");
            }
        }
        (Backend::Vaapi, _) => {
            opts.set("rc_mode", "CBR");
            opts.set("async_depth", "1");
        }
    }
    opts
}

/// A VAAPI device and a pool of NV12 surfaces that CPU frames are uploaded into.
struct HwFrames {
    device: *mut ffi::AVBufferRef,
    frames: *mut ffi::AVBufferRef,
    surface: frame::Video,
}

impl HwFrames {
    fn vaapi(width: u32, height: u32) -> Result<Self, EncodeError> {
        let node = super::select::render_node().ok_or(EncodeError::Unavailable("VAAPI (no /dev/dri render node)"))?;
        let path = std::ffi::CString::new(node.into_os_string().into_encoded_bytes()).map_err(|_| EncodeError::Unavailable("VAAPI (bad device path)"))?;
        // SAFETY: FFmpeg's documented hwcontext sequence; every reference taken here is
        // released in Drop, also on the error paths (fields start null).
        unsafe {
            let mut hw = Self { device: std::ptr::null_mut(), frames: std::ptr::null_mut(), surface: frame::Video::empty() };
            let r = ffi::av_hwdevice_ctx_create(&mut hw.device, ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI, path.as_ptr(), std::ptr::null_mut(), 0);
            if r < 0 {
                return Err(ffmpeg_next::Error::from(r).into());
            }
            hw.frames = ffi::av_hwframe_ctx_alloc(hw.device);
            if hw.frames.is_null() {
                return Err(ffmpeg_next::Error::Other { errno: ffmpeg_next::util::error::ENOMEM }.into());
            }
            let ctx = (*hw.frames).data.cast::<ffi::AVHWFramesContext>();
            (*ctx).format = ffi::AVPixelFormat::AV_PIX_FMT_VAAPI;
            (*ctx).sw_format = ffi::AVPixelFormat::AV_PIX_FMT_NV12;
            (*ctx).width = width as i32;
            (*ctx).height = height as i32;
            (*ctx).initial_pool_size = 4;
            let r = ffi::av_hwframe_ctx_init(hw.frames);
            if r < 0 {
                return Err(ffmpeg_next::Error::from(r).into());
            }
            Ok(hw)
        }
    }

    /// Uploads a CPU frame into a surface from the pool.
    fn upload(&mut self, cpu: &frame::Video) -> Result<&frame::Video, EncodeError> {
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
}

impl Drop for HwFrames {
    fn drop(&mut self) {
        // SAFETY: both are null or references we own.
        unsafe {
            ffi::av_buffer_unref(&mut self.frames);
            ffi::av_buffer_unref(&mut self.device);
        }
    }
}

/// The input frame's planes as conversion targets.
fn planes(f: &mut frame::Video) -> Yuv420<'_> {
    let n = if f.format() == format::Pixel::NV12 { 2 } else { 3 };
    // SAFETY: the planes of one AVFrame are disjoint allocations (or disjoint ranges of one),
    // so handing out a mutable slice per plane does not alias.
    let mut p: Vec<Plane<'_>> = (0..n)
        .map(|i| {
            let (stride, len) = (f.stride(i), f.data(i).len());
            Plane { data: unsafe { std::slice::from_raw_parts_mut(f.data_mut(i).as_mut_ptr(), len) }, stride }
        })
        .collect();
    if n == 2 {
        let uv = p.pop().expect("two planes");
        Yuv420::Nv12 { y: p.pop().expect("two planes"), uv }
    } else {
        let (v, u) = (p.pop().expect("three planes"), p.pop().expect("three planes"));
        Yuv420::I420 { y: p.pop().expect("three planes"), u, v }
    }
}

/// CBR at `bps` with a VBV of about one frame, so a frame never bursts far past its share.
fn set_rate(ctx: &mut ffmpeg_next::codec::context::Context, bps: u64, fps_mhz: u32) {
    let frame_bits = bps.saturating_mul(1000) / u64::from(fps_mhz.max(1));
    // SAFETY: plain integer fields of an AVCodecContext we own (ffmpeg-next has no setter
    // for rc_buffer_size); libx264 picks changes up at the next frame (reconfig).
    unsafe {
        let p = ctx.as_mut_ptr();
        (*p).bit_rate = bps as i64;
        (*p).rc_max_rate = bps as i64;
        (*p).rc_buffer_size = frame_bits.min(i32::MAX as u64) as i32;
    }
}

impl VideoEncoder for FfmpegEncoder {
    fn encode(&mut self, frame: &Frame, force_idr: bool) -> Result<Option<EncodedFrame>, EncodeError> {
        let want = (self.config.width, self.config.height);
        if (frame.width, frame.height) != want {
            return Err(EncodeError::Size { got: (frame.width, frame.height), want });
        }
        let t0 = Instant::now();
        // Only the damaged rows change; the input frame still holds the rest from the last
        // frame, as long as this encoder has seen one (damage is since the sink's last frame).
        let rows = if self.primed { damaged_rows(frame) } else { Some(0..frame.height) };
        if let Some(rows) = rows {
            // SAFETY: makes the buffer ours alone if FFmpeg still held a reference (copying it).
            unsafe { ffi::av_frame_make_writable(self.input.as_mut_ptr()) };
            bgrx_rows_to_yuv420(frame, self.config.colour, planes(&mut self.input), rows)?;
        }
        self.primed = true;
        let t1 = Instant::now();
        self.input.set_pts(Some(frame.seq as i64));
        self.input.set_kind(if force_idr { picture::Type::I } else { picture::Type::None });
        match &mut self.hw {
            Some(hw) => {
                let surface = hw.upload(&self.input)?;
                self.encoder.send_frame(surface)?;
            }
            None => self.encoder.send_frame(&self.input)?,
        }
        let mut out: Option<EncodedFrame> = None;
        while self.encoder.receive_packet(&mut self.packet).is_ok() {
            let data = self.packet.data().unwrap_or_default();
            let e = out.get_or_insert_with(|| EncodedFrame { data: Vec::new(), keyframe: false, seq: frame.seq, convert_us: 0, encode_us: 0 });
            e.data.extend_from_slice(data);
            e.keyframe |= self.packet.is_key();
        }
        if let Some(e) = &mut out {
            e.convert_us = (t1 - t0).as_micros() as u32;
            e.encode_us = t1.elapsed().as_micros() as u32;
        }
        Ok(out)
    }

    fn set_bitrate(&mut self, bps: u64) {
        self.config.bitrate_bps = bps;
        set_rate(&mut self.encoder, bps, self.config.fps_mhz);
    }

    fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}
