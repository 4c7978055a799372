//! A real Mutter for tests: headless (surfaceless rendering, no monitor of its own), with
//! the session D-Bus, PipeWire and WirePlumber it needs, all in a runtime directory of the
//! test's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Mutter and its session's services, ended whatever happens.
pub struct Mutter {
    children: Vec<Child>,
    /// The session bus's address, the runtime directory and the Wayland display's name.
    pub bus: String,
    pub runtime: PathBuf,
    pub display: String,
}

impl Drop for Mutter {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Mutter {
    /// Makes this process a client of this Mutter's session (its bus, runtime directory and
    /// display), as an app of the session is.
    ///
    /// # Safety
    /// Sets environment variables: call before any other thread may read them.
    #[allow(dead_code)]
    pub unsafe fn enter(&self) {
        unsafe {
            std::env::set_var("XDG_RUNTIME_DIR", &self.runtime);
            std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &self.bus);
            std::env::set_var("WAYLAND_DISPLAY", &self.display);
        }
    }

    /// Mutter's own process (the last started).
    #[allow(dead_code)]
    pub fn mutter_pid(&self) -> u32 {
        self.children.last().expect("started").id()
    }

    /// Mutter's monitors, by connector and current size (DisplayConfig's GetCurrentState).
    pub fn monitors(&self) -> Vec<(String, (i32, i32))> {
        let connection = zbus::blocking::connection::Builder::address(self.bus.as_str()).unwrap().build().unwrap();
        let config = zbus::blocking::Proxy::new(
            &connection,
            "org.gnome.Mutter.DisplayConfig",
            "/org/gnome/Mutter/DisplayConfig",
            "org.gnome.Mutter.DisplayConfig",
        )
        .unwrap();
        type Mode = (String, i32, i32, f64, f64, Vec<f64>, std::collections::HashMap<String, zbus::zvariant::OwnedValue>);
        type Monitor = ((String, String, String, String), Vec<Mode>, std::collections::HashMap<String, zbus::zvariant::OwnedValue>);
        type Logical = (
            i32,
            i32,
            f64,
            u32,
            bool,
            Vec<(String, String, String, String)>,
            std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        );
        type State = (u32, Vec<Monitor>, Vec<Logical>, std::collections::HashMap<String, zbus::zvariant::OwnedValue>);
        let (_, monitors, _, _): State = config.call("GetCurrentState", &()).unwrap();
        monitors
            .into_iter()
            .map(|((connector, ..), modes, _)| {
                let current = modes.iter().find(|m| m.6.get("is-current").is_some_and(|v| bool::try_from(v).unwrap_or(false)));
                (connector, current.map_or((0, 0), |m| (m.1, m.2)))
            })
            .collect()
    }
}

pub fn installed() -> bool {
    ["mutter", "pipewire", "wireplumber", "dbus-daemon"]
        .into_iter()
        .all(|tool| Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()))
}

fn wait_for(what: &str, dir: &Path, mut ready: impl FnMut() -> bool) {
    let since = Instant::now();
    while !ready() {
        let log = std::fs::read_to_string(dir.join("mutter.log")).unwrap_or_default();
        assert!(since.elapsed() < Duration::from_secs(30), "{what} did not start:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the session bus, PipeWire, WirePlumber and Mutter with their files under `dir`.
pub fn start(dir: &Path) -> Mutter {
    use std::os::unix::fs::PermissionsExt;
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let bus = format!("unix:path={}", runtime.join("bus").display());
    let display = format!("pf-mutter-{}", std::process::id());
    let mut mutter = Mutter { children: Vec::new(), bus: bus.clone(), runtime: runtime.clone(), display: display.clone() };
    let spawn = |cmd: &mut Command, log: &str| {
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(log)).unwrap())
            .spawn()
            .unwrap()
    };
    mutter.children.push(spawn(Command::new("dbus-daemon").args(["--session", "--nofork", "--address", &bus]), "dbus.log"));
    wait_for("the session bus", dir, || runtime.join("bus").exists());
    mutter.children.push(spawn(&mut Command::new("pipewire"), "pipewire.log"));
    wait_for("PipeWire", dir, || runtime.join("pipewire-0").exists());
    mutter.children.push(spawn(&mut Command::new("wireplumber"), "wireplumber.log"));
    mutter
        .children
        .push(spawn(Command::new("mutter").args(["--headless", "--wayland", "--no-x11", "--wayland-display", &display]), "mutter.log"));
    wait_for("Mutter", dir, || runtime.join(&display).exists());
    mutter
}
