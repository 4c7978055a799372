//! Sound end to end, as on a headless server: no PipeWire runs, so `punktfunk serve` starts
//! its own (dbus, pipewire, wireplumber, pipewire-pulse); a session app plays a 660 Hz tone
//! through pipewire-pulse into the session's own sink; a stock Moonlight client
//! (moonlight-python) decodes the stream's audio (Opus, AES-CBC, FEC) and the tone is what
//! it hears. When the host stops, its PipeWire goes with it.

mod common;
#[path = "../../streamer/tests/support/pipewire.rs"]
mod tones;

use common::{client_report, private_runtime, python, start_daemon_configured, target_dir};
use std::path::Path;
use std::process::Command;

const PORT: u16 = 22989;
const API_PORT: u16 = 22991;
const TONE_HZ: f64 = 660.0;
const HEAD_HZ: f64 = 880.0;

#[test]
fn moonlight_hears_the_sessions_sound() {
    let Some(python) = python() else {
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON (see .ci/run)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pf-moonlight-audio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = private_runtime(&dir);
    // The app's sound: 300 ms of a higher note, then the tone.
    let (head, tone) = (dir.join("head.raw"), dir.join("tone.raw"));
    tones::tone_file(&head, &[HEAD_HZ as f32, HEAD_HZ as f32], 0.3);
    tones::tone_file(&tone, &[TONE_HZ as f32, TONE_HZ as f32], 20.0);
    let sound = [std::fs::read(&head).unwrap(), std::fs::read(&tone).unwrap()].concat();
    std::fs::write(&tone, sound).unwrap();
    let pattern = target_dir().join("punktfunk-test-pattern");
    // The tone starts when the client says (a file appears), and the app notes when: the
    // onset is measured from there to the first audible packet at the client.
    let (trigger, onset) = (dir.join("trigger"), dir.join("onset"));
    let play = format!(
        "(while [ ! -e '{}' ]; do sleep 0.005; done; date +%s%6N > '{}'; exec pacat --playback --raw --format=float32le --rate=48000 --channels=2 '{}') & exec '{}' --color 3080ff",
        trigger.display(),
        onset.display(),
        tone.display(),
        pattern.display()
    );
    let daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "start_pipewire = true\n", &["sh".into(), "-c".into(), play], "");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py");
    let output = Command::new(&python)
        .arg(&script)
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into(), "audio".into()])
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("PUNKTFUNK_TEST_ONSET_TRIGGER", &trigger)
        .output()
        .expect("running the Moonlight client");
    let out = client_report(&output, &dir);
    eprintln!("client heard: {out}");
    let audio = &out["audio"];
    assert_eq!(audio["channels"], 2);
    assert!(audio["samples"].as_u64().unwrap() >= 96_000, "two seconds of sound: {audio}");
    let windows: Vec<f64> = audio["window_hz"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let on_tone = windows.iter().filter(|hz| (*hz - TONE_HZ).abs() <= 10.0).count();
    assert!(on_tone >= 8, "the app plays {TONE_HZ} Hz, the client hears {windows:?} Hz in 100 ms windows");
    // The app plays at 0.4 peak: a sine's RMS is peak/√2.
    assert!((audio["rms"].as_f64().unwrap() - 0.4 / 2f64.sqrt()).abs() < 0.05, "level changed on the way: {audio}");
    assert_eq!(audio["lost_packets"], 0);
    // The sound's first 100 ms are its head: none of it was lost. (moonlight-common-c drops
    // the first 500 ms of audio packets it receives; a host that sends nothing while the
    // session is silent lost the start of the first sound to it.)
    // (Its loudest frequency in 10 Hz bins, the head starting inside the window: ±1 bin.)
    let first_hz = audio["first_hz"].as_f64().unwrap_or(0.0);
    assert!((first_hz - HEAD_HZ).abs() <= 10.0, "the start of the sound is missing: {audio}");
    // Onset: printed, not asserted (timing depends on the machine).
    let what = "GameStream: the app starts its tone → the first audible sound decoded at the client";
    common::onset_figure(&onset, &audio["onset_us"], what, audio);
    // The host's own figures for the stream that just stopped.
    let host = &out["status"]["last_audio"];
    assert!(host["packets"].as_u64().unwrap() >= 400, "{host}");
    assert!(host["datagrams"].as_u64().unwrap() > host["packets"].as_u64().unwrap(), "FEC datagrams go out too: {host}");
    eprintln!("capture → send: p50 {} µs, p99 {} µs", host["capture_to_send_us_p50"], host["capture_to_send_us_p99"]);
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(log.contains("started a private PipeWire"), "{log}");
    drop(daemon);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(runtime.join("pipewire-0")).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the host's PipeWire outlived it");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
