//! Attach mode on GNOME end to end: a stock Moonlight client launches "My desktop", an app
//! entry with `attach = "gnome"`, and streams a virtual monitor of a running Mutter
//! (headless, with no monitor of its own) at its own mode; the test pattern opened on that
//! monitor reaches the client, the client's keys reach the pattern, and the monitor goes
//! when the client quits the app.
//!
//! Needs mutter, PipeWire, WirePlumber and the Python environment `.ci/run` builds
//! (`PUNKTFUNK_MOONLIGHT_PYTHON`); says why and passes without them outside CI.

mod common;
#[path = "../../compositor/attach/tests/support/mutter.rs"]
mod mutter;

use common::{client_report, python, start_daemon_configured, target_dir};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 32589;
const API_PORT: u16 = 32591;

#[test]
fn moonlight_streams_a_virtual_monitor_of_a_running_mutter() {
    let Some(python) = python() else {
        eprintln!("skipped: PUNKTFUNK_MOONLIGHT_PYTHON is not set");
        return;
    };
    if !mutter::installed() {
        assert!(std::env::var_os("CI").is_none(), "CI installs mutter, PipeWire and WirePlumber");
        eprintln!("skipped: needs mutter, pipewire, wireplumber and dbus-daemon");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pf-attach-gnome-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let gnome = mutter::start(&dir);
    // The desktop's session as the entry names it: its bus, runtime directory and display.
    let app = format!(
        "[[apps]]\ntitle = \"My desktop\"\nattach = \"gnome\"\nenv = {{ DBUS_SESSION_BUS_ADDRESS = {:?}, XDG_RUNTIME_DIR = {:?}, WAYLAND_DISPLAY = {:?} }}\n",
        gnome.bus,
        gnome.runtime.display().to_string(),
        gnome.display
    );
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "start_pipewire = false\n", &["true".into()], &app);
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

    // The stream's monitor appears at the client's mode, Mutter's only one.
    let since = Instant::now();
    while gnome.monitors().iter().map(|m| m.1).collect::<Vec<_>>() != [(640, 360)] {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "no monitor of the client's mode (Mutter has {:?}):\n{}",
            gnome.monitors(),
            daemon_log(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The test pattern opens on it; the client types into it.
    let log = dir.join("input.log");
    let mut pattern = Command::new(target_dir().join("punktfunk-test-pattern"))
        .args(["--color", "00ff00", "--input-log"])
        .arg(&log)
        .env("XDG_RUNTIME_DIR", &gnome.runtime)
        .env("WAYLAND_DISPLAY", &gnome.display)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(signals.join("type"), "a").unwrap();
    let since = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("key 28 up") {
        assert!(since.elapsed() < Duration::from_secs(20), "the client's keys never arrived:\n{}", daemon_log(&dir));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(signals.join("stop"), "").unwrap();

    let report = client_report(&client.wait_with_output().unwrap(), &dir);
    eprintln!("client: {report}");
    let bands = report["bands"].as_array().unwrap();
    let green =
        |b: &serde_json::Value| b[0].as_i64().unwrap_or(255) < 40 && b[1].as_i64().unwrap_or(0) > 215 && b[2].as_i64().unwrap_or(255) < 40;
    assert!(bands.iter().any(green), "the pattern on Mutter's monitor reached the client: {bands:?}");
    assert_eq!(report["numbers_rise"], true);
    let typed = std::fs::read_to_string(&log).unwrap();
    assert!(typed.contains("key 30 down"), "the client's 'a' reached the app: {typed}");
    // Quitting the app ends the stream: the monitor goes.
    let since = Instant::now();
    while !gnome.monitors().is_empty() {
        assert!(since.elapsed() < Duration::from_secs(20), "the monitor stayed: {:?}\n{}", gnome.monitors(), daemon_log(&dir));
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = pattern.kill();
    let _ = pattern.wait();
    drop(gnome);
    let _ = std::fs::remove_dir_all(&dir);
}

fn daemon_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
}
