//! Virtual gamepads on a real kernel's uinput, read back as games read them: each client
//! controller becomes an evdev device of its kind (ids, buttons, axes), its input arrives as
//! evdev events, a rumble a game plays on it (uploaded and played through the evdev
//! force-feedback calls SDL makes) comes back as the motor levels the client is sent, and
//! the devices go when the client unplugs them or leaves.
//!
//! Each session's pads show in its own view of /dev/input and nowhere else.
//!
//! Needs /dev/uinput: `.ci/run` runs these in `.ci/drm-vm` (Debian's kernel), one at a time
//! (they find their pads by name, as games do).

use evdev::{AbsoluteAxisCode, Device, EventSummary, FFEffectData, FFEffectKind, FFReplay, FFTrigger, KeyCode};
use punktfunk_core::gamepad::{ControllerArrival, ControllerKind, ControllerState, caps};
use punktfunk_core::gamepad::{PadFeedback, TriggerEffect};
use punktfunk_session::gamepad::Gamepads;
use punktfunk_session::gamepad::layout::GamepadChoice;
use punktfunk_session::input_view::{Dirs, InputView};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits (bounded) for the device named `name` to appear, and opens it as a game would.
fn open(name: &str) -> (PathBuf, Device) {
    let since = Instant::now();
    loop {
        if let Some(found) = evdev::enumerate().find(|(_, d)| d.name() == Some(name)) {
            return found;
        }
        assert!(since.elapsed() < Duration::from_secs(10), "no evdev device {name:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// With `PUNKTFUNK_TEST_UDEV_RULES` set (.ci/drm-vm, whose /run is its own), the packaged
/// udev rule goes into /run/udev/rules.d and `udevadm test` must say it keeps the desktop's
/// libinput off the device at `node`: the pads are the stream's, not this machine's seat's.
fn left_alone_by_the_desktop(node: &std::path::Path) {
    if std::env::var_os("PUNKTFUNK_TEST_UDEV_RULES").is_none() {
        return;
    }
    let rules = std::path::Path::new("/run/udev/rules.d");
    std::fs::create_dir_all(rules).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/udev/60-punktfunk-uinput.rules"),
        rules.join("60-punktfunk-uinput.rules"),
    )
    .unwrap();
    let sys = std::path::Path::new("/sys/class/input").join(node.file_name().unwrap());
    let out = std::process::Command::new("udevadm").args(["test", "--action=add"]).arg(&sys).output().expect("running udevadm test");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.lines().any(|l| l.trim() == "LIBINPUT_IGNORE_DEVICE=1"), "udev leaves {} to libinput:\n{said}", sys.display());
}

fn present(name: &str) -> bool {
    evdev::enumerate().any(|(_, d)| d.name() == Some(name))
}

/// The events the device delivers until `until` says enough (bounded).
fn read_until(device: &mut Device, mut until: impl FnMut(&[EventSummary]) -> bool) -> Vec<EventSummary> {
    let mut seen = Vec::new();
    let since = Instant::now();
    while !until(&seen) {
        assert!(since.elapsed() < Duration::from_secs(10), "the device never said enough: {seen:?}");
        let mut fds = [nix::poll::PollFd::new(device.as_fd(), nix::poll::PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, 100u16).unwrap_or(0) > 0 {
            seen.extend(device.fetch_events().unwrap().map(|e| e.destructure()));
        }
    }
    seen
}

fn arrival(number: u8, kind: ControllerKind) -> ControllerArrival {
    ControllerArrival { number, kind, capabilities: caps::RUMBLE | caps::ANALOG_TRIGGERS, buttons: 0xffff }
}

/// Services the pads until `done` says so (bounded), collecting their feedback.
fn serve_until(pads: &mut Gamepads, told: &mut Vec<PadFeedback>, mut done: impl FnMut(&[PadFeedback]) -> bool) {
    let since = Instant::now();
    while !done(told) {
        assert!(since.elapsed() < Duration::from_secs(20), "the pads never got there: {told:?}");
        let mut fds: Vec<_> = pads.fds().map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)).collect();
        let _ = nix::poll::poll(&mut fds, 10u16);
        drop(fds);
        pads.service(Instant::now(), told);
    }
}

#[test]
#[ignore = "needs /dev/uinput (.ci/drm-vm)"]
fn pads_as_games_see_them_with_rumble_back_to_the_client() {
    let mut pads = Gamepads::new(GamepadChoice::Auto);

    // An Xbox pad arrives: an Xbox One pad, as xpad would make it.
    pads.arrive(&arrival(0, ControllerKind::Xbox));
    let (node, mut xbox) = open("punktfunk Xbox pad 1");
    left_alone_by_the_desktop(&node);
    let id = xbox.input_id();
    assert_eq!((id.vendor(), id.product()), (0x045e, 0x02ea), "{node:?}");
    let keys = xbox.supported_keys().unwrap();
    assert!(keys.contains(KeyCode::BTN_SOUTH) && keys.contains(KeyCode::BTN_MODE) && !keys.contains(KeyCode::BTN_TR2));
    let axes = xbox.supported_absolute_axes().unwrap();
    assert!(axes.contains(AbsoluteAxisCode::ABS_RZ) && axes.contains(AbsoluteAxisCode::ABS_HAT0Y));

    // Its input: A and a stick, as evdev events.
    let mask = 0b11;
    pads.update(ControllerState {
        number: 0,
        active_mask: mask,
        buttons: 0x1000,
        left_stick: (12000, -32768),
        right_trigger: 200,
        ..Default::default()
    });
    let seen = read_until(&mut xbox, |s| s.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_RZ, _))));
    assert!(seen.iter().any(|e| matches!(e, EventSummary::Key(_, KeyCode::BTN_SOUTH, 1))), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_X, 12000))), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_Y, 32767))), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_RZ, 200))), "{seen:?}");

    // A game rumbles it (a 300 ms effect): the client is told the motors' levels, then 0.
    let game = std::thread::spawn(move || {
        let effect = FFEffectData {
            direction: 0,
            trigger: FFTrigger::default(),
            replay: FFReplay { length: 300, delay: 0 },
            kind: FFEffectKind::Rumble { strong_magnitude: 0xc000, weak_magnitude: 0x3000 },
        };
        let mut effect = xbox.upload_ff_effect(effect).expect("uploading a rumble effect");
        effect.play(1).expect("playing it");
        std::thread::sleep(Duration::from_millis(600));
        // Dropping the effect erases it: answered by the pads' owner too.
        drop(effect);
        xbox
    });
    let mut told = Vec::new();
    serve_until(&mut pads, &mut told, |told| told.len() >= 2 && game.is_finished());
    let _xbox = game.join().unwrap();
    assert_eq!(
        told,
        [PadFeedback::Rumble { number: 0, low: 0xc000, high: 0x3000 }, PadFeedback::Rumble { number: 0, low: 0, high: 0 }],
        "the strong motor is the client's low-frequency one"
    );

    // A Nintendo pad arrives as the second: a Switch Pro Controller, A on the right.
    pads.arrive(&arrival(1, ControllerKind::Nintendo));
    let (_, mut switch) = open("punktfunk Switch Pro pad 2");
    assert_eq!((switch.input_id().vendor(), switch.input_id().product()), (0x057e, 0x2009));
    pads.update(ControllerState { number: 1, active_mask: mask, buttons: 0x1000, right_trigger: 255, ..Default::default() });
    let seen = read_until(&mut switch, |s| s.iter().any(|e| matches!(e, EventSummary::Key(_, KeyCode::BTN_TR2, 1))));
    assert!(seen.iter().any(|e| matches!(e, EventSummary::Key(_, KeyCode::BTN_EAST, 1))), "{seen:?}");

    // The client unplugs the first: its device goes, the second stays; then the client leaves.
    pads.update(ControllerState { number: 0, active_mask: 0b10, ..Default::default() });
    assert!(!present("punktfunk Xbox pad 1") && present("punktfunk Switch Pro pad 2"));
    drop(pads);
    assert!(!present("punktfunk Switch Pro pad 2"), "no device outlives its client");
}

#[test]
#[ignore = "needs /dev/uinput (.ci/drm-vm)"]
fn the_configured_kind_wins_and_a_pad_without_arrival_is_made_on_first_input() {
    let mut pads = Gamepads::new(GamepadChoice::Switch);
    pads.update(ControllerState { number: 3, active_mask: 0b1000, buttons: 0x2000, ..Default::default() });
    let (_, pad) = open("punktfunk Switch Pro pad 4");
    // The game opened it after the press: it finds B (the bottom button on a Switch pad)
    // held down.
    assert!(pad.get_key_state().unwrap().contains(KeyCode::BTN_SOUTH));
    // An arrival of another kind does not override the configured one.
    pads.arrive(&arrival(3, ControllerKind::Xbox));
    assert!(present("punktfunk Switch Pro pad 4") && !present("punktfunk Xbox pad 4"));
}

const DUALSENSE: &str = "Sony Interactive Entertainment DualSense";
const DUALSHOCK4: &str = "Sony Interactive Entertainment Wireless Controller";

/// Finds the Sony driver's device whose name starts with `model` and ends in `suffix`,
/// serving the pads (the driver asks them for its feature reports while it binds) until it
/// is there.
fn sony_node(pads: &mut Gamepads, told: &mut Vec<PadFeedback>, model: &str, suffix: &str) -> (PathBuf, Device) {
    let mut found = None;
    serve_until(pads, told, |_| {
        found = evdev::enumerate().find(|(_, d)| d.name().is_some_and(|n| n.starts_with(model) && n.ends_with(suffix)));
        found.is_some()
    });
    found.unwrap()
}

/// The pad, motion sensors and touchpad the Sony driver made for pad `model`, each kept
/// from the desktop, all three with the one `uniq` (the MAC it read), as SDL and Steam Input
/// expect.
fn sony_nodes(pads: &mut Gamepads, told: &mut Vec<PadFeedback>, model: &str) -> (Device, Device, Device, String) {
    let (pad_node, pad) = sony_node(pads, told, model, "Controller");
    let (sensors_node, sensors) = sony_node(pads, told, model, "Motion Sensors");
    let (touchpad_node, touchpad) = sony_node(pads, told, model, "Touchpad");
    for node in [&pad_node, &sensors_node, &touchpad_node] {
        left_alone_by_the_desktop(node);
    }
    let uniq = pad.unique_name().expect("the pad has a uniq").to_owned();
    assert_eq!(uniq.len(), 17, "a MAC address: {uniq}");
    assert_eq!((sensors.unique_name(), touchpad.unique_name()), (Some(uniq.as_str()), Some(uniq.as_str())));
    (pad, sensors, touchpad, uniq)
}

/// `capacity` (a power supply's) says `percent` (bounded wait).
fn battery_says(capacity: &std::path::Path, percent: &str) {
    let since = Instant::now();
    while std::fs::read_to_string(capacity).map(|c| c.trim().to_owned()).ok().as_deref() != Some(percent) {
        assert!(since.elapsed() < Duration::from_secs(10), "{} never said {percent}", capacity.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A game plays a 200 ms rumble on `pad` (strong 0xc000, weak 0x3000): the driver's output
/// reports reach the client as that rumble, then its end.
fn rumble_reaches_the_client(pad: &mut Device, pads: &mut Gamepads, told: &mut Vec<PadFeedback>) {
    let effect = FFEffectData {
        direction: 0,
        trigger: FFTrigger::default(),
        replay: FFReplay { length: 200, delay: 0 },
        kind: FFEffectKind::Rumble { strong_magnitude: 0xc000, weak_magnitude: 0x3000 },
    };
    let mut effect = pad.upload_ff_effect(effect).expect("uploading a rumble effect");
    effect.play(1).unwrap();
    told.clear();
    serve_until(pads, told, |t| t.contains(&PadFeedback::Rumble { number: 0, low: 0, high: 0 }));
    assert!(told.contains(&PadFeedback::Rumble { number: 0, low: 0xc0c0, high: 0x3030 }), "{told:?}");
}

/// Motion and touch reach the driver's devices in its units: 90 °/s is 90·1024, 1 g is
/// 8192, the touch at (`x`, `y`) of its pad.
fn motion_and_touch_arrive(pads: &mut Gamepads, sensors: &mut Device, touchpad: &mut Device, x: i32, y: i32) {
    pads.motion(0, 2, [90.0, 0.0, 0.0]);
    pads.motion(0, 1, [0.0, 9.80665, 0.0]);
    let want_gyro =
        |s: &[EventSummary]| s.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_RX, v) if *v == 90 * 1024));
    let want_accel = |s: &[EventSummary]| s.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_Y, 8192)));
    read_until(sensors, |s| want_gyro(s) && want_accel(s));
    pads.touch(0, 1, 5, 0.5, 0.25);
    let seen = read_until(touchpad, |s| {
        s.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_MT_POSITION_Y, v) if *v == y))
    });
    assert!(seen.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_MT_POSITION_X, v) if *v == x)), "{seen:?}");
}

/// The hidraw node of the HID device whose `uniq` is `uniq` (the one games write to).
fn hidraw_of(uniq: &str) -> PathBuf {
    let entries = std::fs::read_dir("/sys/class/hidraw").expect("no hidraw nodes");
    let found = entries.flatten().find(|e| {
        std::fs::read_to_string(e.path().join("device/uevent")).is_ok_and(|u| u.lines().any(|l| l == format!("HID_UNIQ={uniq}")))
    });
    PathBuf::from("/dev").join(found.expect("the pad's hidraw node").file_name())
}

/// Unplugged: the driver's devices go with it (bounded wait).
fn unplugged(pads: &mut Gamepads, uniq: &str) {
    pads.update(ControllerState { number: 0, active_mask: 0, ..Default::default() });
    let since = Instant::now();
    while evdev::enumerate().any(|(_, d)| d.unique_name() == Some(uniq)) {
        assert!(since.elapsed() < Duration::from_secs(10), "the pad outlived its unplugging");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs /dev/uhid and hid-playstation (.ci/drm-vm)"]
fn a_playstation_pad_is_a_dualsense_made_by_the_kernel_s_driver() {
    let mut pads = Gamepads::new(GamepadChoice::Auto);
    let all = caps::RUMBLE | caps::ANALOG_TRIGGERS | caps::TOUCHPAD | caps::ACCEL | caps::GYRO | caps::BATTERY_STATE | caps::RGB_LED;
    pads.arrive(&ControllerArrival { number: 0, kind: ControllerKind::PlayStation, capabilities: all, buttons: 0x1f_ffff });
    let mut told = Vec::new();

    // hid-playstation binds and makes the pad, its motion sensors and its touchpad.
    let (mut pad, mut sensors, mut touchpad, uniq) = sony_nodes(&mut pads, &mut told, DUALSENSE);
    assert_eq!((pad.input_id().vendor(), pad.input_id().product()), (0x054c, 0x0ce6));
    // The driver lit the lightbar (blue) and the client hears of it; it is asked for motion.
    serve_until(&mut pads, &mut told, |t| t.contains(&PadFeedback::Led { number: 0, rgb: [0, 0, 128] }));
    assert!(told.contains(&PadFeedback::MotionEvents { number: 0, motion_type: 2, rate_hz: 100 }), "{told:?}");

    // Cross, a gyro turn, gravity, a finger on the touchpad, the battery.
    pads.update(ControllerState { number: 0, active_mask: 1, buttons: 0x1000, ..Default::default() });
    let seen = read_until(&mut pad, |s| s.iter().any(|e| matches!(e, EventSummary::Key(_, KeyCode::BTN_SOUTH, 1))));
    assert!(!seen.is_empty());
    motion_and_touch_arrive(&mut pads, &mut sensors, &mut touchpad, 959, 269);
    pads.battery(0, 3, 55);
    battery_says(&std::path::Path::new("/sys/class/power_supply").join(format!("ps-controller-battery-{uniq}/capacity")), "55");

    // A game rumbles it: the driver's output report becomes the client's rumble, and its end.
    rumble_reaches_the_client(&mut pad, &mut pads, &mut told);

    // A game sets the right trigger's resistance through the pad's hidraw node: the client
    // hears it, and when the pad goes, both triggers are set back to no effect.
    let mut report = [0u8; 63];
    report[..2].copy_from_slice(&[0x02, 0x04]);
    report[11..14].copy_from_slice(&[0x01, 2, 8]);
    std::fs::write(hidraw_of(&uniq), report).expect("writing the DualSense's output report");
    let right = TriggerEffect { mode: 0x01, params: [2, 8, 0, 0, 0, 0, 0, 0, 0, 0] };
    let set = PadFeedback::AdaptiveTriggers { number: 0, flags: 0x04, left: TriggerEffect::default(), right };
    serve_until(&mut pads, &mut told, |t| t.contains(&set));
    unplugged(&mut pads, &uniq);
    told.clear();
    pads.service(Instant::now(), &mut told);
    let off = PadFeedback::AdaptiveTriggers { number: 0, flags: 0x0c, left: TriggerEffect::default(), right: TriggerEffect::default() };
    assert!(told.contains(&off), "{told:?}");

    // Plugged and unplugged while the driver still binds (its first device there, its LEDs
    // and battery not yet): the pad goes at once, every time, until the slot has had its
    // pads for a while and no more are made.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut made = 0;
        loop {
            pads.arrive(&ControllerArrival { number: 0, kind: ControllerKind::PlayStation, capabilities: all, buttons: 0x1f_ffff });
            if pads.fds().count() == 0 || made > 8 {
                break;
            }
            made += 1;
            sony_node(&mut pads, &mut Vec::new(), DUALSENSE, "Controller");
            pads.update(ControllerState { number: 0, active_mask: 0, ..Default::default() });
        }
        let _ = done.send(made);
    });
    let made = finished.recv_timeout(Duration::from_secs(60)).expect("unplugging a binding DualSense hangs");
    assert!((3..=8).contains(&made), "{made} pads made in a row before the slot said no");
}

/// A PlayStation pad becomes a DualShock 4 where the host is set to make those (`gamepad =
/// "dualshock4"`), made by the kernel's own driver (hid-sony on Debian 12's 6.1, from its
/// descriptor; hid-playstation from 6.2): the pad with the PlayStation layout, its motion
/// sensors and touchpad linked by one `uniq`, the lightbar and rumble back to the client,
/// the battery; SDL2 finds a PS4 controller with rumble and motion sensors.
#[test]
#[ignore = "needs /dev/uhid and hid-sony (.ci/drm-vm)"]
fn a_dualshock4_where_the_host_makes_those() {
    let mut pads = Gamepads::new(GamepadChoice::DualShock4);
    let all = caps::RUMBLE | caps::ANALOG_TRIGGERS | caps::TOUCHPAD | caps::ACCEL | caps::GYRO | caps::BATTERY_STATE | caps::RGB_LED;
    pads.arrive(&ControllerArrival { number: 0, kind: ControllerKind::PlayStation, capabilities: all, buttons: 0x1f_ffff });
    let mut told = Vec::new();
    let (mut pad, mut sensors, mut touchpad, uniq) = sony_nodes(&mut pads, &mut told, DUALSHOCK4);
    assert_eq!((pad.input_id().vendor(), pad.input_id().product()), (0x054c, 0x09cc));
    serve_until(&mut pads, &mut told, |t| t.iter().any(|f| matches!(f, PadFeedback::Led { number: 0, .. })));
    assert!(told.contains(&PadFeedback::MotionEvents { number: 0, motion_type: 2, rate_hz: 100 }), "{told:?}");

    // Cross, the left stick right, L2 half pulled: the pad's own layout, from our descriptor.
    let state =
        ControllerState { number: 0, active_mask: 1, buttons: 0x1000, left_stick: (32767, 0), left_trigger: 128, ..Default::default() };
    pads.update(state);
    let seen = read_until(&mut pad, |s| {
        s.iter().any(|e| matches!(e, EventSummary::Key(_, KeyCode::BTN_SOUTH, 1)))
            && s.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_X, 255)))
            && s.iter().any(|e| matches!(e, EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_Z, 128)))
    });
    assert!(!seen.iter().any(|e| matches!(e, EventSummary::Key(_, KeyCode::BTN_WEST | KeyCode::BTN_EAST, 1))), "only cross: {seen:?}");
    motion_and_touch_arrive(&mut pads, &mut sensors, &mut touchpad, 959, 235);
    pads.battery(0, 3, 55);
    battery_says(&std::path::Path::new("/sys/class/power_supply").join(format!("sony_controller_battery_{uniq}/capacity")), "55");
    rumble_reaches_the_client(&mut pad, &mut pads, &mut told);

    if let Some(python) = std::env::var_os("PUNKTFUNK_MOONLIGHT_PYTHON") {
        drop((pad, sensors, touchpad));
        let found = sdl_controllers(&python, &mut pads, &mut told, 1);
        let ps4 = found.iter().find(|c| c["type"] == "ps4").unwrap_or_else(|| panic!("no PS4 controller: {found:?}"));
        use serde_json::json;
        assert_eq!(ps4["ids"], json!([0x054c, 0x09cc]));
        assert_eq!((&ps4["accel"], &ps4["gyro"], &ps4["rumble"]), (&json!(true), &json!(true), &json!(true)), "{ps4}");
    }
    unplugged(&mut pads, &uniq);
}

/// What `script` prints when run in `view`, as a game in that session would run.
fn inside(view: &InputView, script: &str) -> String {
    let mut command = std::process::Command::new("sh");
    command.arg("-c").arg(script);
    view.enter(&mut command);
    String::from_utf8_lossy(&command.output().expect("running a process in the view").stdout).trim().to_owned()
}

fn view() -> Arc<InputView> {
    let view = Arc::new(InputView::new(std::path::Path::new(env!("CARGO_BIN_EXE_punktfunk")), &Dirs::default()).expect("an input view"));
    punktfunk_session::input_view::register(&view);
    view
}

#[test]
#[ignore = "needs /dev/uinput, /dev/uhid and hid-playstation (.ci/drm-vm)"]
fn each_session_sees_only_its_own_pads() {
    let (a, b) = (view(), view());
    let mut pads_a = Gamepads::new(GamepadChoice::Auto).in_view(Some(Arc::clone(&a)));
    let mut pads_b = Gamepads::new(GamepadChoice::Auto).in_view(Some(Arc::clone(&b)));
    assert_eq!(inside(&a, "ls /dev/input"), "", "a session without pads sees none, not even the host's");

    // Session A's client holds an Xbox pad, session B's a DualSense.
    pads_a.arrive(&arrival(0, ControllerKind::Xbox));
    let (xbox, _) = open("punktfunk Xbox pad 1");
    let xbox = xbox.file_name().unwrap().to_str().unwrap().to_owned();
    let all = caps::RUMBLE | caps::TOUCHPAD | caps::ACCEL | caps::GYRO;
    pads_b.arrive(&ControllerArrival { number: 0, kind: ControllerKind::PlayStation, capabilities: all, buttons: 0x1f_ffff });
    let mut told = Vec::new();
    let (_, pad) = sony_node(&mut pads_b, &mut told, DUALSENSE, "Controller");
    let uniq = pad.unique_name().unwrap().to_owned();
    // The driver makes the pad, its motion sensors and touchpad one after another.
    let mut dualsense: Vec<String> = Vec::new();
    serve_until(&mut pads_b, &mut told, |_| {
        dualsense = evdev::enumerate()
            .filter(|(_, d)| d.unique_name() == Some(uniq.as_str()))
            .map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        dualsense.len() == 3
    });
    let hidraw = std::fs::read_dir("/sys/class/hidraw")
        .unwrap()
        .flatten()
        .find(|h| std::fs::read_to_string(h.path().join("device/uevent")).unwrap_or_default().contains(&format!("HID_UNIQ={uniq}")))
        .map(|h| h.file_name().into_string().unwrap())
        .expect("the DualSense's hidraw node");
    // B's nodes show once its driver made them (the pads serve it meanwhile).
    let mut in_b = String::new();
    serve_until(&mut pads_b, &mut told, |_| {
        in_b = inside(&b, "ls /dev/input");
        dualsense.iter().all(|n| in_b.lines().any(|l| l == n))
    });

    let in_a = inside(&a, "ls /dev/input");
    assert!(in_a.lines().any(|l| l == xbox), "A sees its pad: {in_a}");
    assert!(!dualsense.iter().any(|n| in_a.contains(n.as_str())) && !in_b.contains(&xbox), "each sees only its own: A {in_a}, B {in_b}");
    let evtest = |view: &InputView, node: &str| {
        inside(view, &format!("cat /sys/class/input/{node}/device/name; test -c /dev/input/{node} && echo opens"))
    };
    assert_eq!(evtest(&a, &xbox), "punktfunk Xbox pad 1\nopens", "the node in A's view is the pad's");
    let is_char = |view: &InputView| inside(view, &format!("test -c /dev/{hidraw} && echo device || echo masked"));
    assert_eq!((is_char(&a), is_char(&b)), ("masked".to_owned(), "device".to_owned()), "B's hidraw node is B's alone");
    // A view made later masks what is there already.
    let c = view();
    assert_eq!(is_char(&c), "masked");

    // Unplugged, a pad leaves its session's view; its hidraw node is nobody's to mask.
    pads_a.update(ControllerState { number: 0, active_mask: 0, ..Default::default() });
    assert_eq!(inside(&a, "ls /dev/input"), "");
    drop(pads_b);
    let since = Instant::now();
    while !inside(&b, "ls /dev/input").is_empty() {
        assert!(since.elapsed() < Duration::from_secs(10), "B's nodes outlived its pad");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SDL2 (what most games read pads with) finds each pad as a game controller of its kind:
/// the Xbox pad with rumble, the DualSense with its motion sensors. Runs
/// `sdl_pads.py` with the test's Python (pysdl2, installed by `.ci/run`), serving the pads
/// meanwhile (SDL asks the DualSense for its reports through hidraw as it opens it).
#[test]
#[ignore = "needs /dev/uinput, /dev/uhid and hid-playstation (.ci/drm-vm)"]
fn sdl_finds_each_pad_as_a_controller_of_its_kind() {
    let Some(python) = std::env::var_os("PUNKTFUNK_MOONLIGHT_PYTHON") else {
        assert!(std::env::var_os("CI").is_none(), "CI runs SDL: set PUNKTFUNK_MOONLIGHT_PYTHON");
        eprintln!("skipped: set PUNKTFUNK_MOONLIGHT_PYTHON to a Python with pysdl2");
        return;
    };
    let mut pads = Gamepads::new(GamepadChoice::Auto);
    pads.arrive(&arrival(0, ControllerKind::Xbox));
    let all = caps::RUMBLE | caps::TOUCHPAD | caps::ACCEL | caps::GYRO;
    pads.arrive(&ControllerArrival { number: 1, kind: ControllerKind::PlayStation, capabilities: all, buttons: 0x1f_ffff });
    let mut told = Vec::new();
    sony_nodes(&mut pads, &mut told, DUALSENSE);
    let found = sdl_controllers(&python, &mut pads, &mut told, 2);
    use serde_json::json;
    let kind = |t: &str| found.iter().find(|c| c["type"] == t).unwrap_or_else(|| panic!("no {t} controller: {found:?}"));
    let xbox = kind("xboxone");
    assert_eq!((&xbox["ids"], &xbox["rumble"]), (&json!([0x045e, 0x02ea]), &json!(true)), "{xbox}");
    let dualsense = kind("ps5");
    assert_eq!(dualsense["ids"], json!([0x054c, 0x0ce6]));
    // Through the kernel's driver, as with a real DualSense on Linux: SDL reads its motion
    // sensors (the touchpad is an evdev device of its own, which SDL leaves to the game).
    assert_eq!((&dualsense["accel"], &dualsense["gyro"], &dualsense["rumble"]), (&json!(true), &json!(true), &json!(true)), "{dualsense}");
}

/// The game controllers SDL2 finds (`sdl_pads.py` run with `python`, waiting for `want`),
/// serving the pads meanwhile (SDL may ask them for reports as it opens them).
fn sdl_controllers(python: &std::ffi::OsStr, pads: &mut Gamepads, told: &mut Vec<PadFeedback>, want: usize) -> Vec<serde_json::Value> {
    let mut sdl = std::process::Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdl_pads.py"))
        .arg(want.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running SDL");
    let since = Instant::now();
    while sdl.try_wait().unwrap().is_none() && since.elapsed() < Duration::from_secs(60) {
        let mut fds: Vec<_> = pads.fds().map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)).collect();
        let _ = nix::poll::poll(&mut fds, 10u16);
        drop(fds);
        pads.service(Instant::now(), told);
    }
    let _ = sdl.kill();
    let out = sdl.wait_with_output().unwrap();
    assert!(since.elapsed() < Duration::from_secs(60), "SDL never finished");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let found = serde_json::from_str(&text).unwrap();
    eprintln!("SDL found: {found:?}");
    found
}
