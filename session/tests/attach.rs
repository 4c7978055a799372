//! Attach mode end to end: a stock Moonlight client launches "My desktop", an app entry with
//! `attach = "sway"`, and streams a new output of a running sway (headless) at its own mode;
//! the test pattern opened on that output reaches the client, the client's keys reach the
//! pattern through the virtual keyboard, and what the desktop plays on its default output
//! (a tone into PipeWire's null sink, the "speakers") is what the client hears.
//!
//! Needs sway, PipeWire (the host starts its own, as the desktop's) and the Python
//! environment `.ci/run` builds (`PUNKTFUNK_MOONLIGHT_PYTHON`); says why and passes without
//! them outside CI.

mod common;
#[path = "../../compositor/attach/tests/support/sway.rs"]
mod sway;
#[path = "../../streamer/tests/support/pipewire.rs"]
mod tones;

use common::{client_report, mark, private_runtime, python, start_daemon_configured, target_dir};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 32489;
const API_PORT: u16 = 32491;

#[test]
fn moonlight_streams_a_new_output_of_a_running_sway() {
    let Some(python) = python() else {
        eprintln!("skipped: PUNKTFUNK_MOONLIGHT_PYTHON is not set");
        return;
    };
    let present = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !sway::installed() || !["pipewire", "pactl", "pacat"].into_iter().all(present) {
        assert!(std::env::var_os("CI").is_none(), "CI installs sway, PipeWire and pulseaudio-utils");
        eprintln!("skipped: needs sway, pipewire and pulseaudio-utils (pactl, pacat)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pf-attach-ml-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The desktop's runtime directory (sway's, and the PipeWire the host starts there).
    let runtime = private_runtime(&dir);
    // The pattern (sway's user) writes its input log here.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_sway, socket) = sway::start_sway(&dir);
    let display = socket.parent().unwrap().join("wayland-1");
    let app = format!(
        "[[apps]]\ntitle = \"My desktop\"\nattach = \"sway\"\nenv = {{ SWAYSOCK = {:?}, WAYLAND_DISPLAY = {:?} }}\n",
        socket.display().to_string(),
        display.display().to_string()
    );
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "start_pipewire = true\n", &["true".into()], &app);
    // The desktop's speakers (a null sink, its default output) and a tone playing there. By
    // the server's path: the runtime directory is sway's user's, which PulseAudio's tools
    // refuse to derive it from as root.
    let pulse = format!("unix:{}", runtime.join("pulse/native").display());
    let pactl = |args: &[&str]| {
        let since = Instant::now();
        loop {
            let done = Command::new("pactl").args(args).env("PULSE_SERVER", &pulse).output().unwrap();
            if done.status.success() {
                break;
            }
            assert!(since.elapsed() < Duration::from_secs(20), "pactl {args:?}: {}\n{}", common::output_text(&done), daemon_log(&dir));
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    pactl(&["load-module", "module-null-sink", "sink_name=speakers"]);
    pactl(&["set-default-sink", "speakers"]);
    let tone = dir.join("tone.raw");
    tones::tone_file(&tone, &[660.0, 660.0], 60.0);
    let mut playing = Command::new("pacat")
        .args(["--playback", "--raw", "--format=float32le", "--rate=48000", "--channels=2"])
        .arg(&tone)
        .env("PULSE_SERVER", &pulse)
        .spawn()
        .unwrap();

    let signals = dir.join("client");
    std::fs::create_dir_all(&signals).unwrap();
    let client = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([&PORT.to_string(), &API_PORT.to_string(), &signals.join("id").display().to_string(), "My desktop", "driven"])
        .arg(&signals)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The stream's output appears, then takes the client's mode (sway creates it at its
    // default first); the test pattern opens on it.
    let since = Instant::now();
    let mode = |o: &serde_json::Value| (o["current_mode"]["width"].as_u64(), o["current_mode"]["height"].as_u64());
    let output = loop {
        let output = sway::new_output(&socket);
        if let Some(o) = output.as_ref().filter(|o| mode(o) == (Some(640), Some(360))) {
            break o.clone();
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "no output for the stream at the client's mode (last seen: {:?}):\n{}",
            output.as_ref().map(mode),
            daemon_log(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let name = output["name"].as_str().unwrap();
    let log = dir.join("input.log");
    sway::swaymsg(&socket, &["focus", "output", name]);
    let pattern = target_dir().join("punktfunk-test-pattern");
    sway::swaymsg(&socket, &["exec", &format!("{} --color 00ff00 --input-log {}", pattern.display(), log.display())]);
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(signals.join("type"), "a").unwrap();
    let since = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("key 28 up") {
        assert!(since.elapsed() < Duration::from_secs(20), "the client's keys never arrived:\n{}", daemon_log(&dir));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    mark(&signals, "desktop sound");
    std::fs::write(signals.join("stop"), "").unwrap();
    let _ = playing.kill();

    let report = client_report(&client.wait_with_output().unwrap(), &dir);
    eprintln!("client: {report}");
    let bands = report["bands"].as_array().unwrap();
    let green =
        |b: &serde_json::Value| b[0].as_i64().unwrap_or(255) < 40 && b[1].as_i64().unwrap_or(0) > 215 && b[2].as_i64().unwrap_or(255) < 40;
    assert!(bands.iter().any(green), "the pattern on sway's output reached the client: {bands:?}");
    assert_eq!(report["numbers_rise"], true);
    assert_eq!(report["terminated"], false);
    let typed = std::fs::read_to_string(&log).unwrap();
    assert!(typed.contains("key 30 down"), "the client's 'a' reached the app: {typed}");
    let heard: Vec<f64> =
        report["heard"]["desktop sound"].as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
    assert!(
        heard.iter().filter(|&&hz| (hz - 660.0).abs() <= 20.0).count() >= 5,
        "the desktop plays 660 Hz on its speakers; the client heard {heard:?}"
    );
    let _ = playing.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn daemon_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
}
