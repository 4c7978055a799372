//! The cursor drawn into frames: the client's own cursor surface, or for named cursors (the
//! default arrow, cursor-shape requests) the image from the XCursor theme
//! (`XCURSOR_THEME`/`XCURSOR_SIZE`), or a built-in arrow when no theme is installed.

use smithay::backend::allocator::Fourcc;
use smithay::backend::renderer::element::memory::MemoryRenderBuffer;
use smithay::input::pointer::CursorIcon;
use smithay::utils::{Logical, Point, Transform};
use std::collections::HashMap;

/// A decoded cursor image and where its tip is.
#[derive(Clone)]
pub struct CursorImage {
    pub buffer: MemoryRenderBuffer,
    pub hotspot: Point<i32, Logical>,
}

pub struct Cursors {
    theme: xcursor::CursorTheme,
    size: u32,
    cache: HashMap<CursorIcon, CursorImage>,
}

impl Cursors {
    pub fn new() -> Self {
        let name = std::env::var("XCURSOR_THEME").unwrap_or_else(|_| "default".into());
        let size = std::env::var("XCURSOR_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
        Self { theme: xcursor::CursorTheme::load(&name), size, cache: HashMap::new() }
    }

    pub fn image(&mut self, icon: CursorIcon) -> CursorImage {
        if let Some(c) = self.cache.get(&icon) {
            return c.clone();
        }
        let image = self.load(icon.name()).or_else(|| self.load("default")).or_else(|| self.load("left_ptr")).unwrap_or_else(builtin_arrow);
        self.cache.insert(icon, image.clone());
        image
    }

    fn load(&self, name: &str) -> Option<CursorImage> {
        let path = self.theme.load_icon(name)?;
        let bytes = std::fs::read(path).ok()?;
        let images = xcursor::parser::parse_xcursor(&bytes)?;
        let best = images.iter().min_by_key(|i| i.size.abs_diff(self.size))?;
        // XCursor pixels are little-endian ARGB words: DRM ARGB8888 byte for byte.
        let buffer = MemoryRenderBuffer::from_slice(
            &best.pixels_rgba,
            Fourcc::Argb8888,
            (best.width as i32, best.height as i32),
            1,
            Transform::Normal,
            None,
        );
        Some(CursorImage { buffer, hotspot: (best.xhot as i32, best.yhot as i32).into() })
    }
}

/// A plain arrow, so a cursor shows even on machines without a cursor theme.
/// (Hand-drawn: 13 rows do not justify shipping a theme.)
fn builtin_arrow() -> CursorImage {
    const ROWS: [&str; 19] = [
        "X",
        "XX",
        "X.X",
        "X..X",
        "X...X",
        "X....X",
        "X.....X",
        "X......X",
        "X.......X",
        "X........X",
        "X.........X",
        "X......XXXXX",
        "X...X..X",
        "X..XX..X",
        "X.X  X..X",
        "XX   X..X",
        "X     X..X",
        "      X..X",
        "       XX",
    ];
    let (w, h) = (12usize, ROWS.len());
    let mut px = vec![0u8; w * h * 4];
    for (y, row) in ROWS.iter().enumerate() {
        for (x, c) in row.bytes().enumerate().take(w) {
            let v: [u8; 4] = match c {
                b'X' => [0, 0, 0, 255],
                b'.' => [255, 255, 255, 255],
                _ => [0, 0, 0, 0],
            };
            px[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&v);
        }
    }
    CursorImage {
        buffer: MemoryRenderBuffer::from_slice(&px, Fourcc::Argb8888, (w as i32, h as i32), 1, Transform::Normal, None),
        hotspot: (0, 0).into(),
    }
}
