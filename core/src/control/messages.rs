//! What host and client say on the control stream. Closing the connection leaves a session
//! running (the client may come back, as with Moonlight); `Stop` ends it.

use crate::gamepad::{PadEvent, PadFeedback};
use crate::input::InputEvent;
use serde::{Deserialize, Serialize};

/// Client → host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Hello {
        version: u32,
        name: String,
    },
    /// SPAKE2 message of a client pairing with the PIN it shows its user.
    PairStart {
        spake: Vec<u8>,
    },
    /// The client's key confirmation, after it checked the host's.
    PairConfirm {
        mac: Vec<u8>,
    },
    /// Launch (or resume) an app and start streaming.
    Start(StartRequest),
    /// Change the stream without a new session.
    Reconfigure(Reconfigure),
    Input(InputEvent),
    /// One of the client's controllers (its pad on the host is made on arrival or first
    /// state and removed when a state clears its active bit or the connection closes).
    Pad(PadEvent),
    /// The decoder lost a frame: send a key frame.
    RequestKeyframe,
    /// Frames `first..=last` will never arrive (ids in wrapping order); the client drops
    /// every frame after them until a key frame or a repair (with `repairs` agreed at the
    /// start): encode the next frame from a picture before `first`.
    FramesLost {
        first: u32,
        last: u32,
    },
    /// What the client received so far (sent every second while streaming).
    Stats(ReceiveStats),
    /// End the session (the app is asked to quit).
    Stop,
    /// Asks for the host's clock (`client_us`: the client's clock, echoed in `Pong`).
    Ping {
        client_us: u64,
    },
    /// The client's clipboard holds this text now (at most [`MAX_CLIPBOARD`] bytes); the
    /// session's apps paste it where the host permits this client its clipboard.
    Clipboard {
        text: String,
    },
}

/// The longest clipboard text either side sends; a client does not send a longer one.
pub const MAX_CLIPBOARD: usize = 32 * 1024;

/// Host → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostMessage {
    Welcome {
        version: u32,
        name: String,
        paired: bool,
    },
    PairReply {
        spake: Vec<u8>,
        mac: Vec<u8>,
    },
    Paired,
    /// The request was refused; the connection closes after this.
    Refused {
        reason: String,
    },
    Started(Started),
    /// The stream changed as asked (or as far as the host could).
    Reconfigured(Reconfigure),
    /// The session is over (its app exited or it was stopped).
    Ended {
        reason: String,
    },
    /// Answers `Ping`: the client's stamp and the host's clock when it answered (the clock
    /// of the data plane's frame timestamps), for the clock offset (see `clock`).
    Pong {
        client_us: u64,
        host_us: u64,
    },
    /// An app in the session copied this text (to a client that asked for the clipboard in
    /// its `Start`, where the host permits it).
    Clipboard {
        text: String,
    },
    /// What a game asked of one of the client's controllers: rumble, trigger rumble, LED
    /// colour, motion readings (sent as `Pad` `motion` events at the asked rate).
    Pad(PadFeedback),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    /// App title from the host's catalog; empty for the desktop.
    pub app: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// "h264", "hevc" or "av1".
    pub codec: String,
    pub bitrate_kbps: u32,
    /// Video FEC parity in percent (0..=100).
    pub fec_percent: u16,
    /// Data-plane payload per datagram (core/PROTOCOL.md `shard_len`).
    pub shard_len: u32,
    /// 10-bit video (HEVC Main10, AV1 Main); `hevc` or `av1`.
    #[serde(default)]
    pub ten_bit: bool,
    /// Full-resolution chroma (4:4:4): sharp coloured text, at more bits per frame; `h264` or `hevc`.
    #[serde(default)]
    pub yuv444: bool,
    /// The client takes blocks of any parity up to the `fec_max_percent` the host names:
    /// the host may then move its parity with the loss the client reports.
    #[serde(default)]
    pub fec_adaptive: bool,
    /// Share the clipboard both ways, where the host permits this client to.
    #[serde(default)]
    pub clipboard: bool,
    /// The client reports lost frames (`FramesLost`) and drops the frames after a loss until
    /// a key frame or a repair (a frame flagged `FLAG_REPAIR`): the host may then mend a
    /// loss with a P-frame from an older picture instead of a key frame.
    #[serde(default)]
    pub repairs: bool,
}

impl StartRequest {
    /// What a host can serve: the mode limits of a session, an even datagram payload that
    /// fits a jumbo frame, FEC up to doubling the data.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !(16..=8192).contains(&self.width) || !(16..=8192).contains(&self.height) || !(1..=480).contains(&self.fps) {
            return Err("mode out of range (16..=8192 pixels, 1..=480 Hz)");
        }
        if !matches!(self.codec.as_str(), "h264" | "hevc" | "av1") {
            return Err("codec must be h264, hevc or av1");
        }
        if self.ten_bit && self.codec == "h264" {
            return Err("10-bit video needs hevc or av1");
        }
        if self.yuv444 && self.codec == "av1" {
            return Err("4:4:4 needs h264 or hevc");
        }
        if !(256..=8952).contains(&self.shard_len) || !self.shard_len.is_multiple_of(2) {
            return Err("shard_len must be even, 256..=8952");
        }
        if self.fec_percent > 100 || self.bitrate_kbps == 0 {
            return Err("fec_percent must be 0..=100 and the bitrate positive");
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Host UDP port of the data plane: the client sends its hello there, video comes back.
    pub data_port: u16,
    /// Names this start (the host's record of which connection steers the session).
    pub token: u64,
    /// AES-128-GCM key of the host → client direction, video and sound (fresh per start).
    pub key: [u8; 16],
    /// Key of the client → host direction: the data-plane hello and the microphone.
    pub mic_key: [u8; 16],
    pub shard_len: u32,
    pub fec_percent: u16,
    /// The most parity the host may move to (the client sizes for it); 0: fixed parity.
    #[serde(default)]
    pub fec_max_percent: u16,
    pub max_frame_len: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The video is 10-bit (HEVC Main10, AV1).
    #[serde(default)]
    pub ten_bit: bool,
    /// The video is 4:4:4.
    #[serde(default)]
    pub yuv444: bool,
    /// The host takes `FramesLost` and flags its repairs (the client asked for them).
    #[serde(default)]
    pub repairs: bool,
}

/// The client's view of the stream, for the host's status and tuning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveStats {
    pub frames_received: u64,
    pub frames_lost: u64,
    /// Frames that needed FEC.
    pub frames_recovered: u64,
    pub datagrams: u64,
    /// Video datagrams that never arrived (gaps below the highest sequence number), since
    /// the start: what the host's parity follows.
    #[serde(default)]
    pub video_lost: u64,
    /// The most video datagrams lost in a row since the last report: the host gives every
    /// block that much parity (up to [`crate::native::config::MAX_BURST_PARITY`]).
    #[serde(default)]
    pub video_burst: u64,
    pub audio_packets: u64,
    /// Host frame ready → reassembled, over the last second (µs, through the clock offset;
    /// 0 while no offset is known).
    pub latency_us_p50: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconfigure {
    pub bitrate_kbps: Option<u32>,
    /// A new mode (width, height, fps): the output is resized, apps keep running.
    pub mode: Option<(u32, u32, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json() {
        let m = ClientMessage::Input(InputEvent::Key { code: 30, pressed: true });
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"type":"input","Key":{"code":30,"pressed":true}}"#);
        assert_eq!(serde_json::from_str::<ClientMessage>(&json).unwrap(), m);
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"launch_missiles"}"#).is_err());
    }

    #[test]
    fn start_requests_are_checked() {
        let ok = StartRequest {
            app: String::new(),
            width: 1280,
            height: 720,
            fps: 60,
            codec: "h264".into(),
            bitrate_kbps: 20_000,
            fec_percent: 20,
            shard_len: 1400,
            ten_bit: false,
            yuv444: false,
            fec_adaptive: false,
            clipboard: false,
            repairs: false,
        };
        assert_eq!(ok.validate(), Ok(()));
        for bad in [
            StartRequest { width: 0, ..ok.clone() },
            StartRequest { fps: 1000, ..ok.clone() },
            StartRequest { codec: "vp9".into(), ..ok.clone() },
            StartRequest { shard_len: 1401, ..ok.clone() },
            StartRequest { fec_percent: 101, ..ok.clone() },
            StartRequest { ten_bit: true, ..ok.clone() },
            StartRequest { codec: "av1".into(), yuv444: true, ..ok.clone() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(StartRequest { codec: "hevc".into(), ten_bit: true, ..ok.clone() }.validate(), Ok(()));
        assert_eq!(StartRequest { codec: "av1".into(), ten_bit: true, ..ok.clone() }.validate(), Ok(()));
        // A client from before 10-bit video leaves the field out: 8 bits.
        let mut old = serde_json::to_value(&ok).unwrap();
        old.as_object_mut().unwrap().remove("ten_bit");
        assert_eq!(serde_json::from_value::<StartRequest>(old).unwrap(), ok);
    }
}
