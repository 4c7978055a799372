//! Opus at the layout the client decodes: 48 kHz, CBR (audio FEC needs every packet of a
//! block the same length), restricted low delay, one packet per `packet_ms`.

use super::layout::{OpusLayout, RATE};

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("Opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("a frame of {got} samples, the encoder takes {want}")]
    FrameSize { got: usize, want: usize },
}

pub struct AudioEncoder {
    inner: opus::MSEncoder,
    frame_samples: usize,
    out: Vec<u8>,
}

impl AudioEncoder {
    /// `packet_ms` is 5 or 10 (what the client negotiated); Opus also takes 2.5 and 20.
    pub fn new(layout: OpusLayout, packet_ms: u32) -> Result<Self, EncodeError> {
        let mut inner = opus::MSEncoder::new(RATE, layout.streams, layout.coupled, &layout.mapping(), opus::Application::LowDelay)?;
        inner.set_bitrate(opus::Bitrate::Bits(layout.bitrate))?;
        inner.set_vbr(false)?;
        let frame_samples = (RATE / 1000 * packet_ms) as usize * layout.channels.count();
        Ok(Self { inner, frame_samples, out: vec![0; 4000] })
    }

    /// Interleaved samples the encoder takes per packet.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Encodes one packet's worth of interleaved samples.
    pub fn encode(&mut self, pcm: &[f32]) -> Result<&[u8], EncodeError> {
        if pcm.len() != self.frame_samples {
            return Err(EncodeError::FrameSize { got: pcm.len(), want: self.frame_samples });
        }
        let n = self.inner.encode_float(pcm, &mut self.out)?;
        Ok(&self.out[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::Channels;
    use super::*;

    #[test]
    fn packets_have_constant_size_and_decode_back() {
        let layout = OpusLayout::new(Channels::Surround51, false);
        let mut enc = AudioEncoder::new(layout, 5).unwrap();
        let mut dec = opus::MSDecoder::new(RATE, layout.streams, layout.coupled, &layout.mapping()).unwrap();
        let n = enc.frame_samples() / 6;
        let mut sizes = std::collections::BTreeSet::new();
        let mut energy = [0f32; 6];
        for p in 0..100 {
            // Loud on the centre channel only, silent (then noisy) elsewhere.
            let pcm: Vec<f32> = (0..n * 6)
                .map(|i| {
                    let t = (p * n + i / 6) as f32 / RATE as f32;
                    if i % 6 == 2 { (t * 440.0 * std::f32::consts::TAU).sin() * 0.5 } else { 0.0 }
                })
                .collect();
            let packet = enc.encode(&pcm).unwrap().to_vec();
            sizes.insert(packet.len());
            let mut out = vec![0f32; n * 6];
            assert_eq!(dec.decode_float(&packet, &mut out, false).unwrap(), n);
            if p > 20 {
                for (i, s) in out.iter().enumerate() {
                    energy[i % 6] += s * s;
                }
            }
        }
        assert_eq!(sizes.len(), 1, "CBR: {sizes:?}");
        let centre = energy[2];
        assert!(energy.iter().enumerate().all(|(i, e)| i == 2 || *e < centre / 100.0), "{energy:?}");
        assert!(enc.encode(&[0.0; 10]).is_err());
    }
}
