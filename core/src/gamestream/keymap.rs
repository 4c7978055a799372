//! Windows virtual-key codes (what Moonlight sends) to Linux evdev key codes (what the
//! compositor's xkb keymap takes). A fixed table: VK codes name physical US-layout keys, so
//! the user's own layout is applied by xkb afterwards, as on a local keyboard.

/// The evdev code for a VK code, or `None` for keys Linux has no equivalent of.
pub fn vk_to_evdev(vk: u8) -> Option<u32> {
    const LETTERS: [u32; 26] = [30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17, 45, 21, 44];
    const KEYPAD: [u32; 10] = [82, 79, 80, 81, 75, 76, 77, 71, 72, 73];
    let code = match vk {
        0x08 => 14,        // backspace
        0x09 => 15,        // tab
        0x0D => 28,        // enter
        0x10 | 0xA0 => 42, // (left) shift
        0xA1 => 54,        // right shift
        0x11 | 0xA2 => 29, // (left) ctrl
        0xA3 => 97,        // right ctrl
        0x12 | 0xA4 => 56, // (left) alt
        0xA5 => 100,       // right alt (AltGr)
        0x13 => 119,       // pause
        0x14 => 58,        // caps lock
        0x15 => 122,       // kana / hangul
        0x19 => 123,       // hanja
        0x1B => 1,         // escape
        0x20 => 57,        // space
        0x21 => 104,       // page up
        0x22 => 109,       // page down
        0x23 => 107,       // end
        0x24 => 102,       // home
        0x25 => 105,       // left
        0x26 => 103,       // up
        0x27 => 106,       // right
        0x28 => 108,       // down
        0x2C => 99,        // print screen
        0x2D => 110,       // insert
        0x2E => 111,       // delete
        0x2F => 138,       // help
        0x30 => 11,        // 0
        0x31..=0x39 => u32::from(vk - 0x31) + 2,
        0x41..=0x5A => LETTERS[usize::from(vk - 0x41)],
        0x5B => 125, // left meta
        0x5C => 126, // right meta
        0x5D => 127, // menu
        0x5F => 142, // sleep
        0x60..=0x69 => KEYPAD[usize::from(vk - 0x60)],
        0x6A => 55,                                // keypad *
        0x6B => 78,                                // keypad +
        0x6C => 121,                               // keypad ,
        0x6D => 74,                                // keypad -
        0x6E => 83,                                // keypad .
        0x6F => 98,                                // keypad /
        0x70..=0x79 => u32::from(vk - 0x70) + 59,  // F1–F10
        0x7A => 87,                                // F11
        0x7B => 88,                                // F12
        0x7C..=0x87 => u32::from(vk - 0x7C) + 183, // F13–F24
        0x90 => 69,                                // num lock
        0x91 => 70,                                // scroll lock
        0xA6 => 158,                               // browser back
        0xA7 => 159,                               // browser forward
        0xA8 => 173,                               // browser refresh
        0xA9 => 128,                               // browser stop
        0xAA => 217,                               // browser search
        0xAB => 364,                               // browser favourites
        0xAC => 172,                               // browser home
        0xAD => 113,                               // mute
        0xAE => 114,                               // volume down
        0xAF => 115,                               // volume up
        0xB0 => 163,                               // next track
        0xB1 => 165,                               // previous track
        0xB2 => 166,                               // stop
        0xB3 => 164,                               // play/pause
        0xBA => 39,                                // ;:
        0xBB => 13,                                // =+
        0xBC => 51,                                // ,<
        0xBD => 12,                                // -_
        0xBE => 52,                                // .>
        0xBF => 53,                                // /?
        0xC0 => 41,                                // `~
        0xDB => 26,                                // [{
        0xDC => 43,                                // \|
        0xDD => 27,                                // ]}
        0xDE => 40,                                // '"
        0xE2 => 86,                                // the extra key left of Z on ISO keyboards
        _ => return None,
    };
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::vk_to_evdev;

    #[test]
    fn spot_checks_against_linux_input_event_codes() {
        // KEY_A 30, KEY_Z 44, KEY_1 2, KEY_9 10, KEY_0 11, KEY_F1 59, KEY_F12 88, KEY_F24 194,
        // KEY_KP0 82, KEY_KP9 73, KEY_ENTER 28, KEY_LEFTMETA 125.
        let pairs = [
            (0x41, 30),
            (0x5A, 44),
            (0x31, 2),
            (0x39, 10),
            (0x30, 11),
            (0x70, 59),
            (0x7B, 88),
            (0x87, 194),
            (0x60, 82),
            (0x69, 73),
            (0x0D, 28),
            (0x5B, 125),
        ];
        for (vk, code) in pairs {
            assert_eq!(vk_to_evdev(vk), Some(code), "vk 0x{vk:02x}");
        }
        assert_eq!(vk_to_evdev(0x00), None);
        assert_eq!(vk_to_evdev(0xFF), None);
    }

    #[test]
    fn no_two_letters_or_digits_share_a_key() {
        let mut codes: Vec<u32> = (0x30..=0x39).chain(0x41..=0x5A).filter_map(vk_to_evdev).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 36);
    }
}
