//! Stream sessions: one stream process per session (ARCHITECTURE.md §1), one session per
//! client, several clients at once. The daemon spawns a session's process with the app,
//! hands it its slot's media sockets and a command socket, forwards input and key-frame
//! requests, and tears it down on /cancel, when the app exits, or when the client vanishes.

mod joins;

use crate::config::{App, SessionPorts};
use crate::input_view::{Dirs, InputView};
use crate::login::{LoginDesk, LoginStream, Stage};
use parking_lot::Mutex;
use punktfunk_core::channels::Channels;
use punktfunk_core::control::messages::ReceiveStats;
use punktfunk_core::gamestream::sdp::StreamRequest;
use punktfunk_core::ipc::{self, Command, Report};
use punktfunk_core::mode::Mode;
use punktfunk_core::stream::AudioStats;
use punktfunk_core::stream::LiveVideo;
use punktfunk_core::stream::VideoStats;
use std::ffi::OsString;
use std::io::BufReader;
use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What /launch (or /resume) established: the stream's keys and the client it belongs to.
#[derive(Clone, Debug)]
pub struct Launch {
    pub app_id: u32,
    /// The output's mode: what the client asked for, last.
    pub mode: Mode,
    pub key: [u8; 16],
    pub key_id: i32,
    pub client: IpAddr,
    /// The paired certificate that launched or last resumed it: the session is this
    /// client's, and only it resumes or quits it.
    pub fingerprint: String,
    /// `X-SS-Ping-Payload`: the client's UDP pings carry it.
    pub ping_payload: String,
    /// `X-SS-Connect-Data`: the client's ENet CONNECT carries it.
    pub connect_data: u32,
    /// RTSP is sealed with the key (`rtspenc://`, clients with `corever` ≥ 1).
    pub encrypted_rtsp: bool,
    /// RTSP responses sealed under `key` so far: the next one's sequence number, so no two
    /// share an IV (the client's `CSeq` would repeat on a replayed request).
    pub rtsp_sealed: u32,
    /// The layout of the session's sink (`surroundAudioInfo`); a client resuming with another
    /// one gets the sound converted.
    pub audio_channels: Channels,
}

impl Launch {
    pub fn new(app_id: u32, mode: Mode, key: [u8; 16], key_id: i32, client: IpAddr, fingerprint: String) -> Self {
        Self {
            app_id,
            mode,
            key,
            key_id,
            client,
            fingerprint,
            ping_payload: hex::encode(rand::random::<[u8; 8]>()),
            connect_data: rand::random(),
            encrypted_rtsp: false,
            rtsp_sealed: 0,
            audio_channels: Channels::Stereo,
        }
    }

    /// New keys from /resume for the same running session.
    pub fn rekey(&mut self, key: [u8; 16], key_id: i32, client: IpAddr, fingerprint: String) {
        let fresh = Self::new(self.app_id, self.mode, key, key_id, client, fingerprint);
        if key != self.key {
            self.rtsp_sealed = 0;
        }
        (self.key, self.key_id, self.client, self.fingerprint, self.ping_payload, self.connect_data) =
            (key, key_id, client, fresh.fingerprint, fresh.ping_payload, fresh.connect_data);
    }
}

/// How long a command to the compositor may wait for room in its socket: longer means the
/// compositor has stopped reading (frozen, or its loop stuck).
const IPC_WRITE_LIMIT: Duration = Duration::from_secs(1);

/// A running session.
pub struct Stream {
    pub id: u64,
    pub launch: Launch,
    /// Its processes' view of the input devices, where its pads show (none: they see the
    /// host's, where the machine allows no view).
    pub input_view: Option<Arc<InputView>>,
    /// The client's ANNOUNCE, once RTSP got that far.
    pub request: Option<StreamRequest>,
    pub launched_at: Instant,
    pub first_frame_at: Option<Instant>,
    /// The token of the punktfunk/1 start now streaming, if any: the connection that holds it
    /// steers the session; one that another client's start replaced does not.
    pub native_owner: Option<u64>,
    /// What the stream's video is, in words ("HEVC, 10-bit 4:2:0, BT.709 limited range"),
    /// once one started.
    pub video: Option<String>,
    /// How its frames reach the client, as the compositor says ("libx264, frames converted
    /// on the CPU").
    pub encoding: Option<String>,
    /// The UDP ports its media leave from (its slot's).
    pub ports: SessionPorts,
    /// The RTSP `Session` token: a client that does not seal its RTSP requests names its
    /// session with it.
    pub rtsp_session: String,
    /// The video's figures over its last second, and when they came.
    pub live: Option<(Instant, LiveVideo)>,
    /// Key frames the client asked for: each is a loss FEC could not repair.
    pub keyframe_requests: u64,
    /// Frames the client reported lost for the encoder to repair from an older picture
    /// (Moonlight's reference frame invalidation, punktfunk/1's repairs): each also a loss
    /// FEC could not repair.
    pub frames_invalidated: u64,
    /// FEC blocks a Moonlight client reported needing parity for: rebuilt, and lost.
    pub blocks_repaired: u64,
    pub blocks_lost: u64,
    /// What its punktfunk/1 client last said it received.
    pub received: Option<ReceiveStats>,
    /// The text an app in it copied last, numbered from 1 (a connection passes on each
    /// number once).
    pub copied: Option<(u64, std::sync::Arc<str>)>,
    /// The command socket of the process feeding the stream; none while a login stream
    /// goes from one process to the next.
    commands: Option<UnixStream>,
    /// A write to `commands` failed or timed out.
    stalled: bool,
    /// The stream process, or a login stream's greetd.
    pid: i32,
    /// A stream that starts at the login greeter: what it carries from process to process.
    pub login: Option<LoginStream>,
    /// Its slot (the media sockets).
    slot: usize,
    /// Where the launch hears how the (first) process's command started.
    news: Option<std::sync::mpsc::Sender<AppNews>>,
    /// Set once the compositor has been reaped: its pid must not be signalled after that.
    reaped: Arc<AtomicBool>,
}

impl Stream {
    /// Sends a command, unless the compositor stopped reading: then (its socket full for
    /// `IPC_WRITE_LIMIT`) commands are dropped rather than stalling the daemon, which calls
    /// this under the session lock.
    pub fn send(&mut self, command: &Command) {
        let resumed;
        let command = match (&mut self.login, command) {
            // Kept for the next process of a login stream, which goes on where this one is.
            (Some(login), Command::StartVideo(params)) => {
                (login.video, login.native) = (Some(params.clone()), None);
                resumed = login.video_for_next().map(Command::StartVideo);
                resumed.as_ref().unwrap_or(command)
            }
            // punktfunk/1 brings its own sound (the process stops GameStream's).
            (Some(login), Command::StartNative(params)) => {
                (login.video, login.audio) = (None, None);
                resumed = Some(Command::StartNative(login.start_native(params.clone())));
                resumed.as_ref().unwrap_or(command)
            }
            (Some(login), Command::StopVideo) => {
                (login.video, login.native) = (None, None);
                command
            }
            (Some(login), Command::StartAudio(params)) => {
                login.audio = Some(params.clone());
                resumed = login.audio_for_next().map(Command::StartAudio);
                resumed.as_ref().unwrap_or(command)
            }
            (Some(login), Command::StopAudio) => {
                login.audio = None;
                command
            }
            (Some(login), Command::SetBitrate { bps }) => {
                if let Some(video) = &mut login.video {
                    video.bitrate_bps = *bps;
                }
                if let Some(native) = &mut login.native {
                    native.bitrate_bps = *bps;
                }
                command
            }
            _ => command,
        };
        let Some(commands) = &mut self.commands else { return };
        if self.stalled {
            return;
        }
        if let Err(e) = ipc::write(commands, command) {
            tracing::warn!(stream = self.id, "compositor socket: {e}; no more commands to it");
            self.stalled = true;
        }
    }

    /// Asks the compositor to end the session, then makes sure it does.
    fn stop(mut self) {
        self.send(&Command::Stop);
        let (pid, reaped) = (nix::unistd::Pid::from_raw(self.pid), self.reaped);
        if self.login.is_some() && !reaped.load(Ordering::Acquire) {
            // greetd ends its greeter or session, and itself.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        std::thread::spawn(move || {
            // The compositor stops its app (killing it after 3 s) and exits; a stuck compositor
            // is killed after a grace period.
            for _ in 0..60 {
                if reaped.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            tracing::warn!(%pid, "compositor did not stop in 6 s: killing it");
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        });
    }
}

/// Notes the control server needs about sessions ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The app exited or /cancel: tell the client it is over.
    Stream(u64),
}

/// Why a launch was refused while other sessions run.
#[derive(Debug, thiserror::Error)]
pub enum Busy {
    /// Each client streams one session: it resumes it or quits it first.
    #[error("this client already streams an app: quit it first")]
    Own,
    #[error("the host already streams {0} sessions, as many as it allows (max_sessions)")]
    Full(usize),
}

/// The UDP sockets one session's stream process sends its media from (the daemon binds them
/// once; the process of the session in that slot inherits them).
pub struct MediaSockets {
    /// GameStream video.
    pub video: UdpSocket,
    /// The punktfunk/1 data plane.
    pub native: UdpSocket,
    /// GameStream audio.
    pub audio: UdpSocket,
}

/// A place for one session: its media sockets, and the exit waiter of the last session
/// that used them. A slot is free once that waiter has finished: its process no longer
/// reads the sockets (two would take each other's pings) and its undo commands ran.
pub struct Slot {
    sockets: MediaSockets,
    ports: SessionPorts,
    waiter: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Slot {
    pub fn new(sockets: MediaSockets, ports: SessionPorts) -> Self {
        Self { sockets, ports, waiter: Mutex::new(None) }
    }

    fn is_free(&self) -> bool {
        self.waiter.lock().as_ref().is_none_or(std::thread::JoinHandle::is_finished)
    }
}

/// The running sessions, one per client, each in its own stream process and slot.
pub struct Streams {
    running: Mutex<Vec<Stream>>,
    /// Serialises launches (check and claim in one step).
    launching: Mutex<()>,
    slots: Vec<Slot>,
    next_id: Mutex<u64>,
    compositor: PathBuf,
    engines: Engines,
    /// Streams start at the login greeter (`login = true`).
    login: Option<LoginDesk>,
    /// Each session gets a view of the input devices of its own (`gamepad_isolation`).
    input_views: bool,
    /// Environment every session gets (a private PipeWire's runtime directory and bus).
    session_env: Vec<(&'static str, OsString)>,
    ended: Mutex<Vec<std::sync::mpsc::Sender<Ended>>>,
    /// The figures of the last video and audio streams that stopped.
    pub last_video: Arc<Mutex<Option<VideoStats>>>,
    pub last_audio: Arc<Mutex<Option<AudioStats>>>,
    /// What the last punktfunk/1 client said it received.
    pub last_native: Mutex<Option<punktfunk_core::control::messages::ReceiveStats>>,
}

/// What the compositors encode, composite and convert with, and on which GPU (`--encoder`,
/// `--renderer`, `--convert`, `--gpu`).
pub struct Engines {
    /// `--min-fps`: a still picture's floor rate.
    pub min_fps: u32,
    pub encoder: String,
    pub renderer: String,
    pub convert: String,
    pub gpu: Option<PathBuf>,
}

/// How long a launch waits for a slot whose last session is still ending.
const SLOT_WAIT: Duration = Duration::from_secs(10);

impl Streams {
    /// Sessions at once: one per slot.
    pub fn new(
        compositor: PathBuf,
        engines: Engines,
        slots: Vec<Slot>,
        session_env: Vec<(&'static str, OsString)>,
        login: Option<LoginDesk>,
    ) -> Self {
        Self {
            running: Mutex::new(Vec::new()),
            launching: Mutex::new(()),
            slots,
            next_id: Mutex::new(1),
            compositor,
            engines,
            login,
            input_views: false,
            session_env,
            ended: Mutex::new(Vec::new()),
            last_video: Arc::default(),
            last_audio: Arc::default(),
            last_native: Mutex::new(None),
        }
    }

    /// Gives each session a view of the input devices of its own, where only its pads show
    /// (with remote login, its greetd's: the greeter and the user's session run in it).
    pub fn isolating_pads(mut self, on: bool) -> Self {
        self.input_views = on;
        self
    }

    /// A new session's view of the input devices, where it gets one.
    fn input_view(&self) -> Option<Arc<InputView>> {
        if !self.input_views {
            return None;
        }
        // This very binary, also after an upgrade replaced its file.
        let made = InputView::new(std::path::Path::new("/proc/self/exe"), &Dirs::default());
        match made {
            Ok(view) => {
                let view = Arc::new(view);
                crate::input_view::register(&view);
                Some(view)
            }
            Err(e) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| tracing::warn!("sessions see every gamepad on this machine: no input view ({e:#})"));
                None
            }
        }
    }

    /// Whether streams start at the login greeter.
    pub fn logs_in(&self) -> bool {
        self.login.is_some()
    }

    /// Subscribes to session ends.
    pub fn on_end(&self) -> std::sync::mpsc::Receiver<Ended> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.ended.lock().push(tx);
        rx
    }

    /// Runs `f` on session `id`, if it runs.
    pub fn with<R>(&self, id: u64, f: impl FnOnce(&mut Stream) -> R) -> Option<R> {
        self.find(|s| s.id == id, f)
    }

    /// Runs `f` on the first running session `which` picks.
    pub fn find<R>(&self, which: impl Fn(&Stream) -> bool, f: impl FnOnce(&mut Stream) -> R) -> Option<R> {
        self.running.lock().iter_mut().find(|s| which(s)).map(f)
    }

    /// `f` of every running session, in launch order.
    pub fn list<R>(&self, f: impl FnMut(&Stream) -> R) -> Vec<R> {
        self.running.lock().iter().map(f).collect()
    }

    /// The session the paired client `fingerprint` launched (or last resumed).
    pub fn of_client<R>(&self, fingerprint: &str, f: impl FnOnce(&mut Stream) -> R) -> Option<R> {
        self.find(|s| s.launch.fingerprint == fingerprint, f)
    }

    /// The session the client `fingerprint` resumes or quits: its own; without one, when it
    /// may act on others' sessions, the oldest running.
    pub fn acted_on_by<R>(&self, fingerprint: &str, others: bool, f: impl FnOnce(&mut Stream) -> R) -> Option<R> {
        let mut running = self.running.lock();
        let own = running.iter().position(|s| s.launch.fingerprint == fingerprint);
        let at = own.or_else(|| (others && !running.is_empty()).then_some(0))?;
        Some(f(&mut running[at]))
    }

    /// Waits (up to `limit`) until every session has exited and its undo commands ran.
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.slots.iter().all(Slot::is_free) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A free slot, waiting up to `limit` for one whose session is still ending.
    fn free_slot(&self, limit: Duration) -> Option<usize> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.slots.iter().position(Slot::is_free) {
                return Some(i);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `app` in a fresh stream process at the launch's mode, beside the sessions of
    /// other clients.
    pub fn launch(self: &Arc<Self>, launch: Launch, app: &App) -> anyhow::Result<u64> {
        let one_at_a_time = self.launching.lock();
        {
            let running = self.running.lock();
            if running.iter().any(|s| s.launch.fingerprint == launch.fingerprint) {
                return Err(Busy::Own.into());
            }
            if running.len() >= self.slots.len() {
                return Err(Busy::Full(self.slots.len()).into());
            }
        }
        let slot = self.free_slot(SLOT_WAIT).ok_or(Busy::Full(self.slots.len()))?;
        let id = {
            let mut n = self.next_id.lock();
            *n += 1;
            *n
        };
        let mut undo: Vec<Vec<String>> = Vec::new();
        let input_view = self.input_view();
        let started = match &self.login {
            Some(desk) => desk.spawn_greetd(id, app, input_view.as_deref()).map(|(child, login)| (child, None, Some(login))),
            None => self
                .prepare_and_spawn(&launch, app, &self.slots[slot].sockets, input_view.as_deref(), &mut undo)
                .map(|(c, ours)| (c, Some(ours), None)),
        };
        let (mut child, ours, login) = match started {
            Ok(s) => s,
            Err(e) => {
                // Undo what prep already did.
                for u in undo.iter().rev().filter(|u| !u.is_empty()) {
                    let _ = run_quiet(u, "undo");
                }
                return Err(e);
            }
        };
        let reaped = Arc::new(AtomicBool::new(false));
        let (news_to_launch, news) = std::sync::mpsc::channel();
        let exited = news_to_launch.clone();
        let reports = ours.as_ref().map(UnixStream::try_clone).transpose()?;
        let title = if login.is_some() { "the login greeter".to_owned() } else { app.title.clone() };
        let waits = login.is_some() || !app.command.is_empty() || !app.attach.is_empty();
        let stream = Stream {
            id,
            launch,
            input_view,
            request: None,
            launched_at: Instant::now(),
            first_frame_at: None,
            native_owner: None,
            video: None,
            encoding: None,
            ports: self.slots[slot].ports,
            rtsp_session: hex::encode(rand::random::<[u8; 8]>()).to_uppercase(),
            live: None,
            keyframe_requests: 0,
            frames_invalidated: 0,
            blocks_repaired: 0,
            blocks_lost: 0,
            copied: None,
            received: None,
            commands: ours,
            stalled: false,
            pid: child.id() as i32,
            reaped: Arc::clone(&reaped),
            login,
            slot,
            news: Some(news_to_launch.clone()),
        };
        tracing::info!(stream = id, app = app.title, pid = child.id(), slot, "session started");
        self.running.lock().push(stream);
        self.share_cores();
        if let Some(reports) = reports {
            let streams = Arc::clone(self);
            std::thread::Builder::new()
                .name(format!("stream-{id}-reports"))
                .spawn(move || streams.read_reports(id, reports, news_to_launch, None))?;
        }
        let streams = Arc::clone(self);
        let logs_in = self.login.is_some();
        let waiter = std::thread::Builder::new().name(format!("stream-{id}-wait")).spawn(move || {
            let status = child.wait();
            reaped.store(true, Ordering::Release);
            tracing::info!(stream = id, ?status, "session ended");
            let _ = exited.send(AppNews::Exited(status.map_or_else(|e| e.to_string(), |s| s.to_string())));
            for u in undo.iter().rev().filter(|u| !u.is_empty()) {
                let _ = run_quiet(u, "undo");
            }
            if logs_in {
                // A login stream's processes ran as its user, who could have kept a copy of
                // the slot's sockets past the end: the next stream in the slot must be their
                // only reader.
                joins::evict_holders(&streams.slots[slot].sockets);
            }
            streams.ended(id);
        })?;
        *self.slots[slot].waiter.lock() = Some(waiter);
        // Claimed: other clients may launch while this app starts.
        drop(one_at_a_time);
        if !waits {
            return Ok(id);
        }
        // The client hears why an app did not start, instead of waiting on a black screen.
        let waited = wait_for_app(&news, &title);
        self.with(id, |s| s.news = None);
        waited.map(|()| id).inspect_err(|_| {
            self.cancel(id);
        })
    }

    /// Reads a stream process's reports until it closes its socket. `join`: the how-manyth
    /// process of a login stream it is (the stream waits for the next once it ends).
    fn read_reports(&self, id: u64, socket: UnixStream, news: std::sync::mpsc::Sender<AppNews>, join: Option<u32>) {
        let mut input = BufReader::new(socket);
        while let Ok(Some(report)) = ipc::read::<Report>(&mut input) {
            match report {
                Report::FirstFrameSent { index } => {
                    tracing::info!(stream = id, index, "first frame sent");
                    self.with(id, |s| {
                        s.first_frame_at.get_or_insert_with(Instant::now);
                    });
                }
                Report::VideoFailed(e) => {
                    // Without video the client would only time out: end it now, cleanly.
                    tracing::error!(stream = id, "video failed: {e}; ending the session");
                    self.cancel(id);
                }
                Report::VideoPath(path) => {
                    tracing::info!(stream = id, "video: {path}");
                    self.with(id, |s| s.encoding = Some(path));
                }
                Report::VideoStats(stats) => *self.last_video.lock() = Some(stats),
                Report::VideoLive(live) => {
                    self.with(id, |s| s.live = Some((Instant::now(), live)));
                }
                Report::VideoPosition { position, stopped } => {
                    self.with(id, |s| {
                        if let Some(login) = &mut s.login {
                            login.position = Some((position, stopped));
                        }
                    });
                }
                Report::NativePosition { token, position, stopped } => {
                    self.with(id, |s| {
                        if let Some(login) = &mut s.login {
                            login.native_reported(token, position, stopped);
                        }
                    });
                }
                Report::AudioStats(stats) => *self.last_audio.lock() = Some(stats),
                Report::Clipboard(text) => {
                    self.with(id, |s| {
                        let n = s.copied.as_ref().map_or(1, |(n, _)| n + 1);
                        s.copied = Some((n, text.into()));
                    });
                }
                Report::AudioPosition(position) => {
                    self.with(id, |s| {
                        if let Some(login) = &mut s.login {
                            login.audio_position = Some(position);
                        }
                    });
                }
                Report::AppStarted => {
                    let _ = news.send(AppNews::Started);
                }
                Report::AppFailed(why) => {
                    tracing::error!(stream = id, "{why}");
                    let _ = news.send(AppNews::Failed(why));
                }
            }
        }
        let _ = news.send(AppNews::ReportsEnded);
        if let Some(join) = join {
            let sound = self.with(id, |s| {
                let login = s.login.as_mut().filter(|l| l.joins == join)?;
                tracing::info!(stream = id, "{} ended", login.stage);
                login.stage = Stage::Between;
                s.commands = None;
                login.pipewire.take()
            });
            // Its user's PipeWire, if we started one, ends with it (not under the lock: it
            // waits for the daemons).
            drop(sound);
        }
    }

    /// Runs the app's prep commands (recording their undo as they succeed) and spawns the
    /// stream process with the slot's media sockets and a command socket.
    fn prepare_and_spawn(
        &self,
        launch: &Launch,
        app: &App,
        sockets: &MediaSockets,
        input_view: Option<&InputView>,
        undo: &mut Vec<Vec<String>>,
    ) -> anyhow::Result<(std::process::Child, UnixStream)> {
        for prep in &app.prep {
            run_quiet(&prep.run, "prep")?;
            undo.push(prep.undo.clone());
        }
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_write_timeout(Some(IPC_WRITE_LIMIT))?;
        let (video, native, audio) = (sockets.video.try_clone()?, sockets.native.try_clone()?, sockets.audio.try_clone()?);
        let mut cmd = std::process::Command::new(&self.compositor);
        cmd.arg("--mode")
            .arg(launch.mode.to_string())
            .arg("--encoder")
            .arg(&self.engines.encoder)
            .arg("--renderer")
            .arg(&self.engines.renderer)
            .arg("--convert")
            .arg(&self.engines.convert)
            .args(self.engines.gpu.iter().flat_map(|gpu| [std::ffi::OsStr::new("--gpu"), gpu.as_os_str()]))
            .arg("--ipc-fd")
            .arg(theirs.as_raw_fd().to_string())
            .arg("--video-fd")
            .arg(video.as_raw_fd().to_string())
            .arg("--native-fd")
            .arg(native.as_raw_fd().to_string())
            .arg("--audio-channels")
            .arg(launch.audio_channels.count().to_string())
            .arg("--min-fps")
            .arg(self.engines.min_fps.to_string())
            .envs(self.session_env.iter().cloned())
            .envs(&app.env)
            .arg("--audio-fd")
            .arg(audio.as_raw_fd().to_string());
        if !app.attach.is_empty() {
            // The desktop's sound is what its default output plays.
            cmd.arg("--attach").arg(&app.attach);
        } else if !app.command.is_empty() {
            cmd.arg("--").args(&app.command);
        }
        if let Some(dir) = &app.working_dir {
            cmd.current_dir(dir);
        }
        let fds = [theirs.as_raw_fd(), video.as_raw_fd(), native.as_raw_fd(), audio.as_raw_fd()];
        // SAFETY: only async-signal-safe fcntl calls between fork and exec. They let exactly
        // these descriptors survive exec in the child.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                for fd in fds {
                    if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        if let Some(view) = input_view {
            view.enter(&mut cmd);
        }
        let child = cmd.spawn().map_err(|e| anyhow::anyhow!("starting {}: {e}", self.compositor.display()))?;
        Ok((child, ours))
    }

    /// Forgets session `id` (it exited) and tells the control server.
    fn ended(&self, id: u64) {
        self.running.lock().retain(|s| s.id != id);
        self.share_cores();
        if let Some(desk) = &self.login {
            desk.forget(id);
        }
        self.notify_ended(id);
    }

    /// Tells the subscribers (the control server) that session `id` is over.
    fn notify_ended(&self, id: u64) {
        self.ended.lock().retain(|tx| tx.send(Ended::Stream(id)).is_ok());
    }

    /// Ends session `id`, if it runs. Returns whether it did.
    pub fn cancel(&self, id: u64) -> bool {
        let stream = {
            let mut running = self.running.lock();
            let Some(at) = running.iter().position(|s| s.id == id) else { return false };
            running.remove(at)
        };
        tracing::info!(stream = id, "ending session");
        stream.stop();
        self.share_cores();
        self.notify_ended(id);
        true
    }

    /// Gives every running session the same share of the cores for its software encoder
    /// (the scheduler shares per thread: an encoder with more threads would take more).
    /// Called whenever one starts or ends, and when a login stream's next process joins.
    fn share_cores(&self) {
        let mut running = self.running.lock();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = encoder_threads(cores, running.len());
        for stream in running.iter_mut() {
            stream.send(&Command::EncoderThreads(threads));
        }
    }

    /// Ends every session (the host shuts down).
    pub fn cancel_all(&self) {
        for id in self.list(|s| s.id) {
            self.cancel(id);
        }
    }
}

/// A software encoder's threads when `sessions` stream on `cores`: an equal share of all but
/// one core (left for the compositors and senders), at least one, at most 8 (x264's slice
/// threads gain little past that at streaming sizes).
fn encoder_threads(cores: usize, sessions: usize) -> u16 {
    (cores.saturating_sub(1) / sessions.max(1)).clamp(1, 8) as u16
}

/// What the daemon hears of a session's command while it launches it.
enum AppNews {
    Started,
    Failed(String),
    /// The session's process ended, with this status.
    Exited(String),
    /// Its reports are all read (the process closed its socket).
    ReportsEnded,
}

/// How long a session's command may take to start (Xwayland comes up first), and how long it
/// must then keep running for its launch to count.
const APP_START: Duration = Duration::from_secs(10);
const APP_SETTLE: Duration = Duration::from_millis(300);

/// Waits until the session's command has started and kept running a moment: an error that
/// says why when it could not start or ended at once. A slow start is no error.
fn wait_for_app(news: &std::sync::mpsc::Receiver<AppNews>, title: &str) -> anyhow::Result<()> {
    use std::sync::mpsc::RecvTimeoutError;
    let begun = Instant::now();
    let (mut started, mut failed, mut exited, mut reports_ended) = (None::<Instant>, None, None::<(Instant, String)>, false);
    loop {
        // The exit and the last reports come on two threads: once the process is gone, wait
        // (a little) for its reports, which say why.
        let wait = match (&exited, started) {
            (Some(_), _) if reports_ended => break,
            (Some((at, _)), _) => APP_SETTLE.saturating_sub(at.elapsed()),
            (None, Some(at)) if at.elapsed() >= APP_SETTLE => return Ok(()),
            (None, Some(at)) => APP_SETTLE - at.elapsed(),
            (None, None) => APP_START.saturating_sub(begun.elapsed()),
        };
        match news.recv_timeout(wait) {
            Ok(AppNews::Started) => started = Some(Instant::now()),
            Ok(AppNews::Failed(why)) => failed = Some(why),
            Ok(AppNews::Exited(status)) => exited = Some((Instant::now(), status)),
            Ok(AppNews::ReportsEnded) => reports_ended = true,
            Err(RecvTimeoutError::Timeout) if exited.is_some() => break,
            Err(RecvTimeoutError::Timeout) if started.is_some() => return Ok(()),
            // Slow to start: let it come.
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = exited.map(|(_, s)| s).unwrap_or_default();
    Err(anyhow::anyhow!(match (failed, started) {
        (Some(why), _) => format!("{title} did not start: {why}"),
        (None, Some(_)) => format!("{title} exited at once ({status})"),
        (None, None) => format!("the session ended before {title} started ({status})"),
    }))
}

fn run_quiet(argv: &[String], what: &str) -> anyhow::Result<()> {
    let Some((prog, args)) = argv.split_first() else { return Ok(()) };
    let status = std::process::Command::new(prog).args(args).status().map_err(|e| anyhow::anyhow!("{what} command {prog}: {e}"))?;
    anyhow::ensure!(status.success(), "{what} command {argv:?} failed: {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The app's fate is told whatever order the process's exit and its last reports
    /// arrive in (two threads send them).
    #[test]
    fn sessions_share_the_cores_evenly() {
        // Alone, a session's encoder takes all but one core (at most 8).
        assert_eq!(encoder_threads(2, 1), 1);
        assert_eq!(encoder_threads(8, 1), 7);
        assert_eq!(encoder_threads(32, 1), 8);
        // Beside others, an equal share, never none.
        assert_eq!(encoder_threads(16, 3), 5);
        assert_eq!(encoder_threads(8, 4), 1);
        assert_eq!(encoder_threads(4, 6), 1);
        assert_eq!(encoder_threads(1, 1), 1);
    }

    #[test]
    fn a_failed_app_is_told_in_any_order() {
        let verdict = |news: Vec<AppNews>| {
            let (tx, rx) = std::sync::mpsc::channel();
            for n in news {
                tx.send(n).unwrap();
            }
            wait_for_app(&rx, "Game").map_err(|e| e.to_string())
        };
        let failed = || AppNews::Failed("cannot start game: No such file".into());
        let exited = || AppNews::Exited("exit status: 127".into());
        let want = Err("Game did not start: cannot start game: No such file".to_owned());
        assert_eq!(verdict(vec![exited(), failed(), AppNews::ReportsEnded]), want);
        assert_eq!(verdict(vec![failed(), AppNews::ReportsEnded, exited()]), want);
        assert_eq!(
            verdict(vec![AppNews::Started, AppNews::ReportsEnded, AppNews::Exited("exit status: 1".into())]),
            Err("Game exited at once (exit status: 1)".to_owned())
        );
        assert_eq!(
            verdict(vec![exited(), AppNews::ReportsEnded]),
            Err("the session ended before Game started (exit status: 127)".to_owned())
        );
        let (tx, rx) = std::sync::mpsc::channel();
        tx.send(AppNews::Started).unwrap();
        assert!(wait_for_app(&rx, "Game").is_ok(), "started and still running after the settle time");
    }

    /// A compositor that stops reading costs the daemon one timed-out write, not a hang:
    /// further commands are dropped at once.
    #[test]
    fn a_compositor_that_stops_reading_does_not_stall_the_daemon() {
        let (ours, _theirs) = UnixStream::pair().unwrap(); // never read
        ours.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
        let launch = Launch::new(1, Mode::at_fps(640, 480, 60).unwrap(), [0; 16], 0, IpAddr::from([127, 0, 0, 1]), String::new());
        let mut stream = Stream {
            id: 1,
            launch,
            input_view: None,
            request: None,
            launched_at: Instant::now(),
            first_frame_at: None,
            native_owner: None,
            video: None,
            encoding: None,
            ports: crate::config::Config::default().session_ports(0),
            rtsp_session: String::new(),
            live: None,
            keyframe_requests: 0,
            frames_invalidated: 0,
            blocks_repaired: 0,
            blocks_lost: 0,
            copied: None,
            received: None,
            commands: Some(ours),
            stalled: false,
            pid: 0,
            reaped: Arc::default(),
            login: None,
            slot: 0,
            news: None,
        };
        let key = Command::Input(punktfunk_core::input::InputEvent::Text("a".into()));
        for _ in 0..100_000 {
            stream.send(&key);
        }
        assert!(stream.stalled, "a socket nobody reads filled up and was given up on");
    }
}
