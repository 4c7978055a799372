//! `punktfunk-client`: the punktfunk/1 reference client.
//!
//! `punktfunk-client pair HOST` shows a PIN to enter on the host (`punktfunk pair PIN`);
//! `punktfunk-client stream HOST` launches an app and shows it in a window that sends the
//! keyboard, pointer and wheel to the host; with `--headless --frames N --out DIR` it
//! receives, recovers and decodes N frames instead, writing them as PPM pictures, the
//! session's sound as `audio.wav` and the figures as `stats.json`. The protocol itself is core's (`punktfunk_core::control`, `::native`).

mod connection;
mod decode;
mod desktop_clipboard;
mod frame_files;
mod identity;
mod mic;
mod pads;
mod player;
mod probe;
mod receive;
mod window;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use connection::Connection;
use identity::{Hosts, Identity};
use punktfunk_core::control::client::ClientEvent;
use punktfunk_core::control::messages::{MAX_CLIPBOARD, Reconfigure, StartRequest};
use punktfunk_core::input::InputEvent;
use punktfunk_core::native::recovery::Ask;
use punktfunk_net::monotonic_us;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

const DEFAULT_PORT: u16 = 48100;
/// How long `--stop` waits for the host to say the session ended.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Pad feedback kept for stats.json, at most.
const MAX_PAD_FEEDBACK_KEPT: usize = 256;

#[derive(Parser)]
#[command(name = "punktfunk-client", version, about = "punktfunk/1 client")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pair with a host: shows a PIN to enter there.
    Pair {
        #[command(flatten)]
        host: HostArg,
        /// Use this PIN instead of a random one (4 digits).
        #[arg(long)]
        pin: Option<String>,
        /// No PIN: accept the host's certificate as it is now (only hosts configured to
        /// trust on first use take a client this way).
        #[arg(long, conflicts_with = "pin")]
        trust: bool,
    },
    /// Launch an app on a paired host and receive its stream.
    Stream(StreamArgs),
}

#[derive(Args)]
struct HostArg {
    /// Host name or address, optionally with :PORT.
    host: String,
    /// What the host calls this client.
    #[arg(long, default_value = "punktfunk-client")]
    name: String,
}

#[derive(Args)]
struct StreamArgs {
    #[command(flatten)]
    host: HostArg,
    /// App title from the host's catalog; the desktop when empty.
    #[arg(long, default_value = "")]
    app: String,
    /// WIDTHxHEIGHT@FPS.
    #[arg(long, default_value = "1280x720@60", value_parser = parse_mode)]
    mode: (u32, u32, u32),
    #[arg(long, default_value_t = 20_000)]
    bitrate_kbps: u32,
    #[arg(long, default_value = "h264")]
    codec: String,
    /// 10-bit video (HEVC Main10 or AV1; needs --codec hevc or av1): smoother gradients.
    #[arg(long)]
    ten_bit: bool,
    /// Full-resolution chroma (4:4:4): sharp coloured text.
    #[arg(long)]
    yuv444: bool,
    #[arg(long, default_value_t = 20)]
    fec_percent: u16,
    #[arg(long, default_value_t = 1400)]
    shard_len: u32,
    /// No window: decoded frames go to --out, or nowhere (the figures are printed: with the
    /// host's "Latency probe" app, the latency from its draw to here).
    #[arg(long)]
    headless: bool,
    /// Stop after this many decoded frames (headless: 60 unless given; a window: until
    /// closed).
    #[arg(long)]
    frames: Option<u64>,
    /// Directory for frame-NNNNN.ppm (headless), audio.wav and stats.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Renegotiate to this mode after --switch-after frames (tests renegotiation).
    #[arg(long, value_parser = parse_mode)]
    switch_mode: Option<(u32, u32, u32)>,
    #[arg(long, default_value_t = 30)]
    switch_after: u64,
    /// End the session (quit the app) when done, instead of leaving it to resume.
    #[arg(long)]
    stop: bool,
    /// Send this machine's microphone (PipeWire's default input) into the session.
    #[arg(long)]
    mic: bool,
    /// Record the microphone from this PipeWire source (`node.name`) instead of the default.
    #[arg(long)]
    mic_source: Option<String>,
    /// Send a sine of this frequency as the microphone instead (for checks).
    #[arg(long, conflicts_with_all = ["mic", "mic_source"])]
    mic_tone: Option<f32>,
    /// Video decoder: auto picks NVDEC, then VAAPI, then software.
    #[arg(long, value_enum, default_value = "auto")]
    decoder: decode::Choice,
    /// Play the stream's sound (on by default with a window; PipeWire's default output, or
    /// the node PIPEWIRE_NODE names).
    #[arg(long)]
    play: bool,
    /// Share the clipboard with the session (where the host permits this client): with a
    /// window, this desktop's clipboard text and the session's are one; what the session's
    /// apps copy is kept in stats.json (`copied`) too.
    #[arg(long)]
    clipboard: bool,
    /// After a lost frame, ask for a key frame (and wait for it) instead of a repair from a
    /// picture this client still holds: for comparison.
    #[arg(long)]
    no_repairs: bool,
    /// The app is the test pattern with `--moving`: check that every picture shows its own
    /// frame's bars (a picture decoded from a missing reference does not); counted in
    /// stats.json as `bars`.
    #[arg(long)]
    check_bars: bool,
    /// Send this machine's game controllers to the session (on by default with a window)
    /// and play the rumble games ask for on them.
    #[arg(long, conflicts_with = "no_pads")]
    pads: bool,
    /// Keep this machine's game controllers to itself.
    #[arg(long)]
    no_pads: bool,
    /// Copy this text into the session's clipboard once the stream started.
    #[arg(long, requires = "clipboard")]
    copy: Option<String>,
    /// Type each line read from standard input into the session, then Enter (scripted
    /// input: a login greeter's prompts, a kiosk's commands).
    #[arg(long)]
    type_stdin: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

fn parse_mode(s: &str) -> Result<(u32, u32, u32), String> {
    let (size, fps) = s.split_once('@').ok_or("mode is WIDTHxHEIGHT@FPS")?;
    let (w, h) = size.split_once('x').ok_or("mode is WIDTHxHEIGHT@FPS")?;
    let n = |v: &str| v.parse::<u32>().map_err(|_| format!("{v:?} is not a number"));
    Ok((n(w)?, n(h)?, n(fps)?))
}

fn resolve(host: &str) -> anyhow::Result<SocketAddr> {
    let with_port = if host.parse::<SocketAddr>().is_ok()
        || host.rsplit_once(':').is_some_and(|(h, p)| !h.ends_with(']') && !h.contains(':') && p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:{DEFAULT_PORT}")
    };
    with_port.to_socket_addrs()?.next().with_context(|| format!("{host} does not resolve"))
}

fn main() -> anyhow::Result<()> {
    punktfunk_core::logging::init();
    let cli = Cli::parse();
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    match cli.command {
        Cmd::Pair { host, pin, trust } => runtime()?.block_on(pair(&host, pin, trust)),
        Cmd::Stream(args) if args.headless => runtime()?.block_on(stream(args, None)),
        Cmd::Stream(args) => {
            // The window owns the main thread; the stream runs beside it.
            let event_loop = window::event_loop()?;
            let (proxy, latest) = (event_loop.create_proxy(), window::Latest::default());
            let (input, input_rx) = tokio::sync::mpsc::unbounded_channel();
            let link = WindowLink { latest: latest.clone(), proxy: proxy.clone(), input: input_rx };
            let title = format!("punktfunk: {}", args.host.host);
            let worker = std::thread::Builder::new().name("stream".into()).spawn(move || {
                let result = runtime().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(stream(args, Some(link))));
                let _ = proxy.send_event(window::Wake::Done);
                result
            })?;
            window::run(event_loop, title, latest, input)?;
            worker.join().map_err(|_| anyhow::anyhow!("the stream thread panicked"))?
        }
    }
}

/// What connects the stream to the window: pictures out, input in.
struct WindowLink {
    latest: window::Latest,
    proxy: window::Proxy,
    input: tokio::sync::mpsc::UnboundedReceiver<InputEvent>,
}

async fn pair(host: &HostArg, pin: Option<String>, trust: bool) -> anyhow::Result<()> {
    let dir = identity::dir()?;
    let (identity, mut hosts) = (Identity::load_or_create(&dir)?, Hosts::load(&dir)?);
    let addr = resolve(&host.host)?;
    let mut c = Connection::open(addr, &identity, None, &host.name).await?;
    if trust {
        anyhow::ensure!(c.paired, "{} wants a PIN: pair without --trust", c.host_name);
        hosts.add(&addr.to_string(), &c.host_fp)?;
        println!("trusting {} at {addr} on first use", c.host_name);
        c.close().await;
        return Ok(());
    }
    let pin = pin.unwrap_or_else(|| format!("{:04}", rand::random_range(0..10_000u32)));
    anyhow::ensure!(pin.len() == 4 && pin.bytes().all(|b| b.is_ascii_digit()), "a PIN is 4 digits");
    println!("PIN {pin}: enter it on {} with `punktfunk pair {pin}`", c.host_name);
    let (client_fp, host_fp) = (identity.fingerprint(), c.host_fp);
    c.control.pair(&pin, &client_fp, &host_fp)?;
    c.flush().await?;
    match tokio::time::timeout(Duration::from_secs(120), c.next()).await.context("no PIN was entered on the host in time")?? {
        Some(ClientEvent::Paired) => {}
        Some(ClientEvent::PairFailed { reason }) => {
            c.close().await;
            anyhow::bail!("pairing failed: {reason}");
        }
        Some(ClientEvent::Refused { reason }) => anyhow::bail!("the host refused: {reason}"),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
    hosts.add(&addr.to_string(), &c.host_fp)?;
    println!("paired with {} at {addr}", c.host_name);
    c.close().await;
    Ok(())
}

enum Note {
    Ask(Ask),
    Progress(punktfunk_core::control::messages::ReceiveStats),
    Switch,
    Done,
}

async fn stream(args: StreamArgs, mut window: Option<WindowLink>) -> anyhow::Result<()> {
    let dir = identity::dir()?;
    let (identity, hosts) = (Identity::load_or_create(&dir)?, Hosts::load(&dir)?);
    let addr = resolve(&args.host.host)?;
    let pinned = hosts
        .pinned(&addr.to_string())
        .with_context(|| format!("not paired with {addr}: run `punktfunk-client pair {}` first", args.host.host))?;
    let mut c = Connection::open(addr, &identity, Some(pinned), &args.host.name).await?;
    anyhow::ensure!(c.paired, "{} no longer knows this client: pair again", c.host_name);
    let (width, height, fps) = args.mode;
    let request = StartRequest {
        app: args.app.clone(),
        width,
        height,
        fps,
        codec: args.codec.clone(),
        bitrate_kbps: args.bitrate_kbps,
        fec_percent: args.fec_percent,
        shard_len: args.shard_len,
        ten_bit: args.ten_bit,
        yuv444: args.yuv444,
        // This receiver takes any parity up to the host's ceiling: let it follow our losses.
        fec_adaptive: true,
        clipboard: args.clipboard,
        repairs: !args.no_repairs,
    };
    // The first clock sample (before the start, which takes the host a while to answer), so
    // latency counts from the first frame.
    c.control.ping(monotonic_us())?;
    c.control.start(&request)?;
    c.flush().await?;
    let started = loop {
        match c.next().await? {
            Some(ClientEvent::Started(s)) => break s,
            Some(ClientEvent::Clock { .. }) => {}
            Some(ClientEvent::Refused { reason }) => anyhow::bail!("the host refused: {reason}"),
            other => anyhow::bail!("unexpected answer: {other:?}"),
        }
    };
    tracing::info!(w = started.width, h = started.height, fps = started.fps, port = started.data_port, "stream started");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
    }
    let frames = args.frames.or(args.headless.then_some(60));

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let (thread_stop, out, switch) = (Arc::clone(&stop), args.out.clone(), args.switch_mode.map(|_| args.switch_after));
    let mic = match (args.mic_tone, args.mic || args.mic_source.is_some()) {
        (Some(hz), _) => Some(mic::Source::Tone(hz)),
        (None, true) => Some(mic::Source::Capture(args.mic_source.clone())),
        (None, false) => None,
    };
    let id = match args.codec.as_str() {
        "hevc" => ffmpeg_next::codec::Id::HEVC,
        "av1" => ffmpeg_next::codec::Id::AV1,
        _ => ffmpeg_next::codec::Id::H264,
    };
    let (decoder, decoder_line) = decode::Decoder::open(id, args.decoder)?;
    let probe = if args.check_bars { probe::Probe::checking_bars() } else { probe::Probe::default() };
    tracing::info!("{decoder_line}");
    let offset = Arc::new(AtomicI64::new(c.control.clock_offset_us().unwrap_or(receive::UNKNOWN_OFFSET)));
    let thread_offset = Arc::clone(&offset);
    let (headless, show) = (args.headless, window.as_ref().map(|w| (Arc::clone(&w.latest), w.proxy.clone())));
    let player = (args.play || !args.headless).then(player::Player::start).transpose()?;
    let playout = player.as_ref().map(|p| Arc::clone(&p.playout));
    let files = out.clone().filter(|_| headless).map(frame_files::FrameFiles::start).transpose()?;
    let receiver = std::thread::Builder::new().name("data-plane".into()).spawn(move || {
        let (mut n, mut sound) = (0u64, Vec::new());
        let local = receive::Local { decoder, probe, mic };
        let stats = receive::run(addr, &started, local, thread_offset, thread_stop, |event| match event {
            receive::Event::Picture(p) => {
                n += 1;
                if Some(n) == switch {
                    let _ = tx.send(Note::Switch);
                }
                if Some(n) == frames {
                    let _ = tx.send(Note::Done);
                }
                if let Some(files) = files.as_ref().filter(|_| frames.is_none_or(|f| n <= f)) {
                    files.write(n, p);
                } else if let Some((latest, proxy)) = &show {
                    *latest.lock() = Some(p);
                    let _ = proxy.send_event(window::Wake::Picture);
                }
            }
            receive::Event::Sound(pcm) => {
                if let Some(p) = &playout {
                    p.push_pcm(&pcm);
                }
                if out.is_some() {
                    sound.extend(pcm);
                }
            }
            receive::Event::Progress(p) => {
                let _ = tx.send(Note::Progress(p));
            }
            receive::Event::Ask(ask) => {
                let _ = tx.send(Note::Ask(ask));
            }
        })?;
        if let Some(out) = &out {
            write_wav(&out.join("audio.wav"), &sound)?;
        }
        Ok::<_, anyhow::Error>(stats)
    })?;

    let deadline = tokio::time::sleep(Duration::from_secs(args.timeout));
    tokio::pin!(deadline);
    // The clocks' offset: the ping sent with the start was answered only once the host had
    // started the stream (its round trip, and so its error, can be hundreds of ms), so a few
    // quick ones now (the first at once), then one a second with the figures.
    let (mut early_pings, mut early_left) = (tokio::time::interval(Duration::from_millis(200)), 10u32);
    let (mut ended, mut interrupted) = (None, false);
    // Ctrl-C leaves the stream as the end of --frames does (figures printed, --stop honoured).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    if let Some(text) = &args.copy {
        anyhow::ensure!(c.control.clipboard(text)?, "--copy: longer than the protocol's {MAX_CLIPBOARD} bytes");
    }
    let mut copied = Vec::new();
    let mut pads = ((args.pads || !args.headless) && !args.no_pads).then(pads::LocalPads::start).transpose().unwrap_or_else(|e| {
        tracing::warn!("{e}: no game controllers");
        None
    });
    // What games asked of the pads (kept for stats.json, the first few hundred).
    let mut pad_feedback = Vec::new();
    // With a window, the desktop's clipboard joins in.
    let (desktop_copies, mut desktop_copied) = tokio::sync::mpsc::unbounded_channel();
    let desktop = (args.clipboard && window.is_some()).then(|| desktop_clipboard::DesktopClipboard::start(desktop_copies)).transpose()?;
    let mut typed = args.type_stdin.then(typed_lines);
    loop {
        let typed_line = async {
            match typed.as_mut() {
                Some(lines) => lines.recv().await,
                None => std::future::pending().await,
            }
        };
        let input = async {
            match window.as_mut() {
                Some(w) => w.input.recv().await,
                None => std::future::pending().await,
            }
        };
        let desktop_copy = async {
            match &desktop {
                Some(_) => desktop_copied.recv().await,
                None => std::future::pending().await,
            }
        };
        let pad_event = async {
            match pads.as_mut() {
                Some(p) => p.events.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = early_pings.tick(), if early_left > 0 => {
                early_left -= 1;
                c.control.ping(monotonic_us())?;
            }
            Some(text) = desktop_copy => {
                if !c.control.clipboard(&text)? {
                    tracing::warn!(bytes = text.len(), "the desktop's clipboard is longer than the protocol's {MAX_CLIPBOARD} bytes: not shared");
                }
            }
            Some(event) = pad_event => c.control.pad(event)?,
            line = typed_line => match line {
                Some(line) => {
                    // In pieces well within a control message, however long the line.
                    for piece in text_pieces(&line, TEXT_PIECE) {
                        c.control.input(InputEvent::Text(piece.to_owned()))?;
                    }
                    for pressed in [true, false] {
                        c.control.input(InputEvent::Key { code: KEY_ENTER, pressed })?;
                    }
                }
                // Nothing more to type.
                None => typed = None,
            },
            event = input => match event {
                Some(e) => c.control.input(e)?,
                // The window closed.
                None => break,
            },
            note = notes.recv() => match note {
                Some(Note::Ask(Ask::Keyframe)) => c.control.request_keyframe()?,
                Some(Note::Ask(Ask::Repair { first, last })) => c.control.frames_lost(first, last)?,
                Some(Note::Progress(p)) => {
                    c.control.report(p)?;
                    c.control.ping(monotonic_us())?;
                }
                Some(Note::Switch) => c.control.reconfigure(Reconfigure { mode: args.switch_mode, bitrate_kbps: None })?,
                Some(Note::Done) | None => break,
            },
            event = c.next() => match event? {
                Some(ClientEvent::Ended { reason }) => {
                    ended = Some(reason);
                    break;
                }
                Some(ClientEvent::Reconfigured(r)) => tracing::info!(?r, "host reconfigured the stream"),
                Some(ClientEvent::Clock { offset_us, rtt_us }) => tracing::debug!(offset_us, rtt_us, "host clock"),
                Some(ClientEvent::Clipboard { text }) => {
                    tracing::info!(bytes = text.len(), "the session's clipboard");
                    if let Some(d) = &desktop {
                        d.set(text.clone());
                    }
                    copied.push(text);
                }
                Some(ClientEvent::Pad(feedback)) => {
                    tracing::debug!(?feedback, "a game asks the pad");
                    if let Some(p) = &pads {
                        p.play(feedback);
                    }
                    if pad_feedback.len() < MAX_PAD_FEEDBACK_KEPT {
                        pad_feedback.push(feedback);
                    }
                }
                Some(other) => tracing::debug!(?other, "host says"),
                None => break,
            },
            _ = &mut deadline => {
                tracing::warn!("gave up after {} s", args.timeout);
                break;
            }
            _ = interrupt.recv() => {
                tracing::info!("interrupted: leaving the stream");
                interrupted = true;
                break;
            }
        }
        c.flush().await?;
        offset.store(c.control.clock_offset_us().unwrap_or(receive::UNKNOWN_OFFSET), Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    let mut stats = receiver.join().map_err(|_| anyhow::anyhow!("the receiver thread panicked"))??;
    let clock = c.control.clock().best();
    (stats.clock_offset_us, stats.clock_rtt_us, stats.decoder) = (clock.map(|s| s.offset_us), clock.map(|s| s.rtt_us), decoder_line);
    if args.stop && ended.is_none() {
        c.control.stop()?;
        c.flush().await?;
        // The host's answer, not waited for forever (a host gone, a second Ctrl-C's user).
        let _ = tokio::time::timeout(STOP_WAIT, async {
            while let Ok(Some(e)) = c.next().await {
                if matches!(e, ClientEvent::Ended { .. }) {
                    break;
                }
            }
        })
        .await;
    }
    if let Some(figures) = &stats.probe {
        println!("{}", figures.summary(stats.clock_rtt_us));
    }
    let mut json = serde_json::to_value(&stats)?;
    json["ended"] = serde_json::json!(ended);
    json["copied"] = serde_json::json!(copied);
    json["pad_feedback"] = serde_json::json!(pad_feedback);
    if let Some(out) = &args.out {
        std::fs::write(out.join("stats.json"), serde_json::to_vec_pretty(&json)?)?;
    }
    println!("{}", serde_json::to_string(&json)?);
    c.close().await;
    if let Some(f) = frames.filter(|_| !interrupted) {
        anyhow::ensure!(stats.frames_decoded >= f, "only {} of {f} frames decoded", stats.frames_decoded);
    }
    Ok(())
}

/// evdev's Enter key.
const KEY_ENTER: u32 = 28;
/// Typed text goes in pieces of at most this many bytes.
const TEXT_PIECE: usize = 4096;

/// `text` cut into pieces of at most `max` bytes (at least one character each), on
/// character boundaries.
fn text_pieces(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let end = if end == 0 { rest.chars().next().map_or(rest.len(), char::len_utf8) } else { end };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// Standard input's lines, read on a thread of their own (a blocking read the runtime need
/// not know about).
fn typed_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The stream's sound as a 48 kHz stereo float WAV.
fn write_wav(path: &std::path::Path, samples: &[f32]) -> anyhow::Result<()> {
    let spec = hound::WavSpec { channels: 2, sample_rate: 48_000, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec)?;
    for s in samples {
        w.write_sample(*s)?;
    }
    w.finalize()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn typed_text_goes_in_pieces_on_character_boundaries() {
        let line = "añb".repeat(3);
        let pieces: Vec<&str> = super::text_pieces(&line, 3).collect();
        assert_eq!(pieces.concat(), line);
        assert!(pieces.iter().all(|p| p.len() <= 3 && !p.is_empty()), "{pieces:?}");
        assert_eq!(super::text_pieces("ñ", 1).collect::<Vec<_>>(), ["ñ"], "a character longer than a piece goes whole");
    }
}
