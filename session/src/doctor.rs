//! `punktfunk doctor`: everything a host needs, checked on this machine, each miss with a
//! one-line fix. The CLI prints it (exit status 1 when something stops the host from
//! serving); the API serves the same list (`GET /api/v1/doctor`).

use crate::config::{App, Config};
use punktfunk_core::ipc::EncoderProbe;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// The host serves, without this (software encoding, no gamepads, …).
    Warn,
    /// The host cannot serve until this is fixed.
    Fail,
}

/// One check and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// How to fix it, in one line.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &str, detail: impl Into<String>) -> Self {
        Self { name: name.into(), verdict: Verdict::Ok, detail: detail.into(), fix: None }
    }

    fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name: name.into(), verdict: Verdict::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }

    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name: name.into(), verdict: Verdict::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{mark}  {}: {}", self.name, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n      fix: {fix}")?;
        }
        Ok(())
    }
}

/// Runs every check. `serving`: this host's daemon is running (its ports are its own).
pub fn run(config: &Config, state: &Path, serving: bool) -> Vec<Check> {
    // Where apps and helpers are found: the login shell's PATH, asked once.
    let path = crate::login_path::of_this_user().or_else(|| std::env::var_os("PATH")).unwrap_or_default();
    let which = |name: &str| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.exists());
    let mut checks = vec![stream_binary(config)];
    let probe = stream_binary_path(config).ok().map(|binary| (probe(&binary, config), binary));
    if let Some((probe, binary)) = &probe {
        checks.push(encoders(probe.as_ref(), binary, config));
    }
    checks.push(match probe.and_then(|(p, _)| p?.gpu) {
        Some(gpu) => Check::ok("GPU", gpu),
        None => render_node(),
    });
    checks.push(match which("Xwayland") {
        Some(p) => Check::ok("Xwayland", p.display().to_string()),
        None => Check::warn("Xwayland", "Xwayland not found: X11 apps will not start", "apt install xwayland"),
    });
    checks.push(pipewire(config, &which));
    checks.push(device(
        "uinput",
        "/dev/uinput",
        "gamepads",
        "modprobe uinput; access: the udev rule 60-punktfunk-uinput.rules (the package installs it; else packaging/udev/)",
    ));
    checks.push(device("uhid", "/dev/uhid", "DualSense and DualShock pads", "modprobe uhid"));
    if config.gamepad_isolation {
        checks.push(pad_isolation());
    }
    checks.push(ports(config, serving));
    checks.push(clock());
    checks.push(disk(state));
    if config.login {
        checks.push(login(config, &which));
    }
    let stream = stream_binary_path(config).unwrap_or_default();
    checks.extend(config.apps.iter().filter(|a| !a.attach.is_empty()).map(|a| attach(a, &|k| std::env::var(k).ok(), &stream)));
    checks
}

/// Whether nothing stops the host from serving.
pub fn serves(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.verdict != Verdict::Fail)
}

fn stream_binary_path(config: &Config) -> std::io::Result<PathBuf> {
    if !config.stream_binary.is_empty() {
        return Ok(config.stream_binary.clone().into());
    }
    Ok(std::env::current_exe()?.with_file_name("punktfunk-stream"))
}

fn stream_binary(config: &Config) -> Check {
    match stream_binary_path(config) {
        Ok(p) if p.exists() => Check::ok("stream binary", p.display().to_string()),
        Ok(p) => Check::fail(
            "stream binary",
            format!("{} is missing", p.display()),
            "build it (cargo build --release -p punktfunk-streamer) or set stream_binary",
        ),
        Err(e) => Check::fail("stream binary", e.to_string(), "set stream_binary in the configuration"),
    }
}

/// What `punktfunk-stream --probe` finds: the encoders a stream opens here and the GPU it
/// renders on (given 20 s: a driver that hangs is a miss, not a hung doctor).
fn probe(binary: &Path, config: &Config) -> Option<EncoderProbe> {
    let mut command = std::process::Command::new(binary);
    command.args(["--probe", "--probe-gpu", "--encoder", &config.encoder]);
    if !config.gpu.is_empty() {
        command.arg("--gpu").arg(&config.gpu);
    }
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
        .and_then(|child| within(child, std::time::Duration::from_secs(20)))
        .and_then(|out| serde_json::from_slice::<EncoderProbe>(&out).ok())
}

fn encoders(probe: Option<&EncoderProbe>, binary: &Path, config: &Config) -> Check {
    match probe {
        Some(p) if p.hardware => {
            Check::ok("encoders", format!("a GPU encoder (H.264, HEVC, 10-bit{})", if p.hardware_av1 { ", AV1" } else { "" }))
        }
        Some(_) if config.encoder == "software" => Check::ok("encoders", "software (x264), as configured"),
        Some(_) => Check::warn(
            "encoders",
            "no GPU encoder opens (NVENC needs the NVIDIA driver, VAAPI a Mesa or Intel media driver): software x264, HEVC and AV1 off",
            "install the GPU's VAAPI driver (mesa-va-drivers, intel-media-va-driver) or the NVIDIA driver",
        ),
        None => {
            Check::fail("encoders", format!("{} --probe failed", binary.display()), "run it by hand to see why (FFmpeg libraries missing?)")
        }
    }
}

/// The child's stdout if it exits successfully within `limit`; killed otherwise.
fn within(mut child: std::process::Child, limit: std::time::Duration) -> Option<Vec<u8>> {
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).map(|_| out)
    });
    let since = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if since.elapsed() < limit => std::thread::sleep(std::time::Duration::from_millis(20)),
            _ => break None,
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = reader.join().ok()?.ok()?;
    status.filter(std::process::ExitStatus::success).map(|_| out)
}

fn render_node() -> Check {
    let nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .map(|d| {
            d.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("renderD"))).collect()
        })
        .unwrap_or_default();
    let Some(node) = nodes.first() else {
        return Check::warn(
            "GPU",
            "no render node in /dev/dri: sessions render on the CPU (pixman)",
            "install the GPU's driver; in a VM, give it a GPU",
        );
    };
    match std::fs::OpenOptions::new().read(true).write(true).open(node) {
        Ok(_) => Check::ok("GPU", format!("{} (of {} render nodes)", node.display(), nodes.len())),
        Err(e) => Check::warn("GPU", format!("{}: {e}", node.display()), "add the user to the render group (usermod -aG render USER)"),
    }
}

fn pipewire(config: &Config, which: &dyn Fn(&str) -> Option<PathBuf>) -> Check {
    let runtime = crate::pipewire::runtime_dir();
    if crate::pipewire::reachable(&runtime) {
        return Check::ok("PipeWire", format!("running ({})", runtime.display()));
    }
    let missing: Vec<&str> = ["pipewire", "wireplumber", "pipewire-pulse"].into_iter().filter(|p| which(p).is_none()).collect();
    match (config.start_pipewire, missing.is_empty()) {
        (true, true) => Check::ok("PipeWire", "none running: the host starts its own"),
        (true, false) => Check::warn(
            "PipeWire",
            format!("none running, and {} missing: no sound", missing.join(", ")),
            "apt install pipewire wireplumber pipewire-pulse",
        ),
        (false, _) => Check::warn(
            "PipeWire",
            "none running and start_pipewire = false: no sound",
            "start the user's PipeWire, or set start_pipewire = true",
        ),
    }
}

fn device(name: &str, path: &str, what: &str, fix: &str) -> Check {
    if !Path::new(path).exists() {
        return Check::warn(name, format!("{path} is missing: no {what}"), fix);
    }
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => Check::ok(name, format!("{path} writable")),
        Err(e) => Check::warn(
            name,
            format!("{path}: {e}: no {what}"),
            "install packaging/udev/60-punktfunk-uinput.rules, or add the user to the input group",
        ),
    }
}

/// Whether sessions can get views of the input devices of their own (a keeper started and
/// ended, as a session's would be).
fn pad_isolation() -> Check {
    if !Path::new("/dev/input").exists() {
        return Check::warn("gamepad isolation", "no /dev/input: no pads to keep apart", "modprobe uinput (see uinput above)");
    }
    let made = crate::input_view::InputView::new(Path::new("/proc/self/exe"), &crate::input_view::Dirs::default());
    match made {
        Ok(_) => Check::ok("gamepad isolation", "each session sees only its own pads"),
        Err(e) => Check::warn(
            "gamepad isolation",
            format!("sessions see every pad on this machine: {e:#}"),
            "allow unprivileged user namespaces (Ubuntu: an AppArmor profile for punktfunk with `userns`), or set gamepad_isolation = false",
        ),
    }
}

/// The host's ports: free, or (while it serves) its own.
fn ports(config: &Config, serving: bool) -> Check {
    let console = (config.console_port != 0).then_some(config.console_port);
    let tcp: Vec<u16> = [config.port, config.https_port(), config.rtsp_port()].into_iter().chain(console).collect();
    let udp = [config.port + 9, config.control_port(), config.port + 11, config.native_port, config.native_port + 1];
    let all = || tcp.iter().chain(&udp).map(u16::to_string).collect::<Vec<_>>().join(", ");
    if serving {
        return Check::ok("ports", format!("{} (this host's)", all()));
    }
    let taken: Vec<String> = tcp
        .iter()
        .filter(|&&p| TcpListener::bind((Ipv4Addr::UNSPECIFIED, p)).is_err())
        .map(|p| format!("TCP {p}"))
        .chain(udp.iter().filter(|&&p| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p)).is_err()).map(|p| format!("UDP {p}")))
        .chain(TcpListener::bind((Ipv4Addr::LOCALHOST, config.api_port)).is_err().then(|| format!("TCP {} (API)", config.api_port)))
        .collect();
    match taken.is_empty() {
        true => Check::ok("ports", format!("{} free", all())),
        false => Check::fail(
            "ports",
            format!("in use by another program: {}", taken.join(", ")),
            "stop it (another streaming host?) or change port / native_port / api_port / console_port",
        ),
    }
}

/// Whether the kernel's clock is synchronised (NTP): punktfunk/1's latency figures compare
/// clocks through a measured offset, but a drifting clock drifts them.
fn clock() -> Check {
    // SAFETY: adjtimex with modes 0 only reads; the struct is plain data, zeroed.
    let mut tx: nix::libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { nix::libc::adjtimex(&mut tx) };
    match state {
        -1 => Check::warn("clock", "the kernel's clock state cannot be read", "check timedatectl"),
        nix::libc::TIME_ERROR => Check::warn("clock", "not synchronised", "enable systemd-timesyncd or chrony"),
        _ => Check::ok("clock", "synchronised"),
    }
}

fn disk(state: &Path) -> Check {
    let at = state.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    match nix::sys::statvfs::statvfs(at) {
        Ok(s) => {
            let free_mb = s.blocks_available() * s.fragment_size() / 1_000_000;
            if free_mb >= 64 {
                Check::ok("state", format!("{} ({free_mb} MB free)", state.display()))
            } else {
                Check::fail(
                    "state",
                    format!("{}: only {free_mb} MB free", state.display()),
                    "free disk space: the host writes its state atomically",
                )
            }
        }
        Err(e) => Check::warn("state", format!("{}: {e}", at.display()), "check the state directory"),
    }
}

fn login(config: &Config, which: &dyn Fn(&str) -> Option<PathBuf>) -> Check {
    let greetd = which(&config.greetd).or_else(|| Some(Path::new("/usr/sbin").join(&config.greetd)).filter(|p| p.exists()));
    let user = nix::unistd::User::from_name(&config.greeter_user).ok().flatten();
    match (greetd, user, nix::unistd::geteuid().is_root()) {
        (Some(g), Some(_), true) => Check::ok("remote login", format!("{} with greeter user {}", g.display(), config.greeter_user)),
        (None, _, _) => Check::fail("remote login", "greetd is not installed", "apt install greetd (it need not be enabled)"),
        (_, None, _) => {
            Check::fail("remote login", format!("no user {}", config.greeter_user), "set greeter_user to greetd's greeter user")
        }
        (_, _, false) => Check::fail("remote login", "login = true needs root", "run punktfunk serve --system as root"),
    }
}

/// The desktop an attach entry reaches from here (its own `env` first, then the host's
/// environment, `env_var`), and whether that desktop will let the stream in.
fn attach(app: &App, env_var: &dyn Fn(&str) -> Option<String>, stream: &Path) -> Check {
    let name = format!("attach mode ({})", app.title);
    let var = |key: &str| app.env.get(key).cloned().or_else(|| env_var(key)).filter(|v| !v.is_empty());
    let current = var("XDG_CURRENT_DESKTOP").unwrap_or_default();
    let named = |d: &str| current.split(':').any(|c| c.eq_ignore_ascii_case(d));
    let auto = app.attach == "auto";
    if app.attach == "sway" || (auto && var("SWAYSOCK").is_some()) {
        return match var("SWAYSOCK") {
            Some(s) => Check::ok(&name, format!("sway at {s}")),
            None => Check::warn(&name, "attaches to sway, but SWAYSOCK is not set here", SET_ENV),
        };
    }
    if matches!(app.attach.as_str(), "gnome" | "mutter") || (auto && named("gnome")) {
        return match var("DBUS_SESSION_BUS_ADDRESS") {
            Some(_) => Check::ok(&name, "GNOME, through Mutter's remote desktop API on the session bus"),
            None => Check::warn(&name, "attaches to GNOME, but DBUS_SESSION_BUS_ADDRESS is not set here", SET_ENV),
        };
    }
    if matches!(app.attach.as_str(), "kde" | "plasma" | "kwin") || (auto && named("kde")) {
        // KWin offers its screencast and fake input only to a program whose desktop file
        // (found by the program's path) lists them.
        let data_home = var("XDG_DATA_HOME").map(PathBuf::from).or_else(|| var("HOME").map(|h| Path::new(&h).join(".local/share")));
        let data_dirs = var("XDG_DATA_DIRS").unwrap_or_else(|| "/usr/local/share:/usr/share".into());
        // As KWin matches: Exec's program, its real path, against the program's.
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let names_stream = |text: &str| {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("Exec="))
                .any(|exec| exec.split_whitespace().next().is_some_and(|program| real(Path::new(program)) == real(stream)))
        };
        let found = data_home
            .into_iter()
            .chain(std::env::split_paths(&data_dirs))
            .map(|d| d.join("applications/punktfunk-stream.desktop"))
            .find(|f| std::fs::read_to_string(f).is_ok_and(|t| names_stream(&t)));
        return match (found, var("WAYLAND_DISPLAY")) {
            (Some(file), Some(_)) => Check::ok(&name, format!("KDE Plasma; KWin lets {} in through {}", stream.display(), file.display())),
            (Some(_), None) => Check::warn(&name, "attaches to KDE Plasma, but WAYLAND_DISPLAY is not set here", SET_ENV),
            (None, _) => Check::fail(
                &name,
                format!("attaches to KDE Plasma, but no punktfunk-stream.desktop names {}: KWin will refuse it", stream.display()),
                "install packaging/kde/punktfunk-stream.desktop into /usr/share/applications, its Exec the path above",
            ),
        };
    }
    Check::warn(
        &name,
        format!("attach = {:?} finds no desktop here (no SWAYSOCK; XDG_CURRENT_DESKTOP {current:?})", app.attach),
        "run the host inside your desktop session, or name it: attach = \"sway\", \"gnome\" or \"kde\" with its env",
    )
}

/// How to tell an attach entry where the desktop is.
const SET_ENV: &str = "run the host inside the desktop session, or give the entry env = { … } naming it";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attach_entry_names_the_desktop_it_reaches_and_what_it_lacks() {
        let dir = std::env::temp_dir().join(format!("pf-doctor-attach-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("applications")).unwrap();
        let stream = Path::new("/opt/pf/punktfunk-stream");
        let host = |key: &str| (key == "XDG_DATA_DIRS").then(|| dir.display().to_string());
        let app = |attach: &str, env: &[(&str, &str)]| App {
            title: "My desktop".into(),
            attach: attach.into(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        let check = |a: &App| attach(a, &host, stream);
        assert_eq!(check(&app("auto", &[("SWAYSOCK", "/run/sway.sock")])).verdict, Verdict::Ok);
        assert_eq!(check(&app("sway", &[])).verdict, Verdict::Warn);
        assert_eq!(
            check(&app("auto", &[("XDG_CURRENT_DESKTOP", "ubuntu:GNOME"), ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/b")])).verdict,
            Verdict::Ok
        );
        let unknown = check(&app("auto", &[("XDG_CURRENT_DESKTOP", "XFCE")]));
        assert_eq!(unknown.verdict, Verdict::Warn);
        assert!(unknown.detail.contains("XFCE"), "{unknown}");
        // KDE: KWin lets the stream in only through a desktop file naming its path.
        let kde = app("auto", &[("XDG_CURRENT_DESKTOP", "KDE"), ("WAYLAND_DISPLAY", "wayland-0")]);
        let refused = check(&kde);
        assert_eq!(refused.verdict, Verdict::Fail, "{refused}");
        let file = dir.join("applications/punktfunk-stream.desktop");
        std::fs::write(&file, "[Desktop Entry]\nExec=/usr/bin/punktfunk-stream\n").unwrap();
        assert_eq!(check(&kde).verdict, Verdict::Fail, "another path is not ours");
        std::fs::write(&file, "[Desktop Entry]\nExec=/opt/pf/punktfunk-stream --flag\n").unwrap();
        let granted = check(&kde);
        assert_eq!(granted.verdict, Verdict::Ok, "{granted}");
        let elsewhere = app("kde", &[]);
        assert_eq!(check(&elsewhere).verdict, Verdict::Warn, "no WAYLAND_DISPLAY to reach KWin by");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_port_in_use_fails_and_says_which() {
        let taken = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        // GameStream's HTTP port is `port`; the others are around it.
        let config = Config { port, native_port: 0, api_port: 0, console_port: 0, ..Config::default() };
        let check = ports(&config, false);
        assert_eq!(check.verdict, Verdict::Fail, "{check}");
        assert!(check.detail.contains(&format!("TCP {port}")), "{check}");
        assert_eq!(ports(&config, true).verdict, Verdict::Ok, "the serving host's own ports");
    }

    #[test]
    fn devices_this_machine_lacks_are_warnings_with_a_fix() {
        let check = device("uinput", "/dev/no-such-device", "gamepads", "modprobe uinput");
        assert_eq!(check.verdict, Verdict::Warn);
        assert_eq!(check.fix.as_deref(), Some("modprobe uinput"));
        assert!(check.to_string().contains("fix: modprobe uinput"));
        let null = device("null", "/dev/null", "nothing", "");
        assert_eq!(null.verdict, Verdict::Ok, "{null}");
    }

    #[test]
    fn a_missing_stream_binary_stops_the_host() {
        let config = Config { stream_binary: "/nonexistent/punktfunk-stream".into(), ..Config::default() };
        let checks = run(&config, Path::new("/tmp"), true);
        assert!(!serves(&checks));
        assert_eq!(checks[0].verdict, Verdict::Fail);
        assert!(checks.iter().all(|c| c.verdict == Verdict::Ok || c.fix.is_some()), "every miss says how to fix it: {checks:?}");
    }
}
