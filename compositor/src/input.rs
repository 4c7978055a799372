//! Input injection: events from the stream's client, delivered natively through the seat.

use crate::state::{MappedAt, State};
use punktfunk_frame::text::{Chord, chord_for};
use smithay::backend::input::{Axis, AxisSource, ButtonState, KeyState, TouchSlot};
use smithay::desktop::WindowSurfaceType;
use smithay::input::keyboard::KeyboardTarget;
use smithay::input::keyboard::{FilterResult, Keycode};
use smithay::input::pointer::{AxisFrame, ButtonEvent, MotionEvent, RelativeMotionEvent};
use smithay::input::touch::{DownEvent, MotionEvent as TouchMotionEvent, UpEvent};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Point, SERIAL_COUNTER};
use smithay::wayland::pointer_constraints::with_pointer_constraint;

pub use punktfunk_frame::InputEvent;

/// Pixels of scroll per 120 v120 units, as libinput reports a wheel detent.
const SCROLL_PIXELS_PER_DETENT: f64 = 15.0;

impl State {
    pub fn inject(&mut self, event: InputEvent) {
        let serial = SERIAL_COUNTER.next_serial();
        let time = self.clock.now().as_millis();
        match event {
            InputEvent::Key { code, pressed } => {
                let Some(kb) = self.seat.get_keyboard() else { return };
                let state = if pressed { KeyState::Pressed } else { KeyState::Released };
                // xkb keycodes are evdev + 8; codes past the keymap are ignored by xkb.
                let Some(xkb) = code.checked_add(8) else { return };
                kb.input::<(), _>(self, Keycode::new(xkb), state, serial, time, |_, _, _| FilterResult::Forward);
            }
            InputEvent::Text(text) => {
                let Some(kb) = self.seat.get_keyboard() else { return };
                // SAFETY (keymap()): the reference does not outlive the lock guard.
                let chords: Vec<(char, Option<Chord>)> = kb.with_xkb_state(self, |ctx| {
                    let Ok(xkb) = ctx.xkb().lock() else { return Vec::new() };
                    text.chars().map(|c| (c, chord_for(unsafe { xkb.keymap() }, c))).collect()
                });
                for (c, chord) in chords {
                    let Some(chord) = chord else {
                        tracing::warn!(?c, "no key types this character in the current layout");
                        continue;
                    };
                    let keys = chord.modifiers.iter().chain(std::iter::once(&chord.key));
                    for &code in keys.clone() {
                        self.inject(InputEvent::Key { code, pressed: true });
                    }
                    for &code in keys.rev() {
                        self.inject(InputEvent::Key { code, pressed: false });
                    }
                }
            }
            InputEvent::PointerMotion { x, y } => {
                let Some(ptr) = self.seat.get_pointer() else { return };
                let at = self.clamp((x, y).into());
                let focus = self.surface_under(at);
                if focus.as_ref().is_some_and(|(s, _)| pointer_locked(s, &ptr)) {
                    return; // a locked pointer only takes relative motion
                }
                ptr.motion(self, focus, &MotionEvent { location: at, serial, time });
                ptr.frame(self);
            }
            InputEvent::PointerRelative { dx, dy } => {
                let Some(ptr) = self.seat.get_pointer() else { return };
                let from = ptr.current_location();
                let focus = self.surface_under(from);
                let locked = focus.as_ref().is_some_and(|(s, _)| pointer_locked(s, &ptr));
                let at = if locked { from } else { self.clamp(from + Point::from((dx, dy))) };
                let focus = if locked { focus } else { self.surface_under(at) };
                ptr.motion(self, focus.clone(), &MotionEvent { location: at, serial, time });
                let delta = (dx, dy).into();
                ptr.relative_motion(self, focus, &RelativeMotionEvent { delta, delta_unaccel: delta, utime: self.clock.now().as_micros() });
                ptr.frame(self);
            }
            InputEvent::Button { code, pressed } => {
                let Some(ptr) = self.seat.get_pointer() else { return };
                let state = if pressed { ButtonState::Pressed } else { ButtonState::Released };
                ptr.button(self, &ButtonEvent { serial, time, button: code, state });
                ptr.frame(self);
            }
            InputEvent::Scroll { vertical, v120 } => {
                let Some(ptr) = self.seat.get_pointer() else { return };
                let axis = if vertical { Axis::Vertical } else { Axis::Horizontal };
                let pixels = f64::from(v120) / 120.0 * SCROLL_PIXELS_PER_DETENT;
                ptr.axis(self, AxisFrame::new(time).source(AxisSource::Wheel).value(axis, pixels).v120(axis, v120));
                ptr.frame(self);
            }
            InputEvent::TouchDown { id, x, y } => {
                let Some(touch) = self.seat.get_touch() else { return };
                let at = self.clamp((x, y).into());
                let focus = self.surface_under(at);
                touch.down(self, focus, &DownEvent { slot: TouchSlot::from(Some(id)), location: at, serial, time });
                touch.frame(self);
            }
            InputEvent::TouchMotion { id, x, y } => {
                let Some(touch) = self.seat.get_touch() else { return };
                let at = self.clamp((x, y).into());
                let focus = self.surface_under(at);
                touch.motion(self, focus, &TouchMotionEvent { slot: TouchSlot::from(Some(id)), location: at, time });
                touch.frame(self);
            }
            InputEvent::TouchUp { id } => {
                let Some(touch) = self.seat.get_touch() else { return };
                touch.up(self, &UpEvent { slot: TouchSlot::from(Some(id)), serial, time });
                touch.frame(self);
            }
        }
    }

    /// Keyboard focus follows the most recently mapped window that has content, Wayland or X11.
    pub fn update_keyboard_focus(&mut self) {
        let Some(kb) = self.seat.get_keyboard() else { return };
        // Only once a window has committed a buffer: foot 1.13 crashes if focused earlier.
        let wayland = self
            .space
            .elements()
            .filter(|w| !w.bbox().is_empty())
            .filter_map(|w| Some((w.user_data().get::<MappedAt>()?.0.get(), w.toplevel()?.wl_surface().clone(), None)));
        let x11 = self
            .xwayland
            .visible()
            .filter(|(_, _, w)| !w.surface.is_override_redirect())
            .map(|(wl, _, w)| (w.mapped_at, wl.clone(), Some(w.surface.clone())));
        let top = wayland.chain(x11).max_by_key(|(at, _, _)| *at);
        let surface = top.as_ref().map(|(_, s, _)| s.clone());
        if kb.current_focus() == surface {
            return;
        }
        let serial = SERIAL_COUNTER.next_serial();
        if let Some((_, _, Some(x11))) = &top {
            // Legacy Xwayland: X input focus is ours to set; the keys flow through the
            // wl_surface below.
            let seat = self.seat.clone();
            KeyboardTarget::enter(x11, &seat, self, Vec::new(), serial);
            let _ = x11.set_activated(true);
        }
        kb.set_focus(self, surface, serial);
    }

    /// Coordinates outside the output are clamped onto it.
    fn clamp(&self, p: Point<f64, Logical>) -> Point<f64, Logical> {
        let max_x = f64::from(self.mode.width) - 1.0;
        let max_y = f64::from(self.mode.height) - 1.0;
        let c = |v: f64, max: f64| if v.is_finite() { v.clamp(0.0, max) } else { 0.0 };
        (c(p.x, max_x), c(p.y, max_y)).into()
    }

    /// The surface under a point and that surface's origin in output coordinates.
    fn surface_under(&self, at: Point<f64, Logical>) -> Option<(WlSurface, Point<f64, Logical>)> {
        // X11 windows are drawn above the Wayland ones (see render.rs).
        for (wl, loc, w) in self.xwayland.visible() {
            if w.surface.geometry().to_f64().contains(at) {
                return Some((wl.clone(), loc.to_f64()));
            }
        }
        let (window, loc) = self.space.element_under(at)?;
        let (surface, offset) = window.surface_under(at - loc.to_f64(), WindowSurfaceType::ALL)?;
        Some((surface, (loc + offset).to_f64()))
    }
}

fn pointer_locked(surface: &WlSurface, ptr: &smithay::input::pointer::PointerHandle<State>) -> bool {
    use smithay::wayland::pointer_constraints::PointerConstraint;
    with_pointer_constraint(surface, ptr, |c| matches!(c.as_deref(), Some(pc @ PointerConstraint::Locked(_)) if pc.is_active()))
}
