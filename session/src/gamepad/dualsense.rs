//! A DualSense as the kernel's hid-playstation driver knows it (USB): the HID reports it
//! reads (input report 0x01: sticks, buttons, motion, touchpad, battery), the feature reports
//! it asks for when it binds (calibration 0x05, pairing 0x09 with the MAC address that
//! becomes the `uniq` its pad, motion-sensor and touchpad devices share, firmware 0x20), and
//! the output report it sends (0x02: rumble motors, lightbar). Sans-IO: states in, report
//! bytes out; output reports in, feedback for the client out.
//!
//! The report descriptor is our own: the driver reads reports by id and size, not by the
//! descriptor's usages, so it declares just those reports (vendor-defined bytes).

use super::playstation::{self, Charge, Extras};
use punktfunk_core::gamepad::buttons::{HOME, MISC, TOUCHPAD};
use punktfunk_core::gamepad::{ControllerState, PadFeedback, TriggerEffect};

/// Sony's vendor id and the DualSense's product id (what hid-playstation binds to).
pub const VENDOR: u16 = 0x054c;
pub const PRODUCT: u16 = 0x0ce6;
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
/// The output report's first flags: which trigger effects it sets.
const RIGHT_TRIGGER: u8 = 0x04;
const LEFT_TRIGGER: u8 = 0x08;

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

const TOUCHPAD_SIZE: (f32, f32) = (1919.0, 1079.0);

/// The feature report `id`, as the driver asks for it when it binds; `None` for others.
pub fn feature_report(id: u8, mac: [u8; 6]) -> Option<Vec<u8>> {
    let mut r = match id {
        CALIBRATION => playstation::calibration(id, CALIBRATION_SIZE),
        PAIRING => {
            let mut r = vec![0u8; PAIRING_SIZE];
            r[1..7].copy_from_slice(&playstation::mac_bytes(mac));
            r
        }
        // Hardware and firmware versions, update version 0: the driver uses classic rumble.
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
    r[5..7].copy_from_slice(&[s.left_trigger, s.right_trigger]);
    r[7] = x.sequence;
    r[8] = playstation::hat_and_faces(s.buttons);
    r[9] = playstation::shoulders(s);
    // Guide: PS; the touchpad's click; misc: the microphone button.
    let on = |bit: u32, mask: u8| if s.buttons & bit != 0 { mask } else { 0 };
    r[10] = on(HOME, 0x01) | on(TOUCHPAD, 0x02) | on(MISC, 0x04);
    r[16..28].copy_from_slice(&playstation::motion(x));
    r[28..32].copy_from_slice(&x.timestamp.to_le_bytes());
    for (i, contact) in x.contacts.iter().enumerate() {
        r[33 + 4 * i..37 + 4 * i].copy_from_slice(&playstation::contact(*contact, TOUCHPAD_SIZE));
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
        out.push(playstation::rumble(number, common[3], common[2]));
    }
    if flag1 & 0x04 != 0 {
        out.push(PadFeedback::Led { number, rgb: [common[44], common[45], common[46]] });
    }
    // Trigger effects (the kernel's driver sets none; games writing to the hidraw node do):
    // the right trigger's 11 bytes, then the left's.
    let triggers = flag0 & (RIGHT_TRIGGER | LEFT_TRIGGER);
    if triggers != 0 {
        let effect = |at: usize| TriggerEffect { mode: common[at], params: common[at + 1..at + 11].try_into().expect("10 bytes") };
        out.push(PadFeedback::AdaptiveTriggers { number, flags: triggers, right: effect(10), left: effect(21) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gamepad::playstation::{Contact, tests::report_bits};

    const STANDARD_GRAVITY: f32 = 9.80665;

    #[test]
    fn the_descriptor_declares_every_report_at_its_size() {
        // Report id, usage, count: each one's count is its size without the id byte.
        for (id, size) in
            [(INPUT, INPUT_SIZE), (OUTPUT, 63), (CALIBRATION, CALIBRATION_SIZE), (PAIRING, PAIRING_SIZE), (FIRMWARE, FIRMWARE_SIZE)]
        {
            let tag = match id {
                INPUT => 0x80,
                OUTPUT => 0x90,
                _ => 0xb0,
            };
            assert_eq!(report_bits(DESCRIPTOR, id, tag), 8 * (size - 1), "report {id:#x}");
        }
        for id in [CALIBRATION, PAIRING, FIRMWARE] {
            let r = feature_report(id, [1, 2, 3, 4, 5, 6]).unwrap();
            assert_eq!(r[0], id);
        }
        assert_eq!(feature_report(0x33, [0; 6]), None);
    }

    #[test]
    fn the_mac_goes_least_significant_byte_first() {
        let mac = [0x02, 0x70, 0x66, 0xaa, 0xbb, 0x01];
        assert_eq!(&feature_report(PAIRING, mac).unwrap()[1..7], &[0x01, 0xbb, 0xaa, 0x66, 0x70, 0x02]);
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
        // A game's trigger effects through hidraw: the left trigger's, at its place.
        report[1] = LEFT_TRIGGER;
        report[22..33].copy_from_slice(&[0x21, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let left = TriggerEffect { mode: 0x21, params: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] };
        assert_eq!(
            feedback(2, &report),
            [PadFeedback::AdaptiveTriggers { number: 2, flags: LEFT_TRIGGER, left, right: TriggerEffect::default() }]
        );
        assert_eq!(feedback(2, &[0x31; 78]), []);
    }
}
