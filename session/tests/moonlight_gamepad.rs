//! A stock Moonlight client's controller on a real kernel: moonlight-common-c's
//! `LiSendControllerArrivalEvent` makes the host create an Xbox pad over uinput, its
//! `LiSendMultiControllerEvent` presses arrive as evdev events a game reads (the time from
//! the client's call to the event is the input latency BENCHMARKS.md quotes), and a rumble
//! a game plays on the pad reaches the client's rumble callback, then its end. A second,
//! PlayStation controller becomes a DualSense the kernel's driver makes: the client is asked
//! for its motion readings and told its lightbar's colour, and its gyro and touchpad reach
//! the driver's motion-sensor and touchpad devices. The game in the session sees its pad,
//! and only it, in its /dev/input.
//!
//! Needs /dev/uinput and the Python environment `.ci/run` builds: `.ci/run` runs it in
//! `.ci/drm-vm` (Debian's kernel).

mod common;

use common::{client_report, python, start_daemon_configured, target_dir};
use evdev::{EventSummary, FFEffectData, FFEffectKind, FFReplay, FFTrigger, KeyCode};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 31489;
const API_PORT: u16 = 31491;

/// Waits for the client's signal, unless the client has already ended.
fn wait_for(path: &Path, limit: Duration, client: &mut Child, dir: &Path) {
    let since = Instant::now();
    while !path.exists() {
        let ended = client.try_wait().unwrap().is_some();
        if ended || since.elapsed() > limit {
            let _ = client.kill();
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(client.stderr.as_mut().unwrap(), &mut err);
            let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
            panic!("no {} ({}): {err}\n--- daemon log ---\n{log}", path.display(), if ended { "the client ended" } else { "timed out" });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The /dev/input a process running `program` sees (its own view, through /proc).
fn app_input_nodes(program: &str) -> Vec<String> {
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find(|p| {
            std::fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).next().is_some_and(|a| a.ends_with(program.as_bytes())))
        })
        .map(|p| p.path())
        .unwrap_or_else(|| panic!("no {program} runs"));
    let nodes = std::fs::read_dir(pid.join("root/dev/input")).unwrap().flatten();
    nodes.filter_map(|e| e.file_name().into_string().ok()).filter(|n| !n.starts_with('.')).collect()
}

/// CLOCK_MONOTONIC in seconds, the client's `time.monotonic()`.
fn monotonic() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9
}

#[test]
#[ignore = "needs /dev/uinput (.ci/drm-vm)"]
fn a_moonlight_controller_plays_and_rumbles() {
    let python = python().expect("PUNKTFUNK_MOONLIGHT_PYTHON names moonlight-python's interpreter");
    let dir = std::env::temp_dir().join(format!("pf-moonlight-gamepad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let signals = dir.join("signals");
    std::fs::create_dir_all(&signals).unwrap();
    let pattern = target_dir().join("punktfunk-test-pattern").display().to_string();
    // Composited by pixman: this test is about the controller, the GPU path has its own tests
    // here; on the machine's emulated GPU a GLES frame takes ~100 ms, and its GPU-converted
    // frames once stayed black for a whole run (not yet understood).
    let host_toml = "start_pipewire = false\nrenderer = \"pixman\"\n";
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, host_toml, &[pattern, "--color".into(), "3080ff".into()], "");
    let mut client = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moonlight_client.py"))
        .args([PORT.to_string(), API_PORT.to_string(), dir.join("client").display().to_string(), "Input Test".into(), "gamepad".into()])
        .arg(&signals)
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the Moonlight client");

    // The controller arrived: the host made an Xbox pad; a game opens it.
    wait_for(&signals.join("arrived"), Duration::from_secs(300), &mut client, &dir);
    let since = Instant::now();
    let (node, mut pad) = loop {
        if let Some(found) = evdev::enumerate().find(|(_, d)| d.name() == Some("punktfunk Xbox pad 1")) {
            break found;
        }
        assert!(since.elapsed() < Duration::from_secs(20), "no pad was created");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((pad.input_id().vendor(), pad.input_id().product()), (0x045e, 0x02ea));
    // The game in the session sees this pad in its /dev/input, and nothing of the host's.
    let seen = app_input_nodes("punktfunk-test-pattern");
    let event = node.file_name().unwrap().to_str().unwrap();
    assert!(seen.iter().any(|n| n == event), "the session's app sees its pad: {seen:?}");
    assert!(seen.iter().all(|n| n == event || n.starts_with("js")), "and nothing else: {seen:?}");

    // The client presses A 20 times: each press and release reaches the game.
    std::fs::write(signals.join("press"), "").unwrap();
    let mut arrived = Vec::new();
    let since = Instant::now();
    while arrived.len() < 40 {
        assert!(since.elapsed() < Duration::from_secs(60), "only {} of 40 presses and releases arrived", arrived.len());
        let mut fds = [nix::poll::PollFd::new(pad.as_fd(), nix::poll::PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, 100u16).unwrap_or(0) == 0 {
            continue;
        }
        let now = monotonic();
        for event in pad.fetch_events().unwrap() {
            if let EventSummary::Key(_, KeyCode::BTN_SOUTH, value) = event.destructure() {
                assert_eq!(value, i32::from(arrived.len() % 2 == 0), "presses and releases alternate");
                arrived.push(now);
            }
        }
    }
    wait_for(&signals.join("pressed"), Duration::from_secs(30), &mut client, &dir);

    // A game rumbles the pad for 300 ms.
    let effect = FFEffectData {
        direction: 0,
        trigger: FFTrigger::default(),
        replay: FFReplay { length: 300, delay: 0 },
        kind: FFEffectKind::Rumble { strong_magnitude: 0xc000, weak_magnitude: 0x3000 },
    };
    let mut effect = pad.upload_ff_effect(effect).expect("uploading a rumble effect");
    effect.play(1).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // The DualSense: its gyro and touchpad readings reach the driver's devices.
    std::fs::write(signals.join("dualsense"), "").unwrap();
    wait_for(&signals.join("ps-sent"), Duration::from_secs(90), &mut client, &dir);
    let node = |suffix: &str| {
        let since = Instant::now();
        loop {
            let name = |d: &evdev::Device| {
                d.name().is_some_and(|n| n.starts_with("Sony Interactive Entertainment DualSense") && n.ends_with(suffix))
            };
            if let Some((_, d)) = evdev::enumerate().find(|(_, d)| name(d)) {
                return d;
            }
            assert!(since.elapsed() < Duration::from_secs(20), "no DualSense {suffix}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (sensors, touchpad) = (node("Motion Sensors"), node("Touchpad"));
    let since = Instant::now();
    loop {
        let (gyro, touch) = (sensors.get_abs_state().unwrap(), touchpad.get_abs_state().unwrap());
        // The touchpad's single-touch axes follow its first contact.
        let (rx, x) = (gyro[evdev::AbsoluteAxisCode::ABS_RX.0 as usize].value, touch[evdev::AbsoluteAxisCode::ABS_X.0 as usize].value);
        if rx == 90 * 1024 && x == 959 {
            break;
        }
        let sent = std::fs::read_to_string(signals.join("ps-sent")).unwrap_or_default();
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "the DualSense's gyro says {rx}, its touchpad {x}; the client's calls returned {sent}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A game sets the DualSense's adaptive triggers through its hidraw node, as SDL and Steam
    // Input do: the right trigger resists (mode 0x01, from position 2 with strength 8), the
    // left vibrates (0x26).
    let mut report = [0u8; 63];
    report[..2].copy_from_slice(&[0x02, 0x0c]);
    report[11..14].copy_from_slice(&[0x01, 2, 8]);
    report[22..25].copy_from_slice(&[0x26, 5, 7]);
    std::fs::write(dualsense_hidraw(), report).expect("writing the DualSense's output report");
    wait_for(&signals.join("triggers"), Duration::from_secs(30), &mut client, &dir);
    std::fs::write(signals.join("stop"), "").unwrap();
    let out = client_report(&client.wait_with_output().unwrap(), &dir);
    eprintln!("client: {out}");
    assert_eq!(out["arrival"], 0, "the client sent its controller's arrival");
    let rumbles = out["rumbles"].as_array().unwrap();
    assert_eq!(rumbles.first(), Some(&serde_json::json!([0, 0xc000, 0x3000])), "the game's rumble reached the client: {rumbles:?}");
    assert_eq!(rumbles.last(), Some(&serde_json::json!([0, 0, 0])), "and its end: {rumbles:?}");
    assert_eq!(
        (&out["ps_arrival"], &out["ps_motion"], &out["ps_touch"]),
        (&0.into(), &0.into(), &0.into()),
        "the host offers controller touch and motion"
    );
    let leds = out["leds"].as_array().unwrap();
    assert!(leds.contains(&serde_json::json!([1, 0, 0, 128])), "the driver's blue lightbar reached the client: {leds:?}");
    let effects = serde_json::json!([1, 0x0c, 0x26, 0x01, [5, 7, 0, 0, 0, 0, 0, 0, 0, 0], [2, 8, 0, 0, 0, 0, 0, 0, 0, 0]]);
    assert_eq!(out["trigger_effects"][0], effects, "the game's trigger effects reached the client");
    let motion = out["motion_requests"].as_array().unwrap();
    assert!(motion.contains(&serde_json::json!([1, 2, 100])) && motion.contains(&serde_json::json!([1, 1, 100])), "{motion:?}");

    // Input latency: the client's call to the event a game reads (the same clock).
    let sent: Vec<f64> = out["sent"].as_array().unwrap().iter().filter_map(serde_json::Value::as_f64).collect();
    let mut latency_us: Vec<f64> = sent.iter().zip(&arrived).map(|(s, a)| (a - s) * 1e6).collect();
    assert!(latency_us.iter().all(|l| *l > 0.0), "an event read before it was sent: {latency_us:?}");
    latency_us.sort_by(f64::total_cmp);
    let at = |q: f64| latency_us[((latency_us.len() - 1) as f64 * q).round() as usize];
    eprintln!("controller input, client call → evdev event: p50 {:.0} µs, p99 {:.0} µs ({} events)", at(0.5), at(0.99), latency_us.len());
    drop(effect);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The DualSense's hidraw node (the one a game writes its output reports to).
fn dualsense_hidraw() -> PathBuf {
    let since = Instant::now();
    loop {
        let found = std::fs::read_dir("/sys/class/hidraw").into_iter().flatten().flatten().find(|e| {
            std::fs::read_to_string(e.path().join("device/uevent"))
                .is_ok_and(|u| u.contains("HID_NAME=Sony Interactive Entertainment DualSense"))
        });
        if let Some(e) = found {
            return Path::new("/dev").join(e.file_name());
        }
        assert!(since.elapsed() < Duration::from_secs(20), "no hidraw node for the DualSense");
        std::thread::sleep(Duration::from_millis(20));
    }
}
