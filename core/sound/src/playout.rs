//! Sound received over the network, waiting to be played: Opus is decoded into a short
//! buffer a PipeWire node plays from — on the host the session's virtual microphone (fed by
//! the client), on the client the stream's sound. An empty buffer plays silence; a buffer
//! that grows past [`MAX_BUFFERED`] (the far clock running fast) loses its oldest samples.

use parking_lot::Mutex;
use punktfunk_core::channels::RATE;
use std::collections::VecDeque;

/// Played in stereo; mono packets decode to both channels.
pub const CHANNELS: usize = 2;
/// At most 100 ms waits to be played.
const MAX_BUFFERED: usize = (RATE as usize / 10) * CHANNELS;

pub struct Playout {
    buffered: Mutex<VecDeque<f32>>,
    decoder: Mutex<opus::Decoder>,
}

impl Playout {
    pub fn new() -> Result<Self, opus::Error> {
        Ok(Self { buffered: Mutex::default(), decoder: Mutex::new(opus::Decoder::new(RATE, opus::Channels::Stereo)?) })
    }

    /// Decodes one Opus packet (48 kHz, mono or stereo, any frame size up to 120 ms).
    pub fn push_opus(&self, packet: &[u8]) -> Result<(), opus::Error> {
        let mut pcm = [0f32; RATE as usize / 1000 * 120 * CHANNELS];
        let frames = self.decoder.lock().decode_float(packet, &mut pcm, false)?;
        self.push_pcm(&pcm[..frames * CHANNELS]);
        Ok(())
    }

    /// Queues interleaved stereo samples.
    pub fn push_pcm(&self, stereo: &[f32]) {
        let mut b = self.buffered.lock();
        b.extend(stereo);
        let excess = b.len().saturating_sub(MAX_BUFFERED);
        b.drain(..excess);
    }

    /// Fills one graph cycle (interleaved stereo), silence where nothing was sent.
    pub fn fill(&self, out: &mut [f32]) {
        let mut b = self.buffered.lock();
        let n = out.len().min(b.len());
        for (o, s) in out.iter_mut().zip(b.drain(..n)) {
            *o = s;
        }
        out[n..].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What a client sends is untrusted: garbage is an error, never a panic or a flood.
        #[test]
        fn garbage_packets_are_errors_or_bounded_sound(packet in prop::collection::vec(any::<u8>(), 0..1500)) {
            let mic = Playout::new().unwrap();
            let _ = mic.push_opus(&packet);
            prop_assert!(mic.buffered.lock().len() <= MAX_BUFFERED);
        }
    }

    #[test]
    fn plays_what_arrived_then_silence_and_bounds_the_backlog() {
        let mic = Playout::new().unwrap();
        mic.push_pcm(&[0.1, 0.2, 0.3, 0.4]);
        let mut out = [9.0; 6];
        mic.fill(&mut out);
        assert_eq!(out, [0.1, 0.2, 0.3, 0.4, 0.0, 0.0]);
        mic.push_pcm(&vec![0.5; MAX_BUFFERED * 3]);
        assert_eq!(mic.buffered.lock().len(), MAX_BUFFERED);
    }

    #[test]
    fn decodes_mono_opus_to_both_channels() {
        let mut enc = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let mic = Playout::new().unwrap();
        for p in 0..20 {
            let tone: Vec<f32> =
                (0..960).map(|i| ((p * 960 + i) as f32 * 440.0 / RATE as f32 * std::f32::consts::TAU).sin() * 0.5).collect();
            mic.push_opus(&enc.encode_vec_float(&tone, 4000).unwrap()).unwrap();
        }
        let mut out = vec![0.0; 960 * 2];
        mic.fill(&mut out);
        mic.fill(&mut out);
        let (l, r): (f32, f32) = out.chunks_exact(2).fold((0.0, 0.0), |(l, r), f| (l + f[0] * f[0], r + f[1] * f[1]));
        assert!(l > 10.0 && (l - r).abs() < l * 0.01, "left {l} right {r}");
    }
}
