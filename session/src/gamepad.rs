//! Virtual gamepads: each Moonlight controller becomes an Xbox-style pad created through
//! uinput, so games see a real evdev device. Where /dev/uinput cannot be opened, controller
//! input is logged once and ignored.
//!
//! [`changes`] turns two controller states into evdev events (sans-IO, tested); [`Gamepads`]
//! owns the devices of one client.

use punktfunk_core::gamestream::input::ControllerState;

/// Up to 16 controllers (Sunshine's extension of GameStream's 4).
const MAX_PADS: usize = 16;

const EV_KEY: u16 = 0x01;
const EV_ABS: u16 = 0x03;
const ABS_X: u16 = 0x00;
const ABS_Y: u16 = 0x01;
const ABS_Z: u16 = 0x02;
const ABS_RX: u16 = 0x03;
const ABS_RY: u16 = 0x04;
const ABS_RZ: u16 = 0x05;
const ABS_HAT0X: u16 = 0x10;
const ABS_HAT0Y: u16 = 0x11;

/// Moonlight button bit → evdev key (the layout of the kernel's xpad driver).
const BUTTONS: [(u32, u16); 16] = [
    (0x1000, 0x130),    // A → BTN_SOUTH
    (0x2000, 0x131),    // B → BTN_EAST
    (0x4000, 0x133),    // X → BTN_NORTH
    (0x8000, 0x134),    // Y → BTN_WEST
    (0x0100, 0x136),    // LB → BTN_TL
    (0x0200, 0x137),    // RB → BTN_TR
    (0x0020, 0x13a),    // Back → BTN_SELECT
    (0x0010, 0x13b),    // Start → BTN_START
    (0x0400, 0x13c),    // Guide → BTN_MODE
    (0x0040, 0x13d),    // left stick click → BTN_THUMBL
    (0x0080, 0x13e),    // right stick click → BTN_THUMBR
    (0x01_0000, 0x2c0), // paddle 1 → BTN_TRIGGER_HAPPY1
    (0x02_0000, 0x2c1), // paddle 2
    (0x04_0000, 0x2c2), // paddle 3
    (0x08_0000, 0x2c3), // paddle 4
    (0x20_0000, 0x2c4), // misc (share) → BTN_TRIGGER_HAPPY5
];
const UP: u32 = 0x1;
const DOWN: u32 = 0x2;
const LEFT: u32 = 0x4;
const RIGHT: u32 = 0x8;

/// One evdev event: (type, code, value).
pub type Event = (u16, u16, i32);

fn axes(s: &ControllerState) -> [(u16, i32); 8] {
    let hat = |neg: u32, pos: u32| i32::from(s.buttons & pos != 0) - i32::from(s.buttons & neg != 0);
    // Moonlight's stick Y is positive up; evdev's is positive down.
    let flip = |v: i16| -(i32::from(v).max(-32767));
    [
        (ABS_X, s.left_stick.0.into()),
        (ABS_Y, flip(s.left_stick.1)),
        (ABS_RX, s.right_stick.0.into()),
        (ABS_RY, flip(s.right_stick.1)),
        (ABS_Z, s.left_trigger.into()),
        (ABS_RZ, s.right_trigger.into()),
        (ABS_HAT0X, hat(LEFT, RIGHT)),
        (ABS_HAT0Y, hat(UP, DOWN)),
    ]
}

/// The events that take a pad from `prev` to `next` (without the closing SYN_REPORT).
pub fn changes(prev: &ControllerState, next: &ControllerState) -> Vec<Event> {
    let mut out = Vec::new();
    for (bit, code) in BUTTONS {
        if (prev.buttons ^ next.buttons) & bit != 0 {
            out.push((EV_KEY, code, i32::from(next.buttons & bit != 0)));
        }
    }
    for ((code, a), (_, b)) in axes(prev).into_iter().zip(axes(next)) {
        if a != b {
            out.push((EV_ABS, code, b));
        }
    }
    out
}

struct Pad {
    device: evdev::uinput::VirtualDevice,
    state: ControllerState,
}

/// The virtual pads of one client.
#[derive(Default)]
pub struct Gamepads {
    pads: [Option<Pad>; MAX_PADS],
    unavailable: bool,
}

impl Gamepads {
    pub fn update(&mut self, next: ControllerState) {
        let n = usize::from(next.number);
        if n >= MAX_PADS || self.unavailable {
            return;
        }
        if next.active_mask & (1 << n) == 0 {
            if self.pads[n].take().is_some() {
                tracing::info!(pad = n, "gamepad removed");
            }
            return;
        }
        if self.pads[n].is_none() {
            match create(n) {
                Ok(device) => {
                    tracing::info!(pad = n, "gamepad created");
                    self.pads[n] = Some(Pad { device, state: ControllerState { number: next.number, ..Default::default() } });
                }
                Err(e) => {
                    tracing::warn!("gamepad input ignored: cannot create a uinput device ({e}); give this user access to /dev/uinput");
                    self.unavailable = true;
                    return;
                }
            }
        }
        let pad = self.pads[n].as_mut().expect("created above");
        let events: Vec<evdev::InputEvent> =
            changes(&pad.state, &next).into_iter().map(|(t, c, v)| evdev::InputEvent::new(t, c, v)).collect();
        if !events.is_empty()
            && let Err(e) = pad.device.emit(&events)
        {
            tracing::warn!(pad = n, "gamepad event: {e}");
        }
        pad.state = next;
    }
}

fn create(n: usize) -> std::io::Result<evdev::uinput::VirtualDevice> {
    use evdev::{AbsInfo, AbsoluteAxisCode, AttributeSet, InputId, KeyCode, UinputAbsSetup};
    let keys: AttributeSet<KeyCode> = BUTTONS.iter().map(|&(_, code)| KeyCode::new(code)).collect();
    let stick = AbsInfo::new(0, -32768, 32767, 16, 128, 0);
    let trigger = AbsInfo::new(0, 0, 255, 0, 0, 0);
    let hat = AbsInfo::new(0, -1, 1, 0, 0, 0);
    let name = format!("punktfunk gamepad {}", n + 1);
    let mut builder = evdev::uinput::VirtualDevice::builder()?
        .name(&name)
        // Microsoft X-Box 360 pad: games and SDL know its layout.
        .input_id(InputId::new(evdev::BusType::BUS_USB, 0x045e, 0x028e, 0x0110))
        .with_keys(&keys)?;
    for (code, info) in [
        (AbsoluteAxisCode::ABS_X, stick),
        (AbsoluteAxisCode::ABS_Y, stick),
        (AbsoluteAxisCode::ABS_RX, stick),
        (AbsoluteAxisCode::ABS_RY, stick),
        (AbsoluteAxisCode::ABS_Z, trigger),
        (AbsoluteAxisCode::ABS_RZ, trigger),
        (AbsoluteAxisCode::ABS_HAT0X, hat),
        (AbsoluteAxisCode::ABS_HAT0Y, hat),
    ] {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(code, info))?;
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_sticks_triggers_and_dpad() {
        let idle = ControllerState { number: 0, active_mask: 1, ..Default::default() };
        let pressed = ControllerState { buttons: 0x1000 | UP | RIGHT, left_stick: (1000, 32767), right_trigger: 255, ..idle };
        assert_eq!(
            changes(&idle, &pressed),
            [
                (EV_KEY, 0x130, 1),
                (EV_ABS, ABS_X, 1000),
                (EV_ABS, ABS_Y, -32767),
                (EV_ABS, ABS_RZ, 255),
                (EV_ABS, ABS_HAT0X, 1),
                (EV_ABS, ABS_HAT0Y, -1)
            ]
        );
        assert_eq!(changes(&pressed, &pressed), []);
        let released = ControllerState { buttons: 0, ..pressed };
        assert_eq!(changes(&pressed, &released), [(EV_KEY, 0x130, 0), (EV_ABS, ABS_HAT0X, 0), (EV_ABS, ABS_HAT0Y, 0)]);
    }

    #[test]
    fn stick_y_is_flipped_without_overflow() {
        let idle = ControllerState::default();
        let down = ControllerState { left_stick: (0, i16::MIN), ..idle };
        assert_eq!(changes(&idle, &down), [(EV_ABS, ABS_Y, 32767)]);
    }
}
