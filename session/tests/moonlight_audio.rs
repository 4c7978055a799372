//! Sound end to end: a session app plays a 660 Hz tone through pipewire-pulse into the
//! session's own sink; a stock Moonlight client (moonlight-python) decodes the stream's
//! audio (Opus, AES-CBC, FEC) and the tone is what it hears. PipeWire is a private instance
//! started here (dbus, pipewire, wireplumber, pipewire-pulse).

mod common;
#[path = "../../streamer/tests/support/pipewire.rs"]
mod pipewire;

use common::{client_report, python, start_daemon, target_dir};
use std::path::Path;
use std::process::Command;

const PORT: u16 = 42989;
const API_PORT: u16 = 42991;
const TONE_HZ: f64 = 660.0;

#[test]
fn moonlight_hears_the_sessions_sound() {
    let Some(python) = python() else {
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON (see .ci/run)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pf-moonlight-audio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pw = pipewire::PipeWire::start(&dir);
    for (k, v) in pw.env() {
        // SAFETY: the only test of this binary, before it starts any thread; the daemon, its
        // compositor and the session's apps inherit these.
        unsafe { std::env::set_var(k, v) };
    }
    let tone = dir.join("tone.raw");
    pipewire::tone_file(&tone, &[TONE_HZ as f32, TONE_HZ as f32], 20.0);
    let pattern = target_dir().join("punktfunk-test-pattern");
    let play = format!("pacat --playback --raw --format=float32le --rate=48000 --channels=2 '{}' & exec '{}' --color 3080ff", tone.display(), pattern.display());
    let daemon = start_daemon(&dir, PORT, API_PORT, &["sh".into(), "-c".into(), play], "");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py");
    let output = Command::new(&python)
        .arg(&script)
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into(), "audio".into()])
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("running the Moonlight client");
    let out = client_report(&output, &dir);
    eprintln!("client heard: {out}");
    let audio = &out["audio"];
    assert_eq!(audio["channels"], 2);
    assert!(audio["samples"].as_u64().unwrap() >= 96_000, "two seconds of sound: {audio}");
    let hz = audio["dominant_hz"].as_f64().unwrap();
    assert!((hz - TONE_HZ).abs() < 5.0, "the client hears {hz} Hz, the app plays {TONE_HZ} Hz");
    assert!(audio["peak_over_rest"].as_f64().unwrap() > 30.0, "the tone does not stand out: {audio}");
    assert!(audio["rms"].as_f64().unwrap() > 0.1, "too quiet: {audio}");
    assert_eq!(audio["lost_packets"], 0);
    // The host's own figures for the stream that just stopped.
    let host = &out["status"]["last_audio"];
    assert!(host["packets"].as_u64().unwrap() >= 400, "{host}");
    assert!(host["datagrams"].as_u64().unwrap() > host["packets"].as_u64().unwrap(), "FEC datagrams go out too: {host}");
    eprintln!("capture → send: p50 {} µs, p99 {} µs", host["capture_to_send_us_p50"], host["capture_to_send_us_p99"]);
    drop(daemon);
    drop(pw);
    let _ = std::fs::remove_dir_all(&dir);
}
