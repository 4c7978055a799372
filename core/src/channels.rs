//! The channel layouts a stream carries and their Opus multistream shape (core/GAMESTREAM.md §5.4,
//! §9.3). Samples are interleaved in Moonlight's (and PipeWire's) order FL FR FC LFE RL RR
//! SL SR, so the session's sink hands over exactly what the encoder wants.

use serde::{Deserialize, Serialize};

/// Sample rate of every GameStream audio stream.
pub const RATE: u32 = 48_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channels {
    Stereo,
    Surround51,
    Surround71,
}

impl Channels {
    /// From a channel count as the client sends it (`surroundAudioInfo`, SDP).
    pub fn from_count(n: u32) -> Option<Self> {
        match n {
            2 => Some(Self::Stereo),
            6 => Some(Self::Surround51),
            8 => Some(Self::Surround71),
            _ => None,
        }
    }

    pub fn count(self) -> usize {
        match self {
            Self::Stereo => 2,
            Self::Surround51 => 6,
            Self::Surround71 => 8,
        }
    }

    /// PipeWire channel positions, in sample order.
    pub fn positions(self) -> &'static [&'static str] {
        &["FL", "FR", "FC", "LFE", "RL", "RR", "SL", "SR"][..self.count()]
    }
}

/// An Opus multistream configuration. The encoder and the client's decoder use the same
/// one, so decoded channel `i` is input channel `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusLayout {
    pub channels: Channels,
    pub streams: u8,
    pub coupled: u8,
    pub bitrate: i32,
}

impl OpusLayout {
    /// Normal quality pairs channels into coupled streams; high quality gives every
    /// channel its own stream (surround only; the client asks for it in ANNOUNCE).
    /// Bitrates are those Moonlight clients are tuned for.
    pub fn new(channels: Channels, high_quality: bool) -> Self {
        let (streams, coupled, bitrate) = match (channels, high_quality) {
            (Channels::Stereo, false) => (1, 1, 96_000),
            (Channels::Stereo, true) => (1, 1, 512_000),
            (Channels::Surround51, false) => (4, 2, 256_000),
            (Channels::Surround51, true) => (6, 0, 1_536_000),
            (Channels::Surround71, false) => (5, 3, 450_000),
            (Channels::Surround71, true) => (8, 0, 2_048_000),
        };
        Self { channels, streams, coupled, bitrate }
    }

    /// Input channel `i` goes to decoded channel `i`.
    pub fn mapping(&self) -> Vec<u8> {
        (0..self.channels.count() as u8).collect()
    }
}

/// DESCRIBE's `surround-params` lines for 5.1 and 7.1, normal quality first, then high
/// quality. The client assumes a normal-quality mapping lists LFE last and rotates it back
/// into place, so that entry is sent rotated; the high-quality one is taken as is.
pub fn surround_params() -> String {
    let mut s = String::new();
    for channels in [Channels::Surround51, Channels::Surround71] {
        for hq in [false, true] {
            let l = OpusLayout::new(channels, hq);
            let mut mapping = l.mapping();
            if !hq {
                mapping[3..].rotate_left(1);
            }
            let digits: String = mapping.iter().map(|m| char::from(b'0' + m)).collect();
            s += &format!("a=fmtp:97 surround-params={}{}{}{digits}\n", channels.count(), l.streams, l.coupled);
        }
    }
    s
}

/// The decoder layout a Moonlight client derives from DESCRIBE (`parseOpusConfigurations`):
/// (streams, coupled streams, mapping). Stereo is fixed; for surround the first
/// `surround-params=N` entry is normal quality, with LFE rotated back from the end, and the
/// second is high quality, taken as is. `None` where the client would find no entry.
pub fn client_layout(describe: &str, channels: Channels, high_quality: bool) -> Option<(u8, u8, Vec<u8>)> {
    let n = channels.count();
    if channels == Channels::Stereo {
        return Some((1, 1, vec![0, 1]));
    }
    let needle = format!("surround-params={n}");
    let mut entries = describe.match_indices(&needle).map(|(i, _)| &describe[i + needle.len() - 1..]);
    let entry = if high_quality { entries.nth(1) } else { entries.next() }?;
    let digits: Vec<u8> = entry.bytes().take(3 + n).map(|b| b.wrapping_sub(b'0')).collect();
    if digits.len() != 3 + n || digits.iter().any(|d| *d > 9) {
        return None;
    }
    let mut mapping = digits[3..].to_vec();
    if !high_quality {
        mapping[3..].rotate_right(1);
    }
    Some((digits[1], digits[2], mapping))
}

/// Converts interleaved samples from one channel count to another: 5.1/7.1 folded down to
/// stereo (centre and surrounds at −3 dB, LFE left out), stereo spread to FL/FR of a wider
/// layout, anything else channel by channel. A session's sink keeps the layout it was
/// launched with; a client resuming with another one gets it converted.
pub fn remix(input: &[f32], from: Channels, to: Channels, out: &mut Vec<f32>) {
    out.clear();
    let (n_in, n_out) = (from.count(), to.count());
    if n_in == n_out {
        out.extend_from_slice(input);
        return;
    }
    const HALF_POWER: f32 = std::f32::consts::FRAC_1_SQRT_2;
    for frame in input.chunks_exact(n_in) {
        if n_out == 2 {
            let (c, sides) = (frame[2] * HALF_POWER, &frame[4..]);
            let left: f32 = sides.iter().step_by(2).sum::<f32>() * HALF_POWER;
            let right: f32 = sides.iter().skip(1).step_by(2).sum::<f32>() * HALF_POWER;
            out.extend([(frame[0] + c + left).clamp(-1.0, 1.0), (frame[1] + c + right).clamp(-1.0, 1.0)]);
        } else {
            out.extend((0..n_out).map(|i| frame.get(i).copied().unwrap_or(0.0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_derives_the_encoders_layout_from_describe() {
        let sdp = surround_params();
        for channels in [Channels::Surround51, Channels::Surround71] {
            for hq in [false, true] {
                let l = OpusLayout::new(channels, hq);
                assert_eq!(client_layout(&sdp, channels, hq), Some((l.streams, l.coupled, l.mapping())), "{channels:?} hq={hq}");
            }
        }
        assert!(sdp.contains("surround-params=642012453\n"), "{sdp}");
        assert!(sdp.contains("surround-params=85301245673\n"), "{sdp}");
    }

    #[test]
    fn layouts_cover_every_channel_once() {
        for channels in [Channels::Stereo, Channels::Surround51, Channels::Surround71] {
            for hq in [false, true] {
                let l = OpusLayout::new(channels, hq);
                assert_eq!(usize::from(l.streams + l.coupled), channels.count());
            }
        }
    }

    #[test]
    fn remix_folds_surround_down_and_spreads_stereo_up() {
        let mut out = Vec::new();
        // One 5.1 frame: FL, FR, FC, LFE, RL, RR.
        remix(&[0.5, 0.0, 0.0, 1.0, 0.0, 0.2], Channels::Surround51, Channels::Stereo, &mut out);
        assert!((out[0] - 0.5).abs() < 1e-6 && (out[1] - 0.2 * std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6, "{out:?}");
        remix(&[0.1, 0.2, 0.3, 0.4], Channels::Stereo, Channels::Surround71, &mut out);
        assert_eq!(out, [0.1, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        remix(&[1.0; 8], Channels::Surround71, Channels::Stereo, &mut out);
        assert_eq!(out, [1.0, 1.0], "clamped");
    }
}
