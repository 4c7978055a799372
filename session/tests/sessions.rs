//! Several clients at once, each its own session: two stock Moonlight clients (moonlight-python,
//! two identities on one address) stream two apps at two modes side by side, each decoding
//! only its own app's pixels and sound, each one's input reaching only its own app (and not
//! even that once the host lets it only watch); a third client finds the host full, cannot
//! resume or end the others' sessions, and sees and launches only the apps it may; a punktfunk/1
//! client streams beside them once there is room; quitting one session leaves the others
//! streaming.
//!
//! Needs the Python environment `.ci/run` builds (`PUNKTFUNK_MOONLIGHT_PYTHON`).

mod common;
#[path = "../../streamer/tests/support/pipewire.rs"]
mod tones;

use common::{
    client_report, host_cli, output_text, pair_native, private_runtime, python, start_daemon_configured, stream_native, target_dir,
};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 30989;
const API_PORT: u16 = 30991;
/// `common` puts punktfunk/1 at port + 50.
const NATIVE: u16 = PORT + 50;

/// An app of the test pattern in `colour` that plays a tone of `hz` and logs its input.
fn app(dir: &Path, title: &str, colour: &str, hz: f32) -> String {
    let tone = dir.join(format!("{title}.raw"));
    tones::tone_file(&tone, &[hz, hz], 2.0);
    let play = format!(
        "while pacat --playback --raw --format=float32le --rate=48000 --channels=2 '{}'; do :; done & exec '{}' --color {colour} --input-log '{}'",
        tone.display(),
        target_dir().join("punktfunk-test-pattern").display(),
        dir.join(format!("{title}.input")).display()
    );
    format!("[[apps]]\ntitle = {title:?}\ncommand = {}\n", serde_json::to_string(&["sh", "-c", &play]).unwrap())
}

/// A Moonlight client (its own identity in `dir/NAME`) streaming `app` at `mode` while others
/// do: `moonlight_client.py beside`.
fn beside(python: &Path, dir: &Path, name: &str, app: &str, mode: &str) -> Child {
    Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([&PORT.to_string(), &API_PORT.to_string(), &dir.join(name).display().to_string(), app, "beside", mode])
        .arg(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the Moonlight client")
}

/// Waits for the file a client creates to say how far it got.
fn signal(dir: &Path, name: &str, what: &str, limit: Duration) {
    let path = dir.join(format!("{name}.{what}"));
    let since = Instant::now();
    while !path.exists() {
        assert!(since.elapsed() < limit, "{name} never got to `{what}`; daemon log:\n{}", daemon_log(dir));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn daemon_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
}

fn near(v: &serde_json::Value, want: [i64; 3]) -> bool {
    v.as_array().is_some_and(|a| a.iter().zip(want).all(|(a, b)| (a.as_i64().unwrap_or(-999) - b).abs() < 40))
}

/// The tone a client heard: most of its 100 ms windows at `hz`.
fn hears(out: &serde_json::Value, hz: f64) -> bool {
    let windows: Vec<f64> =
        out["audio_hz"].as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
    windows.iter().filter(|w| (*w - hz).abs() <= 10.0).count() >= 8
}

#[test]
fn clients_stream_their_own_sessions_side_by_side() {
    let Some(python) = python() else {
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON (see .ci/run)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pf-sessions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    private_runtime(&dir);
    let apps = app(&dir, "Blue", "3080ff", 440.0) + &app(&dir, "Orange", "ff8000", 660.0);
    let pattern = vec![target_dir().join("punktfunk-test-pattern").display().to_string()];
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "start_pipewire = true\nmax_sessions = 2\n", &pattern, &apps);

    // Ann streams Blue; then Ben, from the same address with his own identity, streams
    // Orange at another mode and presses a key in it.
    let ann = beside(&python, &dir, "ann", "Blue", "640x360x30");
    signal(&dir, "ann", "streaming", Duration::from_secs(120));
    std::fs::write(dir.join("ben.press"), "10").unwrap();
    let ben = beside(&python, &dir, "ben", "Orange", "480x272x30");
    signal(&dir, "ben", "pressed", Duration::from_secs(120));

    // A stranger pings both sessions' video ports with a payload of its own: neither stream
    // turns to it (each latches only its own client's pings).
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for port in [PORT + 9, PORT + 12] {
        stranger.send_to(b"0123456789ABCDEF\0\0\0\x01", ("127.0.0.1", port)).unwrap();
    }
    stranger.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    assert!(stranger.recv(&mut [0; 2048]).is_err(), "a stream sent its video to a stranger's ping");

    // Both run: a third client is told the host is full, and cannot resume or end theirs.
    let probe = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([&PORT.to_string(), &API_PORT.to_string(), &dir.join("cy").display().to_string(), "Blue", "probe"])
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .unwrap();
    let cy = client_report(&probe, &dir);
    eprintln!("cy saw: {cy}");
    assert_eq!(cy["pair"]["client"], "paired");
    assert_eq!(cy["currentgame"], 0, "another client's session is not Cy's to resume");
    assert_eq!(cy["launch"], 503, "two sessions run and max_sessions is 2: busy");
    assert_eq!(cy["resume"], 503, "nothing of Cy's to resume");
    assert_eq!(cy["permit_unknown_app"], 400);
    assert_eq!(cy["permit"], 200);
    assert_eq!(cy["apps_permitted"], serde_json::json!(["Blue"]), "a client sees the apps it may launch");
    assert_eq!(cy["launch_forbidden"], 403, "and launches no other");
    assert_eq!(cy["currentgame_others"], 3, "a client that may act on others' sessions sees the oldest");
    let sessions = cy["status"]["sessions"].as_array().expect("status lists the sessions").clone();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let modes: Vec<&str> = sessions.iter().map(|s| s["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["640x360@30", "480x272@30"]);
    let apps: Vec<&str> = sessions.iter().map(|s| s["app_title"].as_str().unwrap()).collect();
    assert_eq!(apps, ["Blue", "Orange"]);
    for s in &sessions {
        assert!(s["live"]["stats"]["frames"].as_u64().unwrap() > 0, "each session's last second is reported while it sends: {s}");
    }
    let status = output_text(&host_cli(&[], &dir).arg("status").output().unwrap());
    assert!(status.contains("Blue (app 3)") && status.contains("Orange (app 4)"), "{status}");
    eprintln!("punktfunk status:\n{status}");
    assert!(status.contains("  sending: "), "{status}");

    // Ann may only watch now: her key press is dropped.
    let ann_fingerprint = std::fs::read_to_string(dir.join("ann.fingerprint")).unwrap();
    let permit = host_cli(&[], &dir).args(["clients", "permit", &ann_fingerprint[..16], "--view-only", "true"]).output().unwrap();
    assert!(permit.status.success(), "{}", output_text(&permit));
    let clients = output_text(&host_cli(&[], &dir).arg("clients").output().unwrap());
    assert!(clients.contains(&format!("{}  roth  (every app; view only)", &ann_fingerprint[..16])), "{clients}");
    std::fs::write(dir.join("ann.press"), "3").unwrap();
    signal(&dir, "ann", "pressed", Duration::from_secs(30));

    // Ben quits; Ann streams on.
    std::fs::write(dir.join("ben.until"), "").unwrap();
    let ben = client_report(&ben.wait_with_output().unwrap(), &dir);
    eprintln!("ben saw: {ben}");

    // A punktfunk/1 client takes the free place, beside Ann.
    let native = dir.join("dee");
    let (c, h) = pair_native(&[], &dir, &native, NATIVE, "4321", "4321");
    assert!(c.status.success() && h.status.success(), "client: {}\nhost: {}", output_text(&c), output_text(&h));
    let stats = stream_native(
        &[],
        &dir,
        &native,
        NATIVE,
        &["--app", "Input Test", "--mode", "320x240@30", "--frames", "20", "--stop"],
        &dir.join("dee-out"),
    );
    assert_eq!(stats["frames_lost"], 0, "{stats}");
    assert!(dir.join("dee-out/frame-00020.ppm").exists(), "{stats}");

    std::fs::write(dir.join("ann.until"), "").unwrap();
    let ann = client_report(&ann.wait_with_output().unwrap(), &dir);
    eprintln!("ann saw: {ann}");

    // Each decoded only its own app, at its own mode, and heard only its own tone.
    let (blue, orange) = ([0x30, 0x80, 0xff], [0xff, 0x80, 0x00]);
    assert!(near(&ann["band_before"], blue), "Ann sees {}", ann["band_before"]);
    assert!(ann["bands"].as_array().unwrap().iter().all(|b| near(b, blue)), "Ann saw something else: {}", ann["bands"]);
    assert_eq!(ann["shapes"], serde_json::json!([[360, 640, 3]]));
    assert!(near(&ben["band_before"], orange), "Ben sees {}", ben["band_before"]);
    assert_eq!(ben["shapes"], serde_json::json!([[272, 480, 3]]));
    assert!(hears(&ann, 440.0), "Ann's app plays 440 Hz; she heard {}", ann["audio_hz"]);
    assert!(hears(&ben, 660.0), "Ben's app plays 660 Hz; he heard {}", ben["audio_hz"]);

    // Ann's key, sent while she may only watch, changed nothing.
    assert!(near(&ann["band_after_key"], blue), "Ann's dropped key flipped her app: {}", ann["band_after_key"]);

    // Ben's key reached Ben's app (its colour flipped), and only it.
    assert_eq!(ben["send_key"], serde_json::json!([0, 0]));
    assert!(near(&ben["band_after_key"], orange.map(|c| 255 - c)), "after Ben's key: {}", ben["band_after_key"]);
    let log = |title: &str| std::fs::read_to_string(dir.join(format!("{title}.input"))).unwrap_or_default();
    assert!(log("Orange").lines().any(|l| l.starts_with("key 30 down")), "Ben's app never saw his key:\n{}", log("Orange"));
    assert!(!log("Blue").lines().any(|l| l.starts_with("key ")), "a key reached Ann's app:\n{}", log("Blue"));

    // Ann kept streaming through Ben's quit and Dee's stream: 30 frames after both.
    assert_eq!(ann["frames_after_until"], 30, "{ann}");
    assert_eq!(ann["video_stats"]["packetCountInvalid"], 0);
    let idle = output_text(&host_cli(&[], &dir).arg("status").output().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = idle;
    while !status.contains("idle") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        status = output_text(&host_cli(&[], &dir).arg("status").output().unwrap());
    }
    assert!(status.contains("idle"), "every session ended: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
