//! A 3x5 digit font, enough to print the frame counter for people looking at a stream.
//! (Hand-written: ten glyphs do not justify a font rasterizer dependency.)

use crate::Canvas;

const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// Draws `n` in decimal with its top-left corner at (x, y), each font pixel `scale` wide.
pub fn draw_number(c: &mut Canvas, n: u32, x: u32, y: u32, scale: u32, rgb: u32) {
    for (i, d) in n.to_string().bytes().enumerate() {
        let glyph = &DIGITS[(d - b'0') as usize];
        let gx = x + i as u32 * 4 * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 1 {
                    c.fill(gx + col * scale, y + row as u32 * scale, scale, scale, rgb);
                }
            }
        }
    }
}
