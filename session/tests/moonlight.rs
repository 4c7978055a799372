//! `punktfunk serve` with a stock Moonlight client (moonlight-python 0.3.0, which bundles
//! moonlight-common-c): pairing with a PIN (a wrong one first), the app list, a launch at
//! 1280x720@60 H.264 into a real headless session running the test-pattern app, decoded
//! frames of the colour it draws, keyboard/mouse/text input that reaches the app, and quit.
//!
//! Needs the Python environment `.ci/run` builds: `PUNKTFUNK_MOONLIGHT_PYTHON` names its
//! interpreter. Without it the test says so and passes only outside CI.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Base port well away from a real host's 47989, so a host running on the machine is fine.
const PORT: u16 = 38989;
const API_PORT: u16 = 38991;
const COLOUR: [i64; 3] = [0x30, 0x80, 0xff];

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

fn python() -> Option<PathBuf> {
    match std::env::var_os("PUNKTFUNK_MOONLIGHT_PYTHON") {
        Some(p) => Some(p.into()),
        None if std::env::var_os("CI").is_some() => panic!("PUNKTFUNK_MOONLIGHT_PYTHON must name moonlight-python's interpreter on CI"),
        None => None,
    }
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_punktfunk")).parent().unwrap().to_path_buf()
}

fn start_daemon(dir: &Path, app_cmd: &[String]) -> Daemon {
    let compositor = target_dir().join("punktfunk-compositor");
    assert!(compositor.exists(), "build the workspace first (cargo build --workspace): {} is missing", compositor.display());
    let config = format!(
        "port = {PORT}\napi_port = {API_PORT}\nmdns = false\nencoder = \"software\"\ncompositor = {:?}\n\n[[apps]]\ntitle = \"Input Test\"\ncommand = {}\n",
        compositor.display().to_string(),
        serde_json::to_string(app_cmd).unwrap()
    );
    std::fs::create_dir_all(dir.join("config/punktfunk")).unwrap();
    std::fs::write(dir.join("config/punktfunk/config.toml"), config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_punktfunk"))
        .arg("serve")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting punktfunk serve");
    // Ready once it says so; its log then goes to a file the test prints on failure.
    let stderr = child.stderr.take().unwrap();
    let log_path = dir.join("daemon.log");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(log_path).unwrap();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("host ready") {
                let _ = tx.send(());
            }
            let _ = std::io::Write::write_all(&mut log, format!("{line}\n").as_bytes());
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("punktfunk serve did not become ready");
    Daemon(child)
}

#[test]
fn moonlight_pairs_streams_takes_input_and_quits() {
    let Some(python) = python() else {
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON (see .ci/run)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pf-moonlight-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input_log = dir.join("input.log");
    let pattern = target_dir().join("punktfunk-test-pattern");
    let app = vec![pattern.display().to_string(), "--color".into(), "3080ff".into(), "--input-log".into(), input_log.display().to_string()];
    let daemon = start_daemon(&dir, &app);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py");
    let output = Command::new(&python)
        .arg(&script)
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into()])
        .output()
        .expect("running the Moonlight client");
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
    assert!(output.status.success(), "client failed: {}\n--- daemon log ---\n{log}", String::from_utf8_lossy(&output.stderr));
    let out: serde_json::Value = serde_json::from_slice(output.stdout.rsplit(|&b| b == b'\n').find(|l| !l.is_empty()).unwrap())
        .unwrap_or_else(|e| panic!("client output is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));
    eprintln!("client saw: {out:#}");

    // Identity and the negative cases.
    assert_eq!(out["serverinfo"]["appversion"], "7.1.431.-1");
    assert_eq!(out["serverinfo"]["codecs"].as_i64().unwrap() & 1, 1, "H.264 offered");
    assert_eq!(out["unpaired_applist"], 401);
    assert_eq!(out["unpaired_launch"], 401);
    assert_ne!(out["wrong_pin"]["client"], "paired");
    assert_eq!(out["wrong_pin"]["status"], 403, "the host reports the failed pairing to whoever gave the PIN");
    assert_eq!(out["right_pin"]["client"], "paired");
    assert_eq!(out["right_pin"]["status"], 200);
    assert_eq!(out["paired_serverinfo"], 200);
    assert_eq!(out["apps"], serde_json::json!(["Desktop", "Input Test"]));

    // Video: 60 decoded frames in order, of the colour the app draws.
    assert_eq!(out["frames"], 60);
    let numbers: Vec<i64> = out["frame_numbers"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "frame numbers increase: {numbers:?}");
    let near = |v: &serde_json::Value, want: [i64; 3]| v.as_array().unwrap().iter().zip(want).all(|(a, b)| (a.as_i64().unwrap() - b).abs() < 40);
    assert!(near(&out["band_before"], COLOUR), "band colour {} is not the app's #3080ff", out["band_before"]);

    // Input: the key press flipped the colour in the stream, the click flipped it back.
    assert_eq!(out["send_key"], serde_json::json!([0, 0]));
    assert!(near(&out["band_after_key"], COLOUR.map(|c| 255 - c)), "after the key: {}", out["band_after_key"]);
    assert!(near(&out["band_after_click"], COLOUR), "after the click: {}", out["band_after_click"]);
    let events = std::fs::read_to_string(&input_log).unwrap();
    for want in ["key 30 down", "key 30 up", "button 272 down", "button 272 up", "key 35 down", "key 23 down", "scroll vertical 15.0"] {
        assert!(events.lines().any(|l| l.starts_with(want)), "the app never saw `{want}`:\n{events}");
    }
    // The absolute position (640, 360) of 1280x720 lands mid-output (±1 px of rounding).
    let centred = |l: &str| {
        let v: Vec<f64> = l.strip_prefix("motion ").map(|r| r.split(' ').filter_map(|n| n.parse().ok()).collect()).unwrap_or_default();
        v.len() == 2 && (v[0] - 640.0).abs() <= 1.5 && (v[1] - 360.0).abs() <= 1.5
    };
    assert!(events.lines().any(centred), "no pointer motion to the centre:\n{events}");
    assert_eq!(out["video_stats"]["packetCountInvalid"], 0);

    // Quit: the session is gone, and so is the app.
    assert_eq!(out["currentgame_after_quit"], 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let app_alive = || std::fs::read_dir("/proc").unwrap().filter_map(Result::ok).any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.windows(9).any(|w| w == b"input.log") && String::from_utf8_lossy(&c).contains(&dir.display().to_string())));
    while app_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!app_alive(), "the app outlived /cancel");
    drop(daemon);
}
