//! What each kind of virtual pad looks like to games: its name and USB ids (which SDL and
//! Steam Input know), its buttons and axes, and how a Moonlight controller state becomes its
//! evdev events. Sans-IO: states in, events out.

use super::playstation::Model;
use punktfunk_core::gamepad::buttons::*;
use punktfunk_core::gamepad::{ControllerKind, ControllerState};

pub const EV_KEY: u16 = 0x01;
pub const EV_ABS: u16 = 0x03;
pub const ABS_X: u16 = 0x00;
pub const ABS_Y: u16 = 0x01;
pub const ABS_Z: u16 = 0x02;
pub const ABS_RX: u16 = 0x03;
pub const ABS_RY: u16 = 0x04;
pub const ABS_RZ: u16 = 0x05;
pub const ABS_HAT0X: u16 = 0x10;
pub const ABS_HAT0Y: u16 = 0x11;
const BTN_TL2: u16 = 0x138;
const BTN_TR2: u16 = 0x139;

/// One evdev event: (type, code, value).
pub type Event = (u16, u16, i32);

/// The pads the host can create over uinput.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadKind {
    /// An Xbox One/Series pad (the kernel's xpad layout): analog triggers, rumble.
    Xbox,
    /// A Nintendo Switch Pro Controller (hid-nintendo's layout): labels where Nintendo puts
    /// them (A right, B bottom), digital ZL/ZR, rumble.
    Switch,
    /// A DualSense over uhid, made by the kernel's own driver (`super::dualsense`): with its
    /// motion sensors, touchpad, lightbar and battery.
    DualSense,
    /// A DualShock 4 over uhid, likewise (`super::dualshock4`).
    DualShock4,
}

/// Which pad a client's controller becomes (`gamepad` in the host's configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GamepadChoice {
    /// The kind the client says it holds (PlayStation pads as DualSense, Nintendo pads as
    /// Switch, all others as Xbox), Xbox when it says nothing.
    #[default]
    Auto,
    Xbox,
    Switch,
    DualSense,
    DualShock4,
}

impl GamepadChoice {
    pub fn kind(self, held: Option<ControllerKind>) -> PadKind {
        match (self, held) {
            (Self::Xbox, _) => PadKind::Xbox,
            (Self::Switch, _) | (Self::Auto, Some(ControllerKind::Nintendo)) => PadKind::Switch,
            (Self::DualSense, _) | (Self::Auto, Some(ControllerKind::PlayStation)) => PadKind::DualSense,
            (Self::DualShock4, _) => PadKind::DualShock4,
            (Self::Auto, _) => PadKind::Xbox,
        }
    }
}

/// Moonlight button bit → evdev key, the Xbox layout (the kernel's xpad driver).
const XBOX_BUTTONS: &[(u32, u16)] = &[
    (A, 0x130),        // BTN_SOUTH
    (B, 0x131),        // BTN_EAST
    (X, 0x133),        // BTN_X
    (Y, 0x134),        // BTN_Y
    (LB, 0x136),       // BTN_TL
    (RB, 0x137),       // BTN_TR
    (BACK, 0x13a),     // BTN_SELECT
    (START, 0x13b),    // BTN_START
    (HOME, 0x13c),     // Guide → BTN_MODE
    (LS_CLICK, 0x13d), // BTN_THUMBL
    (RS_CLICK, 0x13e), // BTN_THUMBR
    (PADDLE1, 0x2c0),  // BTN_TRIGGER_HAPPY1
    (PADDLE2, 0x2c1),
    (PADDLE3, 0x2c2),
    (PADDLE4, 0x2c3),
    (MISC, 0x2c4), // share → BTN_TRIGGER_HAPPY5
];

/// The Switch Pro layout: Moonlight's A/B/X/Y bits are the labels the client read.
const SWITCH_BUTTONS: &[(u32, u16)] = &[
    (A, 0x131),        // BTN_EAST
    (B, 0x130),        // BTN_SOUTH
    (X, 0x133),        // BTN_NORTH
    (Y, 0x134),        // BTN_WEST
    (LB, 0x136),       // L → BTN_TL
    (RB, 0x137),       // R → BTN_TR
    (BACK, 0x13a),     // − → BTN_SELECT
    (START, 0x13b),    // + → BTN_START
    (HOME, 0x13c),     // BTN_MODE
    (LS_CLICK, 0x13d), // BTN_THUMBL
    (RS_CLICK, 0x13e), // BTN_THUMBR
    (MISC, 0x135),     // Capture → BTN_Z
];

/// A trigger past this much counts as ZL/ZR pressed on a pad whose triggers are buttons.
const DIGITAL_TRIGGER: u8 = 64;

impl PadKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Xbox => "punktfunk Xbox pad",
            Self::Switch => "punktfunk Switch Pro pad",
            Self::DualSense | Self::DualShock4 => self.playstation().map_or("", Model::name),
        }
    }

    /// The Sony pad this kind is, made over uhid (`None`: a uinput pad).
    pub fn playstation(self) -> Option<Model> {
        match self {
            Self::DualSense => Some(Model::DualSense),
            Self::DualShock4 => Some(Model::DualShock4),
            Self::Xbox | Self::Switch => None,
        }
    }

    /// (vendor, product, version) as the real pad's.
    pub fn ids(self) -> (u16, u16, u16) {
        match self {
            // Xbox One S (xpad's table).
            Self::Xbox => (0x045e, 0x02ea, 0x0408),
            // Switch Pro Controller (hid-ids.h).
            Self::Switch => (0x057e, 0x2009, 0x8111),
            // As USB pads report their HID version (1.11), with the drivers' mark.
            Self::DualSense | Self::DualShock4 => self.playstation().map_or((0, 0, 0), |m| (m.ids().0, m.ids().1, 0x8111)),
        }
    }

    fn buttons(self) -> &'static [(u32, u16)] {
        match self {
            Self::Xbox => XBOX_BUTTONS,
            Self::Switch => SWITCH_BUTTONS,
            // Their drivers make their events from the reports.
            Self::DualSense | Self::DualShock4 => &[],
        }
    }

    /// Every key the pad has.
    pub fn keys(self) -> Vec<u16> {
        let mut keys: Vec<u16> = self.buttons().iter().map(|&(_, code)| code).collect();
        if self == Self::Switch {
            keys.extend([BTN_TL2, BTN_TR2]);
        }
        keys
    }

    /// Every axis: (code, min, max, fuzz, flat).
    pub fn axes(self) -> Vec<(u16, i32, i32, i32, i32)> {
        let stick = |code| (code, -32768, 32767, 16, 128);
        let mut axes = vec![stick(ABS_X), stick(ABS_Y), stick(ABS_RX), stick(ABS_RY), (ABS_HAT0X, -1, 1, 0, 0), (ABS_HAT0Y, -1, 1, 0, 0)];
        if self == Self::Xbox {
            axes.extend([(ABS_Z, 0, 255, 0, 0), (ABS_RZ, 0, 255, 0, 0)]);
        }
        axes
    }

    /// The events that take this pad from `prev` to `next` (without the closing SYN_REPORT).
    pub fn changes(self, prev: &ControllerState, next: &ControllerState) -> Vec<Event> {
        let mut out = Vec::new();
        for &(bit, code) in self.buttons() {
            if (prev.buttons ^ next.buttons) & bit != 0 {
                out.push((EV_KEY, code, i32::from(next.buttons & bit != 0)));
            }
        }
        if self == Self::Switch {
            for (code, a, b) in [(BTN_TL2, prev.left_trigger, next.left_trigger), (BTN_TR2, prev.right_trigger, next.right_trigger)] {
                if (a >= DIGITAL_TRIGGER) != (b >= DIGITAL_TRIGGER) {
                    out.push((EV_KEY, code, i32::from(b >= DIGITAL_TRIGGER)));
                }
            }
        }
        for ((code, a), (_, b)) in self.axis_values(prev).into_iter().zip(self.axis_values(next)) {
            if a != b {
                out.push((EV_ABS, code, b));
            }
        }
        out
    }

    fn axis_values(self, s: &ControllerState) -> Vec<(u16, i32)> {
        let hat = |neg: u32, pos: u32| i32::from(s.buttons & pos != 0) - i32::from(s.buttons & neg != 0);
        // Moonlight's stick Y is positive up; evdev's is positive down.
        let flip = |v: i16| -(i32::from(v).max(-32767));
        let mut values = vec![
            (ABS_X, s.left_stick.0.into()),
            (ABS_Y, flip(s.left_stick.1)),
            (ABS_RX, s.right_stick.0.into()),
            (ABS_RY, flip(s.right_stick.1)),
        ];
        if self == Self::Xbox {
            values.extend([(ABS_Z, s.left_trigger.into()), (ABS_RZ, s.right_trigger.into())]);
        }
        values.extend([(ABS_HAT0X, hat(LEFT, RIGHT)), (ABS_HAT0Y, hat(UP, DOWN))]);
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xbox_buttons_sticks_triggers_and_dpad() {
        let idle = ControllerState { number: 0, active_mask: 1, ..Default::default() };
        let pressed = ControllerState { buttons: 0x1000 | UP | RIGHT, left_stick: (1000, 32767), right_trigger: 255, ..idle };
        assert_eq!(
            PadKind::Xbox.changes(&idle, &pressed),
            [
                (EV_KEY, 0x130, 1),
                (EV_ABS, ABS_X, 1000),
                (EV_ABS, ABS_Y, -32767),
                (EV_ABS, ABS_RZ, 255),
                (EV_ABS, ABS_HAT0X, 1),
                (EV_ABS, ABS_HAT0Y, -1)
            ]
        );
        assert_eq!(PadKind::Xbox.changes(&pressed, &pressed), []);
        let released = ControllerState { buttons: 0, ..pressed };
        assert_eq!(PadKind::Xbox.changes(&pressed, &released), [(EV_KEY, 0x130, 0), (EV_ABS, ABS_HAT0X, 0), (EV_ABS, ABS_HAT0Y, 0)]);
    }

    #[test]
    fn switch_labels_and_digital_triggers() {
        let idle = ControllerState::default();
        let a_and_zr = ControllerState { buttons: 0x1000 | 0x20_0000, right_trigger: 200, left_trigger: 10, ..idle };
        // A is the right face button (BTN_EAST), Capture is BTN_Z, ZR a key; no trigger axes.
        assert_eq!(PadKind::Switch.changes(&idle, &a_and_zr), [(EV_KEY, 0x131, 1), (EV_KEY, 0x135, 1), (EV_KEY, BTN_TR2, 1)]);
        assert!(!PadKind::Switch.axes().iter().any(|a| a.0 == ABS_Z || a.0 == ABS_RZ));
        // Every key an event can name is one the device declares.
        for kind in [PadKind::Xbox, PadKind::Switch] {
            let all = ControllerState { buttons: u32::MAX, left_trigger: 255, right_trigger: 255, ..idle };
            for (ty, code, _) in kind.changes(&idle, &all) {
                assert!(ty != EV_KEY || kind.keys().contains(&code), "{kind:?} lacks key {code:#x}");
                assert!(ty != EV_ABS || kind.axes().iter().any(|a| a.0 == code), "{kind:?} lacks axis {code:#x}");
            }
        }
    }

    #[test]
    fn stick_y_is_flipped_without_overflow() {
        let idle = ControllerState::default();
        let down = ControllerState { left_stick: (0, i16::MIN), ..idle };
        assert_eq!(PadKind::Xbox.changes(&idle, &down), [(EV_ABS, ABS_Y, 32767)]);
    }

    #[test]
    fn the_client_s_kind_or_the_configured_one() {
        assert_eq!(GamepadChoice::Auto.kind(Some(ControllerKind::Nintendo)), PadKind::Switch);
        assert_eq!(GamepadChoice::Auto.kind(Some(ControllerKind::PlayStation)), PadKind::DualSense);
        assert_eq!(GamepadChoice::Auto.kind(Some(ControllerKind::Unknown)), PadKind::Xbox);
        assert_eq!(GamepadChoice::DualSense.kind(None), PadKind::DualSense);
        assert_eq!(GamepadChoice::DualShock4.kind(Some(ControllerKind::Xbox)), PadKind::DualShock4);
        assert_eq!(GamepadChoice::Auto.kind(None), PadKind::Xbox);
        assert_eq!(GamepadChoice::Switch.kind(Some(ControllerKind::Xbox)), PadKind::Switch);
        assert_eq!(GamepadChoice::Xbox.kind(Some(ControllerKind::Nintendo)), PadKind::Xbox);
    }
}
