//! A DualSense as the kernel's hid-playstation driver knows it (USB): the HID reports it
//! reads (input report 0x01: sticks, buttons, motion, touchpad, battery), the feature reports
//! it asks for when it binds (calibration 0x05, pairing 0x09 with the MAC address that
//! becomes the `uniq` its pad, motion-sensor and touchpad devices share, firmware 0x20), and
//! the output report it sends (0x02: rumble motors, lightbar). Sans-IO: states in, report
//! bytes out; output reports in, feedback for the client out.
//!
//! The report descriptor is our own: the driver reads reports by id and size, not by the
//! descriptor's usages, so it declares just those reports (vendor-defined bytes).

use punktfunk_core::gamepad::ControllerState;
use punktfunk_core::gamepad::PadFeedback;

/// Sony's vendor id and the DualSense's product id (what hid-playstation binds to).
pub const VENDOR: u32 = 0x054c;
pub const PRODUCT: u32 = 0x0ce6;
pub const NAME: &str = "Sony Interactive Entertainment DualSense Wireless Controller";

/// Report ids and sizes (the id byte included) as the driver expects them.
const INPUT: u8 = 0x01;
const INPUT_SIZE: usize = 64;
const OUTPUT: u8 = 0x02;
const CALIBRATION: u8 = 0x05;
const CALIBRATION_SIZE: usize = 41;
const PAIRING: u8 = 0x09;
const PAIRING_SIZE: usize = 20;
const FIRMWARE: u8 = 0x20;
const FIRMWARE_SIZE: usize = 64;

/// Input 0x01 (63 bytes), output 0x02 (62), features 0x05 (40), 0x09 (19), 0x20 (63).
#[rustfmt::skip]
pub const DESCRIPTOR: &[u8] = &[
    0x05, 0x01,       // Usage Page (Generic Desktop)
    0x09, 0x05,       // Usage (Game Pad)
    0xa1, 0x01,       // Collection (Application)
    0x06, 0x00, 0xff, //   Usage Page (vendor-defined)
    0x15, 0x00,       //   Logical Minimum (0)
    0x26, 0xff, 0x00, //   Logical Maximum (255)
    0x75, 0x08,       //   Report Size (8 bits)
    0x85, INPUT, 0x09, 0x20, 0x95, 63, 0x81, 0x02,       // Input: report 1, 63 bytes
    0x85, OUTPUT, 0x09, 0x21, 0x95, 62, 0x91, 0x02,      // Output: report 2, 62 bytes
    0x85, CALIBRATION, 0x09, 0x22, 0x95, 40, 0xb1, 0x02, // Feature: report 5, 40 bytes
    0x85, PAIRING, 0x09, 0x23, 0x95, 19, 0xb1, 0x02,     // Feature: report 9, 19 bytes
    0x85, FIRMWARE, 0x09, 0x24, 0x95, 63, 0xb1, 0x02,    // Feature: report 0x20, 63 bytes
    0xc0,             // End Collection
];

/// Raw sensor units: the calibration we report makes the driver's scale exact.
const GYRO_PER_DEG_S: f32 = 16.0;
const ACCEL_PER_G: f32 = 8192.0;
const STANDARD_GRAVITY: f32 = 9.80665;
const TOUCHPAD: (f32, f32) = (1919.0, 1079.0);

/// The feature report `id`, as the driver asks for it when it binds; `None` for others.
pub fn feature_report(id: u8, mac: [u8; 6]) -> Option<Vec<u8>> {
    let mut r = match id {
        CALIBRATION => {
            let mut r = vec![0u8; CALIBRATION_SIZE];
            // Biases 0 (1..7); gyro ±plus/minus per axis (7..19), both speeds (19..23),
            // accelerometer ±plus/minus per axis (23..35): the driver then scales raw gyro
            // by speed·2/(plus−minus)·1024 = 1024/16 per unit (1/16 °/s) and raw
            // acceleration 1:1 in its 8192-per-g units.
            let le = |v: i16| v.to_le_bytes();
            let gyro: [i16; 6] = [16, -16, 16, -16, 16, -16].map(|v| v * 1000);
            for (i, v) in gyro.iter().enumerate() {
                r[7 + 2 * i..9 + 2 * i].copy_from_slice(&le(*v));
            }
            r[19..21].copy_from_slice(&le(1000));
            r[21..23].copy_from_slice(&le(1000));
            for i in 0..3 {
                r[23 + 4 * i..25 + 4 * i].copy_from_slice(&le(8192));
                r[25 + 4 * i..27 + 4 * i].copy_from_slice(&le(-8192));
            }
            r
        }
        PAIRING => {
            let mut r = vec![0u8; PAIRING_SIZE];
            // Least significant byte first, as the device sends it.
            r[1..7].copy_from_slice(&{
                let mut m = mac;
                m.reverse();
                m
            });
            r
        }
        // Hardware and firmware versions, update version 0: the driver uses classic rumble.
        FIRMWARE => vec![0u8; FIRMWARE_SIZE],
        _ => return None,
    };
    r[0] = id;
    Some(r)
}

/// The MAC address as the driver writes it into `uniq`.
pub fn uniq(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
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

/// Input report 0x01 for a Moonlight state and the extras.
pub fn input_report(s: &ControllerState, x: &Extras) -> [u8; INPUT_SIZE] {
    let mut r = [0u8; INPUT_SIZE];
    r[0] = INPUT;
    // Sticks: 0..255, 128 centred, Y down (Moonlight's is up).
    let axis = |v: i16| ((i32::from(v) >> 8) + 128) as u8;
    let flipped = |v: i16| (127 - (i32::from(v) >> 8)).clamp(0, 255) as u8;
    r[1..7].copy_from_slice(&[
        axis(s.left_stick.0),
        flipped(s.left_stick.1),
        axis(s.right_stick.0),
        flipped(s.right_stick.1),
        s.left_trigger,
        s.right_trigger,
    ]);
    r[7] = x.sequence;
    let b = s.buttons;
    let on = |bit: u32, mask: u8| if b & bit != 0 { mask } else { 0 };
    // The d-pad as a hat: 0 north, clockwise to 7 north-west, 8 centred.
    let (up, down, left, right) = (b & 0x1 != 0, b & 0x2 != 0, b & 0x4 != 0, b & 0x8 != 0);
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
    // A cross, B circle, X square, Y triangle; LB/RB L1/R1; back Create, start Options.
    r[8] = hat | on(0x4000, 0x10) | on(0x1000, 0x20) | on(0x2000, 0x40) | on(0x8000, 0x80);
    r[9] = on(0x0100, 0x01)
        | on(0x0200, 0x02)
        | if s.left_trigger > 0 { 0x04 } else { 0 }
        | if s.right_trigger > 0 { 0x08 } else { 0 }
        | on(0x0020, 0x10)
        | on(0x0010, 0x20)
        | on(0x0040, 0x40)
        | on(0x0080, 0x80);
    // Guide: PS; the touchpad's click; misc: the microphone button.
    r[10] = on(0x0400, 0x01) | on(0x10_0000, 0x02) | on(0x20_0000, 0x04);
    let raw = |v: f32| (v.clamp(-32768.0, 32767.0) as i16).to_le_bytes();
    for i in 0..3 {
        r[16 + 2 * i..18 + 2 * i].copy_from_slice(&raw(x.gyro[i] * GYRO_PER_DEG_S));
        r[22 + 2 * i..24 + 2 * i].copy_from_slice(&raw(x.accel[i] / STANDARD_GRAVITY * ACCEL_PER_G));
    }
    r[28..32].copy_from_slice(&x.timestamp.to_le_bytes());
    for (i, contact) in x.contacts.iter().enumerate() {
        let at = 33 + 4 * i;
        r[at..at + 4].copy_from_slice(&match contact {
            // The high bit marks an idle slot.
            None => [0x80, 0, 0, 0],
            Some(c) => {
                let px = (c.x.clamp(0.0, 1.0) * TOUCHPAD.0) as u16;
                let py = (c.y.clamp(0.0, 1.0) * TOUCHPAD.1) as u16;
                [c.id & 0x7f, px as u8, ((px >> 8) as u8 & 0x0f) | ((py as u8 & 0x0f) << 4), (py >> 4) as u8]
            }
        });
    }
    // Battery: tenths in the low nibble, charging state in the high one.
    r[53] = match x.battery {
        None => 0x0a | 0x20,
        Some((_, Charge::Full)) => 0x0a | 0x20,
        Some((percent, charge)) => (percent.min(100) / 10) | if charge == Charge::Charging { 0x10 } else { 0 },
    };
    r
}

/// What an output report from the driver (or a game through hidraw) asks of the client's pad:
/// rumble when it sets the motors, the lightbar's colour when it sets that.
pub fn feedback(number: u16, report: &[u8]) -> Vec<PadFeedback> {
    let mut out = Vec::new();
    // Report 0x02, then the common part: flags 0 and 1, right and left motor, …
    let Some(common) = report.strip_prefix(&[OUTPUT]).filter(|c| c.len() >= 47) else { return out };
    let (flag0, flag1, flag2) = (common[0], common[1], common[38]);
    // Classic rumble (compatible vibration, v1 or v2) with haptics selected.
    if flag0 & 0x01 != 0 || flag0 & 0x02 != 0 && flag2 & 0x04 != 0 {
        let scale = |v: u8| u16::from(v) * 257;
        out.push(PadFeedback::Rumble { number, low: scale(common[3]), high: scale(common[2]) });
    }
    if flag1 & 0x04 != 0 {
        out.push(PadFeedback::Led { number, rgb: [common[44], common[45], common[46]] });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_declares_every_report_at_its_size() {
        // Report id, usage, count: each one's count is its size without the id byte.
        for (id, size) in
            [(INPUT, INPUT_SIZE), (OUTPUT, 63), (CALIBRATION, CALIBRATION_SIZE), (PAIRING, PAIRING_SIZE), (FIRMWARE, FIRMWARE_SIZE)]
        {
            let at = DESCRIPTOR.windows(2).position(|w| w == [0x85, id]).unwrap_or_else(|| panic!("no report {id:#x}"));
            assert_eq!(usize::from(DESCRIPTOR[at + 5]), size - 1, "report {id:#x}");
        }
        for id in [CALIBRATION, PAIRING, FIRMWARE] {
            let r = feature_report(id, [1, 2, 3, 4, 5, 6]).unwrap();
            assert_eq!(r[0], id);
        }
        assert_eq!(feature_report(0x33, [0; 6]), None);
    }

    #[test]
    fn the_mac_goes_least_significant_byte_first_and_reads_back_as_uniq() {
        let mac = [0x02, 0x70, 0x66, 0xaa, 0xbb, 0x01];
        assert_eq!(&feature_report(PAIRING, mac).unwrap()[1..7], &[0x01, 0xbb, 0xaa, 0x66, 0x70, 0x02]);
        assert_eq!(uniq(mac), "02:70:66:aa:bb:01");
    }

    #[test]
    fn buttons_sticks_hat_motion_touch_and_battery() {
        let s = ControllerState {
            buttons: 0x1000 | 0x0001 | 0x0008 | 0x0400 | 0x10_0000,
            left_stick: (32767, 32767),
            right_trigger: 9,
            ..Default::default()
        };
        let x = Extras {
            contacts: [Some(Contact { id: 3, x: 1.0, y: 0.5 }), None],
            gyro: [90.0, 0.0, -1.0],
            accel: [0.0, STANDARD_GRAVITY, 0.0],
            battery: Some((55, Charge::Charging)),
            sequence: 7,
            timestamp: 300,
        };
        let r = input_report(&s, &x);
        assert_eq!(&r[..8], &[1, 255, 0, 128, 127, 0, 9, 7], "stick right and up, trigger, sequence");
        assert_eq!(r[8], 1 | 0x20, "north-east, cross");
        assert_eq!(r[9], 0x08, "R2 pressed with the trigger");
        assert_eq!(r[10], 0x03, "PS and the touchpad's click");
        assert_eq!(i16::from_le_bytes([r[16], r[17]]), 1440, "90 °/s at 16 per °/s");
        assert_eq!(i16::from_le_bytes([r[20], r[21]]), -16);
        assert_eq!(i16::from_le_bytes([r[24], r[25]]), 8192, "1 g");
        let (px, py) = (u16::from(r[34]) | u16::from(r[35] & 0x0f) << 8, u16::from(r[35] >> 4) | u16::from(r[36]) << 4);
        assert_eq!((r[33], px, py), (3, 1919, 539));
        assert_eq!(r[37], 0x80, "the second slot is idle");
        assert_eq!(r[53], 0x15, "charging, 50–59 %");
        let centred = input_report(&ControllerState::default(), &Extras::default());
        assert_eq!((centred[1], centred[2], centred[8]), (128, 127, 8));
    }

    #[test]
    fn rumble_and_lightbar_from_the_driver_s_output_reports() {
        let mut report = vec![0u8; 63];
        report[0] = OUTPUT;
        report[1] = 0x03; // compatible vibration, haptics select
        report[3] = 0x40; // right (light) motor
        report[4] = 0xff; // left (heavy) motor
        report[2] = 0x04; // lightbar
        report[45..48].copy_from_slice(&[0, 0, 128]);
        assert_eq!(
            feedback(2, &report),
            [PadFeedback::Rumble { number: 2, low: 0xffff, high: 0x4040 }, PadFeedback::Led { number: 2, rgb: [0, 0, 128] }]
        );
        // Player LEDs only: nothing for the client; a short or foreign report: nothing.
        report[1] = 0;
        report[2] = 0x10;
        assert_eq!(feedback(2, &report), []);
        assert_eq!(feedback(2, &report[..20]), []);
        assert_eq!(feedback(2, &[0x31; 78]), []);
    }
}
