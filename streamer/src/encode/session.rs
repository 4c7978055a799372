//! The encoder a stream's sender holds: opened at the first frame's size, reopened when the
//! output is resized, a key frame whenever one was asked for (or after a reopen).

use super::{Backend, Choice, Codec, EncodeError, EncodedFrame, EncoderConfig, Format, Opened, VideoEncoder, open};
use crate::frame::{Frame, PixelFormat, Pixels};
use crate::gpu::GpuSurfaces;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// This process's share of the cores for its software encoder, as the daemon sets it from
/// the number of sessions streaming (`Command::EncoderThreads`); 0 until it does. A stream
/// process is one session, so the share is the process's.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the share: a software encoder open at another is reopened at the next frame (one
/// key frame, when a session starts or ends beside this one).
pub fn set_threads(threads: usize) {
    THREADS.store(threads, Ordering::Relaxed);
}

/// The threads an encoder opened now gets: the share, else all cores but one (left for the
/// compositor and the sender).
fn threads(share: &AtomicUsize, config: &EncoderConfig) -> usize {
    match share.load(Ordering::Relaxed) {
        0 => config.threads.saturating_sub(1).max(1),
        share => share,
    }
}

pub struct SessionEncoder {
    codec: Codec,
    format: Format,
    refresh_mhz: u32,
    bitrate_bps: u64,
    choice: Choice,
    encoder: Option<Box<dyn VideoEncoder>>,
    /// Why the GPU encoder that is there did not open, when the open one is another.
    fell_back: Option<String>,
    /// Set by key-frame requests (the client's, a new peer's); taken by the next frame.
    idr: Arc<AtomicBool>,
    /// The process's share of the cores (`THREADS`; a test's own).
    share: &'static AtomicUsize,
    /// The client repairs losses by invalidation: encoders keep older pictures.
    invalidation: bool,
}

impl SessionEncoder {
    pub fn new(codec: Codec, format: Format, refresh_mhz: u32, bitrate_bps: u64, choice: Choice, idr: Arc<AtomicBool>) -> Self {
        Self { codec, format, refresh_mhz, bitrate_bps, choice, encoder: None, fell_back: None, idr, share: &THREADS, invalidation: false }
    }

    /// Encoders it opens keep older pictures, for a client that reports lost frames.
    pub fn invalidating(self, invalidation: bool) -> Self {
        Self { invalidation, ..self }
    }

    /// Forgets the pictures from input frame `seq` on (see [`VideoEncoder::invalidate_from`]);
    /// false where the open encoder cannot.
    pub fn invalidate_from(&mut self, seq: u64) -> bool {
        self.encoder.as_mut().is_some_and(|e| e.invalidate_from(seq))
    }

    /// The next frame will be a key frame.
    pub fn request_keyframe(&self) {
        self.idr.store(true, Ordering::Relaxed);
    }

    pub fn set_bitrate(&mut self, bps: u64) {
        self.bitrate_bps = bps;
        if let Some(e) = self.encoder.as_mut() {
            e.set_bitrate(bps);
        }
    }

    /// The frames the encoder would like: converted already, in its layout and colour.
    pub fn wants(&self) -> PixelFormat {
        self.encoder.as_ref().map_or(PixelFormat::Bgrx8888, |e| e.takes())
    }

    /// The FFmpeg encoder's name, once one is open.
    pub fn name(&self) -> Option<&'static str> {
        self.encoder.as_ref().map(|e| e.name())
    }

    /// Why a GPU encoder whose driver is there did not open, when this one is another.
    pub fn fell_back(&self) -> Option<&str> {
        self.fell_back.as_deref()
    }

    /// The encoder's surfaces, lent to draw frames into on the GPU.
    pub fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        self.encoder.as_ref()?.surfaces()
    }

    pub fn encode(&mut self, frame: &Frame) -> Result<Option<EncodedFrame>, EncodeError> {
        let size = (frame.width, frame.height);
        let mut config = EncoderConfig::new(self.codec, frame.width, frame.height, self.refresh_mhz, self.bitrate_bps);
        config.format = self.format;
        config.threads = threads(self.share, &config);
        config.invalidation = self.invalidation;
        let reopen = self.encoder.as_ref().is_none_or(|e| {
            let open = e.config();
            (open.width, open.height) != size
                // A new share of the cores (GPU encoders take no threads).
                || (e.backend() == Backend::Software && open.threads != config.threads)
        });
        if reopen {
            self.encoder = None;
            let Opened { encoder, report, fell_back } = open(self.choice, config)?;
            tracing::info!(threads = config.threads, "{report}");
            (self.encoder, self.fell_back) = (Some(encoder), fell_back);
            self.request_keyframe();
        }
        let encoder = self.encoder.as_mut().expect("just opened");
        let takes = match &frame.pixels {
            Pixels::Gpu(loan) => encoder.surfaces().is_some_and(|s| s.id == loan.surfaces().id),
            _ => frame.format == PixelFormat::Bgrx8888 || frame.format == encoder.takes(),
        };
        if !takes {
            // Made for the encoder before this one (a new stream's format, another size's
            // surfaces): the next frame is made for this one. Any key frame asked for waits.
            return Ok(None);
        }
        let force = self.idr.swap(false, Ordering::Relaxed);
        encoder.encode(frame, force)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufferPool;
    use crate::testing::grey_frame;

    #[test]
    fn a_new_share_of_the_cores_reopens_a_software_encoder_at_once_with_one_key_frame() {
        static SHARE: AtomicUsize = AtomicUsize::new(0);
        let choice = Choice::Only(Backend::Software);
        let mut encoder = SessionEncoder::new(Codec::H264, Format::default(), 60_000, 2_000_000, choice, Arc::default());
        encoder.share = &SHARE;
        let pool = BufferPool::new(320 * 240 * 4, 2);
        let frame = |seq| grey_frame(&pool, 320, 240, seq, seq as u8 * 40);
        let first = encoder.encode(&frame(0)).unwrap().expect("x264 in low-delay mode gives each frame back at once");
        assert!(first.keyframe);
        let alone = encoder.encoder.as_ref().unwrap().config().threads;
        assert!(!encoder.encode(&frame(1)).unwrap().unwrap().keyframe);
        // Another session started: this one's share is set (a different one from now).
        SHARE.store(alone + 1, Ordering::Relaxed);
        let next = encoder.encode(&frame(2)).unwrap().unwrap();
        assert_eq!(encoder.encoder.as_ref().unwrap().config().threads, alone + 1);
        assert!(next.keyframe, "a reopened encoder starts with a key frame");
        // The same share again changes nothing.
        assert!(!encoder.encode(&frame(3)).unwrap().unwrap().keyframe);
        assert_eq!(encoder.fell_back(), None);
    }
}
