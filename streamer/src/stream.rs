//! One stream for the daemon (ARCHITECTURE.md §1, §4): commands arrive on the daemon's socket
//! and drive the frame source (input, mode) and the video and audio senders; frames go from
//! the sink thread through the encoder and packetizer straight to the client, and the
//! session's sound from its PipeWire sink through the audio sender, never through the daemon.

use crate::audio::SessionAudio;
use crate::audio::layout::{Channels, OpusLayout};
use crate::audio::playout::Playout;
use crate::audio::sender::{AudioSender, Wire};
use crate::encode::SessionEncoder;
use crate::gamestream;
use crate::gamestream::audio::AudioParams;
use crate::gamestream::video::{Pings, SendError, SentFrame, StatsRecorder, VideoParams, VideoPosition, VideoSender, listen_for_pings};
use crate::gpu::GpuSurfaces;
use crate::ipc::{self, Command, Report};
use crate::native::{Heard, NativeVideoParams, NativeVideoSender, listen_for_hellos};
use crate::parity::Parity;
use crate::peer::{Listener, Peer};
use crate::{Frame, FrameSink, PixelFormat, Pixels};
use parking_lot::Mutex;
use punktfunk_core::gamestream::audio::AudioPosition;
use punktfunk_core::native::audio::{AudioSealer, KIND_SOUND};
use punktfunk_core::stream::LiveVideo;
use punktfunk_frame::{Mailbox, SinkThread, SourceCommand, SourceControl};
use std::io::BufReader;
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

enum VideoCommand {
    Start(VideoParams),
    /// With the client's address (shared with the audio sender) and the microphone.
    StartNative(NativeVideoParams, Peer, Option<Arc<Playout>>),
    Stop,
    SetBitrate(u64),
    /// What the client reported of the link: datagrams lost, the most it lost in a row, or a
    /// frame it could not rebuild (it asked for a key frame).
    Lost(u32),
    Burst(u32),
    Unrecoverable,
    /// The client lost these frames (GameStream numbers) and waits for a repair.
    Invalidate {
        first: u32,
        last: u32,
    },
}

/// The video sender of the protocol the client speaks.
enum MediaSender {
    GameStream(VideoSender),
    Native(NativeVideoSender),
}

impl MediaSender {
    fn send(&mut self, frame: Frame) -> Result<Option<SentFrame>, SendError> {
        match self {
            Self::GameStream(s) => s.send(frame),
            Self::Native(s) => s.send(frame),
        }
    }

    fn set_bitrate(&mut self, bps: u64) {
        match self {
            Self::GameStream(s) => s.set_bitrate(bps),
            Self::Native(s) => s.set_bitrate(bps),
        }
    }

    fn parity(&mut self) -> &mut Parity {
        match self {
            Self::GameStream(s) => s.parity(),
            Self::Native(s) => s.parity(),
        }
    }

    /// The client lost frames `first..=last`: false for a report the last repair covers.
    fn invalidate(&mut self, first: u32, last: u32) -> bool {
        match self {
            Self::GameStream(s) => s.invalidate(first, last),
            Self::Native(s) => s.invalidate(first, last),
        }
    }

    fn encoder(&self) -> &SessionEncoder {
        match self {
            Self::GameStream(s) => s.encoder(),
            Self::Native(s) => s.encoder(),
        }
    }

    /// Where the stream stands, for a login stream's next process (`stopped`: exactly, at
    /// its end).
    fn position(&self, stopped: bool) -> Report {
        match self {
            Self::GameStream(s) => Report::VideoPosition { position: s.resume_point(), stopped },
            Self::Native(s) => {
                let (token, position) = s.position();
                Report::NativePosition { token, position, stopped }
            }
        }
    }
}

/// How a frame reaches the encoder, in words.
fn frame_path(frame: &Frame) -> &'static str {
    match (&frame.pixels, frame.format) {
        (Pixels::Gpu(_), _) => "frames drawn into the encoder's surfaces on the GPU",
        (_, PixelFormat::Yuv { .. }) => "frames converted on the GPU",
        _ => "frames converted on the CPU",
    }
}

/// punktfunk/1 sound: stereo in 5 ms packets (its own client decodes any layout; surround
/// over punktfunk/1 comes with a client that plays it).
const NATIVE_PACKET_MS: u32 = 5;

/// How often a sending stream reports its live figures to the daemon.
const LIVE_WINDOW: Duration = Duration::from_secs(1);

/// The sockets a stream's media leave on, handed over by the daemon.
pub struct Sockets {
    /// GameStream video.
    pub video: UdpSocket,
    /// The punktfunk/1 data plane.
    pub native: UdpSocket,
    pub audio: Option<Audio>,
}

/// The session's sound and the socket it goes out on.
pub struct Audio {
    pub session: SessionAudio,
    pub socket: UdpSocket,
}

/// Commands from the daemon waiting for the source's loop (the compositor's). A loop that
/// stops taking them makes the reader wait, the socket fill and the daemon's writes time out, instead of
/// this queue growing without end under a flood of input.
pub const CONTROL_QUEUE: usize = 4096;

/// The source feeding a stream now, as the pipeline reaches it: replaced when the source
/// changes; once the stream ends (`close`), every source attached is told to stop.
#[derive(Clone, Default)]
pub struct SourceLink(Arc<Mutex<Link>>);

#[derive(Default)]
struct Link {
    current: Option<Arc<dyn SourceControl>>,
    closed: bool,
}

impl SourceLink {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Link> {
        self.0.lock()
    }

    /// Points requests at `source` from now on (the one before gets none).
    pub fn attach(&self, source: impl SourceControl + 'static) {
        let mut link = self.lock();
        if link.closed {
            source.send(SourceCommand::Stop);
        }
        link.current = Some(Arc::new(source));
    }

    fn current(&self) -> Option<Arc<dyn SourceControl>> {
        self.lock().current.clone()
    }

    /// Sends to the current source, waiting while its queue is full (not under the lock:
    /// attaching the next source never waits on this one).
    fn send(&self, command: SourceCommand) {
        if let Some(source) = self.current() {
            source.send(command);
        }
    }

    fn try_send(&self, command: SourceCommand) {
        if let Some(source) = self.current() {
            source.try_send(command);
        }
    }

    /// The stream is over: the current source stops, and so does any attached later.
    fn close(&self) {
        self.lock().closed = true;
        self.send(SourceCommand::Stop);
    }

    /// Whether the stream is over (no further source should start).
    pub fn closed(&self) -> bool {
        self.lock().closed
    }
}

/// Reports to the daemon, from any of the stream's threads: one line at a time, so two
/// threads' reports never interleave on the socket.
#[derive(Clone)]
pub struct Reporter(Arc<Mutex<UnixStream>>);

impl Reporter {
    pub fn report(&self, report: &Report) {
        if let Err(e) = ipc::write(&mut *self.0.lock(), report) {
            tracing::warn!("reporting to the daemon: {e}");
        }
    }
}

/// One stream to one client, across the frame sources that feed it: the daemon's commands,
/// the senders (on the sink thread) and their counters live here, so a change of source
/// costs the client a key frame, not a reconnect.
pub struct Stream {
    sink: SinkThread,
    link: SourceLink,
    idr: Arc<AtomicBool>,
    reporter: Reporter,
}

impl Stream {
    /// Connects a stream to the daemon. A thread reads the socket until the daemon says stop
    /// or goes away; frames go out once the daemon started video, at least `min_fps` a
    /// second while the picture is still (0: only when it changes).
    pub fn attach(ipc: UnixStream, sockets: Sockets, min_fps: u32) -> std::io::Result<Self> {
        let Sockets { video, native, audio } = sockets;
        let reader_native = native.try_clone()?;
        let link = SourceLink::default();
        let (video_tx, video_rx) = mpsc::channel();
        let idr = Arc::new(AtomicBool::new(true));
        let reporter = Reporter(Arc::new(Mutex::new(ipc.try_clone()?)));
        let (reader_link, reader_idr, reader_reporter) = (link.clone(), Arc::clone(&idr), reporter.clone());
        std::thread::Builder::new()
            .name("daemon-ipc".into())
            .spawn(move || read_commands(ipc, reader_reporter, reader_link, video_tx, reader_idr, audio, reader_native))?;
        let sink = StreamSink {
            commands: video_rx,
            socket: video,
            native,
            source: link.clone(),
            idr: Arc::clone(&idr),
            reporter: reporter.clone(),
            sender: None,
            listener: None,
            first_sent: false,
            path: None,
            stats: StatsRecorder::default(),
            floor: (min_fps > 0).then(|| Duration::from_secs(1) / min_fps),
            live: StatsRecorder::default(),
            live_since: Instant::now(),
            resume: None,
        };
        Ok(Self { sink: SinkThread::spawn(sink), link, idr, reporter })
    }

    /// Reports to the daemon from outside the pipeline (the frame source's news).
    pub fn reporter(&self) -> Reporter {
        self.reporter.clone()
    }

    /// Makes `source` the one feeding the stream: requests go to it from now on, and its
    /// first frame is a key frame. Deliver its frames to [`Stream::mailbox`].
    pub fn connect_source(&self, source: impl SourceControl + 'static) {
        self.idr.store(true, Ordering::Relaxed);
        self.link.attach(source);
    }

    /// Where the current source delivers frames.
    pub fn mailbox(&self) -> &Mailbox {
        self.sink.mailbox()
    }

    /// Whether the daemon ended the stream (no further source should start).
    pub fn ended(&self) -> bool {
        self.link.closed()
    }

    /// Ends the stream: the last frame is sent, the senders stop and report.
    pub fn finish(self) -> std::io::Result<()> {
        self.sink.finish()
    }
}

fn read_commands(
    ipc: UnixStream,
    reporter: Reporter,
    source: SourceLink,
    video: mpsc::Sender<VideoCommand>,
    idr: Arc<AtomicBool>,
    audio: Option<Audio>,
    native: UdpSocket,
) {
    let mut input = BufReader::new(ipc);
    // The running sender, with the GameStream parameters it started with; where the last
    // GameStream sender stopped, for one started again for the same stream (a repeated PLAY:
    // the sequence numbers, which make the AES-CBC IVs, go on instead of starting over).
    let mut sender: Option<(AudioSender, Option<AudioParams>)> = None;
    let mut resume: Option<(AudioParams, AudioPosition)> = None;
    let stop_audio = |sender: &mut Option<(AudioSender, Option<AudioParams>)>, resume: &mut Option<(AudioParams, AudioPosition)>| {
        if let Some((s, params)) = sender.take() {
            let (stats, position) = s.stop();
            if let (Some(params), Some(position)) = (params, position) {
                *resume = Some((params, position));
                // The stream's next process (a login's hand-over) goes on from here too.
                reporter.report(&Report::AudioPosition(position));
            }
            tracing::info!(
                packets = stats.packets,
                silent = stats.silent,
                p50_us = stats.capture_to_send_us_p50,
                p99_us = stats.capture_to_send_us_p99,
                "audio stopped"
            );
            reporter.report(&Report::AudioStats(stats));
        }
    };
    loop {
        let command = match ipc::read::<Command>(&mut input) {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::info!("daemon closed the session socket: stopping");
                break;
            }
            Err(e) => {
                tracing::error!("daemon socket: {e}; stopping");
                break;
            }
        };
        match command {
            Command::StartVideo(p) => {
                let _ = video.send(VideoCommand::Start(p));
                source.send(SourceCommand::Redraw);
            }
            Command::StartNative(p) => {
                // Video, sound and microphone share the client's address on the data plane.
                let peer = Peer::default();
                stop_audio(&mut sender, &mut resume);
                if let Some(a) = &audio {
                    // A login stream's later process numbers its sound in its own range too.
                    let first = p.resume.map_or(0, |r| r.seq);
                    let wire = Wire::Native(AudioSealer::new(&p.key, KIND_SOUND).starting_at(first));
                    let started = native.try_clone().and_then(|socket| {
                        AudioSender::start(
                            OpusLayout::new(Channels::Stereo, false),
                            NATIVE_PACKET_MS,
                            wire,
                            socket,
                            peer.clone(),
                            a.session.subscribe(),
                            a.session.channels(),
                        )
                    });
                    match started {
                        Ok(s) => sender = Some((s, None)),
                        Err(e) => tracing::error!("audio: {e}; the stream goes on without sound"),
                    }
                }
                let _ = video.send(VideoCommand::StartNative(p, peer, audio.as_ref().map(|a| Arc::clone(a.session.mic()))));
                source.send(SourceCommand::Redraw);
            }
            Command::StopVideo => {
                let _ = video.send(VideoCommand::Stop);
            }
            Command::SetBitrate { bps } => {
                let _ = video.send(VideoCommand::SetBitrate(bps));
            }
            Command::StartAudio(params) => {
                stop_audio(&mut sender, &mut resume);
                let Some(a) = &audio else {
                    tracing::warn!("the client asked for audio, but this session has none");
                    continue;
                };
                let at = resume
                    .take()
                    .filter(|(last, _)| continues((&last.key, &last.ping_payload), (&params.key, &params.ping_payload)))
                    .map(|(_, position)| position)
                    .or(params.resume);
                let started = a
                    .socket
                    .try_clone()
                    .and_then(|socket| gamestream::audio::start(params.clone(), socket, a.session.subscribe(), a.session.channels(), at));
                match started {
                    Ok(s) => sender = Some((s, Some(params))),
                    Err(e) => tracing::error!("audio: {e}; the stream goes on without sound"),
                }
            }
            Command::StopAudio => stop_audio(&mut sender, &mut resume),
            Command::Input(e) => {
                source.send(SourceCommand::Input(e));
            }
            Command::SetMode(mode) => {
                source.send(SourceCommand::SetMode(mode));
            }
            Command::RequestIdr => {
                idr.store(true, Ordering::Relaxed);
                let _ = video.send(VideoCommand::Unrecoverable);
                source.send(SourceCommand::Redraw);
            }
            Command::InvalidateFrames { first, last } => {
                let _ = video.send(VideoCommand::Invalidate { first, last });
                // The repair goes out with the next frame, however still the screen is.
                source.send(SourceCommand::Redraw);
            }
            Command::DatagramsLost(n) => {
                let _ = video.send(VideoCommand::Lost(n));
            }
            Command::LossBurst(n) => {
                let _ = video.send(VideoCommand::Burst(n));
            }
            Command::Clipboard(text) => {
                source.send(SourceCommand::Clipboard(text));
            }
            Command::EncoderThreads(n) => crate::encode::set_threads(usize::from(n)),
            Command::Stop => break,
        }
    }
    stop_audio(&mut sender, &mut resume);
    source.close();
}

/// Encodes and sends frames once the daemon started video; drops them before that.
struct StreamSink {
    commands: mpsc::Receiver<VideoCommand>,
    socket: UdpSocket,
    native: UdpSocket,
    source: SourceLink,
    idr: Arc<AtomicBool>,
    reporter: Reporter,
    sender: Option<MediaSender>,
    /// Hears the client for the current sender; dropped (joined) when it stops.
    listener: Option<Listener>,
    first_sent: bool,
    /// The path last reported (`Report::VideoPath`).
    path: Option<String>,
    stats: StatsRecorder,
    /// The longest a watched stream goes without a frame (`--min-fps`); `None`: no floor.
    floor: Option<Duration>,
    /// The figures since the last `Report::VideoLive`, and when that was.
    live: StatsRecorder,
    live_since: Instant,
    /// Where the last GameStream sender stopped, for one restarted under the same key (a
    /// second PLAY): its frame numbers and IVs go on from there, never again from zero.
    resume: Option<Resume>,
}

/// Whether a GameStream sender with `next`'s key and ping payload goes on where one with
/// `last`'s stopped. Under one key always (whatever else changed, an IV is never used twice);
/// unencrypted, only for the same stream (its ping payload).
fn continues<K: PartialEq>(last: (&Option<K>, &Option<String>), next: (&Option<K>, &Option<String>)) -> bool {
    last.0 == next.0 && (last.0.is_some() || last.1 == next.1)
}

/// A stopped GameStream sender's position, and the stream identity it belongs to.
struct Resume {
    key: Option<[u8; 16]>,
    ping_payload: Option<String>,
    position: VideoPosition,
}

impl StreamSink {
    fn report(&self, report: &Report) {
        self.reporter.report(report);
    }

    fn stop_video(&mut self) {
        // The listener first: what it took is final before the position says so.
        self.listener = None;
        if let Some(sender) = self.sender.take() {
            if let MediaSender::GameStream(s) = &sender {
                let params = s.params();
                self.resume = Some(Resume { key: params.key, ping_payload: params.ping_payload.clone(), position: s.position() });
            }
            self.report(&sender.position(true));
            let stats = self.stats.take();
            tracing::info!(
                frames = stats.frames,
                keyframes = stats.keyframes,
                p50_us = stats.host_latency_us_p50,
                p99_us = stats.host_latency_us_p99,
                "video stopped; host latency by stage (mean): {}",
                stats.stages_mean_us.describe_ms()
            );
            self.report(&Report::VideoStats(stats));
        }
    }

    /// Starts a sender of either protocol, with a thread latching the client's address
    /// from its pings (GameStream) or hellos (punktfunk/1).
    fn start_video(&mut self, command: VideoCommand) -> std::io::Result<()> {
        self.stop_video();
        let (source, idr) = (self.source.clone(), Arc::clone(&self.idr));
        let on_latch = move || {
            idr.store(true, Ordering::Relaxed);
            // Never blocks: a full queue has a redraw coming anyway, and this thread must
            // not wait on a loop that may have stopped.
            source.try_send(SourceCommand::Redraw);
        };
        let (sender, listener) = match command {
            VideoCommand::Start(params) => {
                let peer = Peer::default();
                let pings = Pings { payload: params.ping_payload.clone(), client: params.client };
                let (socket, listener_peer) = (self.socket.try_clone()?, peer.clone());
                let listener = Listener::spawn("video-pings", move |stop| listen_for_pings(socket, pings, listener_peer, stop, on_latch))?;
                // The same stream started again (a repeated PLAY) goes on where it stopped:
                // under the same key, an IV is never used twice.
                let resume = self
                    .resume
                    .take()
                    .filter(|r| continues((&r.key, &r.ping_payload), (&params.key, &params.ping_payload)))
                    .map(|r| r.position);
                let sender = VideoSender::new(params, self.socket.try_clone()?, peer, Arc::clone(&self.idr), resume)
                    .map_err(std::io::Error::other)?;
                (MediaSender::GameStream(sender), listener)
            }
            VideoCommand::StartNative(params, peer, mic) => {
                let (socket, listener_params, listener_peer) = (self.native.try_clone()?, params.clone(), peer.clone());
                let heard = Heard::default();
                let listener_heard = heard.clone();
                let listener = Listener::spawn("video-hellos", move |stop| {
                    listen_for_hellos(socket, &listener_params, listener_peer, listener_heard, stop, mic, on_latch)
                })?;
                let sender = NativeVideoSender::new(params, self.native.try_clone()?, peer, heard, Arc::clone(&self.idr))
                    .map_err(std::io::Error::other)?;
                (MediaSender::Native(sender), listener)
            }
            VideoCommand::Stop
            | VideoCommand::SetBitrate(_)
            | VideoCommand::Lost(_)
            | VideoCommand::Burst(_)
            | VideoCommand::Unrecoverable
            | VideoCommand::Invalidate { .. } => return Ok(()),
        };
        self.sender = Some(sender);
        self.listener = Some(listener);
        self.live.take();
        self.live_since = Instant::now();
        self.first_sent = false;
        self.path = None;
        Ok(())
    }
}

impl FrameSink for StreamSink {
    fn consume(&mut self, frame: Frame) -> std::io::Result<()> {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                VideoCommand::Stop => self.stop_video(),
                VideoCommand::SetBitrate(bps) => {
                    if let Some(s) = self.sender.as_mut() {
                        s.set_bitrate(bps);
                    }
                }
                VideoCommand::Lost(n) => {
                    if let Some(s) = self.sender.as_mut() {
                        s.parity().lost(n as usize);
                    }
                }
                VideoCommand::Burst(n) => {
                    if let Some(s) = self.sender.as_mut() {
                        s.parity().burst(n as usize);
                    }
                }
                VideoCommand::Unrecoverable => {
                    if let Some(s) = self.sender.as_mut() {
                        s.parity().unrecoverable();
                    }
                }
                VideoCommand::Invalidate { first, last } => {
                    // A loss beyond FEC for the parity, once per loss (not per report).
                    if let Some(s) = self.sender.as_mut()
                        && s.invalidate(first, last)
                    {
                        s.parity().unrecoverable();
                    }
                }
                start => {
                    if let Err(e) = self.start_video(start) {
                        self.report(&Report::VideoFailed(e.to_string()));
                    }
                }
            }
        }
        let Some(sender) = self.sender.as_mut() else { return Ok(()) };
        let path = frame_path(&frame);
        match sender.send(frame) {
            Ok(Some(sent)) => {
                let encoder = sender.encoder();
                let path = match encoder.fell_back() {
                    Some(why) => format!("{} ({why}), {path}", encoder.name().unwrap_or("no encoder")),
                    None => format!("{}, {path}", encoder.name().unwrap_or("no encoder")),
                };
                if self.path.as_ref() != Some(&path) {
                    self.report(&Report::VideoPath(path.clone()));
                    self.path = Some(path);
                }
                self.stats.record(&sent);
                self.live.record(&sent);
                if self.live_since.elapsed() >= LIVE_WINDOW {
                    let window_ms = self.live_since.elapsed().as_millis() as u32;
                    self.live_since = Instant::now();
                    let stats = self.live.take();
                    self.report(&Report::VideoLive(LiveVideo { window_ms, stats }));
                    if let Some(position) = self.sender.as_ref().map(|s| s.position(false)) {
                        self.report(&position);
                    }
                }
                if !self.first_sent {
                    self.first_sent = true;
                    tracing::info!(index = sent.index, bytes = sent.bytes, "first frame sent");
                    self.report(&Report::FirstFrameSent { index: sent.index });
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("video: {e}");
                self.report(&Report::VideoFailed(e.to_string()));
                self.stop_video();
            }
        }
        Ok(())
    }

    fn wants(&self) -> PixelFormat {
        self.sender.as_ref().map_or(PixelFormat::Bgrx8888, |s| s.encoder().wants())
    }

    fn surfaces(&self) -> Option<Arc<GpuSurfaces>> {
        self.sender.as_ref()?.encoder().surfaces()
    }

    /// While a client watches, a still picture is sent again at the floor rate: a client
    /// that lost the last frame sees the gap and asks for a key frame instead of showing a
    /// stale picture until something moves, and decoders keep their pace.
    fn idle_after(&self) -> Option<Duration> {
        self.sender.as_ref().and(self.floor)
    }

    fn idle(&mut self) -> std::io::Result<()> {
        // Never blocks: a full queue has frames coming anyway.
        self.source.try_send(SourceCommand::Redraw);
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.stop_video();
        Ok(())
    }
}
