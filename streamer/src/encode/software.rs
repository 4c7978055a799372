//! libx264 / libx265 through FFmpeg, tuned for latency: no B-frames, no lookahead,
//! zerolatency, an infinite GOP with IDR on demand, CBR with about one frame of VBV.

use super::{Codec, EncodeError, EncodedFrame, EncoderConfig, VideoEncoder};
use crate::convert::{bgrx_to_yuv420, Matrix, Plane, Range, Yuv420};
use crate::frame::Frame;
use ffmpeg_next::{codec, encoder, format, frame, picture, threading, Dictionary, Packet};
use std::time::Instant;

pub struct SoftwareEncoder {
    config: EncoderConfig,
    encoder: encoder::video::Encoder,
    input: frame::Video,
    packet: Packet,
    name: &'static str,
}

// SAFETY: the FFmpeg context and frames are only ever used from the thread that owns the
// encoder; nothing in them is shared.
unsafe impl Send for SoftwareEncoder {}

impl SoftwareEncoder {
    pub fn new(config: EncoderConfig) -> Result<Self, EncodeError> {
        ffmpeg_next::init()?;
        // FFmpeg's per-encoder statistics on stderr are noise in a streaming host.
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
        if config.width % 2 != 0 || config.height % 2 != 0 {
            return Err(EncodeError::OddSize(config.width, config.height));
        }
        // x264 reads NV12 directly; x265 only takes planar 4:2:0.
        let (name, pixel) = match config.codec {
            Codec::H264 => ("libx264", format::Pixel::NV12),
            Codec::Hevc => ("libx265", format::Pixel::YUV420P),
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
        let mut opts = Dictionary::new();
        opts.set("preset", "ultrafast");
        opts.set("tune", "zerolatency");
        opts.set("forced-idr", "1");
        match config.codec {
            Codec::H264 => {
                opts.set("x264-params", if config.intra_refresh { "intra-refresh=1:repeat-headers=1" } else { "repeat-headers=1" });
            }
            Codec::Hevc => {
                // Frame threads would hold frames back: one in, one out.
                opts.set("x265-params", if config.intra_refresh { "intra-refresh=1:repeat-headers=1:frame-threads=1:log-level=warning" } else { "repeat-headers=1:frame-threads=1:log-level=warning" });
            }
        }
        let encoder = video.open_with(opts)?;
        Ok(Self { input: frame::Video::new(pixel, config.width, config.height), config, encoder, packet: Packet::empty(), name })
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

impl VideoEncoder for SoftwareEncoder {
    fn encode(&mut self, frame: &Frame, force_idr: bool) -> Result<Option<EncodedFrame>, EncodeError> {
        let want = (self.config.width, self.config.height);
        if (frame.width, frame.height) != want {
            return Err(EncodeError::Size { got: (frame.width, frame.height), want });
        }
        let t0 = Instant::now();
        bgrx_to_yuv420(frame, self.config.colour, planes(&mut self.input))?;
        let t1 = Instant::now();
        self.input.set_pts(Some(frame.seq as i64));
        self.input.set_kind(if force_idr { picture::Type::I } else { picture::Type::None });
        self.encoder.send_frame(&self.input)?;
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
}
