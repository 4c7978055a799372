//! A real KWin for tests: Plasma's compositor on its virtual backend (no display, software
//! compositing), its files in a directory of the test's. The packaged `kwin_wayland` carries
//! a file capability (`cap_sys_resource`) that a container may refuse to exec; a copy
//! without it runs the same code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// KWin, ended whatever happens.
pub struct Kwin {
    child: Child,
    /// The runtime directory and the Wayland display's name.
    pub runtime: PathBuf,
    pub display: String,
    log: PathBuf,
}

impl Drop for Kwin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Kwin {
    /// What KWin printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn installed() -> bool {
    which("kwin_wayland").is_some()
}

/// The version of the KWin started in `dir`, e.g. "5.27.5".
pub fn version(dir: &Path) -> String {
    let out = Command::new(dir.join("kwin_wayland")).arg("--version").output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().last().unwrap_or_default().to_owned()
}

/// Starts KWin with one `width`×`height` output, its files under `dir/name`, finding desktop
/// files in `data` (XDG_DATA_DIRS); `checks` false lets every client use every protocol.
pub fn start(dir: &Path, name: &str, data: &Path, checks: bool, (width, height): (u32, u32)) -> Kwin {
    use std::os::unix::fs::PermissionsExt;
    let home = dir.join(name);
    let runtime = home.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let binary = dir.join("kwin_wayland");
    if !binary.exists() {
        // A plain copy: the capability (an extended attribute) stays behind.
        std::fs::copy(which("kwin_wayland").expect("kwin_wayland installed"), &binary).unwrap();
    }
    let display = format!("pf-kwin-{}-{name}", std::process::id());
    let log = home.join("kwin.log");
    let mut cmd = Command::new(&binary);
    cmd.args(["--virtual", "--no-lockscreen", "--socket", &display])
        .args(["--width", &width.to_string(), "--height", &height.to_string()])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_DIRS", format!("{}:/usr/share", data.display()))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        // Software compositing: no GPU here.
        .env("KWIN_COMPOSE", "Q")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if !checks {
        cmd.env("KWIN_WAYLAND_NO_PERMISSION_CHECKS", "1");
    }
    let kwin = Kwin { child: cmd.spawn().unwrap(), runtime: runtime.clone(), display: display.clone(), log };
    let since = Instant::now();
    while !runtime.join(&display).exists() {
        assert!(since.elapsed() < Duration::from_secs(30), "KWin did not start:\n{}", kwin.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    kwin
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.exists())
}
