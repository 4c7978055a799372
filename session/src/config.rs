//! The host's configuration: one TOML file, written with documented defaults on first start.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name shown to clients; the machine's host name when empty.
    pub name: String,
    /// GameStream base port P: HTTP P, HTTPS P−5, RTSP P+21, video P+9, control P+10,
    /// audio P+11 (Sunshine's layout; Moonlight finds the others from P).
    pub port: u16,
    /// Management API (pairing PINs, clients), on loopback only.
    pub api_port: u16,
    /// The web console (HTTPS, TCP); 0: no console.
    pub console_port: u16,
    /// Who may reach the console: `lan` (this machine and private addresses), `loopback` or
    /// `any`.
    pub console_access: crate::console::ConsoleAccess,
    /// Show a device waiting for its PIN as a notification on the host's desktop (where one
    /// runs), with an action that opens the console.
    pub notify_pairing: bool,
    /// punktfunk/1: QUIC control on this UDP port, the data plane on the next.
    pub native_port: u16,
    /// How many sessions may stream at once (each client its own); 0: as many as the
    /// machine can encode (see `Config::session_limit`).
    pub max_sessions: u32,
    /// Pair a punktfunk/1 client without a PIN the first time it connects. Anyone on the
    /// network can then stream: only for networks where everyone is trusted.
    pub native_trust_on_first_use: bool,
    /// `auto`, `software`, `nvenc` or `vaapi`.
    pub encoder: String,
    /// Offer HEVC (and 10-bit HEVC Main10) to Moonlight clients without a GPU encoder too:
    /// libx265 takes several times x264's CPU, so only for small modes or strong CPUs.
    pub software_hevc: bool,
    /// Offer AV1 without a GPU encoder (libaom's real-time mode): 720p-class modes on a
    /// desktop CPU. Moonlight prefers AV1 where it decodes it, so this is a choice to make.
    pub software_av1: bool,
    /// What composites the sessions: `auto` (GLES on a GPU, pixman otherwise), `pixman` or
    /// `gles`.
    pub renderer: String,
    /// Where frames become the encoder's YUV: `auto` (on the GPU when GLES renders on one),
    /// `gpu` or `cpu`.
    pub convert: String,
    /// The GPU the sessions render on (and VAAPI encodes on), as a DRM node; empty: the
    /// first one found.
    pub gpu: String,
    /// Video FEC parity, percent of data shards per block: what a stream starts with.
    pub fec_percent: u8,
    /// The most parity a stream's parity may rise to as its client reports loss (it falls
    /// back to `fec_percent` on a clean link; the encoder's bitrate makes room for it). At
    /// or below `fec_percent` the parity stays fixed.
    pub fec_max_percent: u8,
    /// While a client watches a still picture, send it again this many times a second (0:
    /// only when it changes). A client that lost the last frame then sees the gap and asks
    /// for a key frame instead of showing a stale picture until something moves.
    pub min_fps: u32,
    /// How a frame's datagrams leave: `auto` (at once on a clean link, paced once the client
    /// reports loss), `wired` (a frame's first 64 datagrams at once) or `wifi` (every frame
    /// paced over up to half a frame interval).
    pub pacing: punktfunk_core::stream::Pacing,
    /// Which pad a client's controller becomes: `auto` (the kind the client holds:
    /// PlayStation pads as a DualSense, Nintendo pads as a Switch Pro Controller, others as
    /// an Xbox pad), `xbox`, `switch`, `dualsense` or `dualshock4` (for games that know the
    /// PS4 pad and not the PS5's).
    pub gamepad: crate::gamepad::layout::GamepadChoice,
    /// Each session's apps see only its own pads (a view of /dev/input of their own; when
    /// the host is not root, in a user namespace, where setuid programs such as sudo do not
    /// work); false: every pad.
    pub gamepad_isolation: bool,
    /// Bitrate cap whatever the client asks, in kbit/s.
    pub max_bitrate_kbps: u32,
    /// Announce the host on the local network (mDNS `_nvstream._tcp`).
    pub mdns: bool,
    /// Path of the per-stream binary (`punktfunk-stream`: compositor and pipeline); next to
    /// this binary when empty. `compositor`, its name before, is still read.
    #[serde(alias = "compositor")]
    pub stream_binary: String,
    /// Start a private PipeWire for the sessions' sound when none is running (a headless
    /// server, a system service).
    pub start_pipewire: bool,
    /// Every stream starts at a login greeter (greetd, one per stream): the app runs as the
    /// user who logs in, in the same stream. Needs root (`punktfunk serve --system` turns
    /// it on).
    pub login: bool,
    /// The user greetd runs the greeter as.
    pub greeter_user: String,
    /// greetd's binary (found on PATH or in /usr/sbin).
    pub greetd: String,
    /// Add the games installed in Steam's libraries to the app catalog.
    pub scan_steam: bool,
    /// Add the games installed through Lutris to the app catalog.
    pub scan_lutris: bool,
    /// Add the games installed through Heroic (Epic, GOG, added by hand) to the app catalog.
    pub scan_heroic: bool,
    /// Add the desktop entries in the `Game` category to the app catalog.
    pub scan_desktop_entries: bool,
    /// The "Desktop" entry: the default session.
    pub desktop: App,
    /// Further apps, each launched into a fresh headless session.
    pub apps: Vec<App>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct App {
    pub title: String,
    /// Program and arguments, run inside the session (WAYLAND_DISPLAY and DISPLAY set).
    pub command: Vec<String>,
    pub working_dir: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// Run before the app starts; each `undo` runs after the session ends.
    pub prep: Vec<PrepCommand>,
    /// Box art (PNG or JPEG) shown by clients.
    pub image: Option<PathBuf>,
    /// Stream a new output of the running desktop instead of a fresh session (attach
    /// mode): `auto` (found from the environment), `sway`, `gnome` or `kde`; `command` is
    /// not run. `env` names the desktop where the host's own environment does not
    /// (`SWAYSOCK`, `WAYLAND_DISPLAY`; GNOME's `DBUS_SESSION_BUS_ADDRESS`, `XDG_RUNTIME_DIR`;
    /// KDE's `WAYLAND_DISPLAY`, `XDG_RUNTIME_DIR`).
    pub attach: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepCommand {
    #[serde(rename = "do")]
    pub run: Vec<String>,
    pub undo: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: String::new(),
            port: 47989,
            api_port: 47990,
            console_port: 47991,
            console_access: crate::console::ConsoleAccess::Lan,
            notify_pairing: true,
            native_port: 48100,
            max_sessions: 0,
            native_trust_on_first_use: false,
            encoder: "auto".into(),
            software_hevc: false,
            software_av1: false,
            renderer: "auto".into(),
            convert: "auto".into(),
            gpu: String::new(),
            fec_percent: 20,
            fec_max_percent: 80,
            min_fps: 10,
            pacing: punktfunk_core::stream::Pacing::Auto,
            gamepad: crate::gamepad::layout::GamepadChoice::Auto,
            gamepad_isolation: true,
            max_bitrate_kbps: 150_000,
            mdns: true,
            stream_binary: String::new(),
            start_pipewire: true,
            login: false,
            greeter_user: "_greetd".into(),
            greetd: "greetd".into(),
            scan_steam: true,
            scan_lutris: true,
            scan_heroic: true,
            scan_desktop_entries: true,
            desktop: App { title: "Desktop".into(), command: vec!["foot".into()], ..App::default() },
            apps: Vec::new(),
        }
    }
}

const HEADER: &str = "# punktfunk host configuration. Every key is optional; the defaults are shown.
#
# name = \"\"              # shown to clients; the host name when empty
# port = 47989            # GameStream base port (HTTPS port-5, RTSP port+21, UDP port+9..+11)
# api_port = 47990        # management API on 127.0.0.1 (punktfunk pair, punktfunk clients)
# console_port = 47991    # the web console: https://THIS-HOST:47991 (0: none)
# console_access = \"lan\" # who may reach the console: lan (private addresses) | loopback | any
# notify_pairing = true   # a device waiting for its PIN shows as a notification on this desktop
# native_port = 48100     # punktfunk/1 clients: QUIC control (UDP), data plane on native_port+1
# max_sessions = 0        # sessions streaming at once, one per client; 0: 4 with a GPU encoder, else a core each
# native_trust_on_first_use = false  # pair punktfunk/1 clients without a PIN (trusted networks only)
# encoder = \"auto\"       # auto | software | nvenc | vaapi
# software_hevc = false   # offer HEVC and HEVC Main10 (10-bit) without a GPU encoder (libx265)
# software_av1 = false    # offer AV1 (8 and 10-bit) without a GPU encoder (libaom, real-time mode)
# renderer = \"auto\"      # auto (GLES on a GPU, else pixman) | pixman | gles
# convert = \"auto\"       # colour conversion: auto (on the GPU when GLES renders on one) | gpu | cpu
# gpu = \"\"               # the GPU to render on (VAAPI encodes there too), e.g. \"/dev/dri/renderD129\"; the first one when empty
# fec_percent = 20        # video FEC parity in percent, to start with
# fec_max_percent = 80    # parity follows the loss Moonlight clients report, up to this (≤ fec_percent: fixed)
# min_fps = 10            # a still picture is sent again this often (0: only when it changes)
# pacing = \"auto\"        # auto (bursts until the client reports loss, then paced) | wired | wifi
# gamepad = \"auto\"       # controllers become: auto (DualSense, Switch Pro or Xbox as the client's is) | xbox | switch | dualsense | dualshock4
# gamepad_isolation = true # a session's apps see only its pads (a user namespace: no sudo in sessions; false: every pad)
# max_bitrate_kbps = 150000
# mdns = true             # announce the host to Moonlight clients on the LAN
# stream_binary = \"\"     # path of punktfunk-stream (one per stream); next to this binary when empty
# start_pipewire = true   # sound: start a private PipeWire when none is running
# login = false           # streams start at a login greeter; the app runs as who logs in (root; serve --system)
# greeter_user = \"_greetd\"
# greetd = \"greetd\"
# scan_steam = true       # the catalog lists the games in Steam's libraries (launched through Steam)
# scan_lutris = true      # … and Lutris's installed games (launched through Lutris)
# scan_heroic = true      # … and Heroic's (Epic, GOG, added by hand; launched through Heroic)
# scan_desktop_entries = true  # … and the installed apps in the desktop menus' Game category
#
# [desktop]               # the \"Desktop\" entry: the default session
# command = [\"foot\"]
#
# [[apps]]                # more entries, each in a fresh headless session at the client's mode
# title = \"Steam\"
# command = [\"steam\", \"-gamepadui\"]
# working_dir = \"/home/me\"
# env = { MANGOHUD = \"1\" }
# prep = [{ do = [\"systemctl\", \"--user\", \"stop\", \"backup\"], undo = [\"systemctl\", \"--user\", \"start\", \"backup\"] }]
# image = \"/usr/share/pixmaps/steam.png\"
#
# [[apps]]                # attach mode: a new output of the running desktop (sway, GNOME, KDE), at the client's mode
# title = \"My desktop\"
# attach = \"auto\"

";

impl Config {
    /// Reads the file, or writes the documented default there if it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = Self::default();
                let body = format!("{HEADER}[desktop]\ncommand = {}\n", serde_json::to_string(&config.desktop.command)?);
                crate::store::write_atomic(path, body.as_bytes())?;
                tracing::info!("wrote a default configuration to {}", path.display());
                Ok(config)
            }
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        let mut config: Self = toml::from_str(text)?;
        if config.desktop.title.is_empty() {
            config.desktop.title = "Desktop".into();
        }
        // The other ports are derived from `port` (P−5 … P+21).
        if !(6..=65_514).contains(&config.port) {
            return Err(serde::de::Error::custom(format!("port {} leaves no room for HTTPS (port−5) and RTSP (port+21)", config.port)));
        }
        if config.max_sessions > MAX_SESSIONS {
            return Err(serde::de::Error::custom(format!("max_sessions {} is more than {MAX_SESSIONS}", config.max_sessions)));
        }
        let last = (config.max_sessions.max(MAX_AUTO_SESSIONS) - 1) as u16;
        if config.port.checked_add(11 + 2 * last).is_none() {
            return Err(serde::de::Error::custom(format!("port {} leaves no room for the sessions' media ports", config.port)));
        }
        if config.native_port.checked_add(1 + last).is_none() {
            return Err(serde::de::Error::custom("native_port leaves no room for the data plane (native_port+1 on)"));
        }
        Ok(config)
    }

    /// The GPU named by `gpu`, checked to be a device; `None` when empty (the first one).
    pub fn gpu(&self) -> anyhow::Result<Option<PathBuf>> {
        use std::os::unix::fs::FileTypeExt;
        if self.gpu.is_empty() {
            return Ok(None);
        }
        let gpu = PathBuf::from(&self.gpu);
        let device = std::fs::metadata(&gpu).map_err(|e| anyhow::anyhow!("gpu: {}: {e}", gpu.display()))?;
        anyhow::ensure!(
            device.file_type().is_char_device(),
            "gpu: {} is not a device (a DRM render node such as /dev/dri/renderD128)",
            gpu.display()
        );
        Ok(Some(gpu))
    }

    pub fn https_port(&self) -> u16 {
        self.port - 5
    }
    pub fn rtsp_port(&self) -> u16 {
        self.port + 21
    }
    pub fn control_port(&self) -> u16 {
        self.port + 10
    }
    /// How many sessions may stream at once: `max_sessions`, or, when that is 0 (auto), 4
    /// with a hardware encoder and one per CPU core without (an x264 720p60 session keeps
    /// about one core busy; see BENCHMARKS.md).
    pub fn session_limit(&self, hardware_encoder: bool) -> usize {
        match self.max_sessions {
            0 if hardware_encoder => MAX_AUTO_SESSIONS as usize,
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_AUTO_SESSIONS as usize),
            n => n as usize,
        }
    }

    /// The UDP ports session slot `slot` sends its media from. Slot 0 has GameStream's
    /// well-known ports (video P+9, audio P+11) and punktfunk/1's data port (native_port+1);
    /// the others follow in pairs from P+12 (inside the P+9..P+21 range firewalls open for
    /// GameStream hosts for the first five sessions) and from native_port+2. Clients learn
    /// them from RTSP SETUP and from punktfunk/1's `Started`.
    pub fn session_ports(&self, slot: u16) -> SessionPorts {
        match slot {
            0 => SessionPorts { video: self.port + 9, audio: self.port + 11, native: self.native_port + 1 },
            k => SessionPorts { video: self.port + 10 + 2 * k, audio: self.port + 11 + 2 * k, native: self.native_port + 1 + k },
        }
    }
}

/// The most sessions `max_sessions` may ask for.
pub const MAX_SESSIONS: u32 = 16;
/// What `max_sessions = 0` allows at most.
const MAX_AUTO_SESSIONS: u32 = 4;

/// The UDP ports one session's media leave from (and its clients' pings and hellos reach).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPorts {
    /// GameStream video.
    pub video: u16,
    /// GameStream audio.
    pub audio: u16,
    /// punktfunk/1's data plane.
    pub native: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (protocol, first, last) port ranges a firewall file opens: firewalld's
    /// `<port protocol="udp" port="A-B"/>` lines, ufw's `ports=A,B/tcp|C:D/udp`.
    fn opened(firewalld: &str, ufw: &str) -> Vec<(String, u16, u16)> {
        let range = |r: &str, sep: char| {
            let (a, b) = r.split_once(sep).unwrap_or((r, r));
            (a.parse::<u16>().unwrap(), b.parse::<u16>().unwrap())
        };
        let mut open = Vec::new();
        for line in firewalld.lines().filter_map(|l| l.trim().strip_prefix("<port protocol=\"")) {
            let (protocol, rest) = line.split_once('"').unwrap();
            let ports = rest.split("port=\"").nth(1).unwrap().split('"').next().unwrap();
            let (a, b) = range(ports, '-');
            open.push((format!("firewalld {protocol}"), a, b));
        }
        let ports = ufw.lines().find_map(|l| l.strip_prefix("ports=")).unwrap();
        for group in ports.split('|') {
            let (list, protocol) = group.split_once('/').unwrap();
            for r in list.split(',') {
                let (a, b) = range(r, ':');
                open.push((format!("ufw {protocol}"), a, b));
            }
        }
        open
    }

    /// The firewall files the package installs open every port the default configuration
    /// listens on, for as many sessions as it may run.
    #[test]
    fn the_firewall_files_open_the_default_ports() {
        let open = opened(include_str!("../../packaging/firewall/punktfunk.xml"), include_str!("../../packaging/firewall/punktfunk.ufw"));
        let c = Config::default();
        let mut needed = vec![
            ("tcp", c.console_port),
            ("tcp", c.port - 5),
            ("tcp", c.port),
            ("tcp", c.port + 21),
            ("udp", c.control_port()),
            ("udp", c.native_port),
            ("udp", 5353),
        ];
        for slot in 0..MAX_SESSIONS as u16 {
            let p = c.session_ports(slot);
            needed.extend([("udp", p.video), ("udp", p.audio), ("udp", p.native)]);
        }
        for tool in ["firewalld", "ufw"] {
            for (protocol, port) in &needed {
                let covered = open.iter().any(|(t, a, b)| *t == format!("{tool} {protocol}") && (*a..=*b).contains(port));
                assert!(covered, "{tool} does not open {protocol} {port}");
            }
        }
    }

    #[test]
    fn the_written_default_parses_back_to_the_default() {
        let dir = tempdir();
        let path = dir.join("config.toml");
        let written = Config::load_or_create(&path).unwrap();
        assert_eq!(written, Config::default());
        assert_eq!(Config::load_or_create(&path).unwrap(), Config::default());
    }

    #[test]
    fn gpu_is_a_device_or_nothing() {
        let gpu = |path: &str| Config { gpu: path.into(), ..Config::default() }.gpu();
        assert_eq!(gpu("").unwrap(), None);
        assert_eq!(
            gpu("/dev/null").unwrap(),
            Some(PathBuf::from("/dev/null")),
            "any device passes here; the compositor checks it is a GPU"
        );
        assert!(gpu("/etc/hostname").unwrap_err().to_string().contains("is not a device"));
        assert!(gpu("/dev/dri/renderD999").unwrap_err().to_string().contains("gpu: /dev/dri/renderD999"));
    }

    #[test]
    fn every_session_slot_has_ports_of_its_own() {
        let c = Config::parse("max_sessions = 16").unwrap();
        let mut seen = std::collections::HashSet::new();
        // UDP: the ENet control port and punktfunk/1's QUIC port are the daemon's own.
        seen.extend([c.control_port(), c.native_port]);
        for slot in 0..16 {
            let p = c.session_ports(slot);
            for port in [p.video, p.audio, p.native] {
                assert!(seen.insert(port), "slot {slot}: port {port} is taken twice");
            }
        }
        assert_eq!(c.session_ports(0), SessionPorts { video: 47998, audio: 48000, native: 48101 });
        assert_eq!(c.session_ports(4), SessionPorts { video: 48007, audio: 48008, native: 48105 });
        assert!(Config::parse("max_sessions = 17").is_err());
        assert!(Config::parse("port = 65500\nmax_sessions = 16").is_err());
    }

    #[test]
    fn typos_are_errors() {
        assert!(Config::parse("fec_precent = 10").is_err());
        assert!(Config::parse("port = \"x\"").is_err());
        assert!(Config::parse("port = 65530").is_err() && Config::parse("port = 3").is_err());
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pf-config-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
