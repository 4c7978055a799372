//! The daemon ↔ stream process socket (ARCHITECTURE.md §1): the daemon spawns one
//! `punktfunk-stream` per stream and talks to it over a unix stream socket, one JSON message
//! per line (framed here over any reader or writer; the sockets are the processes'). Control
//! traffic only (a few messages per input event); frames never cross it.

use crate::input::InputEvent;
use crate::mode::Mode;
use crate::stream::{AudioParams, AudioStats, LiveVideo, NativeVideoParams, VideoParams, VideoResume, VideoStats};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// What the stream binary's encoders can do here (`punktfunk-stream --probe`), so the daemon
/// offers clients only what a stream will deliver, without opening encoders itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderProbe {
    /// A GPU encoder the configured choice allows is there (HEVC and 10-bit with it).
    pub hardware: bool,
    /// A GPU encoder opens for AV1.
    pub hardware_av1: bool,
    /// The chosen encoders encode 4:4:4.
    pub yuv444: bool,
    /// The GPU sessions render on (GLES), in words, when asked for (`--probe-gpu`); `None`
    /// where none opens (pixman).
    #[serde(default)]
    pub gpu: Option<String>,
}

/// Longest line accepted, so a confused peer cannot make the reader buffer without bound
/// (room for a clipboard's text however JSON escapes it).
pub const MAX_LINE: usize = 256 * 1024;

/// Daemon → compositor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Start (or, after a resume, restart) the video stream with these parameters.
    StartVideo(VideoParams),
    /// Start (or restart) the punktfunk/1 video stream.
    StartNative(NativeVideoParams),
    /// Stop sending video; the session keeps running (a client went away, it may resume).
    StopVideo,
    /// Change the video bitrate from the next frame.
    SetBitrate {
        bps: u64,
    },
    /// Start (or restart) sending the session's sound.
    StartAudio(AudioParams),
    StopAudio,
    /// Change the output's mode (a client resumed at another resolution or refresh).
    SetMode(Mode),
    Input(InputEvent),
    /// The client needs a key frame.
    RequestIdr,
    /// The client lost frames `first..=last` (GameStream frame numbers) and drops what
    /// follows until a repair: a frame from an older picture, or a key frame.
    InvalidateFrames {
        first: u32,
        last: u32,
    },
    /// The client reported datagrams of a frame lost (for the FEC parity tuner).
    DatagramsLost(u32),
    /// The most datagrams the client lost in a row since its last report (for the parity).
    LossBurst(u32),
    /// The client's clipboard holds this text: the session's apps paste it.
    Clipboard(String),
    /// The session's share of the cores: its software encoder's threads, which the daemon
    /// chooses from the number of sessions streaming, so that each gets the same share.
    EncoderThreads(u16),
    /// End the session: the app is signalled and the compositor exits.
    Stop,
}

/// Compositor → daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Report {
    /// The first frame reached the client's address (for launch-to-first-frame figures).
    FirstFrameSent { index: u32 },
    /// Video could not start (encoder or socket error); the daemon ends the stream.
    VideoFailed(String),
    /// How frames reach the client, in words ("libx264, frames converted on the CPU"): sent
    /// with the first frame and whenever it changes.
    VideoPath(String),
    /// Figures of a video stream that stopped.
    VideoStats(VideoStats),
    /// Figures of the running video stream's last second, every second while it sends.
    VideoLive(LiveVideo),
    /// Figures of an audio stream that stopped.
    AudioStats(AudioStats),
    /// The session's command started.
    AppStarted,
    /// The session's command could not start, and why (the session ends).
    AppFailed(String),
    /// Where the GameStream video stands: every second while it sends, and once more when
    /// it stopped (`stopped`, exact). The next process of the stream goes on from here.
    VideoPosition { position: VideoResume, stopped: bool },
    /// Where the punktfunk/1 stream stands: every second while it sends, and once more when
    /// it stopped (`stopped`, exact). The next process of the stream goes on from here.
    /// `token` names the start it belongs to (a report of a start since replaced is stale).
    NativePosition { token: u64, position: crate::stream::NativeResume, stopped: bool },
    /// Where the GameStream audio stopped, for the stream's next process.
    AudioPosition(crate::gamestream::audio::AudioPosition),
    /// An app in the session copied this text.
    Clipboard(String),
}

/// A stream process that greetd started (the greeter, or after a login the user's session)
/// → the daemon's join socket: the first line, naming the stream it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    pub ticket: String,
    /// The joiner's `XDG_RUNTIME_DIR`, where it has one (logind made it): its PipeWire's.
    #[serde(default)]
    pub runtime_dir: Option<std::path::PathBuf>,
}

/// Daemon → a joining process: what to run, in place of the command line a spawned stream
/// process gets. The line comes with the stream's media sockets (GameStream video, then
/// punktfunk/1) as `SCM_RIGHTS`; the connection goes on as the stream's command socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub mode: Mode,
    pub encoder: String,
    pub renderer: String,
    pub convert: String,
    pub gpu: Option<std::path::PathBuf>,
    pub min_fps: u32,
    pub xwayland: bool,
    /// The session sink's channels (2, 6 or 8); the stream's audio socket comes third.
    pub audio_channels: u8,
    /// The session command (the greeter, or the user's app) and what it gets in its
    /// environment besides the compositor's.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("bad message: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn write<T: Serialize>(out: &mut impl Write, msg: &T) -> Result<(), IpcError> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    out.write_all(&line)?;
    Ok(())
}

/// Reads one message; `Ok(None)` at end of stream.
pub fn read<T: for<'de> Deserialize<'de>>(input: &mut impl BufRead) -> Result<Option<T>, IpcError> {
    let mut line = Vec::new();
    let n = std::io::Read::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(IpcError::TooLong);
    }
    Ok(Some(serde_json::from_slice(&line)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour::{Colour, Matrix, Range};
    use crate::stream::{Codec, Format};

    #[test]
    fn commands_round_trip_line_by_line() {
        let params = VideoParams {
            codec: Codec::Hevc,
            format: Format { colour: Colour { matrix: Matrix::Bt601, range: Range::Full }, ten_bit: true, yuv444: true },
            bitrate_bps: 10_000_000,
            refresh_mhz: 60_000,
            packet_size: 1392,
            fec_percent: 20,
            fec_max_percent: 0,
            min_parity: 2,
            key: Some([9; 16]),
            ping_payload: Some("0123456789ABCDEF".into()),
            client: Some(std::net::IpAddr::from([10, 0, 0, 5])),
            encoder: "software".into(),
            resume: None,
            pacing: Default::default(),
            invalidation: true,
        };
        let audio = AudioParams {
            channels: crate::channels::Channels::Surround51,
            high_quality: false,
            packet_ms: 5,
            key: Some(([3; 16], 0x8000_0001)),
            ping_payload: None,
            client: None,
            resume: None,
        };
        let msgs = [
            Command::StartVideo(params),
            Command::StartAudio(audio),
            Command::Input(InputEvent::Text("hé\n".into())),
            Command::RequestIdr,
            Command::InvalidateFrames { first: 7, last: 9 },
            Command::LossBurst(3),
            Command::EncoderThreads(4),
            Command::Stop,
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write(&mut buf, m).unwrap();
        }
        let mut r = std::io::Cursor::new(buf);
        for m in &msgs {
            assert_eq!(read::<Command>(&mut r).unwrap().as_ref(), Some(m));
        }
        assert!(read::<Command>(&mut r).unwrap().is_none());
    }

    #[test]
    fn rejects_garbage_and_overlong_lines() {
        let mut r = std::io::Cursor::new(b"{\"Nope\":1}\n".to_vec());
        assert!(matches!(read::<Command>(&mut r), Err(IpcError::Json(_))));
        let mut r = std::io::Cursor::new(vec![b'x'; MAX_LINE + 10]);
        assert!(matches!(read::<Command>(&mut r), Err(IpcError::TooLong)));
    }
}
