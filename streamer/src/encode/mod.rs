//! Video encoders behind one interface: NVENC, VAAPI and software (libx265, libaom) through
//! FFmpeg, H.264 on the CPU through libx264 itself (`x264.rs`: reference invalidation),
//! probed at startup and chosen by [`select::open`].

mod ffmpeg;
pub mod select;
mod session;
mod vaapi;
mod x264;

pub use ffmpeg::FfmpegEncoder;
pub use punktfunk_core::stream::{Codec, Format};
pub use select::{Choice, Opened, open, software};
pub use session::{SessionEncoder, set_threads};
pub use x264::X264Encoder;

use crate::frame::{Frame, PixelFormat};

/// Where encoding runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// libx264 / libx265 on the CPU.
    Software,
    /// NVIDIA NVENC.
    Nvenc,
    /// VAAPI (Intel, AMD).
    Vaapi,
}

/// What the stream negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    /// Frame rate in millihertz (59.94 Hz = 59940).
    pub refresh_mhz: u32,
    pub bitrate_bps: u64,
    pub format: Format,
    /// Encoder threads (FFmpeg's API default is 1).
    pub threads: usize,
    /// Periodic intra refresh instead of key frames (smoother bitrate, slower recovery).
    pub intra_refresh: bool,
    /// The client repairs lost frames by invalidating them ([`VideoEncoder::invalidate_from`]):
    /// keep older pictures to fall back on.
    pub invalidation: bool,
}

impl EncoderConfig {
    pub fn new(codec: Codec, width: u32, height: u32, refresh_mhz: u32, bitrate_bps: u64) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
        Self {
            codec,
            width,
            height,
            refresh_mhz,
            bitrate_bps,
            format: Format::default(),
            threads,
            intra_refresh: false,
            invalidation: false,
        }
    }
}

/// One frame's share of `bps` at `refresh_mhz`, in bits: the rate controls' VBV size (a
/// frame never bursts far past its share).
fn frame_bits(bps: u64, refresh_mhz: u32) -> u64 {
    bps.saturating_mul(1000) / u64::from(refresh_mhz.max(1))
}

/// One encoded access unit (Annex B).
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
    /// The input frame's sequence number.
    pub seq: u64,
    pub convert_us: u32,
    pub encode_us: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("no {0} encoder in this FFmpeg build")]
    Unavailable(&'static str),
    #[error("{0}")]
    Probe(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("frame is {got:?}, the encoder was opened for {want:?}")]
    Size { got: (u32, u32), want: (u32, u32) },
    #[error("width and height must be even, got {0}x{1}")]
    OddSize(u32, u32),
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),
    #[error("ffmpeg: {0}")]
    Ffmpeg(#[from] ffmpeg_next::Error),
}

pub trait VideoEncoder: Send {
    /// Encodes one frame; `force_idr` makes it a key frame with parameter sets.
    fn encode(&mut self, frame: &Frame, force_idr: bool) -> Result<Option<EncodedFrame>, EncodeError>;
    /// Takes effect from the next frame.
    fn set_bitrate(&mut self, bps: u64);
    fn config(&self) -> &EncoderConfig;
    /// The FFmpeg encoder's name (`libx264`, `h264_nvenc`, …).
    fn name(&self) -> &'static str;
    /// The converted frames it takes as they are (it takes BGRX too, converting it).
    fn takes(&self) -> PixelFormat;
    /// Its surfaces, lent to be drawn into on the GPU (frames in them cost no copy).
    fn surfaces(&self) -> Option<std::sync::Arc<crate::gpu::GpuSurfaces>> {
        None
    }
    fn backend(&self) -> Backend;
    /// Forgets the pictures from input frame `seq` on as references (the client lost them):
    /// the next frame refers only to older ones, or is a key frame where none is left.
    /// False where this encoder cannot: the caller asks for a key frame instead.
    fn invalidate_from(&mut self, _seq: u64) -> bool {
        false
    }
}
