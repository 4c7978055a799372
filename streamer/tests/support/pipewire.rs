//! A private PipeWire for a test (the host's own [`PipeWireServer`], in the test's
//! directory), stopped when dropped. Also tone helpers: files to play
//! and Goertzel power to tell which tone a recording holds.
#![allow(dead_code)]

use punktfunk_session::pipewire::PipeWireServer;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct PipeWire {
    server: PipeWireServer,
}

impl PipeWire {
    /// Starts the daemons with their sockets and logs under `dir` and waits until
    /// pipewire-pulse answers. The caller passes [`PipeWire::env`] to every process that
    /// should use it (or sets it for itself before any thread reads the environment).
    pub fn start(dir: &Path) -> Self {
        let server = PipeWireServer::start(&dir.join("runtime"), Some(dir))
            .unwrap_or_else(|e| panic!("{e} (apt-get install dbus pipewire pipewire-bin pipewire-pulse wireplumber pulseaudio-utils)"));
        let pw = Self { server };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pw.command("pactl").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            assert!(Instant::now() < deadline, "pipewire-pulse does not answer; logs in {}", dir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        pw
    }

    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        self.server.env().to_vec()
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
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once("node.name = \""))
            .map(|(_, n)| n.trim_end_matches('"').to_string())
            .collect()
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

/// How many `window`-frame windows of `samples` carry in each channel only its tone of
/// `expected` (`margin` times stronger than any other of `freqs`), and how many windows
/// there are. Sound through a real PipeWire on a loaded machine misses cycles now and then,
/// and each click spreads over every tone of its window; a channel mixed with another, or
/// swapped, is wrong in every window. Windows should hold whole cycles of every tone.
#[allow(dead_code)]
pub fn clean_windows(samples: &[f32], channels: usize, window: usize, freqs: &[f32], expected: &[f32], margin: f32) -> (usize, usize) {
    let windows: Vec<&[f32]> = samples.chunks_exact(window * channels).collect();
    let clean = windows
        .iter()
        .filter(|w| {
            expected.iter().enumerate().all(|(channel, want)| {
                let (got, m) = dominant(w, channels, channel, freqs);
                got == *want && m > margin
            })
        })
        .count();
    (clean, windows.len())
}
