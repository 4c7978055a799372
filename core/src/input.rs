//! Input events as they travel from a stream's client to the compositor's seat: what a
//! punktfunk/1 client sends, what the GameStream front end translates Moonlight's input
//! into, and what the compositor injects.

use serde::{Deserialize, Serialize};

/// One input event, in output pixels where it has a position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InputEvent {
    /// Linux evdev key code (KEY_A = 30).
    Key {
        code: u32,
        pressed: bool,
    },
    /// UTF-8 text, typed as key presses of the current layout (characters it lacks are
    /// skipped with a warning).
    Text(String),
    PointerMotion {
        x: f64,
        y: f64,
    },
    PointerRelative {
        dx: f64,
        dy: f64,
    },
    /// Linux evdev button code (BTN_LEFT = 0x110).
    Button {
        code: u32,
        pressed: bool,
    },
    /// Scroll in 1/120 detents (v120); positive is down or right.
    Scroll {
        vertical: bool,
        v120: i32,
    },
    TouchDown {
        id: u32,
        x: f64,
        y: f64,
    },
    TouchMotion {
        id: u32,
        x: f64,
        y: f64,
    },
    TouchUp {
        id: u32,
    },
}
