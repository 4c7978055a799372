//! H.264 on the CPU through libx264 itself, tuned like the FFmpeg encoders (ultrafast,
//! zerolatency, no B-frames, an infinite GOP with IDR on demand, CBR with about one frame
//! of VBV). Called directly rather than through FFmpeg for one thing FFmpeg's wrapper does
//! not expose: reference invalidation (`x264_encoder_invalidate_reference`), which repairs a
//! frame the client lost with a P-frame from a picture it still holds instead of a key frame.
//!
//! For that the encoder keeps a few older pictures besides the one it searches
//! (`i_dpb_size`; motion search stays on one reference, so it costs no speed). The client's
//! decoder keeps the same pictures: a decoder that misses frames fills the gap in
//! `frame_num` with stand-ins, sliding its window exactly as the encoder's moved over the
//! frames it invalidated, so the older picture is in both.
//!
//! One gap is repaired with a key frame instead: one whose stand-ins would wrap `frame_num`
//! past 0. FFmpeg's H.264 decoder (Moonlight's on most platforms) then loses count of the
//! wraps, gives the pictures after the repair lower picture order counts than those before,
//! and holds them back for a whole cycle of frame numbers (16 frames at x264's settings
//! here: a quarter second of frozen picture).

use super::{Backend, Codec, EncodeError, EncodedFrame, EncoderConfig, Format, VideoEncoder, frame_bits};
use crate::convert::{Layout, Matrix, Range, Yuv, damaged_rows, frame_rows_to_yuv};
use crate::frame::{Frame, PixelFormat};
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::nal::{Nal, RefNal};
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::time::Instant;
use x264_sys as x;

/// H.264 level 5.1's decoded picture buffer, in macroblocks: the older pictures kept for
/// invalidation stay within what decoders of that level hold (8 at 1080p, 5 at 2160p).
const LEVEL_51_DPB_MBS: u32 = 184_320;
/// The most pictures kept for invalidation: a loss is reported within a few frames on any
/// link a stream is usable over.
const MAX_KEPT: u32 = 8;

pub struct X264Encoder {
    config: EncoderConfig,
    param: x::x264_param_t,
    encoder: *mut x::x264_t,
    /// The converted picture x264 reads, in `layout`.
    picture: Vec<u8>,
    layout: Layout,
    /// Where each of `picture`'s planes starts, and its stride (bytes).
    planes: Vec<(usize, usize)>,
    /// `picture` holds a complete frame converted from frames in this format (damage is
    /// since the sink's last frame, so only the damaged rows change after).
    primed: Option<PixelFormat>,
    takes: PixelFormat,
    /// `frame_num` counts modulo this (read from the sequence parameter set); `None` where the
    /// encoder keeps no older pictures (or the set did not parse): no invalidation then.
    frame_num_modulus: Option<u32>,
    /// The recent pictures' input sequence numbers and `frame_num`s, oldest first.
    frame_nums: VecDeque<(u64, u32)>,
}

/// Pictures whose `frame_num` is remembered: more than are ever kept as references.
const FRAME_NUMS_KEPT: usize = 64;

// SAFETY: the x264 handle is used only by the thread that owns the encoder (x264's own
// threads are internal to it); nothing in it is shared.
unsafe impl Send for X264Encoder {}

impl X264Encoder {
    pub fn new(config: EncoderConfig) -> Result<Self, EncodeError> {
        let Format { colour, ten_bit, yuv444 } = config.format;
        if config.codec != Codec::H264 || ten_bit {
            return Err(EncodeError::Unsupported("libx264 here encodes 8-bit H.264"));
        }
        if !config.width.is_multiple_of(2) || !config.height.is_multiple_of(2) {
            return Err(EncodeError::OddSize(config.width, config.height));
        }
        let layout = if yuv444 { Layout::I444 } else { Layout::Nv12 };
        let mut param = MaybeUninit::<x::x264_param_t>::uninit();
        // SAFETY: fills the whole struct (x264's defaults, then the preset's and tune's).
        let mut param = unsafe {
            if x::x264_param_default_preset(param.as_mut_ptr(), c"ultrafast".as_ptr(), c"zerolatency".as_ptr()) != 0 {
                return Err(EncodeError::Probe("x264 lacks the ultrafast preset".into()));
            }
            param.assume_init()
        };
        let p = &mut param;
        p.i_log_level = x::X264_LOG_ERROR as i32;
        p.i_threads = config.threads.clamp(1, 64) as i32;
        p.b_sliced_threads = 1;
        p.i_width = config.width as i32;
        p.i_height = config.height as i32;
        p.i_csp = (if yuv444 { x::X264_CSP_I444 } else { x::X264_CSP_NV12 }) as i32;
        p.i_bitdepth = 8;
        (p.i_fps_num, p.i_fps_den) = (config.refresh_mhz.max(1), 1000);
        (p.i_timebase_num, p.i_timebase_den) = (1000, config.refresh_mhz.max(1));
        p.b_vfr_input = 0;
        p.i_bframe = 0;
        p.i_keyint_max = x::X264_KEYINT_MAX_INFINITE as i32;
        p.b_intra_refresh = i32::from(config.intra_refresh);
        p.i_frame_reference = 1;
        p.i_dpb_size = kept_pictures(&config) as i32;
        p.b_repeat_headers = 1;
        p.b_annexb = 1;
        p.b_aud = 0;
        p.vui.b_fullrange = i32::from(colour.range == Range::Full);
        // ISO/IEC 23091-2 code points: BT.709 primaries and transfer whatever the matrix
        // (the compositor's pixels are sRGB), the matrix the client asked for.
        (p.vui.i_colorprim, p.vui.i_transfer) = (1, 1);
        p.vui.i_colmatrix = match colour.matrix {
            Matrix::Bt601 => 5,
            Matrix::Bt709 => 1,
            Matrix::Bt2020 => 9,
        };
        // Both converters average each 2x2 block: chroma sits at its centre.
        if !yuv444 {
            p.vui.i_chroma_loc = 1;
        }
        set_rate(p, config.bitrate_bps, config.refresh_mhz);
        // SAFETY: a fully initialised parameter set; x264 copies what it keeps.
        let encoder = unsafe { x::x264_encoder_open(&mut param) };
        if encoder.is_null() {
            return Err(EncodeError::Probe(format!("x264 did not open for {}x{}", config.width, config.height)));
        }
        let frame_num_modulus = if param.i_dpb_size > 1 { frame_num_modulus(encoder) } else { None };
        Ok(Self {
            frame_num_modulus,
            frame_nums: VecDeque::with_capacity(FRAME_NUMS_KEPT),
            config,
            param,
            encoder,
            picture: vec![0; layout.frame_len(config.width, config.height)],
            planes: layout.planes(config.width, config.height).iter().map(|p| (p.offset, p.stride)).collect(),
            layout,
            primed: None,
            takes: PixelFormat::Yuv { layout, colour },
        })
    }
}

/// How many pictures the decoder keeps: one, or for invalidation as many as level 5.1
/// allows at this size, up to [`MAX_KEPT`].
fn kept_pictures(config: &EncoderConfig) -> u32 {
    if !config.invalidation {
        return 1;
    }
    let mbs = config.width.div_ceil(16) * config.height.div_ceil(16);
    (LEVEL_51_DPB_MBS / mbs.max(1)).clamp(2, MAX_KEPT)
}

/// What `frame_num` counts modulo in `encoder`'s stream: `2^log2_max_frame_num` from the
/// sequence parameter set x264 will write.
fn frame_num_modulus(encoder: *mut x::x264_t) -> Option<u32> {
    let (mut nals, mut count) = (std::ptr::null_mut(), 0);
    // SAFETY: x264 points `nals` at `count` NAL units it owns, valid until its next call.
    let nals = unsafe {
        if x::x264_encoder_headers(encoder, &mut nals, &mut count) < 0 || nals.is_null() {
            return None;
        }
        std::slice::from_raw_parts(nals, count.max(0) as usize)
    };
    let sps = nals.iter().find(|n| n.i_type == x::nal_unit_type_e_NAL_SPS as i32)?;
    // SAFETY: as above; the payload is `i_payload` bytes, start code included.
    let bytes = unsafe { std::slice::from_raw_parts(sps.p_payload, sps.i_payload.max(0) as usize) };
    let nal = bytes.strip_prefix(&[0, 0, 0, 1]).or_else(|| bytes.strip_prefix(&[0, 0, 1])).filter(|n| !n.is_empty())?;
    let sps = SeqParameterSet::from_bits(RefNal::new(nal, &[], true).rbsp_bits()).ok()?;
    Some(1 << sps.log2_max_frame_num())
}

/// CBR at `bps` with a VBV of about one frame (x264 counts kilobits).
fn set_rate(p: &mut x::x264_param_t, bps: u64, refresh_mhz: u32) {
    let kbps = (bps / 1000).clamp(1, i32::MAX as u64) as i32;
    let frame_kbits = (frame_bits(bps, refresh_mhz) / 1000).clamp(1, i32::MAX as u64) as i32;
    p.rc.i_rc_method = x::X264_RC_ABR as i32;
    p.rc.i_bitrate = kbps;
    p.rc.i_vbv_max_bitrate = kbps;
    p.rc.i_vbv_buffer_size = frame_kbits;
}

impl Drop for X264Encoder {
    fn drop(&mut self) {
        // SAFETY: opened in `new`, closed once.
        unsafe { x::x264_encoder_close(self.encoder) };
    }
}

impl VideoEncoder for X264Encoder {
    fn encode(&mut self, frame: &Frame, force_idr: bool) -> Result<Option<EncodedFrame>, EncodeError> {
        let (width, height) = (self.config.width, self.config.height);
        if (frame.width, frame.height) != (width, height) {
            return Err(EncodeError::Size { got: (frame.width, frame.height), want: (width, height) });
        }
        let t0 = Instant::now();
        let rows = if self.primed == Some(frame.format) { damaged_rows(frame) } else { Some(0..height) };
        if let Some(rows) = rows {
            let out = Yuv::in_buffer(self.layout, width, height, &mut self.picture)?;
            frame_rows_to_yuv(frame, self.config.format.colour, out, rows)?;
        }
        self.primed = Some(frame.format);
        let t1 = Instant::now();
        // SAFETY: an all-zero picture is what `x264_picture_init` starts from; it is then
        // initialised by x264 and pointed at our planes, which outlive the call (x264 copies
        // the input into its own frames before returning).
        let (size, nals, out) = unsafe {
            let mut input = MaybeUninit::<x::x264_picture_t>::zeroed().assume_init();
            x::x264_picture_init(&mut input);
            input.i_type = (if force_idr { x::X264_TYPE_IDR } else { x::X264_TYPE_AUTO }) as i32;
            input.i_pts = frame.seq as i64;
            input.img.i_csp = self.param.i_csp;
            input.img.i_plane = self.planes.len() as i32;
            for (i, &(offset, stride)) in self.planes.iter().enumerate() {
                input.img.i_stride[i] = stride as i32;
                input.img.plane[i] = self.picture.as_mut_ptr().add(offset);
            }
            let mut out = MaybeUninit::<x::x264_picture_t>::zeroed().assume_init();
            let (mut nals, mut count) = (std::ptr::null_mut(), 0);
            let size = x::x264_encoder_encode(self.encoder, &mut nals, &mut count, &mut input, &mut out);
            (size, nals, out)
        };
        if size < 0 {
            return Err(EncodeError::Probe(format!("x264 failed to encode frame {}", frame.seq)));
        }
        if size == 0 || nals.is_null() {
            return Ok(None);
        }
        // SAFETY: x264 lays a frame's NAL units out back to back from the first one's payload,
        // `size` bytes in all, valid until the next call.
        let data = unsafe { std::slice::from_raw_parts((*nals).p_payload, size as usize) }.to_vec();
        let keyframe = out.b_keyframe != 0;
        if let Some(modulus) = self.frame_num_modulus {
            // Every picture is a reference (no B-frames): `frame_num` counts them from the IDR.
            // Nothing before an IDR can be repaired from after it: those are forgotten.
            let idr = out.i_type == x::X264_TYPE_IDR as i32;
            if idr {
                self.frame_nums.clear();
            }
            let frame_num = if idr { 0 } else { self.frame_nums.back().map_or(0, |&(_, n)| (n + 1) % modulus) };
            if self.frame_nums.len() == FRAME_NUMS_KEPT {
                self.frame_nums.pop_front();
            }
            self.frame_nums.push_back((out.i_pts as u64, frame_num));
        }
        Ok(Some(EncodedFrame {
            data,
            keyframe,
            seq: out.i_pts as u64,
            convert_us: (t1 - t0).as_micros() as u32,
            encode_us: t1.elapsed().as_micros() as u32,
        }))
    }

    fn set_bitrate(&mut self, bps: u64) {
        self.config.bitrate_bps = bps;
        set_rate(&mut self.param, bps, self.config.refresh_mhz);
        // SAFETY: the parameters the encoder was opened with, the rate changed; x264 applies
        // them from the next frame.
        if unsafe { x::x264_encoder_reconfig(self.encoder, &mut self.param) } < 0 {
            tracing::warn!(bps, "x264 refused the new bitrate");
        }
    }

    fn invalidate_from(&mut self, seq: u64) -> bool {
        let Some(modulus) = self.frame_num_modulus else { return false };
        let Some(at) = self.frame_nums.iter().position(|&(s, _)| s == seq) else { return false };
        // The client lacks every picture from `seq` to the newest: its decoder makes up that
        // many stand-ins. Where their frame numbers would wrap past 0, a key frame (see above).
        let (first, missing) = (self.frame_nums[at].1, (self.frame_nums.len() - at) as u32);
        if first == 0 || first + missing > modulus {
            return false;
        }
        // SAFETY: between frames, on the encoder's own thread. x264 itself makes the next
        // frame an IDR when no picture older than `seq` is left.
        unsafe { x::x264_encoder_invalidate_reference(self.encoder, seq as i64) == 0 }
    }

    fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn name(&self) -> &'static str {
        "libx264"
    }

    fn takes(&self) -> PixelFormat {
        self.takes
    }

    fn backend(&self) -> Backend {
        Backend::Software
    }
}
