//! `punktfunk-stream --mode 1920x1080@60 [--record FILE.h264] -- command …`
//!
//! Runs one headless streaming session; exits with the session command's exit code.

use anyhow::Context;
use punktfunk_compositor::{Config, Frame, KeyboardLayout, Mode, bounded_control_channel, run, run_into};
use punktfunk_streamer::audio::{Channels, SessionAudio, pipewire_reachable};
use punktfunk_streamer::encode::{Choice, Codec};
use punktfunk_streamer::stream::{Audio, CONTROL_QUEUE, Sockets, Stream};
use punktfunk_streamer::{RawFileSink, RecordSink};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: punktfunk-stream --mode WxH@HZ | --probe [--socket NAME] [--record FILE.h264|.hevc|.obu] [--encoder auto|software|nvenc|vaapi] [--bitrate BPS] [--raw-output FILE] [--no-cursor] [--no-direct] [--renderer auto|pixman|gles] [--convert auto|gpu|cpu] [--gpu /dev/dri/renderDN] [--no-xwayland] [--keyboard-layout LAYOUT] [--ipc-fd N --video-fd N --native-fd N [--audio-fd N] [--audio-channels 2|6|8]] [-- COMMAND ARGS...]";

/// How long a session's start waits for its audio nodes (so its apps find them).
const AUDIO_READY: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut args = std::env::args_os().skip(1);
    let mut mode: Option<Mode> = None;
    let mut config = Config::new(Mode::new(1280, 720, 60.0)?);
    let mut raw_output: Option<PathBuf> = None;
    let mut record: Option<PathBuf> = None;
    // Say what the encoders can do here (JSON on stdout, for the daemon) and exit.
    let mut probe = false;
    let mut bitrate: u64 = 20_000_000;
    let mut encoder = Choice::Auto;
    let (mut ipc_fd, mut video_fd, mut native_fd, mut audio_fd): (Option<i32>, Option<i32>, Option<i32>, Option<i32>) =
        (None, None, None, None);
    let mut audio_channels = Channels::Stereo;
    let text = |v: Option<OsString>, flag: &str| -> anyhow::Result<String> {
        v.and_then(|s| s.into_string().ok()).with_context(|| format!("{flag} needs a value\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--mode") => mode = Some(text(args.next(), "--mode")?.parse()?),
            Some("--socket") => config.socket_name = Some(text(args.next(), "--socket")?),
            Some("--raw-output") => raw_output = Some(PathBuf::from(args.next().context("--raw-output needs a file")?)),
            Some("--probe") => probe = true,
            Some("--record") => record = Some(PathBuf::from(args.next().context("--record needs a file")?)),
            Some("--encoder") => encoder = text(args.next(), "--encoder")?.parse().map_err(anyhow::Error::msg)?,
            Some("--bitrate") => bitrate = text(args.next(), "--bitrate")?.parse().context("--bitrate is in bits per second")?,
            Some("--ipc-fd") => ipc_fd = Some(text(args.next(), "--ipc-fd")?.parse().context("--ipc-fd is a file descriptor")?),
            Some("--video-fd") => video_fd = Some(text(args.next(), "--video-fd")?.parse().context("--video-fd is a file descriptor")?),
            Some("--native-fd") => native_fd = Some(text(args.next(), "--native-fd")?.parse().context("--native-fd is a file descriptor")?),
            Some("--audio-fd") => audio_fd = Some(text(args.next(), "--audio-fd")?.parse().context("--audio-fd is a file descriptor")?),
            Some("--audio-channels") => {
                audio_channels = text(args.next(), "--audio-channels")?
                    .parse()
                    .ok()
                    .and_then(Channels::from_count)
                    .context("--audio-channels is 2, 6 or 8")?
            }
            Some("--no-cursor") => config.show_cursor = false,
            Some("--no-direct") => config.direct = false,
            Some("--renderer") => config.renderer = text(args.next(), "--renderer")?.parse().map_err(anyhow::Error::msg)?,
            Some("--convert") => config.convert = text(args.next(), "--convert")?.parse().map_err(anyhow::Error::msg)?,
            Some("--gpu") => config.gpu = Some(PathBuf::from(args.next().context("--gpu needs a DRM node, e.g. /dev/dri/renderD128")?)),
            Some("--no-xwayland") => config.xwayland = false,
            Some("--keyboard-layout") => {
                config.keyboard = KeyboardLayout { layout: text(args.next(), "--keyboard-layout")?, ..Default::default() }
            }
            Some("--") => {
                config.command = args.by_ref().collect();
                break;
            }
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => anyhow::bail!("unexpected argument {arg:?}\n{USAGE}"),
        }
    }
    if let Some(gpu) = &config.gpu
        && std::env::var_os("PUNKTFUNK_VAAPI_DEVICE").is_none()
    {
        // VAAPI encodes on the GPU that renders, on its render node (the encoder's surfaces
        // are drawn into only where the two match), whichever of its nodes was named.
        let render = punktfunk_streamer::encode::select::render_node_of(gpu).unwrap_or_else(|| gpu.clone());
        // SAFETY: no other thread runs yet (logging spawns none); nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("PUNKTFUNK_VAAPI_DEVICE", render) };
    }
    if probe {
        println!("{}", serde_json::to_string(&punktfunk_streamer::encode::select::probe(encoder))?);
        return Ok(());
    }
    config.mode = mode.with_context(|| format!("--mode is required\n{USAGE}"))?;
    config.handle_signals = true;
    if let (Some(ipc), Some(video), Some(native)) = (ipc_fd, video_fd, native_fd) {
        // Spawned by the daemon for one stream: frames go to the client, commands come from it.
        let ipc = std::os::unix::net::UnixStream::from(inherited(ipc)?);
        let (video, native) = (std::net::UdpSocket::from(inherited(video)?), std::net::UdpSocket::from(inherited(native)?));
        let audio = match audio_fd {
            Some(fd) => {
                let socket = std::net::UdpSocket::from(inherited(fd)?);
                // Named after this process: unique among the sessions sharing a PipeWire.
                // Without a PipeWire to talk to, the nodes keep trying in the background and
                // the app starts at once.
                let ready = if pipewire_reachable() { AUDIO_READY } else { Duration::ZERO };
                let session = SessionAudio::start(&format!("session-{}", std::process::id()), audio_channels, ready)?;
                config.env.extend(session.env());
                Some(Audio { session, socket })
            }
            None => None,
        };
        let stream = Stream::attach(ipc, Sockets { video, native, audio })?;
        let (control, channel) = bounded_control_channel(CONTROL_QUEUE);
        stream.connect_source(control);
        let outcome = run_into(config, stream.mailbox(), Some(channel));
        stream.finish().context("stream")?;
        let outcome = outcome?;
        tracing::info!(
            frames = outcome.frames,
            dropped = outcome.dropped,
            skipped = outcome.skipped,
            converted = outcome.converted,
            "stream session ended"
        );
        std::process::exit(outcome.exit_code.unwrap_or(0));
    }
    anyhow::ensure!(
        ipc_fd.is_none() && video_fd.is_none() && native_fd.is_none() && audio_fd.is_none(),
        "--ipc-fd, --video-fd and --native-fd go together (--audio-fd with them)"
    );
    let outcome = match (record, raw_output) {
        (Some(path), _) => {
            // AV1 as a low-overhead OBU stream (`.obu`, what FFmpeg's `obu` demuxer reads).
            let codec = match path.extension().and_then(|e| e.to_str()) {
                Some("hevc" | "h265") => Codec::Hevc,
                Some("obu" | "av1") => Codec::Av1,
                _ => Codec::H264,
            };
            let sink = RecordSink::create(&path, codec, config.mode.refresh_mhz, bitrate, encoder)
                .with_context(|| format!("creating {}", path.display()))?;
            run(config, sink, None)?
        }
        (None, Some(path)) => run(config, RawFileSink::create(&path).with_context(|| format!("creating {}", path.display()))?, None)?,
        (None, None) => run(config, |_: Frame| Ok(()), None)?,
    };
    tracing::info!(
        frames = outcome.frames,
        dropped = outcome.dropped,
        skipped = outcome.skipped,
        converted = outcome.converted,
        "session ended"
    );
    std::process::exit(outcome.exit_code.unwrap_or(0));
}

/// Takes ownership of a descriptor the daemon left open for us, and keeps it from leaking
/// into the session's own processes.
fn inherited(fd: i32) -> anyhow::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::{BorrowedFd, FromRawFd};
    anyhow::ensure!(fd > 2, "descriptor {fd} is not one the daemon passes");
    // SAFETY: checked to be open just below before being owned; nothing else owns it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).with_context(|| format!("descriptor {fd} is not open"))?;
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
