//! Typing text: each character becomes the key presses that produce it in the current
//! keymap (with Shift or AltGr as needed), found by keysym lookup.

use xkbcommon::xkb;

/// evdev codes of the modifiers that select shift levels 2-4 in common layouts.
const KEY_LEFTSHIFT: u32 = 42;
const KEY_RIGHTALT: u32 = 100;

/// Key presses for one character: modifiers to hold, then the key (all evdev codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chord {
    pub modifiers: Vec<u32>,
    pub key: u32,
}

/// Finds the chord that types `c`, or `None` if the keymap has no key for it.
pub fn chord_for(keymap: &xkb::Keymap, c: char) -> Option<Chord> {
    let keysym = match c {
        '\n' | '\r' => xkb::Keysym::Return,
        '\t' => xkb::Keysym::Tab,
        '\u{8}' => xkb::Keysym::BackSpace,
        _ => xkb::utf32_to_keysym(c as u32),
    };
    if keysym.raw() == 0 {
        return None;
    }
    // X11 keycodes stop at 255: keys beyond (KEY_EURO = 435 in the evdev rules) would not
    // reach apps running under Xwayland.
    let (min, max) = (keymap.min_keycode().raw().max(8), keymap.max_keycode().raw().min(255));
    // Levels map to modifiers as in the standard key types; each guess is checked below.
    let level_mods: [&[u32]; 4] = [&[], &[KEY_LEFTSHIFT], &[KEY_RIGHTALT], &[KEY_LEFTSHIFT, KEY_RIGHTALT]];
    for level in 0..level_mods.len() as u32 {
        for kc in min..=max {
            let kc = xkb::Keycode::new(kc);
            if level >= keymap.num_levels_for_key(kc, 0) || !keymap.key_get_syms_by_level(kc, 0, level).contains(&keysym) {
                continue;
            }
            let modifiers = level_mods[level as usize];
            let mut state = xkb::State::new(keymap);
            for m in modifiers {
                state.update_key(xkb::Keycode::new(m + 8), xkb::KeyDirection::Down);
            }
            if state.key_get_one_sym(kc) == keysym {
                return Some(Chord { modifiers: modifiers.to_vec(), key: kc.raw() - 8 });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keymap(layout: &str) -> xkb::Keymap {
        let ctx = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
        xkb::Keymap::new_from_names(&ctx, "", "", layout, "", None, xkb::KEYMAP_COMPILE_NO_FLAGS).expect("xkb-data installed")
    }

    proptest::proptest! {
        #[test]
        fn every_chord_found_types_its_character(c in proptest::char::any()) {
            let us = keymap("us");
            if let Some(chord) = chord_for(&us, c) {
                let mut state = xkb::State::new(&us);
                for m in &chord.modifiers {
                    state.update_key(xkb::Keycode::new(m + 8), xkb::KeyDirection::Down);
                }
                let sym = state.key_get_one_sym(xkb::Keycode::new(chord.key + 8));
                let want = match c {
                    '\n' | '\r' => xkb::Keysym::Return,
                    '\t' => xkb::Keysym::Tab,
                    '\u{8}' => xkb::Keysym::BackSpace,
                    _ => xkb::utf32_to_keysym(c as u32),
                };
                proptest::prop_assert_eq!(sym, want);
            }
        }
    }

    #[test]
    fn finds_plain_shifted_and_altgr_characters() {
        let us = keymap("us");
        assert_eq!(chord_for(&us, 'a'), Some(Chord { modifiers: vec![], key: 30 }));
        assert_eq!(chord_for(&us, 'A'), Some(Chord { modifiers: vec![KEY_LEFTSHIFT], key: 30 }));
        assert_eq!(chord_for(&us, '!'), Some(Chord { modifiers: vec![KEY_LEFTSHIFT], key: 2 }));
        assert_eq!(chord_for(&us, '\n'), Some(Chord { modifiers: vec![], key: 28 }));
        assert_eq!(chord_for(&us, '☃'), None, "no key for a snowman");
        assert_eq!(chord_for(&us, '€'), None, "only KEY_EURO (435), beyond X11's keycodes");
        let de = keymap("de");
        assert_eq!(chord_for(&de, 'z'), Some(Chord { modifiers: vec![], key: 21 }), "QWERTZ");
        assert_eq!(chord_for(&de, '€'), Some(Chord { modifiers: vec![KEY_RIGHTALT], key: 18 }));
        assert_eq!(chord_for(&de, 'ß'), Some(Chord { modifiers: vec![], key: 12 }));
    }
}
