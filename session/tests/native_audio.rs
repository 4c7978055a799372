//! punktfunk/1 sound both ways, on a host with no PipeWire running (the daemon starts its
//! own): a session app plays 660 Hz into the session's sink and `punktfunk-client` decodes
//! it from the data plane and plays it (a recorder on the client's output hears it); the
//! client records a microphone (a PipeWire source playing 440 Hz, standing in for a headset)
//! and an app in the session records it from the session's virtual microphone.

mod common;
#[path = "../../streamer/tests/support/pipewire.rs"]
mod tones;

use common::{native_client, output_text, pair_native, private_runtime, start_daemon_configured, stream_native, target_dir};
use punktfunk_streamer::audio::layout::Channels;
use punktfunk_streamer::audio::node::{Io, NodeSpec, VirtualNode};

const PORT: u16 = 24989;
const API_PORT: u16 = 24991;
const NATIVE: u16 = PORT + 50;

fn read_f32(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn samples_of_wav(path: &std::path::Path) -> Vec<f32> {
    hound::WavReader::open(path).unwrap().into_samples::<f32>().map(Result::unwrap).collect()
}

#[test]
fn sound_and_microphone_over_punktfunk1() {
    let dir = std::env::temp_dir().join(format!("pf-native-audio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    private_runtime(&dir);
    let (tone, mic) = (dir.join("tone.raw"), dir.join("mic.raw"));
    tones::tone_file(&tone, &[660.0, 660.0], 20.0);
    let pattern = target_dir().join("punktfunk-test-pattern");
    let app = format!(
        "pacat --playback --raw --format=float32le --rate=48000 --channels=2 '{}' & parecord --raw --format=float32le --rate=48000 --channels=2 '{}' & exec '{}' --color 3080ff",
        tone.display(),
        mic.display(),
        pattern.display()
    );
    // "Onset": an app that starts the tone when the test says, noting when it did.
    let (trigger, onset) = (dir.join("trigger"), dir.join("onset"));
    let onset_app = format!(
        "while [ ! -e '{}' ]; do sleep 0.005; done; date +%s%6N > '{}'; exec pacat --playback --raw --format=float32le --rate=48000 --channels=2 '{}'",
        trigger.display(),
        onset.display(),
        tone.display()
    );
    let onset_app = format!(
        "[[apps]]\ntitle = \"Onset\"\ncommand = {}\n",
        serde_json::json!(["sh", "-c", format!("({onset_app}) & exec '{}'", pattern.display())])
    );
    let host_toml = format!("start_pipewire = true\n{onset_app}");
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, &host_toml, &["sh".into(), "-c".into(), app], "");
    let config = dir.join("client");
    let (c, h) = pair_native(&[], &dir, &config, NATIVE, "4321", "4321");
    assert!(c.status.success() && h.status.success(), "pairing: {}\n{}", output_text(&c), output_text(&h));

    // Where the client plays: a null sink of the (host's) PipeWire, recorded from its monitor.
    let pactl = std::process::Command::new("pactl").args(["load-module", "module-null-sink", "sink_name=clientout"]).output().unwrap();
    assert!(pactl.status.success(), "{}", output_text(&pactl));
    // The client's microphone: a source that "hears" 440 Hz.
    let mut phase = 0f32;
    let sine = Io::Play(Box::new(move |out: &mut [f32]| {
        for frame in out.chunks_exact_mut(2) {
            frame.fill((phase * std::f32::consts::TAU).sin() * 0.5);
            phase = (phase + 440.0 / 48_000.0).fract();
        }
    }));
    let headset = NodeSpec {
        name: "test-headset".into(),
        description: "test headset".into(),
        channels: Channels::Stereo,
        quantum: 240,
        app_stream: false,
        target: None,
        capture_sink: false,
    };
    let headset = VirtualNode::spawn(headset, sine).unwrap();
    assert!(headset.wait_ready(std::time::Duration::from_secs(5)).is_some(), "the test microphone did not come up");

    let played = dir.join("played.raw");
    let recorder = std::process::Command::new("parecord")
        .args(["-d", "clientout.monitor", "--raw", "--format=float32le", "--rate=48000", "--channels=2"])
        .arg(&played)
        .spawn()
        .unwrap();

    let out = dir.join("out");
    let args = [
        "--app",
        "Input Test",
        "--mode",
        "320x240@30",
        "--bitrate-kbps",
        "2000",
        "--frames",
        "120",
        "--mic-source",
        "test-headset",
        "--play",
    ];
    let stats = stream_native(&["env", "PIPEWIRE_NODE=clientout"], &dir, &config, NATIVE, &args, &out);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(recorder.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let _ = recorder.wait_with_output();
    eprintln!("punktfunk/1 with sound: {stats}");

    // The session's sound at the client: the last second, in 100 ms windows.
    let sound = samples_of_wav(&out.join("audio.wav"));
    assert!(sound.len() >= 2 * 48_000, "{} samples of sound: {stats}", sound.len());
    let last = &sound[sound.len() - 2 * 48_000..];
    let on_tone = last.chunks_exact(2 * 4800).filter(|w| tones::dominant(w, 2, 0, &[330.0, 440.0, 660.0, 1320.0]).0 == 660.0).count();
    assert!(on_tone >= 8, "the client heard 660 Hz in {on_tone} of 10 windows");
    assert_eq!(stats["audio_lost"], 0);
    // …and it played it.
    let played = read_f32(&played);
    let loud: Vec<f32> = played.chunks_exact(2 * 4800).filter(|w| w.iter().any(|s| s.abs() > 0.1)).flatten().copied().collect();
    assert!(loud.len() >= 48_000, "the client's output got {} samples of sound", loud.len());
    assert_eq!(tones::dominant(&loud, 2, 0, &[330.0, 440.0, 660.0, 1320.0]).0, 660.0, "the client played something else");

    // The microphone inside the session: the recorder has been running since launch; stop
    // the session so it flushes, then look at what it got.
    stream_native(
        &[],
        &dir,
        &config,
        NATIVE,
        &["--app", "Input Test", "--mode", "320x240@30", "--frames", "1", "--stop"],
        &dir.join("out2"),
    );
    // The recorder flushes as it exits: wait for a second of sound (or give up and report).
    let loud_in = |path: &std::path::Path| -> Vec<f32> {
        read_f32(path).chunks_exact(2 * 4800).filter(|w| w.iter().any(|s| s.abs() > 0.1)).flatten().copied().collect()
    };
    let flushed = std::time::Instant::now();
    let mut loud = loud_in(&mic);
    while loud.len() < 2 * 48_000 && flushed.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        loud = loud_in(&mic);
    }
    assert!(loud.len() >= 2 * 48_000, "the session's recorder got {} samples of sound", loud.len());
    let (hz, margin) = tones::dominant(&loud, 2, 0, &[330.0, 440.0, 660.0, 880.0]);
    eprintln!("the session recorded {hz} Hz ({margin:.0}x the next) from the client's microphone");
    assert_eq!(hz, 440.0);

    // Onset: once the stream runs, the app starts its tone; the client notes when the first
    // audible packet arrived. Printed, not asserted (timing depends on the machine).
    let out = dir.join("onset-out");
    let mut client = native_client(&[], &config)
        .args([
            "stream",
            &format!("127.0.0.1:{NATIVE}"),
            "--headless",
            "--app",
            "Onset",
            "--mode",
            "320x240@30",
            "--frames",
            "90",
            "--stop",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let since = std::time::Instant::now();
    while !out.join("frame-00010.ppm").exists() && since.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::write(&trigger, b"").unwrap();
    assert!(client.wait().unwrap().success(), "the onset stream");
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    let what = "punktfunk/1: the app starts its tone → the first audible packet at the client";
    common::onset_figure(&onset, &stats["sound_onset_us"], what, &stats);
    let _ = std::fs::remove_dir_all(&dir);
}
