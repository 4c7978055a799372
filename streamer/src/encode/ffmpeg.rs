//! Encoders through FFmpeg: libx264/libx265 on the CPU, NVENC and VAAPI on GPUs. All tuned
//! for latency: no B-frames, no lookahead, an infinite GOP with IDR on demand, CBR with
//! about one frame of VBV.
//!
//! GPU encoders take CPU frames (NVENC uploads system memory itself; VAAPI frames are
//! uploaded through a hardware frames pool), and VAAPI lends surfaces the compositor draws
//! frames into on the GPU (`vaapi.rs`, `crate::gpu`): those are encoded as they are.

use super::vaapi::HwFrames;
use super::{Backend, Codec, EncodeError, EncodedFrame, EncoderConfig, Format, VideoEncoder, frame_bits};
use crate::convert::{Colour, Matrix, Plane, Range, Yuv, damaged_rows, frame_rows_to_yuv};
use crate::frame::{Frame, PixelFormat, Pixels};
use crate::gpu::{GpuLoan, GpuSurfaces};
use ffmpeg_next::{Dictionary, Packet, codec, encoder, ffi, format, frame, picture, threading};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

pub struct FfmpegEncoder {
    config: EncoderConfig,
    backend: Backend,
    encoder: encoder::video::Encoder,
    input: frame::Video,
    hw: Option<HwFrames>,
    /// The input frame holds a complete picture, from a frame in this format.
    primed: Option<PixelFormat>,
    /// The converted frames this encoder copies rather than converts.
    takes: PixelFormat,
    /// Lent surfaces being encoded, by pts: the compositor may draw into one again only
    /// once its packet is out.
    in_flight: VecDeque<(i64, GpuLoan)>,
    /// Lent surfaces failed: no more frames in them.
    revoked: bool,
    /// The frame lost when they failed calls for a key frame.
    idr_after_revoke: bool,
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
        let Format { colour, ten_bit, yuv444 } = config.format;
        if ten_bit && config.codec == Codec::H264 {
            // High 10 exists, but no Moonlight or GPU decoder takes it.
            return Err(EncodeError::Unsupported("10-bit video needs HEVC or AV1 (clients decode H.264 in 8 bits only)"));
        }
        if yuv444 && config.codec == Codec::Av1 {
            // AV1's High profile: SVT-AV1 and the GPU encoders do Main (4:2:0) only.
            return Err(EncodeError::Unsupported("AV1 4:4:4 has no encoder here"));
        }
        match (backend, ten_bit, yuv444) {
            // Few VAAPI drivers encode 4:4:4, and those only from packed layouts.
            (Backend::Vaapi, _, true) => return Err(EncodeError::Unsupported("VAAPI encodes 4:2:0 only here")),
            // NVENC wants those samples in the high bits of 16: a layout not written yet.
            (Backend::Nvenc, true, true) => return Err(EncodeError::Unsupported("NVENC 10-bit 4:4:4 is not supported yet")),
            _ => {}
        }
        // x264, NVENC and VAAPI read NV12 (P010 for 10 bits); x265 only takes planar 4:2:0;
        // 4:4:4 is planar everywhere.
        let name = match (backend, config.codec) {
            (Backend::Software, Codec::H264) => "libx264",
            (Backend::Software, Codec::Hevc) => "libx265",
            (Backend::Nvenc, Codec::H264) => "h264_nvenc",
            (Backend::Nvenc, Codec::Hevc) => "hevc_nvenc",
            (Backend::Vaapi, Codec::H264) => "h264_vaapi",
            (Backend::Vaapi, Codec::Hevc) => "hevc_vaapi",
            (Backend::Software, Codec::Av1) => "libaom-av1",
            // FFmpeg 6 and later; Debian 12's 5.1 has neither (a clear "no … encoder" then).
            (Backend::Nvenc, Codec::Av1) => "av1_nvenc",
            (Backend::Vaapi, Codec::Av1) => "av1_vaapi",
        };
        let pixel = match (backend, config.codec, ten_bit, yuv444) {
            (_, _, false, true) => format::Pixel::YUV444P,
            (_, _, true, true) => format::Pixel::YUV444P10LE,
            (Backend::Software, Codec::Hevc | Codec::Av1, false, false) => format::Pixel::YUV420P,
            (Backend::Software, Codec::Hevc | Codec::Av1, true, false) => format::Pixel::YUV420P10LE,
            (_, _, false, false) => format::Pixel::NV12,
            (_, _, true, false) => format::Pixel::P010LE,
        };
        let found = encoder::find_by_name(name).ok_or(EncodeError::Unavailable(name))?;
        let mut video = codec::context::Context::new_with_codec(found).encoder().video()?;
        video.set_width(config.width);
        video.set_height(config.height);
        video.set_format(pixel);
        video.set_time_base((1000, config.refresh_mhz as i32));
        video.set_frame_rate(Some((config.refresh_mhz as i32, 1000)));
        video.set_max_b_frames(0);
        video.set_gop(u32::MAX >> 1);
        signal_colour(&mut video, colour, yuv444);
        video.set_threading(threading::Config { kind: threading::Type::Slice, count: config.threads, ..Default::default() });
        set_rate(&mut video, config.bitrate_bps, config.refresh_mhz);
        let hw = match backend {
            Backend::Vaapi => {
                let mut hw = HwFrames::vaapi(config.width, config.height, pixel)?;
                if pixel == format::Pixel::NV12 {
                    // Frames drawn straight into the encoder's surfaces where the compositor
                    // can (GLES on this GPU); uploads otherwise.
                    if let Err(e) = hw.lend(config.width, config.height, colour) {
                        tracing::warn!("VAAPI surfaces cannot be lent to the compositor ({e}): frames are uploaded");
                    }
                }
                video.set_format(format::Pixel::VAAPI);
                // SAFETY: the context takes its own reference to the frames pool.
                unsafe { (*video.as_mut_ptr()).hw_frames_ctx = ffi::av_buffer_ref(hw.frames) };
                Some(hw)
            }
            _ => None,
        };
        let encoder = video.open_with(options(backend, &config))?;
        let mut input = frame::Video::new(pixel, config.width, config.height);
        let takes = PixelFormat::Yuv { layout: planes(&mut input).layout(), colour };
        Ok(Self {
            input,
            config,
            backend,
            encoder,
            hw,
            primed: None,
            takes,
            in_flight: VecDeque::new(),
            revoked: false,
            idr_after_revoke: false,
            packet: Packet::empty(),
            name,
        })
    }
}

impl FfmpegEncoder {
    /// Encodes a frame the compositor drew into one of our lent surfaces: nothing to convert
    /// or upload. The surface stays ours until its packet is out.
    fn encode_lent(&mut self, loan: &GpuLoan, seq: u64, force_idr: bool) -> Result<Option<EncodedFrame>, EncodeError> {
        let t0 = Instant::now();
        let surface = self
            .hw
            .as_mut()
            .and_then(|hw| hw.lent_frame(loan.surfaces().id, loan.index()))
            .ok_or(EncodeError::Unsupported("a frame drawn into another encoder's surfaces"))?;
        surface.set_pts(Some(seq as i64));
        surface.set_kind(if force_idr { picture::Type::I } else { picture::Type::None });
        if let Err(e) = self.encoder.send_frame(&*surface) {
            self.revoke(&format!("the encoder refused a frame in its surface ({e})"));
            return Ok(None);
        }
        self.in_flight.push_back((seq as i64, loan.clone()));
        // The input frame no longer holds the last picture: a CPU frame after this one is
        // converted in full.
        self.primed = None;
        let mut out = self.receive(seq);
        if let Some(e) = &mut out {
            e.encode_us = t0.elapsed().as_micros() as u32;
        }
        // One frame in, one packet out (no B-frames, async depth 1): a surface still held
        // means the driver holds frames back, and would soon have every surface.
        if self.in_flight.len() > 1 {
            self.revoke("the encoder holds frames back");
        }
        Ok(out)
    }

    /// Stops lending surfaces after they failed once: frames come as CPU frames again (the
    /// compositor sees `surfaces()` gone), the next one a key frame (this one was lost).
    /// The surfaces themselves stay ours until the encoder goes: a loan may still be out.
    fn revoke(&mut self, why: &str) {
        if !self.revoked {
            tracing::warn!("{why}: frames are uploaded from now on");
        }
        (self.revoked, self.idr_after_revoke) = (true, true);
    }

    /// Collects what the encoder has finished, and lets go of lent surfaces encoded by now.
    fn receive(&mut self, seq: u64) -> Option<EncodedFrame> {
        let mut out: Option<EncodedFrame> = None;
        while self.encoder.receive_packet(&mut self.packet).is_ok() {
            let data = self.packet.data().unwrap_or_default();
            let e = out.get_or_insert_with(|| EncodedFrame { data: Vec::new(), keyframe: false, seq, convert_us: 0, encode_us: 0 });
            e.data.extend_from_slice(data);
            e.keyframe |= self.packet.is_key();
            let done = self.packet.pts().unwrap_or(i64::MAX);
            while self.in_flight.front().is_some_and(|(pts, _)| *pts <= done) {
                self.in_flight.pop_front();
            }
        }
        out
    }
}

/// Tells the decoder the matrix and range (in the bitstream's VUI). Primaries and transfer
/// are always BT.709's: the desktop is sRGB whatever matrix carries it.
fn signal_colour(video: &mut encoder::video::Video, colour: Colour, yuv444: bool) {
    video.set_colorspace(match colour.matrix {
        Matrix::Bt601 => ffmpeg_next::color::Space::BT470BG,
        Matrix::Bt709 => ffmpeg_next::color::Space::BT709,
        Matrix::Bt2020 => ffmpeg_next::color::Space::BT2020NCL,
    });
    video.set_color_range(match colour.range {
        Range::Limited => ffmpeg_next::color::Range::MPEG,
        Range::Full => ffmpeg_next::color::Range::JPEG,
    });
    // SAFETY: plain enum fields of an AVCodecContext we own (ffmpeg-next has no setters).
    unsafe {
        let p = video.as_mut_ptr();
        (*p).color_primaries = ffi::AVColorPrimaries::AVCOL_PRI_BT709;
        (*p).color_trc = ffi::AVColorTransferCharacteristic::AVCOL_TRC_BT709;
        // Both converters average each 2x2 block: chroma sits at its centre, not on the
        // left column decoders assume unless told (a quarter-pixel shift). AV1 has no way to
        // say so (libaom leaves it unknown).
        if !yuv444 {
            (*p).chroma_sample_location = ffi::AVChromaLocation::AVCHROMA_LOC_CENTER;
        }
    }
}

/// The latency settings, in each encoder's own option names.
fn options(backend: Backend, config: &EncoderConfig) -> Dictionary<'static> {
    let mut opts = Dictionary::new();
    let Format { ten_bit, yuv444, .. } = config.format;
    match (backend, config.codec, ten_bit, yuv444) {
        // x264 and x265 pick the profile from the pixel format; NVENC and VAAPI are told.
        (Backend::Software, ..) | (_, _, false, false) => {}
        (_, Codec::H264, _, true) => opts.set("profile", "high444p"),
        (_, Codec::Hevc, _, true) => opts.set("profile", "rext"),
        (_, Codec::Av1, ..) => {}
        (_, _, true, false) => opts.set("profile", "main10"),
    }
    let ir = config.intra_refresh;
    match (backend, config.codec) {
        (Backend::Software, Codec::Av1) => {
            // libaom's real-time mode at its fastest, no frames held back (SVT-AV1 1.4's
            // low-delay mode kept three), rows and tiles across the threads; CBR (from the
            // minimum rate `set_rate` gives).
            opts.set("usage", "realtime");
            opts.set("cpu-used", "8");
            opts.set("lag-in-frames", "0");
            opts.set("row-mt", "1");
            opts.set("tiles", &format!("{}x1", config.threads.next_power_of_two().min(8)));
        }
        (Backend::Software, codec) => {
            opts.set("preset", "ultrafast");
            opts.set("tune", "zerolatency");
            opts.set("forced-idr", "1");
            if codec == Codec::H264 {
                opts.set("x264-params", if ir { "intra-refresh=1:repeat-headers=1" } else { "repeat-headers=1" });
            } else {
                // Frame threads would hold frames back: one in, one out. No `info` SEI: x265
                // would repeat ~2 KB of its settings with every key frame's headers (the
                // GameStream sender strips SEI from key frames anyway: core's `annexb`).
                let params = "repeat-headers=1:info=0:frame-threads=1:log-level=warning";
                opts.set("x265-params", &if ir { format!("intra-refresh=1:{params}") } else { params.to_owned() });
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

/// The input frame's planes as conversion targets.
fn planes(f: &mut frame::Video) -> Yuv<'_> {
    let format = f.format();
    let n = if matches!(format, format::Pixel::NV12 | format::Pixel::P010LE) { 2 } else { 3 };
    // SAFETY: the planes of one AVFrame are disjoint allocations (or disjoint ranges of one),
    // so handing out a mutable slice per plane does not alias.
    let mut p: Vec<Plane<'_>> = (0..n)
        .map(|i| {
            let (stride, len) = (f.stride(i), f.data(i).len());
            Plane { data: unsafe { std::slice::from_raw_parts_mut(f.data_mut(i).as_mut_ptr(), len) }, stride }
        })
        .collect();
    if n == 2 {
        let (uv, y) = (p.pop().expect("two planes"), p.pop().expect("two planes"));
        if format == format::Pixel::P010LE { Yuv::P010 { y, uv } } else { Yuv::Nv12 { y, uv } }
    } else {
        let (v, u, y) = (p.pop().expect("three planes"), p.pop().expect("three planes"), p.pop().expect("three planes"));
        match format {
            format::Pixel::YUV420P10LE => Yuv::I010 { y, u, v },
            format::Pixel::YUV444P => Yuv::I444 { y, u, v },
            format::Pixel::YUV444P10LE => Yuv::I410 { y, u, v },
            _ => Yuv::I420 { y, u, v },
        }
    }
}

/// CBR at `bps` with a VBV of about one frame, so a frame never bursts far past its share.
fn set_rate(ctx: &mut ffmpeg_next::codec::context::Context, bps: u64, refresh_mhz: u32) {
    let frame_bits = frame_bits(bps, refresh_mhz);
    // SAFETY: plain integer fields of an AVCodecContext we own (ffmpeg-next has no setter
    // for rc_buffer_size); libx264 picks changes up at the next frame (reconfig).
    unsafe {
        let p = ctx.as_mut_ptr();
        (*p).bit_rate = bps as i64;
        (*p).rc_max_rate = bps as i64;
        // libaom runs CBR when the minimum equals the maximum; the others ignore it.
        (*p).rc_min_rate = bps as i64;
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
        let force_idr = force_idr || std::mem::take(&mut self.idr_after_revoke);
        if let Pixels::Gpu(loan) = &frame.pixels {
            return self.encode_lent(loan, frame.seq, force_idr);
        }
        // Only the damaged rows change; the input frame still holds the rest from the last
        // frame, as long as this encoder has seen one (damage is since the sink's last frame)
        // of the same format (a switch to GPU-converted frames starts afresh).
        let rows = if self.primed == Some(frame.format) { damaged_rows(frame) } else { Some(0..frame.height) };
        if let Some(rows) = rows {
            // SAFETY: makes the buffer ours alone if FFmpeg still held a reference (copying it).
            unsafe { ffi::av_frame_make_writable(self.input.as_mut_ptr()) };
            frame_rows_to_yuv(frame, self.config.format.colour, planes(&mut self.input), rows)?;
        }
        self.primed = Some(frame.format);
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
        let mut out = self.receive(frame.seq);
        if let Some(e) = &mut out {
            e.convert_us = (t1 - t0).as_micros() as u32;
            e.encode_us = t1.elapsed().as_micros() as u32;
        }
        Ok(out)
    }

    fn set_bitrate(&mut self, bps: u64) {
        self.config.bitrate_bps = bps;
        set_rate(&mut self.encoder, bps, self.config.refresh_mhz);
    }

    fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn takes(&self) -> PixelFormat {
        self.takes
    }

    fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        self.hw.as_ref().filter(|_| !self.revoked)?.lent().cloned()
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}
