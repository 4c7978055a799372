//! The client's input as a virtual pointer (bound to the stream's output: absolute positions
//! are the output's pixels) and a virtual keyboard that carries our keymap, so key codes and
//! typed text mean what they mean in the headless compositor.

use anyhow::Context;
use punktfunk_core::input::InputEvent;
use punktfunk_frame::text::chord_for;
use std::os::fd::AsFd;
use std::time::Instant;
use wayland_client::protocol::wl_pointer;
use wayland_protocols_misc::zwp_virtual_keyboard_v1::client::zwp_virtual_keyboard_v1::ZwpVirtualKeyboardV1;
use wayland_protocols_wlr::virtual_pointer::v1::client::zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1;
use xkbcommon::xkb;

/// evdev BTN_LEFT: a touch is a left click where the finger is.
const BTN_LEFT: u32 = 0x110;
/// Scroll distance of one wheel detent, in surface units (libinput's).
const DETENT: f64 = 15.0;

/// The XKB keymap of `layout` (e.g. "us"), as the desktop's keyboard has it.
pub(crate) fn keymap(layout: &str) -> anyhow::Result<xkb::Keymap> {
    let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    xkb::Keymap::new_from_names(&context, "", "", layout, "", None, xkb::KEYMAP_COMPILE_NO_FLAGS)
        .with_context(|| format!("no XKB keymap for layout {layout:?} (xkb-data installed?)"))
}

/// Types `text` on `keymap`'s keys: each character's chord as `key(code, pressed)` calls
/// (modifiers down, the key down and up, modifiers up); a character no key types is skipped.
pub(crate) fn type_text(keymap: &xkb::Keymap, text: &str, mut key: impl FnMut(u32, bool)) {
    for c in text.chars() {
        let Some(chord) = chord_for(keymap, c) else {
            tracing::warn!("no key types {c:?} in this layout: skipped");
            continue;
        };
        for &m in &chord.modifiers {
            key(m, true);
        }
        key(chord.key, true);
        key(chord.key, false);
        for &m in chord.modifiers.iter().rev() {
            key(m, false);
        }
    }
}

pub struct Devices {
    pointer: ZwlrVirtualPointerV1,
    keyboard: ZwpVirtualKeyboardV1,
    keymap: xkb::Keymap,
    state: xkb::State,
    /// The output's size: absolute positions are scaled against it.
    size: (u32, u32),
    epoch: Instant,
}

impl Devices {
    /// Uploads the keymap of `layout` to the virtual keyboard.
    pub fn new(pointer: ZwlrVirtualPointerV1, keyboard: ZwpVirtualKeyboardV1, layout: &str, size: (u32, u32)) -> anyhow::Result<Self> {
        let keymap = keymap(layout)?;
        let mut text = keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1).into_bytes();
        text.push(0);
        let fd = nix::sys::memfd::memfd_create("punktfunk-keymap", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::write(&fd, &text)?;
        keyboard.keymap(xkb::KEYMAP_FORMAT_TEXT_V1, fd.as_fd(), text.len() as u32);
        let state = xkb::State::new(&keymap);
        Ok(Self { pointer, keyboard, keymap, state, size, epoch: Instant::now() })
    }

    pub fn set_size(&mut self, size: (u32, u32)) {
        self.size = size;
    }

    fn time(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    pub fn input(&mut self, event: InputEvent) {
        let t = self.time();
        match event {
            InputEvent::Key { code, pressed } => self.key(code, pressed),
            InputEvent::Text(text) => {
                let keymap = self.keymap.clone();
                type_text(&keymap, &text, |code, pressed| self.key(code, pressed));
            }
            InputEvent::PointerMotion { x, y } | InputEvent::TouchMotion { x, y, .. } => self.move_to(t, x, y),
            InputEvent::PointerRelative { dx, dy } => {
                self.pointer.motion(t, dx, dy);
                self.pointer.frame();
            }
            InputEvent::Button { code, pressed } => self.button(t, code, pressed),
            InputEvent::Scroll { vertical, v120 } => {
                let axis = if vertical { wl_pointer::Axis::VerticalScroll } else { wl_pointer::Axis::HorizontalScroll };
                self.pointer.axis_source(wl_pointer::AxisSource::Wheel);
                let value = f64::from(v120) / 120.0 * DETENT;
                match v120 / 120 {
                    0 => self.pointer.axis(t, axis, value),
                    steps => self.pointer.axis_discrete(t, axis, value, steps),
                }
                self.pointer.frame();
            }
            InputEvent::TouchDown { x, y, .. } => {
                self.move_to(t, x, y);
                self.button(t, BTN_LEFT, true);
            }
            InputEvent::TouchUp { .. } => self.button(t, BTN_LEFT, false),
        }
    }

    fn move_to(&self, t: u32, x: f64, y: f64) {
        let (w, h) = self.size;
        let clamp = |v: f64, max: u32| v.clamp(0.0, f64::from(max.saturating_sub(1))) as u32;
        self.pointer.motion_absolute(t, clamp(x, w), clamp(y, h), w, h);
        self.pointer.frame();
    }

    fn button(&self, t: u32, code: u32, pressed: bool) {
        let state = if pressed { wl_pointer::ButtonState::Pressed } else { wl_pointer::ButtonState::Released };
        self.pointer.button(t, code, state);
        self.pointer.frame();
    }

    /// A key, then the modifiers it changed (the compositor takes them from us, not from
    /// the keys).
    fn key(&mut self, code: u32, pressed: bool) {
        self.keyboard.key(self.time(), code, u32::from(pressed));
        let direction = if pressed { xkb::KeyDirection::Down } else { xkb::KeyDirection::Up };
        if self.state.update_key(xkb::Keycode::new(code + 8), direction) != 0 {
            let s = &self.state;
            self.keyboard.modifiers(
                s.serialize_mods(xkb::STATE_MODS_DEPRESSED),
                s.serialize_mods(xkb::STATE_MODS_LATCHED),
                s.serialize_mods(xkb::STATE_MODS_LOCKED),
                s.serialize_layout(xkb::STATE_LAYOUT_EFFECTIVE),
            );
        }
    }
}
