//! Moonlight input packets (core/GAMESTREAM.md §7): parsed from the control stream's 0x0206 payload,
//! then turned into the compositor's [`InputEvent`]s. Endianness is mixed on purpose (NVIDIA
//! legacy): the header size is big-endian, the magic little-endian, fields as the table says.

use super::keymap::vk_to_evdev;
use crate::gamepad::{ControllerArrival, ControllerState, PadEvent};
use crate::input::InputEvent;

const BTN_LEFT: u32 = 0x110;
const BTN_RIGHT: u32 = 0x111;
const BTN_MIDDLE: u32 = 0x112;
const BTN_SIDE: u32 = 0x113;
const BTN_EXTRA: u32 = 0x114;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("input packet of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("input header says {said} bytes, packet has {got}")]
    Size { said: usize, got: usize },
    #[error("input packet 0x{magic:08x} needs {need} bytes, has {got}")]
    Truncated { magic: u32, need: usize, got: usize },
    #[error("text input is not UTF-8")]
    Utf8,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InputPacket {
    /// Windows virtual-key code (low byte), with the client's modifier bits.
    Key {
        vk: u8,
        down: bool,
        modifiers: u8,
    },
    Text(String),
    MouseMove {
        dx: i16,
        dy: i16,
    },
    /// Absolute position in a `width × height` reference frame (the client sends size − 1).
    MousePosition {
        x: i16,
        y: i16,
        width: i16,
        height: i16,
    },
    /// 1 left, 2 middle, 3 right, 4 X1, 5 X2.
    MouseButton {
        button: u8,
        down: bool,
    },
    /// 120 per notch; positive is up (Windows convention).
    Scroll {
        amount: i16,
    },
    /// 120 per notch; positive is right.
    HScroll {
        amount: i16,
    },
    Touch {
        event: u8,
        pointer: u32,
        x: f32,
        y: f32,
    },
    Pen {
        event: u8,
        buttons: u8,
        x: f32,
        y: f32,
        pressure: f32,
    },
    /// A controller's state, arrival, touchpad, motion or battery (Sunshine's extensions but
    /// the state).
    Pad(PadEvent),
    /// Haptics enable and anything newer.
    Other(u32),
}

/// Parses one input packet (the payload of control message 0x0206).
pub fn parse(p: &[u8]) -> Result<InputPacket, InputError> {
    if p.len() < 8 {
        return Err(InputError::Short(p.len()));
    }
    let said = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
    if said + 4 != p.len() {
        return Err(InputError::Size { said, got: p.len() });
    }
    let magic = u32::from_le_bytes(p[4..8].try_into().unwrap());
    let need = |n: usize| if p.len() < n { Err(InputError::Truncated { magic, need: n, got: p.len() }) } else { Ok(()) };
    let be16 = |at: usize| i16::from_be_bytes([p[at], p[at + 1]]);
    let le16 = |at: usize| u16::from_le_bytes([p[at], p[at + 1]]);
    let f32le = |at: usize| f32::from_le_bytes(p[at..at + 4].try_into().unwrap());
    Ok(match magic {
        0x03 | 0x04 => {
            need(12)?;
            InputPacket::Key { vk: p[9], down: magic == 0x03, modifiers: p[11] }
        }
        0x17 => InputPacket::Text(std::str::from_utf8(&p[8..]).map_err(|_| InputError::Utf8)?.to_owned()),
        0x07 => {
            need(12)?;
            InputPacket::MouseMove { dx: be16(8), dy: be16(10) }
        }
        0x05 => {
            need(18)?;
            InputPacket::MousePosition { x: be16(8), y: be16(10), width: be16(14), height: be16(16) }
        }
        0x08 | 0x09 => {
            need(9)?;
            InputPacket::MouseButton { button: p[8], down: magic == 0x08 }
        }
        0x0A => {
            need(10)?;
            InputPacket::Scroll { amount: be16(8) }
        }
        0x5500_0001 => {
            need(10)?;
            InputPacket::HScroll { amount: be16(8) }
        }
        0x5500_0002 => {
            need(24)?;
            InputPacket::Touch { event: p[8], pointer: u32::from_le_bytes(p[12..16].try_into().unwrap()), x: f32le(16), y: f32le(20) }
        }
        0x5500_0003 => {
            need(24)?;
            InputPacket::Pen { event: p[8], buttons: p[10], x: f32le(12), y: f32le(16), pressure: f32le(20) }
        }
        0x0C => {
            need(34)?;
            let i16le = |at: usize| le16(at) as i16;
            InputPacket::Pad(PadEvent::State(ControllerState {
                number: le16(10),
                active_mask: le16(12),
                buttons: u32::from(le16(16)) | (u32::from(le16(30)) << 16),
                left_trigger: p[18],
                right_trigger: p[19],
                left_stick: (i16le(20), i16le(22)),
                right_stick: (i16le(24), i16le(26)),
            }))
        }
        0x5500_0004 => {
            need(16)?;
            InputPacket::Pad(PadEvent::Arrived(ControllerArrival {
                number: p[8],
                kind: p[9].into(),
                capabilities: le16(10),
                buttons: u32::from_le_bytes(p[12..16].try_into().unwrap()),
            }))
        }
        0x5500_0005 => {
            need(28)?;
            let pointer = u32::from_le_bytes(p[12..16].try_into().unwrap());
            InputPacket::Pad(PadEvent::Touch { number: p[8], event: p[9], pointer, x: f32le(16), y: f32le(20) })
        }
        0x5500_0006 => {
            need(24)?;
            InputPacket::Pad(PadEvent::Motion { number: p[8], motion_type: p[9], xyz: [f32le(12), f32le(16), f32le(20)] })
        }
        0x5500_0007 => {
            need(11)?;
            InputPacket::Pad(PadEvent::Battery { number: p[8], state: p[9], percent: p[10] })
        }
        other => InputPacket::Other(other),
    })
}

/// Turns packets into seat events for an output of `size` pixels.
pub struct Translator {
    pub size: (u32, u32),
    /// Touch ids currently down, so an "up" or "cancel all" only lifts real contacts.
    touches: Vec<u32>,
    pen_down: bool,
}

impl Translator {
    pub fn new(size: (u32, u32)) -> Self {
        Self { size, touches: Vec::new(), pen_down: false }
    }

    fn at(&self, x: f32, y: f32) -> (f64, f64) {
        let clamp = |v: f32| if v.is_finite() { f64::from(v.clamp(0.0, 1.0)) } else { 0.0 };
        (clamp(x) * f64::from(self.size.0), clamp(y) * f64::from(self.size.1))
    }

    pub fn translate(&mut self, packet: InputPacket, out: &mut Vec<InputEvent>) {
        match packet {
            InputPacket::Key { vk, down, .. } => match vk_to_evdev(vk) {
                Some(code) => out.push(InputEvent::Key { code, pressed: down }),
                None => tracing::debug!(vk, "no evdev key for this virtual key"),
            },
            InputPacket::Text(t) => out.push(InputEvent::Text(t)),
            InputPacket::MouseMove { dx, dy } => out.push(InputEvent::PointerRelative { dx: dx.into(), dy: dy.into() }),
            InputPacket::MousePosition { x, y, width, height } => {
                if width <= 0 || height <= 0 {
                    return;
                }
                let fx = f64::from(x.max(0)) / f64::from(width);
                let fy = f64::from(y.max(0)) / f64::from(height);
                let (w, h) = (f64::from(self.size.0), f64::from(self.size.1));
                out.push(InputEvent::PointerMotion { x: fx * w, y: fy * h });
            }
            InputPacket::MouseButton { button, down } => {
                let code = match button {
                    1 => BTN_LEFT,
                    2 => BTN_MIDDLE,
                    3 => BTN_RIGHT,
                    4 => BTN_SIDE,
                    5 => BTN_EXTRA,
                    _ => return,
                };
                out.push(InputEvent::Button { code, pressed: down });
            }
            // Windows scrolls up for positive amounts; Wayland's v120 is positive down.
            InputPacket::Scroll { amount } => out.push(InputEvent::Scroll { vertical: true, v120: -i32::from(amount) }),
            InputPacket::HScroll { amount } => out.push(InputEvent::Scroll { vertical: false, v120: i32::from(amount) }),
            InputPacket::Touch { event, pointer, x, y } => {
                let (px, py) = self.at(x, y);
                match event {
                    1 => {
                        if !self.touches.contains(&pointer) {
                            self.touches.push(pointer);
                        }
                        out.push(InputEvent::TouchDown { id: pointer, x: px, y: py });
                    }
                    3 if self.touches.contains(&pointer) => out.push(InputEvent::TouchMotion { id: pointer, x: px, y: py }),
                    2 | 4 => {
                        if let Some(i) = self.touches.iter().position(|&t| t == pointer) {
                            self.touches.swap_remove(i);
                            out.push(InputEvent::TouchUp { id: pointer });
                        }
                    }
                    7 => out.extend(self.touches.drain(..).map(|id| InputEvent::TouchUp { id })),
                    _ => {}
                }
            }
            // No tablet protocol yet: a pen is a pointer whose tip is the left button.
            InputPacket::Pen { event, x, y, .. } => {
                let (px, py) = self.at(x, y);
                out.push(InputEvent::PointerMotion { x: px, y: py });
                let down = match event {
                    1 => true,
                    2 | 4 | 6 | 7 => false,
                    _ => self.pen_down,
                };
                if down != self.pen_down {
                    self.pen_down = down;
                    out.push(InputEvent::Button { code: BTN_LEFT, pressed: down });
                }
            }
            InputPacket::Pad(_) | InputPacket::Other(_) => {}
        }
    }
}

/// Builds input packets as the client does, for tests and fuzz seeds.
pub mod wire {
    pub fn packet(magic: u32, body: &[u8]) -> Vec<u8> {
        let mut p = ((4 + body.len()) as u32).to_be_bytes().to_vec();
        p.extend_from_slice(&magic.to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    pub fn key(vk: u8, down: bool) -> Vec<u8> {
        packet(if down { 3 } else { 4 }, &[0, vk, 0x80, 0, 0, 0])
    }

    pub fn mouse_position(x: i16, y: i16, w: i16, h: i16) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [x, y, 0, w, h] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        packet(5, &b)
    }

    /// As moonlight-common-c's `LiSendControllerArrivalEvent` (`SS_CONTROLLER_ARRIVAL_PACKET`).
    pub fn controller_arrival(number: u8, kind: u8, capabilities: u16, buttons: u32) -> Vec<u8> {
        let mut b = vec![number, kind];
        b.extend_from_slice(&capabilities.to_le_bytes());
        b.extend_from_slice(&buttons.to_le_bytes());
        packet(0x5500_0004, &b)
    }

    /// `SS_CONTROLLER_TOUCH_PACKET`: number, event, reserved, touchpad, pointer, x, y, pressure.
    pub fn controller_touch(number: u8, event: u8, pointer: u32, x: f32, y: f32, pressure: f32) -> Vec<u8> {
        let mut b = vec![number, event, 0, 0];
        b.extend_from_slice(&pointer.to_le_bytes());
        for v in [x, y, pressure] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        packet(0x5500_0005, &b)
    }

    /// `SS_CONTROLLER_MOTION_PACKET`: number, type, two reserved bytes, x, y, z.
    pub fn controller_motion(number: u8, motion_type: u8, xyz: [f32; 3]) -> Vec<u8> {
        let mut b = vec![number, motion_type, 0, 0];
        for v in xyz {
            b.extend_from_slice(&v.to_le_bytes());
        }
        packet(0x5500_0006, &b)
    }

    /// `SS_CONTROLLER_BATTERY_PACKET`: number, state, percentage, a reserved byte.
    pub fn controller_battery(number: u8, state: u8, percent: u8) -> Vec<u8> {
        packet(0x5500_0007, &[number, state, percent, 0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gamepad::{ControllerKind, caps};

    #[test]
    fn controller_extensions_parse_as_the_client_lays_them_out() {
        assert_eq!(
            parse(&wire::controller_arrival(2, 3, caps::RUMBLE | caps::GYRO, 0x000f_ffff)).unwrap(),
            InputPacket::Pad(PadEvent::Arrived(ControllerArrival {
                number: 2,
                kind: ControllerKind::Nintendo,
                capabilities: 0x22,
                buttons: 0x000f_ffff
            }))
        );
        assert_eq!(
            parse(&wire::controller_touch(1, 1, 7, 0.25, 0.75, 1.0)).unwrap(),
            InputPacket::Pad(PadEvent::Touch { number: 1, event: 1, pointer: 7, x: 0.25, y: 0.75 })
        );
        assert_eq!(
            parse(&wire::controller_motion(0, 2, [1.5, -2.0, 90.0])).unwrap(),
            InputPacket::Pad(PadEvent::Motion { number: 0, motion_type: 2, xyz: [1.5, -2.0, 90.0] })
        );
        assert_eq!(
            parse(&wire::controller_battery(3, 2, 55)).unwrap(),
            InputPacket::Pad(PadEvent::Battery { number: 3, state: 2, percent: 55 })
        );
        // One byte short of each layout is an error, not a read past the end.
        for full in
            [wire::controller_arrival(0, 1, 0, 0), wire::controller_touch(0, 1, 0, 0.0, 0.0, 0.0), wire::controller_motion(0, 1, [0.0; 3])]
        {
            let mut short = full[..full.len() - 1].to_vec();
            let said = (short.len() - 4) as u32;
            short[..4].copy_from_slice(&said.to_be_bytes());
            assert!(matches!(parse(&short), Err(InputError::Truncated { .. })), "{full:?}");
        }
    }

    fn events(packets: &[Vec<u8>]) -> Vec<InputEvent> {
        let mut t = Translator::new((1280, 720));
        let mut out = Vec::new();
        for p in packets {
            t.translate(parse(p).unwrap(), &mut out);
        }
        out
    }

    #[test]
    fn keys_mask_the_qt_high_bit_and_map_to_evdev() {
        assert_eq!(parse(&wire::key(0x41, true)).unwrap(), InputPacket::Key { vk: 0x41, down: true, modifiers: 0 });
        assert_eq!(
            events(&[wire::key(0x41, true), wire::key(0x41, false)]),
            [InputEvent::Key { code: 30, pressed: true }, InputEvent::Key { code: 30, pressed: false }]
        );
    }

    #[test]
    fn absolute_mouse_scales_to_the_output() {
        assert_eq!(events(&[wire::mouse_position(639, 0, 1279, 719)]), [InputEvent::PointerMotion { x: 639.0 * 1280.0 / 1279.0, y: 0.0 }]);
        assert_eq!(events(&[wire::mouse_position(5, 5, 0, 0)]), []);
    }

    #[test]
    fn buttons_scroll_and_text() {
        let p =
            [wire::packet(8, &[1]), wire::packet(9, &[3]), wire::packet(0x0A, &[0, 120, 0, 120, 0, 0]), wire::packet(0x17, "é".as_bytes())];
        assert_eq!(
            events(&p),
            [
                InputEvent::Button { code: BTN_LEFT, pressed: true },
                InputEvent::Button { code: BTN_RIGHT, pressed: false },
                InputEvent::Scroll { vertical: true, v120: -120 },
                InputEvent::Text("é".into()),
            ]
        );
    }

    #[test]
    fn touch_up_only_for_contacts_that_are_down() {
        let touch = |ev: u8, id: u32, x: f32| {
            let mut b = vec![ev, 0, 0xFF, 0xFF];
            b.extend_from_slice(&id.to_le_bytes());
            for v in [x, 0.5, 1.0, 0.0, 0.0] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            wire::packet(0x5500_0002, &b)
        };
        let out = events(&[touch(2, 9, 0.0), touch(1, 1, 0.5), touch(3, 1, f32::NAN), touch(7, 0, 0.0)]);
        assert_eq!(
            out,
            [
                InputEvent::TouchDown { id: 1, x: 640.0, y: 360.0 },
                InputEvent::TouchMotion { id: 1, x: 0.0, y: 360.0 },
                InputEvent::TouchUp { id: 1 }
            ]
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(parse(&[0, 0, 0]), Err(InputError::Short(3)));
        assert_eq!(parse(&[0, 0, 0, 9, 3, 0, 0, 0]), Err(InputError::Size { said: 9, got: 8 }));
        assert!(matches!(parse(&wire::packet(5, &[0, 1])), Err(InputError::Truncated { magic: 5, .. })));
        assert_eq!(parse(&wire::packet(0x17, &[0xFF])), Err(InputError::Utf8));
        assert_eq!(parse(&wire::packet(0x0D, &[1, 0])), Ok(InputPacket::Other(0x0D)));
    }
}
