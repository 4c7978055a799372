//! A private PipeWire for a test: session D-Bus, pipewire, wireplumber and pipewire-pulse
//! in their own runtime directory, stopped when dropped. Also tone helpers: files to play
//! and Goertzel power to tell which tone a recording holds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PipeWire {
    pub runtime: PathBuf,
    pub bus: String,
    children: Vec<Child>,
}

impl PipeWire {
    /// Starts the daemons under `dir` and waits until pipewire-pulse answers. The caller
    /// passes [`PipeWire::env`] to every process that should use it (and sets it for itself
    /// before any thread reads the environment).
    pub fn start(dir: &Path) -> Self {
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let bus = format!("unix:path={}", runtime.join("bus").display());
        let mut pw = Self { runtime, bus, children: Vec::new() };
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap());
        let missing = |p: &str| format!("{p} is missing: apt-get install dbus pipewire pipewire-pulse wireplumber pipewire-bin pulseaudio-utils");
        let dbus = Command::new("dbus-daemon").args(["--session", "--nofork", "--nopidfile", "--address", &pw.bus]).stdout(log("dbus")).stderr(log("dbus-err")).spawn().expect(&missing("dbus-daemon"));
        pw.children.push(dbus);
        pw.wait_for(&pw.runtime.join("bus"));
        for daemon in ["pipewire", "wireplumber", "pipewire-pulse"] {
            let child = pw.command(daemon).stdout(log(daemon)).stderr(Stdio::from(std::fs::File::create(dir.join(format!("{daemon}-err.log"))).unwrap())).spawn().expect(&missing(daemon));
            pw.children.push(child);
            if daemon == "pipewire" {
                pw.wait_for(&pw.runtime.join("pipewire-0"));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pw.command("pactl").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            assert!(Instant::now() < deadline, "pipewire-pulse did not come up; logs in {}", dir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        pw
    }

    fn wait_for(&self, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "{} did not appear", path.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn env(&self) -> [(&'static str, String); 2] {
        [("XDG_RUNTIME_DIR", self.runtime.display().to_string()), ("DBUS_SESSION_BUS_ADDRESS", self.bus.clone())]
    }

    /// A command that talks to this PipeWire.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env());
        c
    }

    /// Node names in the graph (`pw-cli ls Node`).
    pub fn node_names(&self) -> Vec<String> {
        let out = self.command("pw-cli").args(["ls", "Node"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_once("node.name = \"")).map(|(_, n)| n.trim_end_matches('"').to_string()).collect()
    }
}

impl Drop for PipeWire {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub const RATE: u32 = 48_000;

/// Writes `seconds` of interleaved f32 samples, channel `c` a sine at `freqs[c]`.
pub fn tone_file(path: &Path, freqs: &[f32], seconds: f32) {
    let frames = (RATE as f32 * seconds) as usize;
    let mut bytes = Vec::with_capacity(frames * freqs.len() * 4);
    for i in 0..frames {
        let t = i as f32 / RATE as f32;
        for f in freqs {
            bytes.extend_from_slice(&((t * f * std::f32::consts::TAU).sin() * 0.4).to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// The power of `freq` in one channel of interleaved samples (Goertzel).
pub fn power(samples: &[f32], channels: usize, channel: usize, freq: f32) -> f32 {
    let w = std::f32::consts::TAU * freq / RATE as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for x in samples.iter().skip(channel).step_by(channels) {
        let s = x + coeff * s1 - s2;
        (s2, s1) = (s1, s);
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Which of `freqs` is strongest in `channel`, and by how much over the runner-up.
pub fn dominant(samples: &[f32], channels: usize, channel: usize, freqs: &[f32]) -> (f32, f32) {
    let mut p: Vec<(f32, f32)> = freqs.iter().map(|&f| (f, power(samples, channels, channel, f))).collect();
    p.sort_by(|a, b| b.1.total_cmp(&a.1));
    (p[0].0, p[0].1 / p.get(1).map_or(f32::MIN_POSITIVE, |r| r.1.max(f32::MIN_POSITIVE)))
}
