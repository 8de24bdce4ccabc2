//! Test images made on the fly with libvips, and decoding of what the mesh
//! returns, so assertions are about real pixels and real formats.

use std::sync::Once;

use anyhow::{Context as _, bail};
use rs_vips::enums::BandFormat;
use rs_vips::voption::{Setter as _, VOption};
use rs_vips::{Vips, VipsImage};

/// The registry master key used by test meshes (32 bytes as hex).
pub const TEST_MASTER_KEY_HEX: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static VIPS: Once = Once::new();

fn init_vips() {
    VIPS.call_once(|| {
        Vips::init("imgmesh-integration-tests").expect("libvips initialises");
    });
}

/// A `width × height` RGB JPEG with a colour gradient.
pub fn jpeg(width: i32, height: i32) -> anyhow::Result<Vec<u8>> {
    let image = gradient(width, height)?;
    Ok(image.jpegsave_buffer_with_opts(VOption::new().set("Q", 90))?)
}

/// A `width × height` RGB PNG with a colour gradient.
pub fn png(width: i32, height: i32) -> anyhow::Result<Vec<u8>> {
    Ok(gradient(width, height)?.pngsave_buffer()?)
}

fn gradient(width: i32, height: i32) -> anyhow::Result<VipsImage> {
    init_vips();
    let xy = VipsImage::xyz(width, height)?;
    let scaled = xy.linear(
        &[255.0 / f64::from(width), 255.0 / f64::from(height)],
        &[0.0, 0.0],
    )?;
    Ok(scaled.bandjoin_const(&[96.0])?.cast(BandFormat::Uchar)?)
}

/// An image format, as told by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF (ISO BMFF with an `avif`/`avis` brand).
    Avif,
    /// GIF.
    Gif,
}

/// What a decoded derivative turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Format from the magic bytes.
    pub format: Format,
    /// Width libvips decoded.
    pub width: i32,
    /// Height libvips decoded.
    pub height: i32,
}

/// Sniffs the format and decodes `bytes` fully with libvips.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Decoded> {
    init_vips();
    let format = sniff(bytes).context("output has no known image signature")?;
    let image = VipsImage::new_from_buffer(bytes, "")?;
    // Touch every pixel so a truncated or corrupt body fails here.
    image.avg().context("decoding every pixel")?;
    Ok(Decoded {
        format,
        width: image.get_width(),
        height: image.get_height(),
    })
}

/// The format of `bytes` from its signature.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else if bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && matches!(&bytes[8..12], b"avif" | b"avis")
    {
        Some(Format::Avif)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else {
        None
    }
}

/// Asserts `bytes` decode to `format` at exactly `width × height`.
pub fn expect_image(bytes: &[u8], format: Format, width: i32, height: i32) -> anyhow::Result<()> {
    let decoded = decode(bytes)?;
    let expected = Decoded {
        format,
        width,
        height,
    };
    if decoded != expected {
        bail!("expected {expected:?}, got {decoded:?}");
    }
    Ok(())
}

/// A `width × height` PNG of four flat quadrants: red top left, green top
/// right, blue bottom left, white bottom right.
pub fn quadrants_png(width: i32, height: i32) -> anyhow::Result<Vec<u8>> {
    Ok(quadrants(width, height)?.pngsave_buffer()?)
}

/// The quadrants image as a JPEG with EXIF orientation `orientation`,
/// stored so that applying the orientation shows the quadrants upright.
pub fn oriented_quadrants_jpeg(
    width: i32,
    height: i32,
    orientation: i32,
) -> anyhow::Result<Vec<u8>> {
    use rs_vips::enums::{Angle, Direction};
    let upright = quadrants(width, height)?;
    // The inverse of the transform each orientation asks a viewer to apply.
    let stored = match orientation {
        2 => upright.flip(Direction::Horizontal)?,
        3 => upright.rot(Angle::D180)?,
        4 => upright.flip(Direction::Vertical)?,
        5 => upright.flip(Direction::Horizontal)?.rot(Angle::D270)?,
        6 => upright.rot(Angle::D270)?,
        7 => upright.flip(Direction::Horizontal)?.rot(Angle::D90)?,
        8 => upright.rot(Angle::D90)?,
        _ => upright,
    };
    let mut stored = stored.copy()?;
    stored.set_int("orientation", orientation)?;
    Ok(stored.jpegsave_buffer_with_opts(VOption::new().set("Q", 95))?)
}

fn quadrants(width: i32, height: i32) -> anyhow::Result<VipsImage> {
    init_vips();
    let (w, h) = (width / 2, height / 2);
    let tile = |rgb: [f64; 3]| -> anyhow::Result<VipsImage> {
        let black = VipsImage::black(w, h)?.cast(BandFormat::Uchar)?;
        Ok(VipsImage::new_from_image(&black, &rgb)?)
    };
    let top = VipsImage::arrayjoin(&[tile([255.0, 0.0, 0.0])?, tile([0.0, 255.0, 0.0])?])?;
    let bottom = VipsImage::arrayjoin(&[tile([0.0, 0.0, 255.0])?, tile([255.0, 255.0, 255.0])?])?;
    let image = VipsImage::arrayjoin_with_opts(&[top, bottom], VOption::new().set("across", 1))?;
    Ok(image.copy_with_opts(VOption::new().set(
        "interpretation",
        rs_vips::enums::Interpretation::Srgb as i32,
    ))?)
}

/// An animated GIF of `pages` frames; frame `i` is a flat grey of `40 · (i + 1)`.
pub fn animated_gif(width: i32, height: i32, pages: i32) -> anyhow::Result<Vec<u8>> {
    init_vips();
    let frames = (0..pages)
        .map(|i| -> anyhow::Result<VipsImage> {
            let black = VipsImage::black(width, height)?.cast(BandFormat::Uchar)?;
            let level = f64::from(40 * (i + 1));
            Ok(VipsImage::new_from_image(&black, &[level, level, level])?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut strip = VipsImage::arrayjoin_with_opts(&frames, VOption::new().set("across", 1))?
        .copy_with_opts(VOption::new().set(
            "interpretation",
            rs_vips::enums::Interpretation::Srgb as i32,
        ))?;
    strip.set_int("page-height", height)?;
    strip.set_array_int("delay", &vec![100; pages as usize])?;
    strip.set_int("loop", 0)?;
    Ok(strip.gifsave_buffer()?)
}

/// Decodes `bytes` (every page, for animations) with libvips.
pub fn decode_all_pages(bytes: &[u8]) -> anyhow::Result<VipsImage> {
    init_vips();
    Ok(VipsImage::new_from_buffer(bytes, "n=-1")?)
}

/// The pixel at (`x`, `y`) of the decoded `bytes`.
pub fn pixel(bytes: &[u8], x: i32, y: i32) -> anyhow::Result<Vec<f64>> {
    init_vips();
    Ok(VipsImage::new_from_buffer(bytes, "")?.getpoint(x, y)?)
}

/// A `width × height` RGB JPEG of Gaussian noise (each band its own): an
/// original whose lossless re-encodings barely compress (a PNG of it is
/// close to `width × height × 3` bytes).
pub fn noise_jpeg(width: i32, height: i32) -> anyhow::Result<Vec<u8>> {
    init_vips();
    let band = || -> anyhow::Result<VipsImage> {
        Ok(
            VipsImage::gaussnoise_with_opts(width, height, VOption::new().set("sigma", 60.0))?
                .cast(BandFormat::Uchar)?,
        )
    };
    let noise = VipsImage::bandjoin(&[band()?, band()?, band()?])?;
    Ok(noise.jpegsave_buffer_with_opts(VOption::new().set("Q", 95))?)
}
