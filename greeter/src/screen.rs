//! Draws the login screen into an XRGB8888 buffer with a scaled 8x8 bitmap font: large
//! enough to read on a phone and on a TV, whatever the stream's size.

use crate::login::Screen;
use font8x8::UnicodeFonts;

const BACKGROUND: u32 = 0x1d2330;
const TEXT: u32 = 0xe8ecf4;
const DIM: u32 = 0x8a93a6;
const ALERT: u32 = 0xff8a80;

/// A frame buffer of 32-bit XRGB pixels.
pub struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

impl Canvas<'_> {
    fn fill(&mut self, colour: u32) {
        for row in self.data.chunks_mut(self.stride).take(self.height as usize) {
            for px in row[..self.width as usize * 4].chunks_exact_mut(4) {
                px.copy_from_slice(&colour.to_le_bytes());
            }
        }
    }

    fn pixel(&mut self, x: u32, y: u32, colour: u32) {
        if x < self.width && y < self.height {
            let at = y as usize * self.stride + x as usize * 4;
            self.data[at..at + 4].copy_from_slice(&colour.to_le_bytes());
        }
    }

    /// `text` from (`x`, `y`) in cells of 8 × `scale` pixels; characters the font lacks
    /// are drawn as `?`.
    fn text(&mut self, x: u32, y: u32, scale: u32, text: &str, colour: u32) {
        for (i, c) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(c).or_else(|| font8x8::LATIN_FONTS.get(c)).or_else(|| font8x8::BASIC_FONTS.get('?'));
            let Some(glyph) = glyph else { continue };
            let left = x + i as u32 * 8 * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.pixel(left + col * scale + dx, y + row as u32 * scale + dy, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The scale that fits 40 columns across and 16 rows down.
pub fn scale(width: u32, height: u32) -> u32 {
    (width / (8 * 40)).min(height / (8 * 16)).max(1)
}

/// Draws the whole screen: `title`, the prompt with what was typed (masked when secret),
/// the last message and a hint.
pub fn draw(canvas: &mut Canvas, title: &str, screen: &Screen, typed: &str) {
    canvas.fill(BACKGROUND);
    let s = scale(canvas.width, canvas.height);
    let cell = 8 * s;
    let left = cell * 2;
    canvas.text(left, cell * 2, s, title, TEXT);
    let shown: String = if screen.secret { "*".repeat(typed.chars().count()) } else { typed.to_owned() };
    let cursor = if screen.busy { "" } else { "_" };
    canvas.text(left, cell * 5, s, &format!("{}{shown}{cursor}", screen.prompt), TEXT);
    if let Some(message) = &screen.message {
        canvas.text(left, cell * 7, s, message, ALERT);
    }
    canvas.text(left, cell * 10, s, "Enter: go on   Esc: start over", DIM);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit_rows(data: &[u8], width: u32, stride: usize, colour: u32) -> Vec<usize> {
        data.chunks(stride)
            .enumerate()
            .filter(|(_, row)| row[..width as usize * 4].chunks_exact(4).any(|px| px == colour.to_le_bytes()))
            .map(|(y, _)| y)
            .collect()
    }

    #[test]
    fn draws_prompt_masked_secret_and_message_at_any_size() {
        for (w, h) in [(320, 200), (1920, 1080), (3840, 2160)] {
            let stride = w as usize * 4;
            let mut data = vec![0u8; stride * h as usize];
            let screen = Screen { prompt: "Password: ".into(), secret: true, message: Some("Login incorrect".into()), busy: false };
            draw(&mut Canvas { data: &mut data, width: w, height: h, stride }, "Log in to host", &screen, "hunter2");
            let s = scale(w, h);
            assert!(s * 8 * 40 <= w && s * 8 * 16 <= h.max(128), "{w}x{h}: scale {s} fits");
            let text = lit_rows(&data, w, stride, TEXT);
            assert!(text.contains(&(s as usize * 8 * 5)), "{w}x{h}: the prompt's row is drawn");
            assert!(!lit_rows(&data, w, stride, ALERT).is_empty(), "{w}x{h}: the message is drawn");
            assert!(text.iter().all(|&y| y < h as usize));
        }
        // A secret shows as many stars as characters, never the characters.
        let (w, h, stride) = (640u32, 200u32, 640 * 4);
        let draw_typed = |typed: &str, secret: bool| {
            let mut data = vec![0u8; stride * h as usize];
            let screen = Screen { prompt: "> ".into(), secret, ..Screen::default() };
            draw(&mut Canvas { data: &mut data, width: w, height: h, stride }, "", &screen, typed);
            data
        };
        assert_eq!(draw_typed("abc", true), draw_typed("***", false));
        assert_ne!(draw_typed("abc", true), draw_typed("abc", false));
    }
}
