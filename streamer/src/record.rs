//! `--record`: a sink that encodes every frame and writes the raw bitstream (Annex B, or AV1's
//! low-overhead OBUs) to a file that ffprobe and ffmpeg read as `.h264` / `.hevc` / `.obu`.

use crate::encode::{open, Choice, Codec, EncoderConfig, VideoEncoder};
use crate::frame::{Frame, PixelFormat};
use crate::sink::FrameSink;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub struct RecordSink {
    out: BufWriter<File>,
    codec: Codec,
    fps_mhz: u32,
    bitrate_bps: u64,
    choice: Choice,
    encoder: Option<Box<dyn VideoEncoder>>,
    pub frames: u64,
}

impl RecordSink {
    pub fn create(path: &Path, codec: Codec, fps_mhz: u32, bitrate_bps: u64, choice: Choice) -> std::io::Result<Self> {
        Ok(Self { out: BufWriter::new(File::create(path)?), codec, fps_mhz, bitrate_bps, choice, encoder: None, frames: 0 })
    }
}

impl FrameSink for RecordSink {
    fn consume(&mut self, frame: Frame) -> std::io::Result<()> {
        // A mode change arrives as a frame of a new size: start a new encoder (and an IDR).
        let size = (frame.width, frame.height);
        if self.encoder.as_ref().is_none_or(|e| (e.config().width, e.config().height) != size) {
            let config = EncoderConfig::new(self.codec, frame.width, frame.height, self.fps_mhz, self.bitrate_bps);
            let (encoder, report) = open(self.choice, config).map_err(std::io::Error::other)?;
            tracing::info!("{report}");
            self.encoder = Some(encoder);
        }
        let encoder = self.encoder.as_mut().expect("just created");
        if let Some(e) = encoder.encode(&frame, false).map_err(std::io::Error::other)? {
            self.out.write_all(&e.data)?;
            self.frames += 1;
        }
        Ok(())
    }

    fn wants(&self) -> PixelFormat {
        self.encoder.as_ref().map_or(PixelFormat::Bgrx8888, |e| e.takes())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
