//! `punktfunk serve` with a stock Moonlight client (moonlight-python 0.3.0, which bundles
//! moonlight-common-c): pairing with a PIN (a wrong one first), the app list, a launch at
//! 1280x720@60 H.264 into a real headless session running the test-pattern app, decoded
//! frames of the colour it draws, keyboard/mouse/text input that reaches the app, and quit.
//!
//! Needs the Python environment `.ci/run` builds: `PUNKTFUNK_MOONLIGHT_PYTHON` names its
//! interpreter. Without it the test says so and passes only outside CI.

mod common;

use common::{client_report, python, start_daemon_configured, target_dir};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Base port well away from a real host's 47989, so a host running on the machine is fine.
const PORT: u16 = 18989;
const API_PORT: u16 = 18991;
const COLOUR: [i64; 3] = [0x30, 0x80, 0xff];

/// Fills the control port with half-open ENet peers, as any stranger could: CONNECTs with
/// connect data no launch handed out, never completed (the squatter is never serviced, so
/// it never acknowledges the host's answer). The host must keep its slots for real clients.
fn half_open_peers(port: u16, count: usize) -> rusty_enet::Host<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut squatter = rusty_enet::Host::new(socket, rusty_enet::HostSettings { peer_limit: count, ..Default::default() }).unwrap();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    for n in 0..count {
        squatter.connect(to, 0x30, 0x5eed_0000 + n as u32).unwrap();
    }
    squatter.flush();
    squatter
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
    let (prep, undo) = (dir.join("prep-ran"), dir.join("undo-ran"));
    let short = serde_json::to_string(&[pattern.display().to_string(), "--color".into(), "ff8000".into(), "--frames".into(), "240".into()])
        .unwrap();
    let plain = serde_json::to_string(&[pattern.display().to_string(), "--color".into(), "3080ff".into()]).unwrap();
    let prep_toml = format!(
        "prep = [{{ do = [\"touch\", {:?}], undo = [\"touch\", {:?}] }}]\n\n[[apps]]\ntitle = \"Short\"\ncommand = {short}\n\n[[apps]]\ntitle = \"Pattern\"\ncommand = {plain}\n\n[[apps]]\ntitle = \"Missing\"\ncommand = [\"/nonexistent/punktfunk-game\"]\n\n[[apps]]\ntitle = \"Quitter\"\ncommand = [\"false\"]\n",
        prep.display().to_string(),
        undo.display().to_string()
    );
    // HEVC and AV1 offered without a GPU too, so that they and 10-bit video can be tested.
    let daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, "software_hevc = true\nsoftware_av1 = true\n", &app, &prep_toml);

    // As many half-open peers as ENet has slots, and more: the client still connects.
    let _squatter = half_open_peers(PORT + 10, 32);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py");
    let output = Command::new(&python)
        .arg(&script)
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into()])
        // `punktfunk pair` finds the daemon through the same configuration.
        .env("PUNKTFUNK_BIN", env!("CARGO_BIN_EXE_punktfunk"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("running the Moonlight client");
    let out = client_report(&output, &dir);
    eprintln!("client saw: {out:#}");

    // Identity and the negative cases.
    assert_eq!(out["serverinfo"]["appversion"], "7.1.431.-1");
    assert_eq!(out["serverinfo"]["codecs"].as_i64().unwrap() & 1, 1, "H.264 offered");
    assert_eq!(out["unpaired_applist"], 401);
    assert_eq!(out["unpaired_launch"], 401);
    assert_ne!(out["wrong_pin"]["client"], "paired");
    assert_eq!(out["wrong_pin"]["status"], 403, "the host reports the failed pairing to whoever gave the PIN");
    assert_eq!(out["right_pin"]["client"], "paired");
    assert_eq!(out["right_pin"]["cli_rc"], 0, "punktfunk pair: {}", out["right_pin"]);
    assert_eq!(out["right_pin"]["cli_out"], "pairing roth at 127.0.0.1…\npaired with roth at 127.0.0.1");
    // A third party's /unpair and garbage stage between the pairing's stages changed nothing.
    assert_eq!(out["meddled"].as_array().map(Vec::len), Some(2), "the third party was heard: {}", out["meddled"]);
    assert_eq!(out["paired_serverinfo"], 200);
    assert_eq!(out["apps"], serde_json::json!(["Desktop", "Input Test", "Short", "Pattern", "Missing", "Quitter"]));

    // Video: 90 decoded frames in order, of the colour the app draws.
    assert_eq!(out["frames"], 90);
    // Latency from the app's draw, read from the pattern's stamp in each decoded picture:
    // printed, not asserted (timing depends on the machine); the stamps must decode.
    let latency = &out["latency_us"];
    common::figure(&format!("latency (µs) Moonlight 1280x720@60 H.264, from the app's draw: {latency}"));
    assert!(latency["draw_to_decoded"]["n"].as_i64().unwrap_or(0) >= 80, "the pattern's stamps decode from the stream: {latency}");
    // Causality, which checks the clock conversion: a frame's first datagram arrives after
    // the app drew it and before the frame is decoded.
    let (wire, decoded) = (latency["draw_to_first_datagram"]["p50"].as_i64(), latency["draw_to_decoded"]["p50"].as_i64());
    assert!(matches!((wire, decoded), (Some(w), Some(d)) if 0 < w && w <= d), "draw → first datagram within draw → decoded: {latency}");
    // A sealed RTSP request replayed: every answer under the key has its own IV.
    let seqs = out["rtsp_replay_seqs"].as_array().expect("the replayed RTSP request was answered");
    assert!(seqs.len() == 2 && seqs[0] != seqs[1], "two sealed RTSP answers share an IV: {seqs:?}");
    let numbers: Vec<i64> = out["frame_numbers"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "frame numbers increase: {numbers:?}");
    let near =
        |v: &serde_json::Value, want: [i64; 3]| v.as_array().unwrap().iter().zip(want).all(|(a, b)| (a.as_i64().unwrap() - b).abs() < 40);
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

    // Leaving without quitting keeps the session; the client resumes it at its own mode.
    assert_eq!(out["currentgame_after_leave"], 2);
    assert_eq!(out["frames_after_resume"], 90);
    // The same figures at 30 fps (the resumed stream: a live mode change, its first key frame
    // and the encoder's start included, as at 60 fps).
    let latency = &out["latency_us_30fps"];
    common::figure(&format!("latency (µs) Moonlight 1024x576@30 H.264, from the app's draw: {latency}"));
    let (wire, decoded) = (latency["draw_to_first_datagram"]["p50"].as_i64(), latency["draw_to_decoded"]["p50"].as_i64());
    assert!(matches!((wire, decoded), (Some(w), Some(d)) if 0 < w && w <= d), "draw → first datagram within draw → decoded: {latency}");
    assert_eq!(out["resume_shape"], serde_json::json!([576, 1024, 3]), "the output follows the resuming client's mode");

    // Quit: the session is gone, and so is the app; its prep command ran, then its undo.
    assert_eq!(out["currentgame_after_quit"], 0);
    assert!(prep.exists(), "prep command did not run");
    let deadline = Instant::now() + Duration::from_secs(5);
    let app_alive = || {
        std::fs::read_dir("/proc").unwrap().filter_map(Result::ok).any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.windows(9).any(|w| w == b"input.log") && String::from_utf8_lossy(&c).contains(&dir.display().to_string()))
        })
    };
    while app_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!app_alive(), "the app outlived /cancel");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !undo.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(undo.exists(), "undo command did not run after the session");
    // An app that exits on its own ends the stream gracefully and frees the host.
    let short = &out["short_app"];
    assert_eq!(short["terminated"], true, "{short}");
    assert_eq!(short["error"], 0, "graceful termination: {short}");
    assert!(short["seconds"].as_f64().unwrap() < 15.0, "{short}");
    assert_eq!(out["currentgame_after_exit"], 0);

    // 10 bits: HEVC Main10 offered, asked for, and decoded as 10-bit pictures of the app.
    assert_eq!(out["serverinfo"]["codecs"].as_i64().unwrap() & 0x300, 0x300, "HEVC and HEVC Main10 offered");
    let main10 = &out["main10"];
    assert_eq!((main10["pix_fmt"].as_str(), main10["profile"].as_str()), (Some("yuv420p10le"), Some("Main 10")), "{main10}");
    assert!(near(&main10["band"], COLOUR), "10-bit band colour {main10}");
    // moonlight-common-c asks for BT.601 limited range unless told otherwise; the host says
    // what it streams.
    assert_eq!(main10["host_says"], "HEVC, 10-bit 4:2:0, BT.601 limited range");
    // 4:4:4: offered, asked for, decoded with full-resolution chroma.
    assert_eq!(out["serverinfo"]["codecs"].as_i64().unwrap() & 0x40000, 0x40000, "H.264 4:4:4 offered");
    let yuv444 = &out["yuv444"];
    assert_eq!(yuv444["pix_fmt"], "yuv444p", "{yuv444}");
    assert!(near(&yuv444["band"], COLOUR), "4:4:4 band colour {yuv444}");
    assert_eq!(yuv444["host_says"], "H.264, 8-bit 4:4:4, BT.601 limited range");
    // AV1: offered, asked for, decoded.
    assert_eq!(out["serverinfo"]["codecs"].as_i64().unwrap() & 0x30000, 0x30000, "AV1 8 and 10-bit offered");
    let av1 = &out["av1"];
    assert_eq!((av1["codec"].as_str(), av1["pix_fmt"].as_str()), (Some("libdav1d"), Some("yuv420p")), "{av1}");
    assert!(near(&av1["band"], COLOUR), "AV1 band colour {av1}");
    assert_eq!(av1["host_says"], "AV1, 8-bit 4:2:0, BT.601 limited range");
    assert_eq!(av1["video_stats"]["packetCountInvalid"], 0, "{av1}");

    // Apps that cannot run: /launch says why (Moonlight shows the message), and nothing runs.
    let (missing, quitter) = (&out["missing_launch"], &out["quitter_launch"]);
    assert_eq!(missing["status"], 500, "{missing}");
    assert!(missing["message"].as_str().unwrap().contains("Missing did not start: cannot start /nonexistent/punktfunk-game"), "{missing}");
    assert_eq!(quitter["status"], 500, "{quitter}");
    assert!(quitter["message"].as_str().unwrap().contains("Quitter exited at once (exit status: 1)"), "{quitter}");
    assert_eq!(out["currentgame_after_failures"], 0);

    // The paired client is listed, and removing it unpairs it.
    let cli = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_punktfunk"))
            .args(args)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_STATE_HOME", dir.join("state"))
            .output()
            .unwrap();
        assert!(o.status.success(), "punktfunk {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(cli(&["clients"]).contains("roth"));
    assert_eq!(cli(&["clients", "remove", "roth"]).trim(), "removed roth");
    assert_eq!(cli(&["clients"]).trim(), "no paired clients");

    let video = &out["status_after_quit"]["last_video"];
    assert!(video["frames"].as_u64().unwrap() >= 10, "{video}");
    common::stages_figure("Moonlight 1024x576@30 (the resumed stream)", video);
    eprintln!(
        "figures: /launch to first decoded frame {} ms (resume {} ms); host latency frame ready → last packet p50 {} µs, p99 {} µs over {} frames",
        out["launch_to_first_frame_ms"],
        out["resume_first_frame_ms"],
        video["host_latency_us_p50"],
        video["host_latency_us_p99"],
        video["frames"]
    );
    drop(daemon);
}
