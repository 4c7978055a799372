//! What Sony's pads share, the DualSense ([`super::dualsense`]) and the DualShock 4
//! ([`super::dualshock4`]): the extras a client's pad reports beyond a Moonlight controller
//! state (touch, motion, battery), the pieces of their input reports that are laid out alike
//! (sticks, the d-pad as a hat, face and shoulder buttons, touch contacts), the calibration
//! that makes the kernel's sensor units exact, and the MAC address their drivers read as
//! `uniq`. Which of the two a pad is: [`Model`].

use punktfunk_core::gamepad::buttons::*;
use punktfunk_core::gamepad::{ControllerState, PadFeedback};

/// Raw sensor units: the calibration we report makes the drivers' scale exact.
pub const GYRO_PER_DEG_S: f32 = 16.0;
pub const ACCEL_PER_G: f32 = 8192.0;
const STANDARD_GRAVITY: f32 = 9.80665;

/// The Sony pads the host makes over uhid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    DualSense,
    DualShock4,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Self::DualSense => super::dualsense::NAME,
            Self::DualShock4 => super::dualshock4::NAME,
        }
    }

    /// Sony's vendor id and the pad's product id (what the drivers bind to).
    pub fn ids(self) -> (u16, u16) {
        match self {
            Self::DualSense => (super::dualsense::VENDOR, super::dualsense::PRODUCT),
            Self::DualShock4 => (super::dualshock4::VENDOR, super::dualshock4::PRODUCT),
        }
    }

    pub fn descriptor(self) -> &'static [u8] {
        match self {
            Self::DualSense => super::dualsense::DESCRIPTOR,
            Self::DualShock4 => super::dualshock4::DESCRIPTOR,
        }
    }

    /// The feature report `id` its driver (or a game through hidraw) asks for; `None` for
    /// one the pad does not have.
    pub fn feature_report(self, id: u8, mac: [u8; 6]) -> Option<Vec<u8>> {
        match self {
            Self::DualSense => super::dualsense::feature_report(id, mac),
            Self::DualShock4 => super::dualshock4::feature_report(id, mac),
        }
    }

    pub fn input_report(self, state: &ControllerState, extras: &Extras) -> Vec<u8> {
        match self {
            Self::DualSense => super::dualsense::input_report(state, extras).to_vec(),
            Self::DualShock4 => super::dualshock4::input_report(state, extras).to_vec(),
        }
    }

    /// What an output report asks of the client's pad: rumble, the lightbar's colour.
    pub fn feedback(self, number: u16, report: &[u8]) -> Vec<PadFeedback> {
        match self {
            Self::DualSense => super::dualsense::feedback(number, report),
            Self::DualShock4 => super::dualshock4::feedback(number, report),
        }
    }
}

/// One touch contact on the pad, in 0..1 of its width and height.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Contact {
    pub id: u8,
    pub x: f32,
    pub y: f32,
}

/// Everything the pad reports beyond a Moonlight controller state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    pub contacts: [Option<Contact>; 2],
    /// Gyroscope (°/s) and accelerometer (m/s²), as the client's pad measured them.
    pub gyro: [f32; 3],
    pub accel: [f32; 3],
    /// Battery percent and whether it charges / is full.
    pub battery: Option<(u8, Charge)>,
    /// Counts input reports (the driver's sensor timestamps, in 1/3 µs).
    pub sequence: u8,
    pub timestamp: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    Discharging,
    Charging,
    Full,
}

/// The MAC address as the drivers write it into `uniq`.
pub fn uniq(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The MAC address as the pads send it: least significant byte first.
pub fn mac_bytes(mac: [u8; 6]) -> [u8; 6] {
    let mut m = mac;
    m.reverse();
    m
}

/// Both sticks: 0..255, 128 centred, Y down (Moonlight's is up).
pub fn sticks(s: &ControllerState) -> [u8; 4] {
    let axis = |v: i16| ((i32::from(v) >> 8) + 128) as u8;
    let flipped = |v: i16| (127 - (i32::from(v) >> 8)).clamp(0, 255) as u8;
    [axis(s.left_stick.0), flipped(s.left_stick.1), axis(s.right_stick.0), flipped(s.right_stick.1)]
}

/// The d-pad as a hat (0 north, clockwise to 7 north-west, 8 centred) and the face buttons
/// above it: A cross, B circle, X square, Y triangle.
pub fn hat_and_faces(buttons: u32) -> u8 {
    let on = |bit: u32, mask: u8| if buttons & bit != 0 { mask } else { 0 };
    let (up, down, left, right) = (buttons & UP != 0, buttons & DOWN != 0, buttons & LEFT != 0, buttons & RIGHT != 0);
    let hat = match (up && !down, down && !up, left && !right, right && !left) {
        (true, _, false, false) => 0,
        (true, _, _, true) => 1,
        (_, false, false, true) => 2,
        (_, true, _, true) => 3,
        (_, true, false, false) => 4,
        (_, true, true, _) => 5,
        (false, false, true, _) => 6,
        (true, _, true, _) => 7,
        _ => 8,
    };
    hat | on(X, 0x10) | on(A, 0x20) | on(B, 0x40) | on(Y, 0x80)
}

/// L1, R1, L2 and R2 (pressed with any pull of their trigger), Create/Share (back),
/// Options (start), L3, R3.
pub fn shoulders(s: &ControllerState) -> u8 {
    let on = |bit: u32, mask: u8| if s.buttons & bit != 0 { mask } else { 0 };
    on(LB, 0x01)
        | on(RB, 0x02)
        | if s.left_trigger > 0 { 0x04 } else { 0 }
        | if s.right_trigger > 0 { 0x08 } else { 0 }
        | on(BACK, 0x10)
        | on(START, 0x20)
        | on(LS_CLICK, 0x40)
        | on(RS_CLICK, 0x80)
}

/// Gyroscope then accelerometer, three little-endian 16-bit readings each, in the units
/// the calibration makes exact.
pub fn motion(x: &Extras) -> [u8; 12] {
    let raw = |v: f32| (v.clamp(-32768.0, 32767.0) as i16).to_le_bytes();
    let mut r = [0u8; 12];
    for i in 0..3 {
        r[2 * i..2 * i + 2].copy_from_slice(&raw(x.gyro[i] * GYRO_PER_DEG_S));
        r[6 + 2 * i..8 + 2 * i].copy_from_slice(&raw(x.accel[i] / STANDARD_GRAVITY * ACCEL_PER_G));
    }
    r
}

/// A touch contact on a pad `size` wide and high: its id (the high bit marks an idle slot),
/// then 12-bit X and Y.
pub fn contact(contact: Option<Contact>, size: (f32, f32)) -> [u8; 4] {
    match contact {
        None => [0x80, 0, 0, 0],
        Some(c) => {
            let px = (c.x.clamp(0.0, 1.0) * size.0) as u16;
            let py = (c.y.clamp(0.0, 1.0) * size.1) as u16;
            [c.id & 0x7f, px as u8, ((px >> 8) as u8 & 0x0f) | ((py as u8 & 0x0f) << 4), (py >> 4) as u8]
        }
    }
}

/// The calibration feature report body (`size` bytes, the id byte first): biases 0; gyro
/// plus/minus per axis (7..19), both speeds (19..23), accelerometer plus/minus per axis
/// (23..35). The drivers then scale raw gyro by speed·2/(plus−minus)·1024 = 1024/16 per unit
/// (1/16 °/s) and raw acceleration 1:1 in their 8192-per-g units.
pub fn calibration(id: u8, size: usize) -> Vec<u8> {
    let mut r = vec![0u8; size];
    r[0] = id;
    let le = |v: i16| v.to_le_bytes();
    for i in 0..3 {
        r[7 + 4 * i..9 + 4 * i].copy_from_slice(&le(16_000));
        r[9 + 4 * i..11 + 4 * i].copy_from_slice(&le(-16_000));
        r[23 + 4 * i..25 + 4 * i].copy_from_slice(&le(8192));
        r[25 + 4 * i..27 + 4 * i].copy_from_slice(&le(-8192));
    }
    r[19..21].copy_from_slice(&le(1000));
    r[21..23].copy_from_slice(&le(1000));
    r
}

/// Rumble from an output report's motor bytes: the left (heavy) motor is Moonlight's low
/// frequency one.
pub fn rumble(number: u16, left: u8, right: u8) -> PadFeedback {
    let scale = |v: u8| u16::from(v) * 257;
    PadFeedback::Rumble { number, low: scale(left), high: scale(right) }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The bits report `id` carries in main items of `tag` (0x80 input, 0x90 output, 0xb0
    /// feature), walking the descriptor's short items.
    pub fn report_bits(descriptor: &[u8], id: u8, tag: u8) -> usize {
        let (mut size, mut count, mut current, mut bits) = (0usize, 0usize, 0u8, 0usize);
        let mut at = 0;
        while at < descriptor.len() {
            let prefix = descriptor[at];
            let len = [0, 1, 2, 4][usize::from(prefix & 0x03)];
            let data = descriptor[at + 1..at + 1 + len].iter().rev().fold(0usize, |v, b| v << 8 | usize::from(*b));
            match prefix & 0xfc {
                0x74 => size = data,
                0x94 => count = data,
                0x84 => current = data as u8,
                t if t == tag && current == id => bits += size * count,
                _ => {}
            }
            at += 1 + len;
        }
        bits
    }

    #[test]
    fn the_hat_turns_clockwise_and_opposites_cancel() {
        let hat = |b: u32| hat_and_faces(b) & 0x0f;
        assert_eq!([hat(UP), hat(UP | RIGHT), hat(RIGHT), hat(DOWN | RIGHT), hat(DOWN)], [0, 1, 2, 3, 4]);
        assert_eq!([hat(DOWN | LEFT), hat(LEFT), hat(UP | LEFT), hat(0), hat(UP | DOWN)], [5, 6, 7, 8, 8]);
        assert_eq!(hat_and_faces(A | Y) & 0xf0, 0xa0, "cross and triangle");
    }

    #[test]
    fn the_mac_goes_least_significant_byte_first_and_reads_back_as_uniq() {
        let mac = [0x02, 0x70, 0x66, 0xaa, 0xbb, 0x01];
        assert_eq!(mac_bytes(mac), [0x01, 0xbb, 0xaa, 0x66, 0x70, 0x02]);
        assert_eq!(uniq(mac), "02:70:66:aa:bb:01");
    }
}
