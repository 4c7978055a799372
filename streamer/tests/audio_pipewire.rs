//! Session audio against a real PipeWire (daemons started here): apps in a session play into
//! its sink and nobody else's, 5.1 keeps its channel order through Opus and the GameStream
//! packets, the microphone reaches a recorder, and a removed sink comes back.
//!
//! One test function: PipeWire is found through the process environment, which is set once
//! before any thread starts.

#[path = "support/pipewire.rs"]
mod support;

use punktfunk_core::gamestream::audio::{AudioDepacketizer, AudioEvent, AudioPacketizer};
use punktfunk_streamer::audio::encoder::AudioEncoder;
use punktfunk_streamer::audio::layout::{OpusLayout, client_layout, surround_params};
use punktfunk_streamer::audio::queue::{PcmQueue, Pop};
use punktfunk_streamer::audio::{Channels, SessionAudio};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::{PipeWire, RATE, clean_windows, dominant, tone_file};

const READY: Duration = Duration::from_secs(5);

/// Plays `file` (f32 interleaved, `channels` in Moonlight order) into the session's sink
/// the way a session app would: through pipewire-pulse and the session's environment.
fn play(pw: &PipeWire, audio: &SessionAudio, file: &Path, channels: Channels, repeat: bool) -> Child {
    let map = ["front-left", "front-right", "front-center", "lfe", "rear-left", "rear-right", "side-left", "side-right"]
        [..channels.count()]
        .join(",");
    let pacat = format!(
        "pacat --playback --raw --format=float32le --rate={RATE} --channels={} --channel-map={map} '{}'",
        channels.count(),
        file.display()
    );
    let script = if repeat { format!("while :; do {pacat}; done") } else { pacat };
    pw.command("sh").args(["-c", &script]).envs(audio.env()).stdout(Stdio::null()).process_group(0).spawn().unwrap()
}

/// Enough clean windows to tell the sound apart: a quarter of them, at least 5 (a leak or
/// a mix present most of the time fails; clicks from a loaded machine do not).
fn enough(clean: usize, windows: usize) -> bool {
    clean >= 5 && clean * 4 >= windows
}

fn stop(mut child: Child) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

use std::os::unix::process::CommandExt;

/// Samples from the queue for `duration` once sound arrived (waiting up to 10 s for it).
fn record(q: &PcmQueue, duration: Duration) -> Vec<f32> {
    let (mut out, deadline) = (Vec::new(), Instant::now() + Duration::from_secs(10));
    let mut started: Option<Instant> = None;
    while started.is_none_or(|s| s.elapsed() < duration) {
        assert!(Instant::now() < deadline || started.is_some(), "no sound reached the sink");
        match q.pop(Duration::from_millis(100)) {
            Pop::Chunk(c) if started.is_some() || c.samples.iter().any(|s| s.abs() > 0.01) => {
                started.get_or_insert_with(Instant::now);
                out.extend(c.samples);
            }
            Pop::Closed => panic!("queue closed"),
            _ => {}
        }
    }
    out
}

#[test]
fn session_audio_with_a_real_pipewire() {
    let dir = std::env::temp_dir().join(format!("punktfunk-audio-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pw = PipeWire::start(&dir);
    for (k, v) in pw.env() {
        // SAFETY: no other thread of this test binary exists yet or reads the environment.
        unsafe { std::env::set_var(k, v) };
    }

    two_sessions_hear_only_their_own_apps(&pw, &dir);
    surround_keeps_its_channel_order_through_opus_and_the_wire(&pw, &dir);
    the_microphone_reaches_a_recorder_in_the_session(&pw, &dir);
    a_removed_sink_comes_back_and_sound_resumes(&pw, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

fn two_sessions_hear_only_their_own_apps(pw: &PipeWire, dir: &Path) {
    let a = SessionAudio::start("test-a", Channels::Stereo, READY).unwrap();
    let b = SessionAudio::start("test-b", Channels::Stereo, READY).unwrap();
    let names = pw.node_names();
    for n in ["punktfunk.test-a.sink", "punktfunk.test-a.mic", "punktfunk.test-b.sink"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
    let (qa, qb) = (a.subscribe(), b.subscribe());
    let (ta, tb) = (dir.join("440.raw"), dir.join("1000.raw"));
    tone_file(&ta, &[440.0, 440.0], 10.0);
    tone_file(&tb, &[1000.0, 1000.0], 10.0);
    let (pa, pb) = (play(pw, &a, &ta, Channels::Stereo, false), play(pw, &b, &tb, Channels::Stereo, false));
    let (ra, rb) = (record(&qa, Duration::from_secs(1)), record(&qb, Duration::from_secs(1)));
    // The sink asks for a 5 ms graph cycle (the capture side of the latency); PipeWire
    // rounds down to a power of two.
    let Pop::Chunk(c) = qa.pop(Duration::from_secs(1)) else { panic!("no more sound") };
    eprintln!("graph cycle: {} frames", c.samples.len() / 2);
    assert!((1..=240).contains(&(c.samples.len() / 2)), "a cycle of {} frames is longer than 5 ms", c.samples.len() / 2);
    stop(pa);
    stop(pb);
    let freqs = [440.0, 1000.0];
    let (fa, margin_a) = dominant(&ra, 2, 0, &freqs);
    let (fb, margin_b) = dominant(&rb, 2, 1, &freqs);
    // 50 ms windows: whole cycles of both tones.
    let (clean_a, windows_a) = clean_windows(&ra, 2, RATE as usize / 20, &freqs, &[440.0, 440.0], 100.0);
    let (clean_b, windows_b) = clean_windows(&rb, 2, RATE as usize / 20, &freqs, &[1000.0, 1000.0], 100.0);
    eprintln!(
        "session a hears {fa} Hz ({margin_a:.0}x the other tone, {clean_a} of {windows_a} windows clean), \
         b hears {fb} Hz ({margin_b:.0}x, {clean_b} of {windows_b})"
    );
    assert!(
        enough(clean_a, windows_a) && enough(clean_b, windows_b),
        "the other session's tone leaked in: {clean_a} of {windows_a}, {clean_b} of {windows_b} windows clean"
    );
    drop(a);
    let names = pw.node_names();
    assert!(!names.iter().any(|n| n.starts_with("punktfunk.test-a.")), "a session's nodes leave with it: {names:?}");
}

/// Moonlight's channel order FL FR FC LFE RL RR, one tone each, played as 5.1 by an app,
/// captured, encoded at the normal-quality layout, packetized with encryption and FEC,
/// depacketized and decoded with the layout a Moonlight client derives from DESCRIBE.
fn surround_keeps_its_channel_order_through_opus_and_the_wire(pw: &PipeWire, dir: &Path) {
    let freqs = [300.0, 500.0, 700.0, 900.0, 1100.0, 1300.0];
    let session = SessionAudio::start("test-51", Channels::Surround51, READY).unwrap();
    let q = session.subscribe();
    let file = dir.join("51.raw");
    tone_file(&file, &freqs, 10.0);
    let app = play(pw, &session, &file, Channels::Surround51, false);
    let pcm = record(&q, Duration::from_millis(1500));
    stop(app);

    let key = ([7u8; 16], 0x1234_5678);
    let mut encoder = AudioEncoder::new(OpusLayout::new(Channels::Surround51, false), 5).unwrap();
    let mut packetizer = AudioPacketizer::new(5, Some(key));
    let mut depacketizer = AudioDepacketizer::new(5, Some(key));
    let (streams, coupled, mapping) = client_layout(&surround_params(), Channels::Surround51, false).unwrap();
    let mut decoder = opus::MSDecoder::new(RATE, streams, coupled, &mapping).unwrap();
    let mut decoded = Vec::new();
    for frame in pcm.chunks_exact(encoder.frame_samples()) {
        let opus = encoder.encode(frame).unwrap().to_vec();
        let mut datagrams = Vec::new();
        packetizer.push(&opus, |d| datagrams.push(d.to_vec())).unwrap();
        for d in datagrams {
            depacketizer
                .push(&d, |event| {
                    if let AudioEvent::Packet { opus, .. } = event {
                        let mut out = vec![0f32; 240 * 6];
                        let n = decoder.decode_float(opus, &mut out, false).unwrap();
                        decoded.extend_from_slice(&out[..n * 6]);
                    }
                })
                .unwrap();
        }
    }
    assert!(decoded.len() > RATE as usize * 6, "decoded {} samples", decoded.len());
    let decoded = &decoded[RATE as usize / 10 * 6..];
    for (channel, want) in freqs.iter().enumerate() {
        let (got, margin) = dominant(decoded, 6, channel, &freqs);
        eprintln!("5.1 channel {channel}: {got} Hz ({margin:.0}x the next tone), {want} Hz played");
    }
    // 20 ms windows: whole cycles of every tone. Enough of them with every channel clean
    // at once (on a quiet machine, all) shows no channel mixes in another.
    let (clean, windows) = clean_windows(decoded, 6, RATE as usize / 50, &freqs, &freqs, 20.0);
    eprintln!("5.1: {clean} of {windows} windows with every channel clean");
    assert!(enough(clean, windows), "channels mix: {clean} of {windows} windows clean");
}

/// A client's Opus packets (a 600 Hz tone, 20 ms each, in real time) reach an app that
/// records from the session's default source.
fn the_microphone_reaches_a_recorder_in_the_session(pw: &PipeWire, dir: &Path) {
    let session = SessionAudio::start("test-mic", Channels::Stereo, READY).unwrap();
    let out = dir.join("mic.raw");
    let recorder = pw
        .command("parecord")
        .args(["--raw", "--format=float32le", &format!("--rate={RATE}"), "--channels=2", "--latency-msec=10"])
        .arg(&out)
        .envs(session.env())
        .spawn()
        .unwrap();
    let mut enc = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let start = Instant::now();
    for p in 0..100u32 {
        let tone: Vec<f32> = (0..960).map(|i| ((p * 960 + i) as f32 * 600.0 / RATE as f32 * std::f32::consts::TAU).sin() * 0.5).collect();
        session.mic().push_opus(&enc.encode_vec_float(&tone, 4000).unwrap()).unwrap();
        std::thread::sleep((start + Duration::from_millis(20 * u64::from(p + 1))).saturating_duration_since(Instant::now()));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(recorder.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let _ = recorder.wait_with_output();
    let bytes = std::fs::read(&out).unwrap();
    let pcm: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let (got, margin) = dominant(&pcm, 2, 0, &[300.0, 600.0, 1000.0]);
    eprintln!("the recorder heard {got} Hz ({margin:.0}x), {} ms recorded", pcm.len() / 96);
    assert!(pcm.len() > RATE as usize, "the recorder got {} samples", pcm.len());
    assert_eq!(got, 600.0);
    assert!(margin > 100.0);
}

/// Someone removes the sink mid-stream (`pw-cli destroy`): it is created again under the
/// same name, and an app playing into it is heard again.
fn a_removed_sink_comes_back_and_sound_resumes(pw: &PipeWire, dir: &Path) {
    let session = SessionAudio::start("test-recover", Channels::Stereo, READY).unwrap();
    let q = session.subscribe();
    let file = dir.join("800.raw");
    tone_file(&file, &[800.0, 800.0], 2.0);
    let app = play(pw, &session, &file, Channels::Stereo, true);
    record(&q, Duration::from_millis(300));
    let id = session.sink_node().id().unwrap();
    assert!(pw.command("pw-cli").args(["destroy", &id.to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.sink_node().reconnects() == 0 || session.sink_node().id().is_none() {
        assert!(Instant::now() < deadline, "the sink was not recreated");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Drain what was captured before the removal, then listen for the tone again.
    while let Pop::Chunk(_) = q.pop(Duration::ZERO) {}
    let pcm = record(&q, Duration::from_millis(500));
    eprintln!("sink {id} removed; back as {:?}, and the tone with it", session.sink_node().id());
    stop(app);
    assert_eq!(dominant(&pcm, 2, 0, &[400.0, 800.0, 1600.0]).0, 800.0);
}
