//! Video decoding with FFmpeg (software here; hardware decoders are for the windowed client)
//! into RGB pictures.

use ffmpeg_next as ffmpeg;

pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// Packed RGB, `width * 3` bytes per row.
    pub rgb: Vec<u8>,
}

pub struct Decoder {
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(ffmpeg::software::scaling::Context, (u32, u32, ffmpeg::format::Pixel))>,
    frame: ffmpeg::frame::Video,
}

impl Decoder {
    pub fn new(hevc: bool) -> anyhow::Result<Self> {
        ffmpeg::init()?;
        let id = if hevc { ffmpeg::codec::Id::HEVC } else { ffmpeg::codec::Id::H264 };
        let codec = ffmpeg::decoder::find(id).ok_or_else(|| anyhow::anyhow!("FFmpeg has no {id:?} decoder"))?;
        let decoder = ffmpeg::codec::Context::new_with_codec(codec).decoder().video()?;
        Ok(Self { decoder, scaler: None, frame: ffmpeg::frame::Video::empty() })
    }

    /// Decodes one access unit; the pictures it completes go to `each`.
    pub fn decode(&mut self, data: &[u8], mut each: impl FnMut(Picture)) -> anyhow::Result<()> {
        self.decoder.send_packet(&ffmpeg::Packet::copy(data))?;
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            let (w, h, fmt) = (self.frame.width(), self.frame.height(), self.frame.format());
            if self.scaler.as_ref().is_none_or(|(_, k)| *k != (w, h, fmt)) {
                let ctx = ffmpeg::software::scaling::Context::get(fmt, w, h, ffmpeg::format::Pixel::RGB24, w, h, ffmpeg::software::scaling::Flags::BILINEAR)?;
                self.scaler = Some((ctx, (w, h, fmt)));
            }
            let mut rgb = ffmpeg::frame::Video::empty();
            self.scaler.as_mut().expect("just made").0.run(&self.frame, &mut rgb)?;
            let (stride, row) = (rgb.stride(0), w as usize * 3);
            let mut packed = Vec::with_capacity(row * h as usize);
            for y in 0..h as usize {
                packed.extend_from_slice(&rgb.data(0)[y * stride..y * stride + row]);
            }
            each(Picture { width: w, height: h, rgb: packed });
        }
        Ok(())
    }
}

impl Picture {
    /// Binary PPM (P6): what any image tool reads.
    pub fn ppm(&self) -> Vec<u8> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.rgb);
        out
    }
}
