//! The colour a stream's YUV is in: the matrix and range the client decodes with, and the
//! arithmetic both converters (CPU and GPU) and the frame readers share.

use serde::{Deserialize, Serialize};

/// The YUV matrix the client decodes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Matrix {
    Bt601,
    Bt709,
    /// BT.2020 non-constant luminance. The content stays sRGB (BT.709 primaries): only the
    /// matrix changes, and the stream says so, so decoders show the same colours.
    Bt2020,
}

/// Whether luma spans 16..235 (limited, the video default) or 0..255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Range {
    Limited,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colour {
    pub matrix: Matrix,
    pub range: Range,
}

impl Default for Colour {
    fn default() -> Self {
        Self { matrix: Matrix::Bt709, range: Range::Limited }
    }
}

impl Matrix {
    /// The luma weights of red and blue (green's is what is left).
    pub fn kr_kb(self) -> (f64, f64) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
            Matrix::Bt2020 => (0.2627, 0.0593),
        }
    }
}

/// RGB (0..=1) to code values: `yuv = rows · rgb + offsets`, for one matrix, range and depth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    pub rows: [[f64; 3]; 3],
    pub offsets: [f64; 3],
    /// The largest code value (255 or 1023).
    pub max: f64,
}

impl Colour {
    /// Luma offset and scale, chroma offset and scale, in code values of `bits`.
    fn scales(self, bits: u32) -> (f64, f64, f64, f64) {
        let (k, max) = (f64::from(1u32 << (bits - 8)), f64::from((1u32 << bits) - 1));
        match self.range {
            Range::Limited => (16.0 * k, 219.0 * k, 128.0 * k, 224.0 * k),
            Range::Full => (0.0, max, 128.0 * k, max),
        }
    }

    pub fn coefficients(self, bits: u32) -> Coefficients {
        let (kr, kb) = self.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let (y0, ys, c0, cs) = self.scales(bits);
        let (u, v) = (cs / (2.0 * (1.0 - kb)), cs / (2.0 * (1.0 - kr)));
        Coefficients {
            rows: [[kr * ys, kg * ys, kb * ys], [-kr * u, -kg * u, (1.0 - kb) * u], [(1.0 - kr) * v, -kg * v, -kb * v]],
            offsets: [y0, c0, c0],
            max: f64::from((1u32 << bits) - 1),
        }
    }

    /// Code values back to RGB (0..=255), for reading a converted frame.
    pub fn to_rgb(self, bits: u32, [y, u, v]: [f64; 3]) -> (u8, u8, u8) {
        let (kr, kb) = self.matrix.kr_kb();
        let (y0, ys, c0, cs) = self.scales(bits);
        let (y, u, v) = ((y - y0) / ys, (u - c0) / cs, (v - c0) / cs);
        let (r, b) = (y + 2.0 * (1.0 - kr) * v, y + 2.0 * (1.0 - kb) * u);
        let g = (y - kr * r - kb * b) / (1.0 - kr - kb);
        let byte = |c: f64| (c * 255.0).round().clamp(0.0, 255.0) as u8;
        (byte(r), byte(g), byte(b))
    }
}
