//! The SDP of RTSP DESCRIBE (what the host offers) and ANNOUNCE (what the client asks for),
//! core/GAMESTREAM.md §5.3 and §5.6. The client searches DESCRIBE with `strstr` and writes ANNOUNCE as
//! `a=name:value ` lines, so both sides are plain attribute lists.

use crate::channels::{Channels, surround_params};
use crate::colour::{Colour, Matrix, Range};
use crate::stream::{Codec, Format};

/// `x-ss-general.encryptionEnabled` / `…Supported` bits.
pub const ENCRYPT_CONTROL_V2: u32 = 0x01;
pub const ENCRYPT_VIDEO: u32 = 0x02;
pub const ENCRYPT_AUDIO: u32 = 0x04;
/// `x-nv-general.featureFlags`: the client encrypts audio whatever the host offers.
const NV_FEATURE_AUDIO_ENCRYPTION: u32 = 0x20;

/// What the host offers in DESCRIBE.
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    pub hevc: bool,
    pub av1: bool,
    /// Touch and pen events (`x-ss-general.featureFlags` 0x01).
    pub touch: bool,
    /// Controller touchpad and motion events (0x02): pads that have them can be made.
    pub controller_touch: bool,
}

impl Offer {
    pub fn describe(&self) -> String {
        let mut s = String::new();
        s += &format!("a=x-ss-general.featureFlags:{}\n", u32::from(self.touch) | u32::from(self.controller_touch) << 1);
        // Control V2 IVs, video and audio encryption supported; control and audio requested
        // (video encryption costs 32 bytes per datagram; clients opt in when they want it).
        s += &format!("a=x-ss-general.encryptionSupported:{}\n", ENCRYPT_CONTROL_V2 | ENCRYPT_VIDEO | ENCRYPT_AUDIO);
        s += &format!("a=x-ss-general.encryptionRequested:{}\n", ENCRYPT_CONTROL_V2 | ENCRYPT_AUDIO);
        if self.hevc {
            s += "sprop-parameter-sets=AAAAAU\n";
        }
        if self.av1 {
            s += "a=rtpmap:98 AV1/90000\n";
        }
        // 5.1 and 7.1 layouts (stereo is fixed in the client).
        s += &surround_params();
        // Reference frame invalidation: the client reports lost frames (0x0301) instead of
        // asking for a key frame; libx264 repairs them from an older picture, the other
        // encoders with a key frame (which the client takes as well).
        s += "a=x-nv-video[0].refPicInvalidation:1\n";
        s
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("ANNOUNCE lacks {0}")]
    Missing(&'static str),
    #[error("{0} has a bad value")]
    Value(&'static str),
    #[error("unsupported bitStreamFormat {0}")]
    Codec(u32),
}

/// The stream the client asked for in ANNOUNCE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Video payload size `S` (core/GAMESTREAM.md §8.2).
    pub packet_size: usize,
    pub bitrate_kbps: u32,
    pub codec: Codec,
    pub hdr: bool,
    /// `chromaSamplingType` 1: 4:4:4.
    pub yuv444: bool,
    pub min_fec_packets: u8,
    /// `encryptionEnabled` bits, with audio forced on when the NV feature flag asks for it.
    pub encryption: u32,
    /// `x-ml-general.featureFlags` (0x02: the client sends ping payloads and connect data).
    pub ml_feature_flags: u32,
    pub audio_channels: Channels,
    /// Opus packet duration, 5 or 10 ms.
    pub audio_packet_ms: u32,
    /// The high-quality surround layout (one stream per channel).
    pub audio_high_quality: bool,
    /// `encoderCscMode`: `(colour space << 1) | full range`.
    pub csc_mode: u32,
    pub max_ref_frames: u32,
    pub slices: u32,
}

impl StreamRequest {
    /// The pictures the client decodes: the matrix and range of `encoderCscMode` (an unknown
    /// colour space is BT.709), 10 bits when it asked for HDR with HEVC or AV1, 4:4:4 chroma
    /// when it asked for that.
    pub fn format(&self) -> Format {
        let matrix = match self.csc_mode >> 1 {
            0 => Matrix::Bt601,
            2 => Matrix::Bt2020,
            _ => Matrix::Bt709,
        };
        let range = if self.csc_mode & 1 != 0 { Range::Full } else { Range::Limited };
        Format { colour: Colour { matrix, range }, ten_bit: self.hdr && self.codec != Codec::H264, yuv444: self.yuv444 }
    }

    /// The client repairs lost frames by invalidating them (it offers the decoder any
    /// number of reference pictures, as moonlight-common-c does when it will).
    pub fn invalidates(&self) -> bool {
        self.max_ref_frames == 0
    }

    pub fn video_encrypted(&self) -> bool {
        self.encryption & ENCRYPT_VIDEO != 0
    }

    pub fn audio_encrypted(&self) -> bool {
        self.encryption & ENCRYPT_AUDIO != 0
    }
}

/// Parses the ANNOUNCE body (bounded by the RTSP reader).
pub fn parse_announce(body: &str) -> Result<StreamRequest, SdpError> {
    let attrs: Vec<(&str, &str)> =
        body.lines().filter_map(|l| l.strip_prefix("a=")).filter_map(|l| l.split_once(':')).map(|(n, v)| (n, v.trim())).collect();
    let get = |name: &'static str| attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let num = |name: &'static str, default: Option<u32>| -> Result<u32, SdpError> {
        match get(name) {
            Some(v) => parse_u32(v).ok_or(SdpError::Value(name)),
            None => default.ok_or(SdpError::Missing(name)),
        }
    };
    let width = num("x-nv-video[0].clientViewportWd", None)?;
    let height = num("x-nv-video[0].clientViewportHt", None)?;
    let fps = num("x-nv-video[0].maxFPS", None)?;
    let packet_size = num("x-nv-video[0].packetSize", None)? as usize;
    // The same limits as /launch: what a session can render.
    if !(16..=8192).contains(&width) || !(16..=8192).contains(&height) {
        return Err(SdpError::Value("x-nv-video[0].clientViewport"));
    }
    if !(1..=480).contains(&fps) {
        return Err(SdpError::Value("x-nv-video[0].maxFPS"));
    }
    if !(64..=16384).contains(&packet_size) || !packet_size.is_multiple_of(16) {
        return Err(SdpError::Value("x-nv-video[0].packetSize"));
    }
    let codec = match num("x-nv-vqos[0].bitStreamFormat", Some(0))? {
        0 => Codec::H264,
        1 => Codec::Hevc,
        2 => Codec::Av1,
        other => return Err(SdpError::Codec(other)),
    };
    let bitrate_kbps = match num("x-ml-video.configuredBitrateKbps", Some(0))? {
        0 => num("x-nv-vqos[0].bw.maximumBitrateKbps", None)?,
        b => b,
    };
    let nv_flags = num("x-nv-general.featureFlags", Some(135))?;
    let mut encryption = num("x-ss-general.encryptionEnabled", Some(0))?;
    if nv_flags & NV_FEATURE_AUDIO_ENCRYPTION != 0 {
        encryption |= ENCRYPT_AUDIO;
    }
    Ok(StreamRequest {
        width,
        height,
        fps,
        packet_size,
        bitrate_kbps: bitrate_kbps.max(100),
        codec,
        hdr: num("x-nv-video[0].dynamicRangeMode", Some(0))? != 0,
        yuv444: num("x-ss-video[0].chromaSamplingType", Some(0))? != 0,
        min_fec_packets: num("x-nv-vqos[0].fec.minRequiredFecPackets", Some(0))?.min(32) as u8,
        encryption,
        ml_feature_flags: num("x-ml-general.featureFlags", Some(0))?,
        audio_channels: Channels::from_count(num("x-nv-audio.surround.numChannels", Some(2))?)
            .ok_or(SdpError::Value("x-nv-audio.surround.numChannels"))?,
        audio_packet_ms: match num("x-nv-aqos.packetDuration", Some(5))? {
            ms @ (5 | 10) => ms,
            _ => return Err(SdpError::Value("x-nv-aqos.packetDuration")),
        },
        audio_high_quality: num("x-nv-audio.surround.AudioQuality", Some(0))? != 0,
        csc_mode: num("x-nv-video[0].encoderCscMode", Some(0))?,
        // Clients that invalidate say 0 (any number), the others 1; one that says nothing
        // gets what asks least of its decoder.
        max_ref_frames: num("x-nv-video[0].maxNumReferenceFrames", Some(1))?,
        slices: num("x-nv-video[0].videoEncoderSlicesPerFrame", Some(1))?.clamp(1, 64),
    })
}

/// `strtoul(…, 0)`: decimal, `0x` hex or leading-zero octal.
fn parse_u32(v: &str) -> Option<u32> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What moonlight-common-c writes for 1280x720@60 H.264 (core/GAMESTREAM.md §5.6).
    pub const ANNOUNCE: &str = "v=0\r\no=android 0 14 IN IPv4 127.0.0.1\r\ns=NVIDIA Streaming Client\r\n\
a=x-ml-general.featureFlags:3 \r\na=x-ss-general.encryptionEnabled:1 \r\n\
a=x-ss-video[0].chromaSamplingType:0 \r\na=x-nv-video[0].clientViewportWd:1280 \r\n\
a=x-nv-video[0].clientViewportHt:720 \r\na=x-nv-video[0].maxFPS:60 \r\n\
a=x-nv-video[0].packetSize:1392 \r\na=x-nv-video[0].rateControlMode:4 \r\n\
a=x-nv-vqos[0].bw.maximumBitrateKbps:8000 \r\na=x-ml-video.configuredBitrateKbps:10000 \r\n\
a=x-nv-general.featureFlags:167 \r\na=x-nv-vqos[0].fec.minRequiredFecPackets:2 \r\n\
a=x-nv-video[0].videoEncoderSlicesPerFrame:1 \r\na=x-nv-vqos[0].bitStreamFormat:0 \r\n\
a=x-nv-video[0].maxNumReferenceFrames:1 \r\na=x-nv-audio.surround.numChannels:2 \r\n\
a=x-nv-aqos.packetDuration:5 \r\na=x-nv-video[0].encoderCscMode:2 \r\nt=0 0\r\nm=video 47998  \r\n";

    #[test]
    fn parses_a_moonlight_announce() {
        let r = parse_announce(ANNOUNCE).unwrap();
        assert_eq!((r.width, r.height, r.fps, r.packet_size), (1280, 720, 60, 1392));
        assert_eq!((r.codec, r.bitrate_kbps, r.min_fec_packets, r.max_ref_frames), (Codec::H264, 10000, 2, 1));
        assert_eq!(r.encryption, ENCRYPT_CONTROL_V2 | ENCRYPT_AUDIO, "audio forced on by NV feature flag 0x20");
        assert!(!r.video_encrypted() && r.audio_encrypted());
        assert_eq!(r.csc_mode, 2);
        assert_eq!((r.audio_channels, r.audio_packet_ms, r.audio_high_quality), (Channels::Stereo, 5, false));
        let surround = ANNOUNCE
            .replace("numChannels:2 ", "numChannels:6 \r\na=x-nv-audio.surround.AudioQuality:1 ")
            .replace("packetDuration:5", "packetDuration:10");
        let r = parse_announce(&surround).unwrap();
        assert_eq!((r.audio_channels, r.audio_packet_ms, r.audio_high_quality), (Channels::Surround51, 10, true));
    }

    #[test]
    fn the_picture_format_is_what_the_client_asked_for() {
        let r = parse_announce(ANNOUNCE).unwrap();
        assert_eq!(r.format(), Format { colour: Colour { matrix: Matrix::Bt709, range: Range::Limited }, ten_bit: false, yuv444: false });
        let with = |csc: &str, hdr: bool, hevc: bool| {
            let mut a = ANNOUNCE.replace("encoderCscMode:2", &format!("encoderCscMode:{csc}"));
            if hdr {
                a = a.replace("t=0 0", "a=x-nv-video[0].dynamicRangeMode:1 \r\nt=0 0");
            }
            if hevc {
                a = a.replace("bitStreamFormat:0", "bitStreamFormat:1");
            }
            parse_announce(&a).unwrap().format()
        };
        assert_eq!(with("0", false, false).colour, Colour { matrix: Matrix::Bt601, range: Range::Limited });
        assert_eq!(with("3", false, false).colour, Colour { matrix: Matrix::Bt709, range: Range::Full });
        assert_eq!(
            with("5", true, true),
            Format { colour: Colour { matrix: Matrix::Bt2020, range: Range::Full }, ten_bit: true, yuv444: false }
        );
        assert!(!with("2", true, false).ten_bit, "H.264 stays 8-bit even when HDR is asked for");
        assert_eq!(with("14", false, false).colour.matrix, Matrix::Bt709, "unknown colour space");
        let full_chroma = ANNOUNCE.replace("chromaSamplingType:0", "chromaSamplingType:1");
        assert!(parse_announce(&full_chroma).unwrap().format().yuv444);
    }

    #[test]
    fn rejects_missing_and_silly_values() {
        let no_width = ANNOUNCE.replace("a=x-nv-video[0].clientViewportWd:1280 \r\n", "");
        assert_eq!(parse_announce(&no_width), Err(SdpError::Missing("x-nv-video[0].clientViewportWd")));
        let odd_packet = ANNOUNCE.replace("packetSize:1392", "packetSize:1391");
        assert_eq!(parse_announce(&odd_packet), Err(SdpError::Value("x-nv-video[0].packetSize")));
        let av1 = ANNOUNCE.replace("bitStreamFormat:0", "bitStreamFormat:2");
        assert_eq!(parse_announce(&av1).map(|r| r.codec), Ok(Codec::Av1));
        let vp9 = ANNOUNCE.replace("bitStreamFormat:0", "bitStreamFormat:3");
        assert_eq!(parse_announce(&vp9), Err(SdpError::Codec(3)));
        let mono = ANNOUNCE.replace("numChannels:2", "numChannels:1");
        assert_eq!(parse_announce(&mono), Err(SdpError::Value("x-nv-audio.surround.numChannels")));
        let long = ANNOUNCE.replace("packetDuration:5", "packetDuration:7");
        assert_eq!(parse_announce(&long), Err(SdpError::Value("x-nv-aqos.packetDuration")));
        let junk = ANNOUNCE.replace("maxFPS:60", "maxFPS:sixty");
        assert_eq!(parse_announce(&junk), Err(SdpError::Value("x-nv-video[0].maxFPS")));
    }

    #[test]
    fn strtoul_bases() {
        assert_eq!((parse_u32("0x10"), parse_u32("010"), parse_u32("0"), parse_u32("x")), (Some(16), Some(8), Some(0), None));
    }

    #[test]
    fn describe_carries_the_markers_the_client_searches() {
        let d = Offer { hevc: true, av1: false, touch: false, controller_touch: true }.describe();
        assert!(d.contains("a=x-ss-general.featureFlags:2\n"), "{d}");
        assert!(d.contains("sprop-parameter-sets=AAAAAU") && !d.contains("AV1/90000"));
        assert!(d.contains("a=x-ss-general.encryptionSupported:7"));
        assert!(d.contains("a=fmtp:97 surround-params=642012453\n"), "{d}");
        // Offered: clients report lost frames for the encoder to repair.
        assert!(d.contains("a=x-nv-video[0].refPicInvalidation:1\n"), "{d}");
    }
}
