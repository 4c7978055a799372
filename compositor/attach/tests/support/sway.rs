//! A real sway for tests: headless, rendering with pixman, as a user made for the test when
//! run as root (sway refuses root). Shared by several test binaries, each using a part.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// sway and what it runs, ended whatever happens; the user made for it removed.
pub struct Sway {
    pub child: Child,
    user: Option<String>,
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(user) = &self.user {
            let _ = Command::new("pkill").args(["-KILL", "-u", user]).status();
            let _ = Command::new("userdel").arg(user).status();
        }
    }
}

/// Starts sway headless with its runtime directory in `dir`; its IPC socket.
pub fn start_sway(dir: &Path) -> (Sway, PathBuf) {
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let mut cmd = Command::new("sway");
    let mut user = None;
    if nix::unistd::geteuid().is_root() {
        let name = format!("pfsway{}", std::process::id() % 100_000);
        assert!(Command::new("useradd").args(["--no-create-home", "--shell", "/bin/sh", &name]).status().unwrap().success());
        let uid = nix::unistd::User::from_name(&name).unwrap().unwrap().uid;
        nix::unistd::chown(&runtime, Some(uid), None).unwrap();
        cmd = Command::new("setpriv");
        cmd.args(["--reuid", &name, "--regid", &name, "--init-groups", "sway"]);
        user = Some(name);
    }
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.join("sway.config");
    std::fs::write(&config, "output HEADLESS-1 resolution 640x480\n").unwrap();
    let child = cmd
        .arg("-c")
        .arg(&config)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("WLR_BACKENDS", "headless")
        .env("WLR_RENDERER", "pixman")
        .env("WLR_LIBINPUT_NO_DEVICES", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sway.log")).unwrap())
        .spawn()
        .unwrap();
    let sway = Sway { child, user };
    let since = Instant::now();
    loop {
        let socket = std::fs::read_dir(&runtime)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("sway-ipc.")));
        if let (Some(socket), true) = (socket, runtime.join("wayland-1").exists()) {
            return (sway, socket);
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "sway did not start: {}",
            std::fs::read_to_string(dir.join("sway.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn swaymsg(socket: &Path, args: &[&str]) -> String {
    let out = Command::new("swaymsg").arg("-s").arg(socket).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether sway is installed (CI installs it).
pub fn installed() -> bool {
    Command::new("sway").arg("--version").output().is_ok()
}

/// The output sway has besides its own first one (the stream's).
pub fn new_output(socket: &Path) -> Option<serde_json::Value> {
    let outputs: serde_json::Value = serde_json::from_str(&swaymsg(socket, &["-t", "get_outputs", "-r"])).ok()?;
    outputs.as_array()?.iter().find(|o| o["name"] != "HEADLESS-1").cloned()
}
