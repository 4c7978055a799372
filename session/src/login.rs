//! Remote login (ARCHITECTURE.md §5): a stream that starts at a login greeter. Per stream
//! the daemon runs its own greetd (`vt = "none"`, its own config) whose greeter is our
//! stream binary joining the stream with the greeter inside; after a login, greetd starts
//! the stream binary again as the user, with the app. Both join through the daemon's join
//! socket: a ticket names the stream, the peer's uid (`SO_PEERCRED`) must be the greeter's
//! or, after a login, any other user's. The daemon hands each joiner the stream's media
//! sockets and goes on with the stream where the last process left it: the client stays
//! connected across the login and every logout.

use crate::pipewire::PipeWireServer;
use punktfunk_core::gamestream::audio::AudioPosition;
use punktfunk_core::stream::{AudioParams, NativeResume, NativeVideoParams, VideoParams, VideoResume};
use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Who feeds a login stream now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// greetd is starting, or a process ended and greetd starts the next.
    Between,
    /// The greeter asks for a login.
    Greeter,
    /// `name`'s session runs the app.
    User { name: String, uid: u32 },
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Between => f.write_str("between processes"),
            Self::Greeter => f.write_str("login greeter"),
            Self::User { name, .. } => write!(f, "{name}'s session"),
        }
    }
}

/// What a login stream carries across its processes.
pub struct LoginStream {
    pub stage: Stage,
    /// Processes that joined so far; the one now feeding it, if any, is the last.
    pub joins: u32,
    /// The video as the client started it (bitrate changes included), for the next process.
    pub video: Option<VideoParams>,
    /// Where the last process's video stood, and whether that was its exact end.
    pub position: Option<(VideoResume, bool)>,
    /// The audio as the client started it, and where the last process's stopped.
    pub audio: Option<AudioParams>,
    pub audio_position: Option<AudioPosition>,
    /// Or the punktfunk/1 stream as its client started it, and where the last process's
    /// stood (a stream carries one protocol at a time).
    pub native: Option<NativeVideoParams>,
    pub native_position: Option<(NativeResume, bool)>,
    /// The PipeWire started for the user of the session now joined (none of their own).
    pub pipewire: Option<PipeWireServer>,
    /// The app a login starts.
    pub app: crate::config::App,
    /// greetd's config for this stream (removed with it).
    config: PathBuf,
}

impl LoginStream {
    /// A stream whose greetd (its config at `config`) is starting, to run `app` after a login.
    fn new(app: crate::config::App, config: PathBuf) -> Self {
        Self {
            stage: Stage::Between,
            joins: 0,
            video: None,
            position: None,
            audio: None,
            audio_position: None,
            native: None,
            native_position: None,
            pipewire: None,
            app,
            config,
        }
    }

    /// The audio parameters as they go to the process now feeding the stream: where the
    /// last one's stopped (its sequence numbers make the IVs).
    pub fn audio_for_next(&self) -> Option<AudioParams> {
        Some(AudioParams { resume: self.audio_position, ..self.audio.clone()? })
    }

    /// The video parameters for the process now joining: where the last one stopped.
    pub fn video_for_next(&self) -> Option<VideoParams> {
        let mut params = self.video.clone()?;
        params.resume = Some(VideoResume::for_process(self.position, self.joins, params.refresh_mhz));
        Some(params)
    }

    /// Keeps a punktfunk/1 start (`params`) for the processes of the stream, and returns
    /// its parameters for the process now feeding it: the same keys, where the last process
    /// stood, its own range of sequence numbers. A new start (new keys) begins afresh.
    pub fn start_native(&mut self, mut params: NativeVideoParams) -> NativeVideoParams {
        if self.native.as_ref().is_none_or(|n| n.token != params.token) {
            self.native_position = None;
        }
        params.resume = None;
        self.native = Some(params.clone());
        let resume = NativeResume::for_process(self.native_position, self.joins, params.refresh_mhz);
        // Until this process reports, it counts as one that died at once.
        self.native_position = Some((resume, false));
        NativeVideoParams { resume: Some(resume), ..params }
    }

    /// A process reported where start `token`'s stream stands (`stopped`: exactly, at its
    /// end); a report of a start since replaced moves nothing.
    pub fn native_reported(&mut self, token: u64, position: NativeResume, stopped: bool) {
        if self.native.as_ref().is_some_and(|n| n.token == token) {
            self.native_position = Some((position, stopped));
        }
    }
}

impl Drop for LoginStream {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A joiner let in: the stream, as whom, its runtime directory, and the ticket it came with.
pub struct Admission {
    pub stream: u64,
    pub stage: Stage,
    pub runtime_dir: Option<PathBuf>,
    ticket: String,
}

/// The first line `conn` sends, up to a small bound, all of it within `limit` (a joiner that
/// trickles bytes holds its place no longer than that).
fn read_line(conn: &UnixStream, limit: Duration) -> anyhow::Result<Vec<u8>> {
    const MAX: usize = 1024;
    let deadline = std::time::Instant::now() + limit;
    let (mut line, mut byte) = (Vec::new(), [0u8; 1]);
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero());
        conn.set_read_timeout(Some(left.ok_or_else(|| anyhow::anyhow!("named no stream in time"))?))?;
        match std::io::Read::read(&mut &*conn, &mut byte)? {
            0 => anyhow::bail!("closed before naming a stream"),
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
        anyhow::ensure!(line.len() <= MAX, "a join line longer than {MAX} bytes");
    }
    conn.set_read_timeout(None)?;
    Ok(line)
}

/// Who a ticket admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admits {
    /// The greeter's process (greetd's greeter user), each time greetd starts it.
    Greeter,
    /// One process of any other user: the session a login started.
    User,
}

/// The join socket, greetd's configs and the tickets that name streams.
pub struct LoginDesk {
    dir: PathBuf,
    socket: PathBuf,
    greetd: PathBuf,
    greeter_uid: u32,
    greeter_user: String,
    /// `punktfunk-stream` and `punktfunk-greeter`.
    stream_binary: PathBuf,
    greeter_binary: PathBuf,
    title: String,
    /// Start a PipeWire for a session's user who has none.
    start_pipewire: bool,
    tickets: parking_lot::Mutex<HashMap<String, (u64, Admits)>>,
}

/// The environment variable a session's join ticket travels in.
const JOIN_TICKET: &str = "PUNKTFUNK_JOIN_TICKET";

/// How long a joiner may take to name its stream (a line of about 50 bytes).
const JOIN_READ: Duration = Duration::from_secs(1);

impl LoginDesk {
    /// Prepares the login directory (readable by the greeter and the users: the join socket
    /// is in it): `dir`, which must be root's (the system service's /run/punktfunk), or a
    /// fresh one in /tmp no one else can have made first. Checks that greetd and the greeter
    /// user exist.
    pub fn open(dir: Option<PathBuf>, config: &crate::config::Config, stream_binary: PathBuf, host_name: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(nix::unistd::geteuid().is_root(), "login = true needs the daemon to run as root (punktfunk serve --system)");
        let (greetd, greeter_user) = (config.greetd.as_str(), config.greeter_user.as_str());
        let greetd = which(greetd).ok_or_else(|| anyhow::anyhow!("greetd ({greetd}) is not installed: login needs it"))?;
        let user = nix::unistd::User::from_name(greeter_user)?
            .ok_or_else(|| anyhow::anyhow!("the greeter user {greeter_user:?} does not exist (greeter_user)"))?;
        let greeter_binary = stream_binary.with_file_name("punktfunk-greeter");
        anyhow::ensure!(greeter_binary.exists(), "{} is missing: login needs it", greeter_binary.display());
        let dir = match dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                let meta = std::fs::symlink_metadata(&dir)?;
                anyhow::ensure!(meta.is_dir() && meta.uid() == 0, "{} is not a directory of root's", dir.display());
                dir
            }
            None => nix::unistd::mkdtemp(&std::env::temp_dir().join("punktfunk-login-XXXXXX"))?,
        };
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        tracing::info!(dir = %dir.display(), "remote login: streams start at the greeter; join socket and greetd configs here");
        Ok(Self {
            socket: dir.join("join.sock"),
            dir,
            greetd,
            greeter_uid: user.uid.as_raw(),
            greeter_user: greeter_user.to_owned(),
            stream_binary,
            greeter_binary,
            title: format!("Log in to {host_name}"),
            start_pipewire: config.start_pipewire,
            tickets: parking_lot::Mutex::default(),
        })
    }

    /// The join socket, listening; anyone local may connect (tickets and uids decide).
    pub fn listen(&self) -> anyhow::Result<UnixListener> {
        let _ = std::fs::remove_file(&self.socket);
        let listener = UnixListener::bind(&self.socket)?;
        std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666))?;
        Ok(listener)
    }

    fn ticket(&self, stream: u64, admits: Admits) -> String {
        let ticket = hex::encode(rand::random::<[u8; 16]>());
        self.tickets.lock().insert(ticket.clone(), (stream, admits));
        ticket
    }

    /// Forgets every ticket of `stream` (it ended).
    pub fn forget(&self, stream: u64) {
        self.tickets.lock().retain(|_, (s, _)| *s != stream);
    }

    /// Starts stream `id`'s greetd, its greeter joining with a ticket of its own.
    /// Its greetd, and so the greeter and the user's session, run in `view`.
    pub fn spawn_greetd(
        &self,
        id: u64,
        app: &crate::config::App,
        view: Option<&crate::input_view::InputView>,
    ) -> anyhow::Result<(std::process::Child, LoginStream)> {
        let ticket = self.ticket(id, Admits::Greeter);
        let command = shell_words(&[
            self.stream_binary.to_string_lossy().as_ref(),
            "--join",
            self.socket.to_string_lossy().as_ref(),
            "--ticket",
            &ticket,
        ]);
        let toml = format!(
            "[terminal]\nvt = \"none\"\n\n[default_session]\ncommand = {}\nuser = {}\n",
            toml_string(&command),
            toml_string(&self.greeter_user)
        );
        let config = self.dir.join(format!("greetd-{id}.toml"));
        // A file of our own, never one put there first (or a link): root writes it.
        let _ = std::fs::remove_file(&config);
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(nix::libc::O_NOFOLLOW).open(&config)?;
        std::io::Write::write_all(&mut file, toml.as_bytes())?;
        let mut cmd = std::process::Command::new(&self.greetd);
        std::os::unix::process::CommandExt::process_group(cmd.arg("--config").arg(&config), 0);
        if let Some(view) = view {
            view.enter(&mut cmd);
        }
        let child = cmd.spawn().map_err(|e| anyhow::anyhow!("starting {}: {e}", self.greetd.display()))?;
        Ok((child, LoginStream::new(app.clone(), config)))
    }

    /// Reads a joiner's ticket (the whole line within `JOIN_READ`) and checks its uid: the
    /// stream it may join, as whom. A session's ticket is spent only once the join succeeds
    /// ([`LoginDesk::spend`]).
    pub fn admit(&self, conn: &UnixStream) -> anyhow::Result<Admission> {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        let uid = getsockopt(&conn.as_fd(), PeerCredentials)?.uid();
        let join: punktfunk_core::ipc::Join = serde_json::from_slice(&read_line(conn, JOIN_READ)?)?;
        let tickets = self.tickets.lock();
        let &(stream, admits) = tickets.get(&join.ticket).ok_or_else(|| anyhow::anyhow!("unknown ticket (uid {uid})"))?;
        match admits {
            Admits::Greeter => {
                anyhow::ensure!(uid == self.greeter_uid, "a greeter ticket from uid {uid}, not {}", self.greeter_user);
                Ok(Admission { stream, stage: Stage::Greeter, runtime_dir: join.runtime_dir, ticket: join.ticket })
            }
            Admits::User => {
                anyhow::ensure!(uid != self.greeter_uid, "a session ticket from the greeter user");
                let name = nix::unistd::User::from_uid(uid.into())?.map_or_else(|| uid.to_string(), |u| u.name);
                Ok(Admission { stream, stage: Stage::User { name, uid }, runtime_dir: join.runtime_dir, ticket: join.ticket })
            }
        }
    }

    /// A session user's sound: the PipeWire in their runtime directory, or (with none and
    /// `start_pipewire`) one started for them, and what their session's environment needs to
    /// reach it. The directory the joiner named counts only if it is theirs alone (a
    /// directory, not a link, owned by them, 0700): everything there runs as them.
    pub fn user_sound(&self, admission: &Admission) -> (Option<PipeWireServer>, Vec<(String, String)>) {
        let Stage::User { uid, .. } = admission.stage else { return (None, Vec::new()) };
        let theirs = |d: &&PathBuf| {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
        };
        let runtime = admission.runtime_dir.as_ref().filter(theirs);
        if runtime.is_some_and(|d| crate::pipewire::reachable(d)) || !self.start_pipewire {
            return (None, Vec::new());
        }
        let gid = nix::unistd::User::from_uid(uid.into()).ok().flatten().map_or(uid, |u| u.gid.as_raw());
        match PipeWireServer::start_as(runtime.map(PathBuf::as_path), (uid, gid)) {
            Ok(server) => {
                let env = server.env().iter().filter(|(k, _)| matches!(*k, "XDG_RUNTIME_DIR" | "DBUS_SESSION_BUS_ADDRESS"));
                let env = env.map(|(k, v)| ((*k).to_owned(), v.to_string_lossy().into_owned())).collect();
                (Some(server), env)
            }
            Err(e) => {
                tracing::warn!(uid, "no PipeWire for the session's sound: {e}");
                (None, Vec::new())
            }
        }
    }

    /// The join `admission` came through: a session's ticket is used up.
    pub fn spend(&self, admission: &Admission) {
        if matches!(admission.stage, Stage::User { .. }) {
            self.tickets.lock().remove(&admission.ticket);
        }
    }

    /// What a process joining as `stage` runs: the greeter, with a fresh one-time ticket for
    /// the session it starts; or the app.
    pub fn command(&self, stream: u64, stage: &Stage, app: &crate::config::App) -> (Vec<String>, Vec<(String, String)>) {
        match stage {
            Stage::Greeter => {
                // The session tickets of earlier greeters of this stream are void.
                self.tickets.lock().retain(|_, &mut (s, admits)| s != stream || admits != Admits::User);
                let ticket = self.ticket(stream, Admits::User);
                // The ticket goes through environments (readable by their owner and root), never
                // a command line any local user could read in /proc.
                let argv = [
                    self.greeter_binary.to_string_lossy().into_owned(),
                    "--title".into(),
                    self.title.clone(),
                    "--pass-env".into(),
                    JOIN_TICKET.into(),
                    "--".into(),
                    self.stream_binary.to_string_lossy().into_owned(),
                    "--join".into(),
                    self.socket.to_string_lossy().into_owned(),
                ];
                (argv.into(), vec![(JOIN_TICKET.into(), ticket)])
            }
            _ => (app.command.clone(), app.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        }
    }
}

impl Drop for LoginDesk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Sends `line` with the media sockets attached (`SCM_RIGHTS`).
pub fn send_with_sockets(conn: &UnixStream, line: &[u8], sockets: &[&std::net::UdpSocket]) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds: Vec<i32> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(conn.as_raw_fd(), &[IoSlice::new(line)], &cmsg, MsgFlags::empty(), None)?;
    // The descriptors went with the first bytes; the rest of a short write follows plainly.
    std::io::Write::write_all(&mut &*conn, &line[sent..])
}

/// `program` as given when it is a path, else found on `PATH` or in `/usr/sbin` (greetd's
/// place on Debian, not on a user's `PATH`).
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).exists().then(|| program.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into()]).map(|d| d.join(program)).find(|p| p.exists())
}

/// Arguments joined for `sh -c` (greetd runs its commands so), each single-quoted.
fn shell_words(argv: &[&str]) -> String {
    argv.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" ")
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_survive_the_shell_and_toml() {
        let words = shell_words(&["/opt/my games/punktfunk-stream", "--ticket", "it's"]);
        let out = std::process::Command::new("sh").arg("-c").arg(format!("printf '%s\\n' {words}")).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "/opt/my games/punktfunk-stream\n--ticket\nit's\n");
        let value: toml::Value = toml::from_str(&format!("c = {}", toml_string("a \"b\" \\ c"))).unwrap();
        assert_eq!(value["c"].as_str(), Some("a \"b\" \\ c"));
    }
    /// A login stream with one process joined.
    fn stream() -> LoginStream {
        let mut stream = LoginStream::new(crate::config::App::default(), PathBuf::from("/nonexistent/punktfunk-test-greetd.toml"));
        (stream.stage, stream.joins) = (Stage::Greeter, 1);
        stream
    }

    fn start(token: u64) -> NativeVideoParams {
        NativeVideoParams {
            codec: punktfunk_core::stream::Codec::H264,
            format: Default::default(),
            bitrate_bps: 1,
            refresh_mhz: 60_000,
            shard_len: 1400,
            fec_percent: 20,
            fec_max_percent: 0,
            max_frame_len: 1 << 20,
            key: [token as u8; 16],
            mic_key: [1; 16],
            token,
            encoder: "software".into(),
            pacing: Default::default(),
            resume: None,
            invalidation: false,
        }
    }

    /// The same start goes on in the next process; a new start (a reconnect, new keys) begins
    /// afresh; a process that never reported counts as one that died; a report of a replaced
    /// start moves nothing.
    #[test]
    fn punktfunk1_starts_go_on_across_processes_and_new_ones_begin_afresh() {
        let mut login = stream();
        let first = login.start_native(start(7)).resume.unwrap();
        assert_eq!((first.next_frame, first.seq, first.hello_seen), (0, 1 << 48, None));
        let stood = NativeResume { next_frame: 500, seq: 0, hello_seen: Some(40), mic_seen: Some(9000) };
        login.native_reported(7, stood, true);
        login.joins = 2;
        let next = login.start_native(login.native.clone().unwrap()).resume.unwrap();
        assert_eq!(next, NativeResume { seq: 2 << 48, ..stood }, "the next process goes on exactly");
        // That process dies before its first report: the one after jumps past it.
        login.joins = 3;
        let after_death = login.start_native(login.native.clone().unwrap()).resume.unwrap();
        assert!(after_death.next_frame > 500 + 100 && after_death.hello_seen > Some(40), "{after_death:?}");
        // The client reconnects: new keys, a fresh stream (its hellos count from 0 again).
        let fresh = login.start_native(start(8)).resume.unwrap();
        assert_eq!((fresh.next_frame, fresh.seq, fresh.hello_seen, fresh.mic_seen), (0, 3 << 48, None, None));
        // The replaced start's last report comes late: it moves nothing.
        login.native_reported(7, stood, true);
        login.joins = 4;
        assert_eq!(login.start_native(login.native.clone().unwrap()).resume.unwrap().hello_seen, None);
    }
}
