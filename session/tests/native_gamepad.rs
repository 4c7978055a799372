//! A punktfunk/1 client's own controller on a real kernel: a pad plugged into the client's
//! machine (made here over uinput, an Xbox One S as the kernel's xpad shows it) is read by
//! `punktfunk-client` through gilrs and becomes the host's Xbox pad. Its presses and stick
//! reach the events a game reads (the time from the press on the client's pad to the
//! event on the host's is the input latency BENCHMARKS.md quotes), a rumble a game plays on
//! the host's pad plays on the client's pad and stops when the game's effect ends,
//! unplugging the client's pad removes the host's, and the client's leaving removes the
//! pads it brought.
//!
//! Needs /dev/uinput: `.ci/run` runs it in `.ci/drm-vm` (Debian's kernel).

mod common;

use common::{native_client, start_daemon_configured, target_dir};
use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode, AttributeSet, EventSummary, EventType, FFEffectCode, FFEffectData, FFEffectKind, FFReplay, FFTrigger,
    InputEvent, KeyCode, UInputCode, UinputAbsSetup,
};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PORT: u16 = 31589;
const API_PORT: u16 = 31591;
const HOST_PAD: &str = "punktfunk Xbox pad 1";

/// The pad on the client's machine, and the rumble levels (strong, weak) the client's
/// uploads asked of it, in order.
struct LocalPad {
    device: Arc<Mutex<VirtualDevice>>,
    rumbles: Arc<Mutex<Vec<(u16, u16)>>>,
    done: Arc<std::sync::atomic::AtomicBool>,
    service: Option<std::thread::JoinHandle<()>>,
}

impl LocalPad {
    fn plug() -> Self {
        let keys: AttributeSet<KeyCode> = [
            KeyCode::BTN_SOUTH,
            KeyCode::BTN_EAST,
            KeyCode::BTN_NORTH,
            KeyCode::BTN_WEST,
            KeyCode::BTN_TL,
            KeyCode::BTN_TR,
            KeyCode::BTN_SELECT,
            KeyCode::BTN_START,
            KeyCode::BTN_MODE,
            KeyCode::BTN_THUMBL,
            KeyCode::BTN_THUMBR,
        ]
        .into_iter()
        .collect();
        // What the kernel's memoryless force feedback (xpad's) offers: rumble, and the
        // periodic waveforms and gain it emulates, which gilrs looks for.
        let ff: AttributeSet<FFEffectCode> = [
            FFEffectCode::FF_RUMBLE,
            FFEffectCode::FF_PERIODIC,
            FFEffectCode::FF_SQUARE,
            FFEffectCode::FF_TRIANGLE,
            FFEffectCode::FF_SINE,
            FFEffectCode::FF_GAIN,
        ]
        .into_iter()
        .collect();
        let mut builder = VirtualDevice::builder()
            .unwrap()
            .name("Test Xbox pad on the client")
            .input_id(evdev::InputId::new(evdev::BusType::BUS_USB, 0x045e, 0x02ea, 0x0301))
            .with_keys(&keys)
            .unwrap()
            .with_ff(&ff)
            .unwrap()
            .with_ff_effects_max(16);
        let stick = AbsInfo::new(0, -32768, 32767, 16, 128, 0);
        let trigger = AbsInfo::new(0, 0, 1023, 0, 0, 0);
        let hat = AbsInfo::new(0, -1, 1, 0, 0, 0);
        for (axis, info) in [
            (AbsoluteAxisCode::ABS_X, stick),
            (AbsoluteAxisCode::ABS_Y, stick),
            (AbsoluteAxisCode::ABS_RX, stick),
            (AbsoluteAxisCode::ABS_RY, stick),
            (AbsoluteAxisCode::ABS_Z, trigger),
            (AbsoluteAxisCode::ABS_RZ, trigger),
            (AbsoluteAxisCode::ABS_HAT0X, hat),
            (AbsoluteAxisCode::ABS_HAT0Y, hat),
        ] {
            builder = builder.with_absolute_axis(&UinputAbsSetup::new(axis, info)).unwrap();
        }
        let device = builder.build().unwrap();
        nix::fcntl::fcntl(device.as_fd(), nix::fcntl::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
        let device = Arc::new(Mutex::new(device));
        let (rumbles, done) = (Arc::new(Mutex::new(Vec::new())), Arc::new(std::sync::atomic::AtomicBool::new(false)));
        // The client's force-feedback uploads wait until the pad's driver (this) takes them.
        let service = {
            let (device, rumbles, done) = (Arc::clone(&device), Arc::clone(&rumbles), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(2));
                    let mut device = device.lock().unwrap();
                    let Ok(events) = device.fetch_events() else { continue };
                    let events: Vec<InputEvent> = events.collect();
                    for event in events {
                        match event.destructure() {
                            EventSummary::UInput(request, UInputCode::UI_FF_UPLOAD, _) => {
                                let upload = device.process_ff_upload(request).unwrap();
                                if let FFEffectKind::Rumble { strong_magnitude, weak_magnitude } = upload.effect().kind {
                                    rumbles.lock().unwrap().push((strong_magnitude, weak_magnitude));
                                }
                            }
                            EventSummary::UInput(request, UInputCode::UI_FF_ERASE, _) => {
                                device.process_ff_erase(request).unwrap();
                            }
                            _ => {}
                        }
                    }
                }
            })
        };
        Self { device, rumbles, done, service: Some(service) }
    }

    fn emit(&self, events: &[InputEvent]) {
        self.device.lock().unwrap().emit(events).unwrap();
    }
}

impl Drop for LocalPad {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(service) = self.service.take() {
            let _ = service.join();
        }
    }
}

/// The host's pad once it is there (a game opening it).
fn host_pad(client: &mut Child, dir: &Path) -> evdev::Device {
    let since = Instant::now();
    loop {
        if let Some((_, pad)) = evdev::enumerate().find(|(_, d)| d.name() == Some(HOST_PAD)) {
            return pad;
        }
        if since.elapsed() > Duration::from_secs(120) || client.try_wait().unwrap().is_some() {
            let _ = client.kill();
            let _ = client.wait();
            let err = std::fs::read_to_string(dir.join("client.log")).unwrap_or_default();
            let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
            panic!("the host made no pad for the client's: {err}\n--- daemon log ---\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn host_pad_gone(within: Duration) -> bool {
    let since = Instant::now();
    while since.elapsed() < within {
        if !evdev::enumerate().any(|(_, d)| d.name() == Some(HOST_PAD)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The next key or axis event on `pad` within `limit`.
fn next_event(pad: &mut evdev::Device, limit: Duration, wanted: impl Fn(&EventSummary) -> bool) -> Option<EventSummary> {
    let since = Instant::now();
    while since.elapsed() < limit {
        let mut fds = [nix::poll::PollFd::new(pad.as_fd(), nix::poll::PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, 50u16).unwrap_or(0) == 0 {
            continue;
        }
        if let Some(found) = pad.fetch_events().unwrap().map(|e| e.destructure()).find(&wanted) {
            return Some(found);
        }
    }
    None
}

#[test]
#[ignore = "needs /dev/uinput (.ci/drm-vm)"]
fn a_native_clients_controller_plays_and_rumbles() {
    let dir = std::env::temp_dir().join(format!("pf-native-gamepad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pattern = target_dir().join("punktfunk-test-pattern").display().to_string();
    let host_toml = "start_pipewire = false\nrenderer = \"pixman\"\nnative_trust_on_first_use = true\n";
    let _daemon = start_daemon_configured(&[], &dir, PORT, API_PORT, host_toml, &[pattern, "--color".into(), "3080ff".into()], "");
    let config = dir.join("client");
    let native = format!("127.0.0.1:{}", PORT + 50);
    let paired = native_client(&[], &config).args(["pair", &native, "--trust"]).output().unwrap();
    assert!(paired.status.success(), "{}", common::output_text(&paired));

    // The pad is on the client's machine before the stream starts: it arrives with it.
    let local = LocalPad::plug();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut client = native_client(&[], &config)
        .args(["stream", &native, "--headless", "--pads", "--app", "Input Test", "--mode", "160x120@10"])
        .args(["--frames", "1000000", "--timeout", "300", "--stop", "--out"])
        .arg(&out)
        // The inotify discovery gilrs falls back to (the VM's udev need not have tagged the pad).
        .env("GILRS_DISABLE_UDEV", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("client.log")).unwrap())
        .spawn()
        .unwrap();
    let mut pad = host_pad(&mut client, &dir);
    assert_eq!((pad.input_id().vendor(), pad.input_id().product()), (0x045e, 0x02ea), "an Xbox One S pad, as xpad makes it");

    // 20 presses of A on the client's pad: each press and release reaches the game.
    let mut latency_us = Vec::new();
    for n in 0..40 {
        let pressed = i32::from(n % 2 == 0);
        let sent = Instant::now();
        local.emit(&[InputEvent::new(EventType::KEY.0, KeyCode::BTN_SOUTH.0, pressed)]);
        let seen = next_event(&mut pad, Duration::from_secs(10), |e| matches!(e, EventSummary::Key(_, KeyCode::BTN_SOUTH, _)));
        assert_eq!(seen.map(|e| matches!(e, EventSummary::Key(_, _, v) if v == pressed)), Some(true), "press {n} did not arrive");
        latency_us.push(sent.elapsed().as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_millis(30));
    }
    // The left stick pushed right.
    local.emit(&[InputEvent::new(EventType::ABSOLUTE.0, AbsoluteAxisCode::ABS_X.0, 32767)]);
    let stick = next_event(
        &mut pad,
        Duration::from_secs(10),
        |e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_X, v) if *v > 30_000),
    );
    assert!(stick.is_some(), "the stick did not reach the host's pad");
    // The client did not take the host's pad for one of its own (they share this machine).
    let pads: Vec<String> =
        evdev::enumerate().filter_map(|(_, d)| d.name().map(str::to_owned)).filter(|n| n.starts_with("punktfunk")).collect();
    assert_eq!(pads, [HOST_PAD], "one pad on the host for the client's one");

    // A game rumbles the host's pad for 500 ms: the client's pad rumbles, then stops.
    let effect = FFEffectData {
        direction: 0,
        trigger: FFTrigger::default(),
        replay: FFReplay { length: 500, delay: 0 },
        kind: FFEffectKind::Rumble { strong_magnitude: 0xc000, weak_magnitude: 0x3000 },
    };
    let mut effect = pad.upload_ff_effect(effect).expect("uploading a rumble effect");
    effect.play(1).unwrap();
    let since = Instant::now();
    while !local.rumbles.lock().unwrap().iter().any(|&(strong, _)| strong > 0) {
        let log = || std::fs::read_to_string(dir.join("client.log")).unwrap_or_default();
        assert!(since.elapsed() < Duration::from_secs(20), "the client's pad never rumbled\n--- client ---\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(effect);
    std::thread::sleep(Duration::from_secs(2));

    // Unplugged on the client: the host's pad goes; plugged again: it comes back.
    drop(local);
    assert!(host_pad_gone(Duration::from_secs(20)), "the host's pad stayed after the client's was unplugged");
    let _again = LocalPad::plug();
    let _pad = host_pad(&mut client, &dir);

    // The client leaves (Ctrl-C): the pads it brought go with its connection.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(client.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = client.wait().unwrap();
    assert!(status.success(), "client: {}", std::fs::read_to_string(dir.join("client.log")).unwrap_or_default());
    assert!(host_pad_gone(Duration::from_secs(20)), "the host's pad outlived the client's connection");
    let stats: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    let feedback = stats["pad_feedback"].as_array().unwrap();
    let rumble = |low: u64, high: u64| serde_json::json!({"rumble": {"number": 0, "low": low, "high": high}});
    assert!(feedback.contains(&rumble(0xc000, 0x3000)), "the game's rumble reached the client: {feedback:?}");
    assert_eq!(feedback.last(), Some(&rumble(0, 0)), "and its end: {feedback:?}");

    latency_us.sort_by(f64::total_cmp);
    let at = |q: f64| latency_us[((latency_us.len() - 1) as f64 * q).round() as usize];
    let line = format!(
        "punktfunk/1 controller input, press on the client's pad → evdev event on the host's: p50 {:.0} µs, p99 {:.0} µs ({} events)",
        at(0.5),
        at(0.99),
        latency_us.len()
    );
    common::figure(&line);
    let _ = std::fs::remove_dir_all(&dir);
}
