//! `--record`: a sink that encodes every frame and writes the raw bitstream (Annex B, or AV1's
//! low-overhead OBUs) to a file that ffprobe and ffmpeg read as `.h264` / `.hevc` / `.obu`.

use crate::encode::{Choice, Codec, Format, SessionEncoder};
use crate::frame::{Frame, PixelFormat};
use crate::gpu::GpuSurfaces;
use crate::sink::FrameSink;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub struct RecordSink {
    out: BufWriter<File>,
    /// A stream's encoder: reopened at a mode change (with a key frame), frames converted for
    /// another encoder skipped.
    encoder: SessionEncoder,
    pub frames: u64,
}

impl RecordSink {
    pub fn create(path: &Path, codec: Codec, refresh_mhz: u32, bitrate_bps: u64, choice: Choice) -> std::io::Result<Self> {
        let encoder = SessionEncoder::new(codec, Format::default(), refresh_mhz, bitrate_bps, choice, Arc::new(AtomicBool::new(true)));
        Ok(Self { out: BufWriter::new(File::create(path)?), encoder, frames: 0 })
    }
}

impl FrameSink for RecordSink {
    fn consume(&mut self, frame: Frame) -> std::io::Result<()> {
        if let Some(e) = self.encoder.encode(&frame).map_err(std::io::Error::other)? {
            self.out.write_all(&e.data)?;
            self.frames += 1;
        }
        Ok(())
    }

    fn wants(&self) -> PixelFormat {
        self.encoder.wants()
    }

    fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        self.encoder.surfaces()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
