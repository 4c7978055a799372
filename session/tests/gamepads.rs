//! Virtual gamepads on a real kernel's uinput, read back as games read them: each client
//! controller becomes an evdev device of its kind (ids, buttons, axes), its input arrives as
//! evdev events, a rumble a game plays on it (uploaded and played through the evdev
//! force-feedback calls SDL makes) comes back as the motor levels the client is sent, and
//! the devices go when the client unplugs them or leaves.
//!
//! Needs /dev/uinput: `.ci/run` runs these in `.ci/drm-vm` (Debian's kernel).

use evdev::{AbsoluteAxisCode, Device, EventSummary, FFEffectData, FFEffectKind, FFReplay, FFTrigger, KeyCode};
use punktfunk_core::gamestream::control::PadFeedback;
use punktfunk_core::gamestream::input::{ControllerArrival, ControllerKind, ControllerState, caps};
use punktfunk_session::gamepad::Gamepads;
use punktfunk_session::gamepad::layout::GamepadChoice;
use std::os::fd::AsFd;
use std::path::PathBuf;
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
    let kind_byte = match kind {
        ControllerKind::Nintendo => 3,
        _ => 1,
    };
    ControllerArrival { number, kind: kind_byte.into(), capabilities: caps::RUMBLE | caps::ANALOG_TRIGGERS, buttons: 0xffff }
}

#[test]
#[ignore = "needs /dev/uinput (.ci/drm-vm)"]
fn pads_as_games_see_them_with_rumble_back_to_the_client() {
    let mut pads = Gamepads::new(GamepadChoice::Auto);

    // An Xbox pad arrives: an Xbox One pad, as xpad would make it.
    pads.arrive(&arrival(0, ControllerKind::Xbox));
    let (node, mut xbox) = open("punktfunk Xbox pad 1");
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
    let since = Instant::now();
    while !(told.len() >= 2 && game.is_finished()) {
        assert!(since.elapsed() < Duration::from_secs(10), "rumble never came and went: {told:?}");
        let mut fds: Vec<_> = pads.fds().map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)).collect();
        let _ = nix::poll::poll(&mut fds, 10u16);
        drop(fds);
        pads.service(Instant::now(), &mut told);
    }
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
