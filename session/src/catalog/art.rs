//! Box art: read for clients (Moonlight's /appasset, the console's thumbnails), and uploaded
//! from the console, where it is brought to the size Moonlight shows and kept in the state
//! directory's `art/` by its digest (the configuration names the file).

use image::{ImageFormat, ImageReader, Limits};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// The largest art file read or taken: a poster (Steam's capsules are 600x900) or an icon.
pub const MAX_BYTES: usize = 8 << 20;

/// Moonlight shows box art as a poster of GameStream's 628x888 (clients scale to it): larger
/// uploads are brought down to fit, keeping their shape; smaller ones are left as they are.
const POSTER: (u32, u32) = (628, 888);

/// The largest picture decoded (its pixels are held in memory while it is scaled).
const MAX_SIDE: u32 = 8192;
const MAX_DECODE_BYTES: u64 = 256 << 20;

/// The directory of uploaded art, in the host's state directory.
pub fn dir(state: &Path) -> PathBuf {
    state.join("art")
}

/// The MIME type of box art clients show: PNG or JPEG, by its first bytes; `None` for
/// anything else (a scanner's path may name any file).
pub fn kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else {
        None
    }
}

/// The art at `path` and its MIME type, if it is a PNG or JPEG of at most [`MAX_BYTES`].
pub fn read(path: &Path) -> Option<(&'static str, Vec<u8>)> {
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(MAX_BYTES as u64 + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() <= MAX_BYTES).then_some(())?;
    Some((kind(&bytes)?, bytes))
}

/// Whether the file at `path` starts as a PNG or JPEG.
pub fn is_image(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && kind(&head).is_some()
}

/// Why uploaded art is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("box art is a PNG or JPEG picture")]
    NotAnImage,
    #[error("the picture does not decode: {0}")]
    Broken(image::ImageError),
    #[error("the art could not be saved: {0}")]
    Save(std::io::Error),
}

/// Takes an uploaded picture: decoded (bounded), scaled down to fit [`POSTER`] where larger,
/// encoded again in its own format and saved in `dir` under its digest; its path.
pub fn save(dir: &Path, upload: &[u8]) -> Result<PathBuf, Refused> {
    let format = match kind(upload) {
        Some("image/png") => ImageFormat::Png,
        Some(_) => ImageFormat::Jpeg,
        None => return Err(Refused::NotAnImage),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(upload), format);
    reader.limits(limits);
    let picture = reader.decode().map_err(Refused::Broken)?;
    let picture = if picture.width() > POSTER.0 || picture.height() > POSTER.1 {
        picture.resize(POSTER.0, POSTER.1, image::imageops::FilterType::Lanczos3)
    } else {
        picture
    };
    // JPEG has no alpha channel: a PNG with one keeps it as PNG.
    let picture = if format == ImageFormat::Jpeg { image::DynamicImage::ImageRgb8(picture.to_rgb8()) } else { picture };
    let mut encoded = Cursor::new(Vec::new());
    picture.write_to(&mut encoded, format).map_err(Refused::Broken)?;
    let encoded = encoded.into_inner();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &encoded);
    let extension = if format == ImageFormat::Png { "png" } else { "jpg" };
    let path = dir.join(format!("{}.{extension}", hex::encode(&digest.as_ref()[..16])));
    crate::store::write_atomic(&path, &encoded).map_err(Refused::Save)?;
    Ok(path)
}

/// Removes the uploaded art in `dir` (files named by [`save`]) that no path in `used`
/// names any more, however it is spelled.
pub fn prune(dir: &Path, used: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let used: Vec<PathBuf> = used.iter().filter_map(|p| p.canonicalize().ok()).collect();
    for entry in entries.flatten() {
        let path = entry.path();
        let saved = path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            && path.extension().is_some_and(|e| e == "png" || e == "jpg");
        if saved && !path.canonicalize().is_ok_and(|p| used.contains(&p)) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let picture = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(picture).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn size(path: &Path) -> (u32, u32) {
        image::image_dimensions(path).unwrap()
    }

    #[test]
    fn large_art_is_brought_to_the_poster_keeping_its_shape_small_art_stays() {
        let dir = tempdir();
        let large = save(&dir, &encoded(1256, 1776, ImageFormat::Jpeg)).unwrap();
        assert_eq!(size(&large), POSTER);
        assert_eq!(read(&large).unwrap().0, "image/jpeg");
        let wide = save(&dir, &encoded(2000, 500, ImageFormat::Png)).unwrap();
        assert_eq!(size(&wide), (628, 157), "fits the width, keeps 4:1");
        assert_eq!(read(&wide).unwrap().0, "image/png");
        let small = save(&dir, &encoded(130, 180, ImageFormat::Png)).unwrap();
        assert_eq!(size(&small), (130, 180));
        assert_eq!(save(&dir, &encoded(130, 180, ImageFormat::Png)).unwrap(), small, "named by its digest");
        let users_own = dir.join("mine.png");
        std::fs::write(&users_own, b"").unwrap();
        prune(&dir, &[dir.join(".").join(small.file_name().unwrap())]);
        assert!(small.exists() && !large.exists() && !wide.exists(), "kept as named, however spelled");
        assert!(users_own.exists(), "files the host did not save stay");
    }

    #[test]
    fn what_is_no_picture_is_refused() {
        let dir = tempdir();
        assert!(matches!(save(&dir, b"GIF89a...."), Err(Refused::NotAnImage)));
        let mut cut = encoded(64, 64, ImageFormat::Png);
        cut.truncate(cut.len() / 2);
        assert!(matches!(save(&dir, &cut), Err(Refused::Broken(_))));
        // Wider than any poster is decoded: refused by its header, before its pixels.
        assert!(matches!(save(&dir, &encoded(MAX_SIDE + 1, 1, ImageFormat::Png)), Err(Refused::Broken(_))));
        assert_eq!(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0), 0, "nothing saved");
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("punktfunk-art-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
