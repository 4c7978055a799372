//! `punktfunk-stream --mode 1920x1080@60 [--record FILE.h264] -- command …` (`--help` lists
//! the rest): runs one headless streaming session; exits with the session command's exit
//! code.

use anyhow::Context;
use clap::Parser;
use punktfunk_compositor::{
    ClipboardSink, Config, ConvertChoice, EngineChoice, Frame, KeyboardLayout, Mode, bounded_control_channel, run, run_into,
};
use punktfunk_core::control::messages::MAX_CLIPBOARD;
use punktfunk_streamer::audio::{Channels, SessionAudio, pipewire_reachable};
use punktfunk_streamer::encode::{Choice, Codec};
use punktfunk_streamer::ipc::Report;
use punktfunk_streamer::stream::{Audio, CONTROL_QUEUE, Sockets, Stream};
use punktfunk_streamer::{RawFileSink, RecordSink};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// One headless streaming session: a compositor at the client's exact mode feeding the
/// stream pipeline. The daemon runs one per stream (with `--ipc-fd` and the media sockets);
/// by hand it records a session (`--record`) or writes its raw frames.
#[derive(Parser)]
#[command(name = "punktfunk-stream", version)]
struct Args {
    /// The output's mode, WIDTHxHEIGHT@HZ (e.g. 1920x1080@60 or 2560x1440@59.94).
    #[arg(long, required_unless_present_any = ["probe", "join"])]
    mode: Option<Mode>,
    /// Say what the encoders can do here (JSON on stdout, for the daemon) and exit.
    #[arg(long)]
    probe: bool,
    /// With --probe: also open the GPU sessions render on and name it (for `punktfunk
    /// doctor`; the daemon's start does without it).
    #[arg(long, requires = "probe")]
    probe_gpu: bool,
    /// The Wayland socket's name in the runtime directory (a free punktfunk-N otherwise).
    #[arg(long)]
    socket: Option<String>,
    /// Record the session to FILE: H.264, HEVC (.hevc) or AV1 (.obu).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Which encoder: auto, software, nvenc or vaapi.
    #[arg(long, default_value = "auto")]
    encoder: Choice,
    /// The recording's bitrate, bits per second.
    #[arg(long, default_value_t = 20_000_000)]
    bitrate: u64,
    /// Write every frame's raw BGRX pixels to FILE.
    #[arg(long, value_name = "FILE")]
    raw_output: Option<PathBuf>,
    /// Leave the client's cursor out of the frames.
    #[arg(long)]
    no_cursor: bool,
    /// Composite even a fullscreen client's buffer (no direct path).
    #[arg(long)]
    no_direct: bool,
    /// What composites: auto, pixman or gles.
    #[arg(long, default_value = "auto")]
    renderer: EngineChoice,
    /// Where frames become the encoder's YUV: auto, gpu or cpu.
    #[arg(long, default_value = "auto")]
    convert: ConvertChoice,
    /// The GPU to render (and encode with VAAPI) on, as a DRM node.
    #[arg(long, value_name = "/dev/dri/renderDN")]
    gpu: Option<PathBuf>,
    /// No Xwayland (X11 apps do not start).
    #[arg(long)]
    no_xwayland: bool,
    /// The keyboard layout (XKB), e.g. de.
    #[arg(long)]
    keyboard_layout: Option<String>,
    /// Join a stream at the daemon's join socket (greetd runs the greeter's compositor and
    /// the user's session so): what to run comes from the daemon. The ticket naming the
    /// stream is `--ticket` or `$PUNKTFUNK_JOIN_TICKET`.
    #[arg(long, value_name = "SOCKET", conflicts_with_all = ["ipc_fd", "record", "raw_output"])]
    join: Option<PathBuf>,
    #[arg(long, requires = "join")]
    ticket: Option<String>,
    /// The daemon's command socket (with the media sockets: a stream for the daemon).
    #[arg(long, requires_all = ["video_fd", "native_fd"])]
    ipc_fd: Option<i32>,
    /// GameStream's video socket.
    #[arg(long, requires = "ipc_fd")]
    video_fd: Option<i32>,
    /// The punktfunk/1 data-plane socket.
    #[arg(long, requires = "ipc_fd")]
    native_fd: Option<i32>,
    /// GameStream's audio socket (the session gets sound).
    #[arg(long, requires = "ipc_fd")]
    audio_fd: Option<i32>,
    /// The session sink's channels: 2, 6 or 8.
    #[arg(long, default_value = "2", value_parser = channels)]
    audio_channels: Channels,
    /// While a client watches a still picture, send it again this often a second (0: only
    /// when it changes).
    #[arg(long, default_value_t = 10)]
    min_fps: u32,
    /// Stream a new output of the running desktop instead of a headless session: `auto`
    /// (found from the environment) or `sway`.
    #[arg(long, value_name = "DESKTOP", requires = "ipc_fd", conflicts_with = "command")]
    attach: Option<String>,
    /// The session command and its arguments.
    #[arg(last = true)]
    command: Vec<OsString>,
}

fn channels(count: &str) -> Result<Channels, String> {
    count.parse().ok().and_then(Channels::from_count).ok_or_else(|| "2, 6 or 8".into())
}

/// How long a session's start waits for its audio nodes (so its apps find them).
const AUDIO_READY: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<()> {
    punktfunk_core::logging::init();
    let args = Args::parse();
    let mut config = Config::new(args.mode.unwrap_or(Mode::new(1280, 720, 60.0)?));
    config.command = args.command;
    config.socket_name = args.socket;
    config.show_cursor = !args.no_cursor;
    config.direct = !args.no_direct;
    config.renderer = args.renderer;
    config.convert = args.convert;
    config.gpu = args.gpu;
    config.xwayland = !args.no_xwayland;
    if let Some(layout) = args.keyboard_layout {
        config.keyboard = KeyboardLayout { layout, ..Default::default() };
    }
    let (encoder, audio_channels) = (args.encoder, args.audio_channels);
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
    if args.probe {
        let mut probe = punktfunk_streamer::encode::select::probe(encoder);
        if args.probe_gpu {
            probe.gpu = punktfunk_compositor::probe_gpu(config.gpu.as_deref()).ok();
        }
        println!("{}", serde_json::to_string(&probe)?);
        return Ok(());
    }
    config.handle_signals = true;
    let outcome = if let Some(socket) = &args.join {
        // Started by greetd for a login stream: the daemon says what to run.
        let ticket = args.ticket.or_else(|| std::env::var("PUNKTFUNK_JOIN_TICKET").ok()).context("no --ticket")?;
        join(config, socket, &ticket)?
    } else if let (Some(ipc), Some(video), Some(native)) = (args.ipc_fd, args.video_fd, args.native_fd) {
        // Spawned by the daemon for one stream: frames go to the client, commands come from it.
        let ipc = std::os::unix::net::UnixStream::from(inherited(ipc)?);
        let (video, native) = (std::net::UdpSocket::from(inherited(video)?), std::net::UdpSocket::from(inherited(native)?));
        if let Some(desktop) = &args.attach {
            let audio = match args.audio_fd {
                Some(fd) => Some(desktop_audio(std::net::UdpSocket::from(inherited(fd)?), audio_channels)?),
                None => None,
            };
            let layout = config.keyboard.layout.clone();
            attach(desktop, config.mode, &layout, ipc, Sockets { video, native, audio }, args.min_fps)?
        } else {
            let audio = match args.audio_fd {
                Some(fd) => Some(session_audio(&mut config, std::net::UdpSocket::from(inherited(fd)?), audio_channels)?),
                None => None,
            };
            serve(config, ipc, Sockets { video, native, audio }, args.min_fps)?
        }
    } else {
        match (args.record, args.raw_output) {
            (Some(path), _) => {
                // AV1 as a low-overhead OBU stream (`.obu`, what FFmpeg's `obu` demuxer reads).
                let codec = match path.extension().and_then(|e| e.to_str()) {
                    Some("hevc" | "h265") => Codec::Hevc,
                    Some("obu" | "av1") => Codec::Av1,
                    _ => Codec::H264,
                };
                let sink = RecordSink::create(&path, codec, config.mode.refresh_mhz, args.bitrate, encoder)
                    .with_context(|| format!("creating {}", path.display()))?;
                run(config, sink, None)?
            }
            (None, Some(path)) => run(config, RawFileSink::create(&path).with_context(|| format!("creating {}", path.display()))?, None)?,
            (None, None) => run(config, |_: Frame| Ok(()), None)?,
        }
    };
    tracing::info!(
        frames = outcome.frames,
        dropped = outcome.dropped,
        skipped = outcome.skipped,
        converted = outcome.converted,
        "stream session ended"
    );
    std::process::exit(outcome.exit_code.unwrap_or(0));
}

/// Joins the login stream `ticket` names and runs what the daemon says in it. Call before any
/// thread starts (it sets the environment the session inherits).
fn join(mut config: Config, socket: &std::path::Path, ticket: &str) -> anyhow::Result<punktfunk_compositor::Outcome> {
    // SAFETY: no other thread runs yet. Spent once joined: the session's apps need not see it.
    unsafe { std::env::remove_var("PUNKTFUNK_JOIN_TICKET") };
    let j = punktfunk_streamer::join::join(socket, ticket)?;
    let joined = j.joined;
    config.mode = joined.mode;
    config.renderer = joined.renderer.parse().unwrap_or(EngineChoice::Auto);
    config.convert = joined.convert.parse().unwrap_or(ConvertChoice::Auto);
    config.gpu = joined.gpu;
    config.xwayland = joined.xwayland;
    config.command = joined.command.into_iter().map(OsString::from).collect();
    for (key, value) in joined.env {
        // SAFETY: as above; the session command inherits it.
        unsafe { std::env::set_var(key, value) };
    }
    tracing::info!(uid = nix::unistd::getuid().as_raw(), "joined the stream");
    let channels = Channels::from_count(joined.audio_channels.into()).unwrap_or(Channels::Stereo);
    let audio = session_audio(&mut config, j.audio, channels)?;
    serve(config, j.ipc, Sockets { video: j.video, native: j.native, audio: Some(audio) }, joined.min_fps)
}

/// The session's sound: its sink and microphone, named after this process (unique among the
/// sessions sharing a PipeWire), and the socket it goes out on. Without a PipeWire to talk
/// to, the nodes keep trying in the background and the app starts at once.
fn session_audio(config: &mut Config, socket: std::net::UdpSocket, channels: Channels) -> anyhow::Result<Audio> {
    let ready = if pipewire_reachable() { AUDIO_READY } else { Duration::ZERO };
    let session = SessionAudio::start(&format!("session-{}", std::process::id()), channels, ready)?;
    config.env.extend(session.env());
    Ok(Audio { session, socket })
}

/// The running desktop's sound (attach mode): what its default output plays, and the
/// client's microphone as a source its apps can pick.
fn desktop_audio(socket: std::net::UdpSocket, channels: Channels) -> anyhow::Result<Audio> {
    let ready = if pipewire_reachable() { AUDIO_READY } else { Duration::ZERO };
    let session = SessionAudio::desktop(&format!("desktop-{}", std::process::id()), channels, ready)?;
    Ok(Audio { session, socket })
}

/// Runs the compositor for the daemon's stream: frames go to the client, commands come from
/// the daemon, which hears when the session's command started (or why it did not).
fn serve(
    mut config: Config,
    ipc: std::os::unix::net::UnixStream,
    sockets: Sockets,
    min_fps: u32,
) -> anyhow::Result<punktfunk_compositor::Outcome> {
    let stream = Stream::attach(ipc, sockets, min_fps)?;
    let (launched, news) = std::sync::mpsc::channel();
    config.launched = Some(launched);
    let reporter = stream.reporter();
    std::thread::Builder::new().name("app-news".into()).spawn(move || {
        if let Ok(started) = news.recv() {
            reporter.report(&started.map_or_else(Report::AppFailed, |_| Report::AppStarted));
        }
    })?;
    // What the session's apps copy goes to the daemon, which gives it to a client that may
    // have it.
    let (copied, clipboard) = std::sync::mpsc::channel();
    config.clipboard = Some(ClipboardSink { send: copied, max_len: MAX_CLIPBOARD });
    let reporter = stream.reporter();
    std::thread::Builder::new().name("clipboard".into()).spawn(move || {
        for text in clipboard {
            reporter.report(&Report::Clipboard(text));
        }
    })?;
    let (control, channel) = bounded_control_channel(CONTROL_QUEUE);
    stream.connect_source(control);
    let outcome = run_into(config, stream.mailbox(), Some(channel));
    stream.finish().context("stream")?;
    outcome
}

/// Streams a new output of the running desktop for the daemon (attach mode): the daemon
/// hears that it started, or why not.
fn attach(
    desktop: &str,
    mode: Mode,
    layout: &str,
    ipc: std::os::unix::net::UnixStream,
    sockets: Sockets,
    min_fps: u32,
) -> anyhow::Result<punktfunk_compositor::Outcome> {
    let stream = Stream::attach(ipc, sockets, min_fps)?;
    let (control, commands) = punktfunk_attach::control_channel(CONTROL_QUEUE)?;
    stream.connect_source(control);
    let reporter = stream.reporter();
    let ran = punktfunk_attach::Desktop::find(desktop).and_then(|desktop| {
        punktfunk_attach::run(desktop, mode, layout, stream.mailbox(), commands, || reporter.report(&Report::AppStarted))
    });
    if let Err(e) = &ran {
        reporter.report(&Report::AppFailed(format!("{e:#}")));
    }
    stream.finish().context("stream")?;
    ran?;
    Ok(punktfunk_compositor::Outcome { exit_code: Some(0), ..Default::default() })
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
