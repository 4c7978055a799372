//! A DualShock 4 (the second model, USB) as the kernel's drivers know it: hid-sony until
//! Linux 6.1, hid-playstation from 6.2. Both read input report 0x01 (sticks, buttons,
//! motion, touchpad, battery) and ask, when they bind, for the calibration (0x02), the MAC
//! address that becomes the `uniq` the pad, its motion sensors and touchpad share (hid-sony
//! asks 0x81, hid-playstation and SDL 0x12) and the firmware (0xa3); they send output report
//! 0x05 (rumble motors, lightbar). Sans-IO: states in, report bytes out; output reports in,
//! feedback for the client out.
//!
//! The report descriptor is our own, declaring the reports at the sizes the drivers expect.
//! Unlike the DualSense's, its input report names its sticks, triggers, hat and buttons:
//! hid-sony makes the pad's buttons and axes from the descriptor (only motion, touch and
//! battery from the report's bytes).

use super::playstation::{self, Charge, Extras};
use punktfunk_core::gamepad::buttons::{HOME, TOUCHPAD};
use punktfunk_core::gamepad::{ControllerState, PadFeedback};

pub const VENDOR: u16 = 0x054c;
pub const PRODUCT: u16 = 0x09cc;
pub const NAME: &str = "Sony Interactive Entertainment Wireless Controller";

/// Report ids and sizes (the id byte included) as the drivers expect them.
const INPUT: u8 = 0x01;
const INPUT_SIZE: usize = 64;
const OUTPUT: u8 = 0x05;
const CALIBRATION: u8 = 0x02;
const CALIBRATION_SIZE: usize = 37;
const PAIRING: u8 = 0x12;
const PAIRING_SIZE: usize = 16;
const MAC: u8 = 0x81;
const MAC_SIZE: usize = 7;
const FIRMWARE: u8 = 0xa3;
const FIRMWARE_SIZE: usize = 49;

#[rustfmt::skip]
pub const DESCRIPTOR: &[u8] = &[
    0x05, 0x01,             // Usage Page (Generic Desktop)
    0x09, 0x05,             // Usage (Game Pad)
    0xa1, 0x01,             // Collection (Application)
    0x85, INPUT,            //   Report 1 (63 bytes):
    0x09, 0x30, 0x09, 0x31, //   X, Y (left stick),
    0x09, 0x32, 0x09, 0x35, //   Z, Rz (right stick),
    0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x04, 0x81, 0x02, // 0..255, 4 bytes
    0x09, 0x39,             //   Hat switch, 0..7 at 45° each, anything else centred
    0x15, 0x00, 0x25, 0x07, 0x35, 0x00, 0x46, 0x3b, 0x01, 0x65, 0x14,
    0x75, 0x04, 0x95, 0x01, 0x81, 0x42, // 4 bits, null state
    0x65, 0x00, 0x45, 0x00, //   no unit, no physical range from here on
    0x05, 0x09, 0x19, 0x01, 0x29, 0x0e, // Buttons 1..14 (square, cross, circle, triangle,
    0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x0e, 0x81, 0x02, // L1, R1, L2, R2, share,
                            //   options, L3, R3, PS, touchpad click), a bit each
    0x06, 0x00, 0xff, 0x09, 0x20, // vendor-defined: the report counter, 6 bits
    0x15, 0x00, 0x25, 0x3f, 0x75, 0x06, 0x95, 0x01, 0x81, 0x02,
    0x05, 0x01, 0x09, 0x33, 0x09, 0x34, // Rx, Ry: L2 and R2, 0..255
    0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x02, 0x81, 0x02,
    0x06, 0x00, 0xff, 0x09, 0x21, 0x95, 54, 0x81, 0x02,  // vendor-defined: timestamp,
                            //   motion, battery, touch (54 bytes)
    0x85, OUTPUT, 0x09, 0x22, 0x95, 31, 0x91, 0x02,      // Output: report 5, 31 bytes
    0x85, CALIBRATION, 0x09, 0x23, 0x95, 36, 0xb1, 0x02, // Feature: report 2, 36 bytes
    0x85, PAIRING, 0x09, 0x24, 0x95, 15, 0xb1, 0x02,     // Feature: report 0x12, 15 bytes
    0x85, MAC, 0x09, 0x25, 0x95, 6, 0xb1, 0x02,          // Feature: report 0x81, 6 bytes
    0x85, FIRMWARE, 0x09, 0x26, 0x95, 48, 0xb1, 0x02,    // Feature: report 0xa3, 48 bytes
    0xc0,                   // End Collection
];

/// The touchpad's resolution (the drivers' range).
const TOUCHPAD_SIZE: (f32, f32) = (1919.0, 941.0);

/// The feature report `id`, as the drivers and SDL ask for it; `None` for others.
pub fn feature_report(id: u8, mac: [u8; 6]) -> Option<Vec<u8>> {
    let mut r = match id {
        CALIBRATION => playstation::calibration(id, CALIBRATION_SIZE),
        PAIRING | MAC => {
            let mut r = vec![0u8; if id == MAC { MAC_SIZE } else { PAIRING_SIZE }];
            r[1..7].copy_from_slice(&playstation::mac_bytes(mac));
            r
        }
        FIRMWARE => vec![0u8; FIRMWARE_SIZE],
        _ => return None,
    };
    r[0] = id;
    Some(r)
}

/// Input report 0x01 for a Moonlight state and the extras.
pub fn input_report(s: &ControllerState, x: &Extras) -> [u8; INPUT_SIZE] {
    let mut r = [0u8; INPUT_SIZE];
    r[0] = INPUT;
    r[1..5].copy_from_slice(&playstation::sticks(s));
    r[5] = playstation::hat_and_faces(s.buttons);
    r[6] = playstation::shoulders(s);
    let on = |bit: u32, mask: u8| if s.buttons & bit != 0 { mask } else { 0 };
    r[7] = on(HOME, 0x01) | on(TOUCHPAD, 0x02) | (x.sequence << 2);
    r[8..10].copy_from_slice(&[s.left_trigger, s.right_trigger]);
    // The sensor clock counts 16/3 µs (the extras' timestamp 1/3 µs).
    r[10..12].copy_from_slice(&((x.timestamp / 16) as u16).to_le_bytes());
    r[13..25].copy_from_slice(&playstation::motion(x));
    // Battery: tenths in the low nibble (11 full), the cable in bit 4.
    r[30] = match x.battery {
        None | Some((_, Charge::Full)) => 0x10 | 11,
        Some((percent, Charge::Charging)) => 0x10 | (percent.min(100) / 10),
        Some((percent, Charge::Discharging)) => percent.min(100) / 10,
    };
    // One touch frame: its counter, then two contacts.
    r[33] = 1;
    r[34] = x.sequence;
    for (i, contact) in x.contacts.iter().enumerate() {
        r[35 + 4 * i..39 + 4 * i].copy_from_slice(&playstation::contact(*contact, TOUCHPAD_SIZE));
    }
    r
}

/// What an output report from a driver (or a game through hidraw) asks of the client's pad:
/// rumble when it sets the motors, the lightbar's colour when it sets that.
pub fn feedback(number: u16, report: &[u8]) -> Vec<PadFeedback> {
    let mut out = Vec::new();
    if report.len() < 11 || report[0] != OUTPUT {
        return out;
    }
    // Flags: 0x01 motors, 0x02 lightbar; then the right (light) and left (heavy) motor.
    if report[1] & 0x01 != 0 {
        out.push(playstation::rumble(number, report[5], report[4]));
    }
    if report[1] & 0x02 != 0 {
        out.push(PadFeedback::Led { number, rgb: [report[6], report[7], report[8]] });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gamepad::playstation::{Contact, tests::report_bits};
    use punktfunk_core::gamepad::buttons::*;

    const OUTPUT_SIZE: usize = 32;

    #[test]
    fn the_descriptor_declares_every_report_at_its_size() {
        assert_eq!(report_bits(DESCRIPTOR, INPUT, 0x80), 8 * (INPUT_SIZE - 1));
        assert_eq!(report_bits(DESCRIPTOR, OUTPUT, 0x90), 8 * (OUTPUT_SIZE - 1));
        for (id, size) in [(CALIBRATION, CALIBRATION_SIZE), (PAIRING, PAIRING_SIZE), (MAC, MAC_SIZE), (FIRMWARE, FIRMWARE_SIZE)] {
            assert_eq!(report_bits(DESCRIPTOR, id, 0xb0), 8 * (size - 1), "report {id:#x}");
            let r = feature_report(id, [1, 2, 3, 4, 5, 6]).unwrap();
            assert_eq!((r[0], r.len()), (id, size));
        }
        assert_eq!(feature_report(0x33, [0; 6]), None);
        // hid-sony and hid-playstation read the MAC from different reports: the same one.
        let mac = [0x02, 0x70, 0x66, 0xaa, 0xbb, 0x01];
        assert_eq!(feature_report(MAC, mac).unwrap()[1..7], feature_report(PAIRING, mac).unwrap()[1..7]);
    }

    #[test]
    fn buttons_sticks_hat_motion_touch_and_battery() {
        let s = ControllerState {
            buttons: A | UP | RIGHT | LB | START | HOME | TOUCHPAD,
            left_stick: (32767, 32767),
            left_trigger: 200,
            ..Default::default()
        };
        let x = Extras {
            contacts: [None, Some(Contact { id: 5, x: 0.5, y: 1.0 })],
            gyro: [90.0, 0.0, -1.0],
            accel: [0.0, 9.80665, 0.0],
            battery: Some((55, Charge::Discharging)),
            sequence: 7,
            timestamp: 16 * 1000,
        };
        let r = input_report(&s, &x);
        assert_eq!(&r[..5], &[1, 255, 0, 128, 127], "left stick right and up");
        assert_eq!(r[5], 1 | 0x20, "north-east, cross");
        assert_eq!(r[6], 0x01 | 0x04 | 0x20, "L1, L2 with its trigger, options");
        assert_eq!(r[7], 0x01 | 0x02 | 7 << 2, "PS, the touchpad's click, the counter");
        assert_eq!((r[8], r[9]), (200, 0));
        assert_eq!(u16::from_le_bytes([r[10], r[11]]), 1000);
        assert_eq!(i16::from_le_bytes([r[13], r[14]]), 1440, "90 °/s at 16 per °/s");
        assert_eq!(i16::from_le_bytes([r[21], r[22]]), 8192, "1 g on Y");
        assert_eq!(r[30], 5, "on battery, 50–59 %");
        assert_eq!((r[33], r[35]), (1, 0x80), "one touch frame, the first slot idle");
        let (px, py) = (u16::from(r[40]) | u16::from(r[41] & 0x0f) << 8, u16::from(r[41] >> 4) | u16::from(r[42]) << 4);
        assert_eq!((r[39], px, py), (5, 959, 941));
        let idle = input_report(&ControllerState::default(), &Extras::default());
        assert_eq!((idle[1], idle[2], idle[5], idle[30]), (128, 127, 8, 0x1b), "centred, full on the cable");
    }

    #[test]
    fn rumble_and_lightbar_from_the_driver_s_output_reports() {
        let mut report = [0u8; OUTPUT_SIZE];
        report[..9].copy_from_slice(&[OUTPUT, 0x07, 0, 0, 0x40, 0xff, 0, 0, 0x40]);
        assert_eq!(
            feedback(1, &report),
            [PadFeedback::Rumble { number: 1, low: 0xffff, high: 0x4040 }, PadFeedback::Led { number: 1, rgb: [0, 0, 0x40] }]
        );
        report[1] = 0x04; // blinking only
        assert_eq!(feedback(1, &report), []);
        assert_eq!(feedback(1, &report[..5]), [], "short");
        assert_eq!(feedback(1, &[0x02; 64]), [], "another report");
    }
}
