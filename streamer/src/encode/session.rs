//! The encoder a stream's sender holds: opened at the first frame's size, reopened when the
//! output is resized, a key frame whenever one was asked for (or after a reopen).

use super::{Choice, Codec, EncodeError, EncodedFrame, EncoderConfig, Format, VideoEncoder, open};
use crate::frame::{Frame, PixelFormat, Pixels};
use crate::gpu::GpuSurfaces;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct SessionEncoder {
    codec: Codec,
    format: Format,
    refresh_mhz: u32,
    bitrate_bps: u64,
    choice: Choice,
    encoder: Option<Box<dyn VideoEncoder>>,
    /// Set by key-frame requests (the client's, a new peer's); taken by the next frame.
    idr: Arc<AtomicBool>,
}

impl SessionEncoder {
    pub fn new(codec: Codec, format: Format, refresh_mhz: u32, bitrate_bps: u64, choice: Choice, idr: Arc<AtomicBool>) -> Self {
        Self { codec, format, refresh_mhz, bitrate_bps, choice, encoder: None, idr }
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

    /// The encoder's surfaces, lent to draw frames into on the GPU.
    pub fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        self.encoder.as_ref()?.surfaces()
    }

    pub fn encode(&mut self, frame: &Frame) -> Result<Option<EncodedFrame>, EncodeError> {
        let size = (frame.width, frame.height);
        if self.encoder.as_ref().is_none_or(|e| (e.config().width, e.config().height) != size) {
            let mut config = EncoderConfig::new(self.codec, frame.width, frame.height, self.refresh_mhz, self.bitrate_bps);
            config.format = self.format;
            // Leave a core for the compositor and the sender.
            config.threads = config.threads.saturating_sub(1).max(1);
            let (encoder, report) = open(self.choice, config)?;
            tracing::info!("{report}");
            self.encoder = Some(encoder);
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
