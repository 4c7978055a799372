//! The daemon's shared state and its start-up: configuration, identity, paired clients, PIN
//! hand-off, the running sessions, and the listeners of the GameStream front end.

use crate::config::Config;
use crate::gamestream::identity::Identity;
use crate::login::LoginDesk;
use crate::pin::{PinDesk, Reporter};
use crate::pipewire::{self, PipeWireServer};
use crate::store::{Clients, Permissions};
use crate::stream::{Engines, MediaSockets, Slot, Streams};
use anyhow::Context;
use parking_lot::Mutex;
use punktfunk_core::gamestream::pairing::Pairing;
use punktfunk_core::ipc::EncoderProbe;
use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Where the daemon keeps its files.
#[derive(Clone, Debug)]
pub struct Paths {
    pub config: PathBuf,
    pub state: PathBuf,
    /// Where login streams' join socket and greetd configs go (reachable by every user): the
    /// system service's runtime directory, or a fresh one in /tmp.
    pub login: Option<PathBuf>,
    /// `serve --system`: every stream starts at the login greeter.
    pub system: bool,
}

impl Paths {
    /// `$XDG_CONFIG_HOME/punktfunk/config.toml` and `$XDG_STATE_HOME/punktfunk/`.
    pub fn from_env() -> anyhow::Result<Self> {
        let home = || std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| anyhow::anyhow!("HOME is not set"));
        let xdg = |var: &str, fallback: &str| -> anyhow::Result<PathBuf> {
            match std::env::var_os(var).filter(|v| !v.is_empty()) {
                Some(v) => Ok(PathBuf::from(v)),
                None => Ok(home()?.join(fallback)),
            }
        };
        Ok(Self {
            config: xdg("XDG_CONFIG_HOME", ".config")?.join("punktfunk/config.toml"),
            state: xdg("XDG_STATE_HOME", ".local/state")?.join("punktfunk"),
            login: None,
            system: false,
        })
    }

    /// The system service's: `/etc/punktfunk/config.toml`, `/var/lib/punktfunk/`,
    /// `/run/punktfunk/`.
    pub fn system() -> Self {
        Self {
            config: "/etc/punktfunk/config.toml".into(),
            state: "/var/lib/punktfunk".into(),
            login: Some("/run/punktfunk".into()),
            system: true,
        }
    }
}

/// A pairing between stages, keyed by the client's address and `uniqueid` (a constant in
/// Moonlight: by itself it would let anyone touch anyone's pairing).
pub struct PendingPairing {
    pub pairing: Pairing,
    pub outcome: Reporter,
    /// The name the client gave (`devicename`), stored with the pairing.
    pub name: String,
    /// Name and address, as the user is told.
    pub device: String,
    pub started: Instant,
}

pub struct Host {
    pub config: Config,
    /// The apps clients may launch: the configuration's and what the scanners find.
    pub catalog: crate::catalog::Catalog,
    pub identity: Identity,
    /// Stable host id: clients key their host list by it.
    pub uniqueid: String,
    pub name: String,
    pub clients: Mutex<Clients>,
    pub pins: PinDesk,
    pub pairings: Mutex<HashMap<(IpAddr, String), PendingPairing>>,
    pub streams: Arc<Streams>,
    /// Offer HEVC: a hardware encoder is there, or `software_hevc` says so.
    pub hevc: bool,
    /// Offer AV1: a hardware encoder opens for it, or `software_av1` says so.
    pub av1: bool,
    /// Offer 4:4:4: every encoder but VAAPI does it, so not when VAAPI is forced (under
    /// `auto`, x264/x265 take over from VAAPI).
    pub yuv444: bool,
    /// The management API's bearer token (`api-token` in the state directory, owner-only):
    /// only users who can read it may enter PINs or remove clients.
    pub api_token: String,
    /// The state directory (certificate, clients, token).
    pub state: PathBuf,
    /// The configuration file (the console edits its apps).
    pub config_path: PathBuf,
    /// The web console's password and logins.
    pub console: crate::console::Console,
    /// The private PipeWire started for the sessions' sound, if the host needed one.
    _pipewire: Option<PipeWireServer>,
}

/// The sessions' sound server: the user's running PipeWire, or (when none answers and the
/// configuration allows) a private one; and what the sessions need in their environment to
/// reach it. Without either, sessions run silent.
fn sound_server(config: &Config, state: &Path) -> (Option<PipeWireServer>, Vec<(&'static str, OsString)>) {
    let runtime = pipewire::runtime_dir();
    if pipewire::reachable(&runtime) {
        tracing::info!(runtime = %runtime.display(), "sessions play into the running PipeWire");
        return (None, Vec::new());
    }
    if !config.start_pipewire {
        tracing::warn!("no PipeWire is running and start_pipewire is off: sessions have no sound");
        return (None, Vec::new());
    }
    match PipeWireServer::start(&runtime, Some(state)) {
        Ok(s) => {
            let env = s.env().to_vec();
            (Some(s), env)
        }
        Err(e) => {
            tracing::warn!("no PipeWire for the sessions' sound ({e}); install pipewire, pipewire-pulse and wireplumber");
            (None, Vec::new())
        }
    }
}

/// The sockets bound before the daemon drops into its loops.
pub struct Sockets {
    pub http: tokio::net::TcpListener,
    pub https: tokio::net::TcpListener,
    pub rtsp: tokio::net::TcpListener,
    pub api: tokio::net::TcpListener,
    pub control: UdpSocket,
    /// punktfunk/1's QUIC control port.
    pub native: UdpSocket,
    /// The web console's, unless it is off.
    pub console: Option<tokio::net::TcpListener>,
}

impl Host {
    /// Loads (or creates) configuration, identity and stores, and binds every port, so a
    /// second daemon fails here with a clear "address in use".
    pub async fn open(paths: &Paths) -> anyhow::Result<(Arc<Self>, Sockets)> {
        let config = Config::load_or_create(&paths.config)?;
        crate::store::private_dir(&paths.state)?;
        crate::store::sweep_temp_files(&paths.state, None);
        if let Some(dir) = paths.config.parent() {
            crate::store::sweep_temp_files(dir, None);
        }
        let identity = Identity::load_or_create(&paths.state)?;
        let uniqueid = load_or_create_id(&paths.state.join("uniqueid"))?;
        let clients = Clients::load(paths.state.join("clients.json"))?;
        let name = if config.name.is_empty() { hostname() } else { config.name.clone() };
        let any = Ipv4Addr::UNSPECIFIED;
        let tcp = |port: u16| async move {
            tokio::net::TcpListener::bind((any, port)).await.map_err(|e| anyhow::anyhow!("TCP port {port}: {e}"))
        };
        let udp = |port: u16| UdpSocket::bind((any, port)).map_err(|e| anyhow::anyhow!("UDP port {port}: {e}"));
        let sockets = Sockets {
            http: tcp(config.port).await?,
            https: tcp(config.https_port()).await?,
            rtsp: tcp(config.rtsp_port()).await?,
            api: tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.api_port))
                .await
                .map_err(|e| anyhow::anyhow!("API port {}: {e}", config.api_port))?,
            control: udp(config.control_port())?,
            native: udp(config.native_port)?,
            console: match (config.console_port, config.console_access) {
                (0, _) => None,
                // Only this machine may come: nothing else need reach the port.
                (port, crate::console::ConsoleAccess::Loopback) => Some(
                    tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                        .await
                        .map_err(|e| anyhow::anyhow!("console port {port}: {e}"))?,
                ),
                // IPv6 and IPv4 (mapped) on one socket where the machine has IPv6.
                (port, _) => match tokio::net::TcpListener::bind((std::net::Ipv6Addr::UNSPECIFIED, port)).await {
                    Ok(listener) => Some(listener),
                    Err(_) => Some(tcp(port).await?),
                },
            },
        };
        let compositor = stream_binary_path(&config.stream_binary)?;
        let gpu = config.gpu()?;
        let probe = probe_encoders(&compositor, &config.encoder, gpu.as_deref()).await?;
        let limit = config.session_limit(probe.hardware);
        let mut slots = Vec::with_capacity(limit);
        for slot in 0..limit as u16 {
            let ports = config.session_ports(slot);
            let sockets = MediaSockets { video: udp(ports.video)?, native: udp(ports.native)?, audio: udp(ports.audio)? };
            slots.push(Slot::new(sockets, ports));
        }
        tracing::info!(sessions = limit, "sessions at once: up to {limit} (max_sessions)");
        let hevc = config.software_hevc || probe.hardware;
        let av1 = config.software_av1 || probe.hardware_av1;
        let yuv444 = probe.yuv444;
        let (pipewire, mut session_env) = sound_server(&config, &paths.state);
        // Apps are found where the user's own terminal finds them.
        session_env.extend(crate::login_path::of_this_user().map(|path| ("PATH", path)));
        anyhow::ensure!(
            matches!(config.renderer.as_str(), "auto" | "pixman" | "gles"),
            "renderer: {:?} is not auto, pixman or gles",
            config.renderer
        );
        anyhow::ensure!(matches!(config.convert.as_str(), "auto" | "gpu" | "cpu"), "convert: {:?} is not auto, gpu or cpu", config.convert);
        let engines = Engines {
            min_fps: config.min_fps,
            encoder: config.encoder.clone(),
            renderer: config.renderer.clone(),
            convert: config.convert.clone(),
            gpu,
        };
        let login = match config.login || paths.system {
            true => Some(LoginDesk::open(paths.login.clone(), &config, compositor.clone(), &name)?),
            false => None,
        };
        let streams = Arc::new(Streams::new(compositor, engines, slots, session_env, login).isolating_pads(config.gamepad_isolation));
        streams.serve_logins()?;
        let host = Self {
            catalog: crate::catalog::Catalog::new(&config),
            config,
            identity,
            uniqueid,
            name,
            clients: Mutex::new(clients),
            pins: PinDesk::default(),
            pairings: Mutex::new(HashMap::new()),
            streams,
            hevc,
            av1,
            yuv444,
            api_token: load_or_create_token(&paths.state.join(API_TOKEN_FILE))?,
            console: crate::console::Console::new(&paths.state),
            state: paths.state.clone(),
            config_path: paths.config.clone(),
            _pipewire: pipewire,
        };
        Ok((Arc::new(host), sockets))
    }

    pub fn is_paired(&self, fingerprint: Option<&str>) -> bool {
        fingerprint.is_some_and(|f| self.clients.lock().is_paired(f))
    }

    /// What the paired client `fingerprint` may do; nothing when it is not paired.
    pub fn permissions(&self, fingerprint: &str) -> Permissions {
        self.clients.lock().permissions(fingerprint).unwrap_or(Permissions {
            apps: Some(Vec::new()),
            view_only: true,
            others: false,
            clipboard: false,
        })
    }
}

pub const API_TOKEN_FILE: &str = "api-token";

/// The API token; a new one when the file is missing, short, or not private (another user
/// may have read it).
fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().len() >= 32 && crate::store::is_private(path) => Ok(t.trim().to_owned()),
        read => {
            if read.is_ok() {
                tracing::warn!("{}: readable by others or too short; made a new API token", path.display());
            }
            let token = hex::encode(rand::random::<[u8; 32]>());
            crate::store::write_private(path, token.as_bytes())?;
            Ok(token)
        }
    }
}

fn load_or_create_id(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        _ => {
            let b: [u8; 16] = rand::random();
            let h = hex::encode(b).to_uppercase();
            let id = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
            crate::store::write_atomic(path, id.as_bytes())?;
            Ok(id)
        }
    }
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "punktfunk".into())
}

/// Asks the stream binary what its encoders can do here (`--probe`, with the configured
/// encoder choice and GPU): the daemon opens no encoder itself.
async fn probe_encoders(binary: &Path, encoder: &str, gpu: Option<&Path>) -> anyhow::Result<EncoderProbe> {
    let mut probe = tokio::process::Command::new(binary);
    probe.args(["--probe", "--encoder", encoder]);
    if let Some(gpu) = gpu {
        probe.arg("--gpu").arg(gpu);
    }
    let out =
        probe.stderr(std::process::Stdio::inherit()).output().await.with_context(|| format!("running {} --probe", binary.display()))?;
    anyhow::ensure!(out.status.success(), "{} --probe failed for encoder = {encoder:?} (see above)", binary.display());
    serde_json::from_slice(&out.stdout).context("reading the stream binary's probe")
}

/// The per-stream binary: configured, else next to this one.
fn stream_binary_path(configured: &str) -> anyhow::Result<PathBuf> {
    if !configured.is_empty() {
        return Ok(PathBuf::from(configured));
    }
    let exe = std::env::current_exe()?;
    let sibling = exe.with_file_name("punktfunk-stream");
    anyhow::ensure!(sibling.exists(), "punktfunk-stream not found next to {} (set `stream_binary` in the config)", exe.display());
    Ok(sibling)
}
