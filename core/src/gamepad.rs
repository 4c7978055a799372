//! A client's game controllers as both protocols carry them: what a pad is and does
//! ([`PadEvent`], client → host) and what a game asks of it ([`PadFeedback`], host → client).
//! The model is Moonlight's (with Sunshine's extensions: arrival, touchpad, motion, battery,
//! trigger rumble, LED), so GameStream input parses straight into it and punktfunk/1 sends
//! the same values as JSON on its control stream.

use serde::{Deserialize, Serialize};

/// The most controllers one client has (Sunshine's extension of GameStream's 4).
pub const MAX_PADS: usize = 16;

/// What kind of pad a client holds (`type` of Moonlight's arrival message; a number on
/// punktfunk/1's wire too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "u8", into = "u8")]
pub enum ControllerKind {
    Unknown,
    Xbox,
    PlayStation,
    Nintendo,
    /// Newer types (Steam Controller, …) a host may treat as `Unknown`.
    Other(u8),
}

impl From<u8> for ControllerKind {
    fn from(t: u8) -> Self {
        match t {
            0 => Self::Unknown,
            1 => Self::Xbox,
            2 => Self::PlayStation,
            3 => Self::Nintendo,
            other => Self::Other(other),
        }
    }
}

impl From<ControllerKind> for u8 {
    fn from(kind: ControllerKind) -> u8 {
        match kind {
            ControllerKind::Unknown => 0,
            ControllerKind::Xbox => 1,
            ControllerKind::PlayStation => 2,
            ControllerKind::Nintendo => 3,
            ControllerKind::Other(t) => t,
        }
    }
}

/// Controller capabilities of an arrival (`capabilities` bits).
pub mod caps {
    pub const ANALOG_TRIGGERS: u16 = 0x01;
    pub const RUMBLE: u16 = 0x02;
    pub const TRIGGER_RUMBLE: u16 = 0x04;
    pub const TOUCHPAD: u16 = 0x08;
    pub const ACCEL: u16 = 0x10;
    pub const GYRO: u16 = 0x20;
    pub const BATTERY_STATE: u16 = 0x40;
    pub const RGB_LED: u16 = 0x80;
}

/// Button bits of [`ControllerState::buttons`] (moonlight-common-c's `*_FLAG`).
pub mod buttons {
    pub const UP: u32 = 0x0001;
    pub const DOWN: u32 = 0x0002;
    pub const LEFT: u32 = 0x0004;
    pub const RIGHT: u32 = 0x0008;
    pub const START: u32 = 0x0010;
    pub const BACK: u32 = 0x0020;
    pub const LS_CLICK: u32 = 0x0040;
    pub const RS_CLICK: u32 = 0x0080;
    pub const LB: u32 = 0x0100;
    pub const RB: u32 = 0x0200;
    pub const HOME: u32 = 0x0400;
    pub const A: u32 = 0x1000;
    pub const B: u32 = 0x2000;
    pub const X: u32 = 0x4000;
    pub const Y: u32 = 0x8000;
    pub const PADDLE1: u32 = 0x010000;
    pub const PADDLE2: u32 = 0x020000;
    pub const PADDLE3: u32 = 0x040000;
    pub const PADDLE4: u32 = 0x080000;
    pub const TOUCHPAD: u32 = 0x100000;
    pub const MISC: u32 = 0x200000;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerArrival {
    pub number: u8,
    pub kind: ControllerKind,
    pub capabilities: u16,
    /// The button bits (as [`ControllerState::buttons`]) the pad has.
    pub buttons: u32,
}

/// Everything a pad's buttons and sticks say at one moment (sent whole on each change).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerState {
    pub number: u16,
    /// Bit n: pad n is connected; a state with its own bit clear unplugs the pad.
    pub active_mask: u16,
    pub buttons: u32,
    pub left_trigger: u8,
    pub right_trigger: u8,
    /// −32768..=32767, up positive (as XInput).
    pub left_stick: (i16, i16),
    pub right_stick: (i16, i16),
}

/// What a client's controller did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadEvent {
    /// A controller arrived: what it is and can do (before its first state, ideally).
    Arrived(ControllerArrival),
    State(ControllerState),
    /// A touch on the pad's touchpad (1 down, 2 up, 3 move, 4 cancel, 7 cancel all);
    /// `x`, `y` in 0..1 of the pad.
    Touch {
        number: u8,
        event: u8,
        pointer: u32,
        x: f32,
        y: f32,
    },
    /// An accelerometer (m/s², type 1) or gyroscope (°/s, type 2) reading.
    Motion {
        number: u8,
        motion_type: u8,
        xyz: [f32; 3],
    },
    /// The pad's battery: state (2 discharging, 3 charging, 5 full) and percent (0xff unknown).
    Battery {
        number: u8,
        state: u8,
        percent: u8,
    },
}

/// What the host tells a client about one of its controllers, as the game asked the
/// virtual pad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadFeedback {
    /// The heavy (low-frequency) and light (high-frequency) motors, 0..=0xffff; 0 stops.
    /// A level holds until the next one.
    Rumble {
        number: u16,
        low: u16,
        high: u16,
    },
    /// The trigger motors (Xbox One impulse triggers, DualSense).
    TriggerRumble {
        number: u16,
        left: u16,
        right: u16,
    },
    /// Asks for accelerometer (1) or gyroscope (2) readings at `rate_hz`; 0 stops them.
    MotionEvents {
        number: u16,
        motion_type: u8,
        rate_hz: u16,
    },
    Led {
        number: u16,
        rgb: [u8; 3],
    },
    /// A DualSense's adaptive-trigger effects as a game set them: `flags` says which it set
    /// (the pad's own bits: 0x04 right, 0x08 left), each effect as the pad takes it.
    AdaptiveTriggers {
        number: u16,
        flags: u8,
        left: TriggerEffect,
        right: TriggerEffect,
    },
}

/// One trigger's adaptive effect: the DualSense's mode byte (off, feedback, weapon,
/// vibration, …) and the 10 bytes of its parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerEffect {
    pub mode: u8,
    pub params: [u8; 10],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_travel_as_compact_json() {
        let arrival = PadEvent::Arrived(ControllerArrival { number: 1, kind: ControllerKind::PlayStation, capabilities: 3, buttons: 7 });
        let json = serde_json::to_string(&arrival).unwrap();
        assert_eq!(json, r#"{"arrived":{"number":1,"kind":2,"capabilities":3,"buttons":7}}"#);
        assert_eq!(serde_json::from_str::<PadEvent>(&json).unwrap(), arrival);
        let other = serde_json::from_str::<ControllerKind>("9").unwrap();
        assert_eq!((other, u8::from(other)), (ControllerKind::Other(9), 9));
        let rumble = PadFeedback::Rumble { number: 0, low: 0xffff, high: 0 };
        assert_eq!(serde_json::from_str::<PadFeedback>(&serde_json::to_string(&rumble).unwrap()).unwrap(), rumble);
        let effect = TriggerEffect { mode: 0x26, params: [5, 7, 0, 0, 0, 0, 0, 0, 0, 9] };
        let triggers = PadFeedback::AdaptiveTriggers { number: 1, flags: 0x08, left: effect, right: TriggerEffect::default() };
        let json = serde_json::to_string(&triggers).unwrap();
        assert!(json.starts_with(r#"{"adaptive_triggers":{"number":1,"flags":8,"left":{"mode":38,"params":[5,7,"#), "{json}");
        assert_eq!(serde_json::from_str::<PadFeedback>(&json).unwrap(), triggers);
        assert!(serde_json::from_str::<PadFeedback>(&json.replace("[5,7,", "[5,")).is_err(), "ten parameter bytes, no fewer");
        // Out-of-range values are errors, not wrapped numbers.
        assert!(serde_json::from_str::<PadEvent>(r#"{"battery":{"number":300,"state":2,"percent":5}}"#).is_err());
    }
}
